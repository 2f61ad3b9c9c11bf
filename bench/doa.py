"""Benchmark: direction of arrival on held-out simulated rooms, all methods in
one run (the same scoring code as `av-perception eval direction`).

Rooms of the test split (never trained on), SNR 0-30 dB, RT60 from the
rooms' materials, speech and noise sources, one or two at a time. For the
4-mic array: SRP-PHAT, NormMUSIC and the learned model (distilled from the
16-mic acoustic image, and the label-trained ablation); for the binaural
head: GCC-PHAT and the learned models. Prints each figure beside its
baseline (the best classic method) and target, writes bench/results/doa.json.

    .venv/bin/python bench/doa.py [--scenes 24] [--models av_perception/models]
"""

from __future__ import annotations

import argparse
import io
import json
import math
from pathlib import Path

import numpy as np

from av_perception.doa.evaluate import score
from av_perception.sim.acoustics import build_room
from av_perception.sim.bags import simulate
from av_perception.sim.scene import SceneParams, generate_scene

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / 'results'
SEED = 2023


def bag_conditions(out: Path) -> list[dict]:
    """Per bag (in list_bags order): its room's RT60 (Sabine, 500 Hz-2 kHz
    mean) and SNR, from the scene description the bag was made from."""
    rows = [json.loads(line) for line in (out / 'index.jsonl').read_text().splitlines()]
    conds = []
    for r in sorted(rows, key=lambda r: r['bag']):
        scene = generate_scene(r['scene_id'], r['split'], SEED, SceneParams(snr_db=(0.0, 30.0)))
        room = build_room(scene, 16000, 1, 0, 0.0)
        rt = np.asarray(room.rt60_theory(formula='sabine'), float).reshape(-1)
        conds.append({'rt60': float(np.mean(rt[2:5])) if rt.size >= 5 else float(rt.mean()),
                      'snr_db': scene.snr_db, 'sources': len(scene.active_sources)})
    return conds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--scenes', type=int, default=24)
    ap.add_argument('--data', type=Path, default=ROOT / '.cache' / 'doa_test')
    ap.add_argument('--models', type=Path, default=ROOT.parent / 'av_perception' / 'models')
    args = ap.parse_args()
    if not (args.data / 'index.jsonl').is_file():
        simulate(args.data, args.scenes, seed=SEED, split='test', snr_db=(0.0, 30.0),
                 progress=io.StringIO())
    conds = bag_conditions(args.data)
    rt60 = np.array([c['rt60'] for c in conds])
    snr = np.array([c['snr_db'] for c in conds])
    good = (snr >= 10) & (rt60 <= 0.6)
    plan = {'array': ['srp', 'normmusic', 'learned', 'learned_labels'],
            'binaural': ['gcc', 'learned', 'learned_labels']}
    model_file = {'array': 'direction_respeaker4', 'binaural': 'direction_binaural'}
    results: dict = {'rooms': len(conds), 'rt60_range': [round(float(rt60.min()), 2),
                                                         round(float(rt60.max()), 2)],
                     'snr_range': [round(float(snr.min()), 1), round(float(snr.max()), 1)]}
    for role, methods in plan.items():
        results[role] = {}
        for m in methods:
            if m.startswith('learned'):
                suffix = '_labels' if m.endswith('labels') else ''
                path = args.models / f'{model_file[role]}{suffix}.onnx'
                if not path.is_file():
                    print(f'{role} {m}: no model {path}; skipped')
                    continue
                s = score(args.data, role, 'learned', model=path)
            else:
                s = score(args.data, role, m)
            mask = good[np.asarray(s.bags)] if s.bags else None
            res = s.summary()
            res['snr_ge10_rt60_le06'] = s.summary(mask)
            results[role][m] = res
    classic = {'array': ['srp', 'normmusic'], 'binaural': ['gcc']}
    lines = []
    for role in plan:
        best = min(classic[role], key=lambda m: results[role][m]['median_deg'])
        base = results[role][best]
        for m, r in results[role].items():
            ratio = r['median_deg'] / base['median_deg'] if base['median_deg'] else math.nan
            lines.append(f'{role:9s} {m:15s} median {r["median_deg"]:6.1f} deg  mean '
                         f'{r["mean_deg"]:6.1f}  within10 {r["within10"]:.2f}  '
                         f'{r["ms_per_100ms"]:6.2f} ms/100ms  | vs {best} x{ratio:.2f}  | '
                         f'SNR>=10,RT60<=0.6: median '
                         f'{r["snr_ge10_rt60_le06"]["median_deg"]}')
        results[role]['best_classic'] = best
    a, b = results['array'], results['binaural']
    best4 = min(v['snr_ge10_rt60_le06']['median_deg'] for k, v in a.items()
                if isinstance(v, dict) and v['snr_ge10_rt60_le06']['median_deg'] is not None)
    targets = {'array4_best_median_le_5deg_snr10_rt06': best4,
               'binaural_learned_over_best_classic': (
                   round(b['learned']['median_deg'] / b[b['best_classic']]['median_deg'], 3)
                   if 'learned' in b else None),
               'max_ms_per_100ms': max(v['ms_per_100ms'] for r in (a, b)
                                       for v in r.values() if isinstance(v, dict))}
    results['targets'] = targets
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'doa.json').write_text(json.dumps(results, indent=2) + '\n')
    print(f'{len(conds)} held-out rooms, RT60 {results["rt60_range"]} s, SNR '
          f'{results["snr_range"]} dB ({int(good.sum())} with SNR >= 10 and RT60 <= 0.6)')
    print('\n'.join(lines))
    print(f'targets: 4-mic best median (SNR>=10, RT60<=0.6) {targets["array4_best_median_le_5deg_snr10_rt06"]} '
          f'deg (<= 5); binaural learned / best classic '
          f'{targets["binaural_learned_over_best_classic"]} (<= 0.8); worst '
          f'{targets["max_ms_per_100ms"]} ms per 100 ms chunk (<= 10)')


if __name__ == '__main__':
    main()
