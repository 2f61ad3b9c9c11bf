"""Benchmark: the echo map (every echo fused in odom) beside the single-echo
grid, on held-out simulated rooms, in one run (the same scoring code as
`av-perception eval echo-map`).

The simulated robot drives a path of ``--poses`` poses through each room
(turns in place of up to 45 deg and short drives of 0.1-0.5 m, one echo per
pose; the generator's 'path' view) of the test split (never trained on;
echo-only rendering, cached under bench/.cache). The shipped echo-depth
student turns each echo into depth, placed on the robot by the echo head's
optical frame in the bag's /tf_static (as the node does); each echo's grid is
fused into the map with the odometry from the bag's /tf and scored against
gt/occupancy carried into odom, over the area the echoes could see (see
av_perception/echo/map_evaluate.py for the reference and the metrics).

The headline figures (``library_defaults``, ``targets``) are the echo_depth
node's settings: ``FusionParams`` and ``GridSpec`` defaults, which its
parameters default to. Beside them, fusion parameters (hit / miss
probabilities, export thresholds, obstacle height band) are swept on rooms
of the train split only (ids from 1000 on: the students learnt from rooms
0-799 of the train split, so these are rooms the model has not seen either,
and not the test rooms); the sweep and its choice scored on the test rooms
(``tuned``) are recorded, and become the node's only if its defaults change.

Oracles say where the rest is lost, each through the node's fusion: the
same network trained on the true depth instead of the teacher's
(``echo_depth_gt.onnx``: what the echoes teach this network at best); the
ground-truth depth (gt/depth resized to the model's output: a perfect depth
sensor behind the same grid code) and the reference's own sight lines (the
gt grids themselves); the RGB teacher's depth (what the student is
distilled from), also with a fusion swept on the teacher's own train-room
depth (the ceiling of a student as good as its teacher); and the column
range errors of student and teacher by predicted range on the train rooms
(``range_error_train``, summed up with the fused figures in
``free_iou_gap``).

Prints fused vs single-echo figures with their ratios and the targets
(fused free-space IoU >= 0.80; occupied recall within one cell >= 0.6);
writes bench/results/echo_map.json.

    .venv/bin/python bench/echo_map.py [--scenes 30] [--poses 20] [--train-scenes 16] [--no-sweep]
"""

from __future__ import annotations

import os

for _v in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_v, '1')

import argparse
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from av_perception.bag.contents import list_bags
from av_perception.bag.io import nearest, read_bag, stamp_ns
from av_perception.echo.map_evaluate import (METRICS, BagEchoes, MapSetup, load_bags, score_bag,
                                             summarize)
from av_perception.echo.mapping import FusionParams
from av_perception.echo.occupancy import rep117_depth

import rendered

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / 'results'
CACHE = ROOT / '.cache'
SEED = 0
#: first train-split room of the tuning set (the students learnt from 0-799)
TRAIN_FIRST = 1000
TARGETS = {'fused_free_iou': 0.80, 'fused_occ_recall': 0.6}

#: the sweep: stage 1 the log-odds and thresholds (every ray freed to its
#: surface), stage 2 how much of a surface ray is freed with the miss
#: probability, stage 3 the height band
SWEEP_PROB = {'p_hit': (0.6, 0.7, 0.8, 0.9), 'p_miss': (0.2, 0.3, 0.4, 0.45),
              'occupied_threshold': (0.55, 0.6, 0.7), 'free_threshold': (0.3, 0.4, 0.45, 0.49)}
SWEEP_FREE = {'free_fraction': (1.0, 0.95, 0.9, 0.85, 0.8, 0.7),
              'p_miss': (0.3, 0.35, 0.4, 0.45)}
SWEEP_BAND = ((0.25, 2.0), (0.15, 2.0), (0.35, 2.0), (0.45, 2.0), (0.25, 1.2))


def rooms(split: str, ids: list[int], poses: int) -> Path:
    """The bags of these rooms (simulated once, echo-only, cached)."""
    out = CACHE / f'echo_map_{split}_{ids[0]}_{len(ids)}_p{poses}'
    return rendered.ensure(out, 0, note=f'{len(ids)} {split} rooms x {poses} poses (echoes)',
                           seed=SEED, split=split, ids=ids, poses=poses, echo_only=True, jobs=1)


#: the sweep keeps settings whose fused occupied recall on the train rooms
#: reaches the target plus this allowance for the step to unseen rooms
RECALL_MARGIN = 0.02


def objective(s: dict) -> tuple:
    """What the sweep maximizes: the free IoU among settings that reach the
    occupied-recall target (+ RECALL_MARGIN) on the train rooms; below it,
    first the lesser of the two figures relative to their targets."""
    f = s['fused']
    free, rec = f['free_iou'] or 0.0, f['occ_recall'] or 0.0
    if rec >= TARGETS['fused_occ_recall'] + RECALL_MARGIN:
        return (1, free)
    return (0, min(free / TARGETS['fused_free_iou'], rec / TARGETS['fused_occ_recall']))


def run(bags: list[BagEchoes], setup: MapSetup, over_time: bool = True) -> dict:
    return summarize([score_bag(b, setup, over_time=over_time) for b in bags])


#: the teacher's sweep (a ceiling, not a default): fewer stage-1 settings
SWEEP_PROB_TEACHER = {'p_hit': (0.7, 0.9), 'p_miss': (0.3, 0.4), 'occupied_threshold': (0.55,),
                      'free_threshold': (0.45, 0.49)}


def sweep(bags: list[BagEchoes], setup: MapSetup, prob: dict = SWEEP_PROB
          ) -> tuple[FusionParams, tuple, list[dict]]:
    """Stage 1: probabilities and thresholds (default band, free to the
    surface); stage 2: the free fraction with the miss probability, the rest
    of stage 1's best; stage 3: the band with the best so far. Returns the
    best params, band, and rows."""
    rows = []
    best, best_val = setup.params, (-1, 0.0)
    keys = [*SWEEP_PROB, 'free_fraction']            # every row names all of them

    def row(params: FusionParams, grid) -> tuple:
        s = run(bags, replace(setup, params=params, grid=grid), over_time=False)
        rows.append({**{k: getattr(params, k) for k in keys}, 'z_min': grid.z_min,
                     'z_max': grid.z_max, **{f'fused_{m}': s['fused'][m] for m in METRICS}})
        return objective(s)

    base = replace(setup.params, free_fraction=1.0)
    for values in itertools.product(*prob.values()):
        cfg = dict(zip(prob, values))
        if cfg['free_threshold'] >= cfg['occupied_threshold']:
            continue
        params = replace(base, **cfg)
        val = row(params, setup.grid)
        if val > best_val:
            best, best_val = params, val
    for values in itertools.product(*SWEEP_FREE.values()):
        params = replace(best, **dict(zip(SWEEP_FREE, values)))
        if params.free_fraction == 1.0 and params.p_miss == best.p_miss:
            continue                                  # stage 1's best itself
        val = row(params, setup.grid)
        if val > best_val:
            best, best_val = params, val
    band, band_val = (setup.grid.z_min, setup.grid.z_max), best_val
    for z_min, z_max in SWEEP_BAND[1:]:
        val = row(best, replace(setup.grid, z_min=z_min, z_max=z_max))
        if val > band_val:
            band, band_val = (z_min, z_max), val
    return best, band, rows


def with_depth(bags: list[BagEchoes], folder: Path, topic: str,
               depth_of: Callable[[object], np.ndarray], max_depth: float) -> list[BagEchoes]:
    """The same echoes with another depth: ``depth_of(msg)`` [m] of the
    ``topic`` message at each echo's stamp, as REP 117 ranges."""
    out = []
    paths = {p.name: p for p in list_bags(folder)}
    for bag in bags:
        path = paths[bag.name]
        msgs = sorted((m.msg for m in read_bag(path, [topic])), key=stamp_ns)
        st = np.array([stamp_ns(m) for m in msgs], np.int64)
        echoes = [replace(e, depth=rep117_depth(depth_of(msgs[nearest(st, e.stamp_ns, 0)]),
                                                max_depth)) for e in bag.echoes]
        out.append(replace(bag, echoes=echoes))
    return out


def gt_depth_of(size: tuple[int, int], max_depth: float) -> Callable[[object], np.ndarray]:
    """gt/depth resized to the model's output, capped at its range (beyond: no return)."""
    from av_perception.echo.teacher import resize_depth
    from av_perception.image import decode_message

    def depth(msg) -> np.ndarray:
        gt = resize_depth(decode_message(msg), size)
        return np.where(gt > max_depth, max_depth, gt)
    return depth


def teacher_depth_of(size: tuple[int, int]) -> Callable[[object], np.ndarray]:
    """The RGB teacher's depth of a camera frame (a good depth sensor that is not perfect)."""
    from av_perception.echo.teacher import Teacher, resize_rgb
    from av_perception.image import decode_message
    from av_perception.paths import shipped_model
    teacher = Teacher(shipped_model('echo_teacher'), size)
    return lambda msg: teacher(resize_rgb(decode_message(msg, want='rgb8'), size)[None])[0][0]


#: predicted column range bins [m] of the range-error table
RANGE_BINS = (0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.0, 12.0)


def range_errors(bags: list[BagEchoes], truth: list[BagEchoes], setup: MapSetup) -> list[dict]:
    """How far each image column's surface (the ray of ``depth_rays``, base
    frame) is from the true one (the same echo with gt/depth), by predicted
    range: columns, median true / predicted range, share within 1.25x of
    each other (delta1), median |error| [m], and the share of columns
    predicted too far (over 1.25x: the free space they clear runs into or
    past the wall)."""
    pred, true = [], []
    for b, g in zip(bags, truth):
        for e, eg in zip(b.echoes, g.echoes):
            rp, rg = setup.echo_rays(e), setup.echo_rays(eg)
            ok = rp.hit & rg.hit
            pred.append(rp.range[ok])
            true.append(rg.range[ok])
    p, t = np.concatenate(pred), np.concatenate(true)
    out = []
    for lo, hi in zip(RANGE_BINS[:-1], RANGE_BINS[1:]):
        m = (p >= lo) & (p < hi)
        if not m.any():
            continue
        ratio = t[m] / p[m]
        out.append({'predicted_m': [lo, hi], 'columns': int(m.sum()),
                    'median_true_over_predicted': round(float(np.median(ratio)), 3),
                    'delta1': round(float((np.maximum(ratio, 1 / ratio) < 1.25).mean()), 3),
                    'median_abs_error_m': round(float(np.median(np.abs(t[m] - p[m]))), 3),
                    'too_far': round(float((ratio < 1 / 1.25).mean()), 3)})
    return out


def free_iou_gap(r: dict) -> dict:
    """Why the fused free-IoU target is met or not, from the results: the
    same rooms through the same scoring with other depth (the student's
    chosen fusion, and the teacher's own train-tuned one), and the column
    accuracy (delta1) of student and teacher by predicted range."""
    final = r['library_defaults']
    out = {'target': TARGETS['fused_free_iou'],
           'student_fused': final['fused']['free_iou'],
           'teacher_depth_student_fusion': r['oracle_teacher_depth']['fused']['free_iou'],
           'gt_depth_student_fusion': r['oracle_gt_depth']['fused']['free_iou']}
    if 'oracle_gt_trained_student' in r:
        out['gt_trained_student_student_fusion'] = \
            r['oracle_gt_trained_student']['fused']['free_iou']
    if 'oracle_teacher_tuned' in r:
        out['teacher_depth_own_fusion'] = r['oracle_teacher_tuned']['fused']['free_iou']
    if 'range_error_train' in r:
        out['delta1_by_predicted_range'] = {
            f'{row["predicted_m"][0]:g}-{row["predicted_m"][1]:g} m': {
                'student': row['delta1'], 'teacher': t['delta1']}
            for row, t in zip(r['range_error_train']['student'],
                              r['range_error_train']['teacher'])}
    return out


def line(name: str, s: dict) -> str:
    f, one = s['fused'], s['single']
    parts = []
    for m in METRICS:
        ratio = f'x{f[m] / one[m]:.2f}' if f[m] is not None and one[m] else '-'
        parts.append(f'{m} {f[m]:.3f} vs {one[m]:.3f} ({ratio})')
    return f'{name:22s} fused vs single echo: ' + '  '.join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--scenes', type=int, default=30, help='held-out test rooms')
    ap.add_argument('--poses', type=int, default=20, help='poses (echoes) per room')
    ap.add_argument('--train-scenes', type=int, default=16, help='train rooms for the sweep')
    ap.add_argument('--model', type=Path, help='echo-depth model (default: the shipped one)')
    ap.add_argument('--no-sweep', action='store_true', help='score the default fusion only')
    args = ap.parse_args()
    t0 = time.perf_counter()
    test_dir = rooms('test', list(range(args.scenes)), args.poses)
    test, setup = load_bags(test_dir, args.model)
    base_setup = setup
    results: dict = {'setup': {
        'test_rooms': f'test split, ids 0-{args.scenes - 1}, seed {SEED}',
        'poses_per_room': args.poses, 'model': str(args.model or 'shipped echo_depth.onnx'),
        'grid': asdict(setup.grid), 'max_depth_m': setup.max_depth}}
    default = run(test, setup)
    results['library_defaults'] = {'params': asdict(setup.params), **default}
    print(line('library defaults', default))
    chosen, band = setup.params, (setup.grid.z_min, setup.grid.z_max)
    if not args.no_sweep:
        train_dir = rooms('train', list(range(TRAIN_FIRST, TRAIN_FIRST + args.train_scenes)),
                          args.poses)
        train, _ = load_bags(train_dir, args.model)
        t = time.perf_counter()
        chosen, band, rows = sweep(train, setup)
        results['sweep'] = {
            'rooms': f'train split, ids {TRAIN_FIRST}-{TRAIN_FIRST + args.train_scenes - 1}, '
                     f'seed {SEED} ({sum(len(b.echoes) for b in train)} echoes)',
            'objective': 'max fused free IoU among settings with fused occupied recall >= '
                         f'{TARGETS["fused_occ_recall"] + RECALL_MARGIN} on these rooms (else '
                         'max of min(free IoU / 0.80, recall / 0.6))',
            'seconds': round(time.perf_counter() - t), 'rows': rows,
            'chosen': {**asdict(chosen), 'z_min': band[0], 'z_max': band[1]}}
        # scored beside the node's settings; it becomes the node's (and the
        # figure below) only when its parameters are made the node's defaults
        tuned = run(test, replace(setup, params=chosen, grid=replace(setup.grid, z_min=band[0],
                                                                     z_max=band[1])))
        results['tuned'] = {'params': results['sweep']['chosen'], **tuned}
        print(f"sweep on {results['sweep']['rooms']}: chosen {results['sweep']['chosen']}")
        print(line('tuned on train rooms (not the node\'s)', tuned))
    final = results['library_defaults']   # what the echo_depth node runs
    # oracles: where the rest is lost
    size = (int(test[0].echoes[0].depth.shape[0]), setup.width)
    if not args.no_sweep:
        # the depth the student is distilled from, with a fusion tuned on its own
        # train-room depth: the ceiling of a student that matched its teacher
        train_gt = with_depth(train, train_dir, 'gt/depth', gt_depth_of(size, setup.max_depth),
                              setup.max_depth)
        train_teacher = with_depth(train, train_dir, 'camera/image_raw', teacher_depth_of(size),
                                   setup.max_depth)
        results['range_error_train'] = {
            'student': range_errors(train, train_gt, setup),
            'teacher': range_errors(train_teacher, train_gt, setup)}
        t_params, t_band, t_rows = sweep(train_teacher, base_setup, SWEEP_PROB_TEACHER)
        t_setup = replace(base_setup, params=t_params,
                          grid=replace(base_setup.grid, z_min=t_band[0], z_max=t_band[1]))
        results['oracle_teacher_tuned'] = {
            'params': {**asdict(t_params), 'z_min': t_band[0], 'z_max': t_band[1]},
            'sweep_rows': t_rows,
            **run(with_depth(test, test_dir, 'camera/image_raw', teacher_depth_of(size),
                             setup.max_depth), t_setup)}
        print(line('oracle: RGB teacher, own fusion', results['oracle_teacher_tuned']))
    gt_depth = run(with_depth(test, test_dir, 'gt/depth', gt_depth_of(size, setup.max_depth),
                              setup.max_depth), setup)
    teacher = run(with_depth(test, test_dir, 'camera/image_raw', teacher_depth_of(size),
                             setup.max_depth), setup)
    gt_rays = summarize([score_bag(b, setup, rays=setup.reference_rays) for b in test])
    # the same echo network trained on the true depth instead of the teacher's
    # (the shipped ablation echo_depth_gt.onnx): what echoes teach this network
    # at best, whatever the teacher
    from av_perception.paths import shipped_model
    gt_student = run(load_bags(test_dir, shipped_model('echo_depth_gt'))[0], setup)
    results['oracle_gt_trained_student'] = gt_student
    results['oracle_gt_depth'] = gt_depth
    results['oracle_teacher_depth'] = teacher
    results['oracle_gt_grid'] = gt_rays
    print(line('oracle: gt-trained student', gt_student))
    print(line('oracle: gt depth', gt_depth))
    print(line('oracle: RGB teacher', teacher))
    print(line('oracle: gt grids', gt_rays))
    f = final['fused']
    results['targets'] = {
        'fused_free_iou': f['free_iou'], 'fused_free_iou_target': TARGETS['fused_free_iou'],
        'fused_free_iou_met': bool(f['free_iou'] >= TARGETS['fused_free_iou']),
        'fused_occ_recall': f['occ_recall'],
        'fused_occ_recall_target': TARGETS['fused_occ_recall'],
        'fused_occ_recall_met': bool(f['occ_recall'] >= TARGETS['fused_occ_recall']),
        'single_free_iou': final['single']['free_iou'],
        'single_occ_recall': final['single']['occ_recall']}
    results['free_iou_gap'] = free_iou_gap(results)
    results['seconds'] = round(time.perf_counter() - t0)
    b = final['fused_free_cells']
    union = b['both'] + b['missed'] + b['free_unseen'] + b['on_obstacle'] + b['outside']
    print(f"fused free space, share of the union: both {b['both'] / union:.2f}, missed "
          f"{b['missed'] / union:.2f}, predicted free where the reference is not: truly free but "
          f"unseen {b['free_unseen'] / union:.2f}, on obstacles {b['on_obstacle'] / union:.2f}, "
          f"outside the room {b['outside'] / union:.2f}; over time: fused free IoU "
          f"{final['fused_over_time']['free_iou']:.3f}")
    c = final['counts']
    print(f"{c['bags']} test rooms, {args.poses} poses each: {c['echoes_used']} echoes fused "
          f"({c['echoes_without_gt']} without gt, {c['echoes_without_camera']} without the "
          f"camera pose, {c['echoes_without_odometry']} without the odometry)")
    print(f"targets: fused free IoU {f['free_iou']:.3f} (>= 0.80: "
          f"{'met' if results['targets']['fused_free_iou_met'] else 'NOT met'}; single echo "
          f"{final['single']['free_iou']:.3f}); fused occupied recall within one cell "
          f"{f['occ_recall']:.3f} (>= 0.6: "
          f"{'met' if results['targets']['fused_occ_recall_met'] else 'NOT met'})")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'echo_map.json').write_text(json.dumps(results, indent=2) + '\n')


if __name__ == '__main__':
    main()
