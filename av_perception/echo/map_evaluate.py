"""Scoring the echo map on any bags (``av-perception eval echo-map`` and
bench/echo_map).

Bags are read as every command reads them (``bag.contents``): the folders
under the given ones, symbolic links followed; a bag that lacks
``audio/echo``, the odometry on ``/tf`` or ``gt/occupancy`` (topics
absolute or under a namespace) is named on one warning line and skipped, as
is a bag of which not one echo can be scored; none usable is an
:class:`~av_perception.errors.InputError` (one line, exit 2). Frames come
from the bag's /tf_static and /tf (a :class:`~av_perception.bag.contents.
BagFrames`), by the names of :class:`MapFrames` (the echo_depth node's
parameters and defaults). Per bag, in stamp order, each echo:

1. is placed on the robot: the pose of the virtual camera's optical frame
   (default ``<echo chunk frame>_optical``) in the base frame at the echo's
   stamp, as the node takes it from TF; the scoring has no mount of its
   own to fall back to: an echo without it is counted
   (``echoes_without_camera``) and left out;
2. runs the echo-depth model; its depth becomes REP 117 ranges
   (``rep117_depth``: +Inf where it reaches the model's range) and column
   rays (``depth_rays``), as the node does;
3. is fused into an :class:`~av_perception.echo.mapping.EchoMap` in the
   odometry frame with the base's pose at the echo's stamp (exact or
   interpolated, never extrapolated: an echo without it is counted,
   ``echoes_without_odometry``, and left out of everything, as is an echo
   without a gt/occupancy within ``tolerance``, ``echoes_without_gt``);
4. is scored alone: its single-echo grid (base frame) against its own
   gt/occupancy (carried into the base frame at the echo's stamp through
   TF if it is in another frame or at another stamp).

**The reference.** What the echoes could have seen: from the sensor (the
virtual camera's position in the base frame), one sight line per image
column, cast through the gt/occupancy grid up to the model's range (the
horizontal extent of the horizon pixel at optical depth ``max_depth``) and
within the echo grid's window, stopping at the first occupied cell (seen)
or at unknown space (outside the room). The cells these sight lines cross
are the area the echo covered. The truth of a cell is the gt grids' own
label, resampled to the lattice scored (:meth:`GtGrid.sample_cells`: the
cell under each cell's centre when the gt grid is as coarse or coarser;
occupied if any finer gt cell within is, so a thin wall of a finer
gt grid is kept): the single echo is scored on the echo grid's cells; for
the fused map each gt grid is carried into odom with the base's pose at its
stamp onto the map's cells, and where the grids disagree (a cell near a wall, sampled from
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
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

import numpy as np
from scipy.ndimage import binary_dilation

from av_perception.bag.contents import (BASE_FRAME, ODOM_FRAME, TF_TOPICS, BagFrames,
                                        UnusableBag, each_bag, list_bags)
from av_perception.bag.io import nearest, read_bag, stamp_ns
from av_perception.echo.mapping import (EchoMap, FusionParams, GrowingGrid, export, from_frame,
                                        to_frame)
from av_perception.echo.occupancy import (FREE, OCCUPIED, UNKNOWN, CameraMount, EchoRays,
                                          GridSpec, depth_rays, free_iou, rasterize, ray_points,
                                          rep117_depth)
from av_perception.geometry.frames import quaternion_yaw
from av_perception.geometry.tf_buffer import TransformError

ECHO, GT_OCCUPANCY = 'audio/echo', 'gt/occupancy'
TOPICS = (ECHO, GT_OCCUPANCY, *TF_TOPICS)
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

    def moved(self, rel: np.ndarray, frame_id: str) -> GtGrid:
        """The same cells seen from ``frame_id``, given ``rel``: the 4x4 pose
        of this grid's frame in ``frame_id`` (projected on the xy plane)."""
        x0, y0, yaw0 = self.origin
        o = rel @ np.array([x0, y0, 0.0, 1.0])
        return GtGrid(self.data, self.resolution,
                      (float(o[0]), float(o[1]), yaw0 + math.atan2(rel[1, 0], rel[0, 0])),
                      frame_id)

    def sample_cells(self, centres: np.ndarray, cell: float, yaw: float = 0.0) -> np.ndarray:
        """Labels of (N,) square cells of side ``cell`` [m] centred at
        ``centres`` (N, 2) of its frame [m], their sides turned ``yaw`` [rad]
        from its axes: occupied if any of its own cells within is, else free
        if any is, else unknown. Each cell is sampled on an n x n lattice
        with n = ceil(cell / resolution), so a wall one fine cell thick is
        kept in a coarser cell; with cells no larger than its own (n = 1),
        the label of the cell under each centre (:meth:`sample`)."""
        n = max(1, int(math.ceil(cell / self.resolution - 1e-9)))
        p = np.asarray(centres, float).reshape(-1, 2)
        if n == 1:
            return self.sample(p)
        off = ((np.arange(n) + 0.5) / n - 0.5) * cell
        ox, oy = (v.ravel() for v in np.meshgrid(off, off))
        c, s = math.cos(yaw), math.sin(yaw)
        sub = p[:, None, :] + np.stack([c * ox - s * oy, s * ox + c * oy], -1)[None]
        lab = self.sample(sub.reshape(-1, 2)).reshape(len(p), n * n)
        out = np.where((lab == FREE).any(axis=1), FREE, UNKNOWN).astype(np.int8)
        out[(lab == OCCUPIED).any(axis=1)] = OCCUPIED
        return out

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


@dataclass(frozen=True)
class MapFrames:
    """The frame names the scoring looks up in a bag's TF (the node's
    parameters of the same names, with its defaults).

    Attributes:
        odom_frame: the map's fixed frame (REP 105 ``odom``): the base's
            pose in it at each echo's stamp is the odometry the echoes are
            fused with.
        base_frame: the robot's base (REP 105 ``base_link``): the frame of
            the single-echo grid; gt/occupancy in another frame is carried
            into it through TF.
        optical_frame: the virtual camera's optical frame (REP 103: z
            forward, x right, y down), whose pose in ``base_frame`` places
            the echo's depth image on the robot; '' = ``<frame of the
            audio/echo chunk>_optical`` (the node's ``<echo array
            frame>_optical``).
    """

    odom_frame: str = ODOM_FRAME
    base_frame: str = BASE_FRAME
    optical_frame: str = ''

    def optical(self, echo_frame: str) -> str:
        """The optical frame of an echo chunk recorded in ``echo_frame``."""
        return self.optical_frame or f'{echo_frame.lstrip("/")}_optical'


@dataclass
class Echo:
    """One scored echo: its REP 117 depth, its gt grid (in the base frame,
    at the echo's stamp), the base's pose in odom at its stamp (x [m], y
    [m], yaw [rad]) and the virtual camera's mount on the base (from the
    bag's TF at its stamp)."""

    stamp_ns: int
    depth: np.ndarray
    gt: GtGrid
    pose: tuple[float, float, float]
    mount: CameraMount


@dataclass
class BagEchoes:
    """The echoes of one bag that can be scored, and what was left out:
    echoes without a gt/occupancy within the tolerance (``without_gt``),
    without the virtual camera's pose on the base (``without_camera``: base
    <- optical frame not in the bag's TF), without the odometry
    (``without_odometry``: odom <- base, or the gt grid's frame, not known
    at the stamp); ``tf_errors``: 'camera <kind>' / 'odometry <kind>' ->
    count, ``first_error``: the first such message of each."""

    name: str
    echoes: list[Echo] = field(default_factory=list)
    chunks: int = 0
    without_gt: int = 0
    without_camera: int = 0
    without_odometry: int = 0
    tf_errors: dict[str, int] = field(default_factory=dict)
    first_error: dict[str, str] = field(default_factory=dict)
    odom_frame: str = ODOM_FRAME

    def _miss(self, what: str, exc: TransformError) -> None:
        key = f'{what} {type(exc).__name__}'
        self.tf_errors[key] = self.tf_errors.get(key, 0) + 1
        self.first_error.setdefault(what, str(exc).splitlines()[0])


#: What a bag needs: the echoes, the odometry on /tf and the reference.
NEEDS = (ECHO, 'tf', GT_OCCUPANCY)


def read_echoes(path: str | Path, predict: Callable[[np.ndarray, int], np.ndarray],
                max_depth: float, namespace: str = '', frames: MapFrames = MapFrames(),
                tolerance: float = 0.05, tf_tolerance: float = 0.0) -> BagEchoes:
    """Run ``predict(samples (C, N), sample_rate) -> depth [m]`` on every
    audio/echo chunk of a bag that has a gt/occupancy within ``tolerance``
    [s], the virtual camera's pose ``frames.base_frame`` <- optical frame
    and the odometry ``frames.odom_frame`` <- ``frames.base_frame`` at its
    stamp in the bag's /tf_static and /tf (``tf_tolerance`` [s] beyond the
    transforms' ends; between two transforms they are interpolated). An
    echo without one of them is counted (:class:`BagEchoes`), never
    guessed.

    Raises:
        UnusableBag: no audio/echo chunk or gt/occupancy, or not one echo
            that can be scored (the message says which lookups failed, and
            the option that names the frame).
    """
    path = Path(path)
    tf = BagFrames(path)
    chunks, gts = [], []
    for m in read_bag(path, TOPICS, namespace):
        if m.topic == ECHO:
            chunks.append(m.msg)
        elif m.topic == GT_OCCUPANCY:
            gts.append(m.msg)
        else:
            tf.feed(m)
    if not chunks or not gts:
        raise UnusableBag(path, f'{ECHO} chunks and {GT_OCCUPANCY}', f'{len(chunks)} echo '
                          f'chunks, {len(gts)} gt/occupancy')
    gts.sort(key=stamp_ns)
    g_st = np.array([stamp_ns(g) for g in gts], np.int64)
    out = BagEchoes(path.name, chunks=len(chunks), odom_frame=frames.odom_frame)
    tol = int(tf_tolerance * 1e9)
    base = frames.base_frame
    for msg in sorted(chunks, key=stamp_ns):
        t = stamp_ns(msg)
        j = nearest(g_st, t, int(tolerance * 1e9))
        if j is None:
            out.without_gt += 1
            continue
        try:
            cam = tf.tf.lookup(base, frames.optical(msg.header.frame_id), t, tol)
        except TransformError as exc:
            out.without_camera += 1
            out._miss('camera', exc)
            continue
        gt, g_t = GtGrid.from_message(gts[j]), stamp_ns(gts[j])
        try:
            pose = tf.tf.lookup(frames.odom_frame, base, t, tol)
            if gt.frame_id.lstrip('/') != base or g_t != t:
                gt_pose = tf.tf.lookup(frames.odom_frame, gt.frame_id, g_t, tol)
                gt = gt.moved(np.linalg.inv(pose.matrix) @ gt_pose.matrix, base)
        except TransformError as exc:
            out.without_odometry += 1
            out._miss('odometry', exc)
            continue
        data = np.asarray(msg.data, np.float32).reshape(-1, int(msg.channels)).T
        depth = rep117_depth(predict(data, int(msg.sample_rate)), max_depth)
        out.echoes.append(Echo(t, depth, gt, (pose.xyz[0], pose.xyz[1], pose.yaw),
                               CameraMount.from_optical(cam.xyz, cam.quat_xyzw)))
    if not out.echoes:
        raise UnusableBag(path, f'echoes with {GT_OCCUPANCY} within {tolerance:g} s, the '
                          f'camera pose {base} <- {frames.optical("<echo frame>")} '
                          '(--base-frame, --optical-frame) and the odometry '
                          f'{frames.odom_frame} <- {base} (--odom-frame) at their stamps',
                          f'none of {out.chunks}: {_left_out(out)}')
    return out


def _left_out(b: BagEchoes) -> str:
    """'8 without the camera pose (no transform ...)', ... in one line."""
    parts = []
    for n, what, key in ((b.without_gt, f'without {GT_OCCUPANCY}', ''),
                         (b.without_camera, 'without the camera pose', 'camera'),
                         (b.without_odometry, 'without the odometry', 'odometry')):
        if n:
            why = b.first_error.get(key)
            parts.append(f'{n} {what}' + (f' ({why})' if why else ''))
    return ', '.join(parts)


@dataclass
class MapSetup:
    """The sensor and the fusion the scoring uses (where the sensor is on
    the robot is each echo's own :attr:`Echo.mount`, from the bag).

    Attributes:
        k: the depth image's 3x3 intrinsics [px]; width: its columns.
        max_depth: the model's range [m] (optical depth).
        params: fusion parameters.
        grid: the single-echo grid (window, resolution, height band).
    """

    k: np.ndarray
    width: int
    max_depth: float
    params: FusionParams = FusionParams()
    grid: GridSpec = GridSpec()

    def echo_rays(self, e: Echo) -> EchoRays:
        """An echo's column rays (base frame) from its depth, as the node
        makes them."""
        return depth_rays(e.depth, self.k, e.mount, self.grid, self.max_depth)

    def reference_rays(self, e: Echo) -> EchoRays:
        """What a perfect sensor at the echo's virtual camera sees of its gt
        grid (the sight lines of :func:`visible_rays`)."""
        origin, az, reach = sight_lines(self.k, self.width, e.mount, self.max_depth)
        return visible_rays(e.gt, origin, az, reach)


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
    default :meth:`MapSetup.echo_rays`, from its depth; an oracle passes
    :meth:`MapSetup.reference_rays`). Returns the fused map's metrics (final
    and, with ``over_time``, after every echo), the single echoes' and
    counts."""
    grid, params = setup.grid, setup.params
    rays = rays or setup.echo_rays
    mp: EchoMap | None = None          # made with the first echo's camera pose, as the node
    ref = GrowingGrid(params.resolution, {'free': (np.int32, 0), 'occ': (np.int32, 0),
                                          'seen': (bool, False)}, params.grow, params.max_size)
    res = min(grid.resolution, params.resolution)
    n = grid.cells
    centres = grid.origin[0] + (np.arange(n) + 0.5) * grid.resolution
    cx, cy = np.meshgrid(centres, grid.origin[1] + (np.arange(n) + 0.5) * grid.resolution)
    local = np.stack([cx.ravel(), cy.ravel()], -1)
    single, steps, cells = [], [], {}
    for e in bag.echoes:
        r = rays(e)
        seen = setup.reference_rays(e)
        # the single echo, on the echo grid's lattice in the base frame
        pred = rasterize(*ray_points(r, grid), grid)
        truth = e.gt.sample_cells(local, grid.resolution).reshape(n, n)
        covered = rasterize(*ray_points(seen, grid), grid) != UNKNOWN
        single.append(grid_scores(pred, np.where(covered, truth, UNKNOWN), truth))
        # the map, and the reference in odom (sampled as finely as the map's rays)
        if mp is None:
            mp = EchoMap(params, bag.odom_frame, grid, e.mount, setup.max_depth)
        mp.mount = e.mount
        mp.add_rays(r, e.pose)
        _add_reference(ref, e, *ray_points(seen, grid, res))
        last = e is bag.echoes[-1]
        if over_time or last:
            steps.append(_score_map(mp, ref, params, cells if last else None))
    final = steps[-1] if steps else dict.fromkeys(METRICS, math.nan)
    return {'bag': bag.name, 'fused': final, 'fused_cells': cells,
            'fused_over_time': {m: _nanmean(s[m] for s in steps) for m in METRICS},
            'single': single, 'echoes': len(bag.echoes), 'chunks': bag.chunks,
            'without_gt': bag.without_gt, 'without_camera': bag.without_camera,
            'without_odometry': bag.without_odometry,
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
    lab = g.sample_cells(from_frame(centres, e.pose), ref.resolution, -e.pose[2])
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
                     'echoes_without_gt': sum(b['without_gt'] for b in bags),
                     'echoes_without_camera': sum(b['without_camera'] for b in bags),
                     'echoes_without_odometry': sum(b['without_odometry'] for b in bags),
                     'reference_free_cells': sum(b['reference_cells']['free'] for b in bags),
                     'reference_occupied_cells': sum(b['reference_cells']['occupied']
                                                     for b in bags)}
    return out


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def load_bags(bags: str | Path | Sequence[str | Path], model: str | Path | None = None,
              namespace: str = '', frames: MapFrames = MapFrames(), tolerance: float = 0.05,
              out: TextIO = sys.stderr, progress: bool = False
              ) -> tuple[list[BagEchoes], MapSetup]:
    """The scorable echoes of every usable bag under ``bags`` (a folder, or
    several), with the model's depth, and the setup from the model's
    contract (intrinsics, width, range). A bag that is not usable is named
    on one warning line on ``out`` and skipped (``bag.contents.each_bag``);
    ``progress``: a progress line on ``out``.

    Raises:
        InputError: no bag under ``bags``, or none usable (naming the first
            one's reason).
    """
    from av_perception.echo.model import EchoDepthModel
    net = EchoDepthModel(model)
    roots = [bags] if isinstance(bags, (str, Path)) else list(bags)
    found: list[BagEchoes] = []

    def load(path: Path) -> BagEchoes:
        found.append(read_echoes(path, net, net.max_depth, namespace, frames, tolerance))
        return found[-1]

    def echoes() -> str:
        return f'{sum(len(b.echoes) for b in found)} echoes'

    done = each_bag(list_bags(*roots), load, NEEDS, namespace, 'the echo map: echoes, the '
                    'odometry on /tf and the reference', out, echoes if progress else None)
    return [b for _, b in done], MapSetup(net.k, net.width, net.max_depth)


def score_echo_map(bags: str | Path | Sequence[str | Path], model: str | Path | None = None,
                   namespace: str = '', params: FusionParams = FusionParams(),
                   frames: MapFrames = MapFrames(), out: TextIO = sys.stderr,
                   progress: bool = False) -> dict:
    """The summary of :func:`summarize` for the usable bags under ``bags``
    (see :func:`load_bags`)."""
    scored, setup = load_bags(bags, model, namespace, frames, out=out, progress=progress)
    return summarize([score_bag(b, replace(setup, params=params)) for b in scored])


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
                 f"({c['echoes_without_gt']} without gt/occupancy, "
                 f"{c['echoes_without_camera']} without the camera pose, "
                 f"{c['echoes_without_odometry']} without the odometry)")
    return '\n'.join(lines)


def _fmt(v: float | None) -> str:
    return 'n/a' if v is None else f'{v:.3f}'
