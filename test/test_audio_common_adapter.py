"""audio_common -> AudioChunk, with messages laid out exactly as the ROS 2
audio_capture driver (ros-drivers/audio_common, ros2 branch) sends them:
AudioDataStamped on audio_stamped stamped at the buffer's first sample,
AudioData (no stamp) on audio, AudioInfo on audio_info (depth 1, volatile,
republished every 5 s), uint8 channels."""

from __future__ import annotations

import numpy as np
import pytest
from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo

from av_perception.nodes.audio_common_adapter import AudioCommonAdapterNode
from av_perception.ros import qos
from av_perception.ros.messages import chunk_to_block, ns_to_stamp
from av_perception.msg import AudioChunk

RATE = 16000
SAMPLES = np.array([[0.0, 0.5, -0.5, 0.25], [-1.0, 0.125, 0.75, -0.25]])  # 2 ch x 4 frames


def _encode(fmt: str) -> bytes:
    inter = SAMPLES.T.reshape(-1)
    if fmt == 'S16LE':
        return (inter * 32768).clip(-32768, 32767).astype('<i2').tobytes()
    if fmt == 'S32LE':
        return (inter * 2147483648).clip(-2147483648, 2147483647).astype('<i4').tobytes()
    return inter.astype('<f4').tobytes()


def _data(fmt: str, sec: int) -> AudioDataStamped:
    msg = AudioDataStamped()
    msg.header.stamp = ns_to_stamp(sec * 10**9)
    msg.audio.data = _encode(fmt)
    return msg


@pytest.mark.parametrize('fmt', ['S16LE', 'S32LE', 'F32LE'])
@pytest.mark.parametrize('latched', [True, False])
def test_wave_formats_become_audio_chunks(ros, fmt, latched):
    """Samples decode to full scale +/-1, first_sample counts on, the driver's
    first-sample stamp is kept, and the AudioInfo is received whether the
    driver latches it or not."""
    node = ros.node(AudioCommonAdapterNode, {'frame_id': 'mic_array'})
    out = ros.collect(AudioChunk, 'audio/raw', qos.AUDIO)
    info_pub = ros.probe.create_publisher(AudioInfo, 'audio_info',
                                          qos.LATCHED if latched else qos.RELIABLE)
    info = AudioInfo(channels=2, sample_rate=RATE, sample_format=fmt, bitrate=0,
                     coding_format='wave')
    ros.spin_until(lambda: info_pub.get_subscription_count() > 0, what='audio_info subscriber')
    info_pub.publish(info)
    ros.spin_until(lambda: node.info is not None, what='AudioInfo taken')
    pub = ros.publisher(AudioDataStamped, 'audio_stamped', 10)  # the driver's QoS
    pub.publish(_data(fmt, 5))
    pub.publish(_data(fmt, 6))
    ros.spin_until(lambda: len(out) == 2, what='2 AudioChunks')
    b0, b1 = chunk_to_block(out[0]), chunk_to_block(out[1])
    tol = 1e-4 if fmt == 'S16LE' else 1e-7
    np.testing.assert_allclose(b0.samples, SAMPLES, atol=tol)
    assert (b0.channels, b0.sample_rate, b0.frame_id) == (2, RATE, 'mic_array')
    assert (b0.first_sample, b1.first_sample) == (0, 4)
    assert (b0.stamp_ns, b1.stamp_ns) == (5 * 10**9, 6 * 10**9)
    assert node.monitor.facts['stamps'].startswith("the driver's header stamp (first sample")


def test_unknown_format_and_data_before_info_are_counted(ros):
    node = ros.node(AudioCommonAdapterNode)
    pub = ros.publisher(AudioDataStamped, 'audio_stamped', qos.AUDIO)
    pub.publish(_data('S16LE', 1))
    stats = node.input('audio_stamped')
    ros.spin_until(lambda: stats.received == 1, what='data')
    assert dict(stats.drops) == {'no_audio_info': 1}

    info_pub = ros.probe.create_publisher(AudioInfo, 'audio_info', qos.RELIABLE)
    ros.spin_until(lambda: info_pub.get_subscription_count() > 0, what='audio_info subscriber')
    info_pub.publish(AudioInfo(channels=2, sample_rate=RATE, sample_format='U8',
                               coding_format='wave'))
    info_stats = node.input('audio_info')
    ros.spin_until(lambda: info_stats.received == 1, what='info')
    assert dict(info_stats.drops) == {'sample_format': 1}
    assert "'U8'" in info_stats.last_detail['sample_format']

    info_pub.publish(AudioInfo(channels=2, sample_rate=RATE, sample_format='S16LE',
                               coding_format='wave'))
    ros.spin_until(lambda: info_stats.received == 2, what='info')
    odd = _data('S16LE', 2)
    odd.audio.data = bytes(odd.audio.data)[:-1]
    pub.publish(odd)
    ros.spin_until(lambda: stats.received == 2, what='odd data')
    assert stats.drops['length'] == 1


def test_plain_audio_data_is_stamped_on_receipt_and_says_so(ros):
    """AudioData (the driver's unstamped topic): each chunk is stamped at its
    receipt minus its duration, continuous with the sample count, and
    /diagnostics says the stamps come from the receipt."""
    node = ros.node(AudioCommonAdapterNode, {'stamped': False, 'sample_format': 'F32LE',
                                             'channels': 2, 'sample_rate': RATE})
    out = ros.collect(AudioChunk, 'audio/raw', qos.AUDIO)
    pub = ros.publisher(AudioData, 'audio', 10)
    before = node.get_clock().now().nanoseconds
    for _ in range(3):
        pub.publish(AudioData(data=_encode('F32LE')))
    ros.spin_until(lambda: len(out) == 3, what='3 AudioChunks')
    after = node.get_clock().now().nanoseconds
    blocks = [chunk_to_block(m) for m in out]
    assert [b.first_sample for b in blocks] == [0, 4, 8]
    period = round(4 / RATE * 1e9)
    assert before - period <= blocks[0].stamp_ns <= after
    assert blocks[1].stamp_ns - blocks[0].stamp_ns == period  # regular, not receipt jitter
    assert 'receipt' in node.monitor.facts['stamps']


def test_receipt_clock_follows_samples_and_reanchors_on_a_stall():
    from av_perception.audio.chunk import ReceiptClock
    clock = ReceiptClock(tolerance=0.01)
    t0 = 10**9
    s0, r0 = clock.stamp(t0, 0, 1600, 16000)
    assert (s0, r0) == (t0 - 10**8, False)
    s1, r1 = clock.stamp(t0 + 10**8 + 3 * 10**6, 1600, 1600, 16000)  # 3 ms late: jitter
    assert (s1, r1) == (t0, False)
    s2, r2 = clock.stamp(t0 + 5 * 10**8, 3200, 1600, 16000)           # 300 ms stall
    assert r2 and s2 == t0 + 4 * 10**8


def test_stamp_at_end_for_drivers_that_stamp_the_last_sample(ros):
    node = ros.node(AudioCommonAdapterNode, {'stamp_at_end': True, 'sample_format': 'F32LE',
                                             'channels': 2, 'sample_rate': RATE})
    out = ros.collect(AudioChunk, 'audio/raw', qos.AUDIO)
    pub = ros.publisher(AudioDataStamped, 'audio_stamped', 10)
    pub.publish(_data('F32LE', 5))
    ros.spin_until(lambda: out, what='a chunk')
    assert chunk_to_block(out[0]).stamp_ns == 5 * 10**9 - round(4 / RATE * 1e9)
    assert node.info == ('F32LE', 2, RATE)
