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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from av_perception.bag.contents import first_camera, list_bags
from av_perception.errors import ConfigError
from av_perception.rotation.dataset import BagOptions, load_all
from av_perception.rotation.features import MAX_SHIFT, RotationSpec
from av_perception.train.checkpoints import Checkpoints, fingerprint

TARGETS = ('selfsup', 'labels')
PEAK_WINDOW = 3           # cells either side of the matching peak in the soft-argmax
SPREAD_FLOOR_RAD = math.radians(0.25)  # added (in quadrature) to every yaw's spread
SIGN_PAIRS = 12           # labelled validation pairs that fix the visual yaw's sign
FILES = {'selfsup': ('rotation_visual.onnx', 'rotation_binaural.onnx'),
         'labels': ('rotation_visual_labels.onnx',)}


def _nn():
    import torch
    import torch.nn as nn
    return torch, nn


def make_visual(spec: RotationSpec | None = None, channels: int = 16):
    """The visual rotation network (input (B, 2, S, S) -> yaw (B,) [rad]).

    A turn of the camera is one horizontal shift of the whole cylindrical
    image, so the two frames' encoder features are matched globally: for
    each shift d of +-``MAX_SHIFT`` cells, the mean cosine similarity of
    a(x) and b(x - d) over the columns both frames see (the *matching
    curve*, :meth:`curve`). The yaw is ``scale`` x the soft-argmax of the
    curve within ``PEAK_WINDOW`` cells of its peak (sub-cell precision; a
    soft-argmax over all shifts would be pulled towards the middle).
    ``scale`` starts at the cylinder's value (a cell is two input columns of
    hfov / S rad; a left turn moves the scene right, hence the minus) and is
    then learned like every other weight: a camera ahead of the turning
    axis sees near things move a little more than the turn (parallax)."""
    torch, nn = _nn()

    class VisualRotationNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                nn.Conv2d(16, channels, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                nn.Conv2d(channels, channels, 3, padding=2, dilation=2), nn.ReLU(),
                nn.Conv2d(channels, channels, 3, padding=1))
            self.temperature = nn.Parameter(torch.tensor(20.0))
            n = 2 * MAX_SHIFT + 1
            self.register_buffer('shifts', torch.arange(-MAX_SHIFT, MAX_SHIFT + 1,
                                                        dtype=torch.float32).view(1, n))
            sp = spec or RotationSpec()
            self.scale = nn.Parameter(torch.tensor(-2.0 * column_rad(sp)))  # rad per cell
            self.register_buffer('sign', torch.tensor(1.0))

        def features(self, img):
            f = self.enc(img)
            return f / (f.norm(dim=1, keepdim=True) + 1e-6)

        def forward(self, pair):
            return self.from_features(self.features(pair[:, 0:1]),
                                      self.features(pair[:, 1:2]))

        def curve(self, a, b):
            """Matching logits (B, 2 MAX_SHIFT + 1): temperature x the mean
            cosine similarity of a(x) and b(x - d) over the overlap, per shift d."""
            h, w = a.shape[-2], a.shape[-1]
            sims = []
            for d in range(-MAX_SHIFT, MAX_SHIFT + 1):
                x0, x1 = max(0, d), min(w, w + d)
                sims.append((a[..., x0:x1] * b[..., x0 - d:x1 - d]).sum((1, 2, 3))
                            / float(h * (x1 - x0)))
            return self.temperature * torch.stack(sims, 1)

        def shift_of(self, logits):
            """Soft-argmax [cells] of matching logits within PEAK_WINDOW of the peak."""
            peak = logits.argmax(1, keepdim=True).float() - MAX_SHIFT
            near = (self.shifts - peak).abs() <= PEAK_WINDOW
            prob = torch.softmax(torch.where(near, logits, logits - 1e4), dim=1)
            return (prob * self.shifts).sum(1)

        def yaw_of(self, logits):
            """Yaw [rad] from matching logits."""
            return self.sign * self.scale * self.shift_of(logits)

        def from_features(self, a, b):
            """Yaw [rad] from the two frames' encoder features."""
            return self.yaw_of(self.curve(a, b))

        def yaw_and_spread(self, pair):
            """(yaw, spread) [rad]: the yaw and the standard deviation about it
            of the shift under the softmax of the whole matching curve (the
            distribution the curve's cross-entropy trains): small for one
            sharp peak, large for a flat or many-peaked curve (a bare wall,
            a repeating pattern)."""
            logits = self.curve(self.features(pair[:, 0:1]), self.features(pair[:, 1:2]))
            shift = self.shift_of(logits)
            prob = torch.softmax(logits, dim=1)
            std = ((prob * (self.shifts - shift[:, None]) ** 2).sum(1) + 1e-12).sqrt()
            return self.sign * self.scale * shift, self.scale.abs() * std

    return VisualRotationNet()


def shift_target(yaw, vis):
    """The matching-curve cell [float] that a turn ``yaw`` [rad] should peak at."""
    return yaw / (vis.sign * vis.scale.detach())


def curve_loss(vis, logits, yaw):
    """Cross-entropy of the whole matching curve (``vis.curve``'s logits)
    against a turn ``yaw`` [rad] (two-hot on the neighbouring cells): it
    pulls the right peak up wherever it is, where the soft-argmax alone only
    moves a peak it already has."""
    torch, nn = _nn()
    t = (shift_target(yaw, vis) + MAX_SHIFT).clamp(0, 2 * MAX_SHIFT)
    lo = t.floor().long().clamp(max=2 * MAX_SHIFT - 1)
    frac = t - lo
    target = torch.zeros_like(logits)
    target.scatter_(1, lo[:, None], (1 - frac)[:, None])
    target.scatter_add_(1, (lo + 1)[:, None], frac[:, None])
    return -(target * nn.functional.log_softmax(logits, 1)).sum(1).mean()


def yaw_terms(vis, pair, yaw):
    """(yaw [rad], squared yaw error, matching-curve cross-entropy) of a
    batch of pairs of known turn ``yaw`` [rad] (the pretext task's or the
    labels')."""
    logits = vis.curve(vis.features(pair[:, 0:1]), vis.features(pair[:, 1:2]))
    r = vis.yaw_of(logits)
    return r, ((r - yaw) ** 2).mean(), curve_loss(vis, logits, yaw)


def flip_images(pair):
    return pair.flip(-1)


# ------------------------------------------------------------------ pretext
def column_rad(spec: RotationSpec) -> float:
    """Azimuth step of one column of the cylindrical network input [rad]."""
    return math.radians(spec.hfov_deg) / spec.image_size


def turn_shift(yaw: float, spec: RotationSpec) -> float:
    """Horizontal shift [columns] of the cylindrical network input when the
    camera turns by ``yaw`` [rad, CCW about up]: a left turn moves what is
    ahead to the right, by exactly yaw / column_rad."""
    return yaw / column_rad(spec)


def synthetic_pairs(grey: np.ndarray, spec: RotationSpec, rng: np.random.Generator,
                    max_yaw: float = math.radians(50.0)) -> tuple[np.ndarray, np.ndarray]:
    """The pretext task: each frame seen by the camera turned by r1 and by r2
    (on the cylinder, a horizontal shift), and the turn r2 - r1 between the
    two views. What the turned camera would see outside the original frame
    is filled with another frame's pixels: new, unrelated content, as after
    a real turn (an empty border would let the network read the turn off
    the border's width). No labels: the geometry of a turning camera with
    the frames' own field of view."""
    import cv2
    n = spec.image_size
    turn = rng.uniform(-max_yaw, max_yaw, len(grey))   # as many large turns as small ones
    r1 = -turn / 2 + rng.uniform(-max_yaw / 8, max_yaw / 8, len(grey))
    r2 = r1 + turn
    filler = rng.permutation(len(grey))
    out = np.zeros((len(grey), 2, n, n), np.float32)
    ones = np.ones((n, n), np.float32)
    for i, g in enumerate(grey):
        for j, r in enumerate((r1[i], r2[i])):
            M = np.array([[1.0, 0.0, turn_shift(r, spec)], [0.0, 1.0, 0.0]])
            warped = cv2.warpAffine(g, M, (n, n), flags=cv2.INTER_LINEAR, borderValue=0.0)
            inside = cv2.warpAffine(ones, M, (n, n), flags=cv2.INTER_LINEAR, borderValue=0.0)
            out[i, j] = inside * warped + (1.0 - inside) * grey[filler[(i + j) % len(grey)]]
    return out, (r2 - r1).astype(np.float32)


# -------------------------------------------------------------------- data
@dataclass
class Data:
    grey: np.ndarray        # (V, S, S)
    pairs: np.ndarray       # (P, 2) view indices
    yaw: np.ndarray         # (P,) true yaw [rad] (scoring and the supervised reference only)
    room: np.ndarray        # (P,) bag index
    n_bags: int


def build_data(bags: list, pairs: list) -> Data:
    """The visual networks' data from loaded views (``rotation.dataset.load_all``)
    and their turn pairs (``Pair.bag`` indexing ``bags``)."""
    if len(pairs) < 10:
        raise ConfigError(f'only {len(pairs)} turn-in-place pairs; need more bags')
    starts = np.cumsum([0] + [len(b.views) for b in bags])
    grey = np.stack([v.grey for b in bags for v in b.views])
    idx = np.array([(starts[p.bag] + p.first, starts[p.bag] + p.second) for p in pairs])
    yaw = np.array([p.yaw if p.yaw is not None else np.nan for p in pairs], np.float32)
    return Data(grey, idx, yaw, np.array([p.bag for p in pairs]), len(bags))


def spec_for_bags(bags_dirs: list, options: BagOptions = BagOptions()) -> RotationSpec:
    """The models' contract for the bags' camera: the default one with the
    horizontal field of view of the first bag's CameraInfo (the other bags
    must match it: ``rotation.dataset.load_views``)."""
    camera = first_camera(list_bags(*bags_dirs), options.namespace)
    return RotationSpec(hfov_deg=round(camera.hfov_deg, 2))


# ---------------------------------------------------------------- training
def _visual_losses(vis, data_t, idx, target, rng, synth=None):
    """The visual loss terms of one batch: the pretext task's (``synth``:
    synthetic pairs and their turns) or the labels' (real pairs ``idx``,
    randomly swapped and mirrored), and the mirror symmetry."""
    torch, _ = _nn()
    if target == 'selfsup':
        j = torch.from_numpy(rng.integers(0, len(synth[0]), len(idx)))
        pair, yaw = synth[0][j], synth[1][j]
    else:
        grey, pairs, true_yaw = data_t
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


def train(bags_dirs: list, out_dir: str | Path, targets: tuple = TARGETS, epochs: int = 6,
          batch: int = 32, lr: float = 2e-3, seed: int = 0, binaural_epochs: int = 40,
          scale_from_labels: bool = True, visual_model: str | Path | None = None,
          progress=sys.stderr, options: BagOptions = BagOptions()) -> dict:
    """Train the chosen targets from the same bags, checkpoint each epoch
    (resumable), export ONNX; returns a summary.

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
    the bags' camera's (CameraInfo); ``options``: how the bags are read
    (``rotation.dataset.BagOptions``: turn pairs, odometry frames,
    namespace)."""
    torch, _ = _nn()
    for t in targets:
        if t not in TARGETS:
            raise ConfigError(f'--target must be one of {TARGETS}, got {t!r}')
    if epochs < 1 or binaural_epochs < 1:
        raise ConfigError(f'epochs must be >= 1, got {epochs} (visual) and {binaural_epochs} '
                          '(binaural)')
    out_dir = Path(out_dir)
    spec = spec_for_bags([Path(d) for d in bags_dirs], options)
    t_load = time.perf_counter()
    bags, pairs = load_all([Path(d) for d in bags_dirs], spec, progress=progress,
                           options=options)
    data = build_data(bags, pairs)
    load_s = time.perf_counter() - t_load
    n_val = max(1, data.n_bags // 10)  # validation: the last tenth of the rooms
    val = data.room >= data.n_bags - n_val
    summary = {'pairs': int(len(data.pairs)), 'views': int(len(data.grey)),
               'bags': data.n_bags, 'val_pairs': int(val.sum()),
               'load_seconds': round(load_s, 1)}
    print(f'[train] {summary}', file=progress)
    fingerprint_data = [str(d) for d in bags_dirs] + [int(len(data.pairs)),
                                                      float(data.grey.sum())]
    for target in targets:
        if target == 'selfsup' and visual_model is not None:
            from av_perception.rotation.estimate import VisualRotation
            partner = VisualRotation(visual_model)
            yaw = np.concatenate([partner.estimate_batch(_pair_images(data.grey, p))[:, 0]
                                  for p in np.array_split(data.pairs,
                                                          max(1, len(data.pairs) // 256))])
            res = {'visual': f'given: {partner.model.model_id} ({visual_model})'}
            teacher = partner.model.model_id
        else:
            res, vis = _train_visual(data, val, spec, target, out_dir, epochs, batch, lr, seed,
                                     fingerprint_data, scale_from_labels, progress)
            if target == 'labels':
                summary[target] = res
                continue
            with torch.no_grad():
                yaw = rotation_outputs(vis, torch.from_numpy(data.pairs),
                                       torch.from_numpy(data.grey))[:, 0].numpy()
            teacher = 'rotation-visual-selfsup (trained with it)'
        from av_perception.train.motion import train_from_views
        res['binaural'] = train_from_views(bags, pairs, yaw, out_dir / FILES['selfsup'][1],
                                           teacher=teacher, epochs=binaural_epochs, seed=seed,
                                           progress=progress)
        summary[target] = res
    return summary


def _pair_images(grey: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    return np.stack([grey[pairs[:, 0]], grey[pairs[:, 1]]], 1)


def _train_visual(data, val, spec, target, out_dir, epochs, batch, lr, seed, fingerprint_data,
                  scale_from_labels, progress) -> tuple[dict, object]:
    torch, _ = _nn()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    vis = make_visual(spec)
    opt = torch.optim.AdamW(vis.parameters(), lr=lr, weight_decay=1e-4)
    # warm-up of the learning rate over ~10 % of the epochs, at least 2
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs,
                                                pct_start=min(0.5, max(0.1, 2.0 / epochs)))
    ck = Checkpoints(out_dir / 'rotation_checkpoints' / target,
                     fingerprint(*fingerprint_data, target, epochs, batch, lr, seed,
                                 spec.to_metadata()), progress)
    start = ck.resume(vis, opt, sched)
    if start:
        rng = np.random.default_rng([seed, start])
    tr_idx, va_idx = np.flatnonzero(~val), np.flatnonzero(val)
    data_t = (torch.from_numpy(data.grey), torch.from_numpy(data.pairs),
              torch.from_numpy(data.yaw))
    # the frames of the training and validation rooms (the pretext task's material)
    tr_views, va_views = np.unique(data.pairs[tr_idx]), np.unique(data.pairs[va_idx])
    val_synth = None
    if target == 'selfsup':
        val_synth = [torch.from_numpy(a) for a in synthetic_pairs(
            data.grey[va_views], spec, np.random.default_rng(123))]
    t0 = time.perf_counter()
    for epoch in range(start, epochs):
        synth = None
        if target == 'selfsup':
            synth = [torch.from_numpy(a) for a in synthetic_pairs(data.grey[tr_views], spec, rng)]
        vis.train()
        perm = rng.permutation(tr_idx)
        steps = len(tr_views) if target == 'selfsup' else len(perm)
        losses = []
        for i in range(0, steps - batch // 2, batch):
            terms = _visual_losses(vis, data_t, torch.from_numpy(perm[i % len(perm):][:batch]),
                                   target, rng, synth)
            loss = sum(WEIGHTS[k] * v for k, v in terms.items())
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vis.parameters(), 5.0)
            opt.step()
            losses.append(float(loss.detach()))
        sched.step()
        vis.eval()
        with torch.no_grad():   # the same swaps and mirrors every epoch
            vterms = _visual_losses(vis, data_t, torch.from_numpy(va_idx), target,
                                    np.random.default_rng(123), val_synth)
        vloss = float(sum(WEIGHTS[k] * v for k, v in vterms.items()))
        ck.save(vis, opt, sched, epoch + 1, {'epoch': epoch + 1,
                                             'train_loss': float(np.mean(losses)),
                                             'val_loss': vloss})
        print(f'\r[train] {target} visual epoch {epoch + 1}/{epochs} train '
              f'{np.mean(losses):.4f} val {vloss:.4f} ({time.perf_counter() - t0:.0f} s)',
              end='', file=progress, flush=True)
    print(file=progress)
    curve_png = ck.plot(f'visual loss ({target})', log=True)
    best_epoch = ck.best(vis)
    vis.eval()
    sign_note = 'labels'
    if target == 'selfsup':
        sign_note = fix_sign(vis, data, va_idx, data_t, scale=scale_from_labels)
    with torch.no_grad():
        out = rotation_outputs(vis, data_t[1][va_idx], data_t[0]).numpy()
    err = np.degrees(np.abs(out[:, 0] - data.yaw[va_idx]))
    spread = float(np.median(out[:, 1])) if len(out) else 0.0
    meta = {'training': target, 'train_pairs': str(int((~val).sum())),
            'train_bags': str(data.n_bags), 'sign': sign_note,
            'spread_floor_rad': f'{SPREAD_FLOOR_RAD:.6f}'}
    export_visual(vis, spec, out_dir / FILES[target][0], meta)
    return {'best_epoch': best_epoch, 'val_median_yaw_error_deg':
            round(float(np.median(err)), 2), 'val_median_spread_deg':
            round(math.degrees(spread), 2), 'sign': sign_note,
            'curve': str(curve_png), 'train_seconds':
            round(time.perf_counter() - t0, 1)}, vis


def rotation_outputs(vis, pairs, grey):
    """(yaw, spread) per pair, as the exported graph computes them
    (:func:`_Exported`)."""
    torch, _ = _nn()
    img = torch.stack([grey[pairs[:, 0]], grey[pairs[:, 1]]], 1)
    return _Exported(vis)(img)


def fix_sign(vis, data: Data, va_idx: np.ndarray, data_t, scale: bool = True) -> str:
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
    by its own labelled views: ``motion.sign_and_scale``.)"""
    torch, _ = _nn()
    idx = va_idx[:SIGN_PAIRS]
    with torch.no_grad():
        r = rotation_outputs(vis, data_t[1][idx], data_t[0])[:, 0].numpy()
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


def _Exported(vis):
    """The exported visual graph: (B, 2, S, S) -> (B, 2) [yaw, spread] [rad],
    one pass. The network is antisymmetric by construction: the matching
    curve of (b, a) is that of (a, b) mirrored (the same products over the
    same overlap), so the swapped frames give exactly -yaw and the same
    spread, and running both orders would only double the work."""
    torch, nn = _nn()

    class Exported(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = vis

        def forward(self, pair):
            return torch.stack(self.net.yaw_and_spread(pair), 1)
    return Exported()


def _export(module, example, path: Path, input_name: str, output_name: str, meta: dict):
    import onnx
    import torch
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(module, (example,), str(path), input_names=[input_name],
                      output_names=[output_name],
                      dynamic_axes={input_name: {0: 'batch'}, output_name: {0: 'batch'}},
                      opset_version=17, dynamo=False)
    m = onnx.load(str(path))
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, str(v)
    onnx.save(m, str(path))


def export_visual(vis, spec: RotationSpec, path: Path, meta: dict):
    """ONNX of the visual model with its contract; returns the exported module."""
    torch, _ = _nn()
    wrapped = _Exported(vis).eval()
    _export(wrapped, torch.zeros(1, 2, spec.image_size, spec.image_size), path, 'pair',
            'yaw_spread', {'task': 'rotation_visual', 'model_id':
                           f'rotation-visual-{meta["training"]}', **spec.to_metadata(), **meta})
    return wrapped
