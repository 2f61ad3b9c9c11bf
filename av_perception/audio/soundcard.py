"""Sound cards through PortAudio (the ``sounddevice`` package), no ROS.

What the nodes ``audio_capture`` and ``chirp_emitter`` share:

- :func:`portaudio`: the ``sounddevice`` module, or a one-line error saying
  what to install (``pip install .[robot]`` and Debian's ``libportaudio2``);
- :func:`find_device`: a device by index or by (part of) its name, with a
  re-scan of PortAudio's device list when it is not found (a USB card plugged
  in after start-up, or an ALSA PCM defined after PortAudio started), as
  often as :class:`RescanPolicy` allows;
- :func:`adc_time_to_ns`: the acquisition time of a block's first sample on
  the caller's clock (ROS time) from PortAudio's ADC time;
- :class:`SampleClock`: ``first_sample`` and stamps of consecutive blocks,
  counting the samples an overflow lost so that consumers see the gap;
- :class:`StreamSupervisor`: keeps a stream open; a device that fails or
  disappears is closed, reported and re-opened every ``retry_period``.

Time: PortAudio reports, in each callback, ``currentTime`` (now) and
``inputBufferAdcTime`` (when the first sample of the block was captured at the
converter) on its own clock (CLOCK_MONOTONIC for ALSA). The stamp of a block
is ``ros_now - (currentTime - inputBufferAdcTime)``, with ``ros_now`` read in
the same callback: only the difference of two PortAudio times is used, so
their clock never needs to agree with ROS time. Where a host API reports no
ADC time (0), the block is assumed to have ended at ``currentTime`` minus the
stream's input latency.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from av_perception.errors import ConfigError


class DeviceError(RuntimeError):
    """A sound device that cannot be opened or stopped working (retried)."""


_lock = threading.Lock()
_open_streams = 0  # streams of this module open in this process


def portaudio():
    """The ``sounddevice`` module (PortAudio), imported on first use.

    Raises:
        ConfigError: sounddevice or the PortAudio library is missing.
    """
    try:
        import sounddevice
    except ImportError:
        raise ConfigError('sound cards need the sounddevice package: pip install '
                          '"av_perception[robot]" (or sounddevice)') from None
    except OSError as exc:  # sounddevice raises OSError when libportaudio is missing
        raise ConfigError(f'sound cards need the PortAudio library ({exc}): sudo apt-get '
                          'install libportaudio2') from None
    return sounddevice


def rescan_devices() -> bool:
    """Re-read PortAudio's device list (Pa_Terminate + Pa_Initialize).

    PortAudio scans devices once, when it starts; a card plugged in later is
    seen only after a re-scan. A re-scan closes every PortAudio stream of the
    process, so it is done only while none of this module's streams is open.

    Returns:
        True if the list was re-read.
    """
    sd = portaudio()
    with _lock:
        if _open_streams:
            return False
        sd._terminate()  # noqa: SLF001 - sounddevice's documented way to re-initialize
        sd._initialize()  # noqa: SLF001
    return True


def describe_devices(kind: str) -> str:
    """One line listing the devices that have ``kind`` ('input'/'output') channels."""
    sd = portaudio()
    key = 'max_input_channels' if kind == 'input' else 'max_output_channels'
    devs = [f'[{i}] {d["name"]} ({d[key]} ch)' for i, d in enumerate(sd.query_devices())
            if d[key] > 0]
    return ', '.join(devs) if devs else 'none'


class RescanPolicy:
    """When a node looking for a missing device may re-scan PortAudio's
    device list: at the first miss, then after ``first``, 2 ``first``, 4
    ``first``... seconds, at most ``longest`` apart. A re-scan probes every
    ALSA device and blocks the caller for up to a second on a robot, so a
    long-missing card is not re-scanned every retry.
    """

    def __init__(self, first: float, longest: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.first, self.longest, self._clock = first, longest, clock
        self._next = 0.0
        self._gap = first

    def due(self) -> bool:
        """True if a re-scan is allowed now (and counts it)."""
        now = self._clock()
        if now < self._next:
            return False
        self._next = now + self._gap
        self._gap = min(self.longest, 2 * self._gap)
        return True

    def found(self) -> None:
        """The device was found: the next miss re-scans at once."""
        self._next, self._gap = 0.0, self.first


def find_device(spec: str, kind: str, channels: int,
                rescan: bool = True) -> tuple[int, str]:
    """The PortAudio device ``spec`` names: ``''`` the default device, an
    integer its index, else a unique substring of its name.

    Args:
        spec: device index or name.
        kind: 'input' or 'output'.
        channels: the number of channels it must have at least.
        rescan: re-scan the device list once if it is not found.

    Returns:
        (index, name).

    Raises:
        DeviceError: no such device (after one re-scan), or too few channels;
            the message lists the devices there are.
    """
    sd = portaudio()
    key = 'max_input_channels' if kind == 'input' else 'max_output_channels'
    query: Any = int(spec) if spec.strip().lstrip('-').isdigit() else (spec or None)
    info = None
    for attempt in range(2):
        try:
            info = sd.query_devices(query, kind)
            break
        except (ValueError, sd.PortAudioError) as exc:
            if attempt == 0 and rescan and rescan_devices():
                continue
            raise DeviceError(f'no {kind} device {spec or "(default)"!r} ({exc}); '
                              f'{kind} devices: {describe_devices(kind)}') from None
    if info[key] < channels:
        raise DeviceError(f'{kind} device {info["name"]!r} has {info[key]} channels, '
                          f'{channels} needed')
    return int(info['index']), str(info['name'])


def adc_time_to_ns(now_ns: int, current_time: float, adc_time: float, frames: int,
                   sample_rate: float, latency: float) -> int:
    """Acquisition time [ns, on the clock of ``now_ns``] of a block's first sample.

    Args:
        now_ns: the caller's clock (ROS time) read in the callback [ns].
        current_time: PortAudio's ``currentTime`` in the same callback [s].
        adc_time: PortAudio's ``inputBufferAdcTime`` of the block [s]; 0 or
            later than ``current_time`` when the host API does not report it.
        frames: frames in the block.
        sample_rate: [Hz].
        latency: the stream's input latency [s] (used only without an ADC time).
    """
    if adc_time > 0 and adc_time <= current_time:
        age = current_time - adc_time
    else:
        age = latency + frames / sample_rate
    return int(now_ns - round(age * 1e9))


@dataclass
class SampleClock:
    """Sample index and stamp of each block of a capture stream.

    ``first_sample`` counts samples at the device rate since the node
    started. A block flagged as following an overflow (samples lost by the
    driver) moves it on by the samples the stamps say were lost, so a
    consumer sees a gap instead of silently joined audio; the same happens
    after the device was re-opened.

    Attributes:
        sample_rate: [Hz].
        lost: samples estimated lost so far.
    """

    sample_rate: int
    lost: int = 0
    _next: int = field(default=0, init=False)
    _next_stamp_ns: int | None = field(default=None, init=False)

    def place(self, frames: int, stamp_ns: int, discontinuity: bool) -> int:
        """first_sample of a block of ``frames`` acquired at ``stamp_ns``;
        ``discontinuity``: the driver reported lost input before it (or the
        stream was re-opened)."""
        first = self._next
        if discontinuity and self._next_stamp_ns is not None:
            gap = int(round((stamp_ns - self._next_stamp_ns) * 1e-9 * self.sample_rate))
            if gap > 0:
                first += gap
                self.lost += gap
        self._next = first + frames
        self._next_stamp_ns = stamp_ns + int(round(frames / self.sample_rate * 1e9))
        return first


class StreamSupervisor:
    """Keeps one PortAudio stream open, re-opening it when it fails.

    ``open_stream()`` must return a started stream (sounddevice Stream or
    InputStream) or raise; the supervisor's owner calls :meth:`check`
    periodically (a ROS timer) and reports :attr:`error`.

    A stream is considered lost when PortAudio stops it (``active`` false),
    when no callback came for ``timeout`` seconds, or when the owner calls
    :meth:`fail` (an error in the callback); it is then closed and opened
    again at most every ``retry_period`` seconds, for as long as it takes.

    Args:
        open_stream: opens and starts the stream.
        timeout: seconds without a callback after which the device is lost.
        retry_period: seconds between two attempts to open it.
        on_state: called with an error message, or None when the stream runs.
        clock: monotonic time [s].
    """

    def __init__(self, open_stream: Callable[[], Any], timeout: float, retry_period: float,
                 on_state: Callable[[str | None], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._open = open_stream
        self.timeout = timeout
        self.retry_period = retry_period
        self._on_state = on_state or (lambda message: None)
        self._clock = clock
        self.stream: Any = None
        self.error: str | None = None
        self.opens = 0
        self.failures = 0
        self._last_callback = 0.0
        self._next_try = 0.0
        self._failed: str | None = None
        self.paused = False

    def pause(self) -> None:
        """Close the stream and keep it closed (the device is released) until
        :meth:`resume`; a pause is not a fault: the error is cleared."""
        self.paused = True
        self.close()
        self._set_error(None)

    def resume(self) -> None:
        """Let the next :meth:`check` open the stream again at once."""
        self.paused = False
        self._next_try = 0.0

    def alive(self) -> None:
        """Called from the stream's callback: the device delivers."""
        self._last_callback = self._clock()

    def fail(self, message: str) -> None:
        """Mark the stream as failed (safe from the audio thread)."""
        self._failed = message

    def check(self) -> bool:
        """Open the stream if it is not, close it if it failed. Returns True
        if it was (re-)opened by this call."""
        global _open_streams
        if self.paused:
            return False
        now = self._clock()
        if self.stream is not None:
            reason = self._failed
            if reason is None and not self.stream.active:
                reason = 'the stream stopped (device gone?)'
            if reason is None and now - self._last_callback > self.timeout:
                reason = f'no audio for {now - self._last_callback:.1f} s'
            if reason is None:
                return False
            self.close()
            self._set_error(f'device lost: {reason}; re-opening every '
                            f'{self.retry_period:g} s')
            self.failures += 1
            self._next_try = now + self.retry_period
            return False
        if now < self._next_try:
            return False
        self._next_try = now + self.retry_period
        self._failed = None
        try:
            stream = self._open()
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - PortAudio/ALSA raise several types
            self._set_error(f'cannot open the device: {exc}; retrying every '
                            f'{self.retry_period:g} s')
            return False
        with _lock:
            _open_streams += 1
        self.stream = stream
        self.opens += 1
        self._last_callback = now
        self._set_error(None)
        return True

    def close(self) -> None:
        """Stop and close the stream (if open)."""
        global _open_streams
        stream, self.stream = self.stream, None
        if stream is None:
            return
        with _lock:
            _open_streams -= 1
        try:
            stream.abort()
            stream.close()
        except Exception:  # noqa: BLE001 - a vanished device may fail to close
            pass

    def _set_error(self, message: str | None) -> None:
        if message != self.error:
            self.error = message
            self._on_state(message)
