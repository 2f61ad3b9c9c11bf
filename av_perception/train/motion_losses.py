"""The losses of binaural direction from motion (PyTorch): the geometry of
a static source heard before and after a turn in place, with folded
(front/back-ambiguous) azimuths. The recipe that uses them, and the
geometry in full, is :mod:`av_perception.train.motion`."""

from __future__ import annotations

import math
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: Width of the sharpening target's bump [deg].
SHARPEN_SIGMA_DEG = 5.0


def _torch() -> ModuleType:
    import torch
    return torch


def fold(x: torch.Tensor) -> torch.Tensor:
    """Angles [rad] folded into [-pi/2, pi/2] (torch): asin(sin x), computed
    as atan2(sin x, |cos x|) so that its derivative stays +-1."""
    torch = _torch()
    return torch.atan2(torch.sin(x), torch.cos(x).abs())


def motion_residual(yaw: torch.Tensor, az_first: torch.Tensor,
                    az_second: torch.Tensor) -> torch.Tensor:
    """Inconsistency [rad] of folded azimuths of one static source before and
    after a turn in place ``yaw`` [rad, CCW]: the smaller error of the front
    (``fold(az_first - yaw)``) and back (``fold(az_first + yaw)``)
    hypotheses. Zero for a consistent pair (and for its mirror image)."""
    torch = _torch()
    front = (fold(az_first - yaw) - az_second).abs()
    back = (fold(az_first + yaw) - az_second).abs()
    return torch.minimum(front, back)


def lateral_residual(yaw: torch.Tensor, lat_first: torch.Tensor,
                     lat_second: torch.Tensor) -> torch.Tensor:
    """Inconsistency of the lateral positions l = sin(azimuth) of one static
    source before and after a turn in place ``yaw`` [rad], without choosing
    between front and back: with l_t = sin(a - r) = l_s cos r -+ cos(a) sin r
    and cos(a)^2 = 1 - l_s^2, squaring eliminates the sign:
    l_s^2 + l_t^2 - 2 l_s l_t cos r = sin^2 r (symmetric in the two views).
    Returned divided by |sin r| (at least 0.05), so that it is of the order
    of the lateral error whatever the turn."""
    torch = _torch()
    res = (lat_first ** 2 + lat_second ** 2 - 2 * lat_first * lat_second * torch.cos(yaw)
           - torch.sin(yaw) ** 2)
    return res / torch.sin(yaw).abs().clamp(min=0.05)


def implied_second(yaw: torch.Tensor, az_first: torch.Tensor,
                   az_second: torch.Tensor) -> torch.Tensor:
    """The azimuth [rad] of the second view that the first and the turn imply
    under the hypothesis (front or back) that fits ``az_second`` better."""
    torch = _torch()
    front, back = fold(az_first - yaw), fold(az_first + yaw)
    return torch.where((front - az_second).abs() <= (back - az_second).abs(), front, back)


def expected_azimuth(prob: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Expectation [rad] of distributions (B, bins) over ``grid`` (bins,)."""
    return prob @ grid


def bumps(az: torch.Tensor, grid: torch.Tensor,
          sigma: float = math.radians(SHARPEN_SIGMA_DEG)) -> torch.Tensor:
    """Normalised Gaussian bumps (B, bins) at azimuths ``az`` [rad]."""
    torch = _torch()
    w = torch.exp(-0.5 * ((grid[None, :] - az[:, None]) / sigma) ** 2)
    return w / w.sum(1, keepdim=True)


def distribution(model: torch.nn.Module, x: torch.Tensor,
                 weight: torch.Tensor | None = None) -> torch.Tensor:
    """Log-distributions (B, bins) of windows ``x`` (B, features), or of
    views ``x`` (B, W, features): the mean of the distributions of a view's
    windows weighted by ``weight`` (B, W) (e.g. its loud ones), as the
    estimator averages a block's windows."""
    torch = _torch()
    if x.dim() == 2:
        return torch.log_softmax(model(x), -1)
    b, w, f = x.shape
    p = torch.softmax(model(x.reshape(b * w, f)), -1).reshape(b, w, -1)
    wt = torch.ones(b, w) if weight is None else weight.float()
    wt = wt / wt.sum(1, keepdim=True).clamp(min=1.0)
    return torch.log((p * wt[..., None]).sum(1).clamp(min=1e-8))


def pair_losses(model: torch.nn.Module, grid: torch.Tensor, x_s: torch.Tensor,
                x_t: torch.Tensor, xs_swap: torch.Tensor, yaw: torch.Tensor,
                w_s: torch.Tensor | None = None,
                w_t: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The loss terms of a batch of pairs: windows ``x_s`` (first view),
    ``x_t`` (second view), ``xs_swap`` (``x_s`` with the ears swapped), all
    (B, features) standardised, and the visual turn ``yaw`` (B,) [rad]. Or
    whole views (B, W, features) with their windows' weights ``w_s``,
    ``w_t`` (B, W) (:func:`distribution`)."""
    torch = _torch()
    logp_s = distribution(model, x_s, w_s)
    logp_t = distribution(model, x_t, w_t)
    az_s = expected_azimuth(logp_s.exp(), grid)
    az_t = expected_azimuth(logp_t.exp(), grid)
    huber = torch.nn.functional.smooth_l1_loss
    sin_grid = torch.sin(grid)
    res = lateral_residual(yaw, logp_s.exp() @ sin_grid, logp_t.exp() @ sin_grid)
    terms = {'lateral': huber(res, torch.zeros_like(res), beta=0.1)}
    res = motion_residual(yaw, az_s, az_t)
    terms['motion'] = huber(res, torch.zeros_like(res), beta=0.1)
    with torch.no_grad():   # each view's target from the other view and the turn
        t_for_t = implied_second(yaw, az_s, az_t)
        t_for_s = implied_second(-yaw, az_t, az_s)
    terms['sharpen'] = -0.5 * ((bumps(t_for_t, grid) * logp_t).sum(1).mean()
                               + (bumps(t_for_s, grid) * logp_s).sum(1).mean())
    az_swap = expected_azimuth(distribution(model, xs_swap, w_s).exp(), grid)
    terms['swap'] = huber(az_s + az_swap, torch.zeros_like(az_s), beta=0.1)
    terms['prior'] = uniform_prior(torch.cat([az_s, az_t]))
    return terms


def uniform_prior(az: torch.Tensor) -> torch.Tensor:
    """1-D Wasserstein distance [rad] between a batch of folded azimuths and
    the uniform distribution on [-pi/2, pi/2]: around a robot that turns to
    every heading, sources are heard from every direction, and folded
    azimuths of directions uniform on the circle are uniform on
    [-pi/2, pi/2]. Without it, what the two views of a pair do not agree on
    (reverberation, a second source) shrinks every azimuth towards the
    centre: the consistency of noisy views is best met by small ones."""
    torch = _torch()
    n = az.shape[0]
    q = (torch.arange(n, dtype=az.dtype) + 0.5) / n * math.pi - math.pi / 2
    return (torch.sort(az).values - q).abs().mean()
