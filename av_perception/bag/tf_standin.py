"""A stand-in for the package's TF buffer until ``av_perception.geometry.tf_buffer``
(branch ``echomap``) is merged; :func:`av_perception.bag.contents.tf_buffer`
picks that one as soon as it exists, and this file can then be deleted.

It offers only what the bag readers use, with the same names as the real
buffer: :meth:`TfStandIn.add_message` (a TFMessage-like object: ``/tf`` or,
with ``static=True``, ``/tf_static``), :meth:`TfStandIn.add_transform` (one
TransformStamped-like object) and :meth:`TfStandIn.lookup` (target, source,
stamp [ns]) -> an object with ``xyz`` [m] and ``quat_xyzw``: the pose of
``source`` in ``target``, chained through the tree; a dynamic edge is
interpolated between its two nearest transforms (translation linearly,
rotation by normalised linear interpolation) and never extrapolated. A
lookup that cannot be answered raises a LookupError naming the frames.
"""

from __future__ import annotations

import bisect
from typing import NamedTuple

import numpy as np
from transforms3d.quaternions import mat2quat, quat2mat


class Pose(NamedTuple):
    """A transform: translation [m] and rotation (x, y, z, w)."""

    xyz: tuple[float, float, float]
    quat_xyzw: tuple[float, float, float, float]


def _matrix(xyz, quat_xyzw) -> np.ndarray:
    x, y, z, w = quat_xyzw
    m = np.eye(4)
    m[:3, :3] = quat2mat((w, x, y, z))
    m[:3, 3] = xyz
    return m


class TfStandIn:
    """Static and time-stamped transforms of a frame tree (a whole bag's)."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}
        self._static: dict[str, np.ndarray] = {}               # child -> 4x4
        self._dynamic: dict[str, tuple[list[int], list]] = {}  # child -> stamps, (xyz, q)

    def add_transform(self, msg, static: bool = False) -> None:
        """One TransformStamped-like object (``header.frame_id`` = parent)."""
        parent, child = msg.header.frame_id.lstrip('/'), msg.child_frame_id.lstrip('/')
        t, r = msg.transform.translation, msg.transform.rotation
        q = np.array([r.x, r.y, r.z, r.w], float)
        if not parent or not child or parent == child or not np.linalg.norm(q) > 1e-9:
            raise ValueError(f'transform {parent!r} -> {child!r}: not a transform')
        self._parent[child] = parent
        value = (np.array([t.x, t.y, t.z], float), q / np.linalg.norm(q))
        if static:
            self._static[child] = _matrix(*value)
            return
        stamps, values = self._dynamic.setdefault(child, ([], []))
        ns = int(msg.header.stamp.sec) * 10**9 + int(msg.header.stamp.nanosec)
        i = bisect.bisect_left(stamps, ns)
        if i < len(stamps) and stamps[i] == ns:
            values[i] = value
        else:
            stamps.insert(i, ns)
            values.insert(i, value)

    def add_message(self, msg, static: bool = False) -> None:
        """Every transform of a TFMessage-like object."""
        for t in msg.transforms:
            self.add_transform(t, static)

    def _edge(self, child: str, stamp_ns: int) -> np.ndarray:
        if child in self._static:
            return self._static[child]
        stamps, values = self._dynamic[child]
        i = bisect.bisect_left(stamps, stamp_ns)
        if i < len(stamps) and stamps[i] == stamp_ns:
            return _matrix(*values[i])
        if i == 0 or i == len(stamps):
            raise LookupError(f'no transform {self._parent[child]!r} -> {child!r} at '
                              f'{stamp_ns / 1e9:.3f} s: it is known from {stamps[0] / 1e9:.3f} '
                              f'to {stamps[-1] / 1e9:.3f} s')
        f = (stamp_ns - stamps[i - 1]) / (stamps[i] - stamps[i - 1])
        (t0, q0), (t1, q1) = values[i - 1], values[i]
        q1 = q1 if float(np.dot(q0, q1)) >= 0 else -q1
        q = (1 - f) * q0 + f * q1
        return _matrix((1 - f) * t0 + f * t1, q / np.linalg.norm(q))

    def _to_root(self, frame: str) -> list[str]:
        chain = [frame]
        while chain[-1] in self._parent and len(chain) <= len(self._parent):
            chain.append(self._parent[chain[-1]])
        return chain

    def lookup(self, target: str, source: str, stamp_ns: int) -> Pose:
        """The pose of ``source`` in ``target`` at ``stamp_ns`` [ns].

        Raises:
            LookupError: an unknown frame, two unconnected trees, or a stamp
                outside a dynamic edge's transforms.
        """
        target, source = target.lstrip('/'), source.lstrip('/')
        up_t, up_s = self._to_root(target), self._to_root(source)
        common = [f for f in up_t if f in up_s]
        if not common:
            known = sorted(set(self._parent) | set(self._parent.values()))
            raise LookupError(f'no transform {target!r} <- {source!r}: not connected (known '
                              f'frames: {", ".join(known) or "none"})')
        meet = common[0]
        m_t, m_s = np.eye(4), np.eye(4)          # target in meet, source in meet
        for chain, acc in ((up_t, m_t), (up_s, m_s)):
            for child in chain[:chain.index(meet)]:
                acc[:] = self._edge(child, stamp_ns) @ acc
        m = np.linalg.inv(m_t) @ m_s
        w, x, y, z = mat2quat(m[:3, :3])
        return Pose(tuple(float(v) for v in m[:3, 3]), (float(x), float(y), float(z), float(w)))
