"""Benchmark: depth from echoes on held-out simulated rooms, all models in one
run (the same scoring code as `av-perception eval echo-depth`).

Scores, on every echo of the test rooms (rooms of the test split, never
trained on): the mean-depth baseline (the per-pixel mean ground-truth depth
of the training rooms), the students trained from the teacher's
pseudo-depth alone, with SAM, and from ground truth, and the RGB teacher.
Metrics over valid pixels per image, averaged (MAE, RMSE, abs-rel,
delta<1.25^i), free-space IoU of the occupancy grids, and inference ms per
echo on one thread. Prints each figure beside the baseline's as a ratio and
the targets; writes bench/results/echo_depth.json.

    .venv/bin/python bench/echo_depth.py [--bags DIR] [--scenes 24] [--models av_perception/models]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from av_perception.echo.evaluate import (METRICS, load_test, score_constant, score_student,
                                         score_teacher)
from av_perception.echo.model import EchoDepthModel

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / 'results'
MEAN_DEPTH = RESULTS / 'echo_depth_train_mean.npy'   # written by --train-data
STUDENTS = {'student_pseudo': 'echo_depth_pseudo', 'student_sam': 'echo_depth',
            'student_gt': 'echo_depth_gt'}


def main() -> None:
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--bags', type=Path, default=ROOT / '.cache' / 'doa_test',
                    help='test bags (simulated here if the folder has none: the held-out '
                         'rooms of bench/direction.py, which shares them)')
    ap.add_argument('--scenes', type=int, default=24, help='test rooms to simulate')
    ap.add_argument('--models', type=Path, default=ROOT.parent / 'av_perception' / 'models')
    ap.add_argument('--train-data', type=Path,
                    help='a training data set folder (`av-perception dataset`) to recompute '
                         f'the mean-depth baseline from (else {MEAN_DEPTH.name})')
    args = ap.parse_args()
    from direction import test_rooms  # the same rooms
    test_rooms(args.scenes, args.bags)
    default = EchoDepthModel(args.models / 'echo_depth.onnx')
    test = load_test(args.bags, default.spec, (default.height, default.width))
    if args.train_data:
        from av_perception.echo.dataset import load
        cache = load(args.train_data)
        if cache.gt is None:
            raise SystemExit('--train-data has no ground truth to average')
        MEAN_DEPTH.parent.mkdir(exist_ok=True)
        gt = np.where(cache.gt <= default.max_depth, cache.gt, np.nan)
        np.save(MEAN_DEPTH, np.nanmean(gt, axis=0).astype(np.float32))
    results = {'mean_baseline': score_constant(test, np.load(MEAN_DEPTH), default.max_depth)}
    for name, stem in STUDENTS.items():
        path = args.models / f'{stem}.onnx'
        if path.is_file():
            results[name] = score_student(args.bags, path, test=test)
        else:
            print(f'{name}: no model {path}; skipped')
    results['teacher'] = score_teacher(test, args.models / 'echo_teacher.onnx',
                                       default.max_depth)
    base = results['mean_baseline']
    for name, r in results.items():
        ratios = '  '.join(f'{m} {r[m]:.3f} (x{r[m] / base[m]:.2f})' if base[m] else
                           f'{m} {r[m]:.3f}' for m in METRICS[:7])
        print(f'{name:15s} {ratios}  {r["ms_per_echo"]:.2f} ms/echo')
    sam, pseudo, gt, teacher = (results.get(k) for k in
                                ('student_sam', 'student_pseudo', 'student_gt', 'teacher'))
    targets = {}
    if sam and pseudo:
        gap = pseudo['rmse'] - teacher['rmse']

        def closes(r):
            return round((pseudo['rmse'] - r['rmse']) / gap, 3) if gap > 0 else None

        targets = {'student_sam_delta1': sam['delta1'],
                   'sam_closes_rmse_gap': closes(sam),
                   'default_ms_per_echo': sam['ms_per_echo']}
        if gt:  # context: what supervision by the true depth closes of the same gap
            targets['gt_closes_rmse_gap'] = closes(gt)
        print(f'targets: student_sam delta1 {sam["delta1"]:.3f} (>= 0.80); SAM closes '
              f'{targets["sam_closes_rmse_gap"]} of the RMSE gap pseudo -> teacher (>= 0.30; '
              f'the ground-truth student closes {targets.get("gt_closes_rmse_gap")}); '
              f'{sam["ms_per_echo"]:.2f} ms per echo (<= 20)')
    RESULTS.mkdir(exist_ok=True)
    # one object per model holding exactly the metrics; the run's facts beside it
    (RESULTS / 'echo_depth.json').write_text(json.dumps(
        {name: {m: r[m] for m in METRICS} for name, r in results.items()}, indent=2) + '\n')
    details = {'test': {'bags': str(args.bags), 'rooms': test.bags,
                        'echoes': len(test.pairs.echo),
                        'unpaired_or_without_gt': test.pairs.unpaired},
               'images_scored': {name: r['images'] for name, r in results.items()},
               'targets': targets}
    (RESULTS / 'echo_depth_details.json').write_text(json.dumps(details, indent=2) + '\n')


if __name__ == '__main__':
    main()
