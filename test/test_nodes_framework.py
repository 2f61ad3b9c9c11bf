"""The node framework in a running ROS 2 graph: TF, diagnostics, parameters,
and bad input counted while the node keeps running."""

from __future__ import annotations

import math

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import Image
from tf2_msgs.msg import TFMessage

from av_perception.audio.chunk import AudioBlock
from av_perception.errors import ConfigError
from av_perception.nodes.audio_monitor import AudioMonitorNode
from av_perception.nodes.static_frames import StaticFramesNode
from av_perception.ros import qos
from av_perception.ros.inputs import ImageInput
from av_perception.ros.messages import array_to_image, block_to_chunk, header, image_to_array
from av_perception.ros.node import AvNode
from av_perception.ros.tf import TfBroadcaster, transform
from conftest import diag_values

FRAMES = {
    'frames': ['mic_array', 'camera_link'],
    'optical_frames': ['camera_link'],
    'mic_array.parent': 'base_link',
    'mic_array.xyz': [0.0, 0.0, 0.3],
    'mic_array.rpy': [0.0, 0.0, math.pi / 2],
    'camera_link.parent': 'base_link',
    'camera_link.xyz': [0.1, 0.0, 0.25],
    'camera_link.rpy': [0.0, 0.0, 0.0],
}


def test_static_frames_reach_a_late_subscriber_on_tf_static(ros):
    """/tf_static is transient local: a subscriber that joins after the
    publication still gets every frame, with the configured values."""
    ros.node(StaticFramesNode, FRAMES)
    got = ros.collect(TFMessage, '/tf_static', qos.LATCHED)
    ros.spin_until(lambda: got, what='/tf_static')
    by_child = {t.child_frame_id: t for t in got[-1].transforms}
    assert set(by_child) == {'mic_array', 'camera_link', 'camera_link_optical'}
    mic = by_child['mic_array']
    assert mic.header.frame_id == 'base_link'
    assert mic.transform.translation.z == pytest.approx(0.3)
    # 90 deg yaw: (x, y, z, w) = (0, 0, sin 45, cos 45)
    assert mic.transform.rotation.z == pytest.approx(math.sqrt(0.5))
    assert mic.transform.rotation.w == pytest.approx(math.sqrt(0.5))
    opt = by_child['camera_link_optical']
    assert opt.header.frame_id == 'camera_link'
    q = opt.transform.rotation
    assert (q.x, q.y, q.z, q.w) == pytest.approx((-0.5, 0.5, -0.5, 0.5))


def test_tf_broadcaster_is_decoded_by_a_subscriber(ros):
    """A TFMessage on /tf from TfBroadcaster decodes with the sent values."""
    node = ros.add(AvNode('tf_test', context=ros.context))
    tf = TfBroadcaster(node)
    got = ros.collect(TFMessage, '/tf', qos.TF)
    ros.spin_until(lambda: tf._pub.get_subscription_count() > 0, what='/tf subscriber')
    tf.send([transform('odom', 'base_link', (1.0, 2.0, 0.0), (0.0, 0.0, 0.0, 1.0), 42)])
    ros.spin_until(lambda: got, what='/tf')
    t = got[0].transforms[0]
    assert (t.header.frame_id, t.child_frame_id) == ('odom', 'base_link')
    assert (t.transform.translation.x, t.transform.translation.y) == (1.0, 2.0)
    assert t.header.stamp.nanosec == 42


def test_parameter_out_of_range_is_refused_with_a_clear_error(ros):
    with pytest.raises(ConfigError, match='silent_dbfs'):
        ros.node(AudioMonitorNode, {'silent_dbfs': 10.0})


def test_parameter_descriptors_carry_description_and_range(ros):
    node = ros.node(AudioMonitorNode)
    desc = node.describe_parameter('silent_dbfs')
    assert 'dBFS' in desc.description
    assert desc.floating_point_range[0].from_value == -200.0
    assert node.describe_parameter('array').read_only


def _chunk(channels=4, frames=1600, rate=16000, first=0, stamp_ns=1_000_000_000, value=0.1):
    samples = np.full((channels, frames), value, dtype=np.float32)
    return block_to_chunk(AudioBlock(samples, rate, first, stamp_ns, 'mic_array'))


def test_audio_bad_input_is_counted_and_the_node_keeps_running(ros):
    """Each kind of bad AudioChunk of the foundation issue is dropped, counted
    under its reason in /diagnostics (with what was expected and what came),
    and a good chunk afterwards is still processed."""
    node = ros.node(AudioMonitorNode, {'array': 'respeaker4'})
    diags = ros.collect(DiagnosticArray, '/diagnostics', qos.RELIABLE)
    pub = ros.publisher(type(_chunk()), 'audio/raw', qos.AUDIO)
    sec = 1_000_000_000

    good0 = _chunk(first=0, stamp_ns=10 * sec)
    wrong_channels = _chunk(channels=2, first=1600, stamp_ns=10 * sec + 100_000_000)
    bad_length = _chunk(first=1600, stamp_ns=10 * sec + 100_000_000)
    bad_length.data = bad_length.data[:-1]
    nan = _chunk(first=1600, stamp_ns=10 * sec + 100_000_000)
    nan.data[5] = float('nan')
    inf = _chunk(first=1600, stamp_ns=10 * sec + 100_000_000)
    inf.data[7] = float('inf')
    rate_change = _chunk(rate=48000, first=1600, stamp_ns=10 * sec + 100_000_000)
    backwards = _chunk(first=1600, stamp_ns=9 * sec)
    good1 = _chunk(first=1600, stamp_ns=10 * sec + 100_000_000, value=0.5)
    msgs = [good0, wrong_channels, bad_length, nan, inf, rate_change, backwards, good1]
    for m in msgs:
        pub.publish(m)
    stats = node.input('audio/raw')
    ros.spin_until(lambda: stats.received == len(msgs), what='all chunks')

    assert dict(stats.drops) == {'channels': 1, 'length': 1, 'non_finite': 2,
                                 'sample_rate': 1, 'stamp_backwards': 1}
    assert stats.processed == 2
    assert 'expected 4 channels' in stats.last_detail['channels']
    assert 'got 2' in stats.last_detail['channels']
    # the good chunk after the bad ones was used: its level is -6 dBFS
    assert node.levels == pytest.approx(20 * np.log10(0.5), abs=0.01)

    node.publish_diagnostics()
    ros.spin_until(lambda: any(s.name == 'audio_monitor: audio/raw'
                               for a in diags for s in a.status), what='/diagnostics')
    values = diag_values(diags, 'audio_monitor: audio/raw')
    assert values['dropped'] == '6'
    assert values['dropped.non_finite'] == '2'
    assert 'expected' in values['dropped.sample_rate.last']
    status = next(s for a in diags for s in a.status if s.name == 'audio_monitor: audio/raw')
    assert status.level == DiagnosticStatus.WARN


def test_sample_rate_change_mid_stream_is_dropped_without_config_rate(ros):
    """With no configured rate, the first chunk fixes it; a later change is
    reported as a mid-stream change."""
    from av_perception.ros.inputs import AudioInput
    node = ros.add(AvNode('rate_test', context=ros.context))
    blocks = []
    AudioInput(node, 'audio/raw', blocks.append)
    pub = ros.publisher(type(_chunk()), 'audio/raw', qos.AUDIO)
    pub.publish(_chunk(rate=16000, first=0, stamp_ns=10**9))
    pub.publish(_chunk(rate=48000, first=1600, stamp_ns=10**9 + 10**8))
    pub.publish(_chunk(rate=16000, first=1600, stamp_ns=10**9 + 10**8))
    stats = node.input('audio/raw')
    ros.spin_until(lambda: stats.received == 3, what='3 chunks')
    assert dict(stats.drops) == {'sample_rate_change': 1}
    assert len(blocks) == 2
    assert 'mid-stream' in stats.last_detail['sample_rate_change']


def test_gap_in_first_sample_is_an_event_and_the_chunk_is_used(ros):
    from av_perception.ros.inputs import AudioInput
    node = ros.add(AvNode('gap_test', context=ros.context))
    blocks = []
    AudioInput(node, 'audio/raw', blocks.append)
    pub = ros.publisher(type(_chunk()), 'audio/raw', qos.AUDIO)
    pub.publish(_chunk(first=0, stamp_ns=10**9))
    pub.publish(_chunk(first=3200, stamp_ns=10**9 + 2 * 10**8))
    stats = node.input('audio/raw')
    ros.spin_until(lambda: stats.received == 2, what='2 chunks')
    assert len(blocks) == 2
    assert dict(stats.events) == {'gap': 1}
    assert '1600 samples of gap' in stats.last_detail['gap']


class _ImageSink(AvNode):
    def __init__(self, **kwargs):
        super().__init__('image_sink', **kwargs)
        self.images = []
        ImageInput(self, 'camera/image_raw', lambda a, h: self.images.append(a))


def test_image_bad_input_is_counted_and_the_node_keeps_running(ros):
    """Unsupported encoding and a step that does not match are dropped and
    counted; a bgr8 image after them arrives converted to rgb8."""
    node = ros.node(_ImageSink)
    pub = ros.publisher(Image, 'camera/image_raw', qos.SENSOR)
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200  # red
    hdr = header(10**9, 'camera_link_optical')
    bad_enc = array_to_image(rgb, 'rgb8', hdr)
    bad_enc.encoding = 'yuv422'
    bad_step = array_to_image(rgb, 'rgb8', hdr)
    bad_step.step = 7
    short = array_to_image(rgb, 'rgb8', hdr)
    short.data = bytes(short.data)[:-3]
    good = array_to_image(rgb[..., ::-1].copy(), 'bgr8', hdr)
    for m in (bad_enc, bad_step, short, good):
        pub.publish(m)
    stats = node.input('camera/image_raw')
    ros.spin_until(lambda: stats.received == 4, what='4 images')
    assert dict(stats.drops) == {'encoding': 1, 'step': 1, 'data_length': 1}
    assert 'yuv422' in stats.last_detail['encoding']
    assert len(node.images) == 1
    assert node.images[0][0, 0].tolist() == [200, 0, 0]


def test_image_conversion_handles_row_padding():
    """A 16UC1 image with 4 bytes of padding per row decodes to its pixels."""
    depth = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    msg = array_to_image(depth, '16UC1', header(0, 'cam'))
    padded = b''.join(bytes(msg.data)[r * 8:(r + 1) * 8] + b'\xff' * 4 for r in range(3))
    msg.data = padded
    msg.step = 12
    np.testing.assert_array_equal(image_to_array(msg), depth)


def test_an_exception_in_a_callback_is_counted_not_fatal(ros):
    node = ros.add(AvNode('boom', context=ros.context))
    calls = []

    def cb(msg):
        calls.append(msg)
        raise RuntimeError('boom')

    node.create_subscription(Image, 'x', node.guard('x', cb), qos.SENSOR)
    pub = ros.publisher(Image, 'x', qos.SENSOR)
    pub.publish(Image())
    pub.publish(Image())
    ros.spin_until(lambda: len(calls) == 2, what='2 callbacks')
    assert node.input('x').drops['internal_error'] == 2
