"""Tracked sound sources: the tracker (births, deaths, identities, folding)
and the track metrics, on hand-made sequences whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from av_perception.direction.classic import DoaEstimate
from av_perception.direction.stream import DoaResult
from av_perception.direction.track_metrics import (TruthWindow, estimate_outputs, rank_ids,
                                                   score_tracks, track_outputs, window_truth)
from av_perception.direction.tracker import (SourceTracker, TrackerParams, angle_between,
                                             unit_vector, yaw_rotation)
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


def test_weak_estimates_extend_tracks_but_start_none():
    t = SourceTracker(TrackerParams(confirm_hits=2, confirm_window=2, birth_confidence=0.5))
    run(t, [(30,), (30,)], confidence=0.3)
    assert t.confirmed() == []
    run(t, [(30,), (30,)], start=2, confidence=0.7)
    out = run(t, [(31,), (29,), (30,)], start=4, confidence=0.3)
    assert [[(s.id, s.misses) for s in o] for o in out] == [[(1, 0)]] * 3


def test_death_after_m_misses_and_silent_windows_count():
    t = SourceTracker(TrackerParams(confirm_hits=2, confirm_window=2, max_misses=3, coast=3))
    run(t, [(0,), (0,)])
    assert [s.id for s in t.confirmed()] == [1]
    out = run(t, [(), ()], start=2)
    assert [o[0].misses for o in out] == [1, 2]          # coasting, still published
    assert out[-1][0].confidence < 0.8 * 0.5
    assert t.update(DoaResult(4 * HOP_NS, [], True, -90.0)) == []   # silent: the 3rd miss
    # a new source there later is a new track, with a new id
    out = run(t, [(0,), (0,)], start=5)
    assert [s.id for s in out[-1]] == [2]


def test_a_pause_shorter_than_m_keeps_the_id_but_is_not_reported_beyond_coast():
    t = SourceTracker(TrackerParams(confirm_hits=2, confirm_window=2, max_misses=8, coast=1))
    out = run(t, [(30,), (30,), (), (), (), (31,)])
    assert [[s.id for s in o] for o in out] == [[], [1], [1], [], [], [1]]
    assert [s.misses for s in t.confirmed()] == [0]
    run(t, [()] * 3, start=6)
    assert t.update(window(9)) == [] and [s.misses for s in t.confirmed()] == [4]


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


def test_for_array_knows_elevation_only_for_3d_arrays_and_methods_that_estimate_it():
    from av_perception.arrays import ArrayGeometry, load_array
    pos = np.array([[0.04, 0.04, 0.04], [0.04, -0.04, -0.04], [-0.04, 0.04, -0.04],
                    [-0.04, -0.04, 0.04]])
    tetra = ArrayGeometry('tetra4', 'mic_array', 16000, 'planar', tuple('abcd'), pos)
    assert SourceTracker.for_array(tetra, 'srp').elevation_known
    assert not SourceTracker.for_array(tetra, 'learned').elevation_known
    assert not SourceTracker.for_array(load_array('respeaker4'), 'normmusic').elevation_known
    assert not SourceTracker.for_array(load_array('binaural'), 'gcc').elevation_known
    assert SourceTracker.for_array(load_array('binaural'), 'gcc').params.birth_confidence == 0.3
    assert SourceTracker.for_array(tetra, 'srp').params == TrackerParams()


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
               {'max_misses': 0}, {'smoothing': 0.0}, {'velocity_gain': 1.5},
               {'birth_confidence': -0.1}, {'coast': -1}):
        with pytest.raises(ConfigError):
            TrackerParams(**kw)


def test_angle_between_folds_for_ambiguous_arrays():
    a, b = unit_vector(R(80)), unit_vector(R(100))
    assert abs(deg(float(angle_between(a, b))) - 20) < 1e-9
    assert abs(float(angle_between(a, b, ambiguous=True))) < 1e-9


# ------------------------------------------------------------------ metrics
def truth_seq(n: int, sources: list[tuple[int, float]]) -> list:
    return [(k * HOP_NS, [(i, R(a), 0.0) for i, a in sources]) for k in range(n)]


def test_perfect_tracks_score_full_recall_and_no_switches():
    truth = truth_seq(600, [(7, 30.0), (9, -60.0)])   # one minute
    outputs = [(s, [(1, R(32), 0.0), (2, R(-61), 0.0)]) for s, _ in truth]
    sc = score_tracks(outputs, truth, hop=0.1).summary()
    assert sc['recall'] == 1.0 and sc['id_switches'] == 0 and sc['false_outputs'] == 0
    assert sc['minutes'] == 1.0 and sc['median_error_deg'] == 1.5 and sc['mota'] == 1.0


def test_known_id_switches_fragmentation_and_false_tracks():
    truth = truth_seq(10, [(0, 0.0), (1, 90.0)])
    outs = []
    for k, (s, _) in enumerate(truth):
        o = [(5, R(1), 0.0)]
        # source 1: id 6, then (windows 4-5) nothing, then id 8: one switch, one fragmentation
        if k < 4:
            o.append((6, R(91), 0.0))
        elif k >= 6:
            o.append((8, R(89), 0.0))
        if k in (2, 3, 7):     # a spurious output far from both: two false runs
            o.append((3, R(-120), 0.0))
        outs.append((s, o))
    sc = score_tracks(outs, truth, hop=0.1)
    assert (sc.id_switches, sc.fragmentations, sc.false_outputs, sc.false_tracks) == (1, 1, 3, 2)
    assert sc.truths == 20 and sc.matched == 18
    # ids: 0 <-> 5 for 10 windows, 1 <-> 6 for 4 (not 8, 4 windows): IDTP 14
    assert sc.idtp == 14 and sc.summary()['idf1'] == round(2 * 14 / (20 + 18 + 3), 4)
    assert (sc + sc).idtp == 28 and (sc + sc).errors_deg == sc.errors_deg * 2


def test_idf1_pairs_ids_by_overlap_not_by_number():
    truth = truth_seq(10, [(0, 0.0), (1, 90.0)])
    outs = [(s, [(2, R(1), 0.0), (1, R(91), 0.0)]) for s, _ in truth]
    assert score_tracks(outs, truth, hop=0.1).summary()['idf1'] == 1.0


def test_rank_ids_of_alternating_estimates_switch_every_window():
    truth = truth_seq(10, [(0, 0.0), (1, 90.0)])
    est = [(s, [(R(0), 0.0), (R(90), 0.0)] if k % 2 else [(R(90), 0.0), (R(0), 0.0)])
           for k, (s, _) in enumerate(truth)]
    sc = score_tracks(rank_ids(est), truth, hop=0.1)
    assert sc.matched == 20 and sc.id_switches == 18     # both sources, every window but the first
    assert sc.summary()['idf1'] == 0.5                    # each id is right half of the time
    # gated: an output outside the gate is a miss and a false output
    sc = score_tracks([(s, [(0, R(25), 0.0)]) for s, _ in truth_seq(1, [])],
                      truth_seq(1, [(0, 0.0)]), hop=0.1, gate_deg=20)
    assert (sc.matched, sc.false_outputs) == (0, 1)


def test_outputs_of_estimates_and_of_a_tracker():
    results = [window(k, 10, 70, confidence=0.6) for k in range(3)]
    results[0].sources[0].confidence = 0.2     # too weak for the confident outputs
    results[1].sources[1].confidence = 0.9     # the second estimate is the stronger one
    assert [[(i, round(deg(a))) for i, a, _ in o] for _, o in estimate_outputs(results)] == \
        [[(0, 10), (1, 70)]] * 3
    strong = estimate_outputs(results, min_confidence=0.5)
    assert [[(i, round(deg(a))) for i, a, _ in o] for _, o in strong] == \
        [[(0, 70)], [(0, 70), (1, 10)], [(0, 10), (1, 70)]]
    t = SourceTracker(TrackerParams(confirm_hits=2, confirm_window=2, birth_confidence=0.0))
    out = track_outputs(t, results)
    assert [s for s, _ in out] == [r.stamp_ns for r in results]
    assert [[i for i, _, _ in o] for _, o in out] == [[], [1, 2], [1, 2]]


def test_metrics_fold_front_back_and_respect_dont_care():
    truth = [TruthWindow(0, ((0, R(120), 0.0),), ignore=((R(-30), 0.0),))]
    outs = [(0, [(1, R(60), 0.0), (2, R(-31), 0.0)])]
    amb = score_tracks(outs, truth, hop=0.1, ambiguous=True)
    assert (amb.matched, amb.false_outputs) == (1, 0)
    plain = score_tracks(outs, truth, hop=0.1)
    assert (plain.matched, plain.false_outputs) == (0, 1)


def test_window_truth_majority_direction_and_partial_sources():
    # 0.1 s periods; source 0 turns from 10 to 40 deg at 0.2 s; source 1
    # sounds 0.1 s of the 0.5 s window
    periods = [(0, [(0, R(10), 0.0)]), (HOP_NS, [(0, R(10), 0.0), (1, R(-90), 0.0)]),
               (2 * HOP_NS, [(0, R(40), 0.0)]), (3 * HOP_NS, [(0, R(40), 0.0)]),
               (4 * HOP_NS, [(0, R(40), 0.0)])]
    (w,) = window_truth(periods, 5 * HOP_NS, [(0, 5 * HOP_NS)])
    assert [(i, round(deg(a))) for i, a, _ in w.sources] == [(0, 40)]
    assert sorted(round(deg(a)) for a, _ in w.ignore) == [-90, 10]
    # nothing sounds: an empty truth (outputs there are false)
    (w,) = window_truth([(0, [])], HOP_NS, [(0, HOP_NS)])
    assert w.sources == () and w.ignore == ()


def test_the_node_runs_the_tracker_the_benchmark_chose_and_scored():
    """TUNED_PARAMS (what sound_direction runs) is what bench/direction_tracking.py
    chose on train rooms and scored (bench/results/direction_tracking.json):
    a re-run whose sweep picks other values must change both together."""
    import json
    from dataclasses import asdict
    from pathlib import Path

    from av_perception.direction.tracker import TUNED_PARAMS
    results = Path(__file__).resolve().parents[1] / 'bench' / 'results'
    doc = json.loads((results / 'direction_tracking.json').read_text())
    for role in ('array', 'binaural'):
        r = doc[role]
        assert asdict(TUNED_PARAMS[(r['array'], r['method'])]) == r['params'], role
    # the 4-mic array's other method, swept and scored alone
    r = json.loads((results / 'direction_tracking_srp_onset.json').read_text())['array']
    assert r['method'] == 'srp_onset'
    assert asdict(TUNED_PARAMS[(r['array'], r['method'])]) == r['params']
    # the binaural head's other method (config/sim.yaml's), swept at its one source
    r = json.loads((results / 'direction_tracking_gcc_onset.json').read_text())['binaural']
    assert r['method'] == 'gcc_onset' and r['sources_per_window'] == 1
    assert asdict(TUNED_PARAMS[(r['array'], r['method'])]) == r['params']


def test_the_binaural_learned_model_confirms_tracks_at_its_confidence():
    """The binaural head's learned models get the head's tuned parameters,
    not the 4-mic array's defaults: their estimates carry confidences around
    0.36 (the motion model's median on one-source segments), below the
    defaults' birth confidence of 0.5, which left the rotation node's
    direction topic nearly always empty. Two agreeing estimates confirm a
    track now; with the defaults none ever would."""
    from av_perception.arrays import load_array
    head = load_array('binaural')
    est = DoaEstimate(math.radians(40.0), 0.0, 0.36, True)
    learned = SourceTracker.for_array(head, 'learned')
    defaults = SourceTracker(TrackerParams(), False)
    out = [(learned.update(DoaResult(k * 500_000_000 + 1, [est], False, -20.0)),
            defaults.update(DoaResult(k * 500_000_000 + 1, [est], False, -20.0)))
           for k in range(6)]
    assert [len(a) for a, _ in out] == [0, 1, 1, 1, 1, 1]
    assert all(len(b) == 0 for _, b in out)
    assert math.degrees(out[-1][0][0].azimuth) == pytest.approx(40.0, abs=0.5)
