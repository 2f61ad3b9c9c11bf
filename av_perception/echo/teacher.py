"""The visual teacher: any ONNX model with RGB in and metric depth out, and,
optionally, feature maps for Spatial Alignment via Matching.

The contract of a teacher ONNX file (see docs/echo_depth.md, "Training recipe"):

- input 0: float32 (N, 3, H, W), RGB scaled to [0, 1], then
  ``(x - input_mean) / input_std`` per channel when the metadata has these
  entries (comma-separated, e.g. ImageNet's ``0.485,0.456,0.406``); H and W
  are the input's static shape or the ``input_size`` metadata entry (``HxW``);
- output ``depth`` (or output 0): (N, 1, h, w) or (N, h, w) metres along the
  optical axis (``depth_scale`` in the metadata multiplies it, e.g. for a
  model trained in millimetres); resized to the student's output size;
- optional outputs ``feat_<h>x<w>`` (N, C, h, w): the feature maps the
  student's SAM blocks align to, one per aligned resolution.

The package's own stand-in teacher (``models/echo_teacher.onnx``, a small
U-Net trained on simulated rooms) follows it.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from av_perception.errors import ConfigError
from av_perception.inference import OnnxModel

FEATURE = re.compile(r'^feat_(\d+)x(\d+)$')


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> (h, w, 3) uint8 (area averaging)."""
    h, w = size
    if rgb.shape[:2] == (h, w):
        return rgb
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)


def resize_depth(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) depth [m], NaN/Inf/<=0 invalid -> (h, w); a cell is the mean of
    the pixels it covers, NaN unless all of them are valid."""
    h, w = size
    depth = np.asarray(depth, np.float32)
    if depth.shape == (h, w):
        return depth.copy()
    valid = (np.isfinite(depth) & (depth > 0)).astype(np.float32)
    vals = np.where(valid > 0, depth, 0.0).astype(np.float32)
    area = cv2.resize(valid, (w, h), interpolation=cv2.INTER_AREA)
    mean = cv2.resize(vals, (w, h), interpolation=cv2.INTER_AREA)
    out = np.full((h, w), np.nan, np.float32)
    ok = area > 0.999
    out[ok] = mean[ok] / area[ok]
    return out


class Teacher:
    """An ONNX depth teacher (see the module docstring for its contract).

    Args:
        path: the .onnx file.
        out_size: (h, w) of the depth the student learns (pseudo-depth is
            resized to it).
        threads: ONNX Runtime intra-op threads.
    """

    def __init__(self, path: str | Path, out_size: tuple[int, int], threads: int = 1) -> None:
        self.model = OnnxModel(path, threads=threads)
        self.out_size = tuple(out_size)
        meta = self.model.metadata
        inp = self.model.session.get_inputs()[0]
        shape = inp.shape
        if 'input_size' in meta:
            h, w = (int(v) for v in meta['input_size'].lower().split('x'))
        elif len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int):
            h, w = shape[2], shape[3]
        else:
            raise ConfigError(f'teacher {path}: input size unknown: give the input a static '
                              '(N, 3, H, W) shape or an input_size=HxW metadata entry')
        self.input_size = (h, w)
        self.mean = np.array([float(v) for v in meta.get('input_mean', '0,0,0').split(',')],
                             np.float32)
        self.std = np.array([float(v) for v in meta.get('input_std', '1,1,1').split(',')],
                            np.float32)
        self.scale = float(meta.get('depth_scale', '1'))
        outs = [o.name for o in self.model.session.get_outputs()]
        self.depth_name = 'depth' if 'depth' in outs else outs[0]
        self.feature_names = [n for n in outs if FEATURE.match(n)]
        self.model_id = self.model.model_id

    def feature_shapes(self) -> dict[str, tuple]:
        return {o.name: tuple(o.shape[1:]) for o in self.model.session.get_outputs()
                if o.name in self.feature_names}

    def __call__(self, rgb: np.ndarray, batch: int = 32) -> tuple[np.ndarray, dict]:
        """(N, H, W, 3) uint8 RGB -> (depth (N, h, w) float32 [m] at out_size,
        {feature name: (N, C, fh, fw) float32})."""
        rgb = np.asarray(rgb)
        if rgb.ndim == 3:
            rgb = rgb[None]
        if rgb.ndim != 4 or rgb.shape[-1] != 3:
            raise ConfigError(f'teacher input: expected (N, H, W, 3) RGB, got {rgb.shape}')
        depths, feats = [], {n: [] for n in self.feature_names}
        for i in range(0, len(rgb), batch):
            x = np.stack([resize_rgb(im, self.input_size) for im in rgb[i:i + batch]])
            x = (x.astype(np.float32) / 255.0 - self.mean) / self.std
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
            res = self.model.session.run([self.depth_name] + self.feature_names,
                                         {self.model.input_name: x})
            d = res[0].reshape(len(x), *res[0].shape[-2:]) * self.scale
            depths += [resize_depth(di, self.out_size) for di in d]
            for n, f in zip(self.feature_names, res[1:]):
                feats[n].append(f.astype(np.float32))
        return (np.stack(depths).astype(np.float32),
                {n: np.concatenate(v) for n, v in feats.items()})
