"""Training of the audio-visual localization model (PyTorch, from scratch,
self-supervised: no label, mask or ground-truth topic is used; a robot's
bags with the array, the camera, its CameraInfo and TF are enough).

Fused models (``AvSpec.acoustic``, the default): the array's acoustic image
(SRP-PHAT over the sample's audio span), projected into the image through
the bag's own CameraInfo and /tf_static (:mod:`av_perception.av_heatmap.projection`,
at the grid's resolution), is the teacher of *where*; the cross-modal
alignment below teaches *what*:

- only samples whose acoustic image reaches into the view (its projection's
  maximum >= ``IN_VIEW``: the array hears the sound from inside the camera's
  field of view) are anchors; every sample is a negative;
- localization alignment: an audio matches an image by the best cell of
  ``cos(audio, cell) + w * log(A_image + floor)`` (the fused score of
  :func:`~av_perception.av_heatmap.heatmap.fused_score`, ``A_image`` the image's own
  projected acoustic image times the horizon prior, as the node fuses
  them): what sounds where the image's sound comes from;
- acoustic-image distillation: within each anchor, the softmax over cells
  of ``cos(audio, cell) / TAU_LOC`` (the audio-visual map alone) must put
  its mass where the acoustic image is (``-log sum p * A``): the network
  learns to find, among the things along the sound's direction, the one
  that looks like what is heard, and the rows a planar array cannot give.

Audio-visual models alone (``acoustic=False``), as the paper:

As in Sound Source Localization is All About Cross-Modal Alignment: the
audio embedding must match the image cells of the object that sounds
(localization: multiple-instance similarity, the best-matching cell, with
temperature 0.03) and, in a separate projection, the whole image (global
alignment); both through a contrastive loss with multiple positives:

- augmented views of the same pair (time crops of the audio window, colour
  jitter and shifts of the image, and the exact left-right mirror: the image
  flipped with the array's channels reordered by its mirror symmetry, which
  holds because camera and array sit on the robot's x axis);
- conceptually similar samples: each batch pairs every anchor with one of
  its k nearest neighbours (from other rooms) in embedding space, mined over
  the whole training set before every epoch: in the model's own audio and
  image global embeddings after a warm-up, and during the warm-up in a
  fixed label-free audio embedding (the level-free time-averaged log
  spectrogram), where sounds of a kind already cluster.

Both keep the multiple positives below. ``extra_positives=False`` is the
ablation: one view per sample and its own pair as the only positive (plain
InfoNCE), otherwise the same.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from av_perception.arrays import load_array
from av_perception.av_heatmap.dataset import NEEDS
from av_perception.av_heatmap.evaluate import HFOV_TOLERANCE_DEG
from av_perception.av_heatmap.frontend import AvSpec, spec_for_array
from av_perception.av_heatmap.heatmap import fused_score
from av_perception.av_heatmap.metrics import retrieval
from av_perception.av_heatmap.projection import ACOUSTIC_IMAGE_ID
from av_perception.bag.contents import CAMERA_INFO, check_fov, each_bag, first_camera, list_bags
from av_perception.bag.provenance import randomization
from av_perception.errors import ConfigError
from av_perception.train.av_heatmap_data import (IN_VIEW, OFFSETS, anchors, cached_data,
                                                 neighbours, sample_views, spectral_profiles)
from av_perception.train.checkpoints import Checkpoints, fingerprint
from av_perception.train.export import export_onnx
from av_perception.train.loop import EpochLoop, EpochResult, Fit, check_optimisation

if TYPE_CHECKING:
    import torch

    from av_perception.av_heatmap.networks import AvModel

TAU_LOC = 0.03
TAU_GLOBAL = 0.07
K_NEIGHBOURS = 5
#: weight of the acoustic-image distillation term
WHERE_WEIGHT = 1.0


# ------------------------------------------------------------------ loss
def multi_positive_nce(sim: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Contrastive loss with several positives per anchor, both directions:
    mean over each row's (and column's) positives of the log-softmax."""
    import torch
    loss = 0.0
    for s, p in ((sim, pos), (sim.t(), pos.t())):
        logp = torch.log_softmax(s, dim=1)
        loss = loss + (-(logp * p).sum(1) / p.sum(1)).mean()
    return loss / 2


def loc_similarity(a: torch.Tensor, cells: torch.Tensor, teacher: torch.Tensor | None = None,
                   spec: AvSpec | None = None) -> torch.Tensor:
    """(N, D) audio, (N, D, G, G) cells -> (N, N): for every audio/image
    combination the best cell's cosine similarity, or (``teacher`` (N, G, G),
    each image's geometric map: projected acoustic image x horizon prior) its
    fused score with the image's geometric map (``spec``'s weight and floor)."""
    import torch
    cos = torch.einsum('id,jdhw->ijhw', a, cells)
    if teacher is not None:
        cos = fused_score(cos, teacher[None], spec.fusion_weight, spec.fusion_floor)
    return cos.flatten(2).max(dim=2).values


def where_loss(a: torch.Tensor, cells: torch.Tensor, teacher: torch.Tensor,
               weight: torch.Tensor) -> torch.Tensor:
    """Acoustic-image distillation: ``-log sum_g p(g) A(g)`` with ``p`` the
    softmax over an image's cells of its own audio's cosine / TAU_LOC and
    ``A`` its projected acoustic image; mean over images, weighted by
    ``weight`` (N,)."""
    import torch
    cos = torch.einsum('id,idhw->ihw', a, cells).flatten(1)
    p = torch.softmax(cos / TAU_LOC, dim=1)
    inside = (p * teacher.flatten(1)).sum(1).clamp_min(1e-6)
    return -(weight * inside.log()).sum() / weight.sum().clamp_min(1e-6)


@dataclass
class AvHeatmapConfig:
    """What ``train av-heatmap`` trains and how.

    Attributes:
        extra_positives: multiple positives (augmented views and mined
            neighbours); False: plain InfoNCE (the ablation).
        epochs, batch, lr, seed: the optimisation (AdamW, cosine schedule).
        jobs: processes that read the bags (0: one per core).
        warmup: epochs that mine neighbours in the fixed spectral embedding
            (None: a quarter of the epochs).
        in_view_deg: (models alone) train only on samples the array's
            SRP-PHAT hears within this azimuth of the camera axis.
        acoustic: a fused model taught by the projected acoustic image;
            False: the audio-visual model alone (the paper's).
        threads: PyTorch intra-op threads.
        data_note: what the bags are (in the model's metadata; None: their
            folders' names).
        array: the microphone array (name or file) of the bags' audio/raw.
        namespace: the robot's topic namespace in the bags.
        hfov_tolerance: a bag whose camera's field of view differs from the
            first bag's by more than this [deg] is left out.
    """

    extra_positives: bool = True
    epochs: int = 25
    batch: int = 64
    lr: float = 1e-3
    seed: int = 0
    jobs: int = 0
    warmup: int | None = None
    in_view_deg: float | None = None
    acoustic: bool = True
    threads: int = 1
    data_note: str | None = None
    array: str = 'respeaker4'
    namespace: str = ''
    hfov_tolerance: float = HFOV_TOLERANCE_DEG

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ConfigError(f'--threads must be at least 1, got {self.threads}')
        if self.in_view_deg is not None and self.acoustic:
            raise ConfigError('--in-view selects samples for --alone; a fused model selects '
                              'them by its projected acoustic image')
        check_optimisation(self.epochs, self.batch, self.lr, min_batch=2)
        if self.jobs < 0 or (self.warmup is not None and self.warmup < 0):
            raise ConfigError(f'--jobs and warmup must be at least 0; got {self.jobs}, '
                              f'{self.warmup}')


@dataclass
class AvHeatmapResult:
    """A trained audio-visual localization model.

    Attributes:
        model: its ONNX file (the last epoch's weights).
        samples: samples read from the bags; anchors: those it trained on.
        bags: bags used.
        fit: the epochs.
    """

    model: Path
    samples: int
    anchors: int
    bags: int
    fit: Fit


def train(bags_dir: str | Path | list, out: str | Path,
          cfg: AvHeatmapConfig = AvHeatmapConfig(),
          progress: TextIO = sys.stderr) -> AvHeatmapResult:
    """Train, checkpoint each epoch (resumable), export the last epoch's
    weights to ONNX.

    The model is made for the field of view of the first bag's camera
    (camera/camera_info; in its metadata, ``hfov_deg``); a bag whose camera
    differs by more than ``cfg.hfov_tolerance``, or that lacks a topic, is
    reported and left out.
    """
    import torch

    from av_perception.av_heatmap.networks import AvModel

    torch.set_num_threads(cfg.threads)
    out = Path(out)
    spec = spec_for_array(load_array(cfg.array), acoustic=cfg.acoustic)
    folders = [bags_dir] if isinstance(bags_dir, (str, Path)) else list(bags_dir)
    found = list_bags(*folders)
    camera = first_camera(found, cfg.namespace)
    bags = [b for b, _ in each_bag(
        found, lambda b: check_fov(first_camera([b], cfg.namespace), camera.hfov_deg,
                                   cfg.hfov_tolerance, b, "the first bag's camera"),
        (*NEEDS, CAMERA_INFO), cfg.namespace, 'av-heatmap training', progress)]
    ckpt_dir = out.parent / f'{out.stem}_checkpoints'
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    data_key = fingerprint([str(b) for b in bags], spec.to_metadata(), list(OFFSETS),
                           ACOUSTIC_IMAGE_ID if spec.acoustic else None)[:16]
    data = cached_data(ckpt_dir / f'data_{data_key}.npz', bags, spec, cfg.jobs, cfg.namespace,
                       progress)
    n = len(data['bag'])
    tr_idx, va_idx, in_view = anchors(data, bags, spec, cfg.in_view_deg,
                                      ckpt_dir / f'azimuth_{data_key}.npy', jobs=cfg.jobs,
                                      namespace=cfg.namespace, progress=progress)
    if len(tr_idx) < 4 * cfg.batch:
        raise ConfigError(f'only {len(tr_idx)} training samples in {len(bags)} bags; need at '
                          f'least {4 * cfg.batch}')
    warmup = cfg.epochs // 4 if cfg.warmup is None else cfg.warmup

    torch.manual_seed(cfg.seed)
    model = AvModel(spec)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    ck = Checkpoints(ckpt_dir, fingerprint(data_key, cfg.extra_positives, cfg.epochs, cfg.batch,
                                           cfg.lr, cfg.seed, warmup, cfg.in_view_deg,
                                           cfg.acoustic, IN_VIEW, WHERE_WEIGHT), progress)
    loop = EpochLoop('train', ck, model, opt, sched, cfg.epochs, progress)
    rng = loop.rng(cfg.seed)
    # the global embeddings of every sample, as last seen: the neighbour search's bank
    bank_a = np.zeros((n, 64), np.float32)
    bank_v = np.zeros((n, 64), np.float32)
    if loop.start:
        bank_a, bank_v = loop.extra['bank_a'].numpy(), loop.extra['bank_v'].numpy()
    profiles = spectral_profiles(data['spec'])
    step = cfg.batch // 2 if cfg.extra_positives else cfg.batch

    def epoch(e: int) -> EpochResult:
        model.train()
        nn_idx = None
        if cfg.extra_positives:  # neighbours among the training samples
            if e < warmup:  # the model's embeddings are not there yet
                local = neighbours(profiles[tr_idx], None, data['bag'][tr_idx], K_NEIGHBOURS)
            else:
                local = neighbours(bank_a[tr_idx], bank_v[tr_idx], data['bag'][tr_idx],
                                   K_NEIGHBOURS)
            nn_idx = np.zeros((n, local.shape[1]), int)
            nn_idx[tr_idx] = tr_idx[local]
        perm = rng.permutation(tr_idx)
        losses = []
        for i in range(0, len(perm) - step + 1, step):
            anchors = perm[i:i + step]
            if cfg.extra_positives:
                partners = nn_idx[anchors, rng.integers(0, nn_idx.shape[1], len(anchors))]
                idx = np.concatenate([anchors, partners])
                groups = np.concatenate([np.arange(len(anchors)), np.arange(len(anchors))])
                v1, v2 = sample_views(data, idx, rng, False), sample_views(data, idx, rng, False)
                inputs = [None if a is None else torch.cat([a, b]) for a, b in zip(v1, v2)]
                sample = np.concatenate([idx, idx])
                group = np.concatenate([groups, groups])
            else:
                inputs = sample_views(data, anchors, rng, False)
                sample = anchors
                group = np.arange(len(anchors))
            loss = _loss(model, spec, inputs, group, in_view, sample)
            opt.zero_grad()
            loss['total'].backward()
            opt.step()
            losses.append({k: float(v.detach()) for k, v in loss.items() if k not in ('ga', 'gv')})
            bank_a[sample] = loss['ga'].detach().numpy()
            bank_v[sample] = loss['gv'].detach().numpy()
        sched.step()
        terms = {f'train_{k}': float(np.mean([x[k] for x in losses])) for k in losses[0]}
        v = _validate(model, spec, data, va_idx, in_view)
        where = f' where {v["val_where"]:.2f}' if 'val_where' in v else ''
        return EpochResult(terms.pop('train_total'), v.pop('val_loss'), {**terms, **v},
                           f'{where} R@1 a2i {v["val_r1_a2i"]:.2f}')

    # the weights of the last epoch (the end of the cosine schedule): the
    # validation loss is no guide here, it rises from the first epochs on
    # (over-confident similarities on unseen rooms) while localization on
    # held-out rooms still improves
    fit = loop.run(epoch, 'contrastive loss', keep='last', comparable=lambda e: False,
                   extra_state=lambda: {'bank_a': torch.from_numpy(bank_a),
                                        'bank_v': torch.from_numpy(bank_v)},
                   panel=('validation retrieval', {'val_r1_a2i': 'R@1 audio->image',
                                                   'val_r1_i2a': 'R@1 image->audio'}))
    note = cfg.data_note or ', '.join(str(Path(f).resolve().name) for f in folders)
    export(model, spec, out, extra_positives=cfg.extra_positives, n_train=len(tr_idx),
           n_bags=len(bags), in_view_deg=cfg.in_view_deg, data_note=note, samples=n,
           hfov_deg=camera.hfov_deg, extra=randomization(bags))
    return AvHeatmapResult(out, n, len(tr_idx), len(bags), fit)


def _loss(model: AvModel, spec: AvSpec, inputs: Sequence[torch.Tensor | None],
          group: np.ndarray, in_view: np.ndarray | None,
          sample: np.ndarray) -> dict[str, torch.Tensor]:
    """The training losses of one batch: localization alignment, global
    alignment, and (fused models) acoustic-image distillation; also the
    global embeddings (``ga``, ``gv``) for the neighbour bank."""
    import torch
    img, sp, pr, teacher, prior = inputs
    cells, gv = model.image(img)
    a, ga = model.audio(sp, pr)
    g = torch.from_numpy(np.asarray(group))
    pos = (g[:, None] == g[None, :]).float()
    geo = None if teacher is None else teacher * prior
    out = {'loc': multi_positive_nce(loc_similarity(a, cells, geo, spec) / TAU_LOC, pos),
           'global': multi_positive_nce(ga @ gv.t() / TAU_GLOBAL, pos)}
    total = out['loc'] + out['global']
    if teacher is not None:
        weight = torch.from_numpy(in_view[sample])
        out['where'] = where_loss(a, cells, teacher, weight)
        total = total + WHERE_WEIGHT * out['where']
    out.update(total=total, ga=ga, gv=gv)
    return out


def _validate(model: AvModel, spec: AvSpec, data: dict[str, np.ndarray], idx: np.ndarray,
              in_view: np.ndarray | None) -> dict[str, float]:
    """Self-supervised losses (single positive, un-augmented views; as in
    training) and retrieval on the validation rooms; no labels are used."""
    import torch
    model.eval()
    with torch.no_grad():
        loss = _loss(model, spec, sample_views(data, idx, None, True), np.arange(len(idx)),
                     in_view, idx)
    r = retrieval(loss['ga'].numpy(), loss['gv'].numpy())
    model.train()
    out = {'val_loss': float(loss['total']), 'val_r1_a2i': r['r1_a2i'],
           'val_r1_i2a': r['r1_i2a']}
    if 'where' in loss:
        out['val_where'] = float(loss['where'])
    return out


def export(model: AvModel, spec: AvSpec, out: Path, extra_positives: bool, n_train: int,
           n_bags: int, in_view_deg: float | None = None, data_note: str = '',
           samples: int = 0, hfov_deg: float | None = None,
           extra: dict[str, str] | None = None) -> None:
    """ONNX (opset 17) with the input contract, what it was trained on and
    ``hfov_deg`` (the training camera's field of view [deg]) in its
    metadata. Inputs: ``image`` (B, 3, S, S) in [0, 1], ``spectrogram``
    (B, 1, bands, frames), ``pair_features`` (B, n; only if the contract's
    ``pair_features``); outputs: ``cosine`` (B, G, G), the audio's and the
    image's global embeddings (unit vectors)."""
    import torch

    model.eval()
    args = (torch.zeros(1, 3, spec.image_size, spec.image_size),
            torch.zeros(1, 1, spec.bands, spec.frames))
    names = ['image', 'spectrogram']
    if spec.pair_features:
        args += (torch.zeros(1, spec.gcc.n_features),)
        names.append('pair_features')
    variant = ('fused' if spec.acoustic else 'alone') + '-' + \
        ('multi-positive' if extra_positives else 'single-positive')
    meta = {'task': 'av_heatmap', 'model_id': f'av_heatmap-{spec.array}-{variant}',
            'extra_positives': str(extra_positives), 'train_samples': str(n_train),
            'train_all_samples': str(samples), 'train_bags': str(n_bags),
            'train_in_view_deg': str(in_view_deg), 'train_data': data_note,
            **({'hfov_deg': f'{hfov_deg:.2f}'} if hfov_deg is not None else {}),
            **({'acoustic_image': ACOUSTIC_IMAGE_ID} if spec.acoustic else {}),
            **spec.to_metadata(), **(extra or {})}
    export_onnx(model, args, out, names, ['cosine', 'audio_embedding', 'image_embedding'], meta)
