"""An echo's column rays as a planar laser scan (sensor_msgs/LaserScan layout,
REP 117 ranges), so that a stock nav2 obstacle layer marks and clears with it.

Written here: depthimage_to_laserscan (the ROS package that does this for a
depth camera) is a C++ node and not on PyPI, and an echo's rays are already
in the robot's horizontal plane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from av_perception.echo.occupancy import EchoRays


@dataclass(frozen=True)
class Scan:
    """A planar scan in a frame whose xy plane is horizontal (REP 103).

    Attributes:
        angle_min, angle_increment: of bin 0 and between bins [rad], CCW from +x.
        ranges: (n,) float32 [m]: the nearest surface in the bin, +Inf where
            the bin is free to ``range_max`` (no return within range), NaN
            where the echo says nothing (REP 117).
        range_max: [m].
    """

    angle_min: float
    angle_increment: float
    ranges: np.ndarray
    range_max: float

    @property
    def angle_max(self) -> float:
        return self.angle_min + self.angle_increment * (len(self.ranges) - 1)


def scan_bins(k: np.ndarray, width: int, yaw: float) -> tuple[float, float, int]:
    """(angle_min, angle_increment, bins) covering a camera's horizontal field
    of view: one bin per image column (``k``: 3x3 intrinsics [px]) around an
    optical axis at azimuth ``yaw`` [rad] of the scan frame."""
    kk = np.asarray(k, float).reshape(3, 3)
    left = math.atan(kk[0, 2] / kk[0, 0])                  # column 0 (image left = +y side)
    right = math.atan((width - 1 - kk[0, 2]) / kk[0, 0])
    return yaw - right, (left + right) / max(width - 1, 1), int(width)


def rays_to_scan(rays: EchoRays, base_to_scan, angle_min: float, angle_increment: float,
                 bins: int, range_max: float) -> Scan:
    """The rays (base frame) as a scan in another frame.

    Args:
        rays: an echo's column rays (origin, azimuth, range, hit) in the base frame.
        base_to_scan: callable mapping (n, 3) base-frame points [m] to the scan
            frame (e.g. ``tf_buffer.Transform.apply`` of scan <- base).
        angle_min, angle_increment, bins: the scan's layout (:func:`scan_bins`).
        range_max: the echo's range [m]: free rays count as free to it.

    Ranges and angles are measured from the scan frame's origin (put it at
    the echo head: the rays start there). Each bin takes the ray whose end
    is nearest to it in angle (columns are not evenly spaced in angle, so a
    bin may fall between two): its surface's range, +Inf for a free ray; a
    bin no ray comes near (outside the view, or a column without a reading)
    is NaN.
    """
    ox, oy = rays.origin
    ends = np.stack([ox + rays.range * np.cos(rays.azimuth),
                     oy + rays.range * np.sin(rays.azimuth),
                     np.zeros_like(rays.range)], axis=-1)
    p = np.asarray(base_to_scan(ends))                     # ray ends, scan frame
    valid = rays.range > 0
    ranges = np.full(bins, np.nan, np.float32)
    if not valid.any():
        return Scan(float(angle_min), float(angle_increment), ranges, float(range_max))
    ang = np.arctan2(p[valid, 1], p[valid, 0])
    rng = np.where(rays.hit[valid], np.hypot(p[valid, 0], p[valid, 1]), np.inf)
    order = np.argsort(ang)
    ang, rng = ang[order], rng[order]
    # the column spacing here: a bin farther than that from every ray has none
    spacing = float(np.median(np.diff(ang))) if len(ang) > 1 else 0.0
    reach = 0.75 * max(spacing, angle_increment)
    centres = angle_min + angle_increment * np.arange(bins)
    ang, rng = np.r_[ang, np.inf], np.r_[rng, np.nan]     # a sentinel: j - 1 and j exist
    j = np.clip(np.searchsorted(ang, centres), 1, len(ang) - 1)
    near = np.where(np.abs(ang[j - 1] - centres) <= np.abs(ang[j] - centres), j - 1, j)
    ok = np.abs(ang[near] - centres) <= reach
    ranges[ok] = np.minimum(rng[near[ok]], np.inf)
    ranges[ok & (ranges > range_max)] = np.inf
    return Scan(float(angle_min), float(angle_increment), ranges, float(range_max))
