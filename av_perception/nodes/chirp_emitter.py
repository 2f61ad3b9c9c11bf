"""Node ``chirp_emitter``: echolocation on a real robot — plays the chirp, records its echo.

Opens one full-duplex PortAudio stream (``device``, or ``device`` for the
microphones and ``output_device`` for the speaker) at the echo array's rate
and, every ``period`` seconds of the sound card's own clock, plays the chirp
of the robot description (``robot``: its ``chirp`` section, f0/f1/duration,
made by the same generator as the simulator's, ``av_perception.sim.signals.
chirp``) at ``gain`` on the ``output_channels``. For each emission it
publishes on ``audio/echo`` (AudioChunk, reliable) the microphones'
(``channel_map`` of the ``array`` geometry, an echo head) window of
``2 * max_range / sound_speed`` seconds whose sample 0 is the emission
instant — the layout of the simulator's echoes, so a model trained there
reads it unchanged:

- ``header.stamp``: ROS time of the emission (the ADC time of sample 0);
  ``header.frame_id``: the echo array frame;
- ``first_sample``: the input frame index of sample 0, counted from the
  node's start (successive echoes are ``period * sample_rate`` apart; after
  a device re-open it goes on, skipping the time the card was away).

The emitted waveform is published once on ``audio/chirp`` (AudioChunk,
latched, at the output rate, peak 1 before ``gain``) so a consumer can check
it is the one its model was trained for.

Alignment and calibration (see :mod:`av_perception.audio.echo_recorder`):
the window starts ``L + latency_offset`` after the output frame of the
chirp, where ``L`` is the output-minus-input latency PortAudio reports and
``latency_offset`` [s] the rest of the loop. With ``calibrate: true`` the
node emits ``calibration_chirps`` chirps, finds the direct speaker-to-mic
sound in each, subtracts its geometric delay (speaker and microphone
positions of the array file, ``sound_speed``), sets ``latency_offset`` to
the median, logs it (put it in the params file) and then publishes echoes
aligned with it; no echo is published while calibrating.

/diagnostics (input ``device``): callbacks, input overflows / output
underflows (the windows pending then are dropped: their alignment cannot be
trusted), echoes emitted and published, windows dropped by reason, ``L``,
``latency_offset`` and the calibration result. A missing or failing device
is reported and re-opened every ``retry_period`` seconds.
"""

from __future__ import annotations

import collections
import threading
import time

import numpy as np
from rclpy.parameter import Parameter

from av_perception.arrays import DEFAULT_ECHO_ARRAY, load_array
from av_perception.audio.chunk import AudioBlock
from av_perception.audio.echo_recorder import EchoScheduler, LatencyCalibrator
from av_perception.audio.soundcard import (RescanPolicy, StreamSupervisor, adc_time_to_ns,
                                           find_device, portaudio)
from av_perception.errors import ConfigError
from av_perception.nodes.audio_capture import DRAIN_PERIOD, check_channel_map
from av_perception.ros.messages import block_to_chunk
from av_perception.ros.node import AvNode
from av_perception.ros.qos import AUDIO, LATCHED
from av_perception.ros.spin import node_main
from av_perception.robot import load_robot
from av_perception.audio.chirp import chirp as make_chirp
from av_perception.msg import AudioChunk

#: Topics this node publishes (besides /diagnostics); see nodes/__init__.py.
PUBLISHES = ('audio/echo', 'audio/chirp')


class ChirpEmitterNode(AvNode):
    """Speaker + echo microphones -> ``audio/echo`` (one AudioChunk per chirp)."""

    def __init__(self, **kwargs) -> None:
        super().__init__('chirp_emitter', **kwargs)
        self.device = self.param('device', '', 'PortAudio device of the microphones (and of '
                                 'the speaker unless output_device is set): index or name; '
                                 '"" = default.', read_only=True)
        self.output_device = self.param('output_device', '', 'PortAudio device of the speaker '
                                        'if it is another card ("" = device). One card for '
                                        'both keeps input and output on one clock.',
                                        read_only=True)
        array_file = self.param('array', DEFAULT_ECHO_ARRAY, 'Echo array geometry (a name '
                                'under config/arrays/ or a path): microphones, speaker, rate, '
                                'frame.',
                                read_only=True)
        robot_file = self.param('robot', 'robots/sim.yaml', 'Robot description whose chirp '
                                'section (f0, f1, duration, max_range) and sound_speed are '
                                'used: the ones the echo model was trained with.',
                                read_only=True)
        period = self.param('period', 0.5, 'Time between two chirps [s] (sound card clock).',
                            lo=0.01, hi=60.0, read_only=True)
        gain = self.param('gain', 0.5, 'Chirp amplitude at the output (full scale 1).',
                          lo=0.0, hi=1.0, read_only=True)
        out_channels = self.param('output_channels', [0], 'Output device channels (0-based) '
                                  'that play the chirp.', array_type=int, read_only=True)
        channel_map = self.param('channel_map', [], 'Input device channels (0-based) of the '
                                 'echo array\'s microphones, in the array file\'s order; [] = '
                                 '0..N-1.', array_type=int, read_only=True)
        self.offset_s = self.param('latency_offset', 0.0, 'Loop latency PortAudio does not '
                                   'report [s] (calibrate: true measures it).', lo=-0.5, hi=0.5,
                                   on_change='offset_s')
        calibrate = self.param('calibrate', False, 'Measure latency_offset from the '
                               'direct sound first (see the node\'s docs).',
                               read_only=True)
        calibration_chirps = self.param('calibration_chirps', 10, 'Chirps measured when '
                                        'calibrating.', lo=1, hi=1000, read_only=True)
        self.latency = self.param('latency', 0.0, 'PortAudio latency [s] of both directions; '
                                  '0 = the device\'s safe default ("high").', lo=0.0, hi=2.0,
                                  read_only=True)
        retry = self.param('retry_period', 1.0, 'Seconds between attempts to (re-)open a '
                           'missing or failed device.', lo=0.1, hi=60.0, read_only=True)
        timeout = self.param('device_timeout', 0.0, 'Seconds without audio after which the '
                             'device counts as lost and is re-opened; 0 = max(1 s, 2 periods).',
                             lo=0.0, hi=600.0, read_only=True)

        self.array = load_array(array_file)
        robot = load_robot(robot_file)
        if self.array.speaker is None:
            raise ConfigError(f'chirp_emitter: array {self.array.name!r} has no speaker '
                              'position (an echo head has "speaker: [x, y, z]")')
        self.rate = self.array.sample_rate
        try:
            self.waveform = make_chirp(robot.chirp.f0, robot.chirp.f1, robot.chirp.duration,
                                       self.rate)
        except ValueError as exc:
            raise ConfigError(f'chirp_emitter: {exc}') from None
        self.sound_speed = robot.sound_speed
        self.window = robot.echo_window(self.rate)
        self.period = int(round(period * self.rate))
        if self.period < self.window or self.period < len(self.waveform):
            raise ConfigError(f'chirp_emitter: period {period} s is shorter than the echo '
                              f'window ({self.window / self.rate:.3f} s)')
        self.channel_map = check_channel_map(channel_map, self.array.channels, 'chirp_emitter')
        if not out_channels or min(out_channels) < 0:
            raise ConfigError(f'chirp_emitter: output_channels must list 0-based channels, '
                              f'got {out_channels}')
        self.out_channels = list(out_channels)
        self.in_device_channels = max(self.channel_map) + 1
        self.out_device_channels = max(self.out_channels) + 1
        self.distances = np.linalg.norm(self.array.positions - self.array.speaker[None], axis=1)
        portaudio()  # fail at start-up (ConfigError) when sounddevice/PortAudio is missing

        self.scheduler = EchoScheduler(self.waveform * np.float32(gain), self.period,
                                       self.window, self.array.channels, first=self.period)
        self.pub = self.create_publisher(AudioChunk, 'audio/echo', AUDIO)
        self.chirp_pub = self.create_publisher(AudioChunk, 'audio/chirp', LATCHED)
        self.chirp_pub.publish(block_to_chunk(AudioBlock(self.waveform[None], self.rate, 0,
                                                         self.get_clock().now().nanoseconds,
                                                         self.array.frame_id)))
        self.stats = self.input('device', stale_after=max(2.0, 3 * period))
        self._n = 0            # frame counter of the current stream
        self._base = 0         # frames of earlier streams (+ the gaps between them)
        self._last_callback = 0.0
        self._loop_latency = 0
        self.calibrator = (LatencyCalibrator(self.waveform, self.distances, self.rate,
                                             self.sound_speed, calibration_chirps)
                           if calibrate else None)
        self._calibrating = calibrate  # switched off by the audio thread when done
        self._published = 0
        self._queue: collections.deque = collections.deque(maxlen=64)
        self._qlock = threading.Lock()
        # drained by a timer: rclpy's EventsExecutor (av-perception run) has no guard
        # conditions to wake it from the audio thread; 10 ms adds at most that latency
        self._drain_timer = self.create_timer(DRAIN_PERIOD, self._drain)
        self.rescans = RescanPolicy(first=retry)
        self.supervisor = StreamSupervisor(self._open, timeout=timeout or max(1.0, 2 * period),
                                           retry_period=retry, on_state=self._on_state)
        self.monitor.set_fact('array', f'{self.array.name} ({self.array.channels} mics, '
                                       f'{self.rate} Hz, frame {self.array.frame_id})')
        self.monitor.set_fact('chirp', f'{robot.chirp.f0:g}-{robot.chirp.f1:g} Hz, '
                                       f'{robot.chirp.duration * 1e3:g} ms, gain {gain:g}')
        self.monitor.set_fact('window_frames', self.window)
        self.monitor.set_fact('calibrating', calibrate)
        # pausing stops the audible chirp and releases the card; echo consumers
        # see the pause on audio/echo/enabled instead of a fault
        if not self.enable_switch(self._set_enabled, 'audio/echo/enabled'):
            self.supervisor.pause()
        self._report()
        self._timer = self.create_timer(min(0.5, retry / 2), self._supervise)
        self._supervise()

    def _set_enabled(self, enabled: bool) -> None:
        if enabled:
            self.supervisor.resume()
            self._supervise()
        else:
            self.supervisor.pause()
            with self._qlock:
                self._queue.clear()  # windows cut before the pause are still published
        self.get_logger().info('chirping' if enabled else 'paused: no chirp until enabled')

    # ------------------------------------------------------------ device
    def _open(self):
        sd = portaudio()
        rescan = self.rescans.due()
        inp = find_device(self.device, 'input', self.in_device_channels, rescan=rescan)
        out = find_device(self.output_device or self.device, 'output',
                          self.out_device_channels, rescan=rescan)
        self.rescans.found()
        stream = sd.Stream(device=(inp[0], out[0]),
                           channels=(self.in_device_channels, self.out_device_channels),
                           samplerate=self.rate, dtype='float32',
                           latency=self.latency or 'high', callback=self._callback)
        self._fallback_latency = float(sum(stream.latency))
        if self._n:  # a re-open: first_sample goes on, skipping the time the card was away
            away = max(0.0, time.monotonic() - self._last_callback)
            self._base += self._n + int(round(away * self.rate))
        self._n = 0
        self.scheduler.restart(first=self.period)
        stream.start()
        self.monitor.set_fact('device', f'in [{inp[0]}] {inp[1]}, out [{out[0]}] {out[1]}')
        self.get_logger().info(f'echolocation on in [{inp[0]}] {inp[1]} / out [{out[0]}] '
                               f'{out[1]} at {self.rate} Hz: a chirp every {self.period} '
                               f'frames, windows of {self.window} frames')
        return stream

    def _supervise(self) -> None:
        self.supervisor.check()
        self._report()

    def _on_state(self, message: str | None) -> None:
        self.monitor.set_error('device', message)
        if message:
            self.get_logger().error(f'device {self.device or "(default)"!r}: {message}')

    def _callback(self, indata, outdata, frames, time_info, status) -> None:
        """PortAudio's audio thread: cut windows, write the chirp."""
        now_ns = self.get_clock().now().nanoseconds
        adc, dac = time_info.inputBufferAdcTime, time_info.outputBufferDacTime
        stamp = adc_time_to_ns(now_ns, time_info.currentTime, adc, frames, self.rate,
                               self._fallback_latency)
        if adc > 0 and dac > 0:
            self._loop_latency = int(round((dac - adc) * self.rate))
        else:
            self._loop_latency = int(round(self._fallback_latency * self.rate))
        xrun = bool(status.input_overflow or status.output_underflow)
        if xrun:
            self.scheduler.discard('xrun')
        windows = self.scheduler.input(self._n, indata[:, self.channel_map].T, stamp,
                                       self.rate)
        calibrated = None
        if self._calibrating:  # here, so that the next chirp already uses the result
            for w in windows:
                calibrated = self.calibrator.add(w.samples)
                if calibrated is not None:
                    self.offset_s = calibrated
                    self._calibrating = False
                    break
            windows = []
        offset = 0 if self._calibrating else int(round(self.offset_s * self.rate))
        mono = self.scheduler.output(self._n, frames, self._loop_latency, offset)
        outdata.fill(0)
        outdata[:, self.out_channels] = mono[:, None]
        self._n += frames
        self._last_callback = time.monotonic()
        with self._qlock:
            self._queue.append(([(w, self._base + w.start) for w in windows], xrun, calibrated,
                                time.monotonic()))
        self.supervisor.alive()

    # ----------------------------------------------------------- publish
    def _drain(self) -> None:
        while True:
            with self._qlock:
                if not self._queue:
                    return
                windows, xrun, calibrated, t_cb = self._queue.popleft()
            self.stats.on_receive(t_cb)
            if xrun and self.stats.on_event('xrun', 'expected no input overflow or output '
                                            'underflow, got one (pending echoes dropped)'):
                self.get_logger().warning('sound card xrun: the echoes pending were dropped '
                                          '(counted in /diagnostics)')
            if calibrated is not None:
                self._calibrated(calibrated)
            for w, first_sample in windows:
                if w.offset == int(round(self.offset_s * self.rate)):
                    self.pub.publish(block_to_chunk(AudioBlock(w.samples, self.rate,
                                                               first_sample, w.stamp_ns,
                                                               self.array.frame_id)))
                    self._published += 1
                else:
                    self.stats.on_drop('realigned', 'expected the current latency_offset, got '
                                       'a window cut with the previous one')
            self.stats.on_processed(time.monotonic() - t_cb)

    def _calibrated(self, offset: float) -> None:
        spread, n = self.calibrator.spread, len(self.calibrator.lags)
        self.set_parameters([Parameter('latency_offset', value=offset)])
        self.monitor.set_fact('calibrating', False)
        self.monitor.set_fact('calibrated_latency_offset_s', f'{offset:.6f}')
        self.monitor.set_fact('calibration_spread_ms', f'{spread * 1e3:.3f}')
        self.get_logger().info(f'calibrated: latency_offset = {offset:.6f} s over '
                               f'{n} chirps (spread of the lags '
                               f'{spread * 1e3:.3f} ms); set it in the params file')

    def _report(self) -> None:
        self.monitor.set_fact('loop_latency_frames', self._loop_latency)
        self.monitor.set_fact('latency_offset_s', f'{self.offset_s:.6f}')
        self.monitor.set_fact('echoes_emitted', self.scheduler.emitted)
        self.monitor.set_fact('echoes_published', self._published)
        for reason, count in self.scheduler.dropped.items():
            self.monitor.set_fact(f'echoes_dropped.{reason}', count)
        self.monitor.set_fact('device_opens', self.supervisor.opens)
        self.monitor.set_fact('device_failures', self.supervisor.failures)

    def destroy_node(self) -> None:
        if hasattr(self, 'supervisor'):  # (absent when __init__ refused the configuration)
            self.supervisor.close()
        super().destroy_node()


def main(argv=None) -> int:
    return node_main(ChirpEmitterNode, argv)
