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

from av_perception.bag.io import nearest, read_bag, stamp_ns
from av_perception.bag.sources import source_readings
from av_perception.direction.classic import fold_front
from av_perception.direction.evaluate import angle_error
from av_perception.geometry.frames import quaternion_yaw


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
    path: Path | None = None
    namespace: str = ''

    @classmethod
    def load(cls, path: str | Path, namespace: str = '') -> BagData:
        data = cls(path=Path(path), namespace=namespace)
        for m in read_bag(path, None, namespace):
            data.topics[m.topic].append(m.msg)
            if data.t0_ns is None or m.timestamp < data.t0_ns:
                data.t0_ns = m.timestamp
        return data

    def seconds(self, ns: int) -> float:
        return (ns - (self.t0_ns or 0)) / 1e9


# ---------------------------------------------------------------- sections
def direction_section(data: BagData, topic: str, name: str, label: str,
                      window_s: float = 0.5) -> Section | None:
    """Published directions vs gt/sound_direction of the same array frame,
    as bench/direction scores them: per analysis window (the estimates sharing a
    stamp, the window's first sample), each true source that sounds in it
    (a gt message stamped within ``window_s`` after the window's stamp) is
    matched to the nearest estimate (folded into the front for
    front/back-ambiguous arrays)."""
    msgs = data.topics.get(topic, [])
    if not msgs:
        return None
    frame = msgs[0].header.frame_id
    # (stamp, reading) of every estimate and every true source in this frame
    est = [(stamp_ns(m), r) for m in msgs for r in source_readings(m)]
    gt = [(stamp_ns(m), r) for m in data.topics.get('gt/sound_direction', [])
          if m.header.frame_id == frame for r in source_readings(m)]
    g_t = np.array([t for t, _ in gt], np.int64)
    t_est = [data.seconds(t) for t, _ in est]
    az_est = [r.azimuth for _, r in est]
    t_gt = [data.seconds(t) for t, _ in gt]
    az_gt = [fold_front(r.azimuth) if r.front_back_ambiguous else r.azimuth for _, r in gt]
    windows: dict[int, list] = defaultdict(list)
    for t, r in est:
        windows[t].append(r)
    errors = []
    for t, found in windows.items():
        inside = (g_t >= t) & (g_t <= t + int(window_s * 1e9))
        truths = {round(az_gt[i], 4) for i in np.flatnonzero(inside)}
        for a in truths:
            errors.append(math.degrees(min(angle_error(f.azimuth, a) for f in found)))
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
        ax.set_title(f'{label}: median error {med} deg' if med is not None else label,
                     fontsize=9)
        ax.legend(loc='upper right', fontsize=7)
    return Section(name, metrics, draw, 1)


def echo_depth_section(data: BagData, max_depth: float = 12.0) -> Section | None:
    """echo_depth/depth against gt/depth of the same instant (resized to the
    prediction, as bench/echo_depth scores it) and echo_depth/occupancy
    against the occupancy the same ray casting makes from gt/depth."""
    from av_perception.echo.evaluate import depth_metrics
    from av_perception.echo.occupancy import free_iou, occupancy_from_depth
    from av_perception.echo.teacher import resize_depth
    from av_perception.image import decode_message

    preds = data.topics.get('echo_depth/depth', [])
    if not preds:
        return None
    gts = data.topics.get('gt/depth', [])
    g_t = np.array([stamp_ns(m) for m in gts], np.int64)
    infos = {stamp_ns(m): m for m in data.topics.get('echo_depth/camera_info', [])}
    occs = {stamp_ns(m): m for m in data.topics.get('echo_depth/occupancy', [])}
    rows, times, last = [], [], None
    for msg in preds:
        t = stamp_ns(msg)
        i = nearest(g_t, t, 5 * 10**7)
        if i is None:
            continue
        pred = decode_message(msg)
        gt = resize_depth(decode_message(gts[i]), pred.shape)
        m = depth_metrics(pred, gt, max_depth)
        if m is None:
            continue
        info, occ = infos.get(t), occs.get(t)
        if info is not None and occ is not None:
            k = np.reshape(np.asarray(info.k, float), (3, 3))
            ref = occupancy_from_depth(np.where(gt <= max_depth, gt, np.nan), k)
            grid = np.asarray(occ.data, np.int8).reshape(occ.info.height, occ.info.width)
            if grid.shape == ref.shape:
                m['occ_iou'] = free_iou(grid, ref)
                last = (pred, gt, grid, ref)
        rows.append(m)
        times.append(data.seconds(t))
    if not rows:
        return None
    keys = ('mae', 'rmse', 'abs_rel', 'delta1', 'occ_iou')
    metrics = {'echoes': len(preds), 'scored': len(rows),
               **{k: round(float(np.nanmean([r.get(k, np.nan) for r in rows])), 3)
                  for k in keys}}

    def draw(axes):
        ax = axes[0]
        ax.plot(times, [r['delta1'] for r in rows], '.-', label='delta1')
        ax.plot(times, [r['mae'] for r in rows], '.-', label='MAE [m]')
        ax.plot(times, [r.get('occ_iou', np.nan) for r in rows], '.-', label='occupancy IoU')
        ax.set_xlabel('time [s]')
        ax.set_title(f'echo depth: delta1 {metrics["delta1"]}, MAE {metrics["mae"]} m',
                     fontsize=9)
        ax.legend(fontsize=7)
        if last is None:
            for a in axes[1:]:
                a.axis('off')
            return
        pred, gt, grid, ref = last
        both = np.concatenate([pred, np.full((pred.shape[0], 2), np.nan), gt], axis=1)
        axes[1].imshow(both, cmap='viridis', vmin=0, vmax=np.nanpercentile(gt, 98))
        axes[1].set_title('last echo: predicted | ground-truth depth', fontsize=8)
        axes[1].axis('off')
        pair = np.concatenate([grid, np.full((grid.shape[0], 2), -1, np.int8), ref], axis=1)
        shade = np.where(pair < 0, 0.6, np.where(pair >= 50, 0.0, 1.0))  # unknown grey
        axes[2].imshow(shade, cmap='gray', vmin=0, vmax=1, origin='lower')  # x right, y up
        axes[2].set_title(f'occupancy: predicted | from gt depth (free IoU '
                          f'{metrics["occ_iou"]})', fontsize=8)
        axes[2].axis('off')
    return Section('echo_depth', metrics, draw, 3)


def echo_map_section(data: BagData) -> Section | None:
    """The last fused echo_depth/map (odom) beside the ground truth the
    simulator recorded: every gt/occupancy (base frame) carried into the
    map's frame through the bag's /tf at its stamp, on the map's lattice
    (occupied where any says so, else free where any does). Scored on the
    cells the map knows (the area the echoes covered): free-space IoU and
    occupied-cell recall within one cell, as bench/echo_map.py names them
    (its reference is the visible part of the truth; here the cells the map
    has evidence for)."""
    from av_perception.echo.map_evaluate import GtGrid, grid_scores
    from av_perception.echo.occupancy import FREE, OCCUPIED, UNKNOWN
    from av_perception.geometry.tf_buffer import TfBuffer, TransformError

    maps = data.topics.get('echo_depth/map', [])
    if not maps:
        return None
    mp = GtGrid.from_message(maps[-1])
    buf = TfBuffer(cache_ns=None)
    for msg in data.topics.get('tf_static', []):
        buf.add_message(msg, static=True)
    for msg in data.topics.get('tf', []):
        buf.add_message(msg)
    rows, cols = mp.data.shape
    x0, y0, yaw = mp.origin
    jj, ii = np.meshgrid(np.arange(cols) + 0.5, np.arange(rows) + 0.5)
    c, s_ = math.cos(yaw), math.sin(yaw)
    gx, gy = jj.ravel() * mp.resolution, ii.ravel() * mp.resolution
    centres = np.stack([x0 + c * gx - s_ * gy, y0 + s_ * gx + c * gy], -1)
    occ = np.zeros(rows * cols, bool)
    free = np.zeros(rows * cols, bool)
    used = missing = 0
    for g in data.topics.get('gt/occupancy', []):
        try:
            rel = buf.lookup(mp.frame_id, g.header.frame_id, stamp_ns(g)).matrix
        except TransformError:
            missing += 1
            continue
        lab = GtGrid.from_message(g).moved(rel, mp.frame_id).sample_cells(
            centres, mp.resolution, yaw)
        occ |= lab == OCCUPIED
        free |= lab == FREE
        used += 1
    if not used:
        return None
    truth = np.full(rows * cols, UNKNOWN, np.int8)
    truth[free] = FREE
    truth[occ] = OCCUPIED
    truth = truth.reshape(rows, cols)
    known = mp.data != UNKNOWN
    ref = np.where(known, truth, UNKNOWN).astype(np.int8)
    pred = np.where(truth != UNKNOWN, mp.data, UNKNOWN).astype(np.int8)
    sc = grid_scores(pred, ref, truth)
    metrics = {'frame': mp.frame_id, 'cells_known': int(known.sum()),
               'truth_grids': used, 'truth_grids_without_tf': missing,
               'free_iou': _round3(sc['free_iou']), 'occ_recall': _round3(sc['occ_recall'])}
    extent = (x0, x0 + cols * mp.resolution, y0, y0 + rows * mp.resolution)

    def show(ax, grid, title):
        img = np.where(grid == UNKNOWN, 0.5, np.where(grid == OCCUPIED, 0.0, 1.0))
        ax.imshow(img, origin='lower', cmap='gray', vmin=0, vmax=1, extent=extent)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f'x [m] ({mp.frame_id})')

    def draw(axes):
        show(axes[0], mp.data, f'fused echo map: free IoU {metrics["free_iou"]}, '
                               f'occupied recall {metrics["occ_recall"]}')
        show(axes[1], truth, f'ground truth ({used} gt/occupancy via /tf)')
    return Section('echo_map', metrics, draw, 2)


def _round3(v: float) -> float | None:
    return None if v is None or math.isnan(v) else round(float(v), 3)


def rotation_section(data: BagData) -> Section | None:
    """The rotation node's integrated yaw (its /tf) against the true yaw
    (gt/pose), both from their first common instant; and its yaw rate."""
    est = []
    for arr in data.topics.get('tf', []):
        for tr in arr.transforms:
            if tr.child_frame_id == 'base_link_rotation':
                est.append((stamp_ns(tr), quaternion_yaw(tr.transform.rotation)))
    poses = data.topics.get('gt/pose', [])
    if not est or not poses:
        return None
    gt_t = np.array([stamp_ns(m) for m in poses], np.int64)
    gt_yaw = np.unwrap([quaternion_yaw(m.pose.orientation) for m in poses])
    e_t = np.array([t for t, _ in est], np.int64)
    e_yaw = np.unwrap([y for _, y in est])
    pairs = [(t, y, nearest(gt_t, t, 5 * 10**7)) for t, y in zip(e_t, e_yaw)]
    pairs = [(t, y, i) for t, y, i in pairs if i is not None]
    if not pairs:
        return None
    t0, y0, i0 = pairs[0]
    ts = np.array([data.seconds(t) for t, _, _ in pairs])
    ey = np.degrees(np.array([y - y0 for _, y, _ in pairs]))
    gy = np.degrees(np.array([gt_yaw[i] - gt_yaw[i0] for _, _, i in pairs]))
    err = np.abs(ey - gy)
    turned = float(np.abs(np.diff(gy)).sum())
    metrics = {'frames': len(pairs), 'median_abs_error_deg': round(float(np.median(err)), 2),
               'final_error_deg': round(float(err[-1]), 2),
               'true_turning_deg': round(turned, 1),
               'drift_per_100deg_turned': round(float(err[-1]) / turned * 100, 2)
               if turned > 0 else None}

    def draw(axes):
        ax = axes[0]
        ax.plot(ts, gy, c='0.6', lw=3, label='true yaw (gt/pose)')
        ax.plot(ts, ey, c='tab:blue', lw=1, label='integrated (rotation /tf)')
        ax.set_xlabel('time [s]')
        ax.set_ylabel('yaw since start [deg]')
        ax.set_title(f'rotation: {metrics["final_error_deg"]} deg off after '
                     f'{metrics["true_turning_deg"]:.0f} deg of turns', fontsize=9)
        ax.legend(fontsize=7)
    return Section('rotation', metrics, draw, 1)


def heatmap_section(data: BagData) -> Section | None:
    """av_heatmap/heatmap and av_heatmap/peak against gt/source_mask of the
    same frame, on every frame that shows the sounding object: the robot's
    view metrics (pointing, pixel AUC-ROC, cIoU at the object's size) and
    the paper's cIoU; beside them, on the same bag's frames and scored
    offline by the benchmark's code (av_perception.av_heatmap.evaluate), the centre
    prior, a random point, the projected acoustic image alone, the model
    without it and the fused model. Two overlays drawn with the published
    peak (+) and the object's outline (white)."""
    from av_perception.av_heatmap import metrics as m
    from av_perception.av_heatmap.projection import project_point
    from av_perception.image import decode_message

    maps = data.topics.get('av_heatmap/heatmap', [])
    if not maps:
        return None
    masks = data.topics.get('gt/source_mask', [])
    m_t = np.array([stamp_ns(x) for x in masks], np.int64)
    overlays = {stamp_ns(x): x for x in data.topics.get('av_heatmap/overlay', [])}
    peaks = {stamp_ns(x): x for x in data.topics.get('av_heatmap/peak', [])}
    infos = data.topics.get('camera/camera_info', [])
    K = np.reshape(infos[0].k, (3, 3)) if infos else None
    rows, shown = [], []
    for msg in maps:
        t = stamp_ns(msg)
        i = nearest(m_t, t, 10**7)
        if i is None:
            continue
        mask = decode_message(masks[i]) > 0
        if not mask.any():
            continue
        heat = decode_message(msg)
        rows.append((m.pointing(heat, mask), m.pixel_auc(heat, mask), m.size_ciou(heat, mask),
                     m.ciou(heat, mask), float(mask.mean())))
        peak = None
        if t in peaks and K is not None:
            p = peaks[t].point
            if p.z > 0:
                peak = project_point(K, (p.x, p.y, p.z))
        if t in overlays and len(shown) < 2 and (not shown or t - shown[-1][0] > 2 * 10**9):
            shown.append((t, decode_message(overlays[t]), mask, peak))
    r = np.asarray(rows, float).reshape(-1, 5)
    metrics = {'heatmaps': len(maps), 'peaks': len(peaks),
               'scored_with_object_in_view': len(rows),
               'object_area_share_median': round(float(np.median(r[:, 4])), 4) if rows else None}
    if rows:
        metrics['node'] = {'pointing': round(float(r[:, 0].mean()), 3),
                           'pixel_auc': round(float(r[:, 1].mean()), 3),
                           'size_ciou': round(float(r[:, 2].mean()), 3),
                           'ciou': round(m.success_rate(r[:, 3]), 3)}
    metrics['offline'] = _offline_scores(data)

    def draw(axes):
        for ax, item in zip(axes, shown + [None] * (2 - len(shown))):
            ax.axis('off')
            if item is None:
                continue
            t, over, mask, peak = item
            ax.imshow(over)
            ax.contour(mask, levels=[0.5], colors='white', linewidths=0.8)
            if peak is not None:
                ax.plot([peak[0]], [peak[1]], marker='+', color='magenta', markersize=12,
                        mew=2)
            ax.set_title(f'heatmap at {data.seconds(t):.1f} s (white: sounding object, '
                         '+: peak)', fontsize=8)
        node = metrics.get('node', {})
        off = metrics['offline'] or {}
        lines = [f'{len(rows)} frames with the object in view: node pointing '
                 f'{node.get("pointing")}, pixel AUC {node.get("pixel_auc")}']
        if off:   # three methods a line, within the panel
            scored = [f'{k} {v["pointing"]}' for k, v in off.items() if isinstance(v, dict)]
            lines += ['offline pointing: ' + ', '.join(scored[:3])] + [
                ', '.join(scored[i:i + 3]) for i in range(3, len(scored), 3)]
        axes[0].text(0, -0.08, '\n'.join(lines), transform=axes[0].transAxes, fontsize=7,
                     va='top')
    return Section('av_heatmap', metrics, draw, 2)


def _offline_scores(data: BagData) -> dict | None:
    """The benchmark's methods on the bag's frames (None: the bag cannot be
    scored offline, e.g. no camera_info or gt/source_mask)."""
    from av_perception.av_heatmap.evaluate import score
    from av_perception.av_heatmap.heatmap import ALONE_MODEL
    from av_perception.errors import ConfigError, InputError
    from av_perception.paths import shipped_model
    if data.path is None:
        return None
    try:
        s = score(data.path, alone=shipped_model(ALONE_MODEL), namespace=data.namespace)
    except (InputError, ConfigError):
        return None
    keep = ('pointing', 'pixel_auc', 'size_ciou', 'ciou', 'n')
    return {k: {x: v for x, v in s.summary(k).items() if x in keep} for k in s.methods}


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
                                    'provider'],
                         colWidths=[0.44, 0.1, 0.12, 0.12, 0.12, 0.1])  # within the axes
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
                                'binaural direction', window_s=0.256),
    # the rotation node's (use_audio): one direction per frame's 0.5 s segment
    lambda d: direction_section(d, 'rotation/sound_direction', 'direction_binaural_motion',
                                'binaural, learned from motion', window_s=0.5),
    echo_depth_section,
    echo_map_section,
    rotation_section,
    heatmap_section,
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
