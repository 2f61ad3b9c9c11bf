"""The echolocation chirp the robot emits (chirp_emitter) and the simulator
renders: a linear sweep with raised-cosine fades (scipy.signal.chirp), and
the sample-count and fade helpers the simulator's signals share."""

from __future__ import annotations

import numpy as np


def n_samples(duration: float, sample_rate: int) -> int:
    if sample_rate <= 0 or int(sample_rate) != sample_rate:
        raise ValueError(f'sample_rate must be a positive integer [Hz], got {sample_rate!r}')
    if not np.isfinite(duration) or duration < 0:
        raise ValueError(f'duration must be >= 0 [s], got {duration!r}')
    return int(round(duration * sample_rate))


def ramp(n: int) -> np.ndarray:
    """Raised-cosine fade-in of n samples (0 -> 1, exclusive of both ends)."""
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)) if n > 0 else np.zeros(0)


def apply_fades(x: np.ndarray, n_fade: int) -> None:
    n_fade = min(n_fade, len(x) // 2)
    if n_fade > 0:
        r = ramp(n_fade)
        x[:n_fade] *= r
        x[len(x) - n_fade:] *= r[::-1]


def chirp(f0: float, f1: float, duration: float, sample_rate: int) -> np.ndarray:
    """The echolocation emission: a linear sweep f0 -> f1 [Hz] over
    ``duration`` [s] (``round(duration * rate)`` samples), Hann fade-in and
    fade-out over 10 % of its length each, peak 1.0, float32.

    Raises ValueError if a sweep end is not below the Nyquist frequency.
    """
    from scipy.signal import chirp as _chirp

    n = n_samples(duration, sample_rate)
    if max(f0, f1) >= sample_rate / 2 or min(f0, f1) < 0:
        raise ValueError(f'chirp {f0}-{f1} Hz needs 0 <= f < sample_rate/2 '
                         f'({sample_rate / 2} Hz)')
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    t = np.arange(n) / sample_rate
    x = _chirp(t, f0=f0, t1=duration, f1=f1, method='linear', phi=-90.0)  # starts at 0
    apply_fades(x, max(1, int(round(0.1 * n))))
    peak = np.max(np.abs(x))
    return (x / peak if peak > 0 else x).astype(np.float32)
