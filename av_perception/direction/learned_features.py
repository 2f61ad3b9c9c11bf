"""Input features and output maps of the learned direction models (numpy
only: the node computes exactly what training computed).

Features, per microphone pair of the array, over one analysis window:
- GCC-PHAT-beta cross-correlation, interpolated, over the physically
  possible lags (plus a margin); with ``onset_history`` > 0 the
  cross-spectrum is that of the window's short frames, each time-frequency
  bin weighted by its onset (``direction.srp.onset_weights``, the acoustic
  image's weighting: the direct sound before its reflections);
- level differences [dB] in log-spaced bands (head shadow for a binaural
  head; near zero for a small free-field array).

Output: a distribution over an azimuth grid — the full circle for arrays
that can tell front from back, the front half (-90..90 deg) for 2-mic and
binaural arrays.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, fields

import numpy as np

from av_perception.arrays import ArrayGeometry
from av_perception.errors import ConfigError
from av_perception.direction.classic import PHAT_BETA, fold_front
from av_perception.direction.features import stft
from av_perception.direction.srp import has_onsets, onset_weights, weighted_cross_spectra

C = 343.0
#: frame length [samples] of the onset-weighted cross-spectrum (16 ms at 16 kHz, hop 8 ms:
#: the acoustic image's, ``ClassicDoa``'s nfft)
ONSET_NFFT = 256
#: the longest onset history a training command accepts [frames of ONSET_NFFT / 2]
MAX_ONSET_HISTORY = 16


@dataclass(frozen=True)
class FeatureSpec:
    """The input contract of a learned direction model (stored in its ONNX
    metadata; a node refuses a model whose contract does not match its
    array).

    Attributes:
        array: geometry name.
        channels: microphones.
        sample_rate: Hz.
        window: samples per analysis window.
        max_lag: interpolated lags on each side of zero.
        upsample: interpolation factor of the cross-correlation.
        bands: level-difference bands.
        fmin, fmax: band range [Hz].
        bins: azimuth bins of the output.
        front_only: True if the output covers -90..90 deg only.
        onset_history: 0: the cross-correlation of the whole window; > 0:
            of its :data:`ONSET_NFFT` frames, each bin weighted by its rise
            over this many frames before it (models from before it: 0).
    """

    array: str
    channels: int
    sample_rate: int
    window: int
    max_lag: int
    upsample: int
    bands: int
    fmin: float
    fmax: float
    bins: int
    front_only: bool
    onset_history: int = 0

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return [(i, j) for i in range(self.channels) for j in range(i + 1, self.channels)]

    @property
    def n_features(self) -> int:
        return len(self.pairs) * (2 * self.max_lag + 1 + self.bands)

    def grid(self) -> np.ndarray:
        """Centres of the output's azimuth bins [rad]."""
        if self.front_only:
            return np.linspace(-math.pi / 2, math.pi / 2, self.bins)
        return np.linspace(-math.pi, math.pi, self.bins, endpoint=False)

    def to_metadata(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> FeatureSpec:
        kinds = {f: t for f, t in cls.__annotations__.items()}
        defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
        out = {}
        for f, t in kinds.items():
            if f not in meta and f in defaults:   # a model from before the field
                out[f] = defaults[f]
                continue
            v = meta[f]
            out[f] = (v == 'True') if t == 'bool' else int(v) if t == 'int' else \
                float(v) if t == 'float' else v
        return cls(**out)


def check_onset_history(frames: int, option: str = '--onset-history') -> None:
    """Raise ``ConfigError`` unless ``frames`` is 0..:data:`MAX_ONSET_HISTORY`."""
    if not 0 <= frames <= MAX_ONSET_HISTORY:
        raise ConfigError(f'{option} must be 0..{MAX_ONSET_HISTORY} frames, got {frames}')


def spec_for(geometry: ArrayGeometry, window: int = 4096, upsample: int = 4,
             bands: int = 16, onset_history: int = 0) -> FeatureSpec:
    """The feature contract for an array (lags cover its aperture, or a
    head's largest interaural delay, plus a margin)."""
    max_tau = geometry.aperture / C
    if geometry.kind == 'binaural':
        max_tau = max(max_tau, 1.0e-3)
    max_lag = int(math.ceil(max_tau * geometry.sample_rate * upsample)) + 2 * upsample
    front = geometry.front_back_ambiguous
    return FeatureSpec(array=geometry.name, channels=geometry.channels,
                       sample_rate=geometry.sample_rate, window=window, max_lag=max_lag,
                       upsample=upsample, bands=bands, fmin=200.0,
                       fmax=min(7000.0, geometry.sample_rate / 2 * 0.9),
                       bins=37 if front else 72, front_only=front,
                       onset_history=onset_history)


def features(samples: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """(channels, window) float -> (n_features,) float32."""
    x = np.asarray(samples, np.float64)
    n = 2 * spec.window
    X = np.fft.rfft(x * np.hanning(x.shape[1]), n, axis=1)
    f = np.fft.rfftfreq(n, 1 / spec.sample_rate)
    band = (f >= spec.fmin) & (f <= spec.fmax)
    edges = np.geomspace(spec.fmin, spec.fmax, spec.bands + 1)
    idx = np.clip(np.searchsorted(edges, f) - 1, 0, spec.bands - 1)
    power = np.abs(X) ** 2
    if spec.onset_history > 0:
        # the frames' cross-spectra, each bin weighted by its onset and summed
        # over the frames (all frames alike where nothing rises: a steady tone)
        S = stft(x, ONSET_NFFT)                                   # (M, F', frames)
        sf = np.fft.rfftfreq(ONSET_NFFT, 1 / spec.sample_rate)
        sband = (sf >= spec.fmin) & (sf <= spec.fmax)
        w = onset_weights((np.abs(S[:, sband]) ** 2).sum(axis=0), spec.onset_history)
        cross = weighted_cross_spectra(S, sband, spec.pairs, w if has_onsets(w) else None,
                                       PHAT_BETA)
        n_cross = ONSET_NFFT
    else:   # the whole window: one frame, unweighted
        cross = weighted_cross_spectra(X[:, :, None], band, spec.pairs, None, PHAT_BETA)
        n_cross = n
    out = []
    for k, (i, j) in enumerate(spec.pairs):
        r = np.fft.irfft(cross[k], n_cross * spec.upsample)
        L = spec.max_lag
        g = np.concatenate([r[-L:], r[:L + 1]])
        g = g / (np.abs(g).max() + 1e-12)
        pi = np.bincount(idx[band], power[i][band], spec.bands) + 1e-12
        pj = np.bincount(idx[band], power[j][band], spec.bands) + 1e-12
        out.append(g)
        out.append(np.clip(10 * np.log10(pi / pj), -30, 30) / 10.0)
    return np.concatenate(out).astype(np.float32)


def map_to_bins(azimuths: np.ndarray, values: np.ndarray, spec: FeatureSpec,
                sharpen: bool = True) -> np.ndarray:
    """Resample a spatial map (e.g. a teacher's SRP map over azimuths) onto the
    model's bins; a front-only model takes the larger of each direction and
    its front/back mirror. Returns a distribution (sums to 1)."""
    values = np.asarray(values, np.float64)
    values = values - values.min()
    grid = spec.grid()
    az = np.asarray(azimuths, np.float64)
    if spec.front_only:
        az = np.where(az > math.pi / 2, math.pi - az,
                      np.where(az < -math.pi / 2, -math.pi - az, az))
    out = np.zeros(spec.bins)
    width = (grid[1] - grid[0])
    for a, v in zip(az, values):
        d = np.abs((grid - a + math.pi) % (2 * math.pi) - math.pi)
        k = int(np.argmin(d))
        if d[k] <= width:
            out[k] = max(out[k], v)
    if sharpen:
        out = out ** 2  # sharpen the acoustic image around its peaks
    return (out / out.sum()).astype(np.float32) if out.sum() > 0 else \
        np.full(spec.bins, 1.0 / spec.bins, np.float32)


def label_map(azimuths: list[float], spec: FeatureSpec, sigma_deg: float = 5.0) -> np.ndarray:
    """The ground-truth ablation target: a Gaussian bump per source."""
    grid = spec.grid()
    out = np.zeros(spec.bins)
    for a in azimuths:
        if spec.front_only:
            a = math.pi - a if a > math.pi / 2 else (-math.pi - a if a < -math.pi / 2 else a)
        d = (grid - a + math.pi) % (2 * math.pi) - math.pi
        out += np.exp(-0.5 * (np.degrees(d) / sigma_deg) ** 2)
    return (out / out.sum()).astype(np.float32)


def window_starts(n: int, window: int) -> np.ndarray:
    """First samples of the model windows that cover a block of ``n`` >=
    ``window`` samples, overlapping by about half (the first at 0, the last
    ending at ``n``): the windows whose distributions an estimate over a
    longer block averages."""
    if n < window:
        raise ValueError(f'a block of {n} samples is shorter than the window ({window})')
    count = 1 + int(np.ceil((n - window) / (window // 2)))
    return np.linspace(0, n - window, count).round().astype(int)


def calibration(spec: FeatureSpec, sign: float = 1.0, scale: float = 1.0) -> np.ndarray:
    """(bins, bins) matrix M such that ``p @ M`` is the distribution of
    fold(sign x scale x azimuth) when p is a distribution over
    ``spec.grid()`` (each bin's mass split linearly between the two bins
    around its new azimuth). It fixes the global sign (and scale) of a
    front/back-ambiguous model trained without labels: a mirrored model is
    exactly as consistent with the motion as the right one.

    Raises:
        ValueError: a full-circle spec, or a scale that is not positive.
    """
    if not spec.front_only:
        raise ValueError('a calibration of folded azimuths needs a front-only spec')
    if not scale > 0:
        raise ValueError(f'scale must be positive, got {scale}')
    grid = spec.grid()
    step = grid[1] - grid[0]
    target = np.array([fold_front(a) for a in np.sign(sign) * scale * grid])
    pos = np.clip((target - grid[0]) / step, 0.0, spec.bins - 1.0)
    lo = np.minimum(np.floor(pos).astype(int), spec.bins - 2)
    frac = pos - lo
    m = np.zeros((spec.bins, spec.bins))
    m[np.arange(spec.bins), lo] = 1.0 - frac
    m[np.arange(spec.bins), lo + 1] += frac
    return m.astype(np.float32)


def peaks(prob: np.ndarray, spec: FeatureSpec, k: int) -> list[tuple[float, float]]:
    """(azimuth [rad], confidence) of the k strongest local maxima of a
    predicted distribution; confidence = the probability mass within two
    bins of the peak."""
    p = np.asarray(prob, np.float64)
    n = len(p)
    grid = spec.grid()
    cands = []
    for i in range(n):
        left = p[i - 1] if (i > 0 or not spec.front_only) else -1
        right = p[(i + 1) % n] if (i < n - 1 or not spec.front_only) else -1
        if p[i] >= left and p[i] >= right:
            cands.append(i)
    cands.sort(key=lambda i: p[i], reverse=True)
    out = []
    for i in cands[:k]:
        lo, hi = i - 2, i + 3
        if spec.front_only:
            mass = p[max(0, lo):min(n, hi)].sum()
        else:
            mass = p[np.arange(lo, hi) % n].sum()
        # refine with the neighbours' weighted mean
        nb = np.arange(i - 1, i + 2)
        if spec.front_only:
            nb = nb[(nb >= 0) & (nb < n)]
        w = p[nb % n]
        d = (grid[nb % n] - grid[i] + math.pi) % (2 * math.pi) - math.pi
        az = grid[i] + float((w * d).sum() / w.sum())
        out.append((float((az + math.pi) % (2 * math.pi) - math.pi), float(min(1.0, mass))))
    return out
