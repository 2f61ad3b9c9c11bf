"""Pause and resume without restarting (the live parameter ``enabled`` and the
``~/enable`` std_srvs/SetBool service) on sound cards without hardware
(alsa_pcm.py): the chirp stops and the device is released; a consumer
reports the pause in /diagnostics, not a stale input or lost audio; resuming
brings the output back."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from std_srvs.srv import SetBool

from alsa_pcm import CardInput, capture_pcm, duplex_pcm, playback_pcm, write_config
from av_perception.msg import AudioChunk
from av_perception.nodes.audio_capture import AudioCaptureNode
from av_perception.nodes.audio_monitor import AudioMonitorNode
from av_perception.nodes.chirp_emitter import ChirpEmitterNode
from av_perception.nodes.echo_depth import ECHO_STALE_AFTER, EchoDepthNode
from av_perception.ros import qos
from conftest import diag_values
from sensor_msgs.msg import Image

RATE = 44100
PERIOD = 4410  # a chirp every 0.1 s


def _call(ros, service: str, on: bool):
    client = ros.probe.create_client(SetBool, service)
    ros.spin_until(lambda: client.service_is_ready(), what=f'{service}')
    future = client.call_async(SetBool.Request(data=on))
    ros.spin_until(future.done, what=f'{service} reply')
    return future.result()


def _spin(ros, seconds: float) -> None:
    import time
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ros.executor.spin_once(timeout_sec=0.05)


class ClockedFeeder:
    """Feeds the card's input in real time, as a sound card's clock would (a
    card always delivers; with no more samples PortAudio's reader, and so the
    stream's close, would wait forever), and keeps what it fed: a capture
    must deliver exactly those frames, in order."""

    def __init__(self, card_in: CardInput, channels: int, rate: int, block: float = 0.02) -> None:
        self.card_in, self.channels, self.rate, self.block = card_in, channels, rate, block
        self.fed: list[np.ndarray] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        rng = np.random.default_rng(1)
        frames = int(self.rate * self.block)
        while not self.stop.wait(self.block):
            block = rng.uniform(-0.2, 0.2, (frames, self.channels)).astype(np.float32)
            self.fed.append(block)  # before the write: the capture may read it at once
            try:
                self.card_in.write(block)
            except OSError:  # closed at the end of the test
                return

    def assert_delivered(self, frames: np.ndarray, what: str) -> None:
        """(frames, channels) read from the card are consecutive fed frames:
        not another format's bytes, nor a period's stale tail (the frames of a
        buffer earlier, or a never-written buffer's memory), which a range
        check alone would pass when they are old samples."""
        fed = np.concatenate(self.fed)
        at = np.flatnonzero((fed == frames[0]).all(axis=1))
        assert at.size == 1, (f'{what}: its first frame was never fed (peak '
                              f'{np.abs(frames).max():.3g}, fed within +-0.2)')
        start = int(at[0])
        np.testing.assert_array_equal(frames, fed[start:start + len(frames)],
                                      err_msg=f'{what}: not the frames fed from {start} on')


@pytest.fixture
def alsa(tmp_path, monkeypatch):
    monkeypatch.setenv('ALSA_CONFIG_PATH', str(tmp_path / 'asound.conf'))
    card_in = CardInput()
    feeders = []

    def feed(channels: int, rate: int) -> ClockedFeeder:
        feeders.append(ClockedFeeder(card_in, channels, rate))
        return feeders[-1]
    try:
        yield tmp_path, card_in, feed
    finally:
        for f in feeders:
            f.stop.set()
            f.thread.join(timeout=5)
        card_in.close()


def test_paused_chirp_emitter_is_a_pause_for_echo_depth(ros, alsa):
    tmp, card_in, feed = alsa
    write_config(tmp / 'asound.conf', capture_pcm('avp_in', card_in.infile),
                 playback_pcm('avp_out', tmp / 'speaker.raw'),
                 duplex_pcm('avp_echo', 'avp_out', 'avp_in'))
    feeder = feed(2, RATE)
    depth = ros.collect(Image, 'echo_depth/depth')
    echoes = ros.collect(AudioChunk, 'audio/echo', qos.AUDIO)
    diags = ros.collect(DiagnosticArray, '/diagnostics')
    emitter = ros.node(ChirpEmitterNode, {'device': 'avp_echo', 'period': PERIOD / RATE,
                                          'device_timeout': 60.0, 'channel_map': [0, 1]})
    ros.node(EchoDepthNode, {'diagnostics_period': 0.2})
    ros.spin_until(lambda: len(depth) >= 2, timeout=20, what='depth from echoes')

    reply = _call(ros, '/chirp_emitter/enable', False)
    assert reply.success and reply.message == 'paused'
    assert emitter.supervisor.paused and emitter.supervisor.stream is None  # card released
    _spin(ros, 0.5)
    n = len(depth)
    _spin(ros, ECHO_STALE_AFTER + 0.6)  # longer than echo_depth's stale time
    assert len(depth) == n, 'echoes while paused'
    echo = diag_values(diags, 'echo_depth: audio/echo')
    assert echo['paused'] == 'true' and 'dropped' in echo and echo['dropped'] == '0'
    status = next(st for a in reversed(diags) for st in a.status
                  if st.name == 'echo_depth: audio/echo')
    assert status.level == DiagnosticStatus.OK, status.message
    assert 'paused' in status.message
    assert 'error.device' not in diag_values(diags, 'chirp_emitter')

    assert _call(ros, '/chirp_emitter/enable', True).success
    ros.spin_until(lambda: len(depth) > n + 1, timeout=20, what='depth after resuming')
    assert emitter.supervisor.opens == 2
    _spin(ros, 0.5)
    echo = diag_values(diags, 'echo_depth: audio/echo')
    assert echo['paused'] == 'false' and echo['pauses'] == '1' and echo['dropped'] == '0'
    # The depth came from the card's samples: echo_depth refused no echo (a
    # corrupt one, beyond +-1000, would count as dropped.range), and every
    # echo window is a run of the frames fed, before and after the pause.
    assert 'dropped.range' not in echo
    assert len(echoes) >= 4
    for k, msg in enumerate(echoes):
        window = np.asarray(msg.data, np.float32).reshape(-1, msg.channels)
        feeder.assert_delivered(window, f'echo {k} of {len(echoes)}')


def test_capture_pauses_releases_the_device_and_resumes(ros, alsa):
    tmp, card_in, feed = alsa
    write_config(tmp / 'asound.conf', capture_pcm('avp_in4', card_in.infile))
    feeder = feed(4, 16000)
    out = ros.collect(AudioChunk, 'audio/raw', qos.AUDIO)
    diags = ros.collect(DiagnosticArray, '/diagnostics')
    capture = ros.node(AudioCaptureNode, {'device': 'avp_in4', 'array': 'respeaker4',
                                          'device_timeout': 60.0, 'diagnostics_period': 0.2})
    ros.spin_until(lambda: len(out) >= 4, timeout=20, what='audio')
    assert _call(ros, '/audio_capture/enable', False).success
    assert capture.supervisor.stream is None
    _spin(ros, 2.5)  # longer than the device input's stale time (2 s)
    n = len(out)
    _spin(ros, 0.5)
    assert len(out) == n
    device = next(st for a in reversed(diags) for st in a.status
                  if st.name == 'audio_capture: device')
    assert device.level == DiagnosticStatus.OK and 'paused' in device.message
    assert 'error.device' not in diag_values(diags, 'audio_capture')
    assert _call(ros, '/audio_capture/enable', True).success
    ros.spin_until(lambda: len(out) >= n + 3, timeout=20, what='audio again')
    assert capture.supervisor.opens == 2
    assert out[n].first_sample > out[n - 1].first_sample + 1600  # the pause's time, skipped
    for k, msg in enumerate(out):  # the card's samples, before and after the pause
        chunk = np.asarray(msg.data, np.float32).reshape(-1, msg.channels)
        feeder.assert_delivered(chunk, f'chunk {k} of {len(out)}')


@pytest.mark.parametrize('announced', [True, False], ids=['paused', 'unannounced-gap'])
def test_a_consumer_reports_a_pause_not_lost_audio(ros, announced):
    """The gap a paused capture leaves in first_sample is a pause downstream
    when the capture announced it on audio/raw/enabled, and lost audio when not."""
    from std_msgs.msg import Bool

    from av_perception.audio.chunk import AudioBlock
    from av_perception.ros.messages import block_to_chunk
    monitor = ros.node(AudioMonitorNode)
    stats = monitor.input('audio/raw')
    pub = ros.publisher(AudioChunk, 'audio/raw', qos.AUDIO)
    state = ros.publisher(Bool, 'audio/raw/enabled', qos.LATCHED)
    x = np.full((4, 1600), 0.1, np.float32)

    def send(k: int, first: int) -> None:
        pub.publish(block_to_chunk(AudioBlock(x, 16000, first, 10**9 + first * 62_500,
                                              'mic_array')))
        ros.spin_until(lambda: stats.received == k, what=f'chunk {k}')
    send(1, 0)
    send(2, 1600)
    if announced:
        state.publish(Bool(data=False))
        ros.spin_until(lambda: stats.paused, what='the pause')
        state.publish(Bool(data=True))
        ros.spin_until(lambda: not stats.paused, what='the resumption')
    send(3, 1600 * 30)   # 28 chunks later
    send(4, 1600 * 31)
    if announced:
        assert stats.lost == 0 and stats.pauses == 1 and not stats.events
    else:
        assert stats.lost == 28 and stats.events['gap'] == 1
