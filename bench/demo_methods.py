"""Benchmark: the demo's held-out room (``av-perception demo``, one minute of
the simulated robot with every node) run twice, once with config/sim.yaml
as shipped and once with the direction methods its onset-weighted ones
replaced on 2026-12-07 (the 4-mic array's plain SRP-PHAT, ``srp``, for
``srp_onset``; the binaural head's plain GCC-PHAT, ``gcc``, for
``gcc_onset``): each sound_direction
instance's error against the room's truth over the same minute (the demo's
own scoring, ``av_perception.report``) and its node's callback time per
100 ms chunk. The two direction nodes run on their own inputs, so one run
holds both swaps. Writes bench/results/demo_methods.json.

    .venv/bin/python bench/demo_methods.py [--seconds 60]

About 4 minutes on 2 cores (two demos).
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
from pathlib import Path

import yaml

from av_perception.paths import config_path
from av_perception.ros.demo import DEMO_PARAMS, run_demo

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / 'results'
#: the swapped run: params key -> the method run instead of config/sim.yaml's
SWAPS = {'/**/sound_direction': 'srp', '/**/binaural/sound_direction': 'gcc'}


def variant(path: Path) -> Path:
    """config/sim.yaml with the methods of :data:`SWAPS`, written to ``path``."""
    doc = yaml.safe_load(config_path(DEMO_PARAMS).read_text())
    for key, method in SWAPS.items():
        doc[key]['ros__parameters']['method'] = method
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def figures(metrics: dict, doc: dict) -> dict:
    """Each direction instance's method, error and callback time in one demo."""
    out = {}
    for role, key, node in (('array', '/**/sound_direction', 'sound_direction: audio/raw'),
                            ('binaural', '/**/binaural/sound_direction',
                             'binaural/sound_direction: /audio/binaural')):
        m = metrics[f'direction_{role}']
        n = metrics['nodes'][node]
        out[role] = {'method': doc[key]['ros__parameters']['method'],
                     'median_deg': m['median_deg'], 'within10': m['within10'],
                     'scored': m['scored'], 'estimates': m['estimates'],
                     'callback_p50_ms': float(n['latency_ms_p50']),
                     'callback_p95_ms': float(n['latency_ms_p95']),
                     'dropped': int(n['dropped'])}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seconds', type=float, default=60.0)
    args = ap.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, params in (('shipped', config_path(DEMO_PARAMS)),
                             ('swapped', variant(tmp / 'swapped.yaml'))):
            out = tmp / name
            code = run_demo(out, args.seconds, params, progress=io.StringIO())
            if code:
                raise SystemExit(f'the {name} demo failed (exit {code})')
            metrics = json.loads((out / 'metrics.json').read_text())
            runs[name] = figures(metrics, yaml.safe_load(Path(params).read_text()))
            print(name, json.dumps(runs[name]), flush=True)
    result = {'seconds': args.seconds,
              'room': 'config/sim.yaml (sim_world: split test, scene 0)',
              **runs,
              'shipped_over_swapped': {role: round(runs['shipped'][role]['median_deg']
                                                   / runs['swapped'][role]['median_deg'], 3)
                                       for role in ('array', 'binaural')}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'demo_methods.json').write_text(json.dumps(result, indent=2) + '\n')
    for role in ('array', 'binaural'):
        a, b = runs['shipped'][role], runs['swapped'][role]
        print(f'{role}: {a["method"]} (shipped) {a["median_deg"]} deg vs {b["method"]} '
              f'{b["median_deg"]} deg (x{result["shipped_over_swapped"][role]})')


if __name__ == '__main__':
    main()
