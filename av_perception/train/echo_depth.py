"""Training of echo depth (PyTorch): the stand-in RGB teacher, and the echo
student in three variants from one switch (``variant``):

- ``pseudo``: the teacher's pseudo-depth only (BerHu over valid pixels);
- ``sam``: pseudo-depth + Spatial Alignment via Matching (SAM blocks and the
  loose triplet loss to the teacher's feature maps);
- ``gt``: ground-truth depth (simulation only: the upper reference).

Both trainings report progress, save their loss curve (json + png),
checkpoint every epoch (resumable: a checkpoint made from other data or
settings is not resumed) and export ONNX with the input contract in its
metadata. The student trains data-parallel under torchrun (DDP: gloo on the
CPU, nccl on GPUs); with one process it runs the same code.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from av_perception.bag.contents import list_bags
from av_perception.bag.provenance import randomization
from av_perception.echo import dataset as echo_dataset
from av_perception.echo.features import EchoSpec, spec_for
from av_perception.errors import ConfigError
from av_perception.train.checkpoints import Checkpoints, fingerprint
from av_perception.train.export import export_onnx
from av_perception.train.loop import EpochLoop, EpochResult, Fit, check_optimisation

if TYPE_CHECKING:
    import torch

    from av_perception.echo.nets import EchoStudent, TeacherUNet

VARIANTS = ('pseudo', 'sam', 'gt')
OUT_SIZE = (64, 64)


# ------------------------------------------------------------------ common
def _valid(depth: torch.Tensor, max_depth: float) -> torch.Tensor:
    import torch
    return torch.isfinite(depth) & (depth > 0) & (depth <= max_depth)


def _split(bag: np.ndarray) -> np.ndarray:
    """Validation mask: the last tenth of the bags (whole rooms held out)."""
    n_bags = int(bag.max()) + 1
    n_val = max(1, n_bags // 10) if n_bags > 1 else 0
    return bag >= n_bags - n_val if n_val else np.zeros(len(bag), bool)


# ----------------------------------------------------------------- teacher
@dataclass
class TeacherConfig:
    """The stand-in visual teacher's settings.

    Attributes:
        epochs, batch, lr, seed: the optimisation (AdamW, one-cycle schedule).
        width: channels of the U-Net's first level.
        max_depth: the depth range [m]; deeper pixels are not scored.
        tolerance: how far a camera frame's stamp may be from its gt/depth's [s].
        namespace: the robot's topic namespace in the bags.
    """

    epochs: int = 12
    batch: int = 32
    lr: float = 2e-3
    width: int = 12
    max_depth: float = 12.0
    seed: int = 0
    tolerance: float = 0.05
    namespace: str = ''

    def __post_init__(self) -> None:
        check_optimisation(self.epochs, self.batch, self.lr)
        if self.width < 1:
            raise ConfigError(f'width must be at least 1, got {self.width}')
        if not self.max_depth > 0 or self.tolerance < 0:
            raise ConfigError(f'max_depth must be above 0 m and tolerance at least 0 s; got '
                              f'{self.max_depth}, {self.tolerance}')


@dataclass
class TeacherResult:
    """A trained teacher: the ONNX file, its data and its training curve."""

    model: Path
    frames: int
    bags: int
    fit: Fit


def train_teacher(bags_dir: str | Path, out: str | Path, cfg: TeacherConfig = TeacherConfig(),
                  progress: TextIO = sys.stderr) -> TeacherResult:
    """The stand-in visual teacher: RGB -> depth on simulated bags with
    gt/depth (mirror augmentation), exported with its feature maps; a bag
    without gt/depth is reported and left out."""
    import torch

    from av_perception.arrays import DEFAULT_ECHO_ARRAY, load_array
    from av_perception.echo.nets import TeacherUNet, berhu

    torch.manual_seed(cfg.seed)
    bags = list_bags(bags_dir)
    spec = spec_for(load_array(DEFAULT_ECHO_ARRAY), cfg.max_depth)
    pairs = echo_dataset.collect(bags, spec, OUT_SIZE, cfg.tolerance, cfg.namespace, progress,
                                 needs=(*echo_dataset.NEEDS, echo_dataset.GT_DEPTH))
    keep = [i for i, g in enumerate(pairs.gt) if g is not None]
    if len(keep) < 4:
        raise ConfigError(f'{bags_dir}: {len(keep)} camera frames with gt/depth; the teacher '
                          'learns from simulated bags with ground truth')
    rgb = torch.from_numpy(np.stack([pairs.rgb[i] for i in keep])).permute(0, 3, 1, 2)
    gt = torch.from_numpy(np.stack([pairs.gt[i] for i in keep]))[:, None]
    bag = np.asarray(pairs.bag)[keep]
    val = _split(bag)
    tr_idx, va_idx = np.flatnonzero(~val), np.flatnonzero(val)
    model = TeacherUNet(cfg.width, cfg.max_depth)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.epochs * (
        (len(tr_idx) + cfg.batch - 1) // cfg.batch))
    out = Path(out)
    ck = Checkpoints(out.parent / f'{out.stem}_checkpoints',
                     fingerprint([str(b) for b in bags], len(keep), float(gt.nansum()),
                                 cfg.epochs, cfg.batch, cfg.lr, cfg.width, cfg.seed), progress)
    loop = EpochLoop('train teacher', ck, model, opt, sched, cfg.epochs, progress)
    rng = loop.rng(cfg.seed)

    def epoch(_: int) -> EpochResult:
        model.train()
        losses = []
        perm = rng.permutation(tr_idx)
        for i in range(0, len(perm), cfg.batch):
            b = perm[i:i + cfg.batch]
            x = rgb[b].float() / 255.0
            y = gt[b]
            flip = torch.from_numpy(rng.random(len(b)) < 0.5)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            y = torch.where(flip[:, None, None, None], y.flip(-1), y)
            pred = model(x)[0]
            loss = berhu(pred, y, _valid(y, cfg.max_depth))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        vloss = _eval_loss(lambda x: model(x.float() / 255.0)[0], rgb, gt, va_idx,
                           cfg.max_depth, model)
        return EpochResult(float(np.mean(losses)), vloss)

    fit = loop.run(epoch, 'BerHu loss [m]')
    export_teacher(model, out, {'train_frames': int(len(tr_idx)), 'train_bags': len(bags),
                                'best_epoch': fit.epoch, **randomization(bags)})
    return TeacherResult(out, int(len(keep)), len(bags), fit)


def _eval_loss(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
               idx: np.ndarray, max_depth: float, model: torch.nn.Module,
               batch: int = 64) -> float:
    """Mean BerHu loss of ``fn`` on the validation rows (nan if none)."""
    import torch

    from av_perception.echo.nets import berhu
    if len(idx) == 0:
        return float('nan')
    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(idx), batch):
            b = idx[i:i + batch]
            total += float(berhu(fn(x[b]), y[b], _valid(y[b], max_depth))) * len(b)
    return total / len(idx)


def export_teacher(model: TeacherUNet, out: Path, extra: dict) -> None:
    """ONNX of the teacher: input ``image`` (N, 3, 64, 64) RGB in [0, 1];
    outputs ``depth`` (N, 1, 64, 64) [m] and ``feat_<h>x<w>``."""
    import torch

    model.eval()
    h, w = OUT_SIZE
    x = torch.zeros(1, 3, h, w)
    with torch.no_grad():
        outs = model(x)
    names = ['depth'] + [f'feat_{o.shape[2]}x{o.shape[3]}' for o in outs[1:]]
    export_onnx(model, (x,), out, ['image'], names,
                {'task': 'echo_teacher', 'model_id': 'echo-teacher-unet-sim',
                 'input_size': f'{h}x{w}', 'max_depth': f'{model.max_depth:g}', **extra})


# ----------------------------------------------------------------- student
@dataclass
class StudentConfig:
    """The student's settings (the ``variant`` switch selects the targets)."""

    variant: str = 'sam'          # pseudo | sam | gt
    sam_blocks: int = 2           # SAM blocks (variant sam), coarsest first
    k: int = 64                   # embeddings of the first block; K/4 for each next one
    margin: float = 0.3           # triplet margin
    # SAM's triplet term against the depth loss (docs/echo_depth.md: 1.0 hurt)
    triplet_weight: float = 0.1
    width: int = 16
    token_dim: int = 64
    epochs: int = 25
    batch: int = 32
    lr: float = 2e-3
    seed: int = 0
    max_depth: float = 12.0
    max_steps: int = 0            # >0: stop after this many optimiser steps (tests)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f'variant must be one of {VARIANTS}, got {self.variant!r}')
        check_optimisation(self.epochs, self.batch, self.lr)
        if min(self.sam_blocks, self.k, self.width, self.token_dim) < 1 or self.max_steps < 0:
            raise ConfigError('--sam-blocks, --k, --width and token_dim must be at least 1 and '
                              f'max_steps at least 0; got {self}')
        if self.triplet_weight < 0 or self.margin < 0:
            raise ConfigError('--triplet-weight and --margin must be at least 0; got '
                              f'{self.triplet_weight}, {self.margin}')


@dataclass
class StudentResult:
    """A trained student (on rank 0 of a data-parallel run: the other ranks
    have no ``model`` file and an empty ``fit``).

    Attributes:
        variant: pseudo, sam or gt.
        pairs: echo/camera pairs in the data set.
        train_examples: training rows (each pair and its mirror image).
        bags: bags the data set was made from.
        step_losses: the loss of every optimiser step run now.
        world_size, distributed: the data-parallel run.
        fit: the epochs (curve, the best epoch, the time they took).
        model: the ONNX file (rank 0).
    """

    variant: str
    pairs: int
    train_examples: int
    bags: int
    step_losses: list[float]
    world_size: int
    distributed: bool
    fit: Fit
    model: Path | None


def _ddp() -> tuple[int, int, bool]:
    """(rank, world size, distributed) from torchrun's environment
    (RANK, WORLD_SIZE, MASTER_ADDR); joins the process group (nccl on GPUs,
    gloo on the CPU). Without torchrun: (0, 1, False)."""
    import torch
    import torch.distributed as dist
    if 'MASTER_ADDR' not in os.environ or 'WORLD_SIZE' not in os.environ:
        return 0, 1, False
    if not dist.is_initialized():
        dist.init_process_group('nccl' if torch.cuda.is_available() else 'gloo')
    return dist.get_rank(), dist.get_world_size(), True


def build_student(cache: echo_dataset.Cache, cfg: StudentConfig,
                  mean: np.ndarray | None = None,
                  std: np.ndarray | None = None) -> tuple[EchoStudent, list[str]]:
    from av_perception.echo.nets import EchoStudent
    spec = cache.spec
    shapes = []
    if cfg.variant == 'sam':
        maps = sorted(cache.teacher_feats, key=lambda n: cache.teacher_feats[n].shape[-1])
        if len(maps) < cfg.sam_blocks:
            raise ConfigError(f'sam_blocks={cfg.sam_blocks} needs as many teacher feature maps; '
                              f'the data set has {len(maps)} ({maps})')
        shapes = [tuple(cache.teacher_feats[n].shape[1:]) for n in maps[:cfg.sam_blocks]]
    model = EchoStudent(spec.n_channels, spec.bins, spec.frames, mean, std, shapes, cfg.k,
                        cfg.width, cfg.token_dim, cfg.max_depth)
    return model, ([n for n in sorted(cache.teacher_feats,
                                      key=lambda n: cache.teacher_feats[n].shape[-1])
                    ][:cfg.sam_blocks] if cfg.variant == 'sam' else [])


def train_student(data: str | Path, out: str | Path, cfg: StudentConfig,
                  progress: TextIO = sys.stderr) -> StudentResult:
    """Train one student variant on a data set folder; export ONNX (rank 0)."""
    import torch

    from av_perception.echo.nets import berhu, triplet

    rank, world, distributed = _ddp()
    cache = echo_dataset.load(data)
    if cfg.variant == 'gt' and cache.gt is None:
        raise ConfigError(f'variant gt needs ground-truth depth; the data set {data} has none '
                          '(bags without gt/depth): use pseudo or sam')
    torch.manual_seed(cfg.seed)
    val = _split(cache.bag)
    tr_idx, va_idx = np.flatnonzero(~val), np.flatnonzero(val)
    # both the features and their mirror image are training examples
    feats = np.concatenate([cache.features, cache.mirrored_features()]).astype(np.float32)
    mean = feats[np.concatenate([tr_idx, tr_idx + len(cache.features)])].mean(0)
    std = feats[np.concatenate([tr_idx, tr_idx + len(cache.features)])].std(0) + 1e-3
    x = torch.from_numpy(feats)
    target = cache.gt if cfg.variant == 'gt' else cache.pseudo
    target_m = cache.gt[:, :, ::-1] if cfg.variant == 'gt' else cache.pseudo_mirror
    y = torch.from_numpy(np.concatenate([target, target_m]).astype(np.float32))[:, None]
    model, maps = build_student(cache, cfg, mean, std)
    tfeat = [torch.from_numpy(np.concatenate([cache.teacher_feats[n],
                                              cache.teacher_feats_mirror[n]])) for n in maps]
    n = len(cache.features)
    train_rows = np.concatenate([tr_idx, tr_idx + n])
    val_rows = va_idx                                 # the real (unmirrored) echoes
    net = torch.nn.parallel.DistributedDataParallel(model) if distributed else model
    steps_per_epoch = (len(train_rows) // world + cfg.batch - 1) // cfg.batch
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr,
                                                total_steps=cfg.epochs * steps_per_epoch)
    out = Path(out)
    ck = Checkpoints(out.parent / f'{out.stem}_checkpoints',
                     fingerprint(cache.summary, asdict(cfg), world), progress)
    loop = EpochLoop(f'train {cfg.variant}', ck, model, opt, sched, cfg.epochs, progress,
                     save=rank == 0)
    t0 = time.perf_counter()
    step_losses: list[float] = []

    def epoch(e: int) -> EpochResult:
        net.train()
        # every rank draws the same permutation and takes its share
        perm = np.random.default_rng([cfg.seed, e]).permutation(train_rows)
        perm = perm[rank::world][:len(train_rows) // world]   # same steps on every rank
        losses = []
        for i in range(0, len(perm), cfg.batch):
            b = perm[i:i + cfg.batch]
            pred, aligned = net(x[b])
            loss = berhu(pred, y[b], _valid(y[b], cfg.max_depth))
            for a, t in zip(aligned, tfeat):
                loss = loss + cfg.triplet_weight * triplet(a, t[b].float(), cfg.margin)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            step_losses.append(losses[-1])
            if len(losses) % 20 == 0:
                print(f'\r[train {cfg.variant}] epoch {e + 1}/{cfg.epochs} step '
                      f'{len(losses)}/{steps_per_epoch} loss {np.mean(losses[-20:]):.4f} '
                      f'({time.perf_counter() - t0:.0f} s)', end='', file=progress, flush=True)
            if cfg.max_steps and len(step_losses) >= cfg.max_steps:
                break
        vloss = _eval_loss(lambda v: model(v)[0], x, y, val_rows, cfg.max_depth, model)
        return EpochResult(float(np.mean(losses)), vloss,
                           stop=bool(cfg.max_steps and len(step_losses) >= cfg.max_steps))

    fit = loop.run(epoch, 'loss')
    model_path = None
    if rank == 0:
        export_student(model, out, cache, cfg, int(len(train_rows)))
        model_path = out
    if distributed:
        import torch.distributed as dist
        dist.barrier()
    return StudentResult(cfg.variant, int(n), int(len(train_rows)), len(cache.summary['bags']),
                         step_losses, world, distributed, fit, model_path)


def student_metadata(cache: echo_dataset.Cache, cfg: StudentConfig, n_train: int) -> dict:
    k = np.asarray(cache.k, float).reshape(3, 3)
    h, w = OUT_SIZE
    triplet = ({'triplet_weight': f'{cfg.triplet_weight:g}', 'margin': f'{cfg.margin:g}'}
               if cfg.variant == 'sam' else {})
    return {'task': 'echo_depth', 'variant': cfg.variant,
            'model_id': f'echo-depth-{cfg.variant}-{cache.spec.geometry}',
            'out_height': h, 'out_width': w, 'fx': f'{k[0, 0]:.6g}', 'fy': f'{k[1, 1]:.6g}',
            'cx': f'{k[0, 2]:.6g}', 'cy': f'{k[1, 2]:.6g}', 'max_depth': f'{cfg.max_depth:g}',
            'sam_blocks': cfg.sam_blocks if cfg.variant == 'sam' else 0,
            'k': cfg.k, **triplet, 'teacher': cache.summary['teacher'],
            'train_examples': n_train,
            'train_bags': len(cache.summary['bags']), **cache.summary.get('randomize', {}),
            **cache.spec.to_metadata()}


class _DepthOnly:
    """The exported graph: features -> depth (the SAM outputs are internal)."""

    def __new__(cls, model: torch.nn.Module) -> torch.nn.Module:
        import torch.nn as nn

        class Wrapped(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = model

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.net(x)[0]
        return Wrapped().eval()


def export_student(model: EchoStudent, out: Path, cache: echo_dataset.Cache,
                   cfg: StudentConfig, n_train: int) -> torch.nn.Module:
    """ONNX: input ``features`` (N, C, bins, frames) from
    :func:`av_perception.echo.features.echo_features`, output ``depth``
    (N, 1, 64, 64) [m]; the contract in the metadata. Returns the exported
    PyTorch module."""
    import torch

    spec: EchoSpec = cache.spec
    wrapped = _DepthOnly(model)
    x = torch.zeros(1, spec.n_channels, spec.bins, spec.frames)
    export_onnx(wrapped, (x,), out, ['features'], ['depth'],
                student_metadata(cache, cfg, n_train))
    return wrapped
