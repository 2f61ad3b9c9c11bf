"""The audio-visual localization model's training data, read from bags
without any ground-truth topic: each sample's image, the audio features of
its augmented views (time crops, the exact left-right mirror), and (fused
models) the array's acoustic image projected into the image through the
bag's CameraInfo and TF. Used by :mod:`av_perception.train.av_heatmap`."""

from __future__ import annotations

import math
import multiprocessing as mp
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from av_perception.arrays import load_array
from av_perception.av_heatmap.dataset import load_samples
from av_perception.av_heatmap.frontend import AvSpec, audio_features, image_input
from av_perception.av_heatmap.projection import AcousticImage, AcousticProjector, elevation_prior
from av_perception.errors import ConfigError, InputError

if TYPE_CHECKING:
    import torch

#: audio crop offsets inside a sample's span [samples]: augmented views
OFFSETS = (0, 1600)
#: an anchor's projected acoustic image must reach this in the view
IN_VIEW = 0.8


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


def _bag_arrays(args: tuple[str, int, AvSpec, str]) -> dict[str, np.ndarray | None]:
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
                                                   spec.prior_sigma, spec.prior_center)
                                   if spec.prior_sigma
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


def build_data(bags: list[Path], spec: AvSpec, jobs: int = 0,
               progress: TextIO = sys.stderr,
               namespace: str = '') -> dict[str, np.ndarray]:
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


def _bag_azimuths(args: tuple[str, int, AvSpec, str]) -> np.ndarray:
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


def augment(images: np.ndarray, flips: np.ndarray,
            rng: np.random.Generator) -> torch.Tensor:
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


def sample_views(data: dict[str, np.ndarray], idx: np.ndarray,
                 rng: np.random.Generator | None, plain: bool
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None,
                            torch.Tensor | None, torch.Tensor | None]:
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
        augment(data['image'][idx], flips, rng)
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


def neighbours(bank_a: np.ndarray, bank_v: np.ndarray | None, bags: np.ndarray,
               k: int) -> np.ndarray:
    """(N, 2k) indices of each sample's k nearest neighbours by audio and by
    image embedding (``bank_v`` None: audio only), from other rooms."""
    out = []
    for bank in (bank_a, bank_v) if bank_v is not None else (bank_a,):
        s = bank @ bank.T
        s[bags[:, None] == bags[None, :]] = -np.inf
        out.append(np.argsort(-s, axis=1)[:, :k])
    return np.concatenate(out, axis=1)


def cached_data(cache: Path, bags: list[Path], spec: AvSpec, jobs: int, namespace: str,
                progress: TextIO) -> dict[str, np.ndarray]:
    """The samples of ``bags`` (:func:`~av_perception.train.av_heatmap_data.build_data`),
    read once and kept in ``cache`` (its name fingerprints the bags and the contract)."""
    if cache.is_file():
        data = dict(np.load(cache))
        print(f'[dataset] {len(data["bag"])} samples from {cache}', file=progress)
        return data
    data = build_data(bags, spec, jobs=jobs, progress=progress, namespace=namespace)
    np.savez(cache, **data)
    return data


def anchors(data: dict[str, np.ndarray], bags: list[Path], spec: AvSpec,
            in_view_deg: float | None, azimuth_cache: Path, *, jobs: int, namespace: str,
            progress: TextIO) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The training and validation samples (the last tenth of the bags
    validate) that serve as anchors, and (fused models) each sample's
    in-view score: the maximum of its projected acoustic image. Fused: the
    samples the array hears from inside the view; alone, with
    ``in_view_deg``: the training samples whose SRP-PHAT azimuth (kept in
    ``azimuth_cache``) is within it of the camera axis."""
    n = len(data['bag'])
    n_val_bags = max(1, len(bags) // 10)
    val = data['bag'] >= len(bags) - n_val_bags
    tr_idx, va_idx = np.flatnonzero(~val), np.flatnonzero(val)
    in_view = None
    if spec.acoustic:  # anchors: the array hears the sound from inside the view
        in_view = data['teacher'].reshape(n, -1).max(axis=1).astype(np.float32)
        tr_idx, va_idx = tr_idx[in_view[tr_idx] >= IN_VIEW], va_idx[in_view[va_idx] >= IN_VIEW]
        print(f'[train] {len(tr_idx)} of {int((~val).sum())} training samples heard from '
              f'inside the view (projected acoustic image >= {IN_VIEW:g})', file=progress)
    elif in_view_deg is not None:
        if azimuth_cache.is_file():
            az = np.load(azimuth_cache)
        else:
            az = array_azimuths(bags, spec, jobs, namespace)
            np.save(azimuth_cache, az)
        tr_idx = tr_idx[np.abs(np.degrees(az[tr_idx])) <= in_view_deg]
        print(f'[train] {len(tr_idx)} training samples heard within {in_view_deg:g} deg of '
              'the camera axis', file=progress)
    return tr_idx, va_idx, in_view
