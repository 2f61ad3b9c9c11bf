"""Scoring depth from echoes on any bags with ``audio/echo``,
``camera/image_raw``, ``camera/camera_info`` and ``gt/depth``
(``av-perception eval echo-depth`` and bench/echo_depth); a bag without one
of them, or whose camera's intrinsics at the model's output size are not the
model's, is reported and left out.

Metrics over the valid pixels of each image (ground truth finite, > 0 and
within the model's range), then averaged over images, as BatVision and DAPS
report them: MAE and RMSE [m], abs-rel (mean |p - g| / g), delta_i (share of
pixels with max(p/g, g/p) < 1.25^i). ``by_range``: the share of the valid
pixels, RMSE and abs-rel pooled over the pixels of each ground-truth range
(RANGES, metres): RMSE squares the error, so a few far pixels (a hall's
back wall) can outweigh the rest, and a test set with more of them scores
worse at equal skill per range. ``occ_iou``: intersection over union of
the free cells of the occupancy grid made from the prediction and of the one
the same ray casting makes from the ground-truth depth, with the camera
mounted where the bag's /tf_static puts it in ``base_frame`` (a bag without
that transform is scored without it, with a warning). ``ms_per_echo``:
median inference time per echo (features + network) on one thread.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from av_perception.bag.contents import BASE_FRAME, list_bags
from av_perception.echo.dataset import GT_DEPTH, NEEDS, Pairs, collect
from av_perception.echo.features import EchoSpec
from av_perception.echo.model import EchoDepthModel
from av_perception.echo.occupancy import CameraMount, GridSpec, free_iou, occupancy_from_depth
from av_perception.errors import InputError

METRICS = ('mae', 'rmse', 'abs_rel', 'delta1', 'delta2', 'delta3', 'occ_iou', 'ms_per_echo')
#: ground-truth depth ranges of ``by_range`` [m], lower edges included
RANGES = ((0.0, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, math.inf))


def valid_pixels(pred: np.ndarray, gt: np.ndarray,
                 max_depth: float) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, ground truth) [m] of the pixels that count: ground truth
    finite, > 0 and within ``max_depth``, prediction finite (floored at 1 mm)."""
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    valid = np.isfinite(gt) & (gt > 0) & (gt <= max_depth) & np.isfinite(pred)
    return np.clip(pred[valid], 1e-3, None), gt[valid]


def depth_metrics(pred: np.ndarray, gt: np.ndarray, max_depth: float) -> dict | None:
    """Metrics of one image over its valid pixels (None if it has none)."""
    p, g = valid_pixels(pred, gt, max_depth)
    if not g.size:
        return None
    err = p - g
    ratio = np.maximum(p / g, g / p)
    return {'mae': float(np.abs(err).mean()), 'rmse': float(np.sqrt((err ** 2).mean())),
            'abs_rel': float((np.abs(err) / g).mean()),
            'delta1': float((ratio < 1.25).mean()), 'delta2': float((ratio < 1.25 ** 2).mean()),
            'delta3': float((ratio < 1.25 ** 3).mean())}


@dataclass
class Scores:
    """Per-image metrics of one model on a test set."""

    per_image: list = field(default_factory=list)
    #: per RANGES entry: [pixels, sum of squared error, sum of relative error]
    ranges: np.ndarray = field(default_factory=lambda: np.zeros((len(RANGES), 3)))
    occ: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    skipped: int = 0        # images without valid ground truth

    def summary(self) -> dict:
        out: dict = {}
        for m in METRICS[:6]:
            vals = [d[m] for d in self.per_image]
            out[m] = round(float(np.mean(vals)), 4) if vals else None
        occ = [v for v in self.occ if not math.isnan(v)]
        out['occ_iou'] = round(float(np.mean(occ)), 4) if occ else None
        out['ms_per_echo'] = (round(1e3 * float(np.median(self.seconds)), 3)
                              if self.seconds else None)
        out['images'] = len(self.per_image)
        total = self.ranges[:, 0].sum()
        out['by_range'] = {
            _range_name(lo, hi): ({'share': round(float(n / total), 4),
                                   'rmse': round(float(np.sqrt(sq / n)), 4),
                                   'abs_rel': round(float(rel / n), 4)} if n else None)
            for (lo, hi), (n, sq, rel) in zip(RANGES, self.ranges)}
        return out

    def add_ranges(self, pred: np.ndarray, gt: np.ndarray, max_depth: float) -> None:
        """Pool one image's valid pixels into the ground-truth ranges."""
        p, g = valid_pixels(pred, gt, max_depth)
        for row, (lo, hi) in enumerate(RANGES):
            s = (g >= lo) & (g < hi)
            err = p[s] - g[s]
            self.ranges[row] += (s.sum(), (err ** 2).sum(), (np.abs(err) / g[s]).sum())


def _range_name(lo: float, hi: float) -> str:
    return f'{lo:g}-{hi:g} m' if math.isfinite(hi) else f'>= {lo:g} m'


@dataclass
class TestSet:
    """Echo / camera pairs with ground-truth depth, and their intrinsics."""

    pairs: Pairs
    bags: int

    @property
    def k(self) -> np.ndarray:
        return self.pairs.k


def load_test(bags_dir: str | Path, spec: EchoSpec, size: tuple[int, int],
              tolerance: float = 0.05, namespace: str = '', k: np.ndarray | None = None,
              base_frame: str = BASE_FRAME, progress=sys.stderr) -> TestSet:
    """The pairs of every usable bag that have gt/depth; ``k``: the
    intrinsics every bag's camera must have at ``size`` (a model's; None:
    the first bag's); each bag's camera mount in ``base_frame`` from its TF.

    Raises:
        InputError: no usable bag, or no pair with ground truth.
    """
    bags = list_bags(bags_dir)
    pairs = collect(bags, spec, size, tolerance, namespace, progress,
                    into=Pairs() if k is None else Pairs(k=np.asarray(k, float),
                                                         k_from='the model'),
                    base_frame=base_frame, needs=(*NEEDS, GT_DEPTH))
    keep = [i for i, g in enumerate(pairs.gt) if g is not None]
    if not keep:
        raise InputError('gt', f'gt/depth within {tolerance} s of the echo chunks in {bags_dir}',
                         f'none ({len(pairs)} pairs)')
    out = Pairs(k=pairs.k, unpaired=pairs.unpaired + len(pairs) - len(keep),
                echo_chunks=pairs.echo_chunks, mounts=pairs.mounts)
    for name in ('echo', 'rgb', 'gt', 'stamps', 'bag'):
        setattr(out, name, [getattr(pairs, name)[i] for i in keep])
    return TestSet(out, len(bags))


def score(test: TestSet, predict: Callable[[int], np.ndarray], max_depth: float,
          mount: CameraMount | None = None, grid: GridSpec = GridSpec()) -> Scores:
    """Score ``predict(i) -> depth (h, w)`` on every pair of the test set;
    the time of each call is the model's time per echo. The occupancy uses
    ``mount`` if given, else each bag's own (``Pairs.mounts``; a bag without
    one is not scored on occupancy)."""
    out = Scores()
    for i, gt in enumerate(test.pairs.gt):
        t = time.perf_counter()
        pred = predict(i)
        out.seconds.append(time.perf_counter() - t)
        m = depth_metrics(pred, gt, max_depth)
        if m is None:
            out.skipped += 1
            continue
        out.per_image.append(m)
        out.add_ranges(pred, gt, max_depth)
        where = mount or test.pairs.mounts.get(test.pairs.bag[i])
        if where is None:
            continue
        ref = occupancy_from_depth(np.where(gt <= max_depth, gt, np.nan), test.k, where, grid)
        out.occ.append(free_iou(occupancy_from_depth(pred, test.k, where, grid), ref))
    return out


def score_student(bags_dir: str | Path, model: str | Path | None = None,
                  tolerance: float = 0.05, namespace: str = '',
                  test: TestSet | None = None, base_frame: str = BASE_FRAME) -> dict:
    """Metrics of an echo-depth model (default: the shipped one) on bags
    whose camera has the model's intrinsics."""
    net = EchoDepthModel(model)
    if test is None:
        test = load_test(bags_dir, net.spec, (net.height, net.width), tolerance, namespace,
                         k=net.k, base_frame=base_frame)
    echoes = test.pairs.echo
    sr = net.spec.sample_rate
    return score(test, lambda i: net(echoes[i], sr), net.max_depth).summary()


def score_teacher(test: TestSet, teacher: str | Path, max_depth: float) -> dict:
    """Metrics of an RGB teacher on the camera frames of the pairs."""
    from av_perception.echo.teacher import Teacher
    t = Teacher(teacher, tuple(test.pairs.gt[0].shape))
    rgb = test.pairs.rgb
    return score(test, lambda i: t(rgb[i][None])[0][0], max_depth).summary()


def score_constant(test: TestSet, depth: np.ndarray, max_depth: float) -> dict:
    """Metrics of one fixed depth image (the mean-depth baseline)."""
    return score(test, lambda i: depth.copy(), max_depth).summary()


def format_scores(results: dict) -> str:
    """One line per model."""
    lines = []
    for name, r in results.items():
        lines.append(f'{name:15s} ' + '  '.join(
            f'{m} {r[m]:.3f}' if isinstance(r.get(m), float) else f'{m} {r.get(m)}'
            for m in METRICS) + f'  ({r.get("images")} images)')
        ranges = [f'{k} {v["rmse"]:.3f} ({100 * v["share"]:.0f} %)'
                  for k, v in (r.get('by_range') or {}).items() if v]
        if ranges:
            lines.append(f'{"":15s} rmse by true depth (share of pixels): ' + ', '.join(ranges))
    return '\n'.join(lines)
