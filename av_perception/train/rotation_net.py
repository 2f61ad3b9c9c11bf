"""The visual rotation network of Sound Localization from Motion (PyTorch):
yaw between two camera frames from a global matching curve of their
features on the cylinder (:func:`make_visual`), its losses and its ONNX
export. The training recipe is :mod:`av_perception.train.rotation`."""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from av_perception.rotation.features import MAX_SHIFT, RotationSpec
from av_perception.train.export import export_onnx

if TYPE_CHECKING:
    import torch

PEAK_WINDOW = 3           # cells either side of the matching peak in the soft-argmax


def _nn() -> tuple[ModuleType, ModuleType]:
    import torch
    import torch.nn as nn
    return torch, nn


def make_visual(spec: RotationSpec | None = None, channels: int = 16) -> torch.nn.Module:
    """The visual rotation network (input (B, 2, S, S) -> yaw (B,) [rad]).

    A turn of the camera is one horizontal shift of the whole cylindrical
    image, so the two frames' encoder features are matched globally: for
    each shift d of +-``MAX_SHIFT`` cells, the mean cosine similarity of
    a(x) and b(x - d) over the columns both frames see (the *matching
    curve*, :meth:`curve`). The yaw is ``scale`` x the soft-argmax of the
    curve within ``PEAK_WINDOW`` cells of its peak (sub-cell precision; a
    soft-argmax over all shifts would be pulled towards the middle).
    ``scale`` starts at the cylinder's value (a cell is two input columns of
    hfov / S rad; a left turn moves the scene right, hence the minus) and is
    then learned like every other weight: a camera ahead of the turning
    axis sees near things move a little more than the turn (parallax)."""
    torch, nn = _nn()

    class VisualRotationNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                nn.Conv2d(16, channels, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                nn.Conv2d(channels, channels, 3, padding=2, dilation=2), nn.ReLU(),
                nn.Conv2d(channels, channels, 3, padding=1))
            self.temperature = nn.Parameter(torch.tensor(20.0))
            n = 2 * MAX_SHIFT + 1
            self.register_buffer('shifts', torch.arange(-MAX_SHIFT, MAX_SHIFT + 1,
                                                        dtype=torch.float32).view(1, n))
            sp = spec or RotationSpec()
            self.scale = nn.Parameter(torch.tensor(-2.0 * column_rad(sp)))  # rad per cell
            self.register_buffer('sign', torch.tensor(1.0))

        def features(self, img: torch.Tensor) -> torch.Tensor:
            f = self.enc(img)
            return f / (f.norm(dim=1, keepdim=True) + 1e-6)

        def forward(self, pair: torch.Tensor) -> torch.Tensor:
            return self.from_features(self.features(pair[:, 0:1]),
                                      self.features(pair[:, 1:2]))

        def curve(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            """Matching logits (B, 2 MAX_SHIFT + 1): temperature x the mean
            cosine similarity of a(x) and b(x - d) over the overlap, per shift d."""
            h, w = a.shape[-2], a.shape[-1]
            sims = []
            for d in range(-MAX_SHIFT, MAX_SHIFT + 1):
                x0, x1 = max(0, d), min(w, w + d)
                sims.append((a[..., x0:x1] * b[..., x0 - d:x1 - d]).sum((1, 2, 3))
                            / float(h * (x1 - x0)))
            return self.temperature * torch.stack(sims, 1)

        def shift_of(self, logits: torch.Tensor) -> torch.Tensor:
            """Soft-argmax [cells] of matching logits within PEAK_WINDOW of the peak."""
            peak = logits.argmax(1, keepdim=True).float() - MAX_SHIFT
            near = (self.shifts - peak).abs() <= PEAK_WINDOW
            prob = torch.softmax(torch.where(near, logits, logits - 1e4), dim=1)
            return (prob * self.shifts).sum(1)

        def yaw_of(self, logits: torch.Tensor) -> torch.Tensor:
            """Yaw [rad] from matching logits."""
            return self.sign * self.scale * self.shift_of(logits)

        def from_features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            """Yaw [rad] from the two frames' encoder features."""
            return self.yaw_of(self.curve(a, b))

        def yaw_and_spread(self, pair: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """(yaw, spread) [rad]: the yaw and the standard deviation about it
            of the shift under the softmax of the whole matching curve (the
            distribution the curve's cross-entropy trains): small for one
            sharp peak, large for a flat or many-peaked curve (a bare wall,
            a repeating pattern)."""
            logits = self.curve(self.features(pair[:, 0:1]), self.features(pair[:, 1:2]))
            shift = self.shift_of(logits)
            prob = torch.softmax(logits, dim=1)
            std = ((prob * (self.shifts - shift[:, None]) ** 2).sum(1) + 1e-12).sqrt()
            return self.sign * self.scale * shift, self.scale.abs() * std

    return VisualRotationNet()


def shift_target(yaw: torch.Tensor, vis: torch.nn.Module) -> torch.Tensor:
    """The matching-curve cell [float] that a turn ``yaw`` [rad] should peak at."""
    return yaw / (vis.sign * vis.scale.detach())


def curve_loss(vis: torch.nn.Module, logits: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the whole matching curve (``vis.curve``'s logits)
    against a turn ``yaw`` [rad] (two-hot on the neighbouring cells): it
    pulls the right peak up wherever it is, where the soft-argmax alone only
    moves a peak it already has."""
    torch, nn = _nn()
    t = (shift_target(yaw, vis) + MAX_SHIFT).clamp(0, 2 * MAX_SHIFT)
    lo = t.floor().long().clamp(max=2 * MAX_SHIFT - 1)
    frac = t - lo
    target = torch.zeros_like(logits)
    target.scatter_(1, lo[:, None], (1 - frac)[:, None])
    target.scatter_add_(1, (lo + 1)[:, None], frac[:, None])
    return -(target * nn.functional.log_softmax(logits, 1)).sum(1).mean()


def yaw_terms(vis: torch.nn.Module, pair: torch.Tensor,
              yaw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(yaw [rad], squared yaw error, matching-curve cross-entropy) of a
    batch of pairs of known turn ``yaw`` [rad] (the pretext task's or the
    labels')."""
    logits = vis.curve(vis.features(pair[:, 0:1]), vis.features(pair[:, 1:2]))
    r = vis.yaw_of(logits)
    return r, ((r - yaw) ** 2).mean(), curve_loss(vis, logits, yaw)


def flip_images(pair: torch.Tensor) -> torch.Tensor:
    return pair.flip(-1)


def column_rad(spec: RotationSpec) -> float:
    """Azimuth step of one column of the cylindrical network input [rad]."""
    return math.radians(spec.hfov_deg) / spec.image_size


def turn_shift(yaw: float, spec: RotationSpec) -> float:
    """Horizontal shift [columns] of the cylindrical network input when the
    camera turns by ``yaw`` [rad, CCW about up]: a left turn moves what is
    ahead to the right, by exactly yaw / column_rad."""
    return yaw / column_rad(spec)


def rotation_outputs(vis: torch.nn.Module, pairs: torch.Tensor,
                     grey: torch.Tensor) -> torch.Tensor:
    """(yaw, spread) per pair, as the exported graph computes them
    (:func:`exported`)."""
    torch, _ = _nn()
    img = torch.stack([grey[pairs[:, 0]], grey[pairs[:, 1]]], 1)
    return exported(vis)(img)


def exported(vis: torch.nn.Module) -> torch.nn.Module:
    """The exported visual graph: (B, 2, S, S) -> (B, 2) [yaw, spread] [rad],
    one pass. The network is antisymmetric by construction: the matching
    curve of (b, a) is that of (a, b) mirrored (the same products over the
    same overlap), so the swapped frames give exactly -yaw and the same
    spread, and running both orders would only double the work."""
    torch, nn = _nn()

    class Exported(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = vis

        def forward(self, pair: torch.Tensor) -> torch.Tensor:
            return torch.stack(self.net.yaw_and_spread(pair), 1)
    return Exported()


def visual_schedule(opt: torch.optim.Optimizer, lr: float,
                    epochs: int) -> torch.optim.lr_scheduler.OneCycleLR:
    """The visual network's learning rate, stepped once per epoch: a warm-up
    over ~10 % of the epochs (at least 2), then a cosine decay. (OneCycleLR
    divides by zero when its warm-up ends at step 0: 2 epochs at 50 %.)"""
    import torch
    pct = min(0.5, max(0.1, 2.0 / epochs))
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs,
                                               pct_start=0.75 if epochs == 2 else pct)


def export_visual(vis: torch.nn.Module, spec: RotationSpec, path: Path,
                  meta: dict) -> torch.nn.Module:
    """ONNX of the visual model with its contract; returns the exported module."""
    torch, _ = _nn()
    wrapped = exported(vis).eval()
    export_onnx(wrapped, (torch.zeros(1, 2, spec.image_size, spec.image_size),), path, ['pair'],
                ['yaw_spread'], {'task': 'rotation_visual', 'model_id':
                                 f'rotation-visual-{meta["training"]}', **spec.to_metadata(),
                                 **meta})
    return wrapped
