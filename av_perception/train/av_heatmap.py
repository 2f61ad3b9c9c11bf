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

import math
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np

from av_perception.arrays import load_array
from av_perception.av_heatmap.dataset import NEEDS, load_samples
from av_perception.av_heatmap.evaluate import HFOV_TOLERANCE_DEG
from av_perception.av_heatmap.frontend import AvSpec, audio_features, image_input, spec_for_array
from av_perception.av_heatmap.heatmap import fused_score
from av_perception.av_heatmap.metrics import retrieval
from av_perception.av_heatmap.networks import AvModel
from av_perception.av_heatmap.projection import AcousticImage, AcousticProjector, elevation_prior
from av_perception.bag.contents import CAMERA_INFO, check_fov, each_bag, first_camera, list_bags
from av_perception.errors import ConfigError, InputError
from av_perception.train.checkpoints import Checkpoints, fingerprint

#: audio crop offsets inside a sample's span [samples]: augmented views
OFFSETS = (0, 1600)
TAU_LOC = 0.03
TAU_GLOBAL = 0.07
K_NEIGHBOURS = 5
#: an anchor's projected acoustic image must reach this in the view
IN_VIEW = 0.8
#: weight of the acoustic-image distillation term
WHERE_WEIGHT = 1.0


def mirror_order(spec: AvSpec) -> np.ndarray:
    """Channel order that mirrors the array about its x-z plane (y -> -y)."""
    from av_perception.train.direction import symmetries
    ops = symmetries(load_array(spec.array))
    for order, fn in ops:
        if abs(fn(0.5) + 0.5) < 1e-9 and abs(fn(math.pi / 2) + math.pi / 2) < 1e-9:
            return order
    raise ConfigError(f'array {spec.array} has no left-right mirror symmetry')


def _flips(spec: AvSpec) -> tuple[bool, ...]:
    """Mirrored audio variants: only pair features change with the mirror
    (the spectrogram of the channels' mean does not)."""
    return (False, True) if spec.pair_features else (False,)


def _bag_arrays(args) -> dict:
    path, bag_index, spec, namespace = args
    span = spec.window + max(OFFSETS)
    samples = load_samples(path, spec.window, bag_index, namespace, span=span,
                           geometry=load_array(spec.array))
    mirror = mirror_order(spec) if spec.pair_features else None
    imager = AcousticImage(load_array(spec.array)) if spec.acoustic else None
    projectors: dict = {}
    images, specs, pairs, teachers, priors = [], [], [], [], []
    for s in samples:
        images.append(np.round(image_input(s.rgb, spec) * 255).astype(np.uint8))
        vs, vp = [], []
        for flip in _flips(spec):
            for off in OFFSETS:
                seg = s.audio[:, off:off + spec.window]
                sp, pr = audio_features(seg[mirror] if flip else seg, spec)
                vs.append(sp)
                vp.append(pr)
        specs.append(np.stack(vs))
        pairs.append(np.stack(vp))
        if imager is not None:
            if s.view is None:
                raise ConfigError(f'{path}: no camera/camera_info, or no transform from the '
                                  'array frame to the camera optical frame on /tf_static or '
                                  '/tf: the acoustic image cannot be projected')
            key = (s.view.K.tobytes(), s.view.array_from_optical)
            if key not in projectors:
                projectors[key] = (AcousticProjector(s.view, imager.directions,
                                                     (spec.grid, spec.grid)),
                                   elevation_prior(s.view, (spec.grid, spec.grid),
                                                   spec.prior_sigma) if spec.prior_sigma
                                   else np.ones((spec.grid, spec.grid), np.float32))
            projector, prior = projectors[key]
            teachers.append(projector.project(imager(s.audio)).astype(np.float16))
            priors.append(prior.astype(np.float16))
    n = len(samples)
    out = {'image': np.stack(images) if n else np.zeros((0, 3, spec.image_size,
                                                        spec.image_size), np.uint8),
           'spec': np.stack(specs) if n else None, 'bag': np.full(n, bag_index)}
    if spec.pair_features:
        out['pair'] = np.stack(pairs) if n else None
    if imager is not None:
        out['teacher'] = np.stack(teachers) if n else None
        out['prior'] = np.stack(priors) if n else None
    return out


def build_data(bags: list[Path], spec: AvSpec, jobs: int = 0, progress=sys.stderr,
               namespace: str = '') -> dict:
    """Images (uint8), audio features of every view variant, the projected
    acoustic image at the grid's resolution (fused models), bag index; in
    parallel over bags. No ground-truth topic is read. A bag none of whose
    images the audio stream covers is reported."""
    todo = [(str(b), i, spec, namespace) for i, b in enumerate(bags)]
    parts = []
    ctx = mp.get_context('spawn')
    with ctx.Pool(jobs or mp.cpu_count()) as pool:
        for i, part in enumerate(pool.imap(_bag_arrays, todo)):
            if len(part['bag']):
                parts.append(part)
            else:
                print(f'\nwarning: bag {bags[i]} gives no sample: audio/raw covers none of its '
                      'images', file=progress, flush=True)
            print(f'\r[dataset] {i + 1}/{len(bags)} bags, '
                  f'{sum(len(p["bag"]) for p in parts)} samples', end='', file=progress,
                  flush=True)
    print(file=progress)
    if not parts:
        raise InputError('bags', 'images with audio/raw covering their window',
                         f'none in {len(bags)} bags')
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _bag_azimuths(args) -> np.ndarray:
    path, bag_index, spec, namespace = args
    from av_perception.direction.classic import ClassicDoa
    srp = ClassicDoa(load_array(spec.array), 'srp')
    out = []
    for s in load_samples(path, spec.window, bag_index, namespace,
                          span=spec.window + max(OFFSETS)):
        est = srp.estimate(s.audio[:, :spec.window], 1)
        out.append(est[0].azimuth if est else np.nan)
    return np.asarray(out, float)


def array_azimuths(bags: list[Path], spec: AvSpec, jobs: int = 0,
                   namespace: str = '') -> np.ndarray:
    """The array's own SRP-PHAT direction [rad] of every sample's window (no
    ground truth): where the robot hears the sound from."""
    ctx = mp.get_context('spawn')
    with ctx.Pool(jobs or mp.cpu_count()) as pool:
        parts = pool.map(_bag_azimuths, [(str(b), i, spec, namespace)
                                         for i, b in enumerate(bags)])
    return np.concatenate(parts)


# ------------------------------------------------------------------ loss
def multi_positive_nce(sim, pos):
    """Contrastive loss with several positives per anchor, both directions:
    mean over each row's (and column's) positives of the log-softmax."""
    import torch
    loss = 0.0
    for s, p in ((sim, pos), (sim.t(), pos.t())):
        logp = torch.log_softmax(s, dim=1)
        loss = loss + (-(logp * p).sum(1) / p.sum(1)).mean()
    return loss / 2


def loc_similarity(a, cells, teacher=None, spec: AvSpec | None = None):
    """(N, D) audio, (N, D, G, G) cells -> (N, N): for every audio/image
    combination the best cell's cosine similarity, or (``teacher`` (N, G, G),
    each image's geometric map: projected acoustic image x horizon prior) its
    fused score with the image's geometric map (``spec``'s weight and floor)."""
    import torch
    cos = torch.einsum('id,jdhw->ijhw', a, cells)
    if teacher is not None:
        cos = fused_score(cos, teacher[None], spec.fusion_weight, spec.fusion_floor)
    return cos.flatten(2).max(dim=2).values


def where_loss(a, cells, teacher, weight):
    """Acoustic-image distillation: ``-log sum_g p(g) A(g)`` with ``p`` the
    softmax over an image's cells of its own audio's cosine / TAU_LOC and
    ``A`` its projected acoustic image; mean over images, weighted by
    ``weight`` (N,)."""
    import torch
    cos = torch.einsum('id,idhw->ihw', a, cells).flatten(1)
    p = torch.softmax(cos / TAU_LOC, dim=1)
    inside = (p * teacher.flatten(1)).sum(1).clamp_min(1e-6)
    return -(weight * inside.log()).sum() / weight.sum().clamp_min(1e-6)


def _augment(images, flips, rng):
    """uint8 (N, 3, S, S) -> float views: flip, colour jitter. (Shifts would
    move the image against its acoustic image and the array's pair
    features, whose directions are fixed to the camera.)"""
    import torch
    x = torch.from_numpy(images).float() / 255.0
    x = torch.where(torch.from_numpy(flips)[:, None, None, None], x.flip(3), x)
    n = len(x)
    gain = torch.from_numpy(rng.uniform(0.8, 1.2, (n, 3, 1, 1)).astype(np.float32))
    bias = torch.from_numpy(rng.uniform(-0.08, 0.08, (n, 1, 1, 1)).astype(np.float32))
    return (x * gain + bias).clamp(0, 1)


def _views(data, idx, rng, plain: bool):
    """Inputs of one view per index: image, spectrogram, pair features (or
    None), projected acoustic image and horizon prior (or None), each of the
    same variant (crop; mirror: image, acoustic image, prior and the array's
    channels)."""
    import torch
    n_off = len(OFFSETS)
    flips = np.zeros(len(idx), bool) if plain else rng.random(len(idx)) < 0.5
    offs = np.zeros(len(idx), int) if plain else rng.integers(0, n_off, len(idx))
    var = (flips * n_off if 'pair' in data else 0) + offs
    img = torch.from_numpy(data['image'][idx]).float() / 255.0 if plain else \
        _augment(data['image'][idx], flips, rng)
    pair = torch.from_numpy(data['pair'][idx, var]) if 'pair' in data else None
    teacher = prior = None
    if 'teacher' in data:
        flip = torch.from_numpy(flips)[:, None, None]
        t = torch.from_numpy(data['teacher'][idx].astype(np.float32))
        teacher = torch.where(flip, t.flip(2), t)
        p = torch.from_numpy(data['prior'][idx].astype(np.float32))
        prior = torch.where(flip, p.flip(2), p)
    return img, torch.from_numpy(data['spec'][idx, var]), pair, teacher, prior


def spectral_profiles(spec: np.ndarray) -> np.ndarray:
    """A fixed, label-free audio embedding to start the neighbour search
    with (before the model's own embeddings mean anything): the time-averaged
    log spectrogram without its level, standardised over the data set, unit
    length. (N, V, 1, bands, frames) -> (N, bands)."""
    f = spec[:, 0, 0].mean(axis=2)  # variant 0: the plain window
    f = f - f.mean(axis=1, keepdims=True)
    f = (f - f.mean(axis=0)) / (f.std(axis=0) + 1e-6)
    return (f / np.linalg.norm(f, axis=1, keepdims=True)).astype(np.float32)


def _neighbours(bank_a, bank_v, bags, k: int) -> np.ndarray:
    """(N, 2k) indices of each sample's k nearest neighbours by audio and by
    image embedding (``bank_v`` None: audio only), from other rooms."""
    out = []
    for bank in (bank_a, bank_v) if bank_v is not None else (bank_a,):
        s = bank @ bank.T
        s[bags[:, None] == bags[None, :]] = -np.inf
        out.append(np.argsort(-s, axis=1)[:, :k])
    return np.concatenate(out, axis=1)


def train(bags_dir: str | Path, out: str | Path, extra_positives: bool = True,
          epochs: int = 25, batch: int = 64, lr: float = 1e-3, seed: int = 0, jobs: int = 0,
          warmup: int | None = None, in_view_deg: float | None = None, acoustic: bool = True,
          threads: int = 1, data_note: str | None = None, progress=sys.stderr,
          array: str = 'respeaker4', namespace: str = '',
          hfov_tolerance: float = HFOV_TOLERANCE_DEG) -> dict:
    """Train, checkpoint each epoch (resumable), export the last epoch's
    weights to ONNX; returns a summary.

    ``acoustic``: a fused model, taught by the projected acoustic image
    (module docstring); else the audio-visual model alone (the paper's).
    ``in_view_deg`` (models alone): train only on samples whose sound the
    array itself (SRP-PHAT, no ground truth) hears within this azimuth of the
    camera's axis. ``threads``: PyTorch intra-op threads. ``data_note``:
    what the bags are (stored in the model's metadata; default their folders).

    ``array``: the microphone array (name or file) whose stream (audio/raw)
    the bags carry. The model is made for the field of view of the first
    bag's camera (camera/camera_info; in its metadata, ``hfov_deg``); a bag
    whose camera differs by more than ``hfov_tolerance`` [deg], or that
    lacks a topic, is reported and left out.
    """
    import torch

    torch.set_num_threads(max(1, int(threads)))
    out = Path(out)
    spec = spec_for_array(load_array(array), acoustic=acoustic)
    folders = [bags_dir] if isinstance(bags_dir, (str, Path)) else list(bags_dir)
    found = list_bags(*folders)
    camera = first_camera(found, namespace)
    bags = [b for b, _ in each_bag(
        found, lambda b: check_fov(first_camera([b], namespace), camera.hfov_deg, hfov_tolerance,
                                   b, "the first bag's camera"),
        (*NEEDS, CAMERA_INFO), namespace, 'av-heatmap training', progress)]
    ckpt_dir = out.parent / f'{out.stem}_checkpoints'
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    data_key = fingerprint([str(b) for b in bags], spec.to_metadata(), list(OFFSETS))[:16]
    cache = ckpt_dir / f'data_{data_key}.npz'
    if cache.is_file():
        data = dict(np.load(cache))
        print(f'[dataset] {len(data["bag"])} samples from {cache}', file=progress)
    else:
        data = build_data(bags, spec, jobs=jobs, progress=progress, namespace=namespace)
        np.savez(cache, **data)
    n = len(data['bag'])
    n_val_bags = max(1, len(bags) // 10)
    val = data['bag'] >= len(bags) - n_val_bags
    tr_idx, va_idx = np.flatnonzero(~val), np.flatnonzero(val)
    in_view = None
    if acoustic:  # anchors: the array hears the sound from inside the view
        in_view = data['teacher'].reshape(n, -1).max(axis=1).astype(np.float32)
        tr_idx, va_idx = tr_idx[in_view[tr_idx] >= IN_VIEW], va_idx[in_view[va_idx] >= IN_VIEW]
        print(f'[train] {len(tr_idx)} of {int((~val).sum())} training samples heard from '
              f'inside the view (projected acoustic image >= {IN_VIEW:g})', file=progress)
    elif in_view_deg is not None:
        az_cache = ckpt_dir / f'azimuth_{data_key}.npy'
        if az_cache.is_file():
            az = np.load(az_cache)
        else:
            az = array_azimuths(bags, spec, jobs, namespace)
            np.save(az_cache, az)
        tr_idx = tr_idx[np.abs(np.degrees(az[tr_idx])) <= in_view_deg]
        print(f'[train] {len(tr_idx)} training samples heard within {in_view_deg:g} deg of the '
              f'camera axis', file=progress)
    if len(tr_idx) < 4 * batch:
        raise ConfigError(f'only {len(tr_idx)} training samples in {len(bags)} bags; need at '
                          f'least {4 * batch}')
    warmup = epochs // 4 if warmup is None else warmup

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = AvModel(spec)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    ck = Checkpoints(ckpt_dir, fingerprint(data_key, extra_positives, epochs, batch, lr, seed,
                                           warmup, in_view_deg, acoustic, IN_VIEW,
                                           WHERE_WEIGHT), progress)
    bank_a = np.zeros((n, 64), np.float32)
    bank_v = np.zeros((n, 64), np.float32)
    start_epoch = ck.resume(model, opt, sched)
    if start_epoch:
        bank_a, bank_v = ck.extra['bank_a'].numpy(), ck.extra['bank_v'].numpy()
        rng = np.random.default_rng([seed, start_epoch])
    profiles = spectral_profiles(data['spec'])
    t0 = time.perf_counter()
    half = batch // 2
    for epoch in range(start_epoch, epochs):
        model.train()
        nn_idx = None
        if extra_positives:  # neighbours among the training samples
            if epoch < warmup:  # the model's embeddings are not there yet
                local = _neighbours(profiles[tr_idx], None, data['bag'][tr_idx], K_NEIGHBOURS)
            else:
                local = _neighbours(bank_a[tr_idx], bank_v[tr_idx], data['bag'][tr_idx],
                                    K_NEIGHBOURS)
            nn_idx = np.zeros((n, local.shape[1]), int)
            nn_idx[tr_idx] = tr_idx[local]
        perm = rng.permutation(tr_idx)
        losses = []
        step = half if extra_positives else batch
        for i in range(0, len(perm) - step + 1, step):
            anchors = perm[i:i + step]
            if extra_positives:
                partners = nn_idx[anchors, rng.integers(0, nn_idx.shape[1], len(anchors))]
                idx = np.concatenate([anchors, partners])
                groups = np.concatenate([np.arange(len(anchors)), np.arange(len(anchors))])
                v1, v2 = _views(data, idx, rng, False), _views(data, idx, rng, False)
                inputs = [None if a is None else torch.cat([a, b]) for a, b in zip(v1, v2)]
                sample = np.concatenate([idx, idx])
                group = np.concatenate([groups, groups])
            else:
                inputs = _views(data, anchors, rng, False)
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
        row = {'epoch': epoch + 1,
               **{f'train_{k}': float(np.mean([x[k] for x in losses]))
                  for k in losses[0]},
               **_validate(model, spec, data, va_idx, in_view)}
        row['train_loss'] = row.pop('train_total')
        # no best epoch: the last one is exported (below)
        ck.save(model, opt, sched, epoch + 1, row, comparable=lambda e: False,
                extra={'bank_a': torch.from_numpy(bank_a), 'bank_v': torch.from_numpy(bank_v)})
        where = f' where {row["val_where"]:.2f}' if 'val_where' in row else ''
        print(f'\r[train] epoch {epoch + 1}/{epochs} train {row["train_loss"]:.3f} '
              f'val {row["val_loss"]:.3f}{where} val R@1 a2i {row["val_r1_a2i"]:.2f} '
              f'({time.perf_counter() - t0:.0f} s)', end='', file=progress, flush=True)
    print(file=progress)
    _plot_curve(ck.curve, ckpt_dir / 'curve.png')
    # the weights of the last epoch (the end of the cosine schedule): the
    # validation loss is no guide here, it rises from the first epochs on
    # (over-confident similarities on unseen rooms) while localization on
    # held-out rooms still improves
    ck.last(model)
    note = data_note or ', '.join(str(Path(f).resolve().name) for f in folders)
    export(model, spec, out, extra_positives=extra_positives, n_train=len(tr_idx),
           n_bags=len(bags), in_view_deg=in_view_deg, data_note=note, samples=n,
           hfov_deg=camera.hfov_deg)
    return {'model': str(out), 'samples': n, 'anchors': len(tr_idx), 'bags': len(bags),
            'epochs': len(ck.curve), 'final': ck.curve[-1] if ck.curve else None,
            'curve': str(ckpt_dir / 'curve.png'), 'seconds': round(time.perf_counter() - t0, 1)}


def _loss(model, spec: AvSpec, inputs, group, in_view, sample) -> dict:
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


def _validate(model, spec: AvSpec, data, idx, in_view) -> dict:
    """Self-supervised losses (single positive, un-augmented views; as in
    training) and retrieval on the validation rooms; no labels are used."""
    import torch
    model.eval()
    with torch.no_grad():
        loss = _loss(model, spec, _views(data, idx, None, True), np.arange(len(idx)), in_view,
                     idx)
    r = retrieval(loss['ga'].numpy(), loss['gv'].numpy())
    model.train()
    out = {'val_loss': float(loss['total']), 'val_r1_a2i': r['r1_a2i'],
           'val_r1_i2a': r['r1_i2a']}
    if 'where' in loss:
        out['val_where'] = float(loss['where'])
    return out


def _plot_curve(curve: list, path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(8, 3))
    ep = [c['epoch'] for c in curve]
    ax.plot(ep, [c['train_loss'] for c in curve], label='train (both losses)')
    ax.plot(ep, [c['val_loss'] for c in curve], label='validation (both losses)')
    ax.set_xlabel('epoch')
    ax.set_ylabel('contrastive loss')
    ax.legend()
    bx.plot(ep, [c['val_r1_a2i'] for c in curve], label='R@1 audio->image')
    bx.plot(ep, [c['val_r1_i2a'] for c in curve], label='R@1 image->audio')
    bx.set_xlabel('epoch')
    bx.set_ylabel('validation retrieval')
    bx.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def export(model, spec: AvSpec, out: Path, extra_positives: bool, n_train: int,
           n_bags: int, in_view_deg: float | None = None, data_note: str = '',
           samples: int = 0, hfov_deg: float | None = None) -> None:
    """ONNX (opset 17) with the input contract, what it was trained on and
    ``hfov_deg`` (the training camera's field of view [deg]) in its
    metadata. Inputs: ``image`` (B, 3, S, S) in [0, 1], ``spectrogram``
    (B, 1, bands, frames), ``pair_features`` (B, n; only if the contract's
    ``pair_features``); outputs: ``cosine`` (B, G, G), the audio's and the
    image's global embeddings (unit vectors)."""
    import onnx
    import torch

    model.eval()
    args = (torch.zeros(1, 3, spec.image_size, spec.image_size),
            torch.zeros(1, 1, spec.bands, spec.frames))
    names = ['image', 'spectrogram']
    if spec.pair_features:
        args += (torch.zeros(1, spec.gcc.n_features),)
        names.append('pair_features')
    out.parent.mkdir(parents=True, exist_ok=True)
    outs = ['cosine', 'audio_embedding', 'image_embedding']
    torch.onnx.export(model, args, str(out), input_names=names, output_names=outs,
                      dynamic_axes={k: {0: 'batch'} for k in names + outs},
                      opset_version=17, dynamo=False)
    m = onnx.load(str(out))
    variant = ('fused' if spec.acoustic else 'alone') + '-' + \
        ('multi-positive' if extra_positives else 'single-positive')
    meta = {'task': 'av_heatmap', 'model_id': f'av_heatmap-{spec.array}-{variant}',
            'extra_positives': str(extra_positives), 'train_samples': str(n_train),
            'train_all_samples': str(samples), 'train_bags': str(n_bags),
            'train_in_view_deg': str(in_view_deg), 'train_data': data_note,
            **({'hfov_deg': f'{hfov_deg:.2f}'} if hfov_deg is not None else {}),
            **spec.to_metadata()}
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(m, str(out))
