"""Training of the rotation models (PyTorch): Sound Localization from Motion.

Two small networks:

- ``VisualRotationNet``: yaw between two camera frames. A shared CNN encoder
  (stride 2) on each grey frame (reprojected onto a cylinder, where a turn
  is a horizontal shift: av_perception.rotation.features), a horizontal
  correlation (cost volume) of the two feature maps over +-``MAX_SHIFT``
  cells, a softmax over the shifts (plus each pixel's expected shift and
  peak probability), convolutions and a linear head -> yaw [rad], CCW
  positive (REP 103): the second frame's heading relative to the first.
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
- visual symmetry: swapping the two views negates the yaw, and mirroring
  both frames left/right negates it (with the binaural channels swapped, the
  consistency holds for the mirrored pair too);
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

Training runs in phases: pretext (visual only), binaural warm-up (visual
frozen, the binaural network learns from the turns it sees), then joint.

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

import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from av_perception.doa.classic import fold_front
from av_perception.errors import ConfigError
from av_perception.rotation.dataset import load_all
from av_perception.rotation.features import RotationSpec, hfov_deg

TARGETS = ('selfsup', 'labels')
MAX_SHIFT = 36            # cells of the stride-2 feature map (+-50.6 deg at 128 px, 90 deg HFOV)
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

    Its yaw is ``scale`` x the confidence-weighted mean shift of the cost
    volume plus a learned correction. ``scale`` starts at the cylinder's
    value (a shift of one input column is hfov / S rad; a left turn moves
    the scene right, hence the minus) and is then learned like every other
    weight."""
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
            self.temperature = nn.Parameter(torch.tensor(10.0))
            n = 2 * MAX_SHIFT + 1
            self.head = nn.Sequential(
                nn.Conv2d(n + 2, 32, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 1))
            self.register_buffer('shifts', torch.arange(-MAX_SHIFT, MAX_SHIFT + 1,
                                                        dtype=torch.float32).view(1, n, 1, 1))
            nn.init.zeros_(self.head[-1].weight)
            nn.init.zeros_(self.head[-1].bias)
            # yaw [rad] per unit of mean shift (MAX_SHIFT cells of 2 input columns)
            sp = spec or RotationSpec()
            self.scale = nn.Parameter(torch.tensor(-2.0 * MAX_SHIFT * column_rad(sp)))
            self.register_buffer('sign', torch.tensor(1.0))

        def features(self, img):
            f = self.enc(img)
            return f / (f.norm(dim=1, keepdim=True) + 1e-6)

        def forward(self, pair):
            return self.from_features(self.features(pair[:, 0:1]),
                                      self.features(pair[:, 1:2]))

        def from_features(self, a, b):
            """Yaw from the two frames' encoder features."""
            w = a.shape[-1]
            bp = nn.functional.pad(b, (MAX_SHIFT, MAX_SHIFT))
            # cost volume: similarity of a(x) and b(x - d) for each shift d
            cost = torch.stack([(a * bp[..., MAX_SHIFT - d:MAX_SHIFT - d + w]).sum(1)
                                for d in range(-MAX_SHIFT, MAX_SHIFT + 1)], dim=1)
            prob = torch.softmax(self.temperature * cost, dim=1)
            expected = (prob * self.shifts).sum(1, keepdim=True) / MAX_SHIFT
            peak = prob.max(dim=1, keepdim=True).values
            # the confidence-weighted mean shift, times a learned scale, plus
            # the head's correction (perspective, parallax, occlusions)
            shift = (expected * peak).sum((2, 3)) / (peak.sum((2, 3)) + 1e-6)
            correction = self.head(torch.cat([prob, expected, peak], 1))
            return self.sign * (self.scale * shift + correction).squeeze(1)

    return VisualRotationNet()


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


def build_data(bags_dirs: list, spec: RotationSpec, progress=sys.stderr) -> Data:
    grey, audio, loud, az, pairs, yaw, room, offset, n_bags = [], [], [], [], [], [], [], 0, 0
    all_bags = []
    for d in bags_dirs:
        bags, prs = load_all(d, spec, progress=progress)
        all_bags += bags
        starts = np.cumsum([0] + [len(b.views) for b in bags])
        for b in bags:
            for v in b.views:
                grey.append(v.grey)
                audio.append(v.audio if v.audio is not None else
                             np.zeros((4, spec.bands), np.float32))
                loud.append(v.audio is not None and v.level_dbfs > MIN_LEVEL_DBFS)
                az.append(fold_front(v.azimuths[0]) if len(v.azimuths) == 1 else np.nan)
        for p in prs:
            pairs.append((offset + starts[p.bag] + p.first, offset + starts[p.bag] + p.second))
            yaw.append(p.yaw if p.yaw is not None else np.nan)
            room.append(n_bags + p.bag)
        offset += int(starts[-1])
        n_bags += len(bags)
    if len(pairs) < 10:
        raise ConfigError(f'only {len(pairs)} turn-in-place pairs in {bags_dirs}; need more bags')
    fovs = {round(hfov_deg(b.K, b.width), 1) for b in all_bags if b.K is not None}
    if any(abs(f - spec.hfov_deg) > 1.0 for f in fovs):
        raise ConfigError(f'the bags\' cameras have fields of view {sorted(fovs)} deg; the '
                          f'rotation models are made for {spec.hfov_deg} deg')
    return Data(np.stack(grey), np.stack(audio), np.array(loud), np.array(az, np.float32),
                np.array(pairs), np.array(yaw, np.float32), np.array(room), n_bags)


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
        r = vis.from_features(fa, fb)
        r_swapped = vis.from_features(fb, fa)
        r_mirror = vis.from_features(vis.features(mirrored[:, 0:1]),
                                     vis.features(mirrored[:, 1:2]))
        terms = {'swap': ((r + r_swapped) ** 2).mean(), 'mirror': ((r + r_mirror) ** 2).mean()}
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
        ok = ~torch.isnan(az[first])
        a_true = torch.where(mirror, -az[first], az[first])
        if ok.any():
            terms['azimuth'] = ((a_s - a_true)[ok] ** 2).mean()
    return terms


WEIGHTS = {'swap': 1.0, 'mirror': 1.0, 'binaural': 1.0, 'consistency': 10.0,
           'consistency_visual': 1.0, 'prior': 1.0,
           'yaw': 10.0, 'azimuth': 1.0, 'pretext': 10.0}


def _val_loss(vis, aud, data_t, idx, target) -> float:
    """The validation loss (no labels for the self-supervised target)."""
    torch, _ = _nn()
    rng = np.random.default_rng(123)  # the same swaps and mirrors every epoch
    with torch.no_grad():
        terms = _batch_losses(vis, aud, data_t, idx, target, rng)
    return float(sum(WEIGHTS[k] * v for k, v in terms.items()))


def train(bags_dirs: list, out_dir: str | Path, targets: tuple = TARGETS, epochs: int = 20,
          batch: int = 32, lr: float = 2e-3, seed: int = 0, pretext: int = 10, warmup: int = 2,
          progress=sys.stderr) -> dict:
    """Train the chosen targets from the same data, checkpoint each epoch
    (resumable), fix the self-supervised sign, export ONNX; returns a summary.

    The self-supervised run has three phases: ``pretext`` epochs of the
    visual pretext task (:func:`synthetic_pairs`), ``warmup`` epochs in which
    the visual network is frozen and only the binaural network learns from
    the turns it sees, then both learn together from the real turn pairs
    (every term of the module docstring, the pretext term included). Joint
    training from scratch settles on the trivial solution (no turn, no
    direction change): the pretext task stands in for the paper's
    (cross-view binauralization, not done here)."""
    torch, _ = _nn()
    for t in targets:
        if t not in TARGETS:
            raise ConfigError(f'--target must be one of {TARGETS}, got {t!r}')
    out_dir = Path(out_dir)
    spec = RotationSpec()
    t_load = time.perf_counter()
    data = build_data([Path(d) for d in bags_dirs], spec, progress=progress)
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
                                     warmup if selfsup else 0, fingerprint_data, progress)
    return summary


def _train_one(data, data_t, val, spec, target, out_dir, epochs, batch, lr, seed, pretext,
               warmup, fingerprint_data, progress) -> dict:
    torch, _ = _nn()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    vis, aud = make_visual(spec), make_binaural(spec.bands)
    params = list(vis.parameters()) + list(aud.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs,
                                                pct_start=0.1)
    ckpt_dir = out_dir / 'rotation_checkpoints' / target
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt = ckpt_dir / 'last.pt'
    fingerprint = hashlib.sha256(json.dumps(
        fingerprint_data + [target, epochs, batch, lr, seed, pretext, warmup,
                            spec.to_metadata()]).encode()
    ).hexdigest()
    curve, start = [], 0
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=True)
        if state.get('fingerprint') == fingerprint:
            vis.load_state_dict(state['vis'])
            aud.load_state_dict(state['aud'])
            opt.load_state_dict(state['opt'])
            sched.load_state_dict(state['sched'])
            start = int(state['epoch'])
            curve = json.loads((ckpt_dir / 'curve.json').read_text())
            rng = np.random.default_rng([seed, start])
            print(f'[train] {target}: resuming at epoch {start}', file=progress)
        else:
            print(f'[train] {ckpt} was made from other data or settings: starting afresh',
                  file=progress)
    tr_idx, va_idx = np.flatnonzero(~val), np.flatnonzero(val)
    # the frames of the training rooms (the pretext task's material)
    tr_views = np.unique(data.pairs[tr_idx])
    t0 = time.perf_counter()
    fixed_yaw = None
    for epoch in range(start, epochs):
        phase = ('pretext' if epoch < pretext else 'warmup' if epoch < pretext + warmup
                 else 'joint')
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
                terms['pretext'] = ((vis(pair) - synth[1][j]) ** 2).mean()
                if phase == 'pretext':
                    terms['mirror'] = ((vis(pair) + vis(flip_images(pair))) ** 2).mean()
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
        curve.append({'epoch': epoch + 1, 'phase': phase,
                      'train_loss': float(np.mean(losses)), 'val_loss': vloss})
        torch.save({'vis': vis.state_dict(), 'aud': aud.state_dict(), 'opt': opt.state_dict(),
                    'sched': sched.state_dict(), 'epoch': epoch + 1,
                    'fingerprint': fingerprint}, ckpt)
        # early stopping chooses among the epochs of the last phase (the losses
        # of different phases are not comparable)
        if phase == 'joint' and vloss <= min(c['val_loss'] for c in curve
                                             if c['phase'] == 'joint'):
            torch.save({'vis': vis.state_dict(), 'aud': aud.state_dict(), 'epoch': epoch + 1},
                       ckpt_dir / 'best.pt')
        (ckpt_dir / 'curve.json').write_text(json.dumps(curve))
        print(f'\r[train] {target} epoch {epoch + 1}/{epochs} ({phase}) train '
              f'{np.mean(losses):.4f} val {vloss:.4f} ({time.perf_counter() - t0:.0f} s)',
              end='', file=progress, flush=True)
    print(file=progress)
    _plot_curve(curve, ckpt_dir / 'curve.png', target)
    best = torch.load(ckpt_dir / 'best.pt', weights_only=True)
    vis.load_state_dict(best['vis'])
    aud.load_state_dict(best['aud'])
    vis.eval()
    aud.eval()
    sign_note = 'labels'
    if target == 'selfsup':
        sign_note = fix_sign(vis, aud, data, va_idx, data_t)
    with torch.no_grad():
        out = rotation_outputs(vis, data_t[4][va_idx], data_t[0]).numpy()
    err = np.degrees(np.abs(out[:, 0] - data.yaw[va_idx]))
    # confidence floor: the median forward/backward disagreement on validation pairs
    spread = float(np.median(out[:, 1])) if len(out) else 0.0
    vis_file, aud_file = FILES[target]
    meta = {'training': target, 'train_pairs': str(int((~val).sum())),
            'train_bags': str(data.n_bags), 'sign': sign_note,
            'spread_floor_rad': f'{max(spread, math.radians(0.25)):.6f}'}
    export_visual(vis, spec, out_dir / vis_file, meta)
    export_binaural(aud, spec, out_dir / aud_file, meta)
    return {'best_epoch': int(best['epoch']), 'val_median_yaw_error_deg':
            round(float(np.median(err)), 2), 'sign': sign_note,
            'curve': str(ckpt_dir / 'curve.png'), 'train_seconds':
            round(time.perf_counter() - t0, 1)}


def rotation_outputs(vis, pairs, grey):
    """(yaw, spread) per pair, as the exported graph computes them:
    yaw = (f(a, b) - f(b, a)) / 2 and spread = |f(a, b) + f(b, a)| / 2."""
    torch, _ = _nn()
    img = torch.stack([grey[pairs[:, 0]], grey[pairs[:, 1]]], 1)
    return _Symmetric(vis)(img)


def fix_sign(vis, aud, data: Data, va_idx: np.ndarray, data_t) -> str:
    """The global signs. The visual yaw: the first SIGN_PAIRS labelled
    validation pairs vote. The binaural azimuth: with folded azimuths a
    mirrored binaural network is exactly as consistent (a source in front
    seen mirrored behaves like one behind), so the first SIGN_PAIRS
    validation views with one labelled direction vote for it."""
    torch, _ = _nn()
    idx = va_idx[:SIGN_PAIRS]
    with torch.no_grad():
        r = rotation_outputs(vis, data_t[4][idx], data_t[0])[:, 0].numpy()
    agree = float(np.sum(r * data.yaw[idx]))
    if agree < 0:
        vis.sign.mul_(-1.0)
    views = np.unique(data.pairs[va_idx])
    views = views[~np.isnan(data.azimuth[views])][:SIGN_PAIRS]
    with torch.no_grad():
        a = aud(data_t[1][views]).numpy()
    agree_a = float(np.sum(a * data.azimuth[views]))
    if agree_a < 0:
        aud.sign.mul_(-1.0)
    return (f'visual {"flipped" if agree < 0 else "kept"} by {len(idx)} labelled validation '
            f'pairs, binaural {"flipped" if agree_a < 0 else "kept"} by {len(views)} labelled '
            'validation views')


def _plot_curve(curve: list, path: Path, target: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([c['epoch'] for c in curve], [c['train_loss'] for c in curve], label='train')
    ax.plot([c['epoch'] for c in curve], [c['val_loss'] for c in curve], label='validation')
    ax.set_xlabel('epoch')
    ax.set_ylabel(f'loss ({target})')
    ax.set_yscale('log')
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _Symmetric(vis):
    """The exported visual graph: (B, 2, S, S) -> (B, 2) [yaw, spread] [rad]."""
    torch, nn = _nn()

    class Symmetric(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = vis

        def forward(self, pair):
            fwd = self.net(pair)
            bwd = self.net(torch.stack([pair[:, 1], pair[:, 0]], 1))
            return torch.stack([(fwd - bwd) / 2, (fwd + bwd).abs() / 2], 1)
    return Symmetric()


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
    wrapped = _Symmetric(vis).eval()
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
