"""Every benchmark in one run, and one table: each figure beside its baseline
and its target, from the same run; writes bench/results/summary.json.

    .venv/bin/python bench/run_all.py [--only direction echo_depth ...] [--skip-run]

Each benchmark is its own script (``bench/<name>.py``) writing
``bench/results/<name>.json``; this runs them one after another (each with
its default, committed settings), then reads their results. ``--skip-run``
only tabulates the results already there.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / 'results'


def get(doc: dict, path: str):
    """``doc['a']['b']`` for ``'a.b'``; None where a key is missing."""
    for key in path.split('.'):
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


@dataclass
class Figure:
    """One line of the table.

    Attributes:
        label: what is measured.
        value: the project's figure from the benchmark's JSON.
        baseline: the baseline's figure from the same JSON (or None).
        target: the target, as text.
        ok: whether the value meets the target.
    """

    label: str
    value: Callable[[dict], float | None]
    baseline: Callable[[dict], float | None] | None
    target: str
    ok: Callable[[float, dict], bool] | None  # None: a figure shown for context


def _ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def _motion_over_gcc(label: str, prefix: str, factor: float) -> Figure:
    """A rotation.json figure of issue #25: the binaural model from motion
    against GCC-PHAT on the segments under ``prefix`` ('' for all test
    segments, e.g. 'shift.binaural_broadband.'), target <= ``factor`` x."""
    motion, gcc = f'{prefix}binaural_motion.median_deg', f'{prefix}binaural_gcc.median_deg'
    return Figure(label, lambda d: get(d, motion), lambda d: get(d, gcc),
                  f'<= {factor:.1f} x GCC-PHAT', lambda v, d: v <= factor * get(d, gcc))


def _gap_closed(d: dict, student: str = 'student_sam') -> float | None:
    """Share of the RMSE gap between the pseudo-depth student and the teacher
    that ``student`` (SAM by default) closes."""
    p, s, t = (get(d, f'{k}.rmse') for k in ('student_pseudo', student, 'teacher'))
    if None in (p, s, t) or p == t:
        return None
    return (p - s) / (p - t)


def _latency_worst(d: dict, key: str, two: bool = False) -> float | None:
    """Worst ratio over nodes: p95 latency / input period (key 'p95') or
    input rate / output rate (key 'hz'), in one process or (``two``) with the
    node in its own process."""
    worst = None
    for node, r in d.items():
        if not isinstance(r, dict) or 'p95_ms' not in r:
            continue
        r = r.get('two_processes', {}) if two else r
        if not r.get('input_hz') or r.get('p95_ms') is None:
            continue
        v = r['p95_ms'] * r['input_hz'] / 1e3 if key == 'p95' else (
            r['input_hz'] / r['hz'] if r.get('hz') else math.inf)
        worst = v if worst is None else max(worst, v)
    return worst


def _burst_runs(d: dict):
    for node, r in d.items():
        if isinstance(r, dict):
            for mode in ('one_process', 'two_processes'):
                if isinstance(r.get(mode), dict):
                    yield r[mode]


def _share_ok(d: dict) -> float | None:
    runs = list(_burst_runs(d))
    return sum(bool(r.get('ok')) for r in runs) / len(runs) if runs else None


def _burst_worst(d: dict, key: str) -> float | None:
    vals = [r[key] for r in _burst_runs(d) if r.get(key) is not None]
    return max(vals) if vals else None


BENCHES: dict[str, list[Figure]] = {
    'direction': [
        Figure('4-mic best median [deg], SNR>=10 dB, RT60<=0.6 s (baseline: srp, the default)',
               lambda d: get(d, 'targets.array4_best_median_deg_snr10_rt06_all'),
               lambda d: get(d, 'array.srp.snr_ge10_rt60_le06.median_deg'),
               '<= 5', lambda v, d: v <= 5),
        Figure('binaural learned median [deg]', lambda d: get(d, 'binaural.learned.median_deg'),
               lambda d: get(d, f'binaural.{get(d, "binaural.best_classic")}.median_deg'),
               '<= 0.8 x best classic',
               lambda v, d: v <= 0.8 * get(d, f'binaural.{get(d, "binaural.best_classic")}.'
                                              'median_deg')),
        Figure('worst ms per 100 ms chunk', lambda d: get(d, 'targets.max_ms_per_100ms'), None,
               '<= 10', lambda v, d: v <= 10),
        Figure('binaural from motion median [deg] (the rotation node\'s network)',
               lambda d: get(d, 'binaural.learned_motion.median_deg'),
               lambda d: get(d, 'binaural.gcc.median_deg'), '<= 0.8 x GCC-PHAT',
               lambda v, d: v <= 0.8 * get(d, 'binaural.gcc.median_deg')),
        Figure('binaural from motion median, shifted split [deg]',
               lambda d: get(d, 'binaural_shift.learned_motion.median_deg'),
               lambda d: get(d, 'binaural_shift.gcc.median_deg'), '<= 0.8 x GCC-PHAT',
               lambda v, d: v <= 0.8 * get(d, 'binaural_shift.gcc.median_deg')),
    ],
    'direction_onset': [
        Figure('4-mic srp_onset median [deg], 200 test rooms (baseline: srp, the default)',
               lambda d: get(d, 'test.srp_onset.median_deg'),
               lambda d: get(d, 'test.srp.median_deg'), '(context)', None),
        Figure('4-mic srp_onset median [deg], 90 shifted rooms (baseline: srp, the default)',
               lambda d: get(d, 'shift.srp_onset.median_deg'),
               lambda d: get(d, 'shift.srp.median_deg'), '(context)', None),
    ],
    'direction_tracking': [
        Figure('4-mic tracked ID switches per min (baseline: untracked)',
               lambda d: get(d, 'array.tracked.id_switches_per_min'),
               lambda d: get(d, 'array.untracked.id_switches_per_min'), '< untracked',
               lambda v, d: v < get(d, 'array.untracked.id_switches_per_min')),
        Figure('4-mic tracked recall (baseline: untracked)',
               lambda d: get(d, 'array.tracked.recall'),
               lambda d: get(d, 'array.untracked.recall'), '(context)', None),
        Figure('4-mic tracked IDF1 (baseline: untracked >= birth confidence)',
               lambda d: get(d, 'array.tracked.idf1'),
               lambda d: get(d, 'array.untracked_confident.idf1'), '(context)', None),
        Figure('binaural tracked ID switches per min (baseline: untracked)',
               lambda d: get(d, 'binaural.tracked.id_switches_per_min'),
               lambda d: get(d, 'binaural.untracked.id_switches_per_min'), '< untracked',
               lambda v, d: v < get(d, 'binaural.untracked.id_switches_per_min')),
    ],
    'echo_depth': [
        Figure('student_sam delta1', lambda d: get(d, 'student_sam.delta1'),
               lambda d: get(d, 'mean_baseline.delta1'), '>= 0.80', lambda v, d: v >= 0.80),
        Figure('student_sam RMSE [m] (baseline: student_pseudo)',
               lambda d: get(d, 'student_sam.rmse'), lambda d: get(d, 'student_pseudo.rmse'),
               '(context)', None),
        Figure('share of the pseudo->teacher RMSE gap SAM closes', _gap_closed, None,
               '>= 0.30', lambda v, d: v >= 0.30),
        Figure('share of the same gap the ground-truth student closes',
               lambda d: _gap_closed(d, 'student_gt'), None, '(context)', None),
        Figure('student_sam ms per echo', lambda d: get(d, 'student_sam.ms_per_echo'), None,
               '<= 20', lambda v, d: v <= 20),
    ],
    'echo_map': [
        Figure('fused free-space IoU (baseline: single echo)',
               lambda d: get(d, 'targets.fused_free_iou'),
               lambda d: get(d, 'targets.single_free_iou'), '>= 0.80', lambda v, d: v >= 0.80),
        Figure('fused occupied recall within one cell (baseline: single echo)',
               lambda d: get(d, 'targets.fused_occ_recall'),
               lambda d: get(d, 'targets.single_occ_recall'), '>= 0.6', lambda v, d: v >= 0.6),
        Figure('fused free-space IoU of the true depth (oracle)',
               lambda d: get(d, 'oracle_gt_depth.fused.free_iou'), None, '(context)', None),
    ],
    'rotation': [
        Figure('self-supervised yaw median [deg]', lambda d: get(d, 'selfsup.median_deg'),
               lambda d: get(d, 'opencv.median_deg'), '<= 2', lambda v, d: v <= 2),
        Figure('self-supervised yaw median, poorly textured [deg]',
               lambda d: get(d, 'poorly_textured.selfsup.median_deg'),
               lambda d: get(d, 'poorly_textured.opencv.median_deg'),
               '<= OpenCV', lambda v, d: v <= get(d, 'poorly_textured.opencv.median_deg')),
        _motion_over_gcc('binaural from motion median, all test segments [deg]', '', 1.0),
        _motion_over_gcc('binaural from motion median, broadband test segments [deg]',
                         'binaural_broadband.', 0.8),
        _motion_over_gcc('binaural from motion median, shifted split [deg]', 'shift.', 1.0),
        _motion_over_gcc('binaural from motion median, shifted broadband segments [deg]',
                         'shift.binaural_broadband.', 0.8),
    ],
    'av_heatmap': [
        Figure('pointing, path views of held-out rooms', lambda d: get(d, 'path.fused.pointing'),
               lambda d: get(d, 'path.acoustic.pointing'),
               '>= 0.6 and >= acoustic image alone + 0.15',
               lambda v, d: bool(get(d, 'targets.path.pointing.pass')
                                 and get(d, 'targets.path.pointing_over_acoustic.pass'))),
        Figure('pixel AUC-ROC, path views', lambda d: get(d, 'path.fused.pixel_auc'),
               lambda d: get(d, 'path.acoustic.pixel_auc'), '>= 0.85',
               lambda v, d: v >= 0.85),
        Figure('pointing, shifted split', lambda d: get(d, 'shift.fused.pointing'),
               lambda d: get(d, 'shift.acoustic.pointing'),
               '>= 0.5 and >= acoustic image alone + 0.15',
               lambda v, d: bool(get(d, 'targets.shift.pointing.pass')
                                 and get(d, 'targets.shift.pointing_over_acoustic.pass'))),
        Figure('pixel AUC-ROC, shifted split', lambda d: get(d, 'shift.fused.pixel_auc'),
               lambda d: get(d, 'shift.acoustic.pixel_auc'), '>= 0.85',
               lambda v, d: v >= 0.85),
        Figure('pointing, path views, model without the acoustic image',
               lambda d: get(d, 'path.alone.pointing'),
               lambda d: get(d, 'path.center_prior.pointing'),
               '(baseline)', None),
        Figure('cIoU (paper, share >= 0.5), close-ups', lambda d: get(d, 'closeup.fused.ciou'),
               lambda d: get(d, 'closeup.center_prior.ciou'), '(context)', None),
        Figure('R@1 audio->image, path views', lambda d: get(d, 'path.fused.r1_a2i'),
               lambda d: get(d, 'path.alone.r1_a2i'), '(reported)', None),
    ],
    'transfer': [
        Figure('learned models meeting both targets on the shifted split (share)',
               lambda d: _ratio(len(get(d, 'summary.pass') or []),
                                get(d, 'summary.models_scored')),
               None, '= 1 (>= baseline, within 15 % of test)', lambda v, d: v == 1),
        Figure('4-mic learned direction, shifted split median [deg]',
               lambda d: get(d, 'table.direction_respeaker4.shift.learned'),
               lambda d: get(d, 'table.direction_respeaker4.shift.baseline'),
               '<= best classic (else not the default)',
               lambda v, d: v <= get(d, 'table.direction_respeaker4.shift.baseline')),
        Figure('self-supervised yaw, shifted split median [deg]',
               lambda d: get(d, 'table.rotation_visual (self-supervised).shift.learned'),
               lambda d: get(d, 'table.rotation_visual (self-supervised).shift.baseline'),
               '<= OpenCV', lambda v, d: v <= get(
                   d, 'table.rotation_visual (self-supervised).shift.baseline')),
    ],
    'simulate': [
        Figure('seconds per 1000 samples, training families (2 cores)',
               lambda d: get(d, 'seconds_per_1000_samples'), None, '<= 600',
               lambda v, d: v <= 600),
        Figure('seconds per 1000 samples, shifted split (2 cores)',
               lambda d: get(d, 'splits.shift.seconds_per_1000_samples'), None, '<= 600',
               lambda v, d: v <= 600),
    ],
    'burst': [
        Figure('nodes bounded, accounted and recovered after 10x for 30 s (share)',
               lambda d: _share_ok(d), None, '= 1', lambda v, d: v == 1),
        Figure('worst RSS growth in a burst [MB]', lambda d: _burst_worst(d, 'rss_growth_mb'),
               None, '< 50', lambda v, d: v < 50),
        Figure('worst recovery after a burst [s]', lambda d: _burst_worst(d, 'recovery_s'),
               None, '< 2', lambda v, d: v < 2),
    ],
    'soak': [
        Figure('RSS growth over the soak [MB]', lambda d: get(d, 'rss_growth_mb'), None,
               '(no trend)', lambda v, d: get(d, 'rss_trend_mb_per_min') < 1.0),
        Figure('p95 latency last minute [ms] (baseline: first minute)',
               lambda d: get(d, 'p95_ms_last'), lambda d: get(d, 'p95_ms_first'),
               '(not rising)', lambda v, d: v <= 1.5 * get(d, 'p95_ms_first')),
        Figure('missed echoes', lambda d: get(d, 'missed_echoes'), None, '= 0',
               lambda v, d: v == 0),
    ],
    'latency': [
        Figure('worst node p95 latency / input period (one process)',
               lambda d: _latency_worst(d, 'p95'), None, '< 1', lambda v, d: v < 1),
        Figure('worst node input rate / output rate (one process)',
               lambda d: _latency_worst(d, 'hz'), None, '<= 1.05', lambda v, d: v <= 1.05),
        Figure('worst node p95 latency / input period (two processes)',
               lambda d: _latency_worst(d, 'p95', True), None, '< 1', lambda v, d: v < 1),
        Figure('worst node input rate / output rate (two processes)',
               lambda d: _latency_worst(d, 'hz', True), None, '<= 1.05',
               lambda v, d: v <= 1.05),
    ],
}


def run(name: str) -> tuple[int, float]:
    """Run ``bench/<name>.py``; returns (exit code, seconds)."""
    start = time.monotonic()
    code = subprocess.call([sys.executable, str(ROOT / f'{name}.py')])
    return code, time.monotonic() - start


def table(names: list[str], runs: dict[str, tuple[int, float]]) -> dict:
    """Read each benchmark's JSON; print the table; return the summary."""
    summary: dict = {}
    print(f'\n{"benchmark":11s} {"figure":55s} {"value":>9s} {"baseline":>9s} {"ratio":>6s} '
          f'target')
    for name in names:
        path = RESULTS / f'{name}.json'
        if not path.is_file():
            summary[name] = {'error': f'no {path.name}'}
            print(f'{name:11s} (no {path.name})')
            continue
        doc = json.loads(path.read_text())
        rows = []
        for f in BENCHES[name]:
            v = f.value(doc)
            b = f.baseline(doc) if f.baseline else None
            try:
                ok = None if v is None or f.ok is None else bool(f.ok(v, doc))
            except TypeError:  # a figure the check needs is missing
                ok = None
            r = _ratio(v, b)
            rows.append({'figure': f.label, 'value': v, 'baseline': b, 'ratio': r,
                         'target': f.target, 'met': ok})
            fmt = (lambda x: f'{x:9.3f}' if isinstance(x, (int, float)) and not
                   (isinstance(x, float) and math.isnan(x)) else f'{"-":>9s}')
            mark = {True: 'met', False: 'NOT MET', None: '-' if f.ok is None else '?'}[ok]
            print(f'{name:11s} {f.label[:55]:55s} {fmt(v)} {fmt(b)} '
                  f'{(f"x{r:.2f}" if r is not None else "-"):>6s} {f.target}  [{mark}]')
        summary[name] = {'figures': rows}
        if name in runs:
            summary[name]['exit_code'], summary[name]['seconds'] = runs[name][0], \
                round(runs[name][1], 1)
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--only', nargs='*', choices=list(BENCHES), help='these benchmarks only')
    ap.add_argument('--skip-run', action='store_true', help='tabulate the existing results')
    args = ap.parse_args()
    names = args.only or list(BENCHES)
    runs = {}
    if not args.skip_run:
        for name in names:
            if not (ROOT / f'{name}.py').is_file():
                print(f'[run_all] no bench/{name}.py', file=sys.stderr)
                continue
            print(f'[run_all] {name} ...', flush=True)
            runs[name] = run(name)
    summary = table(names, runs)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    failed = [n for n, (code, _) in runs.items() if code != 0]
    if failed:
        print(f'[run_all] failed: {", ".join(failed)}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
