"""Scoring the echo map on any bags (``av-perception eval echo-map`` and
bench/echo_map).

A bag needs ``audio/echo``, the odometry on ``/tf`` (``odom`` -> base; and
``/tf_static`` if the chain has fixed links) and a ``gt/occupancy`` (in the
base frame) at each echo's stamp; topics may be absolute or under a
namespace. Per bag, in stamp order, each echo:

1. runs the echo-depth model; its depth becomes REP 117 ranges
   (``rep117_depth``: +Inf where it reaches the model's range) and column
   rays (``depth_rays``), as the node does;
2. is fused into an :class:`~av_perception.echo.mapping.EchoMap` in ``odom``
   with the base's pose from a TF buffer fed with the bag's /tf and
   /tf_static at the echo's stamp (exact or interpolated, never
   extrapolated: an echo without it is counted, ``echoes_without_tf``, and
   left out of everything, as is an echo without a gt/occupancy within
   ``tolerance``);
3. is scored alone: its single-echo grid (base frame) against its own
   gt/occupancy.

**The reference.** What the echoes could have seen: from the sensor (the
virtual camera's position in the base frame), one sight line per image
column, cast through the gt/occupancy grid up to the model's range (the
horizontal extent of the horizon pixel at optical depth ``max_depth``) and
within the echo grid's window, stopping at the first occupied cell (seen)
or at unknown space (outside the room). The cells these sight lines cross
are the area the echo covered. The truth of a cell is the gt grids' own
label: the single echo is scored on its grid's cells (resampled nearest to
the echo grid's lattice); for the fused map each gt grid is carried into
odom with the base's pose at its stamp (nearest cell at each map cell's
centre), and where the grids disagree (a cell near a wall, sampled from
differently rotated grids) the majority of those that know the cell wins,
a tie going to occupied. The map's reference is that truth over the union
of the covered areas.

**Metrics** (each for the fused map and for every single echo):

- ``free_iou``: intersection over union of the free cells of the prediction
  and of the reference (a predicted-free cell outside the covered area
  counts against it);
- ``occ_recall``: share of the reference's occupied cells with a predicted
  occupied cell within one cell (8-neighbourhood);
- ``occ_precision``: share of the predicted occupied cells with an occupied
  cell of the truth (all known cells, covered or not) within one cell.

Summary: ``fused`` = the final map of each bag, averaged over bags;
``fused_over_time`` = the map so far against the reference so far after
every echo, averaged over echoes, then bags (what a robot navigating
meanwhile gets); ``single`` = per echo, averaged over echoes. NaN (no cell
to score) values are left out of the means. ``fused_free_cells`` sums, over
the final maps, the cells behind the free IoU (:func:`free_breakdown`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.ndimage import binary_dilation

from av_perception.bag.io import nearest, read_bag, stamp_ns
from av_perception.doa.dataset import list_bags
from av_perception.echo.mapping import (EchoMap, FusionParams, GrowingGrid, export, from_frame,
                                        to_frame)
from av_perception.echo.occupancy import (FREE, OCCUPIED, UNKNOWN, CameraMount, EchoRays,
                                          GridSpec, depth_rays, free_iou, rasterize, ray_points,
                                          rep117_depth)
from av_perception.errors import InputError
from av_perception.geometry.frames import quaternion_yaw
from av_perception.geometry.tf_buffer import TfBuffer, TransformError

TOPICS = ('audio/echo', 'tf', 'tf_static', 'gt/occupancy')
METRICS = ('free_iou', 'occ_recall', 'occ_precision')
_NEAR = np.ones((3, 3), bool)           # within one cell: the 8-neighbourhood


@dataclass
class GtGrid:
    """A ground-truth occupancy grid.

    Attributes:
        data: (rows, cols) int8, row = y: 0 free, 100 occupied, -1 unknown.
        resolution: metres per cell.
        origin: (x [m], y [m], yaw [rad]) of cell (0, 0)'s outer corner in
            ``frame_id`` (nav_msgs/MapMetaData.origin).
        frame_id: its frame (the base frame).
    """

    data: np.ndarray
    resolution: float
    origin: tuple[float, float, float]
    frame_id: str

    @classmethod
    def from_message(cls, msg) -> GtGrid:
        info = msg.info
        data = np.asarray(msg.data, np.int8).reshape(int(info.height), int(info.width))
        o = info.origin
        return cls(data, float(info.resolution),
                   (float(o.position.x), float(o.position.y), quaternion_yaw(o.orientation)),
                   msg.header.frame_id)

    def sample(self, points: np.ndarray) -> np.ndarray:
        """Labels of the cells holding (N, 2) points of its frame [m] (-1 outside)."""
        x0, y0, yaw = self.origin
        c, s = math.cos(yaw), math.sin(yaw)
        p = np.asarray(points, float).reshape(-1, 2) - (x0, y0)
        gx, gy = c * p[:, 0] + s * p[:, 1], -s * p[:, 0] + c * p[:, 1]
        ci = np.floor(gx / self.resolution).astype(np.int64)
        ri = np.floor(gy / self.resolution).astype(np.int64)
        rows, cols = self.data.shape
        inside = (ci >= 0) & (ci < cols) & (ri >= 0) & (ri < rows)
        out = np.full(len(p), UNKNOWN, np.int8)
        out[inside] = self.data[ri[inside], ci[inside]]
        return out


def sight_lines(k: np.ndarray, width: int, mount: CameraMount, max_range: float
                ) -> tuple[tuple[float, float], np.ndarray, np.ndarray]:
    """The sensor's (x, y) in the base frame [m], and per image column the
    azimuth of its horizon pixel [rad] and the horizontal extent [m] of that
    pixel's ray at optical depth ``max_range``."""
    r, t = mount.optical_to_base()
    kk = np.asarray(k, float).reshape(3, 3)
    u = np.arange(width, dtype=float)
    d = np.stack([(u - kk[0, 2]) / kk[0, 0], np.zeros_like(u), np.ones_like(u)], -1) @ r.T
    return (float(t[0]), float(t[1])), np.arctan2(d[:, 1], d[:, 0]), max_range * np.hypot(
        d[:, 0], d[:, 1])


def visible_rays(gt: GtGrid, origin: tuple[float, float], azimuth: np.ndarray,
                 reach: np.ndarray) -> EchoRays:
    """What a perfect sensor at ``origin`` (base frame) sees of a gt grid
    along each azimuth: the ray ends at the first occupied cell (a hit), or
    free at unknown space, the grid's edge or ``reach`` [m]."""
    step = gt.resolution / 4.0
    s = np.arange(0.0, float(np.max(reach)) + step, step)
    x = origin[0] + s[None, :] * np.cos(azimuth)[:, None]
    y = origin[1] + s[None, :] * np.sin(azimuth)[:, None]
    lab = gt.sample(np.stack([x.ravel(), y.ravel()], -1)).reshape(x.shape)
    lab[s[None, :] > np.asarray(reach)[:, None]] = UNKNOWN       # beyond the range: unseen
    stop = lab != FREE
    first = np.where(stop.any(axis=1), stop.argmax(axis=1), len(s) - 1)
    rows = np.arange(len(azimuth))
    hit = lab[rows, first] == OCCUPIED
    return EchoRays(origin, np.asarray(azimuth, float), s[first], hit)


def near(mask: np.ndarray) -> np.ndarray:
    """Cells within one cell (8-neighbourhood) of a True cell."""
    return binary_dilation(mask, _NEAR) if mask.any() else mask


def grid_scores(pred: np.ndarray, ref: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The three metrics of a predicted grid against the reference (the
    truth over the covered area) and the truth (all known cells), all on one
    lattice; NaN where a metric has nothing to count."""
    p_occ, r_occ, t_occ = pred == OCCUPIED, ref == OCCUPIED, truth == OCCUPIED
    n_ref, n_pred = int(r_occ.sum()), int(p_occ.sum())
    return {'free_iou': free_iou(pred, ref),
            'occ_recall': float((r_occ & near(p_occ)).sum() / n_ref) if n_ref else math.nan,
            'occ_precision': float((p_occ & near(t_occ)).sum() / n_pred) if n_pred else math.nan}


@dataclass
class Echo:
    """One scored echo: its REP 117 depth, its gt grid and the base's pose
    in odom at its stamp (x [m], y [m], yaw [rad])."""

    stamp_ns: int
    depth: np.ndarray
    gt: GtGrid
    pose: tuple[float, float, float]


@dataclass
class BagEchoes:
    """The echoes of one bag that can be scored, and what was left out."""

    name: str
    echoes: list[Echo] = field(default_factory=list)
    chunks: int = 0
    without_tf: int = 0
    without_gt: int = 0
    tf_errors: dict[str, int] = field(default_factory=dict)


def read_echoes(path: str | Path, predict: Callable[[np.ndarray, int], np.ndarray],
                max_depth: float, namespace: str = '', odom_frame: str = 'odom',
                base_frame: str | None = None, tolerance: float = 0.05,
                tf_tolerance: float = 0.0) -> BagEchoes:
    """Run ``predict(samples (C, N), sample_rate) -> depth [m]`` on every
    audio/echo chunk of a bag that has a gt/occupancy within ``tolerance``
    [s] and a transform ``odom_frame`` <- ``base_frame`` (default: the
    gt/occupancy frame) at its stamp (``tf_tolerance`` [s] beyond the
    transforms' ends).

    Raises:
        InputError: the bag has no audio/echo, or no gt/occupancy.
    """
    path = Path(path)
    tf = TfBuffer(cache_ns=None)
    chunks, gts = [], []
    for m in read_bag(path, TOPICS, namespace):
        if m.topic == 'audio/echo':
            chunks.append(m.msg)
        elif m.topic == 'gt/occupancy':
            gts.append(m.msg)
        else:
            tf.add_message(m.msg, static=m.topic == 'tf_static')
    if not chunks:
        raise InputError('bag', f'audio/echo chunks in {path}', 'none')
    if not gts:
        raise InputError('bag', f'gt/occupancy (the reference) in {path}', 'none')
    gts.sort(key=stamp_ns)
    g_st = np.array([stamp_ns(g) for g in gts], np.int64)
    out = BagEchoes(path.name, chunks=len(chunks))
    for msg in sorted(chunks, key=stamp_ns):
        t = stamp_ns(msg)
        j = nearest(g_st, t, int(tolerance * 1e9))
        if j is None:
            out.without_gt += 1
            continue
        gt = GtGrid.from_message(gts[j])
        base = base_frame or gt.frame_id
        try:
            pose = tf.lookup(odom_frame, base, t, int(tf_tolerance * 1e9))
            gt_pose = tf.lookup(odom_frame, gt.frame_id, stamp_ns(gts[j]),
                                int(tf_tolerance * 1e9))
        except TransformError as exc:
            out.without_tf += 1
            kind = type(exc).__name__
            out.tf_errors[kind] = out.tf_errors.get(kind, 0) + 1
            continue
        if base != gt.frame_id or stamp_ns(gts[j]) != t:
            # the gt grid in the echo's base frame at the echo's stamp
            rel = np.linalg.inv(pose.matrix) @ gt_pose.matrix
            x0, y0, yaw0 = gt.origin
            o = rel @ np.array([x0, y0, 0.0, 1.0])
            gt = GtGrid(gt.data, gt.resolution,
                        (float(o[0]), float(o[1]), yaw0 + math.atan2(rel[1, 0], rel[0, 0])),
                        base)
        data = np.asarray(msg.data, np.float32).reshape(-1, int(msg.channels)).T
        depth = rep117_depth(predict(data, int(msg.sample_rate)), max_depth)
        out.echoes.append(Echo(t, depth, gt, (pose.xyz[0], pose.xyz[1], pose.yaw)))
    return out


@dataclass
class MapSetup:
    """The sensor and the fusion the scoring uses.

    Attributes:
        k: the depth image's 3x3 intrinsics; width: its columns.
        max_depth: the model's range [m] (optical depth).
        params: fusion parameters.
        grid: the single-echo grid (window, resolution, height band).
        mount: the virtual camera in the base frame.
    """

    k: np.ndarray
    width: int
    max_depth: float
    params: FusionParams = FusionParams()
    grid: GridSpec = GridSpec()
    mount: CameraMount = CameraMount()


def _union(*grids: GrowingGrid) -> GrowingGrid:
    """An empty grid over the union of the grids' extents (same resolution)."""
    u = GrowingGrid(grids[0].resolution, {'any': (bool, False)}, grow=grids[0].resolution)
    for g in grids:
        h, w = g.shape
        if h and w:
            u.cover(np.array([g.i0, g.i0 + w - 1]), np.array([g.j0, g.j0 + h - 1]))
    return u


def _nanmean(values: Iterable[float]) -> float | None:
    v = [x for x in values if x is not None and not math.isnan(x)]
    return float(np.mean(v)) if v else None


def score_bag(bag: BagEchoes, setup: MapSetup, rays: Callable[[Echo], EchoRays] | None = None,
              over_time: bool = True) -> dict:
    """Fuse and score one bag's echoes (``rays``: the rays of an echo,
    default from its depth; an oracle passes the gt's). Returns the fused
    map's metrics (final and, with ``over_time``, after every echo), the
    single echoes' and counts."""
    grid, params = setup.grid, setup.params
    origin, az, reach = sight_lines(setup.k, setup.width, setup.mount, setup.max_depth)
    mp = EchoMap(params, 'odom', grid, setup.mount, setup.max_depth)
    ref = GrowingGrid(params.resolution, {'free': (np.int32, 0), 'occ': (np.int32, 0),
                                          'seen': (bool, False)}, params.grow, params.max_size)
    res = min(grid.resolution, params.resolution)
    n = grid.cells
    centres = grid.origin[0] + (np.arange(n) + 0.5) * grid.resolution
    cx, cy = np.meshgrid(centres, grid.origin[1] + (np.arange(n) + 0.5) * grid.resolution)
    local = np.stack([cx.ravel(), cy.ravel()], -1)
    single, steps, cells = [], [], {}
    for e in bag.echoes:
        r = rays(e) if rays else depth_rays(e.depth, setup.k, setup.mount, grid, setup.max_depth)
        seen = visible_rays(e.gt, origin, az, reach)
        # the single echo, on the echo grid's lattice in the base frame
        pred = rasterize(*ray_points(r, grid), grid)
        truth = e.gt.sample(local).reshape(n, n)
        covered = rasterize(*ray_points(seen, grid), grid) != UNKNOWN
        single.append(grid_scores(pred, np.where(covered, truth, UNKNOWN), truth))
        # the map, and the reference in odom (sampled as finely as the map's rays)
        mp.add_rays(r, e.pose)
        _add_reference(ref, e, *ray_points(seen, grid, res))
        last = e is bag.echoes[-1]
        if over_time or last:
            steps.append(_score_map(mp, ref, params, cells if last else None))
    final = steps[-1] if steps else dict.fromkeys(METRICS, math.nan)
    return {'bag': bag.name, 'fused': final, 'fused_cells': cells,
            'fused_over_time': {m: _nanmean(s[m] for s in steps) for m in METRICS},
            'single': single, 'echoes': len(bag.echoes), 'chunks': bag.chunks,
            'without_tf': bag.without_tf, 'without_gt': bag.without_gt,
            'reference_cells': _reference_counts(ref)}


def _add_reference(ref: GrowingGrid, e: Echo, free: np.ndarray, hits: np.ndarray) -> None:
    """One gt grid carried into odom (votes on every cell it knows) and the
    cells the echo covered."""
    seen_c, seen_r = ref.lattice(to_frame(np.concatenate([free, hits]), e.pose))
    g = e.gt
    corners = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], float) * np.array(g.data.shape[::-1])
    corners = corners * g.resolution
    c, s = math.cos(g.origin[2]), math.sin(g.origin[2])
    base = np.stack([g.origin[0] + c * corners[:, 0] - s * corners[:, 1],
                     g.origin[1] + s * corners[:, 0] + c * corners[:, 1]], -1)
    ci, ri = ref.lattice(to_frame(base, e.pose))
    ref.cover(np.concatenate([seen_c, [ci.min(), ci.max()]]),
              np.concatenate([seen_r, [ri.min(), ri.max()]]))
    cols = np.arange(ci.min(), ci.max() + 1)
    rows = np.arange(ri.min(), ri.max() + 1)
    lc, lr = np.meshgrid(cols, rows)
    centres = (np.stack([lc.ravel(), lr.ravel()], -1) + 0.5) * ref.resolution
    lab = g.sample(from_frame(centres, e.pose))
    rr, cc, inside = ref.index(lc.ravel(), lr.ravel())
    lab = lab[inside]
    np.add.at(ref.layers['free'], (rr[lab == FREE], cc[lab == FREE]), 1)
    np.add.at(ref.layers['occ'], (rr[lab == OCCUPIED], cc[lab == OCCUPIED]), 1)
    sr, sc, _ = ref.index(seen_c, seen_r)
    ref.layers['seen'][sr, sc] = True


def _truth(free_votes: np.ndarray, occ_votes: np.ndarray) -> np.ndarray:
    """Majority of the gt grids that know a cell; a tie is occupied."""
    out = np.full(free_votes.shape, UNKNOWN, np.int8)
    out[free_votes > occ_votes] = FREE
    out[(occ_votes >= free_votes) & (occ_votes > 0)] = OCCUPIED
    return out


def _score_map(mp: EchoMap, ref: GrowingGrid, params: FusionParams,
               cells: dict | None = None) -> dict[str, float]:
    """The map against the reference; ``cells``: filled with the free-space
    cell counts behind the IoU."""
    u = _union(mp.cells, ref)
    pred = export(mp.cells.window('logodds', u), params)
    truth = _truth(ref.window('free', u), ref.window('occ', u))
    reference = np.where(ref.window('seen', u), truth, UNKNOWN)
    if cells is not None:
        cells.update(free_breakdown(pred, reference, truth))
    return grid_scores(pred, reference, truth)


def free_breakdown(pred: np.ndarray, ref: np.ndarray, truth: np.ndarray) -> dict[str, int]:
    """Cells behind a free-space IoU: predicted free and free in the
    reference (``both``), free in the reference but not predicted free
    (``missed``), and predicted free where the reference is not free: truly
    free but not covered by the echoes' sight lines (``free_unseen``), an
    obstacle (``on_obstacle``), or unknown to the truth, i.e. outside the
    room (``outside``)."""
    p = pred == FREE
    r = ref == FREE
    extra = p & ~r
    return {'both': int((p & r).sum()), 'missed': int((r & ~p).sum()),
            'free_unseen': int((extra & (truth == FREE)).sum()),
            'on_obstacle': int((extra & (truth == OCCUPIED)).sum()),
            'outside': int((extra & (truth == UNKNOWN)).sum())}


def _reference_counts(ref: GrowingGrid) -> dict[str, int]:
    truth = _truth(ref.layers['free'], ref.layers['occ'])
    seen = ref.layers['seen']
    return {'free': int(((truth == FREE) & seen).sum()),
            'occupied': int(((truth == OCCUPIED) & seen).sum())}


def summarize(bags: list[dict]) -> dict:
    """Means over bags (fused) and over echoes (single), with the counts."""
    singles = [s for b in bags for s in b['single']]
    out = {'fused': {m: _round(_nanmean(b['fused'][m] for b in bags)) for m in METRICS},
           'fused_over_time': {m: _round(_nanmean(b['fused_over_time'][m] for b in bags))
                               for m in METRICS},
           'single': {m: _round(_nanmean(s[m] for s in singles)) for m in METRICS}}
    out['fused_free_cells'] = {k: sum(b['fused_cells'].get(k, 0) for b in bags)
                               for k in ('both', 'missed', 'free_unseen', 'on_obstacle',
                                         'outside')}
    out['counts'] = {'bags': len(bags), 'echo_chunks': sum(b['chunks'] for b in bags),
                     'echoes_used': sum(b['echoes'] for b in bags),
                     'echoes_without_tf': sum(b['without_tf'] for b in bags),
                     'echoes_without_gt': sum(b['without_gt'] for b in bags),
                     'reference_free_cells': sum(b['reference_cells']['free'] for b in bags),
                     'reference_occupied_cells': sum(b['reference_cells']['occupied']
                                                     for b in bags)}
    return out


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def load_bags(bags_dir: str | Path, model: str | Path | None = None, namespace: str = '',
              odom_frame: str = 'odom', base_frame: str | None = None,
              tolerance: float = 0.05) -> tuple[list[BagEchoes], MapSetup]:
    """Every bag's scorable echoes, with the model's depth, and the setup
    from the model's contract (intrinsics, width, range).

    Raises:
        InputError: no bag, a bag without audio/echo or gt/occupancy, or no
            echo that can be scored.
    """
    from av_perception.echo.model import EchoDepthModel
    net = EchoDepthModel(model)
    bags = [read_echoes(p, net, net.max_depth, namespace, odom_frame, base_frame, tolerance)
            for p in list_bags(bags_dir)]
    if not any(b.echoes for b in bags):
        tf = sum(b.without_tf for b in bags)
        raise InputError('echo_map', f'echoes with gt/occupancy and the transform {odom_frame} '
                         f'-> base at their stamp in {bags_dir}',
                         f'none ({sum(b.chunks for b in bags)} echoes, {tf} without the '
                         f'transform, {sum(b.without_gt for b in bags)} without gt/occupancy)')
    return bags, MapSetup(net.k, net.width, net.max_depth)


def score_echo_map(bags_dir: str | Path, model: str | Path | None = None, namespace: str = '',
                   params: FusionParams = FusionParams(), odom_frame: str = 'odom',
                   base_frame: str | None = None) -> dict:
    """The summary of :func:`summarize` for the bags under ``bags_dir``."""
    bags, setup = load_bags(bags_dir, model, namespace, odom_frame, base_frame)
    setup = MapSetup(setup.k, setup.width, setup.max_depth, params)
    return summarize([score_bag(b, setup) for b in bags])


def format_summary(s: dict) -> str:
    """Fused beside single echo, one line a metric, and the counts."""
    lines = []
    for m in METRICS:
        f, t, one = s['fused'][m], s['fused_over_time'][m], s['single'][m]
        ratio = f'x{f / one:.2f}' if f is not None and one else '-'
        lines.append(f'{m:14s} fused {_fmt(f)}  (over time {_fmt(t)})  single echo {_fmt(one)}'
                     f'  {ratio}')
    c = s['counts']
    lines.append(f"{c['bags']} bags, {c['echoes_used']} echoes fused of {c['echo_chunks']} "
                 f"({c['echoes_without_tf']} without TF, {c['echoes_without_gt']} without "
                 'gt/occupancy)')
    return '\n'.join(lines)


def _fmt(v: float | None) -> str:
    return 'n/a' if v is None else f'{v:.3f}'
