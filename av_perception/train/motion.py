"""Binaural direction from motion (PyTorch): the direction network of
:mod:`av_perception.train.direction` (its features and architecture, the
same ONNX contract) trained by the turns a visual rotation model sees, with
no direction labels (Sound Localization from Motion, ICCV 2023).

Geometry (REP 103; azimuths CCW from the head's +x [rad]): a robot that
turns in place by ``r`` (the yaw of the second view relative to the first,
CCW) hears a static source that was at azimuth ``a`` at ``a - r``
afterwards. A binaural head hears folded azimuths, fold(a) = asin(sin a) in
[-pi/2, pi/2] (front and back mirror). With the network's folded azimuths
``a_s``, ``a_t`` of the two views, the source was either in front (then
``a_t = fold(a_s - r)``) or behind (``a_t = fold(a_s + r)``: behind, a left
turn moves it to the left); the motion residual is the smaller of the two
errors (:func:`motion_residual`). Folding is done as atan2(sin, |cos|), whose
derivative is +-1 everywhere (asin's is unbounded at +-pi/2).

Losses, per pair of views (each view's distribution the mean over its loud
windows, as the estimator averages a segment's; the pair is mirrored at
random, which negates the azimuths and the turn):

- ``motion``: Huber of the motion residual, the azimuth of a view being the
  expectation of the network's distribution over its grid (differentiable);
- ``sharpen``: the cross-entropy of each view's distribution against a bump
  at the azimuth the other view and the turn imply under the better
  hypothesis (targets held fixed): it makes the distribution's peak, which
  the estimator reports, agree with its expectation;
- ``swap``: swapping the ears negates the azimuth (the expectations of a
  window and of its swapped copy add up to zero).

The loss has no trivial minimum: a constant azimuth is inconsistent with
every turn, and the lateral residual is zero only for l = +-sin(azimuth).
It is minimised first alone (the first half of the epochs), since the
hypothesis-choosing terms, from a random start, settle on piecewise
mirrored solutions; pairs are taken between any two views of a chain of
turns in place (:func:`chain_pairs`).

Nothing here separates a model from its mirror image (every azimuth
negated is exactly as consistent, a front source's turn looking like a
back one's): :func:`sign_and_scale` fixes the sign afterwards from
``LABELLED`` labelled validation views, as the paper fixes its sign with 12
labelled samples, and the exported graph applies it
(:func:`~av_perception.direction.learned_features.calibration`). The scale is the
motion's (that of the visual yaw, itself fixed by 12 labelled pairs); a
scale fitted to the 12 labelled views is optional (``scale``), off by
default: on 12 reverberant views it is noise (it took a label-trained
model, whose scale is right, to x0.61).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from av_perception.arrays import load_array
from av_perception.direction.classic import fold_front
from av_perception.direction.learned_features import (FeatureSpec, calibration, features, peaks,
                                                      spec_for, window_starts)
from av_perception.errors import ConfigError
from av_perception.train.checkpoints import Checkpoints, fingerprint

#: Labelled validation views that fix the global sign and scale.
LABELLED = 12
#: Binaural windows quieter than this carry no direction [dBFS].
MIN_LEVEL_DBFS = -45.0
#: Width of the sharpening target's bump [deg].
SHARPEN_SIGMA_DEG = 5.0
#: Loss weights. The prior at 0.1, not 1.0: on the labelled validation views
#: of data/binaural_train (300 rooms) 23.3 deg median against 51.7 deg
#: (docs/binaural_motion.md).
WEIGHTS = {'lateral': 1.0, 'motion': 1.0, 'sharpen': 0.1, 'swap': 1.0, 'prior': 0.1}
#: Terms off during the first half of the epochs (the lateral loss finds the
#: global shape first: the others pick a hypothesis per pair, and from a
#: random start they settle on piecewise mirrored solutions).
LATE = ('motion', 'sharpen')
#: Scale range accepted from the labelled views (outside: the motion's own, 1).
SCALE_RANGE = (0.5, 2.0)


def _torch():
    import torch
    return torch


# ------------------------------------------------------------------ losses
def fold(x):
    """Angles [rad] folded into [-pi/2, pi/2] (torch): asin(sin x), computed
    as atan2(sin x, |cos x|) so that its derivative stays +-1."""
    torch = _torch()
    return torch.atan2(torch.sin(x), torch.cos(x).abs())


def motion_residual(yaw, az_first, az_second):
    """Inconsistency [rad] of folded azimuths of one static source before and
    after a turn in place ``yaw`` [rad, CCW]: the smaller error of the front
    (``fold(az_first - yaw)``) and back (``fold(az_first + yaw)``)
    hypotheses. Zero for a consistent pair (and for its mirror image)."""
    torch = _torch()
    front = (fold(az_first - yaw) - az_second).abs()
    back = (fold(az_first + yaw) - az_second).abs()
    return torch.minimum(front, back)


def lateral_residual(yaw, lat_first, lat_second):
    """Inconsistency of the lateral positions l = sin(azimuth) of one static
    source before and after a turn in place ``yaw`` [rad], without choosing
    between front and back: with l_t = sin(a - r) = l_s cos r -+ cos(a) sin r
    and cos(a)^2 = 1 - l_s^2, squaring eliminates the sign:
    l_s^2 + l_t^2 - 2 l_s l_t cos r = sin^2 r (symmetric in the two views).
    Returned divided by |sin r| (at least 0.05), so that it is of the order
    of the lateral error whatever the turn."""
    torch = _torch()
    res = (lat_first ** 2 + lat_second ** 2 - 2 * lat_first * lat_second * torch.cos(yaw)
           - torch.sin(yaw) ** 2)
    return res / torch.sin(yaw).abs().clamp(min=0.05)


def implied_second(yaw, az_first, az_second):
    """The azimuth [rad] of the second view that the first and the turn imply
    under the hypothesis (front or back) that fits ``az_second`` better."""
    torch = _torch()
    front, back = fold(az_first - yaw), fold(az_first + yaw)
    return torch.where((front - az_second).abs() <= (back - az_second).abs(), front, back)


def expected_azimuth(prob, grid):
    """Expectation [rad] of distributions (B, bins) over ``grid`` (bins,)."""
    return prob @ grid


def bumps(az, grid, sigma: float = math.radians(SHARPEN_SIGMA_DEG)):
    """Normalised Gaussian bumps (B, bins) at azimuths ``az`` [rad]."""
    torch = _torch()
    w = torch.exp(-0.5 * ((grid[None, :] - az[:, None]) / sigma) ** 2)
    return w / w.sum(1, keepdim=True)


def distribution(model, x, weight=None):
    """Log-distributions (B, bins) of windows ``x`` (B, features), or of
    views ``x`` (B, W, features): the mean of the distributions of a view's
    windows weighted by ``weight`` (B, W) (e.g. its loud ones), as the
    estimator averages a block's windows."""
    torch = _torch()
    if x.dim() == 2:
        return torch.log_softmax(model(x), -1)
    b, w, f = x.shape
    p = torch.softmax(model(x.reshape(b * w, f)), -1).reshape(b, w, -1)
    wt = torch.ones(b, w) if weight is None else weight.float()
    wt = wt / wt.sum(1, keepdim=True).clamp(min=1.0)
    return torch.log((p * wt[..., None]).sum(1).clamp(min=1e-8))


def pair_losses(model, grid, x_s, x_t, xs_swap, yaw, w_s=None, w_t=None) -> dict:
    """The loss terms of a batch of pairs: windows ``x_s`` (first view),
    ``x_t`` (second view), ``xs_swap`` (``x_s`` with the ears swapped), all
    (B, features) standardised, and the visual turn ``yaw`` (B,) [rad]. Or
    whole views (B, W, features) with their windows' weights ``w_s``,
    ``w_t`` (B, W) (:func:`distribution`)."""
    torch = _torch()
    logp_s = distribution(model, x_s, w_s)
    logp_t = distribution(model, x_t, w_t)
    az_s = expected_azimuth(logp_s.exp(), grid)
    az_t = expected_azimuth(logp_t.exp(), grid)
    huber = torch.nn.functional.smooth_l1_loss
    sin_grid = torch.sin(grid)
    res = lateral_residual(yaw, logp_s.exp() @ sin_grid, logp_t.exp() @ sin_grid)
    terms = {'lateral': huber(res, torch.zeros_like(res), beta=0.1)}
    res = motion_residual(yaw, az_s, az_t)
    terms['motion'] = huber(res, torch.zeros_like(res), beta=0.1)
    with torch.no_grad():   # each view's target from the other view and the turn
        t_for_t = implied_second(yaw, az_s, az_t)
        t_for_s = implied_second(-yaw, az_t, az_s)
    terms['sharpen'] = -0.5 * ((bumps(t_for_t, grid) * logp_t).sum(1).mean()
                               + (bumps(t_for_s, grid) * logp_s).sum(1).mean())
    az_swap = expected_azimuth(distribution(model, xs_swap, w_s).exp(), grid)
    terms['swap'] = huber(az_s + az_swap, torch.zeros_like(az_s), beta=0.1)
    terms['prior'] = uniform_prior(torch.cat([az_s, az_t]))
    return terms


def uniform_prior(az):
    """1-D Wasserstein distance [rad] between a batch of folded azimuths and
    the uniform distribution on [-pi/2, pi/2]: around a robot that turns to
    every heading, sources are heard from every direction, and folded
    azimuths of directions uniform on the circle are uniform on
    [-pi/2, pi/2]. Without it, what the two views of a pair do not agree on
    (reverberation, a second source) shrinks every azimuth towards the
    centre: the consistency of noisy views is best met by small ones."""
    torch = _torch()
    n = az.shape[0]
    q = (torch.arange(n, dtype=az.dtype) + 0.5) / n * math.pi - math.pi / 2
    return (torch.sort(az).values - q).abs().mean()


# -------------------------------------------------------------------- data
@dataclass
class MotionData:
    """Model windows of camera views and the turns between them.

    Attributes:
        x: (V, W, F) features of the W windows that cover each view's binaural
            segment (``window_starts``), float32.
        x_swap: the same with the ears swapped.
        loud: (V, W) window level above MIN_LEVEL_DBFS.
        pairs: (P, 2) view indices of the turns in place.
        yaw: (P,) the teacher's turn [rad, CCW] (the visual model's).
        room: (P,) bag index of each pair.
        view_room: (V,) bag index of each view.
        azimuth: (V,) folded true azimuth where exactly one source sounds,
            else nan: the LABELLED views that fix the sign, and reports;
            never a training target.
        true_yaw: (P,) true turn [rad] (reports only), nan if unknown.
    """

    x: np.ndarray
    x_swap: np.ndarray
    loud: np.ndarray
    pairs: np.ndarray
    yaw: np.ndarray
    room: np.ndarray
    view_room: np.ndarray
    azimuth: np.ndarray
    true_yaw: np.ndarray

    @property
    def n_bags(self) -> int:
        return int(self.view_room.max()) + 1 if len(self.view_room) else 0


def view_windows(segment: np.ndarray, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """(W, F) features of the windows covering a (2, n) binaural segment, the
    same with the ears swapped, and each window's level [dBFS]."""
    seg = np.asarray(segment, np.float64)
    x, xs, lv = [], [], []
    for s in window_starts(seg.shape[1], spec.window):
        w = seg[:, s:s + spec.window]
        x.append(features(w, spec))
        xs.append(features(w[::-1], spec))
        lv.append(10.0 * math.log10(float(np.mean(w ** 2)) + 1e-20))
    return np.stack(x), np.stack(xs), np.array(lv, np.float32)


def build_data(bags: list, pairs: list, yaw: np.ndarray, spec: FeatureSpec,
               progress=sys.stderr) -> MotionData:
    """MotionData from loaded views (``rotation.dataset.BagViews``) and their
    turn pairs (``rotation.dataset.Pair``, ``bag`` indexing ``bags``) with the
    teacher's ``yaw`` per pair [rad]. A view whose binaural segment could
    not be cut counts as silent.

    Raises:
        ConfigError: fewer than 10 pairs.
    """
    starts = np.cumsum([0] + [len(b.views) for b in bags])
    lengths = [v.segment.shape[1] for b in bags for v in b.views if v.segment is not None]
    if not lengths:
        raise ConfigError('no camera frame with its binaural segment')
    segment_length = lengths[0]
    x, xs, loud, az, vroom = [], [], [], [], []
    for bi, b in enumerate(bags):
        for v in b.views:
            if v.segment is None:   # its audio could not be cut (the bag's end): silent
                n = len(window_starts(segment_length, spec.window))
                f = g = np.zeros((n, spec.n_features), np.float32)
                lv = np.full(n, -200.0, np.float32)
            else:
                f, g, lv = view_windows(v.segment, spec)
            x.append(f)
            xs.append(g)
            loud.append(lv > MIN_LEVEL_DBFS)
            az.append(fold_front(v.azimuths[0]) if len(v.azimuths) == 1 else np.nan)
            vroom.append(bi)
        if progress is not None:
            print(f'\r[motion] features of {bi + 1}/{len(bags)} bags', end='', file=progress,
                  flush=True)
    if progress is not None:
        print(file=progress)
    if len(pairs) < 10:
        raise ConfigError(f'only {len(pairs)} turn-in-place pairs; need more bags')
    idx, turn, true, room = chain_pairs(
        [(p.bag, starts[p.bag] + p.first, starts[p.bag] + p.second) for p in pairs],
        np.asarray(yaw, np.float64),
        np.array([p.yaw if p.yaw is not None else np.nan for p in pairs], np.float64))
    return MotionData(np.stack(x), np.stack(xs), np.stack(loud), idx, turn, room,
                      np.array(vroom), np.array(az, np.float32), true)


def chain_pairs(links: list, yaw: np.ndarray, true_yaw: np.ndarray):
    """Every pair of views of a chain of turns in place: ``links`` (bag,
    first view, second view) of consecutive views between which the robot
    turned in place by ``yaw`` [rad] (the teacher's; ``true_yaw``, reports
    only). Views linked in a row stand at the same place, so any two of them
    differ by the sum of the turns between them (wrapped into [-pi, pi)):
    more pairs, and larger turns, than the consecutive ones. Returns the
    view pairs (P, 2), their turns, true turns and bags."""
    nxt = {a: (b, k) for k, (_, a, b) in enumerate(links)}
    heads = sorted({a for _, a, _ in links} - {b for _, _, b in links})
    pairs, turn, true, room = [], [], [], []
    for h in heads:
        chain, psi, psi_true, v = [h], [0.0], [0.0], h
        while v in nxt:
            v, k = nxt[v]
            chain.append(v)
            psi.append(psi[-1] + yaw[k])
            psi_true.append(psi_true[-1] + true_yaw[k])
        for i in range(len(chain)):
            for j in range(i + 1, len(chain)):
                pairs.append((chain[i], chain[j]))
                turn.append(math.remainder(psi[j] - psi[i], math.tau))
                true.append(math.remainder(psi_true[j] - psi_true[i], math.tau))
                room.append(links[nxt[chain[i]][1]][0])
    return (np.array(pairs, int).reshape(-1, 2), np.array(turn, np.float32),
            np.array(true, np.float32), np.array(room, int))


# ---------------------------------------------------------------- training
def _draw(data: MotionData, idx: np.ndarray, rng: np.random.Generator, draws: int,
          views: bool = False):
    """Window pairs for the pairs ``idx``: ``draws`` random (loud) windows of
    each view per pair (``views``: the whole views, window index None),
    randomly mirrored. Returns index arrays and the mirror flags."""
    p = np.repeat(idx, draws)
    first, second = data.pairs[p, 0], data.pairs[p, 1]
    W = data.x.shape[1]

    def pick(v):
        if views:
            return None
        # a random loud window (any window if none is loud)
        score = rng.random((len(v), W)) + data.loud[v]
        return score.argmax(1)
    return p, first, pick(first), second, pick(second), rng.random(len(p)) < 0.5


def _batch(xt, xst, yaw, sel, mirror, loud=None):
    """Tensors of one batch: first/second windows, the first's swapped copy,
    the turn; mirrored pairs hear left and right swapped and turn the other
    way. With whole views (window index None), also the weights of their
    windows (``loud``: (V, W) tensor)."""
    torch = _torch()
    p, v1, w1, v2, w2 = sel
    r = torch.from_numpy(yaw[p]) * torch.from_numpy(np.where(mirror, -1.0, 1.0).astype(
        np.float32))
    if w1 is None:
        m = torch.from_numpy(mirror)[:, None, None]
        return (torch.where(m, xst[v1], xt[v1]), torch.where(m, xst[v2], xt[v2]),
                torch.where(m, xt[v1], xst[v1]), r, loud[v1], loud[v2])
    m = torch.from_numpy(mirror)[:, None]
    x_s = torch.where(m, xst[v1, w1], xt[v1, w1])
    xs_swap = torch.where(m, xt[v1, w1], xst[v1, w1])
    x_t = torch.where(m, xst[v2, w2], xt[v2, w2])
    return x_s, x_t, xs_swap, r


def _loss(terms: dict, late: bool = True) -> object:
    return sum(WEIGHTS[k] * v for k, v in terms.items() if late or k not in LATE)


def both_pairs_usable(data: MotionData, idx: np.ndarray) -> np.ndarray:
    """Pairs whose two views each have a loud window."""
    return idx[data.loud[data.pairs[idx, 0]].any(1) & data.loud[data.pairs[idx, 1]].any(1)]


def fit(data: MotionData, spec: FeatureSpec, out: Path, epochs: int = 40, batch: int = 64,
        lr: float = 1e-3, seed: int = 0, draws: int = 8, views: bool = True,
        progress=sys.stderr) -> dict:
    """Train the direction network from the turns; checkpoints each epoch
    (resumable) under ``out``'s ``<stem>_checkpoints``; keeps the epoch with
    the lowest validation loss (the motion losses of the last tenth of the
    rooms: no labels). ``views``: each view's distribution is the mean over
    its loud windows (as the estimator averages a segment's), not one random
    window (labelled validation views of data/binaural_train: 18-21 deg
    median over three runs, against 23.3 deg with one window; the window's
    ``draws`` then only redraw the mirroring). Returns the model, the
    standardisation and a summary."""
    torch = _torch()
    from av_perception.train.direction import make_model
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_val = max(1, data.n_bags // 10)
    val_room = data.n_bags - n_val
    tr = both_pairs_usable(data, np.flatnonzero(data.room < val_room))
    va = both_pairs_usable(data, np.flatnonzero(data.room >= val_room))
    if len(tr) < 10:
        raise ConfigError(f'only {len(tr)} training pairs with sound in both views')
    train_views = data.view_room < val_room
    flat = data.x[train_views][data.loud[train_views]]
    mean, std = flat.mean(0), flat.std(0) + 1e-3
    xt = torch.from_numpy((data.x - mean) / std)
    xst = torch.from_numpy((data.x_swap - mean) / std)
    grid = torch.from_numpy(spec.grid().astype(np.float32))
    model = make_model(spec.n_features, spec.bins)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    ck = Checkpoints(out.parent / f'{out.stem}_checkpoints',
                     fingerprint(int(len(data.pairs)), float(data.x.sum()),
                                 float(np.nansum(data.yaw)), lr, batch, seed, draws, WEIGHTS,
                                 spec.to_metadata(), *(['views'] if views else [])),
                     progress)
    loud = torch.from_numpy(data.loud)
    start = ck.resume(model, opt, sched)
    if start:
        rng = np.random.default_rng([seed, start])
    val_sel = _draw(data, va, np.random.default_rng(123), draws, views) if len(va) else None
    t0 = time.perf_counter()
    for epoch in range(start, epochs):
        model.train()
        sel = _draw(data, rng.permutation(tr), rng, draws, views)
        order = rng.permutation(len(sel[0]))
        losses = []
        for i in range(0, len(order) - batch // 2, batch):
            b = order[i:i + batch]
            terms = pair_losses(model, grid, *_batch(
                xt, xst, data.yaw, tuple(None if a is None else a[b] for a in sel[:5]),
                sel[5][b], loud))
            loss = _loss(terms, epoch >= epochs // 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        sched.step()
        model.eval()
        vloss = math.nan
        if val_sel is not None:
            with torch.no_grad():
                vloss = float(_loss(pair_losses(model, grid, *_batch(
                    xt, xst, data.yaw, val_sel[:5], val_sel[5], loud)), epoch >= epochs // 2))
        entry = {'epoch': epoch + 1, 'phase': 'all' if epoch >= epochs // 2 else 'lateral',
                 'train_loss': float(np.mean(losses)), 'val_loss': vloss}
        # the best epoch is one with every term (the lateral-only losses are lower)
        ck.save(model, opt, sched, epoch + 1, entry, comparable=lambda e: e['phase'] == 'all')
        print(f'\r[motion] epoch {epoch + 1}/{epochs} ({entry["phase"]}) train '
              f'{entry["train_loss"]:.4f} val {vloss:.4f} ({time.perf_counter() - t0:.0f} s)',
              end='', file=progress, flush=True)
    curve, best = ck.finish(model, 'motion loss')
    model.eval()
    return {'model': model, 'mean': mean, 'std': std, 'best_epoch': best,
            'train_pairs': int(len(tr)), 'val_pairs': int(len(va)), 'curve': str(curve),
            'train_seconds': round(time.perf_counter() - t0, 1)}


def view_distributions(model, data: MotionData, mean, std, views: np.ndarray) -> np.ndarray:
    """(len(views), bins) distribution of each view: the mean over its
    windows, as :meth:`~av_perception.direction.learned.LearnedDoa.block_distribution`."""
    torch = _torch()
    x = torch.from_numpy((data.x[views] - mean) / std)
    with torch.no_grad():
        p = torch.softmax(model(x.reshape(-1, x.shape[-1])), -1)
    return p.reshape(len(views), x.shape[1], -1).mean(1).numpy()


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
    val_room = data.n_bags - max(1, data.n_bags // 10)
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


def train_from_views(bags: list, pairs: list, yaw: np.ndarray, out: str | Path,
                     teacher: str, epochs: int = 40, seed: int = 0, labelled: int = LABELLED,
                     scale: bool = False, progress=sys.stderr) -> dict:
    """The whole recipe on loaded views: features, :func:`fit`, the sign (and
    with ``scale`` the scale) from ``labelled`` labelled validation views,
    ONNX export (the
    direction network's contract, ``target`` 'motion'; ``teacher`` names the
    visual model whose turns taught it). Returns a summary."""
    from av_perception.train.direction import export
    out = Path(out)
    spec = spec_for(load_array('binaural'))
    data = build_data(bags, pairs, yaw, spec, progress=progress)
    res = fit(data, spec, out, epochs=epochs, seed=seed, progress=progress)
    views = labelled_views(data, labelled)
    if len(views) == 0:
        raise ConfigError('no labelled validation view (one source sounding) to fix the sign')
    sign, k = sign_and_scale(view_distributions(res['model'], data, res['mean'], res['std'],
                                                views), data.azimuth[views], spec, scale)
    note = (f'{"flipped" if sign < 0 else "kept"}, scale x{k:.3f}, by {len(views)} labelled '
            'validation views')
    extra = {'teacher': teacher, 'sign_scale': note, 'labelled_samples': str(len(views)),
             'train_pairs': str(res['train_pairs'])}
    export(res['model'], spec, res['mean'], res['std'], out, target='motion',
           n_train=res['train_pairs'], n_bags=data.n_bags, sign=sign, scale=k, extra=extra)
    # the labelled validation error is reported, never used to choose anything
    val_room = data.n_bags - max(1, data.n_bags // 10)
    vv = np.flatnonzero((data.view_room >= val_room) & ~np.isnan(data.azimuth))
    err = []
    if len(vv):
        prob = view_distributions(res['model'], data, res['mean'], res['std'], vv) @ \
            calibration(spec, sign, k)
        err = [abs(peaks(p, spec, 1)[0][0] - a) for p, a in zip(prob, data.azimuth[vv])]
    return {'model': str(out), 'views': int(len(data.x)), 'pairs': int(len(data.pairs)),
            'train_pairs': res['train_pairs'], 'val_pairs': res['val_pairs'],
            'best_epoch': res['best_epoch'], 'sign_scale': note, 'curve': res['curve'],
            'train_seconds': res['train_seconds'],
            'val_median_error_deg': round(math.degrees(float(np.median(err))), 2)
            if err else None, 'val_views': int(len(vv))}


__all__ = ['LABELLED', 'MotionData', 'build_data', 'fit', 'fold',
           'motion_residual', 'pair_losses', 'sign_and_scale', 'train_from_views']
