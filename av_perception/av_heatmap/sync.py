"""Pairing camera images with an audio window (no ROS): the window that
ends at the image's stamp (``align='before'``: the sound just heard, no
waiting beyond the chunk that holds the stamp) or the one that starts at it
(``align='after'``: as the simulated training bags pair a camera frame with
its slot's audio; the heatmap comes a window later). Images wait until the
stream covers their window; an image whose window the stream cannot provide
within a tolerance is dropped with its reason."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from av_perception.audio.chunk import AudioBlock


@dataclass
class Paired:
    """An image (any payload) with its audio window (channels, window)."""

    stamp_ns: int
    image: Any
    window: np.ndarray


@dataclass
class Dropped:
    """An image that gets no audio: ``kind`` (a /diagnostics key) and why."""

    stamp_ns: int
    kind: str
    detail: str


#: Where an image's audio window lies relative to its stamp.
ALIGNS = ('before', 'after')


class AudioImageSync:
    """Buffers the audio stream and pending images.

    Args:
        sample_rate: Hz.
        channels: microphones.
        window: audio samples per image.
        tolerance: largest accepted offset [s] between the window the image
            asks for and the audio there is (a window that starts up to
            ``tolerance`` before the stream's first sample starts there), and
            the largest stamp jump in the stream taken as continuous.
        align: 'before' (the window ends at the image stamp) or 'after' (it
            starts there).
        max_pending: images waiting for audio beyond this drop the oldest.
        keep: seconds of audio kept before the newest sample.
    """

    def __init__(self, sample_rate: int, channels: int, window: int, tolerance: float = 0.05,
                 max_pending: int = 20, keep: float = 2.0, align: str = 'before') -> None:
        if align not in ALIGNS:
            raise ValueError(f'align must be one of {ALIGNS}, got {align!r}')
        self.align = align
        self.fs = sample_rate
        self.window = window
        self.tol_ns = int(tolerance * 1e9)
        self.max_pending = max_pending
        self.keep = max(int(keep * sample_rate), 2 * window)
        self._buf = np.zeros((channels, 0), np.float32)
        self._t0_ns = 0
        self._pending: deque = deque()

    def _end_ns(self) -> int:
        return self._t0_ns + int(round(self._buf.shape[1] / self.fs * 1e9))

    def push_audio(self, block: AudioBlock) -> tuple[list[Paired], list[Dropped]]:
        """Add a block; returns the images it completed and those it dropped."""
        if self._buf.shape[1] == 0 or abs(block.stamp_ns - self._end_ns()) > self.tol_ns:
            self._buf = block.samples.astype(np.float32, copy=True)  # start or a jump
            self._t0_ns = block.stamp_ns
        else:
            self._buf = np.concatenate([self._buf, block.samples], axis=1)
        extra = self._buf.shape[1] - self.keep
        if extra > 0:
            self._buf = self._buf[:, extra:]
            self._t0_ns += int(round(extra / self.fs * 1e9))
        return self._flush()

    def push_image(self, stamp_ns: int, image: Any) -> tuple[list[Paired], list[Dropped]]:
        """Add an image; returns the images now paired and those dropped."""
        dropped = []
        self._pending.append((stamp_ns, image))
        while len(self._pending) > self.max_pending:
            old, _ = self._pending.popleft()
            dropped.append(Dropped(old, 'no_audio', f'audio covering {self.window / self.fs:.2f}'
                                   f' s from the image stamp (waited for {self.max_pending} '
                                   'images)'))
        ready, more = self._flush()
        return ready, dropped + more

    def _flush(self) -> tuple[list[Paired], list[Dropped]]:
        ready, dropped, keep = [], [], deque()
        n = self._buf.shape[1]
        for stamp, image in self._pending:
            if n == 0:
                keep.append((stamp, image))
                continue
            offset_ns = stamp - self._t0_ns
            if self.align == 'before':
                offset_ns -= int(round(self.window / self.fs * 1e9))
            start = int(round(offset_ns * self.fs / 1e9))
            if start < 0:
                if -offset_ns > self.tol_ns:
                    where = 'from' if self.align == 'after' else \
                        f'{self.window / self.fs:.2f} s before'
                    dropped.append(Dropped(stamp, 'sync', f'audio within {self.tol_ns / 1e9:g} s'
                                           f' of the window {where} the image stamp, got audio '
                                           f'from {-offset_ns / 1e9:.3f} s later'))
                    continue
                start = 0
            if start + self.window <= n:
                ready.append(Paired(stamp, image, self._buf[:, start:start + self.window].copy()))
            else:
                keep.append((stamp, image))
        self._pending = keep
        return ready, dropped
