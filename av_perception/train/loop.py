"""The epoch loop every trainer of the package shares.

A trainer builds its model, optimiser, scheduler and :class:`Checkpoints`,
and writes what one epoch does (``epoch_fn``: train on every batch, then
score the validation set) as a function returning an :class:`EpochResult`.
:class:`EpochLoop` does the rest the same way for every model: resuming a
checkpoint made from the same data and settings, the per-epoch checkpoint
and curve entry, the progress line, the loss plot and the choice of the
weights to export (the best epoch's or the last one's).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

import numpy as np

from av_perception.errors import ConfigError
from av_perception.train.checkpoints import Checkpoints


if TYPE_CHECKING:
    import torch


def check_optimisation(epochs: int, batch: int, lr: float, min_batch: int = 1) -> None:
    """The settings every trainer's optimisation has, checked one way for
    all of them (each config's ``__post_init__``).

    Raises:
        ConfigError: naming the first bad value and what it must be.
    """
    if epochs < 1:
        raise ConfigError(f'--epochs must be at least 1, got {epochs}')
    if batch < min_batch:
        raise ConfigError(f'batch must be at least {min_batch}, got {batch}')
    if not lr > 0:
        raise ConfigError(f'lr must be above 0, got {lr}')


def batch_pass(opt: torch.optim.Optimizer, n: int, batch: int,
               loss_at: Callable[[int], torch.Tensor],
               clip: tuple[object, float] | None = None) -> float:
    """One epoch's optimiser steps over ``n`` training items in mini-batches
    of ``batch``: ``loss_at(i)`` is the loss of the batch that starts at item
    ``i``; a last batch shorter than half a batch is left out, and at least
    one step is taken (a set of fewer than half a batch still trains).
    ``clip``: (parameters, max norm) of a gradient-norm clip before each
    step. Returns the mean of the batches' losses."""
    import torch
    losses = []
    for i in range(0, max(1, n - batch // 2), batch):
        loss = loss_at(i)
        opt.zero_grad()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(*clip)
        opt.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses))


@dataclass
class EpochResult:
    """What one epoch reports.

    Attributes:
        train_loss: mean training loss over the epoch's batches.
        val_loss: validation loss (nan: no validation set).
        extra: more columns of the curve entry (e.g. each loss term, a
            training phase, a retrieval score).
        note: appended to the progress line.
        stop: end training after this epoch (a step budget ran out).
    """

    train_loss: float
    val_loss: float
    extra: dict = field(default_factory=dict)
    note: str = ''
    stop: bool = False


@dataclass
class Fit:
    """The outcome of :meth:`EpochLoop.run`.

    Attributes:
        epoch: the epoch whose weights the model holds afterwards (1-based;
            0 if no epoch was saved, e.g. on a rank other than 0).
        curve: one entry per epoch (``epoch``, ``train_loss``, ``val_loss``
            and the epoch's extras), also in ``curve.json``.
        plot: ``curve.png`` (None where nothing was saved).
        seconds: wall time of the epochs run now (not those resumed).
    """

    epoch: int
    curve: list[dict]
    plot: Path | None
    seconds: float

    @property
    def final(self) -> dict | None:
        """The last epoch's curve entry."""
        return self.curve[-1] if self.curve else None


class EpochLoop:
    """Resumable epochs of one model.

    Args:
        name: the progress line's tag (e.g. ``train teacher``).
        ck: the model's checkpoints (folder and fingerprint).
        model, opt, sched: resumed from the last checkpoint if it was made
            from the same data and settings.
        epochs: how many epochs in all (resumed ones included).
        progress: stream for the progress line.
        save: whether this process writes checkpoints (rank 0 of a
            data-parallel run; the others only train).
    """

    def __init__(self, name: str, ck: Checkpoints, model: torch.nn.Module,
                 opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler,
                 epochs: int, progress: TextIO = sys.stderr, save: bool = True) -> None:
        self.name = name
        self.ck = ck
        self.model = model
        self.opt = opt
        self.sched = sched
        self.epochs = epochs
        self.progress = progress
        self.save = save
        self.start = ck.resume(model, opt, sched)

    @property
    def extra(self) -> dict:
        """The extra tensors of the resumed checkpoint (empty if afresh)."""
        return self.ck.extra

    def rng(self, seed: int) -> np.random.Generator:
        """The training's random generator: seeded by ``seed``, and by
        ``[seed, start]`` when resumed (a resumed run does not redraw the
        first epochs' batches)."""
        return np.random.default_rng([seed, self.start] if self.start else seed)

    def run(self, epoch_fn: Callable[[int], EpochResult], ylabel: str, *,
            keep: Literal['best', 'last'] = 'best',
            comparable: Callable[[dict], bool] = lambda e: True,
            extra_state: Callable[[], dict] | None = None, log: bool = False,
            panel: tuple[str, dict[str, str]] | None = None) -> Fit:
        """Run the remaining epochs; ``epoch_fn(epoch)`` (0-based) trains and
        validates one. Afterwards the model holds the ``keep`` epoch's
        weights: ``best``, the lowest validation loss among the
        ``comparable`` entries (:meth:`Checkpoints.save`), or ``last``.

        Args:
            epoch_fn: one epoch.
            ylabel: the plot's loss axis.
            keep: which epoch's weights the model ends with.
            comparable: which entries compete for the best epoch.
            extra_state: more tensors for each checkpoint (e.g. a memory bank).
            log: logarithmic loss axis.
            panel: a second plot of (its y label, {curve key: legend}).
        """
        t0 = time.perf_counter()
        for epoch in range(self.start, self.epochs):
            r = epoch_fn(epoch)
            entry = {'epoch': epoch + 1, **r.extra, 'train_loss': float(r.train_loss),
                     'val_loss': float(r.val_loss)}
            if self.save:
                self.ck.save(self.model, self.opt, self.sched, epoch + 1, entry,
                             extra=extra_state() if extra_state else None,
                             comparable=comparable)
            print(f'\r[{self.name}] epoch {epoch + 1}/{self.epochs} train {r.train_loss:.4f} '
                  f'val {r.val_loss:.4f}{r.note} ({time.perf_counter() - t0:.0f} s)', end='',
                  file=self.progress, flush=True)
            if r.stop:
                break
        print(file=self.progress)
        seconds = time.perf_counter() - t0
        if not self.save:
            return Fit(0, self.ck.curve, None, seconds)
        plot = self.ck.plot(ylabel, log, panel)
        epoch = self.ck.best(self.model) if keep == 'best' else self.ck.last(self.model)
        return Fit(epoch, self.ck.curve, plot, seconds)
