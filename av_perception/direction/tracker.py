"""Tracked sound sources: identities across the windows of
:class:`~av_perception.direction.stream.StreamingDoa`.

Algorithm: global nearest neighbour (GNN) association with M-of-N
confirmation and death after consecutive misses, on the unit sphere.

- Every window, the live tracks and the window's estimates are paired by an
  optimal global assignment (``scipy.optimize.linear_sum_assignment``)
  minimising the summed great-circle angle between track and estimate; a
  pair farther apart than the gate is not a pair. Confirmed tracks are assigned first and tentative
  tracks only to the estimates left over, so a newborn track never takes a
  confirmed track's estimate (the matching cascade of SORT/DeepSORT).
- An estimate paired with no track starts a tentative track if it is at
  least ``birth_confidence`` confident; a tentative track is confirmed, and
  only then given an id, once it has been paired in ``confirm_hits`` of
  its first ``confirm_window`` windows (k of n), and is dropped if it
  cannot be. A confirmed track dies after ``max_misses``
  consecutive windows without an estimate. Silent or empty windows are
  misses for every track. A window reports the confirmed tracks that have
  missed at most ``coast`` windows: with ``coast`` below ``max_misses`` a
  talker's pause empties the report (nothing sounds) but the track, and
  its id, live on through it.
- A track's direction is an alpha-beta filter on the sphere: each window
  the direction ``v`` moves by the track's angular velocity ``w`` (a
  vector tangent to the sphere at ``v``, per window) to its prediction
  ``p``, against which estimates are gated; an estimate ``u`` then gives
  ``v <- normalise((1 - a) p + a u)`` and ``w <- w + b r`` with ``r`` the
  component of ``u - p`` tangent at ``p``, ``a`` = ``smoothing``, ``b`` =
  ``velocity_gain`` (0: a constant-direction model, exponential smoothing
  of the unit vector). A missed window keeps the prediction and halves
  the velocity, so a coasting track comes to rest. The sources of a room
  stand still, but the robot turning moves them in the array frame: pass
  the turn as ``frame_rotation`` where odometry/TF knows it; otherwise the
  gate must cover the turn, or the source is born again under a new id.
  The confidence is smoothed with ``a`` too, a miss counting as 0.

Why this one: a window holds at most a few estimates (``num_src``, 2 on the
simulated robot) and a handful of sources, so the optimal global assignment
costs nothing and, unlike a greedy nearest-neighbour pairing, does not let
one source's estimate steal another's track when the two come close; k-of-n
confirmation suppresses the single-window spurious peaks that reverberation
gives, and death after m misses carries a talker through pauses between
words. Probabilistic alternatives (JPDA, PHD or particle filters such as
ODAS's) pay off with many clutter points per window, which a peak picker
limited to ``num_src`` peaks does not give.

Angles follow REP 103 in the array frame (azimuth counter-clockwise from
+x, elevation above the x-y plane, radians); direction vectors are unit
vectors in that frame. Front/back ambiguous arrays (2 microphones, a
binaural head) cannot tell a direction from its mirror image across the
array's y-z plane: their distances take the nearer of the two, and their
track directions stay in the front half-space (x >= 0), as their estimates
do. Where the array does not resolve elevation (``elevation_known`` False:
planar arrays, GCC), directions lie in the x-y plane and elevation is
reported as 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from av_perception.direction.classic import DoaEstimate
from av_perception.direction.stream import DoaResult
from av_perception.errors import ConfigError
from av_perception.geometry.frames import unit_vector

#: Track ids are uint32 on the wire; the first is 1 (0 is left for "none").
FIRST_ID = 1
ID_MODULUS = 2 ** 32
#: Estimation methods that estimate elevation (on an array that resolves it).
ELEVATION_METHODS = ('srp', 'srp_onset', 'normmusic')


@dataclass(frozen=True)
class TrackerParams:
    """Parameters of :class:`SourceTracker`.

    The defaults are what bench/direction_tracking.py chose for the 4-mic
    array with SRP-PHAT on train-split rooms (:data:`TUNED_PARAMS` holds
    the binaural head's).

    Attributes:
        gate_deg: largest great-circle angle between a track's direction
            and an estimate paired with it [deg].
        confirm_hits: k: windows (with an estimate paired) that confirm a
            tentative track ...
        confirm_window: n: ... within its first n windows [windows].
        max_misses: m: a confirmed track dies after this many consecutive
            windows without an estimate [windows] (at a 0.1 s hop, 5 = 0.5 s).
        smoothing: weight of a new estimate in the exponential smoothing of
            the direction and the confidence, in (0, 1] (1: no smoothing).
        velocity_gain: weight of the direction's innovation in the track's
            angular velocity, in [0, 1] [1/window] (0: directions do not
            move between windows).
        birth_confidence: an estimate less confident than this, in [0, 1],
            can extend a track but never start one (SRP-PHAT's sidelobes and
            reflections come as persistent low-confidence peaks).
        coast: a confirmed track is reported for at most this many
            windows after its last estimate [windows] (0: only the tracks
            heard in the window); it lives on, unreported, up to
            ``max_misses``.
    """

    gate_deg: float = 60.0
    confirm_hits: int = 4
    confirm_window: int = 5
    max_misses: int = 8
    smoothing: float = 0.5
    velocity_gain: float = 0.0
    birth_confidence: float = 0.5
    coast: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.gate_deg <= 180.0:
            raise ConfigError(f'tracker gate_deg must be in (0, 180], got {self.gate_deg}')
        if not 1 <= self.confirm_hits <= self.confirm_window:
            raise ConfigError('tracker confirm_hits must be in [1, confirm_window], got '
                              f'{self.confirm_hits} of {self.confirm_window}')
        if self.max_misses < 1:
            raise ConfigError(f'tracker max_misses must be >= 1, got {self.max_misses}')
        if not 0.0 < self.smoothing <= 1.0:
            raise ConfigError(f'tracker smoothing must be in (0, 1], got {self.smoothing}')
        if not 0.0 <= self.velocity_gain <= 1.0:
            raise ConfigError(f'tracker velocity_gain must be in [0, 1], got {self.velocity_gain}')
        if self.coast < 0:
            raise ConfigError(f'tracker coast must be >= 0, got {self.coast}')
        if not 0.0 <= self.birth_confidence <= 1.0:
            raise ConfigError('tracker birth_confidence must be in [0, 1], got '
                              f'{self.birth_confidence}')


#: Parameters per array (geometry name) and estimation method, chosen by
#: bench/direction_tracking.py on train-split rooms (max IDF1): the 4-mic
#: array with SRP-PHAT, the binaural head with GCC-PHAT (its estimates
#: are weaker: a lower birth confidence, ids kept for 3 s).
TUNED_PARAMS: dict[tuple[str, str], TrackerParams] = {
    ('respeaker4', 'srp'): TrackerParams(max_misses=15),
    # the sweep on the same train rooms chose the defaults for onset-weighted SRP-PHAT
    # (bench/results/direction_tracking_srp_onset.json)
    ('respeaker4', 'srp_onset'): TrackerParams(),
    # re-swept on 2026-12-07 once GCC-PHAT's edge peaks counted (side directions,
    # some of them reflections): 4 hits of 5 to confirm, 1 window of coasting
    ('binaural', 'gcc'): TrackerParams(gate_deg=60.0, confirm_hits=4, confirm_window=5,
                                       max_misses=30, birth_confidence=0.3, coast=1),
}
#: The binaural head's learned models (the rotation node's directions) take
#: the parameters the bench chose for GCC-PHAT before its re-sweep of
#: 2026-12-07 (the bench tunes GCC-PHAT only). With the
#: defaults (the 4-mic array's) a track needs a confidence of 0.5, which 24 %
#: of the motion model's one-source segments reach: on the rotation bench's
#: rooms a source was published on 11-17 % of them (scratch measurement);
#: with these, on 72-77 % (bench/results/rotation.json,
#: ``binaural_node_topic``).
TUNED_PARAMS[('binaural', 'learned')] = TrackerParams(
    gate_deg=60.0, confirm_hits=2, confirm_window=3, max_misses=30, birth_confidence=0.3,
    coast=3)
#: Onset-weighted GCC-PHAT (``gcc_onset``, config/sim.yaml's binaural method,
#: one source per window there), swept on its own on 2026-12-07 with one source
#: per window (bench/results/direction_tracking_gcc_onset.json): 3 hits of 4 to
#: confirm; the rest as the learned models'. On the test rooms 10.04 ID switches
#: a minute and IDF1 0.412, against 11.97 and 0.419 with the learned models'
#: parameters (2 of 3), which it ran before: about level.
TUNED_PARAMS[('binaural', 'gcc_onset')] = TrackerParams(
    gate_deg=60.0, confirm_hits=3, confirm_window=4, max_misses=30, birth_confidence=0.3,
    coast=3)


@dataclass(frozen=True)
class TrackedSource:
    """One confirmed track in one window, in the array frame.

    Attributes:
        id: track id (uint32), stable while the track lives, never reused.
        azimuth: rad, CCW from +x, in (-pi, pi].
        elevation: rad above the x-y plane (0 where ``elevation_known`` is False).
        elevation_known: the array resolves elevation.
        confidence: [0, 1], smoothed over the track's windows (a miss counts 0).
        front_back_ambiguous: the direction may be its mirror across the
            array's y-z plane (the azimuth is then in [-pi/2, pi/2]).
        direction: (x, y, z) unit vector of ``azimuth``, ``elevation``.
        hits: windows in which the track was paired with an estimate.
        misses: consecutive windows, up to this one, without an estimate
            (0: seen in this window; > 0: the track coasts on its last direction).
    """

    id: int
    azimuth: float
    elevation: float
    elevation_known: bool
    confidence: float
    front_back_ambiguous: bool
    direction: tuple[float, float, float]
    hits: int
    misses: int


def mirror_front_back(v: np.ndarray) -> np.ndarray:
    """Mirror image(s) of direction vector(s) (..., 3) across the y-z plane
    (x -> -x): the direction a front/back ambiguous array confuses with ``v``."""
    return v * np.array([-1.0, 1.0, 1.0])


def angle_between(a: np.ndarray, b: np.ndarray, ambiguous: bool = False) -> np.ndarray:
    """Great-circle angle [rad] between unit vectors a (..., 3) and b (..., 3)
    (broadcast); ``ambiguous``: the smaller of the angles to b and to b's
    front/back mirror image."""
    def ang(u, w):
        # atan2 of |cross| and dot: accurate for small and large angles alike
        return np.arctan2(np.linalg.norm(np.cross(u, w), axis=-1), np.sum(u * w, axis=-1))
    d = ang(a, b)
    return np.minimum(d, ang(a, mirror_front_back(b))) if ambiguous else d


def yaw_rotation(dyaw: float) -> np.ndarray:
    """The ``frame_rotation`` of :meth:`SourceTracker.update` for an array
    that turned by ``dyaw`` [rad] (counter-clockwise, about its z axis)
    since the previous window: fixed directions turn by ``-dyaw`` in its frame."""
    c, s = math.cos(-dyaw), math.sin(-dyaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _tangent(w: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The component of ``w`` tangent to the unit sphere at ``v``."""
    return w - float(w @ v) * v


def _normalised(v: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else fallback


@dataclass
class _Track:
    direction: np.ndarray          # (3,) unit vector in the array frame
    velocity: np.ndarray           # (3,) tangent at ``direction``, per window
    confidence: float
    ambiguous: bool
    hits: int = 1
    misses: int = 0                # consecutive
    id: int | None = None          # None while tentative
    history: list = field(default_factory=list)  # hit (True) / miss per window while tentative


class SourceTracker:
    """Gives the per-window estimates of a stream track ids (see the module
    docstring for the algorithm).

    Args:
        params: association gate, confirmation, death and smoothing.
        elevation_known: the array resolves elevation
            (:attr:`~av_perception.arrays.ArrayGeometry.resolves_elevation`,
            and a method that estimates it); False: estimates' elevations
            are ignored and reported as 0, distances are azimuth differences.
        hop: time between windows [s]; where given, windows missing from
            the stream (a gap in the stamps) count as misses. None: every
            update is the next window.
    """

    def __init__(self, params: TrackerParams | None = None, elevation_known: bool = False,
                 hop: float | None = None) -> None:
        self.params = params or TrackerParams()
        self.elevation_known = elevation_known
        self.hop_ns = None if hop is None else int(round(hop * 1e9))
        self._tracks: list[_Track] = []
        self._next_id = FIRST_ID
        self._last_stamp: int | None = None
        self._gate = math.radians(self.params.gate_deg)

    @classmethod
    def for_array(cls, geometry, method: str, params: TrackerParams | None = None,
                  hop: float | None = None) -> SourceTracker:
        """A tracker for an array (ArrayGeometry) and estimation method
        (evaluate.make_estimator's): elevation is known where the array
        resolves it and the method estimates it (SRP-PHAT and NormMUSIC;
        GCC-PHAT and the learned models give azimuths only). ``params``
        None: the array's and method's :data:`TUNED_PARAMS`, else the
        defaults."""
        if params is None:
            params = TUNED_PARAMS.get((geometry.name, method), TrackerParams())
        return cls(params, geometry.resolves_elevation and method in ELEVATION_METHODS, hop)

    def reset(self) -> None:
        """Forget every track (a new stream); ids keep counting up."""
        self._tracks = []
        self._last_stamp = None

    def update(self, result: DoaResult, frame_rotation: np.ndarray | None = None
               ) -> list[TrackedSource]:
        """Take one window's estimates; returns the confirmed tracks to
        report for it (see ``TrackerParams.coast``; empty when none is
        heard), ordered by id.

        Args:
            result: the window (its ``sources``; a silent window has none).
            frame_rotation: (3, 3) rotation taking directions in the array
                frame of the previous window into this window's (the array
                turned: see :func:`yaw_rotation`), from odometry or TF;
                None: the frame did not move, or it is not known. Not
                applied to front/back ambiguous tracks, whose true side is
                unknown (a turn moves a source and its mirror image apart).
        """
        stamp = int(result.stamp_ns)
        if self._last_stamp is not None and stamp <= self._last_stamp:
            self.reset()  # the stream went back in time (a replay restarted)
        gap = 0
        if self.hop_ns and self._last_stamp is not None:
            gap = max(0, int(round((stamp - self._last_stamp) / self.hop_ns)) - 1)
        self._last_stamp = stamp
        for _ in range(min(gap, self.params.max_misses + self.params.confirm_window)):
            self._step([], None)
        self._step(list(result.sources), frame_rotation)
        return self.confirmed(self.params.coast)

    def confirmed(self, max_misses: int | None = None) -> list[TrackedSource]:
        """The living confirmed tracks as of the last update (those that
        missed at most ``max_misses`` windows; None: all), ordered by id."""
        out = []
        for t in sorted((t for t in self._tracks if t.id is not None
                         and (max_misses is None or t.misses <= max_misses)),
                        key=lambda t: t.id):
            x, y, z = (float(v) for v in t.direction)
            out.append(TrackedSource(
                id=t.id, azimuth=math.atan2(y, x),
                elevation=math.asin(max(-1.0, min(1.0, z))),
                elevation_known=self.elevation_known, confidence=t.confidence,
                front_back_ambiguous=t.ambiguous, direction=(x, y, z), hits=t.hits,
                misses=t.misses))
        return out

    # ---------------------------------------------------------------- steps
    def _vector(self, e: DoaEstimate) -> np.ndarray:
        return unit_vector(e.azimuth, e.elevation if self.elevation_known else 0.0)

    def _step(self, estimates: Sequence[DoaEstimate], frame_rotation: np.ndarray | None) -> None:
        p = self.params
        rot = None if frame_rotation is None else np.asarray(frame_rotation, float)
        for t in self._tracks:
            if rot is not None and not t.ambiguous:
                t.direction, t.velocity = rot @ t.direction, rot @ t.velocity
            if p.velocity_gain > 0.0:  # predict
                d = _normalised(t.direction + t.velocity, t.direction)
                t.direction, t.velocity = self._front(d, _tangent(t.velocity, d), t.ambiguous)
        vecs = [self._vector(e) for e in estimates]
        free = list(range(len(estimates)))
        confirmed = [t for t in self._tracks if t.id is not None]
        tentative = [t for t in self._tracks if t.id is None]
        paired: dict[int, int] = {}           # id(track) -> estimate index
        for group in (confirmed, tentative):  # the matching cascade
            for ti, ei in self._assign(group, [vecs[i] for i in free],
                                       [estimates[i].front_back_ambiguous for i in free]):
                paired[id(group[ti])] = free[ei]
            free = [i for i in free if i not in paired.values()]
        survivors = []
        for t in self._tracks:
            ei = paired.get(id(t))
            if t.id is None:
                t.history.append(ei is not None)
            if ei is not None:
                self._hit(t, vecs[ei], estimates[ei])
            else:
                t.misses += 1
                t.confidence *= 1.0 - p.smoothing
                t.velocity = 0.5 * t.velocity
            if t.id is None:
                hits = sum(t.history)
                if hits >= p.confirm_hits:
                    self._confirm(t)
                elif hits + (p.confirm_window - len(t.history)) < p.confirm_hits:
                    continue  # can no longer be confirmed within its first n windows
            elif t.misses >= p.max_misses:
                continue
            survivors.append(t)
        for i in free:  # births
            e = estimates[i]
            if e.confidence < p.birth_confidence:
                continue
            v, w = self._front(vecs[i], np.zeros(3), e.front_back_ambiguous)
            t = _Track(v, w, float(e.confidence), bool(e.front_back_ambiguous), history=[True])
            if p.confirm_hits <= 1:
                self._confirm(t)
            survivors.append(t)
        self._tracks = survivors

    def _confirm(self, t: _Track) -> None:
        t.id = self._next_id
        self._next_id = (self._next_id + 1) % ID_MODULUS or FIRST_ID
        t.history = []

    def _assign(self, tracks: list[_Track], vecs: list[np.ndarray],
                ambiguous: list[bool]) -> list[tuple[int, int]]:
        """Optimal pairs (track index, estimate index) within the gate."""
        if not tracks or not vecs:
            return []
        T = np.stack([t.direction for t in tracks])
        E = np.stack(vecs)
        amb = np.array([t.ambiguous for t in tracks])[:, None] | np.array(ambiguous)[None, :]
        cost = np.where(amb, angle_between(T[:, None], E[None], True),
                        angle_between(T[:, None], E[None]))
        big = 10.0 * math.pi  # beyond any angle: a pair outside the gate
        rows, cols = linear_sum_assignment(np.where(cost <= self._gate, cost, big))
        return [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] <= self._gate]

    def _hit(self, t: _Track, v: np.ndarray, e: DoaEstimate) -> None:
        a, b = self.params.smoothing, self.params.velocity_gain
        amb = t.ambiguous or e.front_back_ambiguous
        p = t.direction  # the prediction
        if amb and float(angle_between(p, mirror_front_back(v))) < float(angle_between(p, v)):
            v = mirror_front_back(v)  # the estimate's image nearer the track
        d = _normalised((1.0 - a) * p + a * v, v)
        w = _tangent(t.velocity + b * _tangent(v - p, p), d) if b > 0.0 else t.velocity
        t.direction, t.velocity = self._front(d, w, amb)
        t.confidence = (1.0 - a) * t.confidence + a * float(e.confidence)
        t.ambiguous = amb
        t.hits += 1
        t.misses = 0

    @staticmethod
    def _front(v: np.ndarray, w: np.ndarray, ambiguous: bool) -> tuple[np.ndarray, np.ndarray]:
        """Direction ``v`` and velocity ``w``, or their mirror images if
        ambiguous and ``v`` points backwards."""
        if ambiguous and v[0] < 0:
            return mirror_front_back(v), mirror_front_back(w)
        return v, w
