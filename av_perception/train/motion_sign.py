"""The global sign of a binaural network learned from motion: with folded
azimuths a network and its mirror image (every azimuth negated) are exactly
as consistent with the turns, so something outside the motion must choose.
Either a few labelled views, as the paper fixes its sign with 12 labelled
samples, or, with no label at all (a robot's own bags), the geometry: which
ear hears a sound first, read by GCC-PHAT on the training views. The scale
is the motion's (the visual yaw's); fitting it to the labelled views is
optional (on 12 reverberant views it is noise). Used by
:mod:`av_perception.train.motion`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from av_perception.direction.learned_features import FeatureSpec, peaks
from av_perception.errors import ConfigError
from av_perception.train.motion_data import MotionData

if TYPE_CHECKING:
    import torch

#: Labelled validation views that fix the global sign and scale.
LABELLED = 12
#: Scale range accepted from the labelled views (outside: the motion's own, 1).
SCALE_RANGE = (0.5, 2.0)
#: How the global sign is fixed: 'labels' (LABELLED labelled validation
#: views), 'geometry' (no labels: GCC-PHAT's left/right on the training
#: views, :func:`geometry_views`), 'auto' (labels if the bags have them).
SIGNS = ('auto', 'labels', 'geometry')
#: Views whose GCC-PHAT azimuth is nearer the centre than this carry no
#: left/right for the geometry sign [deg].
GEOMETRY_MIN_DEG = 10.0


def view_distributions(model: torch.nn.Module, data: MotionData, mean: np.ndarray,
                       std: np.ndarray, views: np.ndarray, loud: bool = False) -> np.ndarray:
    """(len(views), bins) distribution of each view: the mean over its
    windows, as :meth:`~av_perception.direction.learned.LearnedDoa.block_distribution`
    (``loud``: over its loud windows only, as the motion losses average a
    view; a view with none gets the mean of all)."""
    import torch
    x = torch.from_numpy((data.x[views] - mean) / std)
    with torch.no_grad():
        p = torch.softmax(model(x.reshape(-1, x.shape[-1])), -1)
    p = p.reshape(len(views), x.shape[1], -1).numpy()
    if not loud:
        return p.mean(1)
    w = data.loud[views].astype(np.float64)
    w[w.sum(1) == 0] = 1.0
    return (p * w[..., None]).sum(1) / w.sum(1)[:, None]


def sign_and_scale(prob: np.ndarray, truth: np.ndarray, spec: FeatureSpec,
                   scale: bool = False) -> tuple[float, float]:
    """The global sign and scale of a model's folded azimuths from a few
    labelled views: ``prob`` (N, bins) their distributions, ``truth`` (N,)
    their folded true azimuths [rad]. Estimates: the distributions'
    strongest peaks, as the estimator reports. The sign: the majority of the
    sign agreements of estimate and truth (over the estimates more than 5
    deg off centre; a tie goes to the sign of sum(estimate x truth)); the
    scale (``scale``): the median of truth / estimate over the views
    estimated more than 10 deg off centre on the side the sign gives (at
    least 3 of them; else 1), within SCALE_RANGE (else 1)."""
    est = np.array([peaks(p, spec, 1)[0][0] for p in prob])
    truth = np.asarray(truth, np.float64)
    off = np.abs(est) > math.radians(5.0)
    votes = int(np.sum(np.sign(est[off]) == np.sign(truth[off])))
    votes -= int(np.sum(np.sign(est[off]) == -np.sign(truth[off])))
    sign = float(np.sign(votes)) if votes else (-1.0 if float(np.sum(est * truth)) < 0 else 1.0)
    k = 1.0
    if scale:
        e = sign * est
        ok = (np.abs(e) > math.radians(10.0)) & (np.sign(e) == np.sign(truth))
        if ok.sum() >= 3:
            k = float(np.median(truth[ok] / e[ok]))
            if not SCALE_RANGE[0] <= k <= SCALE_RANGE[1]:
                k = 1.0
    return sign, k


def labelled_views(data: MotionData, n: int = LABELLED) -> np.ndarray:
    """The labelled views that fix the sign (the only labels the motion
    model sees): in each validation room in turn, its first view with one
    labelled source and a loud window, until ``n`` (further rounds through
    the rooms if there are fewer than ``n`` of them; the training rooms only
    if the validation rooms have too few such views)."""
    val_room = data.val_room
    ok = ~np.isnan(data.azimuth) & data.loud.any(1)
    out: list[int] = []
    for cand in (np.flatnonzero(ok & (data.view_room >= val_room)),
                 np.flatnonzero(ok & (data.view_room < val_room))):
        while len(out) < n and not set(cand) <= set(out):
            seen = set()
            for i in cand:
                if i not in out and data.view_room[i] not in seen:
                    seen.add(data.view_room[i])
                    out.append(int(i))
                    if len(out) == n:
                        break
    return np.array(sorted(out), int)


def geometry_views(data: MotionData) -> np.ndarray:
    """The views that fix the sign without labels: every view with a loud
    window whose GCC-PHAT azimuth (``data.classic``) is more than
    GEOMETRY_MIN_DEG off centre. The sign of an interaural delay (which ear
    hears first) is the geometry's, and GCC-PHAT reads it reliably even
    where its angle is off; their majority vote fixes the mirror image the
    motion cannot tell apart (:func:`sign_and_scale` with these azimuths as
    the truth, the scale left to the motion)."""
    if data.classic is None:
        return np.zeros(0, int)
    c = np.asarray(data.classic, np.float64)
    ok = np.isfinite(c) & data.loud.any(1)
    ok[ok] = np.abs(c[ok]) > math.radians(GEOMETRY_MIN_DEG)
    return np.flatnonzero(ok)


def fix_binaural_sign(model: torch.nn.Module, data: MotionData, mean: np.ndarray,
                      std: np.ndarray, spec: FeatureSpec, how: str = 'auto',
                      labelled: int = LABELLED, scale: bool = False
                      ) -> tuple[float, float, str, int]:
    """The global sign (and with ``scale`` and labels, the scale) of a
    network learned from motion, by ``how`` (:data:`SIGNS`): ``labelled``
    labelled validation views (:func:`labelled_views`) or the geometry
    (:func:`geometry_views`, no labels); 'auto' takes labels if the data
    has them. Returns sign, scale, how it was fixed (for the metadata) and
    how many labelled samples were read.

    Raises:
        ConfigError: an unknown ``how``, or no view to fix the sign by.
    """
    if how not in SIGNS:
        raise ConfigError(f'the binaural sign must be one of {SIGNS}, got {how!r}')
    views = labelled_views(data, labelled) if how != 'geometry' else np.zeros(0, int)
    if len(views):
        sign, k = sign_and_scale(view_distributions(model, data, mean, std, views),
                                 data.azimuth[views], spec, scale)
        return sign, k, (f'{"flipped" if sign < 0 else "kept"}, scale x{k:.3f}, by '
                         f'{len(views)} labelled validation views'), len(views)
    if how == 'labels':
        raise ConfigError('no labelled validation view (one source sounding, '
                          'gt/sound_direction) to fix the sign; --binaural-sign geometry '
                          'fixes it without labels')
    views = geometry_views(data)
    if len(views) == 0:
        raise ConfigError('no view with a loud binaural segment off centre to fix the sign')
    sign, _ = sign_and_scale(view_distributions(model, data, mean, std, views),
                             data.classic[views], spec, False)
    return sign, 1.0, (f'{"flipped" if sign < 0 else "kept"}, scale x1.000, by the left/right '
                       f'of GCC-PHAT on {len(views)} views (no labels)'), 0


__all__ = ['GEOMETRY_MIN_DEG', 'LABELLED', 'SCALE_RANGE', 'SIGNS', 'fix_binaural_sign',
           'geometry_views', 'labelled_views', 'sign_and_scale', 'view_distributions']
