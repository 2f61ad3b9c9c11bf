"""Benchmark: simulated training data generation on this machine.

Renders SAMPLES samples (scenes x poses) of each split with all cores, as
`av-perception simulate` does, and a few training scenes with one process
(the baseline: the same generator without parallelism), from the same run.
Prints samples per second, the time for 1,000 samples (target: <= 600 s on
2 cores, for the default training split and for the shifted split) and the
CPU time (user + system of the workers) per sample, which other users of a
shared machine disturb less than wall time; the load average at the start
and end says how shared it was. Writes bench/results/simulate.json.

    .venv/bin/python bench/simulate.py [--samples 1000] [--splits train shift]
        [--serial-scenes 4]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from av_perception.sim.bags import simulate

RESULTS = Path(__file__).resolve().parent / 'results'
TARGET_S_PER_1000 = 600


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(out: Path, scenes: int, split: str, poses: int, jobs: int = 0) -> dict:
    """Render ``scenes`` scenes of ``split`` into ``out``; wall and CPU time."""
    cpu, t = _children_cpu(), time.perf_counter()
    res = simulate(out, scenes, seed=123, split=split, poses=poses, jobs=jobs,
                   progress=io.StringIO() if jobs == 1 else sys.stderr)
    wall, cpu = time.perf_counter() - t, _children_cpu() - cpu
    n = sum(r['samples'] for r in res)
    size_mb = sum(f.stat().st_size for f in out.rglob('*.mcap')) / 1e6
    return {'samples': n, 'seconds': round(wall, 1), 'samples_per_s': round(n / wall, 3),
            'seconds_per_1000_samples': round(1000 * wall / n, 1),
            'cpu_s_per_sample': round(cpu / n, 3), 'mb_per_sample': round(size_mb / n, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--samples', type=int, default=1000)
    ap.add_argument('--poses', type=int, default=8)
    ap.add_argument('--splits', nargs='+', default=['train', 'shift'],
                    choices=['train', 'test', 'shift'])
    ap.add_argument('--serial-scenes', type=int, default=4)
    args = ap.parse_args()
    scenes = max(1, args.samples // args.poses)
    tmp = Path(tempfile.mkdtemp(prefix='avp_bench_sim_'))
    load_start = os.getloadavg()
    splits = {}
    try:
        for split in args.splits:
            splits[split] = run(tmp / split, scenes, split, args.poses)
            shutil.rmtree(tmp / split, ignore_errors=True)
        serial = run(tmp / 'serial', args.serial_scenes, 'train', args.poses, jobs=1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    first = splits[args.splits[0]]
    par_rate, ser_rate = first['samples_per_s'], serial['samples_per_s']
    out = {
        'cores': os.cpu_count(),
        'samples': first['samples'],
        'parallel': {'samples_per_s': par_rate, 'seconds': first['seconds']},
        'serial_baseline': {'samples_per_s': ser_rate, 'seconds': serial['seconds'],
                            'samples': serial['samples'],
                            'cpu_s_per_sample': serial['cpu_s_per_sample']},
        'speedup': round(par_rate / ser_rate, 2),
        'seconds_per_1000_samples': first['seconds_per_1000_samples'],
        'target_seconds_per_1000_samples': TARGET_S_PER_1000,
        'mb_per_sample': first['mb_per_sample'],
        'splits': splits,
        'load_average_1min_at_start': round(load_start[0], 2),
        'load_average_1min_at_end': round(os.getloadavg()[0], 2),  # shared machine
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'simulate.json').write_text(json.dumps(out, indent=2) + '\n')
    for split, r in splits.items():
        print(f'simulate {split}: {r["samples_per_s"]:.2f} samples/s on {os.cpu_count()} cores; '
              f'1000 samples in {r["seconds_per_1000_samples"]:.0f} s (target <= '
              f'{TARGET_S_PER_1000} s); {r["cpu_s_per_sample"]:.3f} CPU s/sample; '
              f'{r["mb_per_sample"]:.2f} MB/sample')
    print(f'serial {ser_rate:.2f} samples/s (x{par_rate / ser_rate:.2f} in parallel); load '
          f'{out["load_average_1min_at_start"]} -> {out["load_average_1min_at_end"]}')


if __name__ == '__main__':
    main()
