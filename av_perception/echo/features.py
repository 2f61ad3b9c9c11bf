"""The echo front end: one function turns an echo chunk into the network's
input, used alike by the data set, training, evaluation and the node.

An echo chunk (``audio/echo``) holds ``channels`` microphones, sample 0 = the
chirp's emission instant, ``window`` samples = the round trip to the maximum
range (2 * max_range / c). Features per time-frequency cell (STFT):

0..C-1    log power of each channel (log10 |S|^2);
C         level difference between the first two channels (ILD, log10 ratio);
C+1, C+2  cos and sin of their phase difference (IPD): the direction of the
          reflector that a cell's sound comes from.

Time runs along the last axis (one column per STFT frame), so a column is a
"time patch" (W' x 1) -- a range bin of the echo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import stft

from av_perception.arrays import DEFAULT_ECHO_ARRAY
from av_perception.errors import InputError


@dataclass(frozen=True)
class EchoSpec:
    """Everything the features (and so a model) depend on: its input contract.

    Attributes:
        sample_rate: Hz.
        channels: microphones in the echo chunk (2 for the echo head).
        window: samples per echo chunk (round trip to the maximum range).
        n_fft: STFT frame length [samples].
        hop: STFT hop [samples].
        bins: frequency bins kept (0 .. bins-1, i.e. up to bins * fs / n_fft Hz).
        frames: STFT frames (the chunk is zero-padded to fit them).
        geometry: array geometry id (config/arrays/<geometry>.yaml).
        max_range: metres the window covers (2 * max_range / 343 s).
    """

    sample_rate: int = 44100
    channels: int = 2
    window: int = 3086
    n_fft: int = 128
    hop: int = 32
    bins: int = 64
    frames: int = 96
    geometry: str = DEFAULT_ECHO_ARRAY
    max_range: float = 12.0

    @property
    def n_channels(self) -> int:
        """Feature planes: the channels' log power, ILD, cos IPD, sin IPD."""
        return self.channels + 3

    @property
    def padded(self) -> int:
        """Samples the STFT covers (window zero-padded to ``frames`` frames)."""
        return self.n_fft + (self.frames - 1) * self.hop

    def to_metadata(self) -> dict[str, str]:
        return {'sample_rate': str(self.sample_rate), 'channels': str(self.channels),
                'window': str(self.window), 'n_fft': str(self.n_fft), 'hop': str(self.hop),
                'bins': str(self.bins), 'frames': str(self.frames),
                'geometry': self.geometry, 'max_range': f'{self.max_range:g}'}

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> EchoSpec:
        try:
            return cls(sample_rate=int(meta['sample_rate']), channels=int(meta['channels']),
                       window=int(meta['window']), n_fft=int(meta['n_fft']),
                       hop=int(meta['hop']), bins=int(meta['bins']),
                       frames=int(meta['frames']), geometry=meta['geometry'],
                       max_range=float(meta['max_range']))
        except (KeyError, ValueError) as exc:
            raise InputError('model', 'echo-depth model metadata (sample_rate, channels, '
                             'window, n_fft, hop, bins, frames, geometry, max_range)',
                             f'missing or bad {exc}') from None


def spec_for(geometry, max_range: float = 12.0, sound_speed: float = 343.0) -> EchoSpec:
    """The default spec for an echo array geometry and maximum range [m]."""
    window = int(math.ceil(2.0 * max_range / sound_speed * geometry.sample_rate))
    hop = max(1, int(round(32 * geometry.sample_rate / 44100)))
    n_fft = 4 * hop
    frames = int(math.ceil((window - n_fft) / hop)) + 1
    frames = 8 * int(math.ceil(frames / 8))  # the encoder halves time three times
    return EchoSpec(sample_rate=int(geometry.sample_rate), channels=int(geometry.channels),
                    window=window, n_fft=n_fft, hop=hop, bins=min(64, n_fft // 2),
                    frames=frames, geometry=geometry.name, max_range=float(max_range))


def check_echo(echo: np.ndarray, spec: EchoSpec, sample_rate: int | None = None) -> np.ndarray:
    """Validate one echo chunk (channels, samples); returns it as float32.

    A chunk longer than the window is cut to it (the tail is beyond the
    maximum range); a shorter one is refused: the far range would be missing.

    Raises:
        InputError: wrong channel count, sample rate or a too short chunk.
    """
    echo = np.asarray(echo, np.float32)
    if echo.ndim != 2 or echo.shape[0] != spec.channels:
        raise InputError('channels', f'an echo of {spec.channels} channels (model contract)',
                         f'shape {echo.shape}')
    if sample_rate is not None and int(sample_rate) != spec.sample_rate:
        raise InputError('sample_rate', f'{spec.sample_rate} Hz (model contract)',
                         f'{sample_rate} Hz')
    if echo.shape[1] < spec.window:
        raise InputError('window', f'at least {spec.window} samples (round trip to '
                         f'{spec.max_range:g} m)', f'{echo.shape[1]} samples')
    if not np.isfinite(echo).all():
        raise InputError('non_finite', 'finite samples', 'NaN/Inf samples')
    return echo[:, :spec.window]


def echo_features(echo: np.ndarray, spec: EchoSpec, sample_rate: int | None = None) -> np.ndarray:
    """(channels, samples) echo -> float32 features (n_channels, bins, frames).

    Raises:
        InputError: see :func:`check_echo`.
    """
    echo = check_echo(echo, spec, sample_rate)
    x = np.zeros((spec.channels, spec.padded), np.float32)
    x[:, :spec.window] = echo
    _, _, s = stft(x, nperseg=spec.n_fft, noverlap=spec.n_fft - spec.hop, window='hann',
                   boundary=None, padded=False)
    s = s[:, :spec.bins, :spec.frames]
    power = np.log10(np.abs(s) ** 2 + 1e-12)
    cross = s[0] * np.conj(s[1])
    phase = np.angle(cross)
    feats = np.concatenate([power, (power[0] - power[1])[None], np.cos(phase)[None],
                            np.sin(phase)[None]])
    return feats.astype(np.float32)


def mirror_features(feats: np.ndarray) -> np.ndarray:
    """Features of the same echo heard with the left and right microphones
    swapped (the scene mirrored about the head's x-z plane, for a two-mic
    head symmetric about it): exactly ``echo_features(echo[::-1])``.
    Works on (n_channels, F, T) or a batch (N, n_channels, F, T)."""
    f = np.asarray(feats)
    out = f.copy()
    c = f.shape[-3] - 3
    if c != 2:
        raise InputError('channels', 'features of a two-microphone echo head', f'{c} channels')
    out[..., 0, :, :] = f[..., 1, :, :]
    out[..., 1, :, :] = f[..., 0, :, :]
    out[..., 2, :, :] = -f[..., 2, :, :]
    out[..., 4, :, :] = -f[..., 4, :, :]
    return out
