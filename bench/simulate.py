"""Benchmark: simulated training data generation on this machine.

Renders SAMPLES training samples (scenes x poses) with all cores, as
`av-perception simulate` does, and a few scenes with one process (the
baseline: the same generator without parallelism), from the same run.
Prints samples per second, the time for 1,000 samples (target: < 600 s on
2 cores) and the speed-up, and writes bench/results/simulate.json.

    .venv/bin/python bench/simulate.py [--samples 1000] [--serial-scenes 4]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from av_perception.sim.bags import simulate

RESULTS = Path(__file__).resolve().parent / 'results'


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--samples', type=int, default=1000)
    ap.add_argument('--poses', type=int, default=8)
    ap.add_argument('--serial-scenes', type=int, default=4)
    args = ap.parse_args()
    scenes = max(1, args.samples // args.poses)
    tmp = Path(tempfile.mkdtemp(prefix='avp_bench_sim_'))
    try:
        t = time.perf_counter()
        res = simulate(tmp / 'parallel', scenes, seed=123, poses=args.poses)
        par_s = time.perf_counter() - t
        n_par = sum(r['samples'] for r in res)
        t = time.perf_counter()
        res1 = simulate(tmp / 'serial', args.serial_scenes, seed=123, poses=args.poses, jobs=1,
                        progress=io.StringIO())
        ser_s = time.perf_counter() - t
        n_ser = sum(r['samples'] for r in res1)
        size_mb = sum(f.stat().st_size for f in (tmp / 'parallel').rglob('*.mcap')) / 1e6
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    par_rate, ser_rate = n_par / par_s, n_ser / ser_s
    out = {
        'cores': os.cpu_count(),
        'samples': n_par,
        'parallel': {'samples_per_s': round(par_rate, 3), 'seconds': round(par_s, 1)},
        'serial_baseline': {'samples_per_s': round(ser_rate, 3), 'seconds': round(ser_s, 1),
                            'samples': n_ser},
        'speedup': round(par_rate / ser_rate, 2),
        'seconds_per_1000_samples': round(1000 / par_rate, 1),
        'target_seconds_per_1000_samples': 600,
        'mb_per_sample': round(size_mb / n_par, 3),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'simulate.json').write_text(json.dumps(out, indent=2) + '\n')
    print(f'simulate: {par_rate:.2f} samples/s on {os.cpu_count()} cores vs '
          f'{ser_rate:.2f} serial (x{par_rate / ser_rate:.2f}); 1000 samples in '
          f'{1000 / par_rate:.0f} s (target < 600 s); {size_mb / n_par:.2f} MB/sample')


if __name__ == '__main__':
    main()
