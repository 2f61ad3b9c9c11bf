"""Static coordinate frames of the robot (REP 103 / REP 105), without ROS."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from transforms3d.euler import euler2quat

from av_perception.errors import ConfigError

#: roll, pitch, yaw [rad] from a body frame (x forward, y left, z up) to its
#: optical frame (z forward, x right, y down).
OPTICAL_RPY = (-math.pi / 2, 0.0, -math.pi / 2)


def unit_vector(azimuth: float, elevation: float = 0.0) -> np.ndarray:
    """(3,) unit vector of an azimuth and elevation [rad] (REP 103: azimuth
    counter-clockwise from +x, elevation above the x-y plane)."""
    ce = math.cos(elevation)
    return np.array([ce * math.cos(azimuth), ce * math.sin(azimuth), math.sin(elevation)])


@dataclass(frozen=True)
class StaticFrame:
    """A fixed transform parent -> child.

    Attributes:
        parent: parent frame id.
        child: child frame id.
        xyz: translation of the child origin in the parent frame [m].
        quat_xyzw: rotation of the child frame in the parent frame (x, y, z, w).
    """

    parent: str
    child: str
    xyz: tuple[float, float, float]
    quat_xyzw: tuple[float, float, float, float]

    @classmethod
    def from_rpy(cls, parent: str, child: str, xyz, rpy) -> StaticFrame:
        """From a translation [m] and fixed-axis roll, pitch, yaw [rad]."""
        xyz = tuple(float(v) for v in xyz)
        rpy = tuple(float(v) for v in rpy)
        if len(xyz) != 3 or len(rpy) != 3:
            raise ConfigError(f'frame {child!r}: expected xyz and rpy of 3 numbers each, '
                              f'got {len(xyz)} and {len(rpy)}')
        if not all(math.isfinite(v) for v in xyz + rpy):
            raise ConfigError(f'frame {child!r}: xyz and rpy must be finite, got {xyz} {rpy}')
        if not parent or not child or parent == child:
            raise ConfigError(f'frame {child!r}: parent and child must be distinct names, '
                              f'got parent {parent!r}')
        w, x, y, z = euler2quat(*rpy, axes='sxyz')
        return cls(parent, child, xyz, (float(x), float(y), float(z), float(w)))


def check_tree(frames: list[StaticFrame]) -> None:
    """Raise ConfigError if a child has two parents or the frames form a cycle."""
    parent_of: dict[str, str] = {}
    for f in frames:
        if f.child in parent_of:
            raise ConfigError(f'frame {f.child!r} has two parents: '
                              f'{parent_of[f.child]!r} and {f.parent!r}')
        parent_of[f.child] = f.parent
    for start in parent_of:
        seen, node = {start}, start
        while node in parent_of:
            node = parent_of[node]
            if node in seen:
                raise ConfigError(f'frames form a cycle through {node!r}')
            seen.add(node)


def yaw_quaternion(yaw: float) -> tuple[float, float, float, float]:
    """Rotation about +z by ``yaw`` [rad] as (x, y, z, w)."""
    return (0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0))


def quaternion_yaw(q) -> float:
    """Yaw [rad] (the first of intrinsic Z-Y-X Euler angles, as REP 103) of a quaternion
    message (fields x, y, z, w)."""
    from transforms3d.euler import quat2euler
    return float(quat2euler((q.w, q.x, q.y, q.z), 'rzyx')[0])


def hfov_deg(K: np.ndarray, width: int) -> float:
    """Horizontal field of view [deg] of a pinhole camera matrix ``K`` (3x3,
    fx in pixels) for an image ``width`` pixels wide."""
    return math.degrees(2.0 * math.atan(width / 2.0 / float(np.asarray(K)[0][0])))


def rotation_matrix(quat_xyzw) -> np.ndarray:
    """3x3 rotation matrix of a unit quaternion (x, y, z, w)."""
    from transforms3d.quaternions import quat2mat
    x, y, z, w = quat_xyzw
    return quat2mat((w, x, y, z))
