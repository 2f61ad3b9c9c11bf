"""Emitting chirps and cutting their echo windows from a full-duplex stream (no ROS).

Everything is counted in samples of the sound card's own clock: the stream's
frame counter ``n`` runs in step on its output and its input (one callback
hands over input frames ``[n, n + frames)`` and takes output frames
``[n, n + frames)``), so the emission schedule is exactly periodic in device
time and an echo window is a slice of the input counter, whatever the
scheduling jitter of the computer.

Alignment: output frame ``E`` (the chirp's first sample) leaves the
converter ``L`` frames of input later, where ``L = (outputBufferDacTime -
inputBufferAdcTime) * rate`` is what PortAudio reports for the callback that
wrote it; the window of that emission starts at input frame
``S = E + L + round(latency_offset * rate)``, where ``latency_offset`` [s]
is the part of the loop PortAudio does not know (converter group delays,
amplifier, driver buffers it does not report). Sample 0 of the window is the
emission instant, as in the simulator.

Calibration (:func:`direct_path_lag`, :func:`calibrated_offset`): with
``latency_offset`` 0, the speaker's direct sound reaches microphone ``i``
at window sample ``latency_offset * rate + |speaker - mic_i| / c * rate``;
the lag of the chirp's cross-correlation peak minus the geometric delay is
the offset to configure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import correlate


@dataclass
class EchoWindow:
    """One emission's echo.

    Attributes:
        index: emission count (0, 1, ...).
        emitted_at: output frame of the chirp's first sample.
        start: input frame of the window's sample 0 (the emission instant).
        samples: (channels, window) float32.
        stamp_ns: acquisition time of sample 0 on the caller's clock [ns].
        offset: the latency offset [frames] it was aligned with.
    """

    index: int
    emitted_at: int
    start: int
    samples: np.ndarray
    stamp_ns: int
    offset: int


@dataclass
class _Pending:
    index: int
    emitted_at: int
    start: int
    offset: int


@dataclass
class EchoScheduler:
    """Chirp emissions every ``period`` frames and their echo windows.

    Args:
        chirp: (M,) emitted waveform (already scaled by the gain).
        period: frames between two emissions.
        window: frames of an echo window.
        channels: input channels kept (after the channel map).
        first: output frame of the first emission.

    Attributes:
        dropped: windows dropped, by reason (``late``: the input they need was
            already gone; ``xrun``: an overflow/underflow broke the sample
            alignment while they were pending).
    """

    chirp: np.ndarray
    period: int
    window: int
    channels: int
    first: int = 0
    dropped: dict = field(default_factory=dict)
    _emitted: int = field(default=0, init=False)
    _pending: list = field(default_factory=list, init=False)
    _hist: np.ndarray | None = field(default=None, init=False)
    _hist_start: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.period < len(self.chirp):
            raise ValueError(f'the period ({self.period} frames) must be at least the chirp '
                             f'({len(self.chirp)} frames)')
        self._hist = np.zeros((self.channels, 0), np.float32)

    def output(self, n: int, frames: int, latency: int, offset: int) -> np.ndarray:
        """The speaker signal for output frames ``[n, n + frames)`` (mono
        float32), registering the emissions that start in it.

        Args:
            latency: PortAudio's output-minus-input latency of this callback [frames].
            offset: the calibrated extra latency [frames].
        """
        out = np.zeros(frames, np.float32)
        m = len(self.chirp)
        # emissions overlapping this block: k with E_k < n + frames and E_k + m > n
        k0 = max(0, int(np.ceil((n - m + 1 - self.first) / self.period)))
        k = k0
        while self.first + k * self.period < n + frames:
            e = self.first + k * self.period
            lo, hi = max(n, e), min(n + frames, e + m)
            if lo < hi:
                out[lo - n:hi - n] = self.chirp[lo - e:hi - e]
            if e >= n and k >= self._emitted:  # its first sample is in this block
                self._pending.append(_Pending(k, e, e + latency + offset, offset))
                self._emitted = k + 1
            k += 1
        return out

    def input(self, n: int, block: np.ndarray, stamp_ns: int, rate: float) -> list[EchoWindow]:
        """Input frames ``[n, n + frames)`` ((channels, frames), acquired from
        ``stamp_ns``); returns the windows completed by them."""
        frames = block.shape[1]
        if self._hist.shape[1] and n != self._hist_start + self._hist.shape[1]:
            self.discard('xrun')
            self._hist = self._hist[:, :0]
        if not self._hist.shape[1]:
            self._hist_start = n
        self._hist = np.concatenate([self._hist, np.asarray(block, np.float32)], axis=1)
        end = self._hist_start + self._hist.shape[1]
        done, keep = [], []
        for p in self._pending:
            if p.start < self._hist_start:
                self.dropped['late'] = self.dropped.get('late', 0) + 1
            elif p.start + self.window <= end:
                a = p.start - self._hist_start
                done.append(EchoWindow(p.index, p.emitted_at, p.start,
                                       self._hist[:, a:a + self.window].copy(),
                                       stamp_ns + int(round((p.start - n) / rate * 1e9)),
                                       p.offset))
            else:
                keep.append(p)
        self._pending = keep
        oldest = min([p.start for p in keep] + [end - self.window - frames])
        cut = max(0, oldest - self._hist_start)
        if cut:
            self._hist = self._hist[:, cut:]
            self._hist_start += cut
        return done

    @property
    def emitted(self) -> int:
        """Emissions scheduled so far."""
        return self._emitted

    def restart(self, first: int) -> None:
        """A new stream whose frame counter starts again at 0: the next
        emission is at its frame ``first``; pending windows are dropped as
        ``restart``; the emission count goes on."""
        self.discard('restart')
        self.first = first - self._emitted * self.period
        self._hist = self._hist[:, :0]

    def discard(self, reason: str) -> None:
        """Drop the pending windows (their alignment can no longer be trusted)."""
        if self._pending:
            self.dropped[reason] = self.dropped.get(reason, 0) + len(self._pending)
        self._pending = []


def direct_path_lag(samples: np.ndarray, chirp: np.ndarray) -> np.ndarray:
    """Lag [frames, sub-sample] of the strongest copy of ``chirp`` in each
    channel of ``samples`` (channels, N): the peak of the cross-correlation's
    magnitude, refined by a parabola through its neighbours."""
    lags = []
    for x in np.atleast_2d(samples):
        c = np.abs(correlate(x, chirp, mode='valid', method='fft'))
        k = int(np.argmax(c))
        frac = 0.0
        if 0 < k < len(c) - 1:
            a, b, d = c[k - 1], c[k], c[k + 1]
            denom = a - 2 * b + d
            frac = 0.5 * (a - d) / denom if denom else 0.0
        lags.append(k + frac)
    return np.asarray(lags)


def calibrated_offset(lags: np.ndarray, distances: np.ndarray, rate: float,
                      sound_speed: float) -> float:
    """The latency offset [s] that puts the emission at sample 0: the median
    over measurements of (measured lag - geometric direct-path delay).

    Args:
        lags: (K, channels) lags [frames] measured with a zero offset.
        distances: (channels,) speaker-to-microphone distances [m].
    """
    lags = np.atleast_2d(np.asarray(lags, dtype=float))
    return float(np.median(lags / rate - np.asarray(distances)[None, :] / sound_speed))


@dataclass
class LatencyCalibrator:
    """Collects the direct-path lags of ``count`` echo windows cut with a
    zero latency offset and then gives the offset (:func:`calibrated_offset`).

    Attributes:
        lags: (channels,) lags [frames] measured so far.
    """

    chirp: np.ndarray
    distances: np.ndarray
    rate: float
    sound_speed: float
    count: int
    lags: list = field(default_factory=list)

    def add(self, samples: np.ndarray) -> float | None:
        """Measure one window; the offset [s] once ``count`` were measured."""
        self.lags.append(direct_path_lag(samples, self.chirp))
        if len(self.lags) < self.count:
            return None
        return calibrated_offset(np.asarray(self.lags), self.distances, self.rate,
                                 self.sound_speed)

    @property
    def spread(self) -> float:
        """Largest minus smallest lag measured [s] (how steady the loop is)."""
        return float(np.ptp(np.asarray(self.lags))) / self.rate if self.lags else 0.0
