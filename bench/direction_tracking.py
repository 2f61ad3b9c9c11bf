"""Benchmark: tracked sound sources (av_perception.direction.tracker) against the
untracked per-window estimates that per-source SoundDirection consumers had (id = rank
in the window), scored by the same function (av_perception.direction.track_metrics).

Rooms: held-out rooms of the test split (never trained on) in which two
sources sound at once (the most the generator lets sound together,
SceneParams.max_active; a speech and a noise source: the classes of
bench/direction), Sabine RT60 0.2-0.8 s, SNR 0-30 dB, 16 robot poses of 0.5 s
(8 s) each; the robot turns in place (up to 45 deg) or drives between poses,
so the sources' directions in the array frame jump. Arrays: the 4-mic array
(SRP-PHAT, 2 sources per window; config/sim.yaml runs the node's default,
onset-weighted SRP-PHAT, which ``--array-method srp_onset`` scores) and the
binaural head (GCC-PHAT, 2 sources per window; config/sim.yaml asks it for
1). Windows of the array's ``doa_window`` every 0.1 s, through
StreamingDoa as the node runs them (confidence >= 0.1, silence gate -60 dBFS).

Ground truth: the bags' gt/sound_direction per 0.1 s chunk; identities come
from each room rebuilt from its seed (SceneJob.scene): each direction is
given the id of the scene's sounding source that lies in that direction
(only this adapter knows where ids come from; the scoring takes
(stamp, [(id, az, el)])). A window's truth: the sources that sound for at
least half of it, at the direction they have for most of it; a source
sounding for less, and a direction held for less (before a turn), are
"don't care". An output within 20 deg of a true source is correct.

Tracker parameters (gate, k of n, m, coast, velocity gain, birth
confidence) are chosen per array by a sweep on TRAIN-split rooms of the
same kind (maximum IDF1: identities kept over time; MOTA, which weighs an
ID switch like one missed window, chose trackers that report little),
never on the test rooms; the sweep is recorded in the JSON. Also scored:
the tracker told each turn (``frame_rotation`` from the true yaw, what
odometry would give), the same parameters; and, as a stronger untracked
baseline, the estimates at least as confident as the tracker's birth
confidence, ranked by confidence (the estimator's own order is not by
strength).

    .venv/bin/python bench/direction_tracking.py
    -> bench/results/direction_tracking.json
    .venv/bin/python bench/direction_tracking.py --array-method srp_onset
    -> bench/results/direction_tracking_srp_onset.json (the 4-mic array only,
       with the node's default method; the README's tracking row)
    .venv/bin/python bench/direction_tracking.py --binaural-method gcc_onset --sources 1
    -> bench/results/direction_tracking_gcc_onset.json (the binaural head only,
       with config/sim.yaml's method and its one source per window)
"""

from __future__ import annotations

import os

for _v in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_v, '1')

import argparse
import io
import itertools
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from av_perception.arrays import load_array
from av_perception.audio.chunk import AudioBlock
from av_perception.bag.io import read_bag, stamp_ns
from av_perception.bag.sources import source_readings
from av_perception.direction.dataset import assemble
from av_perception.direction.evaluate import HOP_SECONDS, make_estimator
from av_perception.direction.stream import DoaResult, StreamingDoa
from av_perception.direction.track_metrics import (GATE_DEG, TrackScores, TruthWindow,
                                                   estimate_outputs, score_tracks, track_outputs,
                                                   window_truth)
from av_perception.direction.tracker import (TUNED_PARAMS, SourceTracker, TrackerParams,
                                             angle_between, unit_vector, yaw_rotation)
from av_perception.sim.acoustics import rt60_sabine
from av_perception.sim.bags import CHUNK_SECONDS, SceneJob, simulate
from av_perception.robot import load_robot
from av_perception.sim.scene import Scene, SceneParams, direction_in_frame, generate_scene
from av_perception.sim.world import T0_NS

import rendered

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / 'results'
SEED = 2023
CLASSES = ('noise', 'speech')
#: robot poses per room (slots of 0.5 s: 8 s of audio per room)
POSES = 16
SLOT_NS = 500_000_000
PARAMS = SceneParams(snr_db=(0.0, 30.0), classes=CLASSES, poses=POSES)
RT60_RANGE = (0.2, 0.8)
#: rooms per split: test (scored), train (the parameter sweep)
ROOMS = {'test': 36, 'train': 24}
#: array role -> (method, sources per window)
PLAN = {'array': ('srp', 2), 'binaural': ('gcc', 2)}
STREAM_TOPICS = {'array': 'audio/raw', 'binaural': 'audio/binaural'}
#: the sweep's grid (on train rooms)
GRID = {'gate_deg': (45.0, 60.0),
        'k_of_n': ((2, 3), (3, 4), (4, 5)),
        'max_misses': (3, 8, 15, 30),
        'coast': (0, 1, 3),
        'smoothing': (0.5,),
        'velocity_gain': (0.0, 0.2),
        'birth_confidence': (0.3, 0.5)}


def pick_rooms(split: str, n: int) -> list[int]:
    """The first ``n`` rooms of ``split`` in which two sources sound and
    whose Sabine RT60 is in RT60_RANGE."""
    ids, i = [], 0
    while len(ids) < n:
        sc = generate_scene(i, split, SEED, PARAMS)
        if len(sc.active_sources) == 2 and RT60_RANGE[0] <= rt60_sabine(sc) <= RT60_RANGE[1]:
            ids.append(i)
        i += 1
    return ids


def prepare(cache: Path, jobs: int = 0) -> dict[str, list[Path]]:
    """Simulate each split's rooms into ``cache`` (those not there yet);
    returns split -> the rooms' bag folders."""
    out = {}
    for split, n in ROOMS.items():
        folder = rendered.fresh(cache / f'tracking_{split}')
        bags = {i: folder / f'{split}_{i:05d}' for i in pick_rooms(split, n)}
        todo = [i for i, b in bags.items() if not (b / 'metadata.yaml').is_file()]
        if todo:
            simulate(folder, 0, seed=SEED, split=split, snr_db=PARAMS.snr_db, poses=POSES,
                     ids=todo, classes=CLASSES, progress=io.StringIO(), jobs=jobs)
        out[split] = list(bags.values())
    return out


@dataclass
class Room:
    """One room's windows for one array: the estimates, their truth and
    the array frame's turn since the previous window."""

    name: str
    results: list[DoaResult]
    truth: list[TruthWindow]
    rotations: list[np.ndarray | None]


def scene_of(bag: Path, split: str) -> Scene:
    """The room a bag was rendered from, rebuilt from its seed."""
    sid = int(bag.name.rsplit('_', 1)[-1])
    scene = SceneJob(split, sid, SEED, str(bag.parent), POSES, PARAMS.snr_db,
                     classes=CLASSES).scene()
    if len(scene.poses) != POSES:
        raise RuntimeError(f'{bag} is not the benchmark\'s room {sid}')
    return scene


def slot_of(stamp: int, scene: Scene) -> int:
    return min(max(0, (stamp - T0_NS) // SLOT_NS), len(scene.poses) - 1)


def labelled(directions: list[tuple[float, float]], stamp: int, scene: Scene, mount
             ) -> list[tuple[int, float, float]]:
    """Ground-truth directions of one chunk with source ids: the index (in
    ``scene.sources``) of the sounding source that lies in each direction
    from the array at the chunk's pose. This is the only place that knows
    where ids come from (a ground-truth topic with ids would give them)."""
    pose = scene.poses[slot_of(stamp, scene)]
    active = [i for i, s in enumerate(scene.sources) if s.active]
    out = []
    for az, el in directions:
        miss, sid = min((abs(math.remainder(direction_in_frame(pose, mount, scene.sources[i]
                                                               .position)[0] - az, math.tau)), i)
                        for i in active)
        if miss > math.radians(0.5):
            raise RuntimeError(f'no source of scene {scene.scene_id} at azimuth '
                               f'{math.degrees(az):.1f} deg ({math.degrees(miss):.1f} deg off)')
        out.append((sid, az, el))
    return out


def load_room(bag: Path, split: str, role: str, method: str, num: int) -> Room:
    """Run the array's estimator (``method``, ``num`` sources per window) over
    a bag's stream as the node would, and build each window's truth (with
    ids) and the frame's turns."""
    geom = load_array(role if role != 'array' else 'respeaker4')
    topic = STREAM_TOPICS[role]
    chunks, gt = [], {}
    for m in read_bag(bag, [topic, 'gt/sound_direction']):
        if m.topic == topic:
            chunks.append(m.msg)
        elif m.msg.header.frame_id == geom.frame_id:
            gt.setdefault(stamp_ns(m.msg), []).extend((r.azimuth, r.elevation)
                                                      for r in source_readings(m.msg))
    stream = assemble(chunks)
    scene = scene_of(bag, split)
    mount = load_robot().arrays[role].xyz
    chunk_stamps = sorted({stamp_ns(c) for c in chunks})
    periods = [(s, labelled(gt.get(s, []), s, scene, mount)) for s in chunk_stamps]
    doa = StreamingDoa(make_estimator(method, geom, num_src=num), geom.sample_rate,
                       geom.channels, window=geom.doa_window, hop=HOP_SECONDS, num_src=num)
    step = int(round(CHUNK_SECONDS * stream.sample_rate))
    results = []
    for j in range(0, stream.samples.shape[1], step):
        results += doa.push(AudioBlock(stream.samples[:, j:j + step], stream.sample_rate, j,
                                       stream.t0_ns + int(round(j / stream.sample_rate * 1e9)),
                                       stream.frame_id))
    win = int(round(geom.doa_window * 1e9))
    end = stream.t0_ns + int(round(stream.samples.shape[1] / stream.sample_rate * 1e9))
    truth = window_truth(periods, end, [(r.stamp_ns, r.stamp_ns + win) for r in results])
    rotations: list[np.ndarray | None] = [None]
    for prev, r in zip(results, results[1:]):   # the pose held over most of each window
        a = scene.poses[slot_of(prev.stamp_ns + win // 2, scene)].yaw
        b = scene.poses[slot_of(r.stamp_ns + win // 2, scene)].yaw
        rotations.append(yaw_rotation(b - a) if a != b else None)
    return Room(bag.name, results, truth, rotations)


def tracked(room: Room, params: TrackerParams, turns: bool = False
            ) -> list[tuple[int, list[tuple[int, float, float]]]]:
    """The tracker's reports per window (``turns``: told each turn)."""
    tracker = SourceTracker(params, elevation_known=False, hop=HOP_SECONDS)
    return track_outputs(tracker, room.results, room.rotations if turns else None)


def untracked(room: Room, min_confidence: float | None = None
              ) -> list[tuple[int, list[tuple[int, float, float]]]]:
    return estimate_outputs(room.results, min_confidence)


def score_rooms(rooms: list[Room], outputs, ambiguous: bool) -> TrackScores:
    """Sum of per-room scores (ids are per room)."""
    total = TrackScores()
    for room in rooms:
        total = total + score_tracks(outputs(room), room.truth, HOP_SECONDS, GATE_DEG,
                                     ambiguous=ambiguous)
    return total


def sweep(rooms: list[Room], ambiguous: bool) -> tuple[TrackerParams, list]:
    """Every combination of GRID on (train) rooms; the one of highest IDF1
    (ties: higher MOTA) and every row."""
    rows = []
    for gate, (k, n), m, coast, a, b, c in itertools.product(*GRID.values()):
        p = TrackerParams(gate_deg=gate, confirm_hits=k, confirm_window=n, max_misses=m,
                          smoothing=a, velocity_gain=b, birth_confidence=c, coast=coast)
        s = score_rooms(rooms, lambda room, p=p: tracked(room, p), ambiguous).summary()
        rows.append({**asdict(p), 'idf1': s['idf1'], 'mota': s['mota'], 'recall': s['recall'],
                     'id_switches_per_min': s['id_switches_per_min'],
                     'false_tracks_per_min': s['false_tracks_per_min'],
                     'false_outputs_per_min': s['false_outputs_per_min']})
    best = max(rows, key=lambda r: (r['idf1'], r['mota']))
    return TrackerParams(**{f: best[f] for f in asdict(TrackerParams())}), rows


KEYS = ('id_switches_per_min', 'recall', 'false_tracks_per_min', 'false_outputs_per_min',
        'fragmentations_per_min', 'median_error_deg', 'idf1', 'mota')


def close_share(rooms: list[Room], ambiguous: bool) -> float:
    """Share of true source-windows with another true source within the
    scoring gate: there, which output is whose is a coin toss."""
    close = total = 0
    for room in rooms:
        for t in room.truth:
            v = [unit_vector(az, 0.0) for _, az, _ in t.sources]
            for i, a in enumerate(v):
                total += 1
                close += any(float(angle_between(a, b, ambiguous)) <= math.radians(GATE_DEG)
                             for j, b in enumerate(v) if j != i)
    return round(close / max(total, 1), 3)


def dumps(results: dict) -> str:
    """The results as JSON, indented; each sweep row on one line, a list
    of values in the order of ``columns``."""
    doc, rows = json.loads(json.dumps(results)), {}
    for role in PLAN:
        sweep_doc = doc.get(role, {}).get('sweep_train')
        if sweep_doc and sweep_doc['rows'] and isinstance(sweep_doc['rows'][0], dict):
            sweep_doc['columns'] = list(sweep_doc['rows'][0])
            rows[role] = [list(r.values()) for r in sweep_doc['rows']]
            sweep_doc['rows'] = f'@rows:{role}@'
    text = json.dumps(doc, indent=1)
    for role, rs in rows.items():
        text = text.replace(json.dumps(f'@rows:{role}@'),
                            '[\n  ' + ',\n  '.join(json.dumps(r) for r in rs) + '\n ]')
    return text + '\n'


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--cache', type=Path, default=ROOT / '.cache')
    ap.add_argument('--jobs', type=int, default=0, help='simulation processes (0: one per core)')
    ap.add_argument('--array-method', choices=['srp', 'srp_onset', 'normmusic'], default='srp',
                    help='the 4-mic array\'s estimator; other than srp: the array alone, its '
                    'own sweep, written to direction_tracking_<method>.json (srp_onset: the '
                    'node\'s default)')
    ap.add_argument('--binaural-method', choices=['gcc', 'gcc_onset'], default='gcc',
                    help='the binaural head\'s estimator; other than gcc: the head alone, its '
                    'own sweep, written to direction_tracking_<method>.json (gcc_onset: '
                    'config/sim.yaml\'s)')
    ap.add_argument('--sources', type=int, choices=[1, 2], default=None,
                    help='sources per window of the one array a --*-method names (default: '
                    'its PLAN\'s, 2; config/sim.yaml asks the binaural head for 1)')
    args = ap.parse_args()
    if args.sources and args.array_method == 'srp' and args.binaural_method == 'gcc':
        ap.error('--sources applies to the array that --array-method or --binaural-method '
                 'names')
    if args.array_method != 'srp' and args.binaural_method != 'gcc':
        ap.error('one of --array-method and --binaural-method at a time (each writes its '
                 'own JSON)')
    plan, out_name = PLAN, 'direction_tracking.json'
    for role, method, default in (('array', args.array_method, 'srp'),
                                  ('binaural', args.binaural_method, 'gcc')):
        if method != default:
            plan = {role: (method, args.sources or PLAN[role][1])}
            out_name = f'direction_tracking_{method}.json'
    bags = prepare(args.cache, args.jobs)
    results: dict = {'rooms': {}, 'gate_deg': GATE_DEG, 'hop_s': HOP_SECONDS,
                     'sweep_grid': {k: list(v) for k, v in GRID.items()}}
    lines = []
    for role, (method, num) in plan.items():
        geom = load_array(role if role != 'array' else 'respeaker4')
        amb = geom.front_back_ambiguous
        rooms = {split: [load_room(b, split, role, method, num) for b in folder]
                 for split, folder in bags.items()}
        params, rows = sweep(rooms['train'], amb)
        test = rooms['test']
        base = score_rooms(test, untracked, amb).summary()
        strong = score_rooms(test, lambda room: untracked(room, params.birth_confidence),
                             amb).summary()
        trk = score_rooms(test, lambda room: tracked(room, params), amb).summary()
        turn = score_rooms(test, lambda room: tracked(room, params, turns=True), amb).summary()
        # what the node runs today for this array and method, on the same rooms
        node_params = TUNED_PARAMS.get((geom.name, method), TrackerParams())
        node = score_rooms(test, lambda room: tracked(room, node_params), amb).summary()
        ratio = {k: (round(trk[k] / base[k], 3) if base[k] else None) for k in KEYS}
        results[role] = {
            'array': geom.name, 'method': method, 'sources_per_window': num,
            'window_s': geom.doa_window, 'front_back_ambiguous': amb,
            'params': asdict(params), 'untracked': base,
            'untracked_confident': strong, 'tracked': trk,
            'tracked_turns_known': turn, 'tracked_over_untracked': ratio,
            'node_params': asdict(node_params), 'tracked_node_params': node,
            'true_sources_within_gate_of_another': close_share(test, amb),
            'sweep_train': {'objective': 'max IDF1 (ties: higher MOTA)',
                            'rooms': len(rooms['train']),
                            'untracked': score_rooms(rooms['train'], untracked, amb).summary(),
                            'untracked_confident': score_rooms(
                                rooms['train'], lambda room: untracked(
                                    room, params.birth_confidence), amb).summary(),
                            'minutes': round(sum(len(r.results) for r in rooms['train'])
                                             * HOP_SECONDS / 60, 2),
                            'rows': rows}}
        results['rooms'] = {s: [r.name for r in rooms[s]] for s in rooms}
        lines.append(f'{role} ({geom.name}, {method}, {num} per window): tracker '
                     f'{asdict(params)}, chosen on {len(rooms["train"])} train rooms')
        lines.append(f'  {"":24s} {"untracked":>10s} {"tracked":>10s} {"ratio":>7s} '
                     f'{"turns known":>12s} {"untracked>=" + str(params.birth_confidence):>15s}')
        for k in KEYS:
            lines.append(f'  {k:24s} {base[k]!s:>10s} {trk[k]!s:>10s} {ratio[k]!s:>7s} '
                         f'{turn[k]!s:>12s} {strong[k]!s:>15s}')
        lines.append(f'  the node\'s parameters today {asdict(node_params)}: '
                     + ', '.join(f'{k} {node[k]}' for k in (
                         'id_switches_per_min', 'idf1', 'mota', 'recall', 'median_error_deg')))
        lines.append(f'  {len(test)} test rooms, {base["minutes"]} min, {base["windows"]} '
                     f'windows, {base["truths"]} true source-windows '
                     f'({close_share(test, amb):.0%} within {GATE_DEG:.0f} deg of the other)')
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / out_name).write_text(dumps(results))
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
