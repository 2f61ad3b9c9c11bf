"""Resumable training checkpoints, shared by every trainer of the package.

The epochs themselves run in :class:`~av_perception.train.loop.EpochLoop`.
One folder per trained model: ``last.pt`` (the model, optimiser and
scheduler after the newest epoch, plus any extra tensors a trainer needs to
continue, e.g. a memory bank), ``best.pt`` (the model of the best epoch),
``curve.json`` and ``curve.png`` (the loss curve). Every file holds tensors
and numbers only, so it loads with ``torch.load(..., weights_only=True)``.

A checkpoint carries a fingerprint of the data and settings it was made
from; one with another fingerprint is not resumed (training starts afresh,
and says so). A trainer with several networks checkpoints them as one
``torch.nn.ModuleDict``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    import torch


def fingerprint(*parts: object) -> str:
    """SHA-256 of the JSON of ``parts`` (data summary and settings)."""
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def score(entry: dict) -> float:
    """What picks the best epoch: the validation loss, or the training loss
    when there is no validation set (NaN: a single bag)."""
    v = entry['val_loss']
    return entry['train_loss'] if v != v else v


class Checkpoints:
    """Per-epoch checkpoints, the loss curve and the best epoch's weights.

    Args:
        folder: where the files go (created).
        fingerprint: of the data and settings (:func:`fingerprint`).
        progress: stream for the resume / start-afresh messages.
    """

    def __init__(self, folder: Path, fingerprint: str, progress: TextIO = sys.stderr) -> None:
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fingerprint = fingerprint
        self.progress = progress
        self.curve: list[dict] = []
        self.extra: dict = {}

    @property
    def last_path(self) -> Path:
        return self.dir / 'last.pt'

    def resume(self, model: torch.nn.Module, opt: torch.optim.Optimizer,
               sched: torch.optim.lr_scheduler.LRScheduler) -> int:
        """Load the last checkpoint if it was made from the same data and
        settings (its extra tensors into ``self.extra``); returns the epoch
        to start from (0: afresh)."""
        import torch
        if not self.last_path.is_file():
            return 0
        state = torch.load(self.last_path, weights_only=True)
        if state.get('fingerprint') != self.fingerprint:
            print(f'[train] {self.last_path} was made from other data or settings: starting '
                  'afresh', file=self.progress)
            return 0
        model.load_state_dict(state['model'])
        opt.load_state_dict(state['opt'])
        sched.load_state_dict(state['sched'])
        self.extra = state.get('extra', {})
        self.curve = json.loads((self.dir / 'curve.json').read_text())
        print(f'[train] resuming at epoch {state["epoch"]}', file=self.progress)
        return int(state['epoch'])

    def save(self, model: torch.nn.Module, opt: torch.optim.Optimizer,
             sched: torch.optim.lr_scheduler.LRScheduler, epoch: int, entry: dict,
             extra: dict | None = None,
             comparable: Callable[[dict], bool] = lambda e: True) -> None:
        """Checkpoint after ``epoch`` (1-based) with its curve ``entry``
        (``train_loss``, ``val_loss``, ...). The model also becomes the best
        one if its :func:`score` is the lowest among the ``comparable``
        entries (e.g. those of one training phase; losses of different
        phases do not compare)."""
        import torch
        self.curve.append(entry)
        torch.save({'model': model.state_dict(), 'opt': opt.state_dict(),
                    'sched': sched.state_dict(), 'epoch': epoch, 'extra': extra or {},
                    'fingerprint': self.fingerprint}, self.last_path)
        if comparable(entry) and score(entry) <= min(score(c) for c in self.curve
                                                     if comparable(c)):
            torch.save({'model': model.state_dict(), 'epoch': epoch}, self.dir / 'best.pt')
        (self.dir / 'curve.json').write_text(json.dumps(self.curve))

    def best(self, model: torch.nn.Module) -> int:
        """Load the best epoch's weights into ``model``; returns that epoch."""
        import torch
        state = torch.load(self.dir / 'best.pt', weights_only=True)
        model.load_state_dict(state['model'])
        return int(state['epoch'])

    def last(self, model: torch.nn.Module) -> int:
        """Load the newest epoch's weights into ``model``; returns that epoch."""
        import torch
        state = torch.load(self.last_path, weights_only=True)
        model.load_state_dict(state['model'])
        return int(state['epoch'])

    def plot(self, ylabel: str, log: bool = False,
             panel: tuple[str, dict[str, str]] | None = None) -> Path:
        """curve.png: training and validation loss per epoch, and beside it
        (``panel``: its y label and {curve key: legend}) other columns of
        the curve, e.g. a validation score."""
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        path = self.dir / 'curve.png'
        fig, axes = plt.subplots(1, 2 if panel else 1, figsize=(8 if panel else 5, 3),
                                 squeeze=False)
        ax = axes[0, 0]
        epochs = [c['epoch'] for c in self.curve]
        ax.plot(epochs, [c['train_loss'] for c in self.curve], label='train')
        ax.plot(epochs, [c['val_loss'] for c in self.curve], label='validation')
        ax.set_xlabel('epoch')
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale('log')
        ax.legend()
        if panel:
            bx = axes[0, 1]
            for key, label in panel[1].items():
                bx.plot(epochs, [c.get(key, float('nan')) for c in self.curve], label=label)
            bx.set_xlabel('epoch')
            bx.set_ylabel(panel[0])
            bx.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        plt.close(fig)
        return path
