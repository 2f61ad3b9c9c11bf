"""Benchmark: direction of arrival on held-out simulated rooms, all methods in
one run (the same scoring code as `av-perception eval direction`).

Each array is scored with its analysis window (``doa_window`` in its file:
0.5 s for the 4-mic array, 0.256 s for the binaural head), every 0.1 s, on
the windows throughout which a source sounds and the robot stands still;
compute is the CPU time of one thread per 100 ms chunk.

Rooms of the test split (never trained on) whose Sabine RT60 is 0.2-0.8 s,
SNR 0-30 dB, speech and noise sources, one or two at a time. Figures for
all windows, for sources in line of sight, and for the target's conditions
(SNR >= 10 dB, RT60 <= 0.6 s). For the 4-mic array: SRP-PHAT, SRP-PHAT
weighted by onsets (``srp_onset``), NormMUSIC and
the learned model (distilled from the 16-mic acoustic image, and the
label-trained ablation); for the binaural head: GCC-PHAT, GCC-PHAT weighted
by onsets (``gcc_onset``), the one binaural
direction network by each of its three teachers (distilled from the
acoustic image, from labels, and from motion without labels:
models/rotation_binaural.onnx) and a constant guess (0, straight ahead),
also per sound class of the scored source. Prints each figure beside its
baseline (the best classic method) and target, writes
bench/results/direction.json.

The package's SRP-PHAT and NormMUSIC (``srp``, ``normmusic``: the node's,
their steering computed once) are scored beside pyroomacoustics' own
(``srp_pra``, ``normmusic_pra``) on the same windows in the same run: the
CPU-time ratios, and how far apart their medians are (target for SRP-PHAT:
<= 5 ms per 100 ms chunk; medians within 0.3 deg).

    .venv/bin/python bench/direction.py [--scenes 72] [--models av_perception/models]
"""

from __future__ import annotations

import os

for _v in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_v, '1')  # compute per chunk is measured on one core

import argparse
import json
import math
from pathlib import Path

import numpy as np

from av_perception.direction.evaluate import REFERENCES, score
from av_perception.sim.acoustics import line_of_sight, rt60_sabine
from av_perception.sim.scene import SceneParams, base_to_world, direction_in_frame, generate_scene
from av_perception.robot import load_robot
from av_perception.sim.world import T0_NS

import rendered
from paired import paired_ratio_ci

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / 'results'
SEED = 2023


CLASSES = ('noise', 'speech')
PARAMS = SceneParams(snr_db=(0.0, 30.0), classes=CLASSES)
RT60_RANGE = (0.2, 0.8)
SUBSETS = ('line_of_sight', 'snr_ge10_rt60_le06', 'snr_ge10_rt60_le06_los')


def pick_rooms(n: int) -> list[int]:
    """The first ``n`` test-split rooms whose Sabine RT60 is in RT60_RANGE."""
    ids, i = [], 0
    while len(ids) < n:
        if RT60_RANGE[0] <= rt60_sabine(generate_scene(i, 'test', SEED, PARAMS)) <= RT60_RANGE[1]:
            ids.append(i)
        i += 1
    return ids


def test_rooms(scenes: int, folder: Path | None = None) -> Path:
    """The benchmark's held-out rooms (the first ``scenes`` of
    :func:`pick_rooms`), simulated into ``folder`` (default
    bench/.cache/doa_test_<scenes>) unless this simulator rendered it there
    (``bench/rendered.py``; a folder given elsewhere: unless it has an index); returns
    the folder. Shared by the benches that score direction models on them."""
    folder = folder or ROOT / '.cache' / f'doa_test_{scenes}'
    return rendered.ensure(folder, 0, note=f'{scenes} held-out rooms', seed=SEED,
                           split='test', snr_db=PARAMS.snr_db, ids=pick_rooms(scenes),
                           classes=CLASSES)


def shift_rooms(scenes: int) -> Path:
    """The first ``scenes`` rooms of the shifted split (this bench's seed and
    SNR; the split's own sounds), simulated into bench/.cache/doa_shift_<scenes>
    unless this simulator rendered them there; returns the folder. Shared
    by the benches that score direction on them."""
    return rendered.ensure(ROOT / '.cache' / f'doa_shift_{scenes}', scenes,
                           note=f'{scenes} shifted rooms', seed=SEED, split='shift',
                           snr_db=PARAMS.snr_db)


def conditions(out: Path, s) -> dict[str, np.ndarray]:
    """Per scored error: its room's RT60 and SNR, whether the source it
    scores was in line of sight of the array (the simulator models no
    diffraction: an occluded source is heard only through reflections), and
    its sound class."""
    rows = sorted((json.loads(line) for line in (out / 'index.jsonl').read_text().splitlines()),
                  key=lambda r: r['bag'])
    scenes = [generate_scene(r['scene_id'], r['split'], SEED, PARAMS) for r in rows]
    robot = load_robot()
    rt = np.array([rt60_sabine(sc) for sc in scenes])
    snr = np.array([sc.snr_db for sc in scenes])
    los, cls = [], []
    for b, stamp, truth in zip(s.bags, s.stamps, s.truths):
        sc = scenes[b]
        k = min(int((stamp - T0_NS) // int(0.5e9)), len(sc.poses) - 1)
        pose = sc.poses[k]
        mount = robot.arrays['array'].xyz
        miss, src = min(((abs(math.remainder(
            direction_in_frame(pose, mount, x.position)[0] - truth, 2 * math.pi)), x)
            for x in sc.active_sources), key=lambda m: m[0])
        if miss > math.radians(1.0):   # the rebuilt room is not the rendered one
            raise RuntimeError(f'{out}: no source of the rebuilt room {b} at a scored '
                               f'window\'s azimuth (nearest {math.degrees(miss):.1f} deg off)')
        objects = tuple(i for i, bx in enumerate(sc.boxes) if bx.label != 'furniture')
        los.append(line_of_sight(sc, base_to_world(pose, mount), src.position, ignore=objects))
        cls.append(src.cls)
    b = np.asarray(s.bags)
    return {'rt60': rt[b], 'snr': snr[b], 'los': np.asarray(los, bool), 'cls': np.asarray(cls)}


def shift_binaural(scenes: int, models: Path, kept: dict) -> dict:
    """Issue #25 on the shifted split: the binaural network by each of its
    teachers, GCC-PHAT (plain and onset-weighted) and the constant guess on the same windows of
    ``scenes`` shifted rooms (this bench's seed and SNR; the split's own
    sounds: voices, music, appliances, 1-3 sources), all windows and per
    sound class; each method's Scores go into ``kept``."""
    folder = shift_rooms(scenes)
    out: dict = {}
    gcc = None
    for m, path in (('gcc', None), ('gcc_onset', None),
                    ('learned', models / 'direction_binaural.onnx'),
                    ('learned_labels', models / 'direction_binaural_labels.onnx'),
                    ('learned_motion', models / 'rotation_binaural.onnx'), ('constant', None)):
        s = constant_guess(gcc) if m == 'constant' else \
            score(folder, 'binaural', 'learned' if path else m, model=path)
        gcc = s if m == 'gcc' else gcc
        cls = conditions(folder, s)['cls']
        out[m] = {**s.summary(), 'by_class': {k: s.summary(cls == k) for k in np.unique(cls)}}
        kept[m] = s
    out['scored'] = {'rooms': scenes, 'windows': len(gcc.errors_deg), 'folder': folder.name}
    return out


def shift_array(scenes: int, models: Path) -> dict:
    """The 4-mic array on the same ``scenes`` shifted rooms as
    :func:`shift_binaural` (RT60 up to several seconds: where a reflection
    outweighs the direct sound most often): the classic methods and the
    learned model on the same windows, all windows and per sound class, each
    method's median over the best classic method's with its 95 % interval
    over whole rooms."""
    folder = shift_rooms(scenes)
    out: dict = {}
    kept = {}
    cls = None   # every method scores the same windows
    for m in ('srp', 'srp_onset', 'normmusic', 'learned'):
        s = score(folder, 'array', m, model=models / 'direction_respeaker4.onnx'
                  if m == 'learned' else None)
        cls = conditions(folder, s)['cls'] if cls is None else cls
        out[m] = {**s.summary(), 'by_class': {k: s.summary(cls == k) for k in np.unique(cls)}}
        kept[m] = s
    best = min(('srp', 'normmusic'), key=lambda m: out[m]['median_deg'])
    for m in kept:
        out[m]['over_' + best] = round(out[m]['median_deg'] / out[best]['median_deg'], 3)
        out[m]['over_' + best + '_ci95'] = paired_ratio_ci(
            kept[m].errors_deg, kept[best].errors_deg, groups=kept[best].bags)
    out['scored'] = {'rooms': scenes, 'windows': len(kept['srp'].errors_deg),
                     'folder': folder.name, 'baseline': best}
    return out


def motion_ratios(kept: dict, prefix: str = '') -> dict:
    """Issue #25's ratios of one split's binaural Scores (``kept``: method ->
    Scores on the same windows), each with its 95 % interval over whole
    rooms resampled (:func:`paired.paired_ratio_ci`), and the label-trained
    network's, which tell whether the motion teacher or the network falls
    short."""
    med = {m: float(np.median(kept[m].errors_deg)) for m in kept}
    out = {}
    for a, b in (('learned_motion', 'gcc'), ('learned_motion', 'learned'),
                 ('learned_labels', 'gcc'), ('learned_motion', 'learned_labels')):
        if a in kept and b in kept:
            name = f'{prefix}binaural_{a.replace("learned_", "")}_over_' \
                   f'{b.replace("learned_", "").replace("learned", "distilled")}'
            out[name] = round(med[a] / med[b], 3)
            out[f'{name}_ci95'] = paired_ratio_ci(kept[a].errors_deg, kept[b].errors_deg,
                                                  groups=kept[b].bags)
    return out


def constant_guess(s):
    """The errors of a constant guess (azimuth 0: straight ahead, folded) on
    the windows ``s`` scored, as Scores."""
    from av_perception.direction.classic import fold_front
    from av_perception.direction.evaluate import Scores
    return Scores([math.degrees(abs(fold_front(t))) for t in s.truths], [], list(s.bags),
                  list(s.stamps), list(s.truths))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--scenes', type=int, default=72)
    ap.add_argument('--data', type=Path, help='test bags (default: '
                    'bench/.cache/doa_test_<scenes>, rendered again when the simulator '
                    'changed; a folder given here is simulated only if it has no index)')
    ap.add_argument('--models', type=Path, default=ROOT.parent / 'av_perception' / 'models')
    ap.add_argument('--shift-scenes', type=int, default=30,
                    help='shifted-split rooms for the binaural head (issue #25) and the '
                    '4-mic array (0: none)')
    args = ap.parse_args()
    args.data = test_rooms(args.scenes, args.data)
    plan = {'array': ['srp', 'srp_pra', 'srp_onset', 'normmusic', 'normmusic_pra', 'learned',
                      'learned_labels'],
            'binaural': ['gcc', 'gcc_onset', 'learned', 'learned_labels', 'learned_motion',
                         'constant']}
    model_file = {'array': 'direction_respeaker4', 'binaural': 'direction_binaural'}
    results: dict = {}
    subsets = {}
    errors: dict = {}  # per-window errors of the array's classic methods [deg]
    gcc_scores = None   # the binaural windows, for the constant guess
    kept: dict = {}     # the binaural Scores, for issue #25's intervals
    for role, methods in plan.items():
        results[role] = {}
        for m in methods:
            if m.startswith('learned'):
                suffix = '_labels' if m.endswith('labels') else ''
                path = args.models / f'{model_file[role]}{suffix}.onnx'
                if m == 'learned_motion':   # the same network, trained from motion
                    path = args.models / 'rotation_binaural.onnx'
                if not path.is_file():
                    print(f'{role} {m}: no model {path}; skipped')
                    continue
                s = score(args.data, role, 'learned', model=path)
            elif m == 'constant':
                s = constant_guess(gcc_scores)
            else:
                s = score(args.data, role, m)
            if m == 'gcc':
                gcc_scores = s
            c = conditions(args.data, s)
            good = (c['snr'] >= 10) & (c['rt60'] <= 0.6)
            res = s.summary()
            masks = dict(zip(SUBSETS, (c['los'], good, good & c['los'])))
            for name, mask in masks.items():
                res[name] = s.summary(mask)
            if role == 'binaural':
                res['by_class'] = {k: s.summary(c['cls'] == k) for k in CLASSES}
            results[role][m] = res
            if role == 'binaural':
                kept[m] = s
            if m in ('srp', 'normmusic', *REFERENCES):
                errors[m] = np.asarray(s.errors_deg, float)
            subsets[role] = {'windows': len(s.errors_deg),
                             'line_of_sight': int(c['los'].sum()),
                             'snr_ge10_rt60_le06': int(good.sum()),
                             'snr_ge10_rt60_le06_los': int((good & c['los']).sum()),
                             'rt60_range': [round(float(c['rt60'].min()), 2),
                                            round(float(c['rt60'].max()), 2)]}
    results['scored'] = subsets
    classic = {'array': ['srp', 'srp_onset', 'normmusic'], 'binaural': ['gcc', 'gcc_onset']}
    lines = []
    for role in plan:
        best = min(classic[role], key=lambda m: results[role][m]['median_deg'])
        base = results[role][best]
        for m, r in results[role].items():
            ratio = r['median_deg'] / base['median_deg'] if base['median_deg'] else math.nan
            lines.append(f'{role:9s} {m:15s} median {r["median_deg"]:6.1f} deg (vs {best} '
                         f'x{ratio:.2f})  mean {r["mean_deg"]:6.1f}  within10 '
                         f'{r["within10"]:.2f}  {r["ms_per_100ms"] or 0:6.2f} ms/100ms | line of '
                         f'sight {r["line_of_sight"]["median_deg"]} | SNR>=10,RT60<=0.6,LOS '
                         f'{r["snr_ge10_rt60_le06_los"]["median_deg"]}')
        results[role]['best_classic'] = best
    b = results['binaural']
    bb = {m: b[m]['median_deg'] for m in ('gcc', 'learned', 'learned_motion') if m in b}
    # the package's methods (each *_pra baseline is the same map, slower)
    a = {m: v for m, v in results['array'].items()
         if isinstance(v, dict) and m not in REFERENCES}
    four = [v['snr_ge10_rt60_le06_los']['median_deg'] for v in a.values()]
    targets = {
        'array4_best_median_deg_snr10_rt06_los': min(x for x in four if x is not None),
        'array4_best_median_deg_snr10_rt06_all': min(
            v['snr_ge10_rt60_le06']['median_deg'] for v in a.values()),
        'binaural_learned_over_best_classic': (
            round(b['learned']['median_deg'] / b[b['best_classic']]['median_deg'], 3)
            if 'learned' in b else None),
        'max_ms_per_100ms': max(v['ms_per_100ms'] for r in (a, b)
                                for v in r.values()
                                if isinstance(v, dict) and v['ms_per_100ms'] is not None)}
    if 'learned_motion' in bb:   # issue #25 (every window here is broadband: speech, noise)
        targets.update({
            'binaural_motion_over_gcc': round(bb['learned_motion'] / bb['gcc'], 3),
            'binaural_motion_over_gcc_met_le_0.8': bb['learned_motion'] <= 0.8 * bb['gcc'],
            'binaural_motion_over_distilled': round(bb['learned_motion'] / bb['learned'], 3),
            'binaural_motion_over_distilled_met_le_1.2': bb['learned_motion']
            <= 1.2 * bb['learned']})
        targets.update({k: v for k, v in motion_ratios(kept).items() if k not in targets})
    for ref, m in REFERENCES.items():
        targets.update(against_pyroomacoustics(m, ref, results['array'], errors))
    if args.shift_scenes:
        results['array_shift'] = sa = shift_array(args.shift_scenes, args.models)
        for m in ('srp', 'srp_onset', 'normmusic', 'learned'):
            lines.append(f'shift 4-mic {m:15s} median {sa[m]["median_deg"]:6.1f} deg (vs '
                         f'{sa["scored"]["baseline"]} x{sa[m]["over_" + sa["scored"]["baseline"]]}'
                         f' {sa[m]["over_" + sa["scored"]["baseline"] + "_ci95"]}) mean '
                         f'{sa[m]["mean_deg"]:6.1f} within10 {sa[m]["within10"]:.2f}')
        shift_kept: dict = {}
        results['binaural_shift'] = sh = shift_binaural(args.shift_scenes, args.models,
                                                        shift_kept)
        targets.update(motion_ratios(shift_kept, 'shift_'))   # the rounded ones follow
        targets.update({
            'shift_binaural_learned_over_gcc': round(sh['learned']['median_deg']
                                                     / sh['gcc']['median_deg'], 3),
            'shift_binaural_motion_over_gcc': round(sh['learned_motion']['median_deg']
                                                    / sh['gcc']['median_deg'], 3),
            'shift_binaural_motion_over_distilled': round(
                sh['learned_motion']['median_deg'] / sh['learned']['median_deg'], 3)})
        for m in ('gcc', 'gcc_onset', 'learned', 'learned_labels', 'learned_motion', 'constant'):
            lines.append(f'shift binaural {m:15s} median {sh[m]["median_deg"]:6.1f} deg '
                         f'(vs gcc x{sh[m]["median_deg"] / sh["gcc"]["median_deg"]:.2f}) | '
                         + ', '.join(f'{k} {v["median_deg"]}' for k, v in sh[m]['by_class']
                                     .items()))
    results['targets'] = targets
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'direction.json').write_text(json.dumps(results, indent=2) + '\n')
    print(f'held-out rooms with RT60 {RT60_RANGE} s, SNR 0-30 dB: {subsets}')
    print('\n'.join(lines))
    print(f'targets: 4-mic best median, SNR>=10 & RT60<=0.6, line of sight: '
          f'{targets["array4_best_median_deg_snr10_rt06_los"]} deg (<= 5; with occluded '
          f'sources {targets["array4_best_median_deg_snr10_rt06_all"]}); binaural learned / '
          f'best classic {targets["binaural_learned_over_best_classic"]} (<= 0.8); worst '
          f'{targets["max_ms_per_100ms"]} ms per 100 ms chunk (<= 10)')
    for ref, m in REFERENCES.items():
        print(f'4-mic {m}: package {targets[f"{m}_ms_per_100ms"]} ms per 100 ms chunk vs '
              f'pyroomacoustics {targets[f"{ref}_ms_per_100ms"]} ms (x'
              f'{targets[f"{ref}_over_{m}_ms"]} faster); medians differ by at most '
              f'{targets[f"{m}_median_delta_deg"]} deg over all windows and subsets (<= 0.3); '
              f'{targets[f"{m}_windows_differing"]} of {len(errors[m])} window errors differ')


def against_pyroomacoustics(method: str, ref: str, array: dict,
                            errors: dict[str, np.ndarray]) -> dict:
    """The package's ``method`` beside pyroomacoustics' (``ref``) on the
    same windows: CPU time per 100 ms chunk of each and their ratio, the
    largest median difference over all windows and the three subsets [deg],
    and how many per-window errors differ by more than 1e-6 deg."""
    own, pra = array[method], array[ref]
    medians = [(own[k]['median_deg'], pra[k]['median_deg']) for k in SUBSETS]
    medians.append((own['median_deg'], pra['median_deg']))
    return {f'{method}_ms_per_100ms': own['ms_per_100ms'],
            f'{ref}_ms_per_100ms': pra['ms_per_100ms'],
            f'{ref}_over_{method}_ms': round(pra['ms_per_100ms'] / own['ms_per_100ms'], 2),
            f'{method}_median_delta_deg': round(max(abs(x - y) for x, y in medians), 2),
            f'{method}_windows_differing': int((np.abs(errors[method] - errors[ref])
                                                > 1e-6).sum())}


if __name__ == '__main__':
    main()
