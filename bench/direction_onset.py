"""Benchmark: should the 4-mic array's default be onset-weighted SRP-PHAT?

``srp_onset`` (SRP-PHAT whose time-frequency bins are weighted by their
onsets, av_perception.direction.srp) against plain SRP-PHAT, the node's
default, and NormMUSIC, on more rooms than bench/direction.py scores, so
that the interval of the ratio can decide: the first ``--test`` test-split
rooms whose RT60 is 0.2-0.8 s (bench/direction.py's rooms are the first
72 of them) and the first ``--shift`` shifted-split rooms (RT60 up to
several seconds; its first 30 are bench/direction.py's), the same seed,
SNR and scoring (``av-perception eval direction``'s). Per method: median,
mean, share within 10 deg; for srp_onset and NormMUSIC the ratio of
medians to SRP-PHAT's with its 95 % interval over whole rooms resampled
(bench/paired.py), and how many windows each is better or worse by more
than 1 deg. Writes bench/results/direction_onset.json.

    .venv/bin/python bench/direction_onset.py [--test 200] [--shift 90]
"""

from __future__ import annotations

import os

for _v in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_v, '1')

import argparse
import json
from pathlib import Path

import numpy as np

from direction import SEED, conditions, shift_rooms, test_rooms
from paired import paired_ratio_ci
from av_perception.direction.evaluate import score

ROOT = Path(__file__).resolve().parent
METHODS = ('srp', 'srp_onset', 'normmusic')


def compare(folder: Path, subset_conditions: bool) -> dict:
    """Each method's summary on ``folder``'s 4-mic windows, and srp_onset's
    and NormMUSIC's ratios to SRP-PHAT on the same windows."""
    kept = {m: score(folder, 'array', m) for m in METHODS}
    out: dict = {}
    base = np.asarray(kept['srp'].errors_deg, float)
    mask = None
    if subset_conditions:
        c = conditions(folder, kept['srp'])
        mask = (c['snr'] >= 10) & (c['rt60'] <= 0.6)
    for m, s in kept.items():
        e = np.asarray(s.errors_deg, float)
        r = s.summary()
        r.pop('ms_per_100ms', None)
        if mask is not None:
            r['snr_ge10_rt60_le06_median_deg'] = round(float(np.median(e[mask])), 2)
        if m != 'srp':
            r['over_srp'] = round(float(np.median(e) / np.median(base)), 3)
            r['over_srp_ci95'] = paired_ratio_ci(e, base, groups=kept['srp'].bags)
            r['windows_better_by_1deg'] = int((e < base - 1.0).sum())
            r['windows_worse_by_1deg'] = int((e > base + 1.0).sum())
        out[m] = r
    out['scored'] = {'rooms_with_windows': len(set(kept['srp'].bags)), 'windows': int(base.size),
                     'folder': folder.name}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--test', type=int, default=200, help='test-split rooms (RT60 0.2-0.8 s)')
    ap.add_argument('--shift', type=int, default=90, help='shifted-split rooms')
    args = ap.parse_args()
    results = {'test': compare(test_rooms(args.test), True),
               'shift': compare(shift_rooms(args.shift), False),
               'seed': SEED}
    for split in ('test', 'shift'):
        r = results[split]
        print(f'{split}: {r["scored"]["rooms_with_windows"]} rooms with scored windows, '
              f'{r["scored"]["windows"]} windows')
        for m in METHODS:
            x = r[m]
            ratio = f' x{x["over_srp"]} {x["over_srp_ci95"]} of srp' if 'over_srp' in x else ''
            print(f'  {m:10s} median {x["median_deg"]:6.2f} deg  mean {x["mean_deg"]:6.2f}  '
                  f'within10 {x["within10"]:.3f}{ratio}')
    out = ROOT / 'results' / 'direction_onset.json'
    out.write_text(json.dumps(results, indent=2) + '\n')
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
