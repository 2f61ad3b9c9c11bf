"""The microphone array's acoustic image, projected into the camera image
(no ROS): the geometric cue of audio-visual localization.

The acoustic image is onset-weighted SRP-PHAT power over the array's
direction grid (``ClassicDoa(geometry, 'srp', onset=True).spatial_spectrum``:
azimuth, and elevation where the geometry resolves it; the onsets weighted
so that the direct sound, not a strong reflection, makes the peak, see
:mod:`av_perception.direction.srp`), a direction map in the **array frame**
(REP 103: x forward, y left, z up). To put it on the camera image, every
pixel's ray (CameraInfo ``K``, **camera optical frame**: z forward, x right,
y down; pixel centres at integer coordinates, as ROS) is carried into the
array frame through the transform array <- optical (TF; from a bag's
/tf_static or a live TF listener), and the power is looked up in the
direction from the array's centre to points of that ray.

Parallax: the array and the camera are not at the same place (on the
simulated robot the array is 0.10 m behind and 0.10 m above the camera), so
the direction from the array to a point on a pixel's ray depends on how far
along the ray the point is. The source's distance is unknown: the map
**marginalises over distances** 0.5-6 m (12 distances spaced evenly in log
distance, equally weighted), i.e. a pixel's value is the mean of the power
in the directions from the array to its ray's points at those distances.

Elevation: a planar array (the 4-mic respeaker4, the 16-mic teacher)
resolves azimuth only; its power map is the same at every elevation, so its
projection is a band across the image (nearly vertical for a level camera,
bent by parallax): it says *which columns*, not which row. The row comes
from a prior (:func:`elevation_prior`, for the acoustic image alone: the
horizon) or, in the fused model, from the visual features (which object
along the band looks like what is heard). A 3-D array's grid has
elevations, and the projection then narrows the band too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from av_perception.arrays import ArrayGeometry
from av_perception.echo.occupancy import depth_points
from av_perception.errors import InputError
from av_perception.geometry.tf_buffer import Transform

#: The acoustic images :class:`AcousticImage` computes, by the id a fused
#: model's metadata (``acoustic_image``) names the one it was trained with:
#: id -> onset weighting. Models without the key predate the onset weighting.
ACOUSTIC_IMAGES = {'srp_phat': False, 'srp_phat_onset': True}
#: The acoustic image training uses now (in training-data fingerprints too).
ACOUSTIC_IMAGE_ID = 'srp_phat_onset'
#: The acoustic image of a model whose metadata does not say.
LEGACY_ACOUSTIC_IMAGE_ID = 'srp_phat'

#: Source distances the projection marginalises over [m] (evenly in log distance).
DEFAULT_DISTANCES = tuple(float(d) for d in np.geomspace(0.5, 6.0, 12))


@dataclass(frozen=True)
class CameraView:
    """How a camera sees, relative to the microphone array.

    Attributes:
        K: 3x3 intrinsic matrix (CameraInfo ``k``) [px].
        width, height: image size [px].
        array_from_optical: pose of the camera optical frame in the array
            frame (maps optical-frame points [m] to array-frame points:
            TF lookup(target=array frame, source=optical frame)).
        array_frame, optical_frame: their frame ids.
    """

    K: np.ndarray
    width: int
    height: int
    array_from_optical: Transform
    array_frame: str = 'mic_array'
    optical_frame: str = 'camera_link_optical'

    def __post_init__(self) -> None:
        k = np.asarray(self.K, float).reshape(3, 3)
        if not (k[0, 0] > 0 and k[1, 1] > 0 and self.width > 0 and self.height > 0):
            raise InputError('camera_info', 'fx, fy > 0 and a non-empty image',
                             f'fx {k[0, 0]}, fy {k[1, 1]}, {self.width}x{self.height}')
        object.__setattr__(self, 'K', k)

    def scaled_K(self, shape: tuple[int, int]) -> np.ndarray:
        """The intrinsics of the same camera resampled to ``shape`` (h, w)
        cells, each cell's centre at integer coordinates (as cv2.resize's
        half-pixel convention): u_cell = (u + 0.5) * w / width - 0.5."""
        h, w = shape
        sx, sy = w / self.width, h / self.height
        k = self.K.copy()
        k[0, 0], k[0, 1], k[0, 2] = k[0, 0] * sx, k[0, 1] * sx, (k[0, 2] + 0.5) * sx - 0.5
        k[1, 1], k[1, 2] = k[1, 1] * sy, (k[1, 2] + 0.5) * sy - 0.5
        return k


def pixel_ray(K: np.ndarray, u: float, v: float) -> np.ndarray:
    """The unit ray through pixel (u, v) [px, integer centres] in the optical frame."""
    k = np.asarray(K, float).reshape(3, 3)
    d = np.linalg.solve(k, np.array([u, v, 1.0]))
    return d / np.linalg.norm(d)


def project_point(K: np.ndarray, p_optical) -> tuple[float, float]:
    """The pixel (u, v) [px] of a point in the optical frame [m] (in front of
    the camera: z > 0)."""
    p = np.asarray(p_optical, float)
    if p[2] <= 0:
        raise InputError('point', 'a point in front of the camera (z > 0)', f'z = {p[2]:g}')
    q = np.asarray(K, float).reshape(3, 3) @ (p / p[2])
    return float(q[0]), float(q[1])


def grid_directions(azimuths: np.ndarray, elevations: np.ndarray | None = None) -> np.ndarray:
    """(N, 3) unit vectors in the array frame of a direction grid
    (azimuth CCW from +x [rad], elevation above the x-y plane [rad]; None: 0)."""
    az = np.asarray(azimuths, float)
    el = np.zeros_like(az) if elevations is None else np.asarray(elevations, float)
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=1)


def normalise_power(power: np.ndarray) -> np.ndarray:
    """SRP power -> [0, 1]: (P - median) / (max - median), clipped: 1 in the
    direction the array hears best, 0 in the half of the directions below
    the median (the diffuse floor); all zeros for a flat map."""
    p = np.asarray(power, float)
    med, top = float(np.median(p)), float(np.max(p))
    if not np.isfinite(top) or top <= med:
        return np.zeros_like(p)
    return np.clip((p - med) / (top - med), 0.0, 1.0)


def power_contrast(power: np.ndarray) -> float:
    """How far an SRP power map's peak stands above its diffuse floor:
    ``max - median`` in SRP-PHAT's own units (the mean PHAT coherence per
    microphone pair, frequency and frame; the onset-weighted map keeps that
    scale). A direct sound makes it large; diffuse noise, a pause or a
    late reverberant tail leave the map nearly flat and it near 0, though
    :func:`normalise_power` stretches any map to a full 0-1 peak. The
    acoustic memory weighs each window by it."""
    p = np.asarray(power, float)
    top = float(np.max(p))
    return max(top - float(np.median(p)), 0.0) if np.isfinite(top) else 0.0


class AcousticImage:
    """The array's acoustic image: normalised onset-weighted SRP-PHAT power
    over its grid.

    Args:
        geometry: the array (its SRP-PHAT grid: azimuth at 1 deg for a planar
            array, azimuth x elevation for a 3-D one).
        kind: which map (:data:`ACOUSTIC_IMAGES`): ``'srp_phat_onset'``
            (onset-weighted, the default) or ``'srp_phat'`` (plain, what
            models trained before the weighting were fused with).

    Attributes:
        directions: (N, 3) unit vectors of the grid in the array frame.
        planar: True if the geometry does not resolve elevation.

    Raises:
        InputError: an unknown ``kind``.
    """

    def __init__(self, geometry: ArrayGeometry, kind: str = ACOUSTIC_IMAGE_ID) -> None:
        from av_perception.direction.classic import ClassicDoa
        if kind not in ACOUSTIC_IMAGES:
            raise InputError('acoustic_image', f'one of {sorted(ACOUSTIC_IMAGES)}', repr(kind))
        self.kind = kind
        self.doa = ClassicDoa(geometry, 'srp', onset=ACOUSTIC_IMAGES[kind])
        self.planar = not self.doa.elevation
        self.directions = grid_directions(self.doa.grid, self.doa.grid_elevation)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """One window (channels, frames) -> (N,) power in [0, 1] (:func:`normalise_power`)."""
        return normalise_power(self.spectrum(samples))

    def spectrum(self, samples: np.ndarray) -> np.ndarray:
        """One window (channels, frames) -> (N,) SRP-PHAT power, not normalised."""
        return self.doa.spatial_spectrum(np.asarray(samples, np.float64))


class AcousticProjector:
    """Projects direction maps of the array into a camera's image.

    Precomputes, for every cell of an ``shape`` (h, w) resampling of the
    image and every assumed source distance, the grid direction nearest to
    the direction from the array's centre to that cell's ray point (so
    :meth:`project` is one gather and a mean).

    Args:
        view: the camera and its pose in the array frame.
        directions: (N, 3) unit grid directions in the array frame
            (:attr:`AcousticImage.directions`).
        shape: (h, w) cells of the output (None: the image's size).
        distances: assumed source distances along each ray, from the camera
            centre [m]; the map is their mean (marginalisation over distance).
    """

    def __init__(self, view: CameraView, directions: np.ndarray,
                 shape: tuple[int, int] | None = None,
                 distances: tuple[float, ...] = DEFAULT_DISTANCES) -> None:
        self.view = view
        self.shape = tuple(shape) if shape is not None else (view.height, view.width)
        self.distances = tuple(float(d) for d in distances)
        if not self.distances or min(self.distances) <= 0:
            raise InputError('distances', 'positive source distances [m]', str(distances))
        rays = self.rays_optical()                                     # (h, w, 3)
        rays /= np.linalg.norm(rays, axis=2, keepdims=True)
        pts = rays[None] * np.asarray(self.distances)[:, None, None, None]  # (R, h, w, 3)
        q = view.array_from_optical.apply(pts.reshape(-1, 3))         # array frame [m]
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-9)
        dirs = np.asarray(directions, float)
        idx = np.empty(len(q), np.int32)
        for s in range(0, len(q), 16384):                              # bounded memory
            idx[s:s + 16384] = np.argmax(q[s:s + 16384] @ dirs.T, axis=1)
        self._index = idx.reshape(len(self.distances), -1)             # (R, h * w)
        self.n_directions = len(dirs)

    def rays_optical(self) -> np.ndarray:
        """(h, w, 3) rays through the cell centres in the optical frame (z = 1)."""
        k = self.view.scaled_K(self.shape)
        return depth_points(np.ones(self.shape), k)

    def project(self, values: np.ndarray) -> np.ndarray:
        """(N,) values on the grid (or (B, N)) -> (h, w) (or (B, h, w))
        float32: each cell the mean over the assumed distances."""
        v = np.asarray(values, np.float32)
        if v.shape[-1] != self.n_directions:
            raise InputError('acoustic_image', f'{self.n_directions} grid values',
                             f'shape {v.shape}')
        out = v[..., self._index].mean(axis=-2)
        return out.reshape(v.shape[:-1] + self.shape)


def elevation_prior(view: CameraView, shape: tuple[int, int] | None = None,
                    sigma_deg: float = 15.0, center_deg: float = 0.0) -> np.ndarray:
    """(h, w) weights in (0, 1]: a Gaussian in the elevation of each cell's
    ray above the array's x-y plane (rotation only), 1 at ``center_deg``
    (0: the horizon; negative: below it). What fills the vertical axis of a
    planar array's projected acoustic image when nothing else does."""
    proj_shape = tuple(shape) if shape is not None else (view.height, view.width)
    k = view.scaled_K(proj_shape)
    rays = depth_points(np.ones(proj_shape), k).reshape(-1, 3)
    r = view.array_from_optical.matrix[:3, :3]
    d = rays @ r.T
    el = np.arctan2(d[:, 2], np.hypot(d[:, 0], d[:, 1]))
    return np.exp(-0.5 * ((el - np.radians(center_deg)) / np.radians(sigma_deg)) ** 2) \
        .reshape(proj_shape) \
        .astype(np.float32)


def direction_map(directions: np.ndarray, target, sigma_deg: float = 3.0) -> np.ndarray:
    """(N,) a synthetic acoustic image with one source: a Gaussian of
    ``sigma_deg`` in the angle between each grid direction and ``target``
    (a vector in the array frame; for a planar grid its elevation is
    ignored, as the array's would be). For tests and oracles."""
    dirs = np.asarray(directions, float)
    t = np.asarray(target, float)
    if np.allclose(dirs[:, 2], 0.0):
        t = np.array([t[0], t[1], 0.0])
    t = t / np.linalg.norm(t)
    ang = np.arccos(np.clip(dirs @ t, -1.0, 1.0))
    return np.exp(-0.5 * (ang / np.radians(sigma_deg)) ** 2)


class AcousticMemory:
    """The acoustic images of the last ``seconds``, carried into the current
    array frame through the robot's odometry: a moving robot hears a
    source that sounds on and off from many headings, and the average of
    its recent acoustic images points at it more often than one window does
    (and still does in a pause between words).

    Each window's normalised acoustic image is kept with the pose of the
    array frame in the odometry frame at its stamp (TF ``odom <- array``);
    :meth:`image` rotates every kept image into the current array frame
    (rotation only: the base's translation between windows is ignored, and
    windows from more than ``max_travel`` m away are left out) and averages
    them, each weighted by its ``weight`` (the node's: the window's
    :func:`power_contrast`, so that a window that heard only diffuse noise
    or a pause, whose normalised map is as tall as any, counts for little),
    renormalised to [0, 1].

    Args:
        directions: (N, 3) unit grid directions in the array frame.
        seconds: how far back windows are kept [s] (0: the current one only).
        max_travel: largest base translation from a kept window [m].
    """

    def __init__(self, directions: np.ndarray, seconds: float = 1.5,
                 max_travel: float = 0.5) -> None:
        self.directions = np.asarray(directions, float)
        self.seconds = float(seconds)
        self.max_travel = float(max_travel)
        self._kept: list[tuple[int, Transform | None, np.ndarray, float]] = []

    def clear(self) -> None:
        self._kept.clear()

    def add(self, power: np.ndarray, stamp_ns: int, odom_from_array: Transform | None,
            weight: float = 1.0) -> None:
        """Keep a window's normalised acoustic image (N,) with its pose
        (None: no odometry, the memory holds this window only) and its
        weight in the average (e.g. :func:`power_contrast` of its map; a
        negative or non-finite weight counts as 0)."""
        if odom_from_array is None:
            self._kept.clear()
        w = float(weight)
        self._kept.append((int(stamp_ns), odom_from_array, np.asarray(power, np.float32),
                           w if np.isfinite(w) and w > 0 else 0.0))
        self._kept = [k for k in self._kept
                      if int(stamp_ns) - k[0] <= self.seconds * 1e9 and k[0] <= int(stamp_ns)]

    def image(self, stamp_ns: int, odom_from_array: Transform | None) -> np.ndarray:
        """(N,) the kept windows' mean acoustic image in the array frame at
        ``stamp_ns`` (pose ``odom_from_array``), in [0, 1].

        Raises:
            InputError: nothing kept.
        """
        if not self._kept:
            raise InputError('acoustic_memory', 'at least one window', 'none')
        if odom_from_array is None:
            return self._kept[-1][2]
        now = odom_from_array.matrix
        maps, weights = [], []
        for t, pose, power, weight in self._kept:
            if pose is None or t > stamp_ns or stamp_ns - t > self.seconds * 1e9:
                continue
            then = pose.matrix
            if np.linalg.norm(then[:3, 3] - now[:3, 3]) > self.max_travel:
                continue
            rot = then[:3, :3].T @ now[:3, :3]            # current array -> that window's array
            idx = np.argmax((self.directions @ rot.T) @ self.directions.T, axis=1)
            maps.append(power[idx])
            weights.append(weight)
        if not maps:
            return self._kept[-1][2]
        w = np.asarray(weights) if sum(weights) > 0 else None     # all flat: alike
        return normalise_power(np.average(maps, axis=0, weights=w)).astype(np.float32)
