"""Multichannel audio blocks and the checks every audio consumer applies.

Pure numpy: the ROS conversion (``av_perception.ros.messages``) only copies
message fields into :class:`AudioBlock` and calls :func:`deinterleave`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from av_perception.errors import InputError

#: Largest chunk accepted: 60 s of 64 channels at 48 kHz. Anything bigger is a
#: corrupt message, not audio, and is refused before it is copied.
MAX_SAMPLES = 60 * 48_000 * 64
#: Samples beyond this magnitude (60 dB over the contract's full scale of
#: +-1) are not audio but corrupt data (e.g. bytes of another sample format
#: read as float32) and are refused; squared in a float32 spectrum, values
#: beyond about 1e19 overflow.
MAX_ABS = 1000.0


@dataclass
class AudioBlock:
    """A block of audio with the facts needed to place it in time and space.

    Attributes:
        samples: float32 array, shape (channels, frames), full scale +/-1.0.
        sample_rate: Hz.
        first_sample: index of the first sample since the stream started.
        stamp_ns: acquisition time of the first sample [ns since epoch].
        frame_id: the microphone array frame.
    """

    samples: np.ndarray
    sample_rate: int
    first_sample: int = 0
    stamp_ns: int = 0
    frame_id: str = ''

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def frames(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        """Length of the block [s]."""
        return self.frames / float(self.sample_rate)


def deinterleave(data, channels: int, *, allow_non_finite: bool = False) -> np.ndarray:
    """Interleaved samples (frame-major) -> float32 array (channels, frames).

    Raises:
        InputError: zero channels, a length that is not a multiple of the
            channel count, an empty or oversized block, NaN/Inf samples, or
            samples beyond :data:`MAX_ABS`.
    """
    if channels <= 0:
        raise InputError('channels', 'at least 1 channel', f'{channels}')
    flat = np.asarray(data, dtype=np.float32).reshape(-1)
    if flat.size == 0:
        raise InputError('empty', 'at least one frame of samples', '0 samples')
    if flat.size > MAX_SAMPLES:
        raise InputError('size', f'at most {MAX_SAMPLES} samples', f'{flat.size}')
    if flat.size % channels:
        raise InputError('length', f'a multiple of {channels} channels',
                         f'{flat.size} samples ({flat.size % channels} left over)')
    if not allow_non_finite and not np.isfinite(flat).all():
        bad = int(flat.size - np.count_nonzero(np.isfinite(flat)))
        raise InputError('non_finite', 'finite samples', f'{bad} NaN/Inf samples')
    peak = float(np.nanmax(np.abs(flat), initial=0.0, where=np.isfinite(flat)))
    if peak > MAX_ABS:
        raise InputError('range', f'samples within +-{MAX_ABS:g} (full scale +-1)',
                         f'a sample of {peak:.3g}')
    return flat.reshape(-1, channels).T.copy()


def interleave(samples: np.ndarray) -> np.ndarray:
    """float (channels, frames) -> interleaved float32 vector (frame-major)."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 2:
        raise InputError('shape', 'a (channels, frames) array', f'shape {samples.shape}')
    return np.ascontiguousarray(samples.T).reshape(-1)


@dataclass
class StreamEvent:
    """Something a stream checker noticed about one block (not necessarily fatal)."""

    kind: str
    expected: str
    got: str
    fatal: bool = False
    #: samples missing before this block (a ``gap``), else 0
    missing: int = 0

    @property
    def detail(self) -> str:
        return f'expected {self.expected}, got {self.got}'

    def error(self) -> InputError:
        """The event as an InputError (for a fatal one: the block is dropped)."""
        return InputError(self.kind, self.expected, self.got)


@dataclass
class StreamChecker:
    """Checks the continuity of one audio stream, block after block.

    It validates a block against the configured array (channel count, sample
    rate) and against the blocks before it: ``first_sample`` gaps and overlaps,
    sample-rate changes mid-stream, stamps that go backwards or jump away from
    what the sample count predicts.

    Attributes:
        channels: expected channel count (0: accept whatever the first block has).
        sample_rate: expected sample rate [Hz] (0: take the first block's).
        stamp_tolerance: how far [s] a stamp may drift from the one the sample
            count predicts before it is reported as a jump.
    """

    channels: int = 0
    sample_rate: int = 0
    stamp_tolerance: float = 0.05
    _next_sample: int | None = field(default=None, init=False)
    _last_stamp_ns: int | None = field(default=None, init=False)
    _predicted_stamp_ns: int | None = field(default=None, init=False)
    _stream_rate: int | None = field(default=None, init=False)
    _stream_channels: int | None = field(default=None, init=False)

    def check(self, block: AudioBlock) -> list[StreamEvent]:
        """Check one block. Fatal events mean the block must be dropped.

        Raises nothing: every finding is returned as an event.
        """
        events: list[StreamEvent] = []
        if self.channels and block.channels != self.channels:
            events.append(StreamEvent('channels', f'{self.channels} channels (array config)',
                                      f'{block.channels}', fatal=True))
        elif self._stream_channels is not None and block.channels != self._stream_channels:
            events.append(StreamEvent('channels_change', f'{self._stream_channels} channels '
                                      'as before', f'{block.channels} mid-stream', fatal=True))
        if self.sample_rate and block.sample_rate != self.sample_rate:
            events.append(StreamEvent('sample_rate', f'{self.sample_rate} Hz (config)',
                                      f'{block.sample_rate} Hz', fatal=True))
        elif self._stream_rate is not None and block.sample_rate != self._stream_rate:
            events.append(StreamEvent('sample_rate_change', f'{self._stream_rate} Hz as before',
                                      f'{block.sample_rate} Hz mid-stream', fatal=True))
        if any(e.fatal for e in events):
            return events

        if self._last_stamp_ns is not None and block.stamp_ns < self._last_stamp_ns:
            events.append(StreamEvent('stamp_backwards',
                                      f'a stamp after {self._last_stamp_ns * 1e-9:.6f} s',
                                      f'{block.stamp_ns * 1e-9:.6f} s', fatal=True))
            return events
        if self._next_sample is not None and block.first_sample != self._next_sample:
            delta = block.first_sample - self._next_sample
            kind = 'gap' if delta > 0 else 'overlap'
            events.append(StreamEvent(kind, f'first_sample {self._next_sample}',
                                      f'{block.first_sample} ({abs(delta)} samples of {kind})',
                                      missing=max(delta, 0)))
        elif self._predicted_stamp_ns is not None:
            err = (block.stamp_ns - self._predicted_stamp_ns) * 1e-9
            if abs(err) > self.stamp_tolerance:
                events.append(StreamEvent(
                    'stamp_jump',
                    f'a stamp near {self._predicted_stamp_ns * 1e-9:.6f} s '
                    '(from the sample count)',
                    f'{block.stamp_ns * 1e-9:.6f} s ({err * 1e3:+.1f} ms)'))
        self._stream_rate = block.sample_rate
        self._stream_channels = block.channels
        self._last_stamp_ns = block.stamp_ns
        self._next_sample = block.first_sample + block.frames
        self._predicted_stamp_ns = block.stamp_ns + int(round(block.duration * 1e9))
        return events

    def reset(self) -> None:
        """Forget the stream (e.g. after a device restart)."""
        self._next_sample = self._last_stamp_ns = self._predicted_stamp_ns = None
        self._stream_rate = self._stream_channels = None


@dataclass
class ReceiptClock:
    """Stamps for a stream whose chunks carry no time (audio_common's
    AudioData): the acquisition time of a chunk's first sample, estimated
    from when it was received.

    A chunk is taken to end when it is received, so its first sample is the
    receipt time minus its duration. To keep the stamps as regular as the
    samples, each chunk is stamped where the previous one's stamp and the
    sample count put it, as long as that stays within ``tolerance`` of the
    receipt estimate; beyond it (a stall, a dropped buffer) the stamps are
    re-anchored to the receipt.

    Attributes:
        tolerance: largest accepted drift from the receipt estimate [s].
    """

    tolerance: float = 0.05
    _anchor_ns: int | None = field(default=None, init=False)
    _anchor_sample: int = field(default=0, init=False)

    def stamp(self, receipt_ns: int, first_sample: int, frames: int, sample_rate: int
              ) -> tuple[int, bool]:
        """(stamp [ns] of the chunk's first sample, True if re-anchored) for a
        chunk of ``frames`` samples starting at ``first_sample``, received at
        ``receipt_ns``."""
        estimate = receipt_ns - int(round(frames / sample_rate * 1e9))
        if self._anchor_ns is not None:
            predicted = self._anchor_ns + int(round(
                (first_sample - self._anchor_sample) / sample_rate * 1e9))
            if abs(predicted - estimate) <= self.tolerance * 1e9:
                return predicted, False
        reanchored = self._anchor_ns is not None
        self._anchor_ns, self._anchor_sample = estimate, first_sample
        return estimate, reanchored
