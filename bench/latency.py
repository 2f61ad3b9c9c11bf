"""Benchmark: each node's end-to-end latency and throughput at its nominal
input rate, with the node in the publisher's process and in its own process.

For every node of ``av_perception.ros.load_targets.TARGETS`` (the nodes with
inputs): a separate probe node publishes the node's inputs at the nominal
rate, and latency is input publish -> output receipt, matched by header
stamp. A node whose only outputs are /diagnostics or a file (audio_monitor,
recorder) reports its own callback time from /diagnostics instead
(``latency: callback``). Target: every node keeps up with its input rate with
p95 latency below its input period. Writes bench/results/latency.json:
``<node>.p50_ms``, ``<node>.p95_ms``, ``<node>.hz`` (one process) and the same
under ``<node>.two_processes``. A node's further stamped outputs
(``load_targets.second_outputs``: the rotation node's
``rotation/sound_direction``, one per 0.5 s segment, its latency from the
chunk that completes the segment) are measured in runs of their own and
written under the node, ``<node>.<topic>``, with their nominal rate
``expected_hz``; they are not nodes, so the worst-node figures leave them out.

    nice -n 10 .venv/bin/python bench/latency.py [--seconds 20] [--nodes a b]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

from av_perception.ros.load import LoadRun, LoadTarget, bench_setup

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / 'results'


def measure(target: LoadTarget, separate: bool, seconds: float, warmup: float = 2.0) -> dict:
    """Latency and rate of one node at its nominal rate (see module docstring)."""
    with tempfile.TemporaryDirectory() as tmp, \
            LoadRun(target, Path(tmp), separate_process=separate) as run:
        run.publish('warmup', target.rate_hz, warmup)
        before = run.settle(timeout=10)
        phase = run.publish('steady', target.rate_hz, seconds)
        after = run.settle(timeout=20)
        fig = run.phase_figures(phase)
        out = {'input_hz': target.rate_hz, 'published': phase.published}
        if target.output is not None:
            out.update(p50_ms=fig['p50_ms'], p95_ms=fig['p95_ms'], hz=fig['hz'],
                       latency='end_to_end', outputs=fig['outputs'])
        else:
            done = int(after.get('processed', 0)) - int(before.get('processed', 0))
            out.update(p50_ms=float(after['latency_ms_p50']),
                       p95_ms=float(after['latency_ms_p95']),
                       hz=round(done / (phase.stop - phase.start + 1 / phase.rate_hz), 2),
                       latency='callback')
        out['dropped'] = int(after.get('dropped', 0))
        out['lost'] = int(after.get('lost', 0))
        out['p95_below_period'] = (out['p95_ms'] is not None
                                   and out['p95_ms'] < 1e3 / target.rate_hz)
        return out


def main() -> int:
    from av_perception.ros.load_targets import TARGETS, second_outputs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seconds', type=float, default=20.0, help='steady phase per run [s]')
    ap.add_argument('--nodes', nargs='*', default=list(TARGETS), choices=list(TARGETS))
    ap.add_argument('--out', type=Path, default=RESULTS / 'latency.json')
    args = ap.parse_args()
    results: dict = {}
    t0 = time.perf_counter()
    for name in args.nodes:
        one = measure(TARGETS[name], separate=False, seconds=args.seconds)
        two = measure(TARGETS[name], separate=True, seconds=args.seconds)
        results[name] = {**one, 'two_processes': two}
        for label, r in (('one process', one), ('two processes', two)):
            print(f'{name:22s} {label:14s} p50 {r["p50_ms"]:8.2f} ms  p95 {r["p95_ms"]:8.2f} ms '
                  f'(period {1e3 / r["input_hz"]:.0f} ms, '
                  f'x{r["p95_ms"] * r["input_hz"] / 1e3:.2f})'
                  f'  {r["hz"]:6.2f} Hz of {r["input_hz"]:.0f} Hz input  [{r["latency"]}]',
                  flush=True)
    for topic, target in second_outputs().items():
        if target.node not in args.nodes:
            continue
        one = measure(target, separate=False, seconds=args.seconds)
        two = measure(target, separate=True, seconds=args.seconds)
        # one per segment: the input ticks its offset spans, and the one that completes it
        expected_hz = round(target.rate_hz / (math.floor(target.offset_s * target.rate_hz) + 1), 3)
        results[target.node][topic] = {**one, 'expected_hz': expected_hz, 'two_processes': two}
        for label, r in (('one process', one), ('two processes', two)):
            print(f'{topic:22s} {label:14s} p50 {r["p50_ms"]:8.2f} ms  p95 {r["p95_ms"]:8.2f} ms '
                  f'after the chunk that completes its segment; {r["hz"]:6.2f} Hz '
                  f'(one per segment: {expected_hz:.2f} Hz)', flush=True)
    results['seconds_per_run'] = args.seconds
    results['load_average_1min_at_end'] = round(os.getloadavg()[0], 2)  # shared machine
    results['wall_seconds'] = round(time.perf_counter() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + '\n')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    bench_setup()
    raise SystemExit(main())
