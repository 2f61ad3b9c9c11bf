"""chirp_emitter on a full-duplex ALSA device without hardware (alsa_pcm.py):
the speaker gets the configured chirp every period, each echo window is the
microphones' input from the emission instant on, in the configured channel
order; calibration finds the loop latency from the direct sound; the
scheduling logic on its own."""

from __future__ import annotations

import numpy as np
import pytest

from alsa_pcm import CardInput, capture_pcm, duplex_pcm, playback_pcm, write_config
from av_perception.arrays import load_array
from av_perception.audio.chunk import deinterleave
from av_perception.audio.echo_recorder import EchoScheduler, calibrated_offset, direct_path_lag
from av_perception.nodes.chirp_emitter import ChirpEmitterNode
from av_perception.ros import qos
from av_perception.robot import load_robot
from av_perception.audio.chirp import chirp
from av_perception.msg import AudioChunk

RATE = 44100
PERIOD = 4410                  # 0.1 s
IN_CHANNELS, CHANNEL_MAP = 3, [2, 0]   # echo_head's left mic on device input 2, right on 0
OUT_CHANNELS = [1]             # the speaker on device output 1 of 2
GAIN = 0.5
ROBOT = load_robot()
CHIRP = chirp(ROBOT.chirp.f0, ROBOT.chirp.f1, ROBOT.chirp.duration, RATE)
WINDOW = ROBOT.echo_window(RATE)
DIRECT = float(np.linalg.norm(load_array('echo_head_cardioid').positions[0])
               / ROBOT.sound_speed * RATE)


@pytest.fixture
def duplex(tmp_path, monkeypatch):
    monkeypatch.setenv('ALSA_CONFIG_PATH', str(tmp_path / 'asound.conf'))
    card_in = CardInput()
    out = tmp_path / 'speaker.raw'
    write_config(tmp_path / 'asound.conf', capture_pcm('avp_echo_in', card_in.infile),
                 playback_pcm('avp_echo_out', out), duplex_pcm('avp_echo', 'avp_echo_out',
                                                               'avp_echo_in'))
    try:
        yield card_in, out
    finally:
        card_in.close()


def _mics(frames: int, loop_delay: int | None = None) -> np.ndarray:
    """Device input (frames, 3): low noise, and with ``loop_delay`` the
    chirp's direct sound on both mics ``loop_delay`` + the geometric delay
    after each emission."""
    x = np.random.default_rng(7).uniform(-0.01, 0.01, (frames, IN_CHANNELS))
    if loop_delay is not None:
        for e in range(PERIOD, frames - len(CHIRP), PERIOD):
            at = e + loop_delay + int(round(DIRECT))
            x[at:at + len(CHIRP), CHANNEL_MAP] += 0.3 * CHIRP[:, None]
    return x.astype(np.float32)


def _params(**extra) -> dict:
    return {'device': 'avp_echo', 'period': PERIOD / RATE, 'gain': GAIN,
            'channel_map': CHANNEL_MAP, 'output_channels': OUT_CHANNELS,
            'device_timeout': 60.0, **extra}


def _window(msg) -> np.ndarray:
    return deinterleave(np.asarray(msg.data, np.float32), msg.channels)


def test_chirps_are_played_and_echo_windows_start_at_emission(ros, duplex):
    card_in, out_file = duplex
    mics = _mics(7 * PERIOD)
    card_in.write(mics)
    offset = 44  # latency_offset 1 ms at 44.1 kHz
    echoes = ros.collect(AudioChunk, 'audio/echo', qos.AUDIO)
    chirps = ros.collect(AudioChunk, 'audio/chirp', qos.LATCHED)
    ros.node(ChirpEmitterNode, _params(latency_offset=offset / RATE))
    ros.spin_until(lambda: len(echoes) >= 4 and chirps, timeout=10, what='4 echoes')
    np.testing.assert_array_equal(_window(chirps[0])[0], CHIRP)
    for j, msg in enumerate(echoes[:4]):
        start = (j + 1) * PERIOD + offset  # emission frame + PortAudio's L (0 here) + offset
        assert (msg.channels, msg.sample_rate, msg.header.frame_id) == (2, RATE, 'echo_head')
        assert msg.first_sample == start
        np.testing.assert_array_equal(_window(msg), mics[start:start + WINDOW, CHANNEL_MAP].T)
    # the speaker: silence on output 0, the chirp x gain every period on output 1
    card_in.close()
    played = np.fromfile(out_file, dtype='<f4').reshape(-1, 2)
    assert not played[:, 0].any()
    onset = np.flatnonzero(played[:, 1])[0] - np.flatnonzero(CHIRP)[0]
    for j in range(4):
        seg = played[onset + j * PERIOD:onset + j * PERIOD + PERIOD, 1]
        np.testing.assert_allclose(seg[:len(CHIRP)], GAIN * CHIRP, atol=1e-7)
        assert not seg[len(CHIRP):].any()


def test_calibration_measures_the_loop_latency(ros, duplex):
    card_in, _ = duplex
    loop = 40  # frames of latency that PortAudio does not report
    mics = _mics(8 * PERIOD, loop_delay=loop)
    card_in.write(mics)
    echoes = ros.collect(AudioChunk, 'audio/echo', qos.AUDIO)
    node = ros.node(ChirpEmitterNode, _params(calibrate=True, calibration_chirps=3))
    ros.spin_until(lambda: len(echoes) >= 2, timeout=10, what='echoes after calibration')
    offset = node.get_parameter('latency_offset').value
    # the direct sound arrives loop + round(DIRECT) frames after the emission
    assert abs(offset * RATE - (loop + round(DIRECT) - DIRECT)) < 0.2
    for msg in echoes[:2]:
        start = msg.first_sample
        assert (start - round(offset * RATE)) % PERIOD == 0 and start // PERIOD >= 4
        w = _window(msg)
        np.testing.assert_array_equal(w, mics[start:start + WINDOW, CHANNEL_MAP].T)
        # sample 0 = emission: the direct sound at its geometric delay
        assert np.all(np.abs(direct_path_lag(w, CHIRP) - DIRECT) < 1.0)


def test_scheduler_periods_windows_and_negative_offsets():
    c = np.arange(1, 6, dtype=np.float32)
    s = EchoScheduler(c, period=20, window=8, channels=1, first=7)
    x = np.arange(200, dtype=np.float32)[None]
    played, wins = [], []
    for n in range(0, 200, 6):  # blocks of 6 frames
        wins += s.input(n, x[:, n:n + 6], stamp_ns=n * 1000, rate=1e6)
        played.append(s.output(n, 6, latency=3, offset=-5))
    played = np.concatenate(played)
    assert len(played) == 204
    for e in range(7, 204, 20):
        np.testing.assert_array_equal(played[e:e + 5], c)
    assert np.count_nonzero(played) == 5 * len(range(7, 204, 20))
    assert [w.start for w in wins] == [e - 2 for e in range(7, 190, 20)][:len(wins)]
    assert len(wins) >= 8
    for w in wins:
        np.testing.assert_array_equal(w.samples[0], x[0, w.start:w.start + 8])
        assert w.stamp_ns == w.start * 1000
    # a hole in the input counter: pending windows are dropped as xrun
    s.output(204, 6, 0, 0)
    s.input(300, x[:, :6], 0, 1e6)
    assert s.dropped.get('xrun', 0) >= 1


def test_calibrated_offset_subtracts_the_geometric_delay():
    lags = np.array([[55.0, 56.0], [55.2, 56.2], [54.8, 55.8]])
    off = calibrated_offset(lags, np.array([0.1, 0.1 + 343 / 44100]), 44100, 343.0)
    assert off == pytest.approx(55.0 / 44100 - 0.1 / 343, abs=1e-7)
