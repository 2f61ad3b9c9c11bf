"""Tracked sound sources: the tracker (births, deaths, identities, folding),
on hand-made sequences whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from av_perception.doa.classic import DoaEstimate
from av_perception.doa.stream import DoaResult
from av_perception.doa.tracker import (SourceTracker, TrackerParams, angle_between, unit_vector,
                                       yaw_rotation)
from av_perception.errors import ConfigError

HOP_NS = 100_000_000
R = math.radians


def window(k: int, *azimuths_deg: float, ambiguous: bool = False, elevation_deg: float = 0.0,
           confidence: float = 0.8) -> DoaResult:
    """Window k (0.1 s hop) with estimates at these azimuths [deg]."""
    return DoaResult(k * HOP_NS, [DoaEstimate(R(a), R(elevation_deg), confidence, ambiguous)
                                  for a in azimuths_deg], not azimuths_deg, -30.0)


def run(tracker: SourceTracker, frames: list[tuple[float, ...]], start: int = 0,
        **kw) -> list[list]:
    return [tracker.update(window(start + k, *az, **kw)) for k, az in enumerate(frames)]


def deg(az: float) -> float:
    return math.degrees(az)


def test_birth_after_k_hits_within_n_windows():
    p = TrackerParams(confirm_hits=3, confirm_window=4)
    t = SourceTracker(p)
    out = run(t, [(40,), (41,), (39,)])
    assert [len(o) for o in out] == [0, 0, 1]
    assert out[2][0].id == 1 and abs(deg(out[2][0].azimuth) - 40) < 1.5
    # 3 of 4 with a gap confirms; 1 hit in 3 windows can no longer reach 3 of 4
    t = SourceTracker(p)
    assert [len(o) for o in run(t, [(10,), (), (11,), (10,)])] == [0, 0, 0, 1]
    t = SourceTracker(p)
    assert [len(o) for o in run(t, [(10,), (), (), (10,), (10,)])] == [0] * 5


def test_death_after_m_misses_and_silent_windows_count():
    t = SourceTracker(TrackerParams(confirm_hits=2, confirm_window=2, max_misses=3))
    run(t, [(0,), (0,)])
    assert [s.id for s in t.confirmed()] == [1]
    out = run(t, [(), ()], start=2)
    assert [o[0].misses for o in out] == [1, 2]          # coasting, still published
    assert out[-1][0].confidence < 0.8 * 0.5
    assert t.update(DoaResult(4 * HOP_NS, [], True, -90.0)) == []   # silent: the 3rd miss
    # a new source there later is a new track, with a new id
    out = run(t, [(0,), (0,)], start=5)
    assert [s.id for s in out[-1]] == [2]


def test_gap_in_the_stream_counts_as_misses():
    t = SourceTracker(TrackerParams(confirm_hits=1, confirm_window=1, max_misses=3), hop=0.1)
    t.update(window(0, 20))
    assert t.update(window(2, 20))[0].id == 1     # one window missing: 1 miss, then a hit
    assert t.update(window(6, 20))[0].id == 2     # three missing: the track died


def test_two_sources_kept_apart_with_estimates_in_any_order():
    t = SourceTracker(TrackerParams(confirm_hits=2, confirm_window=3))
    rng = np.random.default_rng(0)
    for k in range(30):
        pair = [60 + rng.normal(0, 3), -45 + rng.normal(0, 3)]
        t.update(window(k, *(pair if k % 2 else pair[::-1])))   # rank swaps every window
        conf = t.confirmed()
        if k >= 1:
            assert {s.id for s in conf} == {1, 2}
            by_id = {s.id: deg(s.azimuth) for s in conf}
            assert abs(by_id[1] - by_id[2]) > 80   # one track per source, never merged


def test_ids_stable_through_a_crossing_with_the_velocity_term():
    """Two sources cross (2 deg per window each way); at the crossing the
    estimator sees one peak. With a velocity term the ids stay on their
    sources; a constant-direction model swaps them."""
    frames = []
    for k in range(30):
        a, b = -30 + 2 * k, 30 - 2 * k
        frames.append((a,) if abs(a - b) < 6 else (a, b))

    def ids_after(params):
        t = SourceTracker(params)
        out = run(t, frames)
        first = {s.id: deg(s.azimuth) for s in out[5]}
        last = {s.id: deg(s.azimuth) for s in out[-1]}
        src_a_first = min(first, key=first.get)   # source a starts on the right (negative)
        return src_a_first, max(last, key=last.get), set(first) == set(last)

    start, end, same = ids_after(TrackerParams(confirm_hits=2, confirm_window=2,
                                               smoothing=0.6, velocity_gain=0.3))
    assert same and start == end                  # source a ends at +28 under its own id
    start, end, same = ids_after(TrackerParams(confirm_hits=2, confirm_window=2,
                                               smoothing=0.6, velocity_gain=0.0))
    assert not (same and start == end)            # the test can tell a swap


def test_turn_in_place_keeps_ids_within_the_gate_or_with_the_rotation():
    """The robot turns by 35 deg between windows: every source jumps by
    -35 deg in the array frame."""
    before, after = [(50, -60)] * 5, [(15, -95)] * 5
    wide = SourceTracker(TrackerParams(gate_deg=40, confirm_hits=2, confirm_window=2))
    out = run(wide, before + after)
    assert [s.id for s in out[4]] == [s.id for s in out[-1]] == [1, 2]
    narrow = SourceTracker(TrackerParams(gate_deg=20, confirm_hits=2, confirm_window=2,
                                         max_misses=3))
    out = run(narrow, before + after)
    assert {s.id for s in out[-1]} == {3, 4}      # re-born under new ids
    known = SourceTracker(TrackerParams(gate_deg=20, confirm_hits=2, confirm_window=2))
    run(known, before)
    out = known.update(window(5, 15, -95), frame_rotation=yaw_rotation(R(35)))
    assert [(s.id, round(deg(s.azimuth))) for s in out] == [(1, 15), (2, -95)]


def test_front_back_folding_for_an_ambiguous_array():
    t = SourceTracker(TrackerParams(confirm_hits=2, confirm_window=2, gate_deg=10,
                                    smoothing=0.5))
    # a source near 90 deg folds to 88 or 86: one track, in the front half
    out = run(t, [(88,), (86,), (88,), (86,)], ambiguous=True)
    assert [s.id for s in out[-1]] == [1] and out[-1][0].front_back_ambiguous
    assert out[-1][0].direction[0] >= 0 and 85 < deg(out[-1][0].azimuth) <= 90
    # an estimate given unfolded (94 deg) is the mirror of 86: the same track
    out = run(t, [(94,), (94,)], start=4, ambiguous=True)
    assert [s.id for s in out[-1]] == [1] and deg(out[-1][0].azimuth) <= 90
    # an unambiguous array keeps 86 and 94+8 apart
    t = SourceTracker(TrackerParams(confirm_hits=2, confirm_window=2, gate_deg=10))
    run(t, [(80, 102), (80, 102)])
    assert len(t.confirmed()) == 2


def test_ambiguous_track_moving_through_the_side_stays_in_the_front_half():
    """A source passing 90 deg is seen folded (bouncing back from 90); the
    velocity's prediction past the side is folded back too."""
    t = SourceTracker(TrackerParams(confirm_hits=2, confirm_window=2, velocity_gain=0.5,
                                    smoothing=0.7))
    truth = range(60, 121, 4)
    frames = [(90 - abs(90 - a),) for a in truth]
    for out in run(t, frames, ambiguous=True):
        for s in out:
            assert s.direction[0] >= 0 and abs(deg(s.azimuth)) <= 90 + 1e-9
    assert [s.id for s in t.confirmed()] == [1]


def test_a_newborn_track_never_takes_a_confirmed_tracks_estimate():
    """Matching cascade: a tentative track nearer the estimate than the
    confirmed one does not take it."""
    t = SourceTracker(TrackerParams(confirm_hits=3, confirm_window=3, gate_deg=20))
    run(t, [(0,), (0,), (0,)])
    t.update(window(3, 0, 8))           # 8 deg: a tentative track
    (s,) = t.update(window(4, 5))       # 3 deg from the tentative one, 5 from the confirmed
    assert s.id == 1 and s.misses == 0


def test_elevation_known_is_passed_through():
    flat = SourceTracker(TrackerParams(confirm_hits=1, confirm_window=1), elevation_known=False)
    s = flat.update(window(0, 30, elevation_deg=40))[0]
    assert not s.elevation_known and s.elevation == 0.0 and s.direction[2] == 0.0
    full = SourceTracker(TrackerParams(confirm_hits=1, confirm_window=1), elevation_known=True)
    s = full.update(window(0, 30, elevation_deg=40))[0]
    assert s.elevation_known and abs(deg(s.elevation) - 40) < 1e-6
    assert np.allclose(s.direction, unit_vector(R(30), R(40)))


def test_ids_increase_and_are_never_reused_after_reset():
    t = SourceTracker(TrackerParams(confirm_hits=1, confirm_window=1, max_misses=1))
    ids = []
    for k in range(6):
        out = t.update(window(2 * k, 10 * k))
        ids += [s.id for s in out]
        t.update(window(2 * k + 1))
    t.reset()
    ids += [s.id for s in t.update(window(100, 0))]
    assert ids == list(range(1, 8))


def test_stamps_going_back_start_afresh():
    t = SourceTracker(TrackerParams(confirm_hits=1, confirm_window=1))
    t.update(window(10, 0))
    assert [s.id for s in t.update(window(3, 0))] == [2]


def test_bad_parameters_are_refused():
    for kw in ({'confirm_hits': 4, 'confirm_window': 3}, {'gate_deg': 0.0},
               {'max_misses': 0}, {'smoothing': 0.0}, {'velocity_gain': 1.5}):
        with pytest.raises(ConfigError):
            TrackerParams(**kw)


def test_angle_between_folds_for_ambiguous_arrays():
    a, b = unit_vector(R(80)), unit_vector(R(100))
    assert abs(deg(float(angle_between(a, b))) - 20) < 1e-9
    assert abs(float(angle_between(a, b, ambiguous=True))) < 1e-9
