"""Training of the learned direction-of-arrival models (PyTorch).

The student is a small network on one array's features (GCC-PHAT and level
differences per microphone pair, ``av_perception.direction.learned_features``)
that predicts a distribution over azimuth. Its target is, by default, the
*acoustic image* of a larger array in the same scene: the SRP-PHAT power map
of the 16-mic virtual teacher array (``audio/teacher``), as in Audio-Visual
Model Distillation Using Acoustic Images; ``--target labels`` trains on
Gaussian bumps at the ground-truth directions instead (the ablation).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from av_perception.arrays import ArrayGeometry, load_array
from av_perception.bag.contents import UnusableBag, each_bag, list_bags
from av_perception.bag.provenance import randomization
from av_perception.direction.dataset import STREAM_TOPICS, load_bag, windows
from av_perception.direction.learned_features import (FeatureSpec, calibration, features,
                                                      label_map, map_to_bins, spec_for,
                                                      check_onset_history)
from av_perception.errors import ConfigError
from av_perception.train.checkpoints import Checkpoints, fingerprint
from av_perception.train.export import export_onnx
from av_perception.train.loop import EpochLoop, EpochResult, Fit, check_optimisation

if TYPE_CHECKING:
    import torch

ROLES = {'array': 'respeaker4', 'binaural': 'binaural'}
TARGETS = ('teacher', 'labels')
#: the larger array whose acoustic image teaches (audio/teacher): the
#: simulator's 16-mic virtual array unless ``--teacher-geometry`` names another
TEACHER_ARRAY = 'teacher16'


@dataclass
class Examples:
    """Feature vectors, targets, ground-truth azimuths and bag index."""

    x: np.ndarray
    y: np.ndarray
    truth: list
    bag: np.ndarray


def symmetries(geom: ArrayGeometry) -> list[tuple[np.ndarray, Callable[[float], float]]]:
    """Rotations about z (90, 180, 270 deg) and the mirror y -> -y that map the
    array onto itself: (channel order, azimuth transform) pairs. A scene
    transformed by such an operation is heard by the array as the original
    with its channels reordered, so each is an exact data augmentation."""
    pos = geom.positions
    # a head is left/right symmetric but not front/back (pinnae): mirror only
    turns = () if geom.kind == 'binaural' else (1, 2, 3)
    ops = [(lambda a, k=k: a + k * math.pi / 2,
            np.array([[math.cos(k * math.pi / 2), -math.sin(k * math.pi / 2), 0],
                      [math.sin(k * math.pi / 2), math.cos(k * math.pi / 2), 0], [0, 0, 1]]))
           for k in turns]
    ops.append((lambda a: -a, np.diag([1.0, -1.0, 1.0])))
    out = []
    for fn, rot in ops:
        moved = pos @ rot.T  # T(p_i)
        src = []
        for j in range(len(pos)):  # new[j] = old[i] where T(p_i) = p_j
            hit = np.flatnonzero(np.linalg.norm(moved - pos[j], axis=1) < 1e-6)
            if len(hit) != 1:
                break
            src.append(int(hit[0]))
        if len(src) == len(pos):
            out.append((np.array(src), fn))
    return out


def transform_target(y: np.ndarray, spec: FeatureSpec,
                     fn: Callable[[float], float]) -> np.ndarray:
    """A distribution over the spec's grid moved by an azimuth transform."""
    grid = spec.grid()
    moved = np.array([fn(a) for a in grid])
    return map_to_bins(moved, y, spec, sharpen=False)


def _bag_examples(args: tuple[str, str, FeatureSpec, str, int, bool, bool, str, str, str]
                  ) -> tuple[np.ndarray, np.ndarray, list[list[float]]]:
    path, role, spec, target, hop, augment, salvage, namespace, student, teacher_array = args
    streams, gt = load_bag(path, namespace, salvage=salvage)
    if role not in streams:      # checked before, unless a damaged bag hides it
        raise UnusableBag(path, f'{STREAM_TOPICS[role]} messages', 'none readable')
    stream = streams[role]
    geometry = load_array(student)
    stream.require(geometry.channels, geometry.sample_rate, path, STREAM_TOPICS[role],
                   f'array {geometry.name}')
    teacher = streams.get('teacher')
    if target == 'teacher':
        if teacher is None:
            raise ConfigError(f'{path}: no audio/teacher stream (make the bags with '
                              '`av-perception simulate --teacher`, or use --target labels)')
        from av_perception.direction.classic import ClassicDoa
        big = load_array(teacher_array)
        teacher.require(big.channels, big.sample_rate, path, 'audio/teacher',
                        f'teacher array {big.name}')
        # the acoustic image the shipped models were distilled from (pinned, so
        # that a change of ClassicDoa's defaults does not change the teacher)
        srp = ClassicDoa(big, 'srp', nfft=512, freq_range=(300.0, 3500.0))
    syms = symmetries(geometry) if augment else []
    xs, ys, tr = [], [], []
    for w in windows(stream, gt, spec.window, hop):
        seg = stream.samples[:, w.start:w.start + spec.window]
        if float(np.sqrt(np.mean(seg.astype(np.float64) ** 2))) < 1e-4:
            continue  # silence: no direction to learn
        if target == 'teacher':
            values = srp.spatial_spectrum(teacher.samples[:, w.start:w.start + spec.window])
            y = map_to_bins(srp.grid, values, spec)
        elif w.truth:
            y = label_map(w.truth, spec)
        else:
            continue
        xs.append(features(seg, spec))
        ys.append(y)
        tr.append(w.truth)
        for order, fn in syms:
            xs.append(features(seg[order], spec))
            ys.append(transform_target(y, spec, fn))
            tr.append([fn(a) for a in w.truth])
    if not xs:
        return np.zeros((0, spec.n_features), np.float32), np.zeros((0, spec.bins), np.float32), []
    return np.stack(xs), np.stack(ys), tr


def build_examples(bags: list[Path], role: str, spec: FeatureSpec, target: str,
                   jobs: int = 0, hop: int | None = None, augment: bool = True,
                   progress: TextIO = sys.stderr, salvage: bool = False,
                   namespace: str = '', geometry: str | None = None,
                   teacher_array: str = TEACHER_ARRAY) -> Examples:
    """Examples from every bag (with the array's symmetry augmentations), in
    parallel over bags. ``geometry``: the student's array, a name under
    config/arrays/ or a file (default: the role's, ``ROLES``); ``teacher_array``:
    the geometry of the bags' audio/teacher (target ``teacher``)."""
    hop = hop or spec.window // 4
    student = str(geometry or ROLES[role])
    todo = [(str(b), role, spec, target, hop, augment, salvage, namespace, student,
             str(teacher_array)) for b in bags]
    xs, ys, truth, bag_idx = [], [], [], []
    ctx = mp.get_context('spawn')
    with ctx.Pool(jobs or mp.cpu_count()) as pool:
        for i, (x, y, tr) in enumerate(pool.imap(_bag_examples, todo)):
            xs.append(x)
            ys.append(y)
            truth += tr
            bag_idx.append(np.full(len(x), i))
            print(f'\r[dataset] {i + 1}/{len(bags)} bags, {sum(len(a) for a in xs)} windows',
                  end='', file=progress, flush=True)
    print(file=progress)
    return Examples(np.concatenate(xs), np.concatenate(ys), truth, np.concatenate(bag_idx))


def make_model(n_in: int, bins: int, hidden: int = 256) -> torch.nn.Sequential:
    import torch.nn as nn
    return nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.Dropout(0.1),
                         nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(0.1),
                         nn.Linear(hidden, bins))


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                       weight: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of ``logits`` (B, bins) against target distributions
    (B, bins): the mean over the batch, or the ``weight`` (B,)-weighted
    mean."""
    import torch
    ce = -(target * torch.log_softmax(logits, dim=-1)).sum(-1)
    return ce.mean() if weight is None else (ce * weight).sum() / weight.sum()


@dataclass
class DirectionConfig:
    """What ``train direction`` trains and how.

    Attributes:
        array: the student's array role: ``array`` (its stream audio/raw) or
            ``binaural`` (audio/binaural).
        target: ``teacher`` (the acoustic image of the larger array) or ``labels``.
        geometry: the student's geometry, a name under config/arrays/ or a
            file (None: the role's default, respeaker4 or binaural); the bags'
            stream must have its channels and sample rate.
        teacher_array: the geometry of the bags' audio/teacher, the array
            whose acoustic image teaches (name or file).
        epochs, batch, lr, seed: the optimisation (AdamW, cosine schedule).
        jobs: processes that read the bags (0: one per core).
        salvage: use the readable part of damaged bags instead of failing.
        namespace: the robot's topic namespace in the bags.
        onset_history: > 0: the features' cross-correlation weighted by onsets
            over this many frames (``FeatureSpec.onset_history``); 0: the
            whole window's (the shipped models').
    """

    array: str = 'array'
    target: str = 'teacher'
    epochs: int = 60
    batch: int = 128
    lr: float = 1e-3
    seed: int = 0
    jobs: int = 0
    salvage: bool = False
    namespace: str = ''
    geometry: str | None = None
    teacher_array: str = TEACHER_ARRAY
    onset_history: int = 0

    def __post_init__(self) -> None:
        if self.array not in ROLES:
            raise ConfigError(f'--array must be one of {list(ROLES)}, got {self.array!r}')
        if self.target not in TARGETS:
            raise ConfigError(f'--target must be one of {TARGETS}, got {self.target!r}')
        check_optimisation(self.epochs, self.batch, self.lr)
        if self.jobs < 0:
            raise ConfigError(f'--jobs must be at least 0, got {self.jobs}')
        check_onset_history(self.onset_history)


@dataclass
class DirectionResult:
    """A trained direction model: the ONNX file, its data and its training curve."""

    model: Path
    windows: int
    bags: int
    fit: Fit


def train(bags_dir: str | Path, out: str | Path, cfg: DirectionConfig = DirectionConfig(),
          progress: TextIO = sys.stderr) -> DirectionResult:
    """Train, checkpoint each epoch (resumable), export ONNX. A bag without
    the student's stream, or without the target's (audio/teacher, or
    gt/sound_direction for labels), is reported and left out."""
    import torch

    out = Path(out)
    student = load_array(cfg.geometry or ROLES[cfg.array])
    if cfg.array == 'binaural' and student.channels != 2:
        raise ConfigError(f'--geometry {cfg.geometry}: the binaural student is a two-microphone '
                          f'head, got {student.channels} microphones')
    teacher = load_array(cfg.teacher_array) if cfg.target == 'teacher' else None
    spec = spec_for(student, onset_history=cfg.onset_history)
    needs = [STREAM_TOPICS[cfg.array], 'audio/teacher' if cfg.target == 'teacher'
             else 'gt/sound_direction']
    why = ('the teacher: `av-perception simulate --teacher` records it, or use --target labels'
           if cfg.target == 'teacher' else 'the labels')
    bags = [b for b, _ in each_bag(list_bags(bags_dir), None, needs, cfg.namespace, why,
                                   progress)]
    ex = build_examples(bags, cfg.array, spec, cfg.target, jobs=cfg.jobs, progress=progress,
                        salvage=cfg.salvage, namespace=cfg.namespace,
                        geometry=cfg.geometry, teacher_array=cfg.teacher_array)
    if len(ex.x) < 10:
        raise ConfigError(f'only {len(ex.x)} usable windows in {bags_dir}; need more bags')
    # validation: the last tenth of the bags (whole rooms held out)
    n_val_bags = max(1, len(bags) // 10)
    val = ex.bag >= len(bags) - n_val_bags
    if val.all():
        raise ConfigError(f'{bags_dir}: no usable window in the training rooms (every bag but '
                          f'the last {n_val_bags}, which validate); need more bags')
    torch.manual_seed(cfg.seed)
    mean = ex.x[~val].mean(0)
    std = ex.x[~val].std(0) + 1e-3
    xt = torch.from_numpy((ex.x - mean) / std)
    yt = torch.from_numpy(ex.y)
    model = make_model(spec.n_features, spec.bins)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    # a checkpoint is resumed only for the same data, target and settings
    ck = Checkpoints(out.parent / f'{out.stem}_checkpoints',
                     fingerprint([str(b) for b in bags], int(len(ex.x)), float(ex.x.sum()),
                                 float(ex.y.sum()), cfg.target, cfg.lr, cfg.batch, cfg.seed,
                                 spec.to_metadata()),
                     progress)
    loop = EpochLoop('train', ck, model, opt, sched, cfg.epochs, progress)
    rng = loop.rng(cfg.seed)
    tr_idx = np.flatnonzero(~val)
    va_idx = np.flatnonzero(val)

    def epoch(_: int) -> EpochResult:
        model.train()
        perm = rng.permutation(tr_idx)
        losses = []
        for i in range(0, len(perm), cfg.batch):
            b = perm[i:i + cfg.batch]
            loss = soft_cross_entropy(model(xt[b]), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
        sched.step()
        model.eval()
        with torch.no_grad():
            vloss = float(soft_cross_entropy(model(xt[va_idx]), yt[va_idx]))
        return EpochResult(float(np.mean(losses)), vloss)

    # the model ends with the epoch of the lowest validation loss
    fit = loop.run(epoch, 'soft cross-entropy')
    export(model, spec, mean, std, out, target=cfg.target, n_train=int((~val).sum()),
           n_bags=len(bags), extra={**randomization(bags),
                                    **({'teacher_array': teacher.name} if teacher else {})})
    return DirectionResult(out, int(len(ex.x)), len(bags), fit)


class _Normalised:
    """The exported graph: standardisation, network, softmax, and (a model
    trained without labels) the calibration that fixes its global sign and
    scale (``learned_features.calibration``)."""

    def __new__(cls, model: torch.nn.Module, mean: np.ndarray, std: np.ndarray,
                calib: np.ndarray | None = None) -> torch.nn.Module:
        import torch
        import torch.nn as nn

        class Wrapped(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = model
                self.register_buffer('mean', torch.from_numpy(mean.astype(np.float32)))
                self.register_buffer('std', torch.from_numpy(std.astype(np.float32)))
                self.register_buffer('calib', None if calib is None else
                                     torch.from_numpy(calib.astype(np.float32)))

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                p = torch.softmax(self.net((x - self.mean) / self.std), dim=-1)
                return p if self.calib is None else p @ self.calib
        return Wrapped()


def export(model: torch.nn.Module, spec: FeatureSpec, mean: np.ndarray, std: np.ndarray,
           out: Path, target: str, n_train: int, n_bags: int, sign: float = 1.0,
           scale: float = 1.0, extra: dict | None = None) -> torch.nn.Module:
    """ONNX with the input contract in its metadata (opset 17); returns the
    exported PyTorch module (standardisation + network + softmax, and the
    calibration of ``sign`` and ``scale`` when they are not 1: a model
    trained from motion). ``extra``: more metadata (what taught it)."""
    import torch

    calib = None if (sign, scale) == (1.0, 1.0) else calibration(spec, sign, scale)
    wrapped = _Normalised(model, mean, std, calib).eval()
    meta = {'task': 'direction', 'target': target, 'train_windows': str(n_train),
            'train_bags': str(n_bags), 'model_id': f'direction-{spec.array}-{target}',
            **spec.to_metadata(), **(extra or {})}
    export_onnx(wrapped, (torch.zeros(1, spec.n_features),), out, ['features'],
                ['azimuth_prob'], meta)
    return wrapped
