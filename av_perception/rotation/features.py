"""Inputs of the rotation models, computed by the same functions in training,
evaluation and the node (numpy and OpenCV only).

- Visual: two camera frames -> one (2, S, S) float32 array: each frame in
  grey, reprojected onto a cylinder about the camera's vertical axis (S
  columns evenly spaced in azimuth across the field of view, so that a turn
  of the camera about its vertical axis is a pure horizontal shift of
  ``hfov / S`` rad per column, whatever the column) and standardised (zero
  mean, unit variance, so a dim, poorly textured room is not a
  near-constant input).
- Binaural: the segment of ``audio_window`` samples that starts at a
  frame's stamp, for the package's one binaural direction network
  (``av_perception.direction.learned``: its own features and windows).

Angles: REP 103, yaw CCW positive about +z [rad]; binaural azimuths folded
into the front half-plane [-pi/2, pi/2] (a head cannot tell front from back).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np

from av_perception.direction.classic import fold_front, wrap
from av_perception.errors import InputError
from av_perception.geometry.frames import hfov_deg

#: Binaural windows and segments quieter than this carry no direction [dBFS]:
#: the loud windows a model learns a view from (``train/motion_data``), the
#: windows its estimate averages and the rotation node's ``min_level_dbfs``
#: default.
MIN_LEVEL_DBFS = -45.0

#: Largest shift of the visual network's matching curve, in cells of its
#: stride-2 feature map (two input columns each): the largest turn it reads.
MAX_SHIFT = 36


@dataclass(frozen=True)
class RotationSpec:
    """The input contract of the rotation models (ONNX metadata).

    Attributes:
        image_size: side of the square grey network input [px]: columns
            evenly spaced in azimuth (cylindrical projection).
        hfov_deg: horizontal field of view of the camera it was trained on.
        sample_rate: binaural sample rate [Hz].
        audio_window: binaural samples per direction estimate (the segment
            from a frame's stamp).
        array: binaural geometry name.
    """

    image_size: int = 128
    hfov_deg: float = 90.0
    sample_rate: int = 16000
    audio_window: int = 8000
    array: str = 'binaural'

    def to_metadata(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> RotationSpec:
        kinds = {'image_size': int, 'hfov_deg': float, 'sample_rate': int,
                 'audio_window': int, 'array': str}
        try:
            return cls(**{k: t(meta[k]) for k, t in kinds.items()})
        except (KeyError, ValueError) as exc:
            raise InputError('model metadata', 'a rotation model contract '
                             f'({", ".join(kinds)})', f'{exc!r}') from None


@functools.lru_cache(maxsize=8)
def _cylinder_maps(width: int, height: int, size: int, hfov: float):
    """cv2.remap maps from a (height, width) pinhole image with horizontal
    field of view ``hfov`` [deg] (square pixels, principal point at the
    centre) to a (size, size) cylindrical one: column u looks at azimuth
    phi_u = ((u + 0.5) / size - 0.5) hfov; the rows span the heights that
    every column sees (the frame's vertical extent at its left and right
    edges), so no output pixel falls outside the frame."""
    half = math.radians(hfov) / 2.0
    f = (width / 2.0) / math.tan(half)
    phi = ((np.arange(size) + 0.5) / size - 0.5) * 2.0 * half
    h = ((np.arange(size) + 0.5) / size - 0.5) * height / f * math.cos(half)  # y / rho
    P, Hh = np.meshgrid(phi, h)
    map_x = (f * np.tan(P) + width / 2.0 - 0.5).astype(np.float32)
    map_y = (f * Hh / np.cos(P) + height / 2.0 - 0.5).astype(np.float32)
    return map_x, map_y


def max_turn_rad(spec: RotationSpec) -> float:
    """Largest yaw [rad] between two frames that the visual network can read:
    ``MAX_SHIFT`` cells of two columns of ``hfov / image_size`` each (50.6 deg
    at 128 px and 90 deg HFOV)."""
    return MAX_SHIFT * 2 * math.radians(spec.hfov_deg) / spec.image_size


#: tallest accepted frame, height / width (a portrait 9:16 camera is 1.8)
MAX_TALL = 4


def grey_input(image: np.ndarray, spec: RotationSpec) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8 image from a camera with the model's field of
    view -> (S, S) standardised float32 on the cylinder (module docstring).
    The image is first area-resized to S columns (no aliasing), then
    reprojected (bilinear)."""
    import cv2
    img = np.asarray(image)
    if img.ndim == 3:
        if img.shape[2] != 3:
            raise InputError('image', '(H, W) or (H, W, 3)', f'shape {img.shape}')
        img = img.astype(np.float32).mean(axis=2)  # rgb/bgr: the same grey
    elif img.ndim != 2 or min(img.shape) < 2:
        raise InputError('image', '(H, W) or (H, W, 3)', f'shape {img.shape}')
    if img.shape[0] > MAX_TALL * img.shape[1]:
        # resized to S columns, such a frame would be S x (its aspect) rows: an
        # allocation out of proportion to its data, and past OpenCV's remap
        # limit (32767 rows) from 256:1 on; no camera of the model's field of
        # view is that tall
        raise InputError('image', f'a camera frame at most {MAX_TALL} times as tall as wide',
                         f'{img.shape[0]} x {img.shape[1]} px (height x width)')
    size = spec.image_size
    height = max(2, int(round(size * img.shape[0] / img.shape[1])))
    small = cv2.resize(img.astype(np.float32), (size, height), interpolation=cv2.INTER_AREA)
    mx, my = _cylinder_maps(size, height, size, float(spec.hfov_deg))
    g = cv2.remap(small, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return ((g - g.mean()) / (g.std() + 2.0)).astype(np.float32)


def pair_input(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Two grey inputs -> (2, S, S): the visual network's input."""
    if first.shape != second.shape:
        raise InputError('image pair', 'two frames of the same size',
                         f'{first.shape} and {second.shape}')
    return np.stack([first, second]).astype(np.float32)


__all__ = ['MAX_SHIFT', 'MIN_LEVEL_DBFS', 'RotationSpec', 'fold_front', 'grey_input', 'hfov_deg',
           'max_turn_rad', 'pair_input', 'wrap']
