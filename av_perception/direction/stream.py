"""Streaming direction of arrival over consecutive AudioBlocks: overlapping
analysis windows, silence gating, a confidence threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from av_perception.audio.chunk import AudioBlock
from av_perception.audio.level import level_dbfs
from av_perception.direction.classic import DoaEstimate


@dataclass
class DoaResult:
    """The sources found in one analysis window.

    Attributes:
        stamp_ns: acquisition time of the window's first sample [ns].
        sources: estimates above the confidence threshold (empty: silence or
            nothing confident).
        silent: True if the window's level was below the silence gate.
        level_dbfs: the window's RMS level [dBFS].
    """

    stamp_ns: int
    sources: list[DoaEstimate]
    silent: bool
    level_dbfs: float


class StreamingDoa:
    """Runs an estimator (anything with ``estimate(samples, num_src)``) every
    ``hop`` seconds on the last ``window`` seconds of a stream.

    Args:
        estimator: e.g. :class:`~av_perception.direction.classic.ClassicDoa`.
        sample_rate: Hz.
        channels: microphones.
        window: analysis window [s].
        hop: time between estimates [s] (windows overlap when hop < window).
        num_src: at most this many sources per window.
        min_confidence: estimates below it are dropped.
        silence_dbfs: windows quieter than this give no sources.
    """

    def __init__(self, estimator, sample_rate: int, channels: int, window: float = 0.256,
                 hop: float = 0.1, num_src: int = 1, min_confidence: float = 0.1,
                 silence_dbfs: float = -60.0) -> None:
        self.estimator = estimator
        self.fs = sample_rate
        self.win = int(round(window * sample_rate))
        self.hop = int(round(hop * sample_rate))
        self.num_src = num_src
        self.min_confidence = min_confidence
        self.silence_dbfs = silence_dbfs
        self._buf = np.zeros((channels, 0), np.float32)
        self._t0_ns = 0          # stamp of self._buf[:, 0]
        self._next_end = self.win  # where (in the buffer) the next window ends
        self._next_sample: int | None = None  # first_sample the next block should have

    def reset(self) -> None:
        """Forget the stream (after a gap or a device restart)."""
        self._buf = self._buf[:, :0]
        self._next_end = self.win

    def push(self, block: AudioBlock) -> list[DoaResult]:
        """Add a block; returns the results of the windows it completed.

        A block that does not continue the stream (``first_sample`` not where
        the last one ended: chunks were lost) starts the windows afresh, so no
        window joins audio from both sides of a gap."""
        if self._next_sample is not None and block.first_sample != self._next_sample:
            self.reset()
        self._next_sample = block.first_sample + block.frames
        if self._buf.shape[1] == 0:
            self._t0_ns = block.stamp_ns
        self._buf = np.concatenate([self._buf, block.samples], axis=1)
        out = []
        while self._next_end <= self._buf.shape[1]:
            start = self._next_end - self.win
            out.append(self._estimate(self._buf[:, start:self._next_end],
                                      self._t0_ns + int(round(start / self.fs * 1e9))))
            self._next_end += self.hop
        drop = self._next_end - self.win  # samples no later window needs
        if drop > 0:  # bounded: the buffer never holds more than a window and a block
            self._buf = self._buf[:, drop:]
            self._t0_ns += int(round(drop / self.fs * 1e9))
            self._next_end -= drop
        return out

    def _estimate(self, samples: np.ndarray, stamp_ns: int) -> DoaResult:
        level = level_dbfs(samples)
        if level < self.silence_dbfs:
            return DoaResult(stamp_ns, [], True, level)
        est = self.estimator.estimate(samples, self.num_src)
        return DoaResult(stamp_ns, [e for e in est if e.confidence >= self.min_confidence],
                         False, level)
