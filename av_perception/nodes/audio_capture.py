"""Node ``audio_capture``: a multichannel sound card as an AudioChunk stream.

Opens ``device`` (a PortAudio device index or name, through the
``sounddevice`` package) at ``sample_rate`` and publishes on ``audio/raw``
(av_perception/AudioChunk, reliable) one chunk of ``chunk`` seconds per
PortAudio callback:

- ``data``: the device channels listed in ``channel_map``, in that order
  (channel i of the chunk = device channel ``channel_map[i]``, 0-based), as
  float32 full scale +/-1 whatever the card's sample format;
- ``header.stamp``: the acquisition time of the chunk's first sample, from
  PortAudio's ADC time mapped to ROS time (see
  :mod:`av_perception.audio.soundcard`); ``header.frame_id``: the array
  frame from the ``array`` geometry file (or ``frame_id``);
- ``first_sample``: samples since the node started, continuous from chunk to
  chunk; after an input overflow or a device re-open it skips the samples
  that were lost, so consumers see a gap, never silently joined audio.

/diagnostics (input ``device``): chunks received and their rate, input
overflows and underflows, samples lost; the node's status is ERROR while the
device is missing or failing. A device that cannot be opened or disappears
is reported and opened again every ``retry_period`` seconds (with a re-scan
of the device list, so a re-plugged USB card is found); the node never exits
for it.
"""

from __future__ import annotations

import collections
import threading
import time

import numpy as np

from av_perception.arrays import load_array
from av_perception.audio.chunk import AudioBlock
from av_perception.audio.soundcard import (RescanPolicy, SampleClock, StreamSupervisor,
                                           adc_time_to_ns, find_device, portaudio)
from av_perception.errors import ConfigError
from av_perception.ros.messages import block_to_chunk
from av_perception.ros.node import AvNode
from av_perception.ros.qos import AUDIO
from av_perception.ros.spin import node_main
from av_perception.msg import AudioChunk

#: How often what the audio thread handed over is published [s].
DRAIN_PERIOD = 0.01

#: Topics this node publishes (besides /diagnostics); see nodes/__init__.py.
PUBLISHES = ('audio/raw',)


def check_channel_map(channel_map: list[int], channels: int, what: str) -> list[int]:
    """The device channels to read, in output order (default 0..channels-1).

    Raises:
        ConfigError: a map whose length is not the array's channel count, a
            negative or repeated channel.
    """
    if not channel_map:
        return list(range(channels))
    if len(channel_map) != channels:
        raise ConfigError(f'{what}: channel_map must list {channels} device channels (one per '
                          f'microphone of the array, in array order), got {channel_map}')
    if min(channel_map) < 0 or len(set(channel_map)) != len(channel_map):
        raise ConfigError(f'{what}: channel_map must hold distinct 0-based device channels, '
                          f'got {channel_map}')
    return list(channel_map)


class AudioCaptureNode(AvNode):
    """A sound card -> ``audio/raw`` (AudioChunk)."""

    def __init__(self, **kwargs) -> None:
        super().__init__('audio_capture', **kwargs)
        self.device = self.param('device', '', 'PortAudio input device: index, or (part of) '
                                 'its name, e.g. "hw:2,0" or "ReSpeaker"; "" = default.',
                                 read_only=True)
        array_file = self.param('array', 'respeaker4', 'Array geometry (a name under '
                                'config/arrays/ or a path): channel count, rate, frame.',
                                read_only=True)
        rate = self.param('sample_rate', 0, 'Sample rate [Hz]; 0 = the array file\'s.',
                          lo=0, hi=384000, read_only=True)
        chunk = self.param('chunk', 0.1, 'Chunk length [s] (one AudioChunk per chunk).',
                           lo=0.001, hi=2.0, read_only=True)
        channel_map = self.param('channel_map', [], 'Device channels (0-based) of the array\'s '
                                 'microphones, in the array file\'s order; [] = 0..N-1.',
                                 array_type=int, read_only=True)
        frame_id = self.param('frame_id', '', 'Frame of the chunks; "" = the array file\'s.',
                              read_only=True)
        self.latency = self.param('latency', 0.0, 'PortAudio input latency [s]; 0 = the '
                                  'device\'s safe default ("high").', lo=0.0, hi=2.0,
                                  read_only=True)
        retry = self.param('retry_period', 1.0, 'Seconds between attempts to (re-)open a '
                           'missing or failed device.', lo=0.1, hi=60.0, read_only=True)
        timeout = self.param('device_timeout', 0.0, 'Seconds without audio after which the '
                             'device counts as lost and is re-opened; 0 = max(1 s, 10 chunks).',
                             lo=0.0, hi=600.0, read_only=True)
        self.array = load_array(array_file)
        self.rate = int(rate or self.array.sample_rate)
        self.frames = max(1, int(round(chunk * self.rate)))
        self.channel_map = check_channel_map(channel_map, self.array.channels, 'audio_capture')
        self.device_channels = max(self.channel_map) + 1
        self.frame_id = frame_id or self.array.frame_id
        portaudio()  # fail at start-up (ConfigError) when sounddevice/PortAudio is missing

        self.pub = self.create_publisher(AudioChunk, 'audio/raw', AUDIO)
        self.stats = self.input('device', stale_after=max(2.0, 3 * chunk))
        self.clock = SampleClock(self.rate)
        self._queue: collections.deque = collections.deque()
        self._max_queue = max(4, int(np.ceil(5.0 / chunk)))  # 5 s of backlog at most
        self._queue_lost = 0
        self._new_stream = False  # set at each (re-)open, read by the first callback
        self._qlock = threading.Lock()
        # drained by a timer: rclpy's EventsExecutor (av-perception run) has no guard
        # conditions to wake it from the audio thread; 10 ms adds at most that latency
        self._drain_timer = self.create_timer(DRAIN_PERIOD, self._drain)
        self.rescans = RescanPolicy(first=retry)
        self.supervisor = StreamSupervisor(self._open, timeout=timeout or max(1.0, 10 * chunk),
                                           retry_period=retry, on_state=self._on_state)
        self.monitor.set_fact('array', f'{self.array.name} ({self.array.channels} mics)')
        self.monitor.set_fact('sample_rate', self.rate)
        self.monitor.set_fact('chunk_frames', self.frames)
        self.monitor.set_fact('channel_map', self.channel_map)
        self._report_counts()
        if not self.enable_switch(self._set_enabled, 'audio/raw/enabled'):
            self.supervisor.pause()
        self._timer = self.create_timer(min(0.5, retry / 2), self._supervise)
        self._supervise()

    def _set_enabled(self, enabled: bool) -> None:
        """Pause: close the device (released for other programs); resume: open it
        again. first_sample then skips the paused time, which consumers see as a
        pause on audio/raw/enabled, not as lost audio."""
        if enabled:
            self.supervisor.resume()
            self._supervise()
        else:
            self.supervisor.pause()
        self.get_logger().info('capturing' if enabled else 'paused: device closed')

    # ------------------------------------------------------------ device
    def _open(self):
        sd = portaudio()
        index, name = find_device(self.device, 'input', self.device_channels,
                                  rescan=self.rescans.due())
        self.rescans.found()
        stream = sd.InputStream(device=index, channels=self.device_channels,
                                samplerate=self.rate, blocksize=self.frames, dtype='float32',
                                latency=self.latency or 'high', callback=self._callback)
        self._new_stream = True
        self._stream_latency = float(stream.latency)  # (stamps without an ADC time)
        stream.start()
        self.monitor.set_fact('device', f'[{index}] {name}')
        self.monitor.set_fact('device_latency_s', f'{stream.latency:.4f}')
        self.get_logger().info(f'capturing from [{index}] {name}: {self.device_channels} '
                               f'channels at {self.rate} Hz, chunks of {self.frames} frames')
        return stream

    def _supervise(self) -> None:
        self.supervisor.check()
        self.monitor.set_fact('device_opens', self.supervisor.opens)
        self.monitor.set_fact('device_failures', self.supervisor.failures)

    def _on_state(self, message: str | None) -> None:
        self.monitor.set_error('device', message)
        if message:
            self.get_logger().error(f'device {self.device or "(default)"!r}: {message}')
        else:
            self.get_logger().info(f'device {self.device or "(default)"!r} is running')

    def _callback(self, indata, frames, time_info, status) -> None:
        """PortAudio's audio thread: copy, stamp, queue for the executor."""
        now_ns = self.get_clock().now().nanoseconds
        stamp = adc_time_to_ns(now_ns, time_info.currentTime, time_info.inputBufferAdcTime,
                               frames, self.rate, self._stream_latency)
        block = np.ascontiguousarray(indata[:, self.channel_map].T)
        new, self._new_stream = self._new_stream, False
        with self._qlock:
            if len(self._queue) >= self._max_queue:
                self._queue.popleft()
                self._queue_lost += 1
            self._queue.append((block, stamp, bool(status.input_overflow),
                                bool(status.input_underflow), new, time.monotonic()))
        self.supervisor.alive()

    # ----------------------------------------------------------- publish
    def _drain(self) -> None:
        while True:
            with self._qlock:
                if not self._queue:
                    return
                block, stamp, overflow, underflow, new, t_cb = self._queue.popleft()
                jump = new or self._queue_lost > 0
                lost_in_queue, self._queue_lost = self._queue_lost, 0
            self.stats.on_receive(t_cb)
            if overflow:
                self._event('input_overflow', 'no lost input', 'the driver lost input samples '
                            '(the stamps tell how many; first_sample skips them)')
            if underflow:
                self._event('input_underflow', 'full input blocks',
                            'PortAudio padded a block (input underflow)')
            if lost_in_queue:
                self.stats.on_drop('backlog', f'expected the executor to keep up, got '
                                   f'{lost_in_queue} chunks discarded')
            first = self.clock.place(block.shape[1], stamp, overflow or jump)
            self.pub.publish(block_to_chunk(AudioBlock(block, self.rate, first, stamp,
                                                       self.frame_id)))
            self.stats.on_processed(time.monotonic() - t_cb)
            self._report_counts()

    def _event(self, kind: str, expected: str, got: str) -> None:
        if self.stats.on_event(kind, f'expected {expected}, got {got}'):
            self.get_logger().warning(f'{kind}: {got} (counted in /diagnostics)')

    def _report_counts(self) -> None:
        self.monitor.set_fact('lost_samples', self.clock.lost)

    def destroy_node(self) -> None:
        if hasattr(self, 'supervisor'):  # (absent when __init__ refused the configuration)
            self.supervisor.close()
        super().destroy_node()


def main(argv=None) -> int:
    return node_main(AudioCaptureNode, argv)
