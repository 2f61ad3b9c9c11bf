"""Sound sources as read from a bag or a subscription, whichever message
carries them: ``SoundSourceArray`` (one per window and array, ``sources``
empty when nothing sounds) or the retired per-source ``SoundDirection`` of
older bags (one message per source, no identity, silence not said)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceReading:
    """One source in one message, in the header's frame (REP 103).

    Attributes:
        id: track id (0: untracked, and always 0 from a SoundDirection).
        azimuth: [rad], counter-clockwise from +x.
        elevation: [rad] above the x-y plane (0 where not known).
        elevation_known: whether elevation is a measurement (a
            SoundDirection says so only by a non-zero elevation).
        confidence: in [0, 1].
        front_back_ambiguous: the source may be at the mirror image across
            the array's y-z plane.
    """

    id: int
    azimuth: float
    elevation: float
    elevation_known: bool
    confidence: float
    front_back_ambiguous: bool


def source_readings(msg) -> list[SourceReading]:
    """The sources a SoundSourceArray or a SoundDirection message carries
    (rclpy or rosbags objects alike)."""
    if hasattr(msg, 'sources'):
        return [SourceReading(int(s.id), float(s.azimuth), float(s.elevation),
                              bool(s.elevation_known), float(s.confidence),
                              bool(s.front_back_ambiguous)) for s in msg.sources]
    return [SourceReading(0, float(msg.azimuth), float(msg.elevation),
                          float(msg.elevation) != 0.0, float(msg.confidence),
                          bool(msg.front_back_ambiguous))]
