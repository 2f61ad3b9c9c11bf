"""The README's status table, generated from the benchmarks' JSON files.

    python bench/status.py           # print the table
    python bench/status.py --write   # replace it in README.md (between the markers)

Every figure, baseline and status of the table is read from
``bench/results/<bench>.json`` (written by ``bench/<bench>.py``, all run by
``bench/run_all.py``); only the targets and the cells' wording live here.
``test/test_status_table.py`` checks that README.md holds exactly what
:func:`render` returns, so after new benchmark runs: ``--write``.

A key a row needs that its file lacks raises a KeyError naming the file and
the key (e.g. ``bench/results/direction.json has no key 'binaural.learned.median_deg'``).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from av_perception.node_docs import marked_section, write_section

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / 'bench' / 'results'
README = ROOT / 'README.md'
BEGIN = '<!-- status table: `python bench/status.py --write` from bench/results/*.json -->'
END = '<!-- end of status table -->'


class Doc:
    """One benchmark's JSON; ``doc['a.b']`` is ``json['a']['b']`` or a
    KeyError naming the file and the key."""

    def __init__(self, path: Path):
        self.name = f'bench/results/{path.name}'
        if not path.is_file():
            raise KeyError(f'{self.name} is missing (run bench/{path.stem}.py)')
        self.data = json.loads(path.read_text())

    def __getitem__(self, key: str):
        node = self.data
        for part in key.split('.'):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f'{self.name} has no key {key!r}')
            node = node[part]
        return node


Get = Callable[[Doc], float]


@dataclass(frozen=True)
class Row:
    """One line of the table.

    Attributes:
        capability, node: the first two cells.
        bench: the JSON file's stem under bench/results/.
        figure: reads the figure; ``fmt`` formats it (``{v}``).
        baseline: reads the baseline (None: no baseline); ``base_fmt``
            formats it (``{b}``); the ratio figure / baseline follows.
        target: the target's cell (``{t}``: the JSON's value at ``target_key``).
        met: ``met(figure, doc)`` decides the status.
    """

    capability: str
    node: str
    bench: str
    figure: Get
    fmt: str
    target: str
    met: Callable[[float, Doc], bool]
    baseline: Get | None = None
    base_fmt: str = ''
    target_key: str | None = None


def _gap_closed(d: Doc, student: str) -> float:
    """Share of the RMSE gap between the pseudo-depth student and the teacher
    that ``student`` closes (as bench/run_all.py computes it)."""
    p, s, t = (d[f'{k}.rmse'] for k in ('student_pseudo', student, 'teacher'))
    return (p - s) / (p - t)


def _latency_worst(d: Doc) -> tuple[float, str]:
    """Worst p95 latency / input period over nodes, one process or two."""
    worst = None
    for node, r in d.data.items():
        if not isinstance(r, dict) or 'p95_ms' not in r:
            continue
        for run in (r, r.get('two_processes') or {}):
            if run.get('p95_ms') is not None and run.get('input_hz'):
                v = run['p95_ms'] * run['input_hz'] / 1e3
                if worst is None or v > worst[0]:
                    worst = (v, node)
    if worst is None:
        raise KeyError(f'{d.name} has no node with p95_ms and input_hz')
    return worst


def _burst_worst(d: Doc, key: str) -> float:
    vals = [run[key] for r in d.data.values() if isinstance(r, dict)
            for run in (r.get('one_process'), r.get('two_processes'))
            if isinstance(run, dict) and run.get(key) is not None]
    if not vals:
        raise KeyError(f'{d.name} has no node run with {key!r}')
    return max(vals)


def _best_classic(d: Doc, array: str) -> float:
    return d[f'{array}.{d[f"{array}.best_classic"]}.median_deg']


ROWS: list[Row] = [
    Row('sound direction, 4-mic array (onset-weighted SRP-PHAT, the default)',
        'sound_direction', 'direction',
        lambda d: d['array.srp_onset.snr_ge10_rt60_le06.median_deg'],
        'median {v:.1f}° (SNR ≥ 10 dB, RT60 ≤ 0.6 s)', '≤ 5°', lambda v, d: v <= 5,
        lambda d: d['array.srp.snr_ge10_rt60_le06.median_deg'], 'SRP-PHAT {b:.1f}°'),
    Row('sound direction, 4-mic array, shifted split', 'sound_direction', 'direction_onset',
        lambda d: d['shift.srp_onset.median_deg'], 'median {v:.1f}°', '≤ SRP-PHAT',
        lambda v, d: v <= d['shift.srp.median_deg'],
        lambda d: d['shift.srp.median_deg'], 'SRP-PHAT {b:.1f}°'),
    Row('sound direction, binaural head (learned)', 'sound_direction', 'direction',
        lambda d: d['binaural.learned.median_deg'], 'median {v:.1f}°',
        '≤ 0.8 × classic', lambda v, d: v <= 0.8 * _best_classic(d, 'binaural'),
        lambda d: _best_classic(d, 'binaural'), 'best classic {b:.1f}°'),
    Row('tracked sound sources, 4-mic array', 'sound_direction', 'direction_tracking_srp_onset',
        lambda d: d['array.tracked.id_switches_per_min'], '{v:.1f} ID switches/min',
        '< untracked', lambda v, d: v < d['array.untracked.id_switches_per_min'],
        lambda d: d['array.untracked.id_switches_per_min'], 'untracked {b:.1f}'),
    Row('depth from echoes (SAM student)', 'echo_depth', 'echo_depth',
        lambda d: d['student_sam.delta1'], 'δ<1.25 {v:.3f}', '≥ 0.80', lambda v, d: v >= 0.80,
        lambda d: d['mean_baseline.delta1'], 'mean depth {b:.3f}'),
    Row('depth from echoes: SAM vs pseudo-depth', 'echo_depth', 'echo_depth',
        lambda d: _gap_closed(d, 'student_sam'), 'closes {v:.1%} of the RMSE gap to the teacher',
        '≥ 30%', lambda v, d: v >= 0.30,
        lambda d: _gap_closed(d, 'student_gt'), 'ground-truth student {b:.1%}'),
    Row('depth from echoes, compute', 'echo_depth', 'echo_depth',
        lambda d: d['student_sam.ms_per_echo'], '{v:.1f} ms per echo (1 thread)', '≤ 20 ms',
        lambda v, d: v <= 20),
    Row('echo map (fused in odom): free space', 'echo_depth', 'echo_map',
        lambda d: d['targets.fused_free_iou'], 'free IoU {v:.2f}',
        '≥ {t:.2f}', lambda v, d: v >= d['targets.fused_free_iou_target'],
        lambda d: d['targets.single_free_iou'], 'single echo {b:.2f}',
        'targets.fused_free_iou_target'),
    Row('echo map (fused in odom): obstacles', 'echo_depth', 'echo_map',
        lambda d: d['targets.fused_occ_recall'], 'occupied recall {v:.2f}',
        '≥ {t:.2f}', lambda v, d: v >= d['targets.fused_occ_recall_target'],
        lambda d: d['targets.single_occ_recall'], 'single echo {b:.2f}',
        'targets.fused_occ_recall_target'),
    Row('rotation from camera pairs (self-supervised)', 'rotation', 'rotation',
        lambda d: d['selfsup.median_deg'], 'median {v:.2f}° per pair', '≤ {t:g}°',
        lambda v, d: v <= d['targets.selfsup_median_deg_le'],
        lambda d: d['opencv.median_deg'], 'OpenCV {b:.1f}°', 'targets.selfsup_median_deg_le'),
    Row('rotation, poorly textured rooms', 'rotation', 'rotation',
        lambda d: d['poorly_textured.selfsup.median_deg'], 'median {v:.2f}°', '≤ OpenCV',
        lambda v, d: v <= d['poorly_textured.opencv.median_deg'],
        lambda d: d['poorly_textured.opencv.median_deg'], 'OpenCV {b:.1f}°'),
    Row('binaural direction learned from motion (no labels)', 'rotation', 'rotation',
        lambda d: d['binaural_motion.median_deg'], 'median {v:.1f}°', '≤ 1.0 × GCC-PHAT',
        lambda v, d: v <= d['binaural_gcc.median_deg'],
        lambda d: d['binaural_gcc.median_deg'], 'GCC-PHAT {b:.1f}°'),
    Row('binaural from motion, broadband sounds', 'rotation', 'rotation',
        lambda d: d['binaural_broadband.binaural_motion.median_deg'], 'median {v:.1f}°',
        '≤ 0.8 × GCC-PHAT',
        lambda v, d: v <= 0.8 * d['binaural_broadband.binaural_gcc.median_deg'],
        lambda d: d['binaural_broadband.binaural_gcc.median_deg'], 'GCC-PHAT {b:.1f}°'),
    Row('binaural from motion, shifted split', 'rotation', 'rotation',
        lambda d: d['shift.binaural_motion.median_deg'], 'median {v:.1f}°',
        '≤ 1.0 × GCC-PHAT', lambda v, d: v <= d['shift.binaural_gcc.median_deg'],
        lambda d: d['shift.binaural_gcc.median_deg'], 'GCC-PHAT {b:.1f}°'),
    Row('binaural from motion, shifted split, broadband sounds', 'rotation', 'rotation',
        lambda d: d['shift.binaural_broadband.binaural_motion.median_deg'], 'median {v:.1f}°',
        '≤ 0.8 × GCC-PHAT',
        lambda v, d: v <= 0.8 * d['shift.binaural_broadband.binaural_gcc.median_deg'],
        lambda d: d['shift.binaural_broadband.binaural_gcc.median_deg'], 'GCC-PHAT {b:.1f}°'),
    Row('binaural from motion, sound direction\'s bench (72 test rooms; broadband)',
        'rotation', 'direction', lambda d: d['binaural.learned_motion.median_deg'],
        'median {v:.1f}°', '≤ 0.8 × GCC-PHAT',
        lambda v, d: v <= 0.8 * d['binaural.gcc.median_deg'],
        lambda d: d['binaural.gcc.median_deg'], 'GCC-PHAT {b:.1f}°'),
    Row('binaural from motion, sound direction\'s bench, shifted split (30 rooms)',
        'rotation', 'direction', lambda d: d['binaural_shift.learned_motion.median_deg'],
        'median {v:.1f}°', '≤ 0.8 × GCC-PHAT',
        lambda v, d: v <= 0.8 * d['binaural_shift.gcc.median_deg'],
        lambda d: d['binaural_shift.gcc.median_deg'], 'GCC-PHAT {b:.1f}°'),
    Row('where to look: pointing at the sounding object (path views, held-out rooms)',
        'av_heatmap', 'av_heatmap', lambda d: d['path.fused.pointing'], 'pointing {v:.3f}',
        '≥ {t:g} and ≥ acoustic image alone + 0.15',
        lambda v, d: (d['targets.path.pointing.pass']
                      and d['targets.path.pointing_over_acoustic.pass']),
        lambda d: d['path.acoustic.pointing'], 'acoustic image alone {b:.3f}',
        'targets.path.pointing.target'),
    Row('heatmap against the object (path views, held-out rooms)', 'av_heatmap', 'av_heatmap',
        lambda d: d['path.fused.pixel_auc'], 'pixel AUC-ROC {v:.2f}', '≥ {t:g}',
        lambda v, d: d['targets.path.pixel_auc.pass'],
        lambda d: d['path.acoustic.pixel_auc'], 'acoustic image alone {b:.2f}',
        'targets.path.pixel_auc.target'),
    Row('where to look: pointing at the sounding object (shifted split)', 'av_heatmap',
        'av_heatmap', lambda d: d['shift.fused.pointing'], 'pointing {v:.3f}',
        '≥ {t:g} and ≥ acoustic image alone + 0.15',
        lambda v, d: (d['targets.shift.pointing.pass']
                      and d['targets.shift.pointing_over_acoustic.pass']),
        lambda d: d['shift.acoustic.pointing'], 'acoustic image alone {b:.3f}',
        'targets.shift.pointing.target'),
    Row('heatmap against the object (shifted split)', 'av_heatmap', 'av_heatmap',
        lambda d: d['shift.fused.pixel_auc'], 'pixel AUC-ROC {v:.2f}', '≥ {t:g}',
        lambda v, d: d['targets.shift.pixel_auc.pass'],
        lambda d: d['shift.acoustic.pixel_auc'], 'acoustic image alone {b:.2f}',
        'targets.shift.pixel_auc.target'),
    Row('every node keeps up (2 cores)', 'all', 'latency',
        lambda d: _latency_worst(d)[0], 'worst p95 latency {v:.2f} × input period', '< 1',
        lambda v, d: v < 1),
    Row('10 × input rate for 30 s', 'all', 'burst',
        lambda d: _burst_worst(d, 'rss_growth_mb'), 'worst RSS growth +{v:.1f} MB',
        '< {t:g} MB', lambda v, d: v < d['rss_limit_mb'], target_key='rss_limit_mb'),
    Row('10 × input rate for 30 s', 'all', 'burst',
        lambda d: _burst_worst(d, 'recovery_s'), 'back to normal within {v:.1f} s',
        '< {t:g} s', lambda v, d: v < d['recovery_limit_s'], target_key='recovery_limit_s'),
    Row('10 min soak of the demo graph', 'all', 'soak',
        lambda d: d['rss_growth_mb'], 'RSS +{v:.1f} MB', '< 50 MB', lambda v, d: v < 50),
    Row('10 min soak of the demo graph', 'all', 'soak',
        lambda d: d['missed_echoes'], '{v:d} missed echoes', '0', lambda v, d: v == 0),
    Row('simulator (training data)', 'sim_world', 'simulate',
        lambda d: d['seconds_per_1000_samples'], '{v:,.0f} s per 1,000 samples (2 cores)',
        '< {t:g} s', lambda v, d: v < d['target_seconds_per_1000_samples'],
        lambda d: 1000 / d['serial_baseline.samples_per_s'], 'serial {b:,.0f} s',
        'target_seconds_per_1000_samples'),
]


def _cells(row: Row, doc: Doc) -> list[str]:
    v = row.figure(doc)
    figure = row.fmt.format(v=v)
    if row.baseline is None:
        base = '—'
    else:
        b = row.baseline(doc)
        base = row.base_fmt.format(b=b) + (f' (×{v / b:.2f})' if b else '')
    status = 'met' if row.met(v, doc) else '**not met**'
    node = row.node if row.node == 'all' else f'`{row.node}`'
    target = row.target.format(t=doc[row.target_key]) if row.target_key else row.target
    return [row.capability, node, figure, base, target, status]


def render(results: Path = RESULTS) -> str:
    """The README's status table (markers included), from ``results``."""
    docs: dict[str, Doc] = {}
    lines = [BEGIN, '', '| capability | node | figure | baseline | target | status |',
             '|---|---|---|---|---|---|']
    for row in ROWS:
        if row.bench not in docs:
            docs[row.bench] = Doc(results / f'{row.bench}.json')
        lines.append('| ' + ' | '.join(_cells(row, docs[row.bench])) + ' |')
    lines += ['', END]
    return '\n'.join(lines)


def section(text: str) -> str | None:
    """The status table section of a README text (markers included), or None."""
    return marked_section(text, BEGIN, END)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    table = render()
    if '--write' not in argv:
        print(table)
        return 0
    return write_section(README, BEGIN, END, table, 'README.md')


if __name__ == '__main__':
    sys.exit(main())
