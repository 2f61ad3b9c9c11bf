"""TF without tf2_ros: TFMessage on /tf and /tf_static, out and in.

tf2_ros is not on PyPI; these publishers put the same messages on the same
topics with the same QoS as tf2_ros's broadcasters, so RViz and tf2 listeners
on a ROS install consume them unchanged, and the listener reads them as
tf2_ros's does into the package's own buffer.
"""

from __future__ import annotations

from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from tf2_msgs.msg import TFMessage

from av_perception.errors import InputError
from av_perception.geometry.frames import StaticFrame
from av_perception.geometry.tf_buffer import TfBuffer
from av_perception.ros.messages import ns_to_stamp
from av_perception.ros.qos import LATCHED, STATIC_LISTENER, TF


def transform(parent: str, child: str, xyz, quat_xyzw, stamp_ns: int) -> TransformStamped:
    """A TransformStamped parent -> child (translation [m], quaternion x, y, z, w)."""
    t = TransformStamped()
    t.header.stamp = ns_to_stamp(stamp_ns)
    t.header.frame_id = parent
    t.child_frame_id = child
    t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = (
        float(v) for v in xyz)
    (t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z,
     t.transform.rotation.w) = (float(v) for v in quat_xyzw)
    return t


class TfBroadcaster:
    """Publishes dynamic transforms on /tf (as tf2_ros.TransformBroadcaster)."""

    def __init__(self, node: Node, topic: str = '/tf') -> None:
        self._pub = node.create_publisher(TFMessage, topic, TF)

    def send(self, transforms: list[TransformStamped]) -> None:
        self._pub.publish(TFMessage(transforms=list(transforms)))


class StaticTfBroadcaster:
    """Publishes static transforms on /tf_static, transient local, the whole
    set in every message (as tf2_ros.StaticTransformBroadcaster), so a late
    subscriber gets all of them."""

    def __init__(self, node: Node, topic: str = '/tf_static') -> None:
        self._pub = node.create_publisher(TFMessage, topic, LATCHED)
        self._by_child: dict[str, TransformStamped] = {}

    def send(self, transforms: list[TransformStamped]) -> None:
        for t in transforms:
            self._by_child[t.child_frame_id] = t
        self._pub.publish(TFMessage(transforms=list(self._by_child.values())))

    def send_frames(self, frames: list[StaticFrame], stamp_ns: int) -> None:
        self.send([transform(f.parent, f.child, f.xyz, f.quat_xyzw, stamp_ns) for f in frames])


class TfListener:
    """Listens to /tf and /tf_static (as tf2_ros.TransformListener, with its
    QoS) into a :class:`~av_perception.geometry.tf_buffer.TfBuffer`.

    tf2_ros is not on PyPI (the package must run from the wheels too), so
    the buffer is the package's own (geometry/tf_buffer.py); /tf and
    /tf_static follow the node's remappings (a namespaced robot's tf).
    Malformed transforms are counted on the node's ``/tf`` input and dropped.

    Args:
        node: an AvNode (its /diagnostics reports the listener).
        on_update: called after each TFMessage, e.g. to retry lookups that
            waited for a transform.
    """

    def __init__(self, node, on_update=None) -> None:
        self.buffer = TfBuffer()
        self._on_update = on_update
        node.create_subscription(TFMessage, '/tf', node.guard('/tf', self._dynamic), TF)
        node.create_subscription(TFMessage, '/tf_static',
                                 node.guard('/tf_static', self._static), STATIC_LISTENER)

    def _add(self, msg: TFMessage, static: bool) -> None:
        try:
            self.buffer.add_message(msg, static=static)
        except ValueError as exc:
            raise InputError('transform', 'TransformStamped with a unit quaternion and two '
                             'frame ids', str(exc)) from None
        if self._on_update is not None:
            self._on_update()

    def _dynamic(self, msg: TFMessage) -> None:
        self._add(msg, False)

    def _static(self, msg: TFMessage) -> None:
        self._add(msg, True)
