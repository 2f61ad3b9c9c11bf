"""A small TF buffer: transforms between the frames of a tree at a time, without ROS.

tf2_ros (and tf2_py) are not on PyPI, so a node of this package cannot use
tf2's ``Buffer``/``TransformListener``; this buffer is written here instead.
It follows tf2's semantics where they matter to a consumer:

- transforms are fed as TransformStamped-like plain data (``header.stamp``,
  ``header.frame_id`` = parent, ``child_frame_id``, ``transform.translation``
  [m] and ``transform.rotation`` (x, y, z, w)), from an rclpy subscription or
  a bag read with rosbags alike (:meth:`TfBuffer.add_message` takes a
  TFMessage);
- static transforms (``/tf_static``) hold at every time; dynamic ones
  (``/tf``) are kept per (parent, child) edge for ``cache_ns`` behind that
  edge's newest stamp (tf2's default cache is 10 s) and interpolated in time:
  translation linearly, rotation by slerp;
- ``lookup(target, source, stamp_ns)`` returns the pose of ``source`` in
  ``target`` (a point p in ``source`` is ``T.apply(p)`` in ``target``), as
  tf2's ``lookup_transform(target_frame, source_frame, time)``, chaining the
  edges through the tree; ``stamp_ns=None`` asks for the latest time every
  dynamic edge of the chain knows (tf2's ``Time(0)``);
- a lookup that cannot be answered raises a :class:`TransformError` (a
  LookupError) whose message names the frames, the stamp and why: a frame
  never seen, no chain between the frames, or a stamp before the oldest or
  after the newest transform of an edge by more than ``tolerance_ns``.

Frame ids are compared without a leading ``/`` (as tf2). A child re-parented
(a transform to it from another parent) drops its old edge, so the frames
stay a tree.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from transforms3d.quaternions import qinverse, qmult, qpow, quat2mat

#: tf2's default cache duration [ns].
DEFAULT_CACHE_NS = 10 * 10**9


class TransformError(LookupError):
    """A transform the buffer cannot give (the message says which and why)."""


class UnknownFrameError(TransformError):
    """A frame no transform has named."""


class ConnectivityError(TransformError):
    """Both frames are known, but no chain of transforms joins them."""


class ExtrapolationError(TransformError):
    """The stamp lies before the oldest or after the newest transform of an
    edge of the chain (beyond the tolerance)."""


@dataclass(frozen=True)
class Transform:
    """A rigid transform: the pose of a child frame in its parent frame.

    Attributes:
        xyz: translation of the child origin in the parent frame [m].
        quat_wxyz: rotation of the child frame in the parent frame, unit
            quaternion (w, x, y, z) (transforms3d's order; ROS messages use
            (x, y, z, w): see :attr:`quat_xyzw`).
    """

    xyz: tuple[float, float, float]
    quat_wxyz: tuple[float, float, float, float]

    @classmethod
    def identity(cls) -> Transform:
        return cls((0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0))

    @classmethod
    def from_matrix(cls, m: np.ndarray) -> Transform:
        """From a 4x4 homogeneous matrix."""
        from transforms3d.quaternions import mat2quat
        q = mat2quat(np.asarray(m, float)[:3, :3])
        if q[0] < 0:
            q = -q
        return cls(tuple(float(v) for v in m[:3, 3]), tuple(float(v) for v in q))

    @property
    def quat_xyzw(self) -> tuple[float, float, float, float]:
        w, x, y, z = self.quat_wxyz
        return (x, y, z, w)

    @property
    def matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix: p_parent = M @ (p_child, 1)."""
        m = np.eye(4)
        m[:3, :3] = quat2mat(self.quat_wxyz)
        m[:3, 3] = self.xyz
        return m

    @property
    def yaw(self) -> float:
        """Heading of the child's x axis in the parent's xy plane [rad] (for
        planar use: a robot base in odom)."""
        r = quat2mat(self.quat_wxyz)
        return math.atan2(r[1, 0], r[0, 0])

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) points in the child frame -> the parent frame [m]."""
        p = np.asarray(points, float)
        return p @ quat2mat(self.quat_wxyz).T + np.asarray(self.xyz)

    def inverse(self) -> Transform:
        return Transform.from_matrix(np.linalg.inv(self.matrix))


def interpolate(a: Transform, b: Transform, f: float) -> Transform:
    """The transform a fraction ``f`` in [0, 1] of the way from a to b:
    translation linear, rotation by slerp (the shorter arc)."""
    qa, qb = np.asarray(a.quat_wxyz), np.asarray(b.quat_wxyz)
    if float(np.dot(qa, qb)) < 0.0:
        qb = -qb                                   # the same rotation, the shorter way
    q = qmult(qa, qpow(qmult(qinverse(qa), qb), f))
    q = q / np.linalg.norm(q)
    xyz = (1.0 - f) * np.asarray(a.xyz) + f * np.asarray(b.xyz)
    return Transform(tuple(float(v) for v in xyz), tuple(float(v) for v in q))


def _frame(name: str) -> str:
    return str(name).lstrip('/')


def stamp_to_ns(stamp) -> int:
    """``builtin_interfaces/Time``-like (sec, nanosec) -> ns."""
    return int(stamp.sec) * 10**9 + int(stamp.nanosec)


def _fmt(stamp_ns: int | None) -> str:
    return 'latest' if stamp_ns is None else f'{stamp_ns / 1e9:.9f} s'


class _EdgeCache:
    """The time-stamped transforms of one dynamic edge, sorted by stamp,
    bounded to ``cache_ns`` behind the newest (None: unbounded)."""

    def __init__(self, cache_ns: int | None) -> None:
        self.cache_ns = cache_ns
        self.stamps: deque[int] = deque()
        self.values: deque[Transform] = deque()

    def insert(self, stamp_ns: int, tf: Transform) -> bool:
        """Add a sample; False if it is older than the cache keeps (dropped)."""
        if (self.cache_ns is not None and self.stamps
                and stamp_ns < self.stamps[-1] - self.cache_ns):
            return False
        if not self.stamps or stamp_ns > self.stamps[-1]:
            self.stamps.append(stamp_ns)
            self.values.append(tf)
        else:
            i = bisect.bisect_left(self.stamps, stamp_ns)
            if i < len(self.stamps) and self.stamps[i] == stamp_ns:
                self.values[i] = tf                 # the same stamp again: the last one wins
            else:
                self.stamps.insert(i, stamp_ns)
                self.values.insert(i, tf)
        if self.cache_ns is not None:
            while self.stamps[0] < self.stamps[-1] - self.cache_ns:
                self.stamps.popleft()
                self.values.popleft()
        return True

    def at(self, stamp_ns: int, tolerance_ns: int) -> Transform | str:
        """The transform at a stamp, or why not (a phrase for the error)."""
        first, last = self.stamps[0], self.stamps[-1]
        if stamp_ns < first:
            if first - stamp_ns <= tolerance_ns:
                return self.values[0]
            return (f'extrapolation into the past: the oldest transform is at {_fmt(first)}, '
                    f'{(first - stamp_ns) / 1e9:.3f} s later')
        if stamp_ns > last:
            if stamp_ns - last <= tolerance_ns:
                return self.values[-1]
            return (f'extrapolation into the future: the newest transform is at {_fmt(last)}, '
                    f'{(stamp_ns - last) / 1e9:.3f} s earlier')
        i = bisect.bisect_left(self.stamps, stamp_ns)
        if self.stamps[i] == stamp_ns:
            return self.values[i]
        t0, t1 = self.stamps[i - 1], self.stamps[i]
        return interpolate(self.values[i - 1], self.values[i], (stamp_ns - t0) / (t1 - t0))


class TfBuffer:
    """Static and dynamic transforms of a frame tree, looked up at a time.

    Args:
        cache_ns: how long each dynamic edge keeps its transforms behind its
            newest stamp [ns] (tf2: 10 s); None keeps everything (offline
            evaluation of a whole bag).
        tolerance_ns: default for :meth:`lookup`: how far a stamp may lie
            before the oldest or after the newest transform of an edge and
            still take that transform [ns] (tf2: 0).

    Attributes:
        dropped_old: transforms dropped because older than the cache keeps.
        reparented: transforms that moved a child to another parent.
    """

    def __init__(self, cache_ns: int | None = DEFAULT_CACHE_NS, tolerance_ns: int = 0) -> None:
        self.cache_ns = cache_ns
        self.tolerance_ns = int(tolerance_ns)
        self._static: dict[tuple[str, str], Transform] = {}
        self._dynamic: dict[tuple[str, str], _EdgeCache] = {}
        self._parent: dict[str, str] = {}
        self._seen: set[str] = set()
        self.dropped_old = 0
        self.reparented = 0

    # ------------------------------------------------------------ feeding
    def set_transform(self, parent: str, child: str, tf: Transform, stamp_ns: int,
                      static: bool = False) -> None:
        """Add the pose ``tf`` of ``child`` in ``parent`` at ``stamp_ns`` [ns]
        (``static``: at every time)."""
        parent, child = _frame(parent), _frame(child)
        if not parent or not child or parent == child:
            raise ValueError(f'a transform needs two distinct frame ids, got {parent!r} -> '
                             f'{child!r}')
        old = self._parent.get(child)
        if old is not None and old != parent:
            self._static.pop((old, child), None)
            self._dynamic.pop((old, child), None)
            self.reparented += 1
        self._parent[child] = parent
        self._seen.update((parent, child))
        key = (parent, child)
        if static:
            self._dynamic.pop(key, None)
            self._static[key] = tf
            return
        self._static.pop(key, None)
        cache = self._dynamic.setdefault(key, _EdgeCache(self.cache_ns))
        if not cache.insert(int(stamp_ns), tf):
            self.dropped_old += 1

    def add_transform(self, msg, static: bool = False) -> None:
        """Add one TransformStamped-like object (rclpy or rosbags message)."""
        t, r = msg.transform.translation, msg.transform.rotation
        q = np.array([r.w, r.x, r.y, r.z], float)
        n = float(np.linalg.norm(q))
        if not math.isfinite(n) or n < 1e-9:
            raise ValueError(f'transform {msg.header.frame_id!r} -> {msg.child_frame_id!r}: '
                             f'rotation is not a quaternion ({r.x}, {r.y}, {r.z}, {r.w})')
        self.set_transform(msg.header.frame_id, msg.child_frame_id,
                           Transform((float(t.x), float(t.y), float(t.z)),
                                     tuple(float(v) for v in q / n)),
                           stamp_to_ns(msg.header.stamp), static)

    def add_message(self, msg, static: bool = False) -> None:
        """Add every transform of a TFMessage-like object (``.transforms``):
        ``static=True`` for /tf_static."""
        for t in msg.transforms:
            self.add_transform(t, static)

    # ----------------------------------------------------------- querying
    @property
    def frames(self) -> set[str]:
        """Every frame a transform has named (since the last :meth:`clear`)."""
        return set(self._seen)

    def _path(self, target: str, source: str) -> list[str] | None:
        """Frames from target to source through the tree (both ends included)."""
        def to_root(f: str) -> list[str]:
            chain = [f]
            while chain[-1] in self._parent and len(chain) <= len(self._parent):
                chain.append(self._parent[chain[-1]])
            return chain
        up_t, up_s = to_root(target), to_root(source)
        common = set(up_t) & set(up_s)
        if not common:
            return None
        meet = next(f for f in up_t if f in common)
        return up_t[:up_t.index(meet) + 1] + list(reversed(up_s[:up_s.index(meet)]))

    def _edge(self, parent: str, child: str, stamp_ns: int | None,
              tolerance_ns: int) -> Transform | str:
        if (parent, child) in self._static:
            return self._static[(parent, child)]
        cache = self._dynamic[(parent, child)]
        return cache.at(cache.stamps[-1] if stamp_ns is None else stamp_ns, tolerance_ns)

    def latest_common_ns(self, target: str, source: str) -> int | None:
        """The latest stamp every dynamic edge between the frames knows
        (None: only static edges, or no chain)."""
        path = self._path(_frame(target), _frame(source))
        if path is None:
            return None
        ends = [self._dynamic[e].stamps[-1] for e in self._edges(path) if e in self._dynamic]
        return min(ends) if ends else None

    def _edges(self, path: list[str]) -> list[tuple[str, str]]:
        return [(a, b) if self._parent.get(b) == a else (b, a) for a, b in zip(path, path[1:])]

    def lookup(self, target: str, source: str, stamp_ns: int | None,
               tolerance_ns: int | None = None) -> Transform:
        """The pose of ``source`` in ``target`` at ``stamp_ns`` [ns] (None: the
        latest common time): maps points in ``source`` to ``target``.

        Raises:
            UnknownFrameError, ConnectivityError, ExtrapolationError (all
            TransformError, a LookupError): the message names the frames, the
            stamp and why.
        """
        target, source = _frame(target), _frame(source)
        tol = self.tolerance_ns if tolerance_ns is None else int(tolerance_ns)
        what = f'{target!r} <- {source!r} at {_fmt(stamp_ns)}'
        known = self.frames
        missing = [f for f in (target, source) if f not in known]
        if missing and target != source:
            raise UnknownFrameError(f'no transform {what}: frame {missing[0]!r} has never been '
                                    f'seen (known: {", ".join(sorted(known)) or "none"})')
        if target == source:
            return Transform.identity()
        path = self._path(target, source)
        if path is None:
            raise ConnectivityError(f'no transform {what}: the frames are in two unconnected '
                                    'trees')
        if stamp_ns is None:
            stamp_ns = self.latest_common_ns(target, source)
        m = np.eye(4)
        for a, b in zip(path, path[1:]):
            if self._parent.get(b) == a:        # down the tree: b's pose in a
                tf = self._edge(a, b, stamp_ns, tol)
                step = tf if isinstance(tf, str) else tf.matrix
            else:                               # up the tree: inverse of a's pose in b
                tf = self._edge(b, a, stamp_ns, tol)
                step = tf if isinstance(tf, str) else np.linalg.inv(tf.matrix)
            if isinstance(step, str):
                edge = (a, b) if self._parent.get(b) == a else (b, a)
                raise ExtrapolationError(f'no transform {what}: edge {edge[0]!r} -> '
                                         f'{edge[1]!r}: {step}')
            m = m @ step
        return Transform.from_matrix(m)

    def can_transform(self, target: str, source: str, stamp_ns: int | None,
                      tolerance_ns: int | None = None) -> bool:
        try:
            self.lookup(target, source, stamp_ns, tolerance_ns)
        except TransformError:
            return False
        return True

    def clear(self) -> None:
        """Forget every transform (e.g. after a jump back in time)."""
        self._static.clear()
        self._dynamic.clear()
        self._parent.clear()
        self._seen.clear()
