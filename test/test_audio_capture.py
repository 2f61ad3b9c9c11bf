"""audio_capture: a sound card (an ALSA PCM fed by the test, see alsa_pcm.py)
gives AudioChunks with the right samples in the configured channel order and a
continuous first_sample; a missing device is reported and picked up once it
appears; the stamping and supervision logic on its own."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import rclpy
from rclpy.parameter import Parameter

from alsa_pcm import CardInput, capture_pcm, write_config
from av_perception.audio.chunk import deinterleave
from av_perception.audio.soundcard import (RescanPolicy, SampleClock, StreamSupervisor,
                                           adc_time_to_ns)
from av_perception.errors import ConfigError
from av_perception.nodes.audio_capture import AudioCaptureNode
from av_perception.ros import qos
from av_perception.ros.messages import stamp_to_ns
from av_perception.ros.spin import spin_nodes
from av_perception.msg import AudioChunk
from conftest import diag_values
from diagnostic_msgs.msg import DiagnosticArray

RATE, DEVICE_CHANNELS, CHUNK = 16000, 6, 800  # 50 ms chunks
CHANNEL_MAP = [5, 1, 0, 2]  # respeaker4's mic0..mic3 on these device channels


@pytest.fixture
def alsa_dir(tmp_path, monkeypatch):
    monkeypatch.setenv('ALSA_CONFIG_PATH', str(tmp_path / 'asound.conf'))
    return tmp_path


def _signal(chunks: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.uniform(-0.5, 0.5, (chunks * CHUNK, DEVICE_CHANNELS))


def _params(device: str, **extra) -> dict:
    return {'device': device, 'array': 'respeaker4', 'chunk': CHUNK / RATE,
            'channel_map': CHANNEL_MAP,
            # the input blocks once its samples are used up: no "device lost" in a slow run
            'device_timeout': 60.0, **extra}


def _diag(diags) -> dict:
    try:
        return diag_values(diags, 'audio_capture')
    except AssertionError:  # no report yet
        return {}


def _check_chunks(chunks, signal, n):
    expect = signal.astype(np.float32)
    for k, msg in enumerate(chunks[:n]):
        assert (msg.channels, msg.sample_rate, msg.header.frame_id) == (4, RATE, 'mic_array')
        assert msg.first_sample == k * CHUNK
        got = deinterleave(np.asarray(msg.data, np.float32), 4)
        np.testing.assert_array_equal(got, expect[k * CHUNK:(k + 1) * CHUNK, CHANNEL_MAP].T)
    stamps = [stamp_to_ns(m.header.stamp) for m in chunks[:n]]
    assert stamps == sorted(stamps)


def test_capture_samples_channel_order_and_continuity(ros, alsa_dir):
    card_in = CardInput()
    try:
        write_config(alsa_dir / 'asound.conf',
                     capture_pcm('avp_test_in', card_in.infile))
        signal = _signal(10)
        card_in.write(signal)  # 8 chunks checked, 2 more: a read waits for a whole period
        out = ros.collect(AudioChunk, 'audio/raw', qos.AUDIO)
        diags = ros.collect(DiagnosticArray, '/diagnostics')
        node = ros.node(AudioCaptureNode, _params('avp_test_in', diagnostics_period=0.2))
        ros.spin_until(lambda: len(out) >= 8, timeout=10, what='8 chunks')
        _check_chunks(out, signal, 8)
        now = ros.probe.get_clock().now().nanoseconds
        assert abs(stamp_to_ns(out[0].header.stamp) - now) < 5e9
        ros.spin_until(lambda: 'device' in _diag(diags), timeout=5,
                       what='diagnostics with the device')
        values = diag_values(diags, 'audio_capture')
        assert values['device'].endswith('avp_test_in')
        assert values['channel_map'] == str(CHANNEL_MAP)
        assert 'error.device' not in values
        assert node.supervisor.opens == 1
    finally:
        card_in.close()


def test_missing_device_is_reported_then_picked_up(ros, alsa_dir):
    conf = write_config(alsa_dir / 'asound.conf')  # no such device yet
    out = ros.collect(AudioChunk, 'audio/raw', qos.AUDIO)
    diags = ros.collect(DiagnosticArray, '/diagnostics')
    node = ros.node(AudioCaptureNode, _params('avp_late_in', retry_period=0.2,
                                              diagnostics_period=0.1))
    ros.spin_until(lambda: 'cannot open the device' in _diag(diags).get('error.device', ''),
                   timeout=5, what='the missing device in /diagnostics')
    assert 'avp_late_in' in diag_values(diags, 'audio_capture')['error.device']
    assert not out
    card_in = CardInput()
    try:
        signal = _signal(5)
        card_in.write(signal)
        write_config(conf, capture_pcm('avp_late_in', card_in.infile))
        ros.spin_until(lambda: len(out) >= 3, timeout=10, what='chunks once the device is there')
        _check_chunks(out, signal, 3)
        assert node.supervisor.error is None and node.supervisor.opens == 1
    finally:
        card_in.close()


def test_capture_runs_on_the_executor_of_av_perception_run(alsa_dir):
    """spin_nodes (rclpy's EventsExecutor, as `av-perception run`) drives the node."""
    card_in = CardInput()
    write_config(alsa_dir / 'asound.conf', capture_pcm('avp_run_in', card_in.infile))
    signal = _signal(6)
    card_in.write(signal)
    got: list = []
    stop = threading.Event()

    def probe():
        node = rclpy.create_node('capture_probe')
        node.create_subscription(AudioChunk, 'audio/raw', got.append, qos.AUDIO)
        return node

    def until_received():
        deadline = time.monotonic() + 10
        while len(got) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        card_in.close()
        stop.set()
    watcher = threading.Thread(target=until_received)
    watcher.start()
    code = spin_nodes([probe, lambda: AudioCaptureNode(parameter_overrides=[
        Parameter(k, value=v) for k, v in _params('avp_run_in').items()])], args=[], stop=stop)
    watcher.join()
    assert code == 0
    _check_chunks(got, signal, 4)


def test_bad_channel_map_is_refused(ros):
    with pytest.raises(ConfigError, match='channel_map must list 4'):
        ros.node(AudioCaptureNode, {'channel_map': [0, 1]})
    with pytest.raises(ConfigError, match='distinct'):
        ros.node(AudioCaptureNode, {'channel_map': [0, 1, 1, 2]})


def test_stamp_from_adc_time_and_fallback():
    # PortAudio: now 100.5 s, block captured from 100.4 s; ROS now 7 s
    assert adc_time_to_ns(7_000_000_000, 100.5, 100.4, 1600, 16000, 0.05) == 6_900_000_000
    # no ADC time reported: the block ended latency ago
    assert adc_time_to_ns(7_000_000_000, 100.5, 0.0, 1600, 16000, 0.05) == 6_850_000_000


def test_sample_clock_counts_lost_samples_as_a_gap():
    c = SampleClock(1000)
    assert c.place(100, 0, False) == 0
    assert c.place(100, 100_000_000, False) == 100
    # an overflow: the next block was acquired 50 ms later than continuity says
    assert c.place(100, 250_000_000, True) == 250
    assert c.lost == 50
    # a discontinuity flag without a time gap costs nothing
    assert c.place(100, 350_000_000, True) == 350


def test_rescans_back_off_while_a_device_stays_missing():
    now = [0.0]
    p = RescanPolicy(first=1.0, longest=4.0, clock=lambda: now[0])
    times = []
    for t in np.arange(0.0, 12.0, 0.5):
        now[0] = float(t)
        if p.due():
            times.append(float(t))
    assert times == [0.0, 1.0, 3.0, 7.0, 11.0]
    p.found()
    assert p.due()


class _Stream:
    def __init__(self):
        self.active, self.closed = True, False

    def abort(self):
        self.active = False

    def close(self):
        self.closed = True


def test_supervisor_reopens_a_lost_device():
    now = [0.0]
    states = []
    plugged = [False]
    streams = []

    def open_stream():
        if not plugged[0]:
            raise RuntimeError('no input device')
        streams.append(_Stream())
        return streams[-1]

    sup = StreamSupervisor(open_stream, timeout=1.0, retry_period=0.5, on_state=states.append,
                           clock=lambda: now[0])
    assert not sup.check() and 'cannot open the device: no input device' in sup.error
    now[0] = 0.2
    plugged[0] = True
    assert not sup.check()  # waits for the retry period
    now[0] = 0.6
    assert sup.check() and sup.error is None and sup.opens == 1
    now[0] = 1.0
    sup.alive()
    now[0] = 1.9
    assert not sup.check() and sup.stream is streams[0]
    now[0] = 2.1  # no callback for 1.1 s
    sup.check()
    assert streams[0].closed and 'device lost: no audio for 1.1 s' in sup.error
    now[0] = 2.7
    assert sup.check() and sup.opens == 2
    streams[1].active = False  # PortAudio stopped the stream (device unplugged)
    sup.check()
    assert 'the stream stopped' in sup.error and sup.failures == 2
    sup.fail('x')  # ignored without a stream
    now[0] = 3.3
    assert sup.check()
    sup.fail('callback error')
    sup.check()
    assert 'callback error' in sup.error
    assert states[0].startswith('cannot open') and None in states
