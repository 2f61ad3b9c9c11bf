"""The demo's report: what the nodes published in a bag, against the
simulator's ground truth in the same bag, as one PNG and a metrics JSON.

Plain Python (no ROS): it reads the bag with rosbags. Each section takes the
messages it needs and returns its figures and the panels it draws; a section
whose topics are not in the bag is left out (a robot's bag has no ground
truth: only the node table is drawn).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from av_perception.bag.io import read_bag
from av_perception.doa.classic import fold_front
from av_perception.doa.evaluate import angle_error


def stamp_ns(msg) -> int:
    """Header stamp of a rosbags message [ns]."""
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


@dataclass
class Section:
    """One part of the report: its figures and how to draw it.

    Attributes:
        name: key in the metrics JSON.
        metrics: figures (JSON-serialisable).
        draw: draws the section on the matplotlib axes it is given.
        panels: how many axes ``draw`` needs.
    """

    name: str
    metrics: dict
    draw: Callable | None = None
    panels: int = 0


@dataclass
class BagData:
    """The messages of a demo bag, by relative topic, in time order."""

    topics: dict[str, list] = field(default_factory=lambda: defaultdict(list))
    t0_ns: int | None = None

    @classmethod
    def load(cls, path: str | Path, namespace: str = '') -> BagData:
        data = cls()
        for m in read_bag(path, None, namespace):
            data.topics[m.topic].append(m.msg)
            if data.t0_ns is None or m.timestamp < data.t0_ns:
                data.t0_ns = m.timestamp
        return data

    def seconds(self, ns: int) -> float:
        return (ns - (self.t0_ns or 0)) / 1e9


# ---------------------------------------------------------------- sections
def direction_section(data: BagData, topic: str, name: str, label: str) -> Section | None:
    """Published directions vs gt/sound_direction of the same array frame:
    each estimate's error to the nearest true source that sounds within
    0.3 s of it (folded into the front for front/back-ambiguous arrays)."""
    est = data.topics.get(topic, [])
    if not est:
        return None
    frame = est[0].header.frame_id
    gt = [m for m in data.topics.get('gt/sound_direction', []) if m.header.frame_id == frame]
    g_t = np.array([stamp_ns(m) for m in gt], np.int64)
    errors, t_est, az_est, t_gt, az_gt = [], [], [], [], []
    for m in gt:
        t_gt.append(data.seconds(stamp_ns(m)))
        az_gt.append(fold_front(m.azimuth) if m.front_back_ambiguous else m.azimuth)
    for m in est:
        t = stamp_ns(m)
        t_est.append(data.seconds(t))
        az_est.append(m.azimuth)
        if not gt:
            continue
        near = np.abs(g_t - t) <= 3 * 10**8
        truths = [fold_front(g.azimuth) if m.front_back_ambiguous else g.azimuth
                  for g, ok in zip(gt, near) if ok]
        if truths:
            errors.append(math.degrees(min(angle_error(m.azimuth, a) for a in truths)))
    e = np.asarray(errors)
    metrics = {'topic': topic, 'frame': frame, 'estimates': len(est), 'scored': int(e.size),
               'median_deg': round(float(np.median(e)), 2) if e.size else None,
               'within10': round(float((e <= 10).mean()), 3) if e.size else None}

    def draw(axes):
        ax = axes[0]
        ax.scatter(t_gt, np.degrees(az_gt), s=30, c='0.8', label='truth')
        ax.scatter(t_est, np.degrees(az_est), s=6, c='tab:red', label='estimate')
        ax.set_ylim(-180, 180)
        ax.set_xlabel('time [s]')
        ax.set_ylabel('azimuth [deg]')
        med = metrics['median_deg']
        ax.set_title(f'{label}: median error {med} deg' if med is not None else label)
        ax.legend(loc='upper right', fontsize=7)
    return Section(name, metrics, draw, 1)


def nodes_section(data: BagData) -> Section | None:
    """Each node input's rate, latency and drops: the last /diagnostics
    status of each (node, input), and the facts of each node (provider,
    model)."""
    last: dict[str, dict[str, str]] = {}
    for arr in data.topics.get('diagnostics', []):
        for st in arr.status:
            last[st.name] = {kv.key: kv.value for kv in st.values}
    if not last:
        return None
    metrics = {}
    for name, values in sorted(last.items()):
        if name.startswith('recorder: '):  # a row per recorded topic: left out
            continue
        row = {k: values[k] for k in ('rate_hz', 'latency_ms_p50', 'latency_ms_p95',
                                      'received', 'dropped', 'execution_provider', 'model_id')
               if k in values}
        if row:
            metrics[name] = row

    def draw(axes):
        ax = axes[0]
        ax.axis('off')
        rows = [[n[:38], r.get('rate_hz', ''), r.get('latency_ms_p50', ''),
                 r.get('latency_ms_p95', ''), r.get('dropped', ''),
                 r.get('execution_provider', '').replace('ExecutionProvider', '')]
                for n, r in metrics.items()]
        table = ax.table(cellText=rows or [['-'] * 6], loc='upper center', fontsize=7,
                         colLabels=['node: input', 'Hz', 'p50 ms', 'p95 ms', 'dropped',
                                    'provider'])
        table.auto_set_font_size(False)
        table.set_fontsize(7)
        table.scale(1, 1.1)
        ax.set_title('nodes (last /diagnostics)')
    return Section('nodes', metrics, draw, 1)


#: Report sections, in drawing order: each maps the bag data to a Section
#: (or None when its topics are absent).
SECTIONS: list[Callable[[BagData], Section | None]] = [
    lambda d: direction_section(d, 'sound_direction', 'direction_array', '4-mic direction'),
    lambda d: direction_section(d, 'binaural/sound_direction', 'direction_binaural',
                                'binaural direction'),
    nodes_section,
]


def build(bag: str | Path, out_dir: str | Path, namespace: str = '') -> dict:
    """Write ``report.png`` and ``metrics.json`` for a bag into ``out_dir``;
    returns the metrics."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = BagData.load(bag, namespace)
    sections = [s for s in (f(data) for f in SECTIONS) if s is not None]
    metrics = {'bag': str(bag), 'topics': {t: len(v) for t, v in sorted(data.topics.items())},
               **{s.name: s.metrics for s in sections}}
    panels = sum(s.panels for s in sections)
    cols = 3
    rows = max(1, math.ceil(panels / cols))
    fig = plt.figure(figsize=(5 * cols, 3.6 * rows))
    k = 0
    for s in sections:
        axes = [fig.add_subplot(rows, cols, k + i + 1) for i in range(s.panels)]
        s.draw(axes)
        k += s.panels
    fig.tight_layout()
    fig.savefig(out_dir / 'report.png', dpi=90)
    plt.close(fig)
    (out_dir / 'metrics.json').write_text(json.dumps(metrics, indent=2) + '\n')
    return metrics
