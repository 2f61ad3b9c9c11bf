"""Benchmark: burst load. Each node with inputs is fed at its nominal rate,
then at 10x that rate for 30 s, then at the nominal rate again, with the
node in its own process (and, with --one-process, in the publisher's).

Shows, per node: bounded queues (the subscription's history depth, as the
node reports it in /diagnostics; a node that falls behind loses the oldest
waiting messages, never buffers without bound), resident memory growth during
and after the burst (< 50 MB), every
message accounted for in the node's own /diagnostics (published = received +
lost, received = processed + dropped), and how long after the burst the
latency is back to normal (no backlog of outputs later than max(1.5 x the
baseline p95, baseline p95 + 20 ms) remains; target < 2 s; for a node
without a stamped output, the time until it has worked off its backlog). Writes
bench/results/burst.json.

    nice -n 10 .venv/bin/python bench/burst.py [--burst-seconds 30] [--nodes a b]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from av_perception.ros.load import RECOVERY_LIMIT_S, RSS_LIMIT_MB, burst, bench_setup

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / 'results'

FACTOR = 10.0


def main() -> int:
    from av_perception.ros.load_targets import TARGETS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--burst-seconds', type=float, default=30.0)
    ap.add_argument('--nodes', nargs='*', default=list(TARGETS), choices=list(TARGETS))
    ap.add_argument('--one-process', action='store_true',
                    help='also run each node in the publisher\'s process')
    ap.add_argument('--out', type=Path, default=RESULTS / 'burst.json')
    args = ap.parse_args()
    results: dict = {'factor': FACTOR, 'rss_limit_mb': RSS_LIMIT_MB,
                     'recovery_limit_s': RECOVERY_LIMIT_S}
    t0 = time.perf_counter()
    modes = [('two_processes', True)] + ([('one_process', False)] if args.one_process else [])
    for name in args.nodes:
        results[name] = {}
        for label, separate in modes:
            with tempfile.TemporaryDirectory() as tmp:
                r = burst(TARGETS[name], Path(tmp), separate, args.burst_seconds, factor=FACTOR)
            results[name][label] = r
            lat = (f'p95 {r["baseline"]["p95_ms"]} -> {r["burst"]["p95_ms"]} -> '
                   f'{r["after"]["p95_ms"]} ms, ' if r['baseline']['p95_ms'] is not None else '')
            print(f'{name:22s} {label:13s} {lat}queue {r["queue"]}, '
                  f'{r["published"]} published = {r["received"]} received + {r["lost"]} lost; '
                  f'{r["processed"]} processed + {r["dropped"]} dropped; '
                  f'RSS +{r["rss_growth_mb"]} MB (limit {RSS_LIMIT_MB:.0f}); recovered in '
                  f'{r["recovery_s"]} s (limit {RECOVERY_LIMIT_S:.0f}, {r["recovery"]}) '
                  f'-> {"ok" if r["ok"] else "NOT MET"}', flush=True)
    results['wall_seconds'] = round(time.perf_counter() - t0, 1)
    results['load_average_1min_at_end'] = round(os.getloadavg()[0], 2)  # shared machine
    results['all_ok'] = all(r['ok'] for n in args.nodes for r in results[n].values())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + '\n')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    bench_setup()
    raise SystemExit(main())
