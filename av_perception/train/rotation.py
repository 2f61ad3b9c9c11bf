"""Training of the rotation models (PyTorch): Sound Localization from Motion.

Two networks:

- ``VisualRotationNet``: yaw between two camera frames. A shared CNN encoder
  (stride 2) on each grey frame (reprojected onto a cylinder, where a turn
  is a horizontal shift: av_perception.rotation.features), a global
  matching curve of the two feature maps over +-``MAX_SHIFT`` cells (mean
  cosine similarity over the columns both frames see, per shift) and its
  soft-argmax near the peak, times a learned scale -> yaw [rad], CCW
  positive (REP 103): the second frame's heading relative to the first.
  Trained with the squared yaw error and a cross-entropy of the whole curve
  against the turn's cell (:func:`curve_loss`).
- the binaural direction network: the package's one binaural direction
  network (``av_perception.train.direction``: GCC-PHAT and level-difference
  features, a distribution over folded azimuths), trained here from the
  turns the visual network sees (:mod:`av_perception.train.motion`: a
  static source's folded azimuth changes by minus the turn, front or back,
  and swapping the ears negates it; no direction labels).

Self-supervised (no pose or direction labels), in two phases:

1. the visual network learns a pretext task instead of the paper's
   cross-view binauralization (not done here): each frame as seen by the
   camera turned twice (:func:`synthetic_pairs`: on the cylinder, a
   horizontal shift), whose difference it must give, and mirroring both
   frames negates the yaw (swapping them does so by construction: the
   swapped matching curve is the mirrored one). It uses the frames' own
   field of view, no labels;
2. the visual network is frozen; its sign (and, by default, its scale) is
   fixed by ``SIGN_PAIRS`` labelled validation pairs, as the paper fixes its
   sign with 12 labelled samples (:func:`fix_sign`); then the binaural
   network learns from its turns on every pair of views between which the
   robot turned in place, and its own sign and scale are fixed by
   ``motion.LABELLED`` labelled validation views (with folded azimuths, a
   mirrored binaural network is exactly as consistent: its sign is not tied
   to the visual one).

A joint phase in which the sound also teaches the camera is not done (with
the earlier binaural network it made the camera worse).

``--target labels`` trains the visual network with the true yaw (the
supervised reference); the binaural network's label-trained reference, and
the one distilled from the acoustic image, are ``train direction --array
binaural --target labels|teacher`` on the same bags.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from av_perception.direction.learned_features import check_onset_history
from av_perception.errors import ConfigError
from av_perception.rotation.dataset import BagOptions, load_all
from av_perception.rotation.features import RotationSpec
from av_perception.train.checkpoints import Checkpoints, fingerprint
from av_perception.train.loop import (EpochLoop, EpochResult, Fit, batch_pass,
                                      check_optimisation)
from av_perception.train.motion import MotionConfig, MotionResult
from av_perception.train.motion_refine import EPOCHS, MEMBERS, ROUNDS, check_settings
from av_perception.train.rotation_data import Data, build_data, spec_for_bags, synthetic_pairs
from av_perception.train.rotation_net import (export_visual, flip_images, make_visual,
                                              rotation_outputs, visual_schedule,
                                              yaw_terms)

if TYPE_CHECKING:
    import torch

TARGETS = ('selfsup', 'labels')
SPREAD_FLOOR_RAD = math.radians(0.25)  # added (in quadrature) to every yaw's spread
SIGN_PAIRS = 12           # labelled validation pairs that fix the visual yaw's sign
FILES = {'selfsup': ('rotation_visual.onnx', 'rotation_binaural.onnx'),
         'labels': ('rotation_visual_labels.onnx',)}


# ---------------------------------------------------------------- training
@dataclass
class Tensors:
    """The visual data as tensors: grey views (V, S, S), turn pairs (P, 2)
    of view indices, their true yaw (P,) [rad] (labels target and reports)."""

    grey: torch.Tensor
    pairs: torch.Tensor
    yaw: torch.Tensor


def _visual_losses(vis: torch.nn.Module, tensors: Tensors, idx: torch.Tensor, target: str,
                   rng: np.random.Generator,
                   synth: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The visual loss terms of one batch: the pretext task's (``synth``:
    synthetic pairs and their turns) or the labels' (real pairs ``idx``,
    randomly swapped and mirrored), and the mirror symmetry."""
    import torch
    if target == 'selfsup':
        j = torch.from_numpy(rng.integers(0, len(synth[0]), len(idx)))
        pair, yaw = synth[0][j], synth[1][j]
    else:
        grey, pairs, true_yaw = tensors.grey, tensors.pairs, tensors.yaw
        p = pairs[idx]
        swap = torch.from_numpy(rng.random(len(idx)) < 0.5)
        first = torch.where(swap, p[:, 1], p[:, 0])
        second = torch.where(swap, p[:, 0], p[:, 1])
        pair = torch.stack([grey[first], grey[second]], 1)
        yaw = torch.where(swap, -1.0, 1.0) * true_yaw[idx]
    mirror = torch.from_numpy(rng.random(len(idx)) < 0.5)
    pair = torch.where(mirror.view(-1, 1, 1, 1), flip_images(pair), pair)
    yaw = torch.where(mirror, -yaw, yaw)
    r, sq, ce = yaw_terms(vis, pair, yaw)
    return {'yaw': sq, 'yaw_curve': ce, 'mirror': ((r + vis(flip_images(pair))) ** 2).mean()}


WEIGHTS = {'yaw': 10.0, 'yaw_curve': 1.0, 'mirror': 1.0}


@dataclass
class RotationConfig:
    """What ``train rotation`` trains and how.

    Attributes:
        targets: ``selfsup`` (pretext task + binaural from motion) and/or
            ``labels`` (the visual network with the true yaw).
        epochs, batch, lr, seed: the visual network's optimisation.
        binaural_epochs: epochs of the binaural network (from motion).
        scale_from_labels: also fix the visual yaw's scale from the
            labelled pairs that fix its sign (:func:`fix_sign`).
        visual_model: an ONNX visual model to take the turns from instead of
            training one (self-supervised target).
        binaural_array: the binaural head's geometry (a name under
            config/arrays/, or a file): the bags' audio/binaural must be its.
        binaural_sign: how the binaural network's global sign is fixed
            (``motion_sign.SIGNS``: labelled views, or the geometry with no labels).
        refine_epochs: epochs of each of the binaural network's self-training
            rounds on the chains of turns (``motion_refine``; 0: none).
        refine_rounds: the most self-training rounds (they stop once the
            pseudo-labels stand still; 0: none).
        refine_members: chains of self-training rounds, each from its own
            seed, whose networks' distributions are averaged (1: one).
        binaural_onset_history: the binaural network's features weighted
            by onsets over this many frames (``MotionConfig.onset_history``;
            0: the whole window's).
        options: how the bags are read (turn pairs, odometry frames,
            namespace: ``rotation.dataset.BagOptions``).
    """

    targets: tuple[str, ...] = TARGETS
    epochs: int = 6
    batch: int = 32
    lr: float = 2e-3
    seed: int = 0
    binaural_epochs: int = 40
    scale_from_labels: bool = True
    visual_model: str | Path | None = None
    binaural_array: str = 'binaural'
    binaural_sign: str = 'auto'
    refine_epochs: int = EPOCHS
    refine_rounds: int = ROUNDS
    refine_members: int = MEMBERS
    binaural_onset_history: int = 0
    options: BagOptions = field(default_factory=BagOptions)

    def __post_init__(self) -> None:
        for t in self.targets:
            if t not in TARGETS:
                raise ConfigError(f'--target must be one of {TARGETS}, got {t!r}')
        if self.epochs < 1 or self.binaural_epochs < 1:
            raise ConfigError(f'epochs must be >= 1, got {self.epochs} (visual) and '
                              f'{self.binaural_epochs} (binaural)')
        check_settings(self.refine_epochs, self.refine_rounds,   # before the bags are read
                       self.refine_members)
        check_onset_history(self.binaural_onset_history, '--binaural-onset-history')
        check_optimisation(self.epochs, self.batch, self.lr, min_batch=2)


@dataclass
class VisualResult:
    """The visual network of one target.

    Attributes:
        model: its ONNX file, or the given partner's (``given``).
        given: the partner's model id when it was given, not trained.
        fit: the epochs (None when given).
        sign: how its global sign (and scale) were fixed.
        val_median_yaw_error_deg, val_median_spread_deg: on the validation
            rooms' pairs (reports only; None when given).
    """

    model: Path
    given: str | None = None
    fit: Fit | None = None
    sign: str = ''
    val_median_yaw_error_deg: float | None = None
    val_median_spread_deg: float | None = None


@dataclass
class RotationResult:
    """What ``train rotation`` made: the data, and per target its visual
    network; the binaural network learned from motion (self-supervised)."""

    pairs: int
    views: int
    bags: int
    val_pairs: int
    load_seconds: float
    visual: dict[str, VisualResult]
    binaural: MotionResult | None = None


def train(bags_dirs: list, out_dir: str | Path, cfg: RotationConfig = RotationConfig(),
          progress: TextIO = sys.stderr) -> RotationResult:
    """Train the chosen targets from the same bags, checkpoint each epoch
    (resumable), export ONNX.

    ``selfsup``: the visual network learns the pretext task for ``epochs``
    epochs (or, with ``visual_model``, that ONNX model is the partner and
    nothing visual is trained), its sign and scale are fixed
    (:func:`fix_sign`), then the binaural direction network learns from its
    turns for ``binaural_epochs`` epochs (:mod:`av_perception.train.motion`).
    ``labels``: the visual network trained with the true yaw for ``epochs``.
    Writes ``rotation_visual.onnx`` and ``rotation_binaural.onnx``
    (self-supervised), ``rotation_visual_labels.onnx`` (labels). The labelled
    samples' truth: gt/pose (or the odometry of bags without it) for the
    yaw, gt/sound_direction for the azimuth. The models' field of view is
    the bags' camera's (CameraInfo)."""
    import torch

    out_dir = Path(out_dir)
    spec = spec_for_bags([Path(d) for d in bags_dirs], cfg.options, cfg.binaural_array)
    t_load = time.perf_counter()
    bags, pairs = load_all([Path(d) for d in bags_dirs], spec, progress=progress,
                           options=cfg.options)
    data = build_data(bags, pairs)
    n_val = max(1, data.n_bags // 10)  # validation: the last tenth of the rooms
    val = data.room >= data.n_bags - n_val
    result = RotationResult(int(len(data.pairs)), int(len(data.grey)), data.n_bags,
                            int(val.sum()), round(time.perf_counter() - t_load, 1), {})
    print(f'[train] {result.pairs} turn pairs, {result.views} views, {result.bags} bags, '
          f'{result.val_pairs} validation pairs ({result.load_seconds} s)', file=progress)
    fingerprint_data = [str(d) for d in bags_dirs] + [int(len(data.pairs)),
                                                      float(data.grey.sum())]
    for target in cfg.targets:
        if target == 'selfsup' and cfg.visual_model is not None:
            from av_perception.rotation.estimate import VisualRotation
            partner = VisualRotation(cfg.visual_model)
            yaw = np.concatenate([partner.estimate_batch(_pair_images(data.grey, p))[:, 0]
                                  for p in np.array_split(data.pairs,
                                                          max(1, len(data.pairs) // 256))])
            result.visual[target] = VisualResult(Path(cfg.visual_model),
                                                 given=partner.model.model_id)
            teacher = partner.model.model_id
        else:
            res, vis = _train_visual(data, val, spec, target, out_dir, cfg, fingerprint_data,
                                     progress)
            result.visual[target] = res
            if target == 'labels':
                continue
            with torch.no_grad():
                yaw = rotation_outputs(vis, torch.from_numpy(data.pairs),
                                       torch.from_numpy(data.grey))[:, 0].numpy()
            teacher = 'rotation-visual-selfsup (trained with it)'
        from av_perception.train.motion import train_from_views
        result.binaural = train_from_views(
            bags, pairs, yaw, out_dir / FILES['selfsup'][1], teacher,
            MotionConfig(epochs=cfg.binaural_epochs, seed=cfg.seed, sign=cfg.binaural_sign,
                         refine_epochs=cfg.refine_epochs, refine_rounds=cfg.refine_rounds,
                         refine_members=cfg.refine_members,
                         onset_history=cfg.binaural_onset_history),
            progress=progress, array=cfg.binaural_array)
    return result


def _pair_images(grey: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    return np.stack([grey[pairs[:, 0]], grey[pairs[:, 1]]], 1)


def _train_visual(data: Data, val: np.ndarray, spec: RotationSpec, target: str, out_dir: Path,
                  cfg: RotationConfig, fingerprint_data: list,
                  progress: TextIO) -> tuple[VisualResult, torch.nn.Module]:
    """One visual network (``target``): trained, its sign fixed, exported;
    returns its result and the network."""
    import torch
    torch.manual_seed(cfg.seed)
    vis = make_visual(spec)
    opt = torch.optim.AdamW(vis.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = visual_schedule(opt, cfg.lr, cfg.epochs)
    ck = Checkpoints(out_dir / 'rotation_checkpoints' / target,
                     fingerprint(*fingerprint_data, target, cfg.epochs, cfg.batch, cfg.lr,
                                 cfg.seed, spec.to_metadata()), progress)
    loop = EpochLoop(f'train {target} visual', ck, vis, opt, sched, cfg.epochs, progress)
    rng = loop.rng(cfg.seed)
    tr_idx, va_idx = np.flatnonzero(~val), np.flatnonzero(val)
    tensors = Tensors(torch.from_numpy(data.grey), torch.from_numpy(data.pairs),
                      torch.from_numpy(data.yaw))
    # the frames of the training and validation rooms (the pretext task's material)
    tr_views, va_views = np.unique(data.pairs[tr_idx]), np.unique(data.pairs[va_idx])
    val_synth = None
    if target == 'selfsup':
        val_synth = [torch.from_numpy(a) for a in synthetic_pairs(
            data.grey[va_views], spec, np.random.default_rng(123))]
    batch = cfg.batch

    def epoch(_: int) -> EpochResult:
        synth = None
        if target == 'selfsup':
            synth = [torch.from_numpy(a) for a in synthetic_pairs(data.grey[tr_views], spec, rng)]
        vis.train()
        perm = rng.permutation(tr_idx)
        steps = len(tr_views) if target == 'selfsup' else len(perm)

        def loss_at(i: int) -> torch.Tensor:
            terms = _visual_losses(vis, tensors, torch.from_numpy(perm[i % len(perm):][:batch]),
                                   target, rng, synth)
            return sum(WEIGHTS[k] * v for k, v in terms.items())

        loss = batch_pass(opt, steps, batch, loss_at, clip=(list(vis.parameters()), 5.0))
        sched.step()
        vis.eval()
        with torch.no_grad():   # the same swaps and mirrors every epoch
            vterms = _visual_losses(vis, tensors, torch.from_numpy(va_idx), target,
                                    np.random.default_rng(123), val_synth)
        return EpochResult(loss, float(sum(WEIGHTS[k] * v for k, v in vterms.items())))

    fit = loop.run(epoch, f'visual loss ({target})', log=True)
    vis.eval()
    sign_note = 'labels'
    if target == 'selfsup':
        sign_note = fix_sign(vis, data, va_idx, tensors, scale=cfg.scale_from_labels)
    with torch.no_grad():
        out = rotation_outputs(vis, tensors.pairs[va_idx], tensors.grey).numpy()
    err = np.degrees(np.abs(out[:, 0] - data.yaw[va_idx]))
    spread = float(np.median(out[:, 1])) if len(out) else 0.0
    meta = {'training': target, 'train_pairs': str(int((~val).sum())),
            'train_bags': str(data.n_bags), 'sign': sign_note,
            'spread_floor_rad': f'{SPREAD_FLOOR_RAD:.6f}', **data.provenance}
    path = out_dir / FILES[target][0]
    export_visual(vis, spec, path, meta)
    return VisualResult(path, fit=fit, sign=sign_note,
                        val_median_yaw_error_deg=round(float(np.median(err)), 2),
                        val_median_spread_deg=round(math.degrees(spread), 2)), vis


def fix_sign(vis: torch.nn.Module, data: Data, va_idx: np.ndarray, tensors: Tensors,
             scale: bool = True) -> str:
    """The visual yaw's global sign, and (``scale``) its scale, from a
    handful of labelled validation pairs: the first SIGN_PAIRS of them vote
    for its sign, as the paper does; with ``scale``, the same pairs also give
    its scale: the median of true / estimated yaw over those of them that
    turned by more than 5 deg and agree in sign. The pretext task teaches
    the turn of a camera turning about its own centre; a robot's camera
    sits ahead of the turning axis (0.10 m on the simulated robot), so a
    turn also moves it sideways and near things shift a few percent more
    than the turn (parallax), which no label-free signal here measures. It
    is one number, like a gyro's scale factor; a robot can take it from a
    few commanded turns. (The binaural network's sign and scale are fixed
    by its own labelled views: ``motion_sign.sign_and_scale``.)"""
    import torch
    idx = va_idx[:SIGN_PAIRS]
    with torch.no_grad():
        r = rotation_outputs(vis, tensors.pairs[idx], tensors.grey)[:, 0].numpy()
    truth = data.yaw[idx]
    agree = float(np.sum(r * truth))
    if agree < 0:
        vis.sign.mul_(-1.0)
        r = -r
    note_scale = ''
    if scale:
        ok = (np.abs(truth) > math.radians(5.0)) & (np.sign(r) == np.sign(truth))
        if ok.sum() >= 3:
            k = float(np.median(truth[ok] / r[ok]))
            with torch.no_grad():
                vis.scale.mul_(k)
            note_scale = f', visual scale x{k:.4f} by {int(ok.sum())} of them'
    return (f'visual {"flipped" if agree < 0 else "kept"} by {len(idx)} labelled validation '
            f'pairs{note_scale}')
