"""The echo map: every echo's free / occupied evidence fused over time in a
fixed frame (``odom``, REP 105), with log-odds, as a costmap can use it.

Each echo contributes what its single-echo grid (``echo.occupancy``) says,
from the same column rays: the cells its rays cross are observed free (the
"miss" probability; on a ray that ends at a surface, only up to
``FusionParams.free_fraction`` of its range), the cell of each ray's surface
occupied (the "hit" probability); a cell both freed and hit by one echo
counts as hit, once.
Evidence is taken within the echo grid's window (``GridSpec.size``, a square
around the base) and within its height band, so a map cell says no more than
the single-echo grid would. The rays are carried into the map frame with the
base's pose at the echo's stamp (from TF: odom -> base) and sampled every
half map cell, so the map may be finer than the echo grid.

The map's extent grows with the evidence (in blocks of ``FusionParams.grow``
metres) up to ``FusionParams.max_size`` metres a side; evidence beyond that
is dropped and counted (``EchoMap.dropped_points``). Cells are on a lattice
anchored at the frame's origin (cell (i, j) spans [i, i + 1) x [j, j + 1)
resolutions), so two maps of one frame and resolution align by index.

Log-odds: l = log(p / (1 - p)); an observation adds log-odds(p_hit) or
log-odds(p_miss) to the cell, clamped to [log-odds(p_min), log-odds(p_max)]
(an old wall a moved obstacle left can be cleared again). Export: p >=
``occupied_threshold`` -> 100, p <= ``free_threshold`` -> 0, else (and never
observed) -> -1, as nav_msgs/OccupancyGrid data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from av_perception.echo.occupancy import (FREE, OCCUPIED, UNKNOWN, CameraMount, EchoRays,
                                          GridSpec, depth_rays, ray_points)


def logodds(p: float) -> float:
    return math.log(p / (1.0 - p))


@dataclass(frozen=True)
class FusionParams:
    """How echoes fuse into the map.

    The defaults are bench/echo_map.py's sweep on train-split rooms (the
    shipped echo-depth student): the best fused free-space IoU among the
    settings whose occupied-cell recall (within one cell) reaches 0.62.
    A strong hit against a weak miss keeps walls that several echoes place
    a cell apart; one miss is enough to call a cell free. Freeing only the
    near 85 % of a surface ray (``free_fraction``) with a stronger miss (0.3)
    keeps an overshooting far surface from clearing the cells in front of
    the true wall (fused free IoU on those rooms 0.544 -> 0.563).

    Attributes:
        resolution: map cell side [m].
        p_hit: probability that a cell is occupied given one echo's surface in it.
        p_miss: probability that a cell is occupied given one echo's ray through it.
        p_min, p_max: clamp of a cell's probability (log-odds clamp).
        occupied_threshold: probability from which a cell is exported occupied (100).
        free_threshold: probability up to which a cell is exported free (0).
        free_fraction: share (0, 1] of a surface ray's range that is
            observed free (the rest of the ray, up to its surface, says
            nothing). Below 1 for echo depth, whose far surfaces are
            predicted too far as often as not: the cells in front of the
            true wall would otherwise be freed (see the sweep).
        grow: the map grows by at least this much on a side at a time [m].
        max_size: largest side of the map [m].
    """

    resolution: float = 0.1
    p_hit: float = 0.9
    p_miss: float = 0.3
    p_min: float = 0.12
    p_max: float = 0.97
    occupied_threshold: float = 0.55
    free_threshold: float = 0.49
    free_fraction: float = 0.85
    grow: float = 5.0
    max_size: float = 400.0

    def check(self) -> FusionParams:
        """Raise ValueError on an inconsistent set (returns self)."""
        if not self.resolution > 0:
            raise ValueError(f'resolution must be > 0 m, got {self.resolution}')
        if not 0 < self.p_miss < 0.5 < self.p_hit < 1:
            raise ValueError(f'need 0 < p_miss < 0.5 < p_hit < 1, got p_miss {self.p_miss}, '
                             f'p_hit {self.p_hit}')
        if not 0 < self.p_min <= self.free_threshold < self.occupied_threshold <= self.p_max < 1:
            raise ValueError('need 0 < p_min <= free_threshold < occupied_threshold <= p_max '
                             f'< 1, got {self.p_min}, {self.free_threshold}, '
                             f'{self.occupied_threshold}, {self.p_max}')
        if not 0 < self.free_fraction <= 1:
            raise ValueError(f'free_fraction must be in (0, 1], got {self.free_fraction}')
        if not (self.grow > 0 and self.max_size >= self.resolution):
            raise ValueError(f'grow must be > 0 m and max_size >= resolution, got {self.grow}, '
                             f'{self.max_size}')
        return self


@dataclass(frozen=True)
class MapGrid:
    """An occupancy grid ready for nav_msgs/OccupancyGrid.

    Attributes:
        data: (height, width) int8, row = y, column = x: 0 free, 100
            occupied, -1 unknown (``data.reshape(-1)`` is the message's data).
        resolution: metres per cell.
        origin: (x, y) of cell (0, 0)'s outer corner in ``frame_id`` [m]
            (info.origin.position; orientation identity).
        frame_id: the map's frame.
    """

    data: np.ndarray
    resolution: float
    origin: tuple[float, float]
    frame_id: str


def planar(pose) -> tuple[float, float, float]:
    """(x [m], y [m], yaw [rad]) of a base pose given as such a tuple or as
    a ``tf_buffer.Transform`` (projected on the xy plane)."""
    if hasattr(pose, 'xyz') and hasattr(pose, 'yaw'):
        return float(pose.xyz[0]), float(pose.xyz[1]), float(pose.yaw)
    x, y, yaw = pose
    return float(x), float(y), float(yaw)


def to_frame(points: np.ndarray, pose) -> np.ndarray:
    """(N, 2) base-frame xy [m] -> the frame the base ``pose`` is given in."""
    x, y, yaw = planar(pose)
    c, s = math.cos(yaw), math.sin(yaw)
    p = np.asarray(points, float).reshape(-1, 2)
    return np.stack([x + c * p[:, 0] - s * p[:, 1], y + s * p[:, 0] + c * p[:, 1]], axis=-1)


def from_frame(points: np.ndarray, pose) -> np.ndarray:
    """(N, 2) xy [m] in the frame the base ``pose`` is given in -> base frame."""
    x, y, yaw = planar(pose)
    c, s = math.cos(yaw), math.sin(yaw)
    d = np.asarray(points, float).reshape(-1, 2) - (x, y)
    return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], axis=-1)


class GrowingGrid:
    """Layers of cells on a lattice anchored at the frame's origin, grown on
    demand (the storage behind :class:`EchoMap` and the scoring's reference).

    Args:
        resolution: cell side [m].
        layers: name -> (dtype, fill value).
        grow: least growth of a side [m].
        max_size: largest side [m].
    """

    def __init__(self, resolution: float, layers: dict[str, tuple[type, object]],
                 grow: float = 5.0, max_size: float = 400.0) -> None:
        self.resolution = float(resolution)
        self.spec = dict(layers)
        self.grow_cells = max(1, int(math.ceil(grow / resolution)))
        self.max_cells = max(1, int(math.floor(max_size / resolution + 1e-9)))
        self.i0 = self.j0 = 0          # lattice index of column 0 (x) and row 0 (y)
        self.layers = {k: np.full((0, 0), fill, dtype) for k, (dtype, fill) in self.spec.items()}

    @property
    def shape(self) -> tuple[int, int]:
        return next(iter(self.layers.values())).shape

    @property
    def origin(self) -> tuple[float, float]:
        """(x, y) of cell (0, 0)'s outer corner [m]."""
        return (self.i0 * self.resolution, self.j0 * self.resolution)

    def lattice(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2) xy [m] -> lattice column and row indices."""
        p = np.asarray(points, float).reshape(-1, 2)
        return (np.floor(p[:, 0] / self.resolution).astype(np.int64),
                np.floor(p[:, 1] / self.resolution).astype(np.int64))

    def _span(self, lo: int, hi: int, cur_lo: int, cur_n: int) -> tuple[int, int]:
        """New (start, size) of one axis covering [lo, hi] if it can."""
        if cur_n == 0:
            new_lo, new_hi = lo - self.grow_cells, hi + 1 + self.grow_cells
        else:
            new_lo = cur_lo if lo >= cur_lo else min(lo, cur_lo - self.grow_cells)
            cur_hi = cur_lo + cur_n
            new_hi = cur_hi if hi < cur_hi else max(hi + 1, cur_hi + self.grow_cells)
        if new_hi - new_lo > self.max_cells:      # keep what is there, add up to the limit
            if cur_n:
                new_lo = max(new_lo, cur_lo + cur_n - self.max_cells)
                new_hi = min(new_hi, new_lo + self.max_cells)
            else:
                new_lo, new_hi = lo, min(hi + 1, lo + self.max_cells)
        return new_lo, new_hi - new_lo

    def cover(self, ci: np.ndarray, ri: np.ndarray) -> None:
        """Grow (if needed and allowed) to hold these lattice cells."""
        if ci.size == 0:
            return
        h, w = self.shape
        i0, nw = self._span(int(ci.min()), int(ci.max()), self.i0, w)
        j0, nh = self._span(int(ri.min()), int(ri.max()), self.j0, h)
        if (i0, j0, nw, nh) == (self.i0, self.j0, w, h):
            return
        for k, (dtype, fill) in self.spec.items():
            new = np.full((nh, nw), fill, dtype)
            if h and w:
                new[self.j0 - j0:self.j0 - j0 + h, self.i0 - i0:self.i0 - i0 + w] = self.layers[k]
            self.layers[k] = new
        self.i0, self.j0 = i0, j0

    def index(self, ci: np.ndarray, ri: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lattice cells -> (rows, cols) into the layers, and which are inside."""
        h, w = self.shape
        c, r = ci - self.i0, ri - self.j0
        inside = (c >= 0) & (c < w) & (r >= 0) & (r < h)
        return r[inside], c[inside], inside

    def window(self, layer: str, other: GrowingGrid, fill=None) -> np.ndarray:
        """This grid's ``layer`` over ``other``'s extent (same resolution),
        ``fill`` (default the layer's) where this grid has no cell."""
        dtype, default = self.spec[layer]
        out = np.full(other.shape, default if fill is None else fill, dtype)
        h, w = self.shape
        oh, ow = other.shape
        r0, c0 = self.j0 - other.j0, self.i0 - other.i0
        rs, re = max(r0, 0), min(r0 + h, oh)
        cs, ce = max(c0, 0), min(c0 + w, ow)
        if rs < re and cs < ce:
            out[rs:re, cs:ce] = self.layers[layer][rs - r0:re - r0, cs - c0:ce - c0]
        return out


class EchoMap:
    """Log-odds occupancy of every echo's evidence in a fixed frame.

    Args:
        params: fusion parameters (resolution, hit / miss probabilities,
            clamp, export thresholds, growth).
        frame_id: the fixed frame the base poses are given in (``odom``).
        grid: the single-echo grid: its window (``size`` [m], a square
            around the base) bounds each echo's evidence, its height band
            (``z_min``, ``z_max`` [m] in the base frame) picks the surfaces.
        mount: the virtual camera in the base frame.
        max_range: optical depth [m] up to which a no-return pixel (REP 117
            +Inf) is free (the model's range; None: to the window's edge).

    Use: ``add_depth(depth, k, pose)`` per echo, with ``pose`` the base's
    pose in ``frame_id`` at the echo's stamp (a ``tf_buffer.Transform``
    from ``lookup(frame_id, base_frame, stamp)``, or (x, y, yaw)); then
    ``occupancy()`` for the message.
    """

    def __init__(self, params: FusionParams = FusionParams(), frame_id: str = 'odom',
                 grid: GridSpec = GridSpec(), mount: CameraMount = CameraMount(),
                 max_range: float | None = None) -> None:
        self.params = params.check()
        self.frame_id = frame_id
        self.grid = grid
        self.mount = mount
        self.max_range = max_range
        self.cells = GrowingGrid(params.resolution, {'logodds': (np.float32, 0.0)},
                                 params.grow, params.max_size)
        self._hit, self._miss = logodds(params.p_hit), logodds(params.p_miss)
        self._lo, self._hi = logodds(params.p_min), logodds(params.p_max)
        self.echoes = 0
        self.dropped_points = 0

    @property
    def logodds(self) -> np.ndarray:
        """(height, width) float32 log-odds (0: never observed)."""
        return self.cells.layers['logodds']

    def add_depth(self, depth: np.ndarray, k: np.ndarray, pose) -> int:
        """Fuse one echo's depth image (REP 117, metres along the virtual
        camera's optical z; ``k`` its 3x3 intrinsics) taken with the base at
        ``pose`` in the map frame. Returns the cells updated."""
        return self.add_rays(depth_rays(depth, k, self.mount, self.grid, self.max_range), pose)

    def add_rays(self, rays: EchoRays, pose) -> int:
        """Fuse one echo's column rays (base frame) taken at ``pose``."""
        free, hits = ray_points(rays, self.grid, min(self.grid.resolution,
                                                     self.params.resolution),
                                self.params.free_fraction)
        free_c, free_r = self.cells.lattice(to_frame(free, pose))
        hit_c, hit_r = self.cells.lattice(to_frame(hits, pose))
        self.cells.cover(np.concatenate([free_c, hit_c]), np.concatenate([free_r, hit_r]))
        h, w = self.cells.shape
        rf, cf, inf_ = self.cells.index(free_c, free_r)
        rh, ch, inh = self.cells.index(hit_c, hit_r)
        self.dropped_points += int((~inf_).sum() + (~inh).sum())
        hit_flat = np.unique(rh * w + ch)
        free_flat = np.setdiff1d(np.unique(rf * w + cf), hit_flat, assume_unique=True)
        lo = self.logodds.reshape(-1)
        lo[free_flat] = np.clip(lo[free_flat] + self._miss, self._lo, self._hi)
        lo[hit_flat] = np.clip(lo[hit_flat] + self._hit, self._lo, self._hi)
        self.echoes += 1
        return int(free_flat.size + hit_flat.size)

    def probabilities(self) -> np.ndarray:
        """(height, width) occupancy probability (0.5 where never observed)."""
        return 1.0 / (1.0 + np.exp(-self.logodds.astype(np.float64)))

    def occupancy(self) -> MapGrid:
        """The map as OccupancyGrid data (thresholds of the parameters)."""
        return MapGrid(export(self.logodds, self.params), self.params.resolution,
                       self.cells.origin, self.frame_id)


def export(logodds_: np.ndarray, params: FusionParams) -> np.ndarray:
    """Log-odds -> int8 0 free / 100 occupied / -1 unknown by the thresholds;
    a never-observed cell (log-odds exactly 0) is unknown whatever they are."""
    out = np.full(logodds_.shape, UNKNOWN, np.int8)
    out[logodds_ >= logodds(params.occupied_threshold)] = OCCUPIED
    out[logodds_ <= logodds(params.free_threshold)] = FREE
    out[logodds_ == 0.0] = UNKNOWN
    return out
