"""Benchmark: does today's trainer reproduce a shipped model? The 4-mic
direction model (``direction_respeaker4.onnx``) retrained by
``av-perception train direction`` on its recipe's data (200 rooms of
``simulate --teacher --seed 0``, ``tools/train_direction_models.sh``) with
seeds 0 and 1, beside the shipped file, on the held-out rooms of
``bench/direction.py`` (test split, RT60 0.2-0.8 s, speech and noise), with
SRP-PHAT on the same windows. The two seeds give the run-to-run spread the
shipped model's difference is judged against.

A retrained file that exists is scored as it is (delete it to retrain).

    .venv/bin/python bench/train_reproduce.py [--data data/direction_train] [--scenes 72]
        [--work bench/.cache/train_reproduce]
"""

from __future__ import annotations

import os

for _v in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_v, '1')

import argparse
import io
import json
from pathlib import Path

from av_perception.direction.evaluate import score
from av_perception.inference import OnnxModel
from av_perception.paths import shipped_model
from av_perception.sim.bags import simulate
from av_perception.train.direction import DirectionConfig, train
from direction import SEED, test_rooms  # bench/direction.py's test rooms

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / 'results'
SEEDS = (0, 1)


def train_windows(path: Path) -> int:
    """The training windows a direction model's metadata records."""
    return int(OnnxModel(path).metadata['train_windows'])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', type=Path, default=ROOT.parent / 'data' / 'direction_train')
    ap.add_argument('--scenes', type=int, default=72, help='held-out test rooms')
    ap.add_argument('--work', type=Path, default=ROOT / '.cache' / 'train_reproduce')
    args = ap.parse_args()
    if not (args.data / 'index.jsonl').is_file():   # the recipe's data
        simulate(args.data, 200, seed=0, teacher=True, progress=io.StringIO())
    models = {'shipped': shipped_model('direction_respeaker4')}
    for seed in SEEDS:
        path = args.work / f'direction_respeaker4_seed{seed}.onnx'
        if not path.is_file():
            train(args.data, path, DirectionConfig(array='array', target='teacher', seed=seed))
        models[f'retrained_seed{seed}'] = path
    test = test_rooms(args.scenes)
    data = args.data.resolve()
    shown = data.relative_to(ROOT.parent) if data.is_relative_to(ROOT.parent) else data
    n_train = train_windows(models['retrained_seed0'])
    results: dict = {'data': f'{shown} ({n_train} training windows for the retrained models)',
                     'test_rooms': f'bench/direction.py rooms, '
                     f'{args.scenes} of the test split (seed {SEED})', 'models': {}}
    for name, path in models.items():
        s = score(test, 'array', 'learned', model=path).summary()
        results['models'][name] = {**s, 'train_windows': train_windows(path)}
    results['srp'] = score(test, 'array', 'srp').summary()
    m = results['models']
    spread = abs(m['retrained_seed0']['median_deg'] - m['retrained_seed1']['median_deg'])
    diff = abs(m['shipped']['median_deg'] - m['retrained_seed0']['median_deg'])
    results['median_spread_between_seeds_deg'] = round(spread, 2)
    results['shipped_vs_retrained_seed0_deg'] = round(diff, 2)
    results['reproduces'] = diff <= spread
    for name, r in [*m.items(), ('srp', results['srp'])]:
        ratio = r['median_deg'] / results['srp']['median_deg']
        print(f'{name:16s} median {r["median_deg"]:5.2f} deg (vs SRP-PHAT x{ratio:.2f})  '
              f'within10 {r["within10"]:.3f}  mean {r["mean_deg"]:5.2f}  n {r["n"]}')
    print(f'shipped vs retrained (seed 0): {diff:.2f} deg; seeds 0 vs 1: {spread:.2f} deg -> '
          f'{"reproduces" if results["reproduces"] else "does not reproduce"}')
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'train_reproduce.json').write_text(json.dumps(results, indent=1) + '\n')


if __name__ == '__main__':
    main()
