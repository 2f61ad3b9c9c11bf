"""Benchmark: does the wider sensor randomization (``simulate --randomize
wide``) make the 4-mic direction model better where the shipped one is
weakest (issue #23, items 2 and 5)? A candidate trained on it, beside the
shipped model and the classic methods, on the rooms bench/transfer.py
scores (test and shifted split, seed 4242, 30 rooms each, path view) and on
the held-out rooms of bench/direction.py (72 rooms), median error over
every window. The candidate is made by the recipe of the shipped model on
randomized bags:

    av-perception simulate --scenes 200 --out data/direction_train_wide --teacher --seed 0 \\
        --randomize wide
    av-perception train direction --bags data/direction_train_wide --array array \\
        --target teacher --out bench/.cache/direction_respeaker4_wide.onnx

    .venv/bin/python bench/transfer_wide.py [--candidate FILE.onnx]
"""

from __future__ import annotations

import os

for _v in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_v, '1')

import argparse
import json
from pathlib import Path

from av_perception.direction.evaluate import score
from av_perception.inference import OnnxModel
from av_perception.paths import shipped_model
from direction import test_rooms                        # bench/direction.py's rooms
from transfer import split_rooms                         # bench/transfer.py's rooms

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / 'results'
TRANSFER_SEED, TRANSFER_ROOMS, DIRECTION_ROOMS = 4242, 30, 72


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--candidate', type=Path,
                    default=ROOT / '.cache' / 'direction_respeaker4_wide.onnx')
    args = ap.parse_args()
    folders = {f'transfer_{split}': split_rooms(split, TRANSFER_ROOMS, TRANSFER_SEED)
               for split in ('test', 'shift')}
    folders['direction_test'] = test_rooms(DIRECTION_ROOMS)
    models = {'shipped': shipped_model('direction_respeaker4'), 'wide': args.candidate}
    meta = OnnxModel(args.candidate).metadata
    results: dict = {'candidate': {'file': args.candidate.name,
                                   'train_randomize': meta.get('train_randomize', 'unrecorded'),
                                   'train_windows': meta.get('train_windows')}, 'rooms': {}}
    for name, folder in folders.items():
        r = {m: score(folder, 'array', 'learned', model=p).summary() for m, p in models.items()}
        for m in ('srp', 'normmusic'):
            r[m] = score(folder, 'array', m).summary()
        r['wide_over_shipped'] = round(r['wide']['median_deg'] / r['shipped']['median_deg'], 3)
        results['rooms'][name] = r
        print(f'{name:15s} ' + '  '.join(f'{m} {r[m]["median_deg"]:5.1f}'
                                         for m in ('wide', 'shipped', 'srp', 'normmusic'))
              + f' deg median (wide x{r["wide_over_shipped"]:.2f} of shipped, n {r["srp"]["n"]})')
    results['helps'] = all(r['wide_over_shipped'] < 1.0 for r in results['rooms'].values())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'transfer_wide.json').write_text(json.dumps(results, indent=1) + '\n')


if __name__ == '__main__':
    main()
