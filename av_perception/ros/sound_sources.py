"""The tracked-sources outputs, as every node that hears directions publishes
them (sound_direction, rotation's binaural branch): a SoundSourceArray, its
RViz markers (an ARROW per source, length proportional to the confidence,
and a TEXT label with the id) and a TF frame per source."""

from __future__ import annotations

from collections.abc import Sequence

from geometry_msgs.msg import TransformStamped, Vector3
from visualization_msgs.msg import Marker, MarkerArray

from av_perception.direction.tracker import TrackedSource
from av_perception.geometry.frames import StaticFrame
from av_perception.msg import SoundSource, SoundSourceArray
from av_perception.ros.tf import transform


def source_array(hdr, sources: Sequence[TrackedSource]) -> SoundSourceArray:
    """The message for one window (``sources`` empty: nothing sounds)."""
    msg = SoundSourceArray(header=hdr)
    for src in sources:
        x, y, z = src.direction
        msg.sources.append(SoundSource(
            id=src.id, direction=Vector3(x=x, y=y, z=z), azimuth=src.azimuth,
            elevation=src.elevation, elevation_known=src.elevation_known,
            confidence=src.confidence, front_back_ambiguous=src.front_back_ambiguous))
    return msg


def source_markers(hdr, sources: Sequence[TrackedSource], keys: Sequence[int], ns: str,
                   arrow_length: float) -> MarkerArray:
    """A DELETEALL, then per source an ARROW along its direction (length
    ``arrow_length`` [m] x confidence, marker id = its key) and a TEXT label
    with its track id at the tip (namespace ``<ns>/ids``)."""
    arr = MarkerArray()
    arr.markers.append(Marker(header=hdr, ns=ns, action=Marker.DELETEALL))
    for key, src in zip(keys, sources):
        m = Marker(header=hdr, ns=ns, id=key, type=Marker.ARROW, action=Marker.ADD)
        length = max(0.05, arrow_length * src.confidence)
        f = StaticFrame.from_rpy('a', 'b', (0, 0, 0), (0.0, -src.elevation, src.azimuth))
        m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z, \
            m.pose.orientation.w = f.quat_xyzw
        m.scale.x, m.scale.y, m.scale.z = length, 0.04, 0.04
        m.color.r, m.color.g, m.color.b, m.color.a = 1.0, 0.3, 0.1, 1.0
        label = Marker(header=hdr, ns=f'{ns}/ids', id=key, type=Marker.TEXT_VIEW_FACING,
                       action=Marker.ADD, text=str(src.id))
        tip = [(length + 0.1) * c for c in src.direction]
        label.pose.position.x, label.pose.position.y, label.pose.position.z = tip
        label.pose.orientation.w = 1.0
        label.scale.z = 0.15
        label.color.r = label.color.g = label.color.b = label.color.a = 1.0
        arr.markers += [m, label]
    return arr


def source_frames(frame_id: str, prefix: str, sources: Sequence[TrackedSource],
                  stamp_ns: int) -> list[TransformStamped]:
    """A frame ``<prefix><k>`` per source, 1 m from ``frame_id``'s origin
    along its direction, x pointing away from the array; ``k`` = 0, 1, ...
    over the sources in order of track id (the oldest track first; the id
    itself is in the SoundSourceArray and on the marker's label).

    Why slots, not track ids: ids only count up, and every TF listener keeps
    every frame name it has seen (tf2's buffers in RViz and nav2 as this
    package's own): a frame per id added a dead frame per track to each of
    them, without end (about 5 tracks a minute in the simulated graph, 13
    MB an hour over its four listeners)."""
    out = []
    for k, src in enumerate(sorted(sources, key=lambda s: s.id)):
        f = StaticFrame.from_rpy(frame_id, f'{prefix}{k}', src.direction,
                                 (0.0, -src.elevation, src.azimuth))
        out.append(transform(f.parent, f.child, f.xyz, f.quat_xyzw, stamp_ns))
    return out
