"""Training of the rotation models (PyTorch): Sound Localization from Motion.

Two small networks:

- ``VisualRotationNet``: yaw between two camera frames. A shared CNN encoder
  (stride 2) on each grey frame (reprojected onto a cylinder, where a turn
  is a horizontal shift: av_perception.rotation.features), a global
  matching curve of the two feature maps over +-``MAX_SHIFT`` cells (mean
  cosine similarity over the columns both frames see, per shift) and its
  soft-argmax near the peak, times a learned scale -> yaw [rad], CCW
  positive (REP 103): the second frame's heading relative to the first.
  Trained with the squared yaw error and a cross-entropy of the whole curve
  against the turn's cell (:func:`curve_loss`).
- ``BinauralNet``: azimuth of a static source from the binaural features
  (av_perception.rotation.features), tanh x 90 deg: folded into the front
  half-plane since a head cannot tell front from back.

Self-supervised objective (no pose or direction labels), on pairs of views
between which the robot turned in place by r:

- geometric consistency: a source at azimuth a (robot frame) is seen at
  a - r after the turn. With folded azimuths a_s, a_t the front hypothesis
  predicts a_t = fold(a_s - r) and the back one a_t = fold(pi - a_s - r) =
  fold(a_s + r) (fold = asin(sin .)); the loss is the smaller error of the
  two (:func:`consistency_residual`, Huber);
- binaural symmetry: swapping left and right negates the azimuth;
- visual symmetry: swapping the two views negates the yaw (by construction:
  the swapped matching curve is the mirrored one, so it needs no loss term),
  and mirroring both frames left/right negates it (a loss term; with the
  binaural channels swapped, the consistency holds for the mirrored pair
  too);
- a prior against the trivial solution (yaw 0, every azimuth equal, which
  satisfies all of the above): around a robot that turns to every heading,
  sources are seen from every direction, so folded azimuths are uniform on
  [-90, 90] deg (1-D Wasserstein distance of a batch to that distribution);
- a visual pretext task instead of the paper's cross-view binauralization
  (not done here): each frame as seen by the camera turned twice
  (:func:`synthetic_pairs`: on the cylinder, a horizontal shift), whose
  difference the network must give. It uses the frames' own field of view,
  no labels. Without it, the two networks, trained jointly from scratch,
  settle on the trivial solution.

Training runs in phases: pretext (visual only), binaural (visual frozen,
the binaural network learns from the turns it sees), then, optionally,
joint (off by default: see :func:`train`).

Signs: every yaw and azimuth negated is an equally consistent solution,
and with folded azimuths the binaural sign is not tied to the visual one (a
mirrored head hears a source in front as if it were behind). Both are fixed
afterwards, as the paper does, by a handful (``SIGN_PAIRS``) of labelled
validation samples: pairs for the yaw, views for the azimuth (one bit of
supervision each; a robot could use its commanded turn direction for the
yaw).

``--target labels`` trains the same networks with the true yaw and
direction (the supervised upper reference).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from av_perception.doa.classic import fold_front
from av_perception.errors import ConfigError
from av_perception.bag.contents import first_camera, list_bags
from av_perception.rotation.dataset import BagOptions, load_all
from av_perception.rotation.features import MAX_SHIFT, RotationSpec
from av_perception.train.checkpoints import Checkpoints, fingerprint

TARGETS = ('selfsup', 'labels')
PEAK_WINDOW = 3           # cells either side of the matching peak in the soft-argmax
SPREAD_FLOOR_RAD = math.radians(0.25)  # added (in quadrature) to every yaw's spread
SIGN_PAIRS = 12           # labelled validation pairs that fix the global sign
MIN_LEVEL_DBFS = -45.0    # binaural segments quieter than this carry no direction
FILES = {'selfsup': ('rotation_visual.onnx', 'rotation_binaural.onnx'),
         'labels': ('rotation_visual_labels.onnx', 'rotation_binaural_labels.onnx')}


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


def make_binaural(bands: int):
    """The binaural direction network (input (B, 4, bands) -> folded azimuth (B,) [rad])."""
    torch, nn = _nn()

    class BinauralNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                nn.Conv1d(4, 32, 5, padding=2), nn.ReLU(),
                nn.Conv1d(32, 32, 5, stride=2, padding=2), nn.ReLU(),
                nn.Conv1d(32, 64, 5, stride=2, padding=2), nn.ReLU(),
                nn.Flatten(), nn.Dropout(0.1), nn.Linear(64 * (bands // 4), 64), nn.ReLU(),
                nn.Linear(64, 1))
            self.register_buffer('sign', torch.tensor(1.0))

        def forward(self, x):
            return self.sign * (math.pi / 2) * torch.tanh(self.net(x).squeeze(1))

    return BinauralNet()


# ------------------------------------------------------------------ losses
def fold(x):
    """Folds angles [rad] into [-pi/2, pi/2] (torch): asin(sin x)."""
    torch, _ = _nn()
    return torch.asin(torch.sin(x).clamp(-1.0, 1.0))


def consistency_residual(yaw, az_first, az_second):
    """Geometric inconsistency [rad] of a turn ``yaw`` with the folded
    azimuths of a static source before and after it: the smaller error of
    the front (fold(a_s - yaw)) and back (fold(a_s + yaw)) hypotheses."""
    torch, _ = _nn()
    front = (fold(az_first - yaw) - az_second).abs()
    back = (fold(az_first + yaw) - az_second).abs()
    return torch.minimum(front, back)


def consistency_loss(yaw, az_first, az_second):
    """Mean squared geometric inconsistency (zero for a consistent pair)."""
    return (consistency_residual(yaw, az_first, az_second) ** 2).mean()


def uniform_prior_loss(az):
    """1-D Wasserstein distance [rad] between a batch of folded azimuths and
    the uniform distribution on [-pi/2, pi/2]."""
    torch, _ = _nn()
    n = az.shape[0]
    q = (torch.arange(n, dtype=az.dtype) + 0.5) / n * math.pi - math.pi / 2
    return (torch.sort(az).values - q).abs().mean()


def flip_images(pair):
    return pair.flip(-1)


def flip_audio(x):
    """Left <-> right: magnitudes swapped, interaural phase negated."""
    torch, _ = _nn()
    return torch.stack([x[:, 1], x[:, 0], x[:, 2], -x[:, 3]], 1)


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
    audio: np.ndarray       # (V, 4, bands)
    loud: np.ndarray        # (V,) bool: binaural segment above MIN_LEVEL_DBFS
    azimuth: np.ndarray     # (V,) folded true azimuth where exactly one source sounds, else nan
    pairs: np.ndarray       # (P, 2) view indices
    yaw: np.ndarray         # (P,) true yaw [rad] (scoring and the supervised reference only)
    room: np.ndarray        # (P,) bag index
    n_bags: int


def build_data(bags_dirs: list, spec: RotationSpec, progress=sys.stderr,
               options: BagOptions = BagOptions()) -> Data:
    """The views and turn pairs of every usable bag (``rotation.dataset.load_all``)."""
    grey, audio, loud, az, pairs, yaw, room = [], [], [], [], [], [], []
    bags, prs = load_all(list(bags_dirs), spec, progress=progress, options=options)
    starts = np.cumsum([0] + [len(b.views) for b in bags])
    for b in bags:
        for v in b.views:
            grey.append(v.grey)
            audio.append(v.audio if v.audio is not None else
                         np.zeros((4, spec.bands), np.float32))
            loud.append(v.audio is not None and v.level_dbfs > MIN_LEVEL_DBFS)
            az.append(fold_front(v.azimuths[0]) if len(v.azimuths) == 1 else np.nan)
    for p in prs:
        pairs.append((starts[p.bag] + p.first, starts[p.bag] + p.second))
        yaw.append(p.yaw if p.yaw is not None else np.nan)
        room.append(p.bag)
    if len(pairs) < 10:
        raise ConfigError(f'only {len(pairs)} turn-in-place pairs in {bags_dirs}; need more bags')
    return Data(np.stack(grey), np.stack(audio), np.array(loud), np.array(az, np.float32),
                np.array(pairs), np.array(yaw, np.float32), np.array(room), len(bags))


def spec_for_bags(bags_dirs: list, options: BagOptions = BagOptions()) -> RotationSpec:
    """The models' contract for the bags' camera: the default one with the
    horizontal field of view of the first bag's CameraInfo (the other bags
    must match it: ``rotation.dataset.load_views``)."""
    camera = first_camera(list_bags(*bags_dirs), options.namespace)
    return RotationSpec(hfov_deg=round(camera.hfov_deg, 2))


# ---------------------------------------------------------------- training
def _batch_losses(vis, aud, data_t, idx, target, rng, fixed_yaw=None):
    """The loss terms of one batch of pairs (random view swaps and mirrors).
    With ``fixed_yaw`` (the frozen visual model's yaw of every pair, the
    warm-up), only the binaural network learns."""
    torch, _ = _nn()
    grey, audio, loud, az, pairs, yaw = data_t
    p = pairs[idx]
    swap = torch.from_numpy(rng.random(len(idx)) < 0.5)
    first = torch.where(swap, p[:, 1], p[:, 0])
    second = torch.where(swap, p[:, 0], p[:, 1])
    img = torch.stack([grey[first], grey[second]], 1)
    xa, xb = audio[first], audio[second]
    sign = torch.where(swap, -1.0, 1.0)
    mirror = torch.from_numpy(rng.random(len(idx)) < 0.5)
    img = torch.where(mirror.view(-1, 1, 1, 1), flip_images(img), img)
    xa = torch.where(mirror.view(-1, 1, 1), flip_audio(xa), xa)
    xb = torch.where(mirror.view(-1, 1, 1), flip_audio(xb), xb)
    sign = torch.where(mirror, -sign, sign)
    if fixed_yaw is not None:
        r = sign * fixed_yaw[idx]
        terms = {}
    else:
        fa, fb = vis.features(img[:, 0:1]), vis.features(img[:, 1:2])
        mirrored = flip_images(img)
        logits = vis.curve(fa, fb)
        r = vis.yaw_of(logits)
        r_mirror = vis.from_features(vis.features(mirrored[:, 0:1]),
                                     vis.features(mirrored[:, 1:2]))
        terms = {'mirror': ((r + r_mirror) ** 2).mean()}
    a_s, a_t = aud(xa), aud(xb)
    a_s_flip = aud(flip_audio(xa))
    both = loud[first] & loud[second]
    terms['binaural'] = ((a_s + a_s_flip)[loud[first]] ** 2).mean() if loud[first].any() \
        else r.sum() * 0
    if target == 'selfsup':
        if both.any():
            # the sound learns from the turn (weight 'consistency') and the
            # turn, more weakly, from the sound ('consistency_visual')
            huber = torch.nn.functional.smooth_l1_loss
            res = consistency_residual(r[both].detach(), a_s[both], a_t[both])
            terms['consistency'] = huber(res, torch.zeros_like(res), beta=0.1)
            if fixed_yaw is None:
                res = consistency_residual(r[both], a_s[both].detach(), a_t[both].detach())
                terms['consistency_visual'] = huber(res, torch.zeros_like(res), beta=0.1)
            terms['prior'] = uniform_prior_loss(torch.cat([a_s[loud[first]],
                                                           a_t[loud[second]]]))
    else:
        terms['yaw'] = ((r - sign * yaw[idx]) ** 2).mean()
        terms['yaw_curve'] = curve_loss(vis, logits, sign * yaw[idx])
        ok = ~torch.isnan(az[first])
        a_true = torch.where(mirror, -az[first], az[first])
        if ok.any():
            terms['azimuth'] = ((a_s - a_true)[ok] ** 2).mean()
    return terms


WEIGHTS = {'mirror': 1.0, 'binaural': 1.0, 'consistency': 10.0,
           'consistency_visual': 1.0, 'prior': 1.0,
           'yaw': 10.0, 'yaw_curve': 1.0, 'azimuth': 1.0, 'pretext': 10.0,
           'pretext_curve': 1.0}


def _val_loss(vis, aud, data_t, idx, target) -> float:
    """The validation loss (no labels for the self-supervised target)."""
    torch, _ = _nn()
    rng = np.random.default_rng(123)  # the same swaps and mirrors every epoch
    with torch.no_grad():
        terms = _batch_losses(vis, aud, data_t, idx, target, rng)
    return float(sum(WEIGHTS[k] * v for k, v in terms.items()))


def train(bags_dirs: list, out_dir: str | Path, targets: tuple = TARGETS, epochs: int = 12,
          batch: int = 32, lr: float = 2e-3, seed: int = 0, pretext: int = 6, warmup: int = 6,
          scale_from_labels: bool = True, progress=sys.stderr,
          options: BagOptions = BagOptions()) -> dict:
    """Train the chosen targets from the same data, checkpoint each epoch
    (resumable), fix the self-supervised sign, export ONNX; returns a summary.

    The self-supervised run has up to three phases: ``pretext`` epochs of
    the visual pretext task (:func:`synthetic_pairs`), ``warmup`` epochs in
    which the visual network is frozen and only the binaural network learns
    from the turns it sees (the consistency loss with the visual yaw as the
    teacher), then, if ``epochs`` leaves any, a joint phase in which both
    learn from the real turn pairs (every term of the module docstring, the
    pretext term included). The default has no joint phase: with a binaural
    network far less accurate than the visual one, letting the sound teach
    the camera made the camera worse (docs/rotation.md). Joint training from scratch
    settles on the trivial solution (no turn, no direction change): the
    pretext task stands in for the paper's (cross-view binauralization, not
    done here). The kept weights are those of the best validation loss
    among the epochs of the last phase; :func:`fix_sign` then fixes the
    signs (and, with ``scale_from_labels``, the visual scale) from
    SIGN_PAIRS labelled validation samples (their yaw: gt/pose, or the
    odometry of bags without it). The models' field of view is the bags'
    camera's (CameraInfo); ``options``: how the bags are read
    (``rotation.dataset.BagOptions``: turn pairs, odometry frames,
    namespace)."""
    torch, _ = _nn()
    for t in targets:
        if t not in TARGETS:
            raise ConfigError(f'--target must be one of {TARGETS}, got {t!r}')
    if min(epochs, pretext + 1, warmup + 1) < 1:
        raise ConfigError(f'epochs must be >= 1 and the pretext and binaural epochs >= 0, got '
                          f'{epochs}, {pretext} and {warmup}')
    out_dir = Path(out_dir)
    spec = spec_for_bags([Path(d) for d in bags_dirs], options)
    t_load = time.perf_counter()
    data = build_data([Path(d) for d in bags_dirs], spec, progress=progress, options=options)
    load_s = time.perf_counter() - t_load
    # validation: the last tenth of the rooms (whole rooms held out)
    n_val = max(1, data.n_bags // 10)
    val = data.room >= data.n_bags - n_val
    data_t = (torch.from_numpy(data.grey), torch.from_numpy(data.audio),
              torch.from_numpy(data.loud), torch.from_numpy(data.azimuth),
              torch.from_numpy(data.pairs), torch.from_numpy(data.yaw))
    summary = {'pairs': int(len(data.pairs)), 'views': int(len(data.grey)),
               'bags': data.n_bags, 'val_pairs': int(val.sum()),
               'loud_views': int(data.loud.sum()), 'load_seconds': round(load_s, 1)}
    print(f'[train] {summary}', file=progress)
    fingerprint_data = [str(d) for d in bags_dirs] + [int(len(data.pairs)),
                                                      float(data.grey.sum())]
    for target in targets:
        selfsup = target == 'selfsup'
        summary[target] = _train_one(data, data_t, val, spec, target, out_dir, epochs, batch,
                                     lr, seed, pretext if selfsup else 0,
                                     warmup if selfsup else 0, fingerprint_data,
                                     scale_from_labels, progress)
    return summary


def _train_one(data, data_t, val, spec, target, out_dir, epochs, batch, lr, seed, pretext,
               warmup, fingerprint_data, scale_from_labels, progress) -> dict:
    torch, _ = _nn()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    vis, aud = make_visual(spec), make_binaural(spec.bands)
    params = list(vis.parameters()) + list(aud.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    # warm-up of the learning rate over ~10 % of the epochs, at least 2
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs,
                                                pct_start=min(0.5, max(0.1, 2.0 / epochs)))
    both = torch.nn.ModuleDict({'vis': vis, 'aud': aud})   # checkpointed together
    ck = Checkpoints(out_dir / 'rotation_checkpoints' / target,
                     fingerprint(*fingerprint_data, target, epochs, batch, lr, seed, pretext,
                                 warmup, spec.to_metadata()), progress)
    start = ck.resume(both, opt, sched)
    if start:
        rng = np.random.default_rng([seed, start])
    tr_idx, va_idx = np.flatnonzero(~val), np.flatnonzero(val)
    # the frames of the training rooms (the pretext task's material)
    tr_views = np.unique(data.pairs[tr_idx])
    t0 = time.perf_counter()
    fixed_yaw = None

    def phase_of(epoch: int) -> str:
        return ('pretext' if epoch < pretext else 'warmup' if epoch < pretext + warmup
                else 'joint')
    last_phase = phase_of(epochs - 1)
    for epoch in range(start, epochs):
        phase = phase_of(epoch)
        if phase == 'warmup' and fixed_yaw is None:
            vis.eval()
            with torch.no_grad():
                fixed_yaw = torch.cat([vis(torch.stack([data_t[0][p[:, 0]], data_t[0][p[:, 1]]],
                                                       1)) for p in data_t[4].split(256)])
        synth = None
        if pretext and phase != 'warmup':
            synth = [torch.from_numpy(a) for a in synthetic_pairs(data.grey[tr_views], spec, rng)]
        vis.train()
        aud.train()
        perm = rng.permutation(tr_idx)
        losses = []
        steps = len(tr_views) if phase == 'pretext' else len(perm)
        for k, i in enumerate(range(0, steps - batch // 2, batch)):
            if phase == 'pretext':
                terms = {}
            else:
                terms = _batch_losses(vis, aud, data_t, torch.from_numpy(perm[i:i + batch]),
                                      target, rng, fixed_yaw if phase == 'warmup' else None)
            if synth is not None:
                j = torch.from_numpy(rng.integers(0, len(synth[0]), batch))
                pair = synth[0][j]
                r, terms['pretext'], terms['pretext_curve'] = yaw_terms(vis, pair, synth[1][j])
                if phase == 'pretext':
                    terms['mirror'] = ((r + vis(flip_images(pair))) ** 2).mean()
            loss = sum(WEIGHTS[k] * v for k, v in terms.items())
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            losses.append(float(loss.detach()))
        sched.step()
        vis.eval()
        aud.eval()
        vloss = _val_loss(vis, aud, data_t, torch.from_numpy(va_idx), target)
        # the best epoch is chosen among those of the last phase (the losses
        # of different phases are not comparable)
        ck.save(both, opt, sched, epoch + 1,
                {'epoch': epoch + 1, 'phase': phase, 'train_loss': float(np.mean(losses)),
                 'val_loss': vloss}, comparable=lambda e: e['phase'] == last_phase)
        print(f'\r[train] {target} epoch {epoch + 1}/{epochs} ({phase}) train '
              f'{np.mean(losses):.4f} val {vloss:.4f} ({time.perf_counter() - t0:.0f} s)',
              end='', file=progress, flush=True)
    print(file=progress)
    curve_png = ck.plot(f'loss ({target})', log=True)
    best_epoch = ck.best(both)
    vis.eval()
    aud.eval()
    sign_note = 'labels'
    if target == 'selfsup':
        sign_note = fix_sign(vis, aud, data, va_idx, data_t, scale=scale_from_labels)
    with torch.no_grad():
        out = rotation_outputs(vis, data_t[4][va_idx], data_t[0]).numpy()
    err = np.degrees(np.abs(out[:, 0] - data.yaw[va_idx]))
    spread = float(np.median(out[:, 1])) if len(out) else 0.0
    vis_file, aud_file = FILES[target]
    meta = {'training': target, 'train_pairs': str(int((~val).sum())),
            'train_bags': str(data.n_bags), 'sign': sign_note,
            'spread_floor_rad': f'{SPREAD_FLOOR_RAD:.6f}'}
    export_visual(vis, spec, out_dir / vis_file, meta)
    export_binaural(aud, spec, out_dir / aud_file, meta)
    return {'best_epoch': best_epoch, 'val_median_yaw_error_deg':
            round(float(np.median(err)), 2), 'val_median_spread_deg':
            round(math.degrees(spread), 2), 'sign': sign_note,
            'curve': str(curve_png), 'train_seconds':
            round(time.perf_counter() - t0, 1)}


def rotation_outputs(vis, pairs, grey):
    """(yaw, spread) per pair, as the exported graph computes them
    (:func:`_Exported`)."""
    torch, _ = _nn()
    img = torch.stack([grey[pairs[:, 0]], grey[pairs[:, 1]]], 1)
    return _Exported(vis)(img)


def fix_sign(vis, aud, data: Data, va_idx: np.ndarray, data_t, scale: bool = True) -> str:
    """The global signs, and (``scale``) the visual yaw's scale, from a
    handful of labelled validation samples.

    The visual yaw: the first SIGN_PAIRS labelled validation pairs vote for
    its sign, as the paper does; with ``scale``, the same pairs also give
    its scale: the median of true / estimated yaw over those of them that
    turned by more than 5 deg and agree in sign. The pretext task teaches
    the turn of a camera turning about its own centre; a robot's camera
    sits ahead of the turning axis (0.10 m on the simulated robot), so a
    turn also moves it sideways and near things shift a few percent more
    than the turn (parallax), which no label-free signal here measures (the
    paper's sound could, with a working binaural network). It is one
    number, like a gyro's scale factor; a robot can take it from a few
    commanded turns. The binaural azimuth: with folded azimuths a mirrored
    binaural network is exactly as consistent (a source in front seen
    mirrored behaves like one behind), so the first SIGN_PAIRS validation
    views with one labelled direction vote for its sign."""
    torch, _ = _nn()
    idx = va_idx[:SIGN_PAIRS]
    with torch.no_grad():
        r = rotation_outputs(vis, data_t[4][idx], data_t[0])[:, 0].numpy()
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
    views = np.unique(data.pairs[va_idx])
    views = views[~np.isnan(data.azimuth[views])][:SIGN_PAIRS]
    with torch.no_grad():
        a = aud(data_t[1][views]).numpy()
    agree_a = float(np.sum(a * data.azimuth[views]))
    if agree_a < 0:
        aud.sign.mul_(-1.0)
    return (f'visual {"flipped" if agree < 0 else "kept"} by {len(idx)} labelled validation '
            f'pairs{note_scale}, binaural {"flipped" if agree_a < 0 else "kept"} by '
            f'{len(views)} labelled validation views')


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


def export_binaural(aud, spec: RotationSpec, path: Path, meta: dict):
    """ONNX of the binaural model with its contract; returns the exported module."""
    torch, _ = _nn()
    aud = aud.eval()
    _export(aud, torch.zeros(1, 4, spec.bands), path, 'features', 'azimuth',
            {'task': 'rotation_binaural', 'model_id': f'rotation-binaural-{meta["training"]}',
             **spec.to_metadata(), **meta})
    return aud
