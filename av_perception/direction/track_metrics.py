"""Scoring tracked sound sources against ground truth with identities
(CLEAR-MOT style: Bernardin & Stiefelhagen 2008), the same for a tracker's
output and for untracked per-window estimates (:func:`rank_ids`).

Inputs are per window: outputs ``(stamp_ns, [(id, azimuth, elevation)])``
and ground truth :class:`TruthWindow` (or ``(stamp_ns, [(id, azimuth,
elevation)])``), angles in radians in the array frame (REP 103). Only the
windows that have ground truth are scored; ids are only compared within one
call (score each stream separately and add the :class:`TrackScores`).

Per scored window, outputs and true sources are paired: a true source keeps
the output id it was paired with last if that output is still within the
gate, the rest are paired by an optimal assignment on the angle, within the
gate. Then:

- recall: share of true source-windows paired with an output;
- false outputs: outputs paired with no true source and not within the gate
  of a direction the truth marks as "don't care" (a source that sounds
  during part of the window only, or the direction it had before a turn);
  a false track is a run of consecutive scored windows in which one output
  id is false;
- ID switch: a true source paired with an output id other than the one it
  was last paired with;
- fragmentation: a true source paired again after one or more windows in
  which it was in the truth but unpaired;
- error: the angle between each paired output and its true source;
- IDF1 (Ristani et al. 2016): the true and output ids are paired once for
  the whole stream, so as to maximise the windows in which a true source
  and its output are within the gate (IDTP); IDF1 = 2 IDTP / (true
  source-windows + outputs that are paired or false): identity kept over
  time, where MOTA counts per-window errors.

Rates are per minute of scored windows (windows x hop).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
from scipy.optimize import linear_sum_assignment

from av_perception.direction.stream import DoaResult
from av_perception.direction.tracker import SourceTracker, angle_between, unit_vector

#: (id, azimuth [rad], elevation [rad]) of one source in one window.
Labelled = tuple[int, float, float]
#: Default gate of a correct output [deg].
GATE_DEG = 20.0


@dataclass(frozen=True)
class TruthWindow:
    """Ground truth of one window.

    Attributes:
        stamp_ns: the window's stamp (that of the output it scores) [ns].
        sources: (id, azimuth, elevation) of each source that sounds in the
            window; ids are stable per source.
        ignore: (azimuth, elevation) [rad] of directions where an output is
            neither right nor false.
    """

    stamp_ns: int
    sources: tuple[Labelled, ...]
    ignore: tuple[tuple[float, float], ...] = ()


@dataclass
class TrackScores:
    """Counts over scored windows (add the scores of several streams with ``+``)."""

    windows: int = 0
    seconds: float = 0.0            # scored time [s]: windows x hop
    truths: int = 0                 # true source-windows
    matched: int = 0
    false_outputs: int = 0          # output-windows paired with nothing
    false_tracks: int = 0           # runs of consecutive false windows of one output id
    id_switches: int = 0
    fragmentations: int = 0
    idtp: int = 0                   # windows of a true source with its stream-long output id
    errors_deg: list = field(default_factory=list)  # of the paired outputs

    def __add__(self, other: TrackScores) -> TrackScores:
        return TrackScores(*(getattr(self, f.name) + getattr(other, f.name)
                             for f in fields(self)))

    def summary(self) -> dict:
        """Rates and shares: recall, precision, MOTA (1 - (misses + false
        outputs + ID switches) / true source-windows), IDF1, per-minute
        counts and the median error [deg] of the paired outputs."""
        minutes = self.seconds / 60.0

        def per_min(n: int) -> float | None:
            return round(n / minutes, 2) if minutes > 0 else None

        def share(a: int, b: int) -> float | None:
            return round(a / b, 4) if b else None

        misses = self.truths - self.matched
        return {
            'recall': share(self.matched, self.truths),
            'precision': share(self.matched, self.matched + self.false_outputs),
            'mota': (round(1.0 - (misses + self.false_outputs + self.id_switches) / self.truths,
                           4) if self.truths else None),
            'idf1': share(2 * self.idtp, self.truths + self.matched + self.false_outputs),
            'id_switches_per_min': per_min(self.id_switches),
            'false_tracks_per_min': per_min(self.false_tracks),
            'false_outputs_per_min': per_min(self.false_outputs),
            'fragmentations_per_min': per_min(self.fragmentations),
            'median_error_deg': (round(float(np.median(self.errors_deg)), 2)
                                 if self.errors_deg else None),
            'id_switches': self.id_switches, 'false_tracks': self.false_tracks,
            'fragmentations': self.fragmentations, 'truths': self.truths,
            'matched': self.matched, 'false_outputs': self.false_outputs,
            'windows': self.windows, 'minutes': round(minutes, 3)}


def rank_ids(windows: Sequence[tuple[int, Sequence[tuple[float, float]]]]
             ) -> list[tuple[int, list[Labelled]]]:
    """Untracked per-window estimates labelled as a per-source message
    consumer could: id = the estimate's rank in its window (0 the strongest).

    Args:
        windows: (stamp_ns, [(azimuth, elevation)] in the estimator's order).
    """
    return [(stamp, [(i, float(az), float(el)) for i, (az, el) in enumerate(est)])
            for stamp, est in windows]


def estimate_outputs(results: Sequence[DoaResult], min_confidence: float | None = None
                     ) -> list[tuple[int, list[Labelled]]]:
    """A stream's untracked per-window estimates as outputs, id = rank: in
    the estimator's order (what SoundDirection consumers had), or, with
    ``min_confidence``, only those at least that confident, ranked by
    confidence (the best a consumer can do without a tracker)."""
    out = []
    for r in results:
        est = list(r.sources)
        if min_confidence is not None:
            est = sorted((e for e in est if e.confidence >= min_confidence),
                         key=lambda e: -e.confidence)
        out.append((r.stamp_ns, [(e.azimuth, e.elevation) for e in est]))
    return rank_ids(out)


def track_outputs(tracker: SourceTracker, results: Sequence[DoaResult],
                  rotations: Sequence[np.ndarray | None] | None = None
                  ) -> list[tuple[int, list[Labelled]]]:
    """A stream's windows through a (fresh) tracker: what it reports per
    window, as outputs; ``rotations``: each window's ``frame_rotation``."""
    rotations = rotations if rotations is not None else [None] * len(results)
    out = []
    for r, rot in zip(results, rotations):
        out.append((r.stamp_ns, [(s.id, s.azimuth, s.elevation)
                                 for s in tracker.update(r, rot)]))
    return out


def _vectors(dirs: Sequence[tuple[float, float]], use_elevation: bool) -> np.ndarray:
    return np.array([unit_vector(az, el if use_elevation else 0.0) for az, el in dirs]
                    ).reshape(-1, 3)


def score_tracks(outputs: Sequence[tuple[int, Sequence[Labelled]]],
                 truth: Sequence[TruthWindow | tuple[int, Sequence[Labelled]]],
                 hop: float, gate_deg: float = GATE_DEG, ambiguous: bool = False,
                 use_elevation: bool = False) -> TrackScores:
    """Score one stream's outputs against its ground truth.

    Args:
        outputs: (stamp_ns, [(id, azimuth, elevation)]) per window; a window
            missing here is one without outputs.
        truth: per window to score (any order); stamps not in ``outputs``
            score an empty output.
        hop: time a window stands for [s] (the time between windows).
        gate_deg: largest angle of a correct output [deg].
        ambiguous: front/back ambiguous array: a direction and its mirror
            across the y-z plane count as the same.
        use_elevation: compare elevations too (an array that resolves
            them); False: azimuths only.
    """
    gate = math.radians(gate_deg)
    by_stamp = {int(s): list(o) for s, o in outputs}
    tw = sorted((t if isinstance(t, TruthWindow) else TruthWindow(int(t[0]), tuple(t[1]))
                 for t in truth), key=lambda t: t.stamp_ns)
    out = TrackScores()
    last: dict[int, int] = {}          # true id -> output id it was last paired with
    paired_before: set[int] = set()    # true ids paired at least once
    was_paired: dict[int, bool] = {}   # true id -> paired in its last window in the truth
    false_prev: set[int] = set()       # output ids false in the previous scored window
    together: dict[tuple[int, int], int] = {}   # (true id, output id) -> windows within the gate
    for t in tw:
        outs = by_stamp.get(t.stamp_ns, [])
        out_v = _vectors([(az, el) for _, az, el in outs], use_elevation)
        gt_v = _vectors([(az, el) for _, az, el in t.sources], use_elevation)
        cost = (angle_between(gt_v[:, None], out_v[None], ambiguous)
                if len(out_v) and len(gt_v) else np.zeros((len(gt_v), len(out_v))))
        for gi, oi in zip(*np.nonzero(cost <= gate)):
            key = (t.sources[gi][0], outs[oi][0])
            together[key] = together.get(key, 0) + 1
        pairs: dict[int, int] = {}     # truth index -> output index
        for gi, (gid, _, _) in enumerate(t.sources):   # keep last window's pairs (CLEAR-MOT)
            for oi, (oid, _, _) in enumerate(outs):
                if last.get(gid) == oid and cost[gi, oi] <= gate and oi not in pairs.values():
                    pairs[gi] = oi
                    break
        rest_g = [g for g in range(len(gt_v)) if g not in pairs]
        rest_o = [o for o in range(len(out_v)) if o not in pairs.values()]
        if rest_g and rest_o:
            sub = cost[np.ix_(rest_g, rest_o)]
            rows, cols = linear_sum_assignment(np.where(sub <= gate, sub, 10.0 * math.pi))
            for r, c in zip(rows, cols):
                if sub[r, c] <= gate:
                    pairs[rest_g[r]] = rest_o[c]
        for gi, (gid, _, _) in enumerate(t.sources):
            hit = gi in pairs
            if hit:
                oid = outs[pairs[gi]][0]
                if gid in last and last[gid] != oid:
                    out.id_switches += 1
                if gid in paired_before and not was_paired.get(gid, True):
                    out.fragmentations += 1
                last[gid] = oid
                paired_before.add(gid)
                out.errors_deg.append(math.degrees(float(cost[gi, pairs[gi]])))
            was_paired[gid] = hit
        unpaired = [o for o in range(len(out_v)) if o not in pairs.values()]
        ign = _vectors(list(t.ignore), use_elevation)
        false_now = set()
        for o in unpaired:
            if len(ign) and float(np.min(angle_between(out_v[o], ign, ambiguous))) <= gate:
                continue
            false_now.add(outs[o][0])
            out.false_outputs += 1
        out.false_tracks += len(false_now - false_prev)
        false_prev = false_now
        out.windows += 1
        out.seconds += hop
        out.truths += len(gt_v)
        out.matched += len(pairs)
    if together:   # IDF1's one-to-one pairing of ids over the whole stream
        gids = sorted({g for g, _ in together})
        oids = sorted({o for _, o in together})
        m = np.array([[together.get((g, o), 0) for o in oids] for g in gids])
        rows, cols = linear_sum_assignment(-m)
        out.idtp = int(m[rows, cols].sum())
    return out


def window_truth(periods: Sequence[tuple[int, Sequence[Labelled]]], end_ns: int,
                 windows: Sequence[tuple[int, int]], min_share: float = 0.5,
                 same_rad: float = 1e-4) -> list[TruthWindow]:
    """Ground truth of analysis windows from ground truth over time.

    Args:
        periods: (stamp_ns, [(id, azimuth, elevation)]) in time order: the
            sources that sound from each stamp until the next one (``end_ns``
            for the last); an empty list: nothing sounds.
        end_ns: where the last period ends [ns].
        windows: (start_ns, end_ns) of each analysis window.
        min_share: a source is in a window's truth if it sounds for at least
            this share of the window; sounding for less, its directions are
            "don't care" (``TruthWindow.ignore``).
        same_rad: directions closer than this are the same [rad].

    Returns:
        Per window: each source that sounds long enough, at the direction it
        has for the longest part of the window (its other directions, e.g.
        before the robot turned, are "don't care").
    """
    stamps = [int(s) for s, _ in periods]
    ends = stamps[1:] + [int(end_ns)]
    out = []
    for w0, w1 in windows:
        length = max(1, w1 - w0)
        time_at: dict[int, dict[tuple[float, float], int]] = {}
        first = max(0, int(np.searchsorted(stamps, w0, side='right')) - 1)
        for k in range(first, len(stamps)):
            if stamps[k] >= w1:
                break
            overlap = min(ends[k], w1) - max(stamps[k], w0)
            if overlap <= 0:
                continue
            for sid, az, el in periods[k][1]:
                dirs = time_at.setdefault(int(sid), {})
                key = next((d for d in dirs if abs(math.remainder(d[0] - az, math.tau))
                            < same_rad and abs(d[1] - el) < same_rad), (float(az), float(el)))
                dirs[key] = dirs.get(key, 0) + overlap
        sources, ignore = [], []
        for sid, dirs in sorted(time_at.items()):
            main = max(dirs, key=dirs.get)
            if sum(dirs.values()) >= min_share * length:
                sources.append((sid, *main))
                ignore += [d for d in dirs if d != main]
            else:
                ignore += list(dirs)
        out.append(TruthWindow(int(w0), tuple(sources), tuple(ignore)))
    return out
