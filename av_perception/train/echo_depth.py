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
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from av_perception.bag.contents import list_bags
from av_perception.echo import dataset as echo_dataset
from av_perception.echo.features import EchoSpec, spec_for
from av_perception.errors import ConfigError
from av_perception.train.checkpoints import Checkpoints, fingerprint

VARIANTS = ('pseudo', 'sam', 'gt')
OUT_SIZE = (64, 64)


# ------------------------------------------------------------------ common
def _add_metadata(path: Path, meta: dict) -> None:
    import onnx
    m = onnx.load(str(path))
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, str(v)
    onnx.save(m, str(path))


def _valid(depth, max_depth: float):
    import torch
    return torch.isfinite(depth) & (depth > 0) & (depth <= max_depth)


def _split(bag: np.ndarray) -> np.ndarray:
    """Validation mask: the last tenth of the bags (whole rooms held out)."""
    n_bags = int(bag.max()) + 1
    n_val = max(1, n_bags // 10) if n_bags > 1 else 0
    return bag >= n_bags - n_val if n_val else np.zeros(len(bag), bool)


# ----------------------------------------------------------------- teacher
def train_teacher(bags_dir: str | Path, out: str | Path, epochs: int = 12, batch: int = 32,
                  lr: float = 2e-3, width: int = 12, max_depth: float = 12.0, seed: int = 0,
                  tolerance: float = 0.05, progress=sys.stderr, namespace: str = '') -> dict:
    """The stand-in visual teacher: RGB -> depth on simulated bags with
    gt/depth (mirror augmentation), exported with its feature maps; a bag
    without gt/depth is reported and left out."""
    import torch

    from av_perception.arrays import DEFAULT_ECHO_ARRAY, load_array
    from av_perception.echo.nets import TeacherUNet, berhu

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    bags = list_bags(bags_dir)
    spec = spec_for(load_array(DEFAULT_ECHO_ARRAY), max_depth)
    pairs = echo_dataset.collect(bags, spec, OUT_SIZE, tolerance, namespace, progress,
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
    model = TeacherUNet(width, max_depth)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * (
        (len(tr_idx) + batch - 1) // batch))
    out = Path(out)
    ck = Checkpoints(out.parent / f'{out.stem}_checkpoints',
                     fingerprint([str(b) for b in bags], len(keep), float(gt.nansum()), epochs,
                                 batch, lr, width, seed), progress)
    start = ck.resume(model, opt, sched)
    t0 = time.perf_counter()
    for epoch in range(start, epochs):
        model.train()
        losses = []
        perm = rng.permutation(tr_idx)
        for i in range(0, len(perm), batch):
            b = perm[i:i + batch]
            x = rgb[b].float() / 255.0
            y = gt[b]
            flip = torch.from_numpy(rng.random(len(b)) < 0.5)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            y = torch.where(flip[:, None, None, None], y.flip(-1), y)
            pred = model(x)[0]
            loss = berhu(pred, y, _valid(y, max_depth))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        vloss = _eval_loss(lambda x: model(x.float() / 255.0)[0], rgb, gt, va_idx, max_depth,
                           model)
        ck.save(model, opt, sched, epoch + 1, {'epoch': epoch + 1,
                                               'train_loss': float(np.mean(losses)),
                                               'val_loss': vloss})
        print(f'\r[train teacher] epoch {epoch + 1}/{epochs} train {np.mean(losses):.4f} '
              f'val {vloss:.4f} ({time.perf_counter() - t0:.0f} s)', end='', file=progress,
              flush=True)
    print(file=progress)
    curve = ck.plot('BerHu loss [m]')
    best = ck.best(model)
    export_teacher(model, out, {'train_frames': int(len(tr_idx)), 'train_bags': len(bags),
                                'best_epoch': best})
    return {'model': str(out), 'frames': int(len(keep)), 'bags': len(bags), 'best_epoch': best,
            'final': ck.curve[-1] if ck.curve else None, 'curve': str(curve)}


def _eval_loss(fn, x, y, idx, max_depth, model, batch: int = 64) -> float:
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


def export_teacher(model, out: Path, extra: dict) -> None:
    """ONNX of the teacher: input ``image`` (N, 3, 64, 64) RGB in [0, 1];
    outputs ``depth`` (N, 1, 64, 64) [m] and ``feat_<h>x<w>``."""
    import torch

    model.eval()
    h, w = OUT_SIZE
    x = torch.zeros(1, 3, h, w)
    with torch.no_grad():
        outs = model(x)
    names = ['depth'] + [f'feat_{o.shape[2]}x{o.shape[3]}' for o in outs[1:]]
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (x,), str(out), input_names=['image'], output_names=names,
                      dynamic_axes={n: {0: 'batch'} for n in ['image'] + names},
                      opset_version=17, dynamo=False)
    _add_metadata(out, {'task': 'echo_teacher', 'model_id': 'echo-teacher-unet-sim',
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


def build_student(cache: echo_dataset.Cache, cfg: StudentConfig, mean=None, std=None):
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
                  progress=sys.stderr) -> dict:
    """Train one student variant on a data set folder; export ONNX (rank 0)."""
    import torch

    from av_perception.echo.nets import berhu, triplet

    if cfg.variant not in VARIANTS:
        raise ConfigError(f'variant must be one of {VARIANTS}, got {cfg.variant!r}')
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
    start = ck.resume(model, opt, sched)
    t0 = time.perf_counter()
    step = 0
    step_losses = []
    for epoch in range(start, cfg.epochs):
        net.train()
        # every rank draws the same permutation and takes its share
        perm = np.random.default_rng([cfg.seed, epoch]).permutation(train_rows)
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
            step += 1
            if len(losses) % 20 == 0:
                print(f'\r[train {cfg.variant}] epoch {epoch + 1}/{cfg.epochs} step '
                      f'{len(losses)}/{steps_per_epoch} loss {np.mean(losses[-20:]):.4f} '
                      f'({time.perf_counter() - t0:.0f} s)', end='', file=progress, flush=True)
            if cfg.max_steps and step >= cfg.max_steps:
                break
        vloss = _eval_loss(lambda v: model(v)[0], x, y, val_rows, cfg.max_depth, model)
        if rank == 0:
            ck.save(model, opt, sched, epoch + 1, {'epoch': epoch + 1,
                                                   'train_loss': float(np.mean(losses)),
                                                   'val_loss': vloss})
        print(f'\r[train {cfg.variant}] epoch {epoch + 1}/{cfg.epochs} train '
              f'{np.mean(losses):.4f} val {vloss:.4f} ({time.perf_counter() - t0:.0f} s)',
              end='', file=progress, flush=True)
        if cfg.max_steps and step >= cfg.max_steps:
            break
    print(file=progress)
    summary = {'variant': cfg.variant, 'pairs': int(n), 'train_examples': int(len(train_rows)),
               'bags': len(cache.summary['bags']), 'seconds': time.perf_counter() - t0,
               'step_losses': step_losses, 'world_size': world, 'distributed': distributed}
    if rank == 0:
        summary['curve'] = str(ck.plot('loss'))
        summary['best_epoch'] = ck.best(model)
        export_student(model, out, cache, cfg, int(len(train_rows)))
        summary['model'] = str(out)
    if distributed:
        import torch.distributed as dist
        dist.barrier()
    return summary


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
            'train_bags': len(cache.summary['bags']), **cache.spec.to_metadata()}


class _DepthOnly:
    """The exported graph: features -> depth (the SAM outputs are internal)."""

    def __new__(cls, model):
        import torch.nn as nn

        class Wrapped(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = model

            def forward(self, x):
                return self.net(x)[0]
        return Wrapped().eval()


def export_student(model, out: Path, cache: echo_dataset.Cache, cfg: StudentConfig,
                   n_train: int):
    """ONNX: input ``features`` (N, C, bins, frames) from
    :func:`av_perception.echo.features.echo_features`, output ``depth``
    (N, 1, 64, 64) [m]; the contract in the metadata. Returns the exported
    PyTorch module."""
    import torch

    spec: EchoSpec = cache.spec
    wrapped = _DepthOnly(model)
    x = torch.zeros(1, spec.n_channels, spec.bins, spec.frames)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(wrapped, (x,), str(out), input_names=['features'],
                      output_names=['depth'],
                      dynamic_axes={'features': {0: 'batch'}, 'depth': {0: 'batch'}},
                      opset_version=17, dynamo=False)
    _add_metadata(out, student_metadata(cache, cfg, n_train))
    return wrapped
