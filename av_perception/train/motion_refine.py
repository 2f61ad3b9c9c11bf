"""Self-training of the binaural network from the chains of turns (no labels).

A robot that turns in place hears one static source from every view of the
chain: the source has one azimuth in the world, ``alpha``, and view ``k``
(turned by ``theta_k`` from the chain's first view, the visual model's
yaw) hears it at the folded azimuth fold(alpha - theta_k). The network
trained from pairs of views (:mod:`av_perception.train.motion`) gives
each view a distribution; the chain's ``alpha`` is the one that all its
views' distributions make most likely together (a 1-degree grid over the
circle: the turns tell front from back, which no single view can), and
each view's pseudo-label is that azimuth seen from the view, unless the
view's own distribution puts less than :data:`AGREE` of its peak there (a
view that hears another source). A fresh network then learns the
pseudo-labels of the windows as ``train direction --target labels`` learns
true ones (Gaussian bumps, soft cross-entropy), and the epoch with the
lowest loss on the pseudo-labels of the last tenth of the rooms is kept.

Two things keep the round from teaching the pair-trained network's faults
back to it (:func:`refine`):

- **Balanced pseudo-labels.** The chains' pseudo-labels crowd at the
  centre (the pair-trained network compresses lateral directions, and the
  chain fit inherits it: on the 2,400 training rooms 3,972 of them within
  15 deg of the front against 1,455 beyond 75 deg, while the true
  directions are spread evenly), and a network that learns them learns
  that crowding as a prior: lateral sources heard as frontal. Each window
  is weighted by the inverse count of its pseudo-label's bin of
  :data:`BALANCE_BIN_DEG`: the self-training counterpart of the pair
  training's uniform prior (``motion_losses.uniform_prior``; around a robot
  that turns to every heading, sources come from every direction).
- **Rounds until the pseudo-labels stand still.** The refined network
  gives the chains sharper distributions, hence better pseudo-labels, for
  a next round; the rounds stop at the first network whose own
  pseudo-labels move the median view by no more than the chain fit's grid
  step (:data:`STILL_DEG`) from those it learned (at most
  ``rounds``). On the 2,400 training rooms the pseudo-labels' median error
  went 19.5, 16.7, 14.7, 14.2 deg over the first rounds (read for the
  report only), and the third network stopped the rounds.

- **An ensemble of chains of rounds.** Self-training is noisy from seed
  to seed (on the 2,400 training rooms the labelled validation views gave
  19.9 to 21.8 deg median over five seeds, read for the report only), so
  :func:`refine_ensemble` runs the rounds :data:`MEMBERS` times with seeds
  ``seed + MEMBER_SEED_STEP * j``, all from the same pair-trained
  pseudo-labels, and exports one network whose distribution is the mean of
  theirs (:func:`average`): 20.7 deg on those views.

Why: learning from pairs, each pair constrains two views; a chain's fit
pools every view of it, so the pseudo-labels are better than the pair-
trained network's own estimates (on the 2,400 training rooms of
docs/binaural_motion.md, 19.5 against 23.1 deg median error on the views
that carry a label, read for the report only), and a network that learns
them per window learns as labels teach. No direction label is read; the
global sign stays the motion's, fixed afterwards as before
(:mod:`av_perception.train.motion_sign`).

Written by hand: no library fits one azimuth to a chain of folded,
turned distributions.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from av_perception.direction.learned_features import FeatureSpec, label_map
from av_perception.errors import ConfigError
from av_perception.train.checkpoints import Checkpoints, fingerprint
from av_perception.train.loop import EpochLoop, EpochResult, Fit, batch_pass
from av_perception.train.motion_data import MotionData

if TYPE_CHECKING:
    import torch

#: A view keeps its chain's pseudo-label only if its own distribution there
#: is at least this share of its peak.
AGREE = 0.2
#: The grid of world azimuths a chain is fitted over [deg].
ALPHA_STEP_DEG = 1.0
#: Distributions are floored here before their logarithm (one deaf view
#: cannot veto a chain).
FLOOR = 1e-3
#: The rounds stop at the first network whose pseudo-labels move the median
#: view by no more than this [deg]: one step of the chain fit's grid.
STILL_DEG = ALPHA_STEP_DEG
#: Width of the |azimuth| bins whose pseudo-labels are balanced [deg].
BALANCE_BIN_DEG = 10.0
#: Epochs of each self-training round (``train rotation --refine-epochs``).
EPOCHS = 30
#: The most self-training rounds of a chain (``--refine-rounds``).
ROUNDS = 6
#: Chains of self-training rounds whose networks are averaged (``--refine-members``).
MEMBERS = 5
#: Member j's rounds are seeded from ``seed + MEMBER_SEED_STEP * j``.
MEMBER_SEED_STEP = 100


def check_settings(epochs: int, rounds: int, members: int = 1) -> None:
    """The self-training settings, checked one way for ``MotionConfig`` and
    ``RotationConfig`` (the latter before any bag is read).

    Raises:
        ConfigError: a negative number of epochs or rounds, or fewer than
            one member.
    """
    if epochs < 0 or rounds < 0:
        raise ConfigError(f'refine epochs and rounds must be at least 0, got {epochs} and '
                          f'{rounds}')
    if members < 1:
        raise ConfigError(f'refine members must be at least 1, got {members}')


def fold(a: np.ndarray) -> np.ndarray:
    """Azimuths [rad] folded into [-pi/2, pi/2] (front and back mirror)."""
    return np.arctan2(np.sin(a), np.abs(np.cos(a)))


def chains(data: MotionData) -> list[list[tuple[int, float]]]:
    """The chains of views taken in one place: (view, turn from the chain's
    first view [rad]) each, the first view with 0. ``data.pairs`` holds every
    pair of a chain (``motion_data.chain_pairs``), so a chain's first view is
    the one that never comes second, and its pairs reach every other view."""
    seconds = set(data.pairs[:, 1].tolist())
    out: dict[int, list[tuple[int, float]]] = {}
    for (a, b), turn in zip(data.pairs.tolist(), data.yaw.tolist()):
        if a not in seconds:
            out.setdefault(a, [(a, 0.0)]).append((b, float(turn)))
    return list(out.values())


def pseudo_labels(prob: np.ndarray, data: MotionData, spec: FeatureSpec) -> np.ndarray:
    """(V,) folded pseudo-label of each view [rad] (nan: none), from ``prob``
    (V, bins), each view's distribution over ``spec.grid()`` (module
    docstring). Views without a loud window do not count."""
    grid = spec.grid()
    alpha = np.radians(np.arange(-180.0, 180.0, ALPHA_STEP_DEG))
    loud = data.loud.any(1)
    labels = np.full(len(prob), np.nan)
    for chain in chains(data):
        views = [(v, t) for v, t in chain if loud[v]]
        if len(views) < 2:
            continue
        score = np.zeros_like(alpha)
        for v, t in views:
            score += np.log(np.interp(fold(alpha - t), grid, prob[v]) + FLOOR)
        best = alpha[int(np.argmax(score))]
        for v, t in views:
            label = float(fold(best - t))
            if np.interp(label, grid, prob[v]) >= AGREE * prob[v].max():
                labels[v] = label
    return labels


def balance_weights(labels: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Weights of windows whose pseudo-labels are ``labels`` (N,) [rad]:
    the inverse count, among the ``train`` windows (indices), of their
    |azimuth| bin of :data:`BALANCE_BIN_DEG`; mean 1 over ``train``."""
    bins = int(np.ceil(90.0 / BALANCE_BIN_DEG))
    b = np.minimum((np.degrees(np.abs(labels)) // BALANCE_BIN_DEG).astype(int), bins - 1)
    count = np.bincount(b[train], minlength=bins).astype(np.float64)
    w = 1.0 / np.maximum(count[b], 1.0)
    return w / w[train].mean()


def self_train(data: MotionData, labels: np.ndarray, spec: FeatureSpec, mean: np.ndarray,
               std: np.ndarray, out: Path, epochs: int, seed: int = 0, batch: int = 128,
               lr: float = 1e-3, progress: TextIO = sys.stderr, balance: bool = True,
               checkpoints: Path | None = None) -> tuple[torch.nn.Module, Fit]:
    """A fresh direction network trained on the loud windows of the views
    with a pseudo-label (``labels``, (V,) [rad], nan: none), standardised
    by ``mean``/``std``, each window weighted by :func:`balance_weights`
    (``balance``; off: all alike); checkpoints in ``checkpoints`` (default
    ``out``'s ``<stem>_refine_checkpoints``; resumable); the epoch with the
    lowest loss on the last tenth of the rooms' pseudo-labels is kept.

    Raises:
        ConfigError: no pseudo-labelled window in the training or the
            validation rooms.
    """
    import torch

    from av_perception.train.direction import make_model, soft_cross_entropy
    view, win = np.nonzero(data.loud & ~np.isnan(labels)[:, None])
    val = data.view_room[view] >= data.val_room
    tr, va = np.flatnonzero(~val), np.flatnonzero(val)
    if len(tr) < 10 or len(va) == 0:
        raise ConfigError(f'{len(tr)} training and {len(va)} validation windows with a '
                          'pseudo-label from the chains of turns; need more bags')
    x = torch.from_numpy(((data.x[view, win] - mean) / std).astype(np.float32))
    targets = {v: label_map([labels[v]], spec) for v in np.unique(view)}
    y = torch.from_numpy(np.stack([targets[v] for v in view]))
    w = torch.from_numpy((balance_weights(labels[view], tr) if balance
                          else np.ones(len(view))).astype(np.float32))
    torch.manual_seed(seed)
    model = make_model(spec.n_features, spec.bins)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    ck = Checkpoints(checkpoints or out.parent / f'{out.stem}_refine_checkpoints',
                     fingerprint(int(len(view)), float(x.sum()), float(np.nansum(labels)),
                                 epochs, seed, batch, lr, spec.to_metadata(), balance),
                     progress)
    loop = EpochLoop('refine', ck, model, opt, sched, epochs, progress)
    rng = loop.rng(seed)

    def epoch(_: int) -> EpochResult:
        model.train()
        order = rng.permutation(tr)

        def loss_at(i: int) -> torch.Tensor:
            b = order[i:i + batch]
            return soft_cross_entropy(model(x[b]), y[b], w[b])

        loss = batch_pass(opt, len(order), batch, loss_at)
        sched.step()
        model.eval()
        with torch.no_grad():
            vloss = float(soft_cross_entropy(model(x[va]), y[va], w[va]))
        return EpochResult(loss, vloss)

    result = loop.run(epoch, 'soft cross-entropy on pseudo-labels')
    model.eval()
    return model, result


@dataclass
class Refined:
    """The outcome of :func:`refine`.

    Attributes:
        model: the network of the last round run.
        rounds: how many rounds ran.
        converged: whether the last round's own pseudo-labels stood still
            (else ``rounds`` was reached).
        lines: what each round did, for the log and the model's metadata.
    """

    model: torch.nn.Module
    rounds: int
    converged: bool
    lines: list[str]


def _change_deg(new: np.ndarray, old: np.ndarray) -> float:
    """Median move [deg] of the pseudo-labels of the views labelled in both
    (inf: none is)."""
    both = ~np.isnan(new) & ~np.isnan(old)
    return float(np.median(np.degrees(np.abs(fold(new[both] - old[both]))))) \
        if both.any() else float('inf')


def refine(data: MotionData, prob: np.ndarray, spec: FeatureSpec, mean: np.ndarray,
           std: np.ndarray, out: Path, epochs: int, rounds: int, seed: int = 0,
           progress: TextIO = sys.stderr, checkpoints: Path | None = None) -> Refined:
    """Rounds of :func:`self_train` (module docstring): the first on the
    pseudo-labels of ``prob`` (V, bins), the pair-trained network's view
    distributions; each next one on those of the network before it; they
    stop at the first network whose pseudo-labels move the median view by
    at most :data:`STILL_DEG`, or after ``rounds``. Round k is seeded
    ``seed + k - 1`` and checkpointed in ``<checkpoints>/round<k>`` (default
    ``checkpoints``: ``out``'s ``<stem>_refine_checkpoints``).

    Raises:
        ConfigError: no pseudo-label to learn (from :func:`self_train`).
    """
    from av_perception.train.motion_sign import view_distributions
    labels = pseudo_labels(prob, data, spec)
    lines = [report(labels, prob, data, spec)]
    print(f'[motion] {lines[0]}', file=progress)
    every = np.arange(len(data.x))
    root = checkpoints or out.parent / f'{out.stem}_refine_checkpoints'
    model = None
    for k in range(1, rounds + 1):
        try:
            model, _ = self_train(data, labels, spec, mean, std, out, epochs, seed + k - 1,
                                  progress=progress, checkpoints=root / f'round{k}')
        except ConfigError:
            if model is None:
                raise
            lines.append(f'round {k}: no pseudo-label left to learn; the round before is kept')
            return Refined(model, k - 1, False, lines)
        prob = view_distributions(model, data, mean, std, every, loud=True)
        new = pseudo_labels(prob, data, spec)
        change = _change_deg(new, labels)
        line = f'round {k}: its own pseudo-labels moved {change:.1f} deg (median)'
        known = ~np.isnan(new) & ~np.isnan(data.azimuth)
        if known.any():
            off = np.degrees(np.abs(fold(new[known] - data.azimuth[known])))
            line += f', {np.median(off):.1f} deg off the true azimuth (report only)'
        lines.append(line)
        print(f'[motion] self-training {line}', file=progress)
        if change <= STILL_DEG + 1e-6:   # moves are whole grid steps, up to rounding
            return Refined(model, k, True, lines)
        labels = new
    return Refined(model, rounds, False, lines)


def average(nets: list[torch.nn.Module]) -> torch.nn.Module:
    """One network from ``nets`` (each: features -> logits over the bins):
    its logits are the log of their mean distribution, so its softmax (what
    the exported direction model applies) is that mean."""
    import torch

    class Average(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.members = torch.nn.ModuleList(nets)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            p = torch.stack([torch.softmax(m(x), dim=-1) for m in self.members]).mean(0)
            return torch.log(p + 1e-12)
    return Average().eval()


@dataclass
class Ensemble:
    """The outcome of :func:`refine_ensemble`.

    Attributes:
        model: the averaged network (the one member's network itself when
            there is one).
        members: each member's :class:`Refined`, in seed order.
        lines: what was done, for the log and the model's metadata: the
            pair-trained pseudo-labels' report, then one line per member.
    """

    model: torch.nn.Module
    members: list[Refined]
    lines: list[str]


def refine_ensemble(data: MotionData, prob: np.ndarray, spec: FeatureSpec, mean: np.ndarray,
                    std: np.ndarray, out: Path, epochs: int, rounds: int, seed: int = 0,
                    members: int = MEMBERS, progress: TextIO = sys.stderr) -> Ensemble:
    """:func:`refine` ``members`` times, member j seeded ``seed +
    MEMBER_SEED_STEP * j`` and checkpointed in
    ``<stem>_refine_checkpoints/member<j>``, all from the same ``prob``;
    their networks averaged (:func:`average`; module docstring).

    Raises:
        ConfigError: no pseudo-label to learn (from :func:`self_train`).
    """
    root = out.parent / f'{out.stem}_refine_checkpoints'
    done: list[Refined] = []
    lines: list[str] = []
    for j in range(members):
        s = seed + MEMBER_SEED_STEP * j
        if members > 1:
            print(f'[motion] self-training member {j + 1} of {members} (seed {s})',
                  file=progress)
        r = refine(data, prob, spec, mean, std, out, epochs, rounds, s, progress,
                   checkpoints=root / f'member{j}')
        done.append(r)
        lines = lines or r.lines[:1]
        stop = ('stopped: the pseudo-labels stood still' if r.converged else
                'stopped at the most rounds allowed')
        lines.append(f'member {j + 1} (seed {s}): ' + '; '.join(
            [*r.lines[1:], f'{r.rounds} rounds, {stop}']))
    model = done[0].model if members == 1 else average([r.model for r in done])
    return Ensemble(model, done, lines)


def report(labels: np.ndarray, prob: np.ndarray, data: MotionData,
           spec: FeatureSpec) -> str:
    """One line: how many views got a pseudo-label, and (where the bags
    carry one, for the report only) how far the pseudo-labels and the
    pair-trained network's own estimates are from the true folded azimuth,
    in the network's own sign."""
    has = ~np.isnan(labels)
    line = (f'{int(has.sum())} of {int(data.loud.any(1).sum())} loud views got a '
            f'pseudo-label from {len(chains(data))} chains of turns')
    known = has & ~np.isnan(data.azimuth)
    if known.any():
        grid = spec.grid()
        pseudo = np.degrees(np.abs(fold(labels[known] - data.azimuth[known])))
        own = np.degrees(np.abs(fold(grid[prob[known].argmax(1)] - data.azimuth[known])))
        line += (f'; median error {np.median(pseudo):.1f} deg against the network\'s own '
                 f'{np.median(own):.1f} on {int(known.sum())} labelled views (report only; '
                 'mirror images read as ~90 deg)')
    return line


__all__ = ['AGREE', 'BALANCE_BIN_DEG', 'EPOCHS', 'MEMBERS', 'MEMBER_SEED_STEP', 'ROUNDS',
           'STILL_DEG', 'Ensemble', 'Refined', 'average', 'balance_weights', 'chains',
           'check_settings', 'fold', 'pseudo_labels', 'refine', 'refine_ensemble', 'report',
           'self_train']
