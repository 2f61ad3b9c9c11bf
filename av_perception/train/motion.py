"""Binaural direction from motion (PyTorch): the direction network of
:mod:`av_perception.train.direction` (its features and architecture, the
same ONNX contract) trained by the turns a visual rotation model sees, with
no direction labels (Sound Localization from Motion, ICCV 2023).

Geometry (REP 103; azimuths CCW from the head's +x [rad]): a robot that
turns in place by ``r`` (the yaw of the second view relative to the first,
CCW) hears a static source that was at azimuth ``a`` at ``a - r``
afterwards. A binaural head hears folded azimuths, fold(a) = asin(sin a) in
[-pi/2, pi/2] (front and back mirror). With the network's folded azimuths
``a_s``, ``a_t`` of the two views, the source was either in front (then
``a_t = fold(a_s - r)``) or behind (``a_t = fold(a_s + r)``: behind, a left
turn moves it to the left); the motion residual is the smaller of the two
errors (:func:`motion_residual`). Folding is done as atan2(sin, |cos|), whose
derivative is +-1 everywhere (asin's is unbounded at +-pi/2).

Losses, per pair of views (each view's distribution the mean over its loud
windows, as the estimator averages a segment's; the pair is mirrored at
random, which negates the azimuths and the turn):

- ``motion``: Huber of the motion residual, the azimuth of a view being the
  expectation of the network's distribution over its grid (differentiable);
- ``sharpen``: the cross-entropy of each view's distribution against a bump
  at the azimuth the other view and the turn imply under the better
  hypothesis (targets held fixed): it makes the distribution's peak, which
  the estimator reports, agree with its expectation;
- ``swap``: swapping the ears negates the azimuth (the expectations of a
  window and of its swapped copy add up to zero).

The loss has no trivial minimum: a constant azimuth is inconsistent with
every turn, and the lateral residual is zero only for l = +-sin(azimuth).
It is minimised first alone (the first half of the epochs), since the
hypothesis-choosing terms, from a random start, settle on piecewise
mirrored solutions; pairs are taken between any two views of a chain of
turns in place (:func:`chain_pairs`).

Nothing here separates a model from its mirror image (every azimuth
negated is exactly as consistent, a front source's turn looking like a
back one's): :func:`sign_and_scale` fixes the sign afterwards from
``LABELLED`` labelled validation views, as the paper fixes its sign with 12
labelled samples, and the exported graph applies it
(:func:`~av_perception.direction.learned_features.calibration`). The scale is the
motion's (that of the visual yaw, itself fixed by 12 labelled pairs); a
scale fitted to the 12 labelled views is optional (``scale``), off by
default: on 12 reverberant views it is noise (it took a label-trained
model, whose scale is right, to x0.61).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, TextIO

import numpy as np

from av_perception.arrays import load_array
from av_perception.direction.learned_features import (FeatureSpec, calibration,
                                                      check_onset_history, peaks, spec_for)
from av_perception.bag.provenance import randomization
from av_perception.errors import ConfigError
from av_perception.train.checkpoints import Checkpoints, fingerprint
from av_perception.train.loop import (EpochLoop, EpochResult, Fit, batch_pass,
                                      check_optimisation)
from av_perception.train.motion_data import MotionData, build_data
from av_perception.train.motion_sign import (LABELLED, SIGNS, fix_binaural_sign, geometry_views,
                                             labelled_views, sign_and_scale,
                                             view_distributions)
from av_perception.train.motion_losses import pair_losses
from av_perception.train.motion_refine import (EPOCHS, MEMBERS, ROUNDS, check_settings,
                                               refine_ensemble)

if TYPE_CHECKING:
    import torch

#: Loss weights. The prior at 0.1, not 1.0: on the labelled validation views
#: of data/binaural_train (300 rooms) 23.3 deg median against 51.7 deg
#: (docs/binaural_motion.md).
WEIGHTS = {'lateral': 1.0, 'motion': 1.0, 'sharpen': 0.1, 'swap': 1.0, 'prior': 0.1}
#: Terms off during the first half of the epochs (the lateral loss finds the
#: global shape first: the others pick a hypothesis per pair, and from a
#: random start they settle on piecewise mirrored solutions).
LATE = ('motion', 'sharpen')


def _torch() -> ModuleType:
    import torch
    return torch


# -------------------------------------------------------------------- data
# ---------------------------------------------------------------- training
def _draw(data: MotionData, idx: np.ndarray, rng: np.random.Generator, draws: int,
          views: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray,
                                        np.ndarray | None, np.ndarray]:
    """Window pairs for the pairs ``idx``: ``draws`` random (loud) windows of
    each view per pair (``views``: the whole views, window index None),
    randomly mirrored. Returns index arrays and the mirror flags."""
    p = np.repeat(idx, draws)
    first, second = data.pairs[p, 0], data.pairs[p, 1]
    W = data.x.shape[1]

    def pick(v: np.ndarray) -> np.ndarray | None:
        if views:
            return None
        # a random loud window (any window if none is loud)
        score = rng.random((len(v), W)) + data.loud[v]
        return score.argmax(1)
    return p, first, pick(first), second, pick(second), rng.random(len(p)) < 0.5


def _batch(xt: torch.Tensor, xst: torch.Tensor, yaw: np.ndarray,
           sel: tuple[np.ndarray | None, ...], mirror: np.ndarray,
           loud: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """Tensors of one batch: first/second windows, the first's swapped copy,
    the turn; mirrored pairs hear left and right swapped and turn the other
    way. With whole views (window index None), also the weights of their
    windows (``loud``: (V, W) tensor)."""
    torch = _torch()
    p, v1, w1, v2, w2 = sel
    r = torch.from_numpy(yaw[p]) * torch.from_numpy(np.where(mirror, -1.0, 1.0).astype(
        np.float32))
    if w1 is None:
        m = torch.from_numpy(mirror)[:, None, None]
        return (torch.where(m, xst[v1], xt[v1]), torch.where(m, xst[v2], xt[v2]),
                torch.where(m, xt[v1], xst[v1]), r, loud[v1], loud[v2])
    m = torch.from_numpy(mirror)[:, None]
    x_s = torch.where(m, xst[v1, w1], xt[v1, w1])
    xs_swap = torch.where(m, xt[v1, w1], xst[v1, w1])
    x_t = torch.where(m, xst[v2, w2], xt[v2, w2])
    return x_s, x_t, xs_swap, r


def _loss(terms: dict[str, torch.Tensor], late: bool = True) -> torch.Tensor:
    return sum(WEIGHTS[k] * v for k, v in terms.items() if late or k not in LATE)


def both_pairs_usable(data: MotionData, idx: np.ndarray) -> np.ndarray:
    """Pairs whose two views each have a loud window."""
    return idx[data.loud[data.pairs[idx, 0]].any(1) & data.loud[data.pairs[idx, 1]].any(1)]


@dataclass
class MotionConfig:
    """How the direction network learns from motion.

    Attributes:
        epochs, batch, lr, seed: the optimisation (AdamW, cosine schedule).
        draws: window pairs drawn per turn pair and epoch (with ``views``,
            they only redraw the mirroring).
        views: each view's distribution is the mean over its loud windows
            (as the estimator averages a segment's), not one random window
            (labelled validation views of data/binaural_train: 18-21 deg
            median over three runs, against 23.3 deg with one window).
        labelled: labelled validation views that fix the global sign.
        scale: also fit the scale to those views (off: on 12 reverberant
            views it is noise).
        sign: how the global sign is fixed (:data:`SIGNS`): with
            'geometry' no label is read at all (a robot's own bags).
        refine_epochs: epochs of each self-training round on the chains'
            pseudo-labels (:mod:`av_perception.train.motion_refine`; 0: none,
            the pair-trained network is exported).
        refine_rounds: the most self-training rounds; they stop earlier
            once the pseudo-labels stand still (``motion_refine.refine``;
            0: none). Figures of each: docs/binaural_motion.md.
        refine_members: chains of rounds, each from its own seed, whose
            networks' distributions are averaged
            (``motion_refine.refine_ensemble``; 1: one network).
        onset_history: > 0: the features' cross-correlation weighted by
            onsets over this many frames (``FeatureSpec.onset_history``, as
            ``train direction --onset-history``); 0: the whole window's.
    """

    epochs: int = 40
    batch: int = 64
    lr: float = 1e-3
    seed: int = 0
    draws: int = 8
    views: bool = True
    labelled: int = LABELLED
    scale: bool = False
    sign: str = 'auto'
    refine_epochs: int = EPOCHS
    refine_rounds: int = ROUNDS
    refine_members: int = MEMBERS
    onset_history: int = 0

    def __post_init__(self) -> None:
        check_optimisation(self.epochs, self.batch, self.lr, min_batch=2)
        check_onset_history(self.onset_history)
        check_settings(self.refine_epochs, self.refine_rounds, self.refine_members)
        if self.sign not in SIGNS:
            raise ConfigError(f'the binaural sign must be one of {SIGNS}, got {self.sign!r}')
        if self.draws < 1 or self.labelled < 1:
            raise ConfigError(f'draws and labelled must be at least 1; got {self.draws}, '
                              f'{self.labelled}')


@dataclass
class MotionFit:
    """The network learned from the turns (:func:`fit`), in eval mode with
    the best epoch's weights, and the standardisation of its features."""

    model: torch.nn.Module
    mean: np.ndarray
    std: np.ndarray
    train_pairs: int
    val_pairs: int
    fit: Fit


def fit(data: MotionData, spec: FeatureSpec, out: Path, cfg: MotionConfig = MotionConfig(),
        progress: TextIO = sys.stderr) -> MotionFit:
    """Train the direction network from the turns; checkpoints each epoch
    (resumable) under ``out``'s ``<stem>_checkpoints``; keeps the epoch with
    the lowest validation loss (the motion losses of the last tenth of the
    rooms: no labels)."""
    torch = _torch()
    from av_perception.train.direction import make_model
    torch.manual_seed(cfg.seed)
    tr = both_pairs_usable(data, np.flatnonzero(data.room < data.val_room))
    va = both_pairs_usable(data, np.flatnonzero(data.room >= data.val_room))
    if len(tr) < 10:
        raise ConfigError(f'only {len(tr)} training pairs with sound in both views')
    train_views = data.view_room < data.val_room
    flat = data.x[train_views][data.loud[train_views]]
    mean, std = flat.mean(0), flat.std(0) + 1e-3
    xt = torch.from_numpy((data.x - mean) / std)
    xst = torch.from_numpy((data.x_swap - mean) / std)
    grid = torch.from_numpy(spec.grid().astype(np.float32))
    model = make_model(spec.n_features, spec.bins)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    ck = Checkpoints(out.parent / f'{out.stem}_checkpoints',
                     fingerprint(int(len(data.pairs)), float(data.x.sum()),
                                 float(np.nansum(data.yaw)), cfg.lr, cfg.batch, cfg.seed,
                                 cfg.draws, WEIGHTS, spec.to_metadata(),
                                 *(['views'] if cfg.views else [])),
                     progress)
    loud = torch.from_numpy(data.loud)
    loop = EpochLoop('motion', ck, model, opt, sched, cfg.epochs, progress)
    rng = loop.rng(cfg.seed)
    val_sel = (_draw(data, va, np.random.default_rng(123), cfg.draws, cfg.views) if len(va)
               else None)
    batch = cfg.batch

    def epoch(e: int) -> EpochResult:
        late = e >= cfg.epochs // 2
        model.train()
        sel = _draw(data, rng.permutation(tr), rng, cfg.draws, cfg.views)
        order = rng.permutation(len(sel[0]))

        def loss_at(i: int) -> torch.Tensor:
            b = order[i:i + batch]
            return _loss(pair_losses(model, grid, *_batch(
                xt, xst, data.yaw, tuple(None if a is None else a[b] for a in sel[:5]),
                sel[5][b], loud)), late)

        loss = batch_pass(opt, len(order), batch, loss_at)
        sched.step()
        model.eval()
        vloss = math.nan
        if val_sel is not None:
            with torch.no_grad():
                vloss = float(_loss(pair_losses(model, grid, *_batch(
                    xt, xst, data.yaw, val_sel[:5], val_sel[5], loud)), late))
        phase = 'all' if late else 'lateral'
        return EpochResult(loss, vloss, {'phase': phase}, f' ({phase})')

    # the best epoch is one with every term (the lateral-only losses are lower)
    result = loop.run(epoch, 'motion loss', comparable=lambda e: e['phase'] == 'all')
    model.eval()
    return MotionFit(model, mean, std, int(len(tr)), int(len(va)), result)


@dataclass
class MotionResult:
    """A binaural direction model learned from motion.

    Attributes:
        model: its ONNX file.
        views, pairs: camera views and turn pairs (chained) it learned from.
        train_pairs, val_pairs: of them, those with sound in both views.
        sign_scale: how its global sign (and scale) were fixed.
        fit: the epochs.
        val_median_error_deg: on the labelled validation views (reports
            only, never used to choose anything; None without any).
        val_views: how many such views.
    """

    model: Path
    views: int
    pairs: int
    train_pairs: int
    val_pairs: int
    sign_scale: str
    fit: Fit
    val_median_error_deg: float | None
    val_views: int


def train_from_views(bags: list, pairs: list, yaw: np.ndarray, out: str | Path,
                     teacher: str, cfg: MotionConfig = MotionConfig(),
                     progress: TextIO = sys.stderr, array: str = 'binaural') -> MotionResult:
    """The whole recipe on loaded views: features, :func:`fit`, the sign (and
    with ``cfg.scale`` the scale) from ``cfg.labelled`` labelled validation
    views, ONNX export (the direction network's contract, ``target``
    'motion'; ``teacher`` names the visual model whose turns taught it;
    ``array``: the head's geometry, a name under config/arrays/ or a file)."""
    from av_perception.train.direction import export
    out = Path(out)
    head = load_array(array)
    spec = spec_for(head, onset_history=cfg.onset_history)
    data = build_data(bags, pairs, yaw, spec, progress=progress, geometry=head)
    res = fit(data, spec, out, cfg, progress=progress)
    model, refined = res.model, 'none'
    if cfg.refine_epochs and cfg.refine_rounds:   # self-training on the chains' pseudo-labels
        prob = view_distributions(res.model, data, res.mean, res.std,
                                  np.arange(len(data.x)), loud=True)
        try:
            r = refine_ensemble(data, prob, spec, res.mean, res.std, out, cfg.refine_epochs,
                                cfg.refine_rounds, cfg.seed, cfg.refine_members, progress)
            model = r.model
            refined = '; '.join(r.lines) + (
                f'; the {len(r.members)} members\' distributions averaged'
                if len(r.members) > 1 else '')
        except ConfigError as exc:   # too few chains: keep what the pairs taught
            refined = f'skipped ({exc}): the pair-trained network is exported'
            print(f'[motion] warning: self-training {refined}', file=progress)
    sign, k, note, n_labelled = fix_binaural_sign(model, data, res.mean, res.std, spec,
                                                  cfg.sign, cfg.labelled, cfg.scale)
    extra = {'teacher': teacher, 'sign_scale': note, 'labelled_samples': str(n_labelled),
             'train_pairs': str(res.train_pairs), 'self_training': refined,
             **randomization([b.path for b in bags])}
    # the training rooms' loud windows: what the pairs and the rounds learned from
    n_windows = int(data.loud[data.view_room < data.val_room].sum())
    export(model, spec, res.mean, res.std, out, target='motion',
           n_train=n_windows, n_bags=data.n_bags, sign=sign, scale=k, extra=extra)
    # the labelled validation error is reported, never used to choose anything; each
    # view as the estimator hears it (its loud windows: LearnedDoa.block_distribution)
    vv = np.flatnonzero((data.view_room >= data.val_room) & ~np.isnan(data.azimuth))
    err = []
    if len(vv):
        prob = view_distributions(model, data, res.mean, res.std, vv, loud=True) @ \
            calibration(spec, sign, k)
        err = [abs(peaks(p, spec, 1)[0][0] - a) for p, a in zip(prob, data.azimuth[vv])]
    return MotionResult(out, int(len(data.x)), int(len(data.pairs)), res.train_pairs,
                        res.val_pairs, note, res.fit,
                        round(math.degrees(float(np.median(err))), 2) if err else None,
                        int(len(vv)))


__all__ = ['LABELLED', 'SIGNS', 'MotionConfig', 'MotionData', 'MotionResult', 'build_data',
           'fit', 'fix_binaural_sign', 'geometry_views', 'labelled_views', 'sign_and_scale',
           'train_from_views', 'view_distributions']
