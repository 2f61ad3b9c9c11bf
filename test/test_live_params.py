"""Every parameter that is not read-only takes effect when set at run time:
each writable parameter of each node (found in the source, so a new one
without an entry here fails) is set with set_parameters and its effect is
checked; a bad value is refused and leaves the parameter as it was."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from rclpy.parameter import Parameter
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import Marker, MarkerArray

from av_perception.audio.chunk import AudioBlock
from av_perception.msg import AudioChunk
from av_perception.nodes import NODES, node_class
from av_perception.ros import qos
from av_perception.ros.messages import block_to_chunk

ROOT = Path(__file__).resolve().parent.parent


def writable_params() -> dict[str, set[str]]:
    """node -> names of the parameters it declares without read_only=True
    (its own module, plus ``enabled`` where it calls enable_switch)."""
    out: dict[str, set[str]] = {}
    for name in NODES:
        tree = ast.parse((ROOT / 'av_perception' / 'nodes' / f'{name}.py').read_text())
        found = set()
        for n in ast.walk(tree):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
                if n.func.attr == 'enable_switch':
                    found.add('enabled')
                if n.func.attr == 'param' and not any(
                        k.arg == 'read_only' and getattr(k.value, 'value', False)
                        for k in n.keywords):
                    found.add(n.args[0].value)
        out[name] = found
    return out


def _set(node, name, value):
    result = node.set_parameters([Parameter(name, value=value)])[0]
    assert result.successful, result.reason
    assert node.get_parameter(name).value == value


def _noise_chunks(n, channels=4, rate=16000, scale=0.05, frame='mic_array', start=0):
    rng = np.random.default_rng(5)
    for k in range(start, start + n):
        x = rng.normal(0, scale, (channels, rate // 10)).astype(np.float32)
        x[0] *= 2
        yield block_to_chunk(AudioBlock(x, rate, k * (rate // 10), 10**9 + k * 10**8, frame))


def _plane_wave_chunks(n, start=0, rate=16000):
    """Noise from +x reaching the 4-mic array (whole-sample delays): a source
    SRP-PHAT is confident about (about 0.8), so the tracker confirms it."""
    from av_perception.arrays import load_array
    delays = np.rint(load_array('respeaker4').positions[:, 0] / 343.0 * rate).astype(int)
    s = np.random.default_rng(5).normal(0, 0.05, (start + n + 1) * rate // 10 + 8)
    step = rate // 10
    for k in range(start, start + n):
        x = np.stack([s[4 + d + k * step:4 + d + (k + 1) * step] for d in delays])
        yield block_to_chunk(AudioBlock(x.astype(np.float32), rate, k * step,
                                        10**9 + k * 10**8, 'mic_array'))


def check_sound_direction(ros):
    node = ros.node(node_class('sound_direction'), {'min_confidence': 0.0})
    markers = ros.collect(MarkerArray, 'sound_direction/markers')
    tf = ros.collect(TFMessage, '/tf')
    _set(node, 'publish_tf', True)      # off at start: turning it on publishes frames
    _set(node, 'tf_prefix', 'voice_')
    _set(node, 'arrow_length', 2.5)
    _set(node, 'odom_frame', '')        # no TF lookups: no turn counted unknown
    pub = ros.publisher(AudioChunk, 'audio/raw', qos.AUDIO)
    for msg in _plane_wave_chunks(12):  # 8 windows: the track is confirmed after 4
        pub.publish(msg)
    ros.spin_until(lambda: tf and markers, what='frames and markers')
    assert tf[-1].transforms[0].child_frame_id.startswith('voice_')
    assert 'turns_unknown' not in node.monitor.facts
    _set(node, 'odom_frame', 'odom')    # no odom on /tf here: each window's turn unknown
    for msg in _plane_wave_chunks(12, start=12):
        pub.publish(msg)
    ros.spin_until(lambda: 'turns_unknown' in node.monitor.facts, what='a turn looked up')
    arrows = [m for a in markers for m in a.markers if m.type == Marker.ARROW]
    assert arrows and all(m.scale.x <= 2.5 for m in arrows)
    assert max(m.scale.x for m in arrows) > 1.0  # at the default 1 m none could be longer
    return node


def check_audio_monitor(ros):
    node = ros.node(node_class('audio_monitor'))
    _set(node, 'silent_dbfs', -10.0)     # -26 dBFS noise now counts as silent
    _set(node, 'clip_level', 0.5)
    pub = ros.publisher(AudioChunk, 'audio/raw', qos.AUDIO)
    x = np.full((4, 1600), 0.05, np.float32)
    x[2, :10] = 0.6
    pub.publish(block_to_chunk(AudioBlock(x, 16000, 0, 10**9, 'mic_array')))
    ros.spin_until(lambda: node.monitor.errors.get('silent'), what='silent channels')
    assert int(node.clipped[2]) == 10
    return node


def check_audio_common_adapter(ros):
    from audio_common_msgs.msg import AudioDataStamped
    node = ros.node(node_class('audio_common_adapter'))
    assert node.info is None                       # waits for AudioInfo
    _set(node, 'sample_format', 'F32LE')
    _set(node, 'channels', 2)
    _set(node, 'sample_rate', 8000)
    assert node.info == ('F32LE', 2, 8000)         # the fallback format is used now
    _set(node, 'frame_id', 'head_mics')
    _set(node, 'stamp_at_end', True)
    _set(node, 'receipt_tolerance', 0.2)
    assert node.receipts.tolerance == 0.2
    out = ros.collect(AudioChunk, 'audio/raw', qos.AUDIO)
    pub = ros.publisher(AudioDataStamped, 'audio_stamped', qos.AUDIO)
    msg = AudioDataStamped()
    msg.header.stamp.sec = 3
    msg.audio.data = np.zeros(2 * 80, '<f4').tobytes()
    pub.publish(msg)
    ros.spin_until(lambda: out, what='a chunk')
    assert out[0].header.frame_id == 'head_mics'
    assert out[0].header.stamp.sec == 2 and out[0].header.stamp.nanosec == 990_000_000
    return node


def check_av_heatmap(ros):
    node = ros.node(node_class('av_heatmap'))
    _set(node, 'silence_dbfs', -20.0)
    _set(node, 'overlay_alpha', 0.25)
    _set(node, 'odom_frame', 'odom_wheels')
    assert (node.silence, node.alpha, node.odom_frame) == (-20.0, 0.25, 'odom_wheels')
    # the shipped fused model's horizon prior: the model uses the new centre
    assert node.model.spec.prior_center == -10.0
    _set(node, 'prior_center', 4.5)
    assert node.model.spec.prior_center == 4.5
    assert not node.set_parameters([Parameter('prior_center', value=75.0)])[0].successful
    assert node.model.spec.prior_center == 4.5
    return node


def check_echo_depth(ros):
    node = ros.node(node_class('echo_depth'))
    _set(node, 'publish_points', True)
    assert node.publish_points is True
    _set(node, 'map_period', 0.25)
    assert node._map_timer.timer_period_ns == 250_000_000
    return node


def check_rotation(ros):
    node = ros.node(node_class('rotation'))
    _set(node, 'odom_frame', 'visual_odom')
    _set(node, 'base_frame', 'visual_base')
    _set(node, 'twist_frame', 'base_footprint')
    assert node.monitor.facts['frames'] == ('visual_odom -> visual_base (/tf), twist in '
                                            'base_footprint')
    _set(node, 'publish_tf', False)
    _set(node, 'max_interval', 2.0)
    _set(node, 'min_level_dbfs', -30.0)
    _set(node, 'hfov_tolerance_deg', 12.0)
    assert (node.publish_tf, node.max_interval, node.min_level, node.hfov_tolerance) == (
        False, 2.0, -30.0, 12.0)
    bad = node.set_parameters([Parameter('odom_frame', value='')])[0]
    assert not bad.successful and node.odom_frame == 'visual_odom'
    return node


def check_chirp_emitter(ros):
    node = ros.node(node_class('chirp_emitter'), {'device': 'no such card'})
    _set(node, 'latency_offset', 0.0123)
    assert node.offset_s == 0.0123
    _set(node, 'enabled', False)
    assert node.supervisor.paused and node.monitor.facts['enabled'] == 'False'
    return node


def check_audio_capture(ros):
    node = ros.node(node_class('audio_capture'), {'device': 'no such card'})
    _set(node, 'enabled', False)
    assert node.supervisor.paused and 'device' not in node.monitor.errors
    _set(node, 'enabled', True)
    assert not node.supervisor.paused
    return node


CHECKS = {
    'sound_direction': ({'publish_tf', 'tf_prefix', 'arrow_length', 'odom_frame'},
                        check_sound_direction),
    'audio_monitor': ({'silent_dbfs', 'clip_level'}, check_audio_monitor),
    'audio_common_adapter': ({'frame_id', 'sample_format', 'channels', 'sample_rate',
                              'stamp_at_end', 'receipt_tolerance'}, check_audio_common_adapter),
    'av_heatmap': ({'silence_dbfs', 'overlay_alpha', 'odom_frame', 'prior_center'},
                   check_av_heatmap),
    'echo_depth': ({'publish_points', 'map_period'}, check_echo_depth),
    'rotation': ({'odom_frame', 'base_frame', 'twist_frame', 'publish_tf', 'max_interval',
                  'min_level_dbfs', 'hfov_tolerance_deg'}, check_rotation),
    'chirp_emitter': ({'latency_offset', 'enabled'}, check_chirp_emitter),
    'audio_capture': ({'enabled'}, check_audio_capture),
}


def test_every_writable_parameter_has_a_check():
    found = {k: v for k, v in writable_params().items() if v}
    assert found == {k: v[0] for k, v in CHECKS.items()}


@pytest.mark.parametrize('name', sorted(CHECKS))
def test_writable_parameters_take_effect(ros, name):
    CHECKS[name][1](ros)


def test_read_only_parameters_are_refused_at_run_time(ros):
    node = ros.node(node_class('sound_direction'))
    result = node.set_parameters([Parameter('method', value='gcc')])[0]
    assert not result.successful
    assert node.get_parameter('method').value == 'srp_onset'   # the default, kept


def test_a_writable_parameter_without_an_effect_is_a_programming_error(ros):
    from av_perception.ros.node import AvNode

    class Careless(AvNode):
        def __init__(self, **kw):
            super().__init__('careless', **kw)
            self.param('knob', 1.0, 'A knob nobody reads.')
    with pytest.raises(TypeError, match='on_change'):
        ros.node(Careless)
