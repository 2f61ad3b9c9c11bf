"""Sound direction: streaming windows, and the running node finds simulated
sources where they are, for each array, as tracked sources with stable ids
(SoundSourceArray, empty while silent); turns come from TF; bad input is
counted."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pytest
from visualization_msgs.msg import Marker, MarkerArray

from av_perception.audio.chunk import AudioBlock
from av_perception.direction.classic import ClassicDoa
from av_perception.direction.stream import StreamingDoa
from av_perception.nodes.sound_direction import SoundDirectionNode
from av_perception.ros import qos
from av_perception.ros.messages import block_to_chunk
from av_perception.sim.scene import Box, Pose2D, Source
from av_perception.sim.world import SceneSimulator
from av_perception.msg import AudioChunk, SoundSourceArray
from test_sim_physics import room


class _Fixed:
    """An estimator that records the windows it is given."""

    def __init__(self):
        self.windows = []

    def estimate(self, samples, num_src):
        self.windows.append(samples.copy())
        return []


def test_streaming_windows_overlap_are_stamped_and_bounded():
    est = _Fixed()
    fs = 1000
    s = StreamingDoa(est, fs, 1, window=0.25, hop=0.1, silence_dbfs=-200)
    results = []
    x = np.arange(3000, dtype=np.float32)[None] + 1
    for k in range(30):  # 30 blocks of 100 samples
        block = AudioBlock(x[:, k * 100:(k + 1) * 100], fs, k * 100, 5 * 10**9 + k * 10**8)
        results += s.push(block)
        assert s._buf.shape[1] <= 250 + 100
    # first window ends at 250 samples, then one per 100 samples: 250..2950 -> 28 windows
    assert len(results) == 28
    assert results[0].stamp_ns == 5 * 10**9
    assert results[1].stamp_ns == 5 * 10**9 + 10**8
    np.testing.assert_array_equal(est.windows[1][0], x[0, 100:350])
    assert all(w.shape == (1, 250) for w in est.windows)


def test_silence_gives_no_source():
    s = StreamingDoa(_Fixed(), 1000, 1, window=0.1, hop=0.1, silence_dbfs=-60)
    out = s.push(AudioBlock(np.full((1, 100), 1e-5, np.float32), 1000, 0, 0))
    assert out[0].silent and out[0].sources == []


def _scene(azimuths_deg, dist=2.0, cls=('speech', 'noise')):
    boxes, sources = [], []
    for i, a in enumerate(azimuths_deg):
        px, py = 4.0 + dist * math.cos(math.radians(a)), 4.0 + dist * math.sin(math.radians(a))
        boxes.append(Box((px, py, 0.25), (0.3, 0.3, 0.5), (0, 0, 1), 'grid', 'hard_surface',
                         cls[i]))
        sources.append(Source(cls[i], i, (px, py, 0.6), 5 + i, True, -20.0))
    return replace(room(sources=None, materials='panel_fabric_covered_6pcf'),
                   boxes=tuple(boxes), sources=tuple(sources), poses=(Pose2D(4.0, 4.0, 0.0),))


@dataclass
class Recording:
    """One second of a static scene: both arrays' streams and the truths."""

    array: np.ndarray
    binaural: np.ndarray
    stream_rate: int
    directions: dict


@pytest.fixture(scope='module')
def one_source():
    # broadband and continuous: what the classic methods are meant for; two
    # slots at the same pose: one second, two 0.5 s windows of the 4-mic array
    scene = _scene([60.0], cls=('noise',))
    with SceneSimulator(replace(scene, poses=scene.poses * 2)) as sim:
        a, b = sim.slot(0), sim.slot(1)
        return sim, Recording(np.concatenate([a.array, b.array], axis=1),
                              np.concatenate([a.binaural, b.binaural], axis=1),
                              a.stream_rate, a.directions)


def _run_node(ros, params, samples, fs, frame_id, topic='audio/raw', before_audio=None):
    """Feed ``samples`` in 0.1 s chunks; returns the node, the published
    SoundSourceArrays (one per window) and the MarkerArrays."""
    node = ros.node(SoundDirectionNode, params)
    out = ros.collect(SoundSourceArray, 'sound_direction', qos.RELIABLE)
    markers = ros.collect(MarkerArray, 'sound_direction/markers', qos.RELIABLE)
    pub = ros.publisher(AudioChunk, topic, qos.AUDIO)
    if before_audio is not None:
        before_audio(node)
    step = fs // 10
    n = samples.shape[1] // step
    for k in range(n):
        pub.publish(block_to_chunk(AudioBlock(samples[:, k * step:(k + 1) * step], fs, k * step,
                                              10**9 + k * 10**8, frame_id)))
    stats = node.input(params.get('audio_topic', 'audio/raw'))
    ros.spin_until(lambda: stats.received == n, what='all chunks')
    ros.spin_until(lambda: len(markers) >= 2, what='results')
    return node, out, markers


def _sources(arrays):
    return [s for a in arrays for s in a.sources]


@pytest.mark.parametrize('method', ['srp', 'srp_onset', 'normmusic'])
def test_node_finds_and_tracks_a_source_with_the_4mic_array(ros, one_source, method):
    """One source, 1 s: one message per 0.1 s window; the tracker confirms
    it after k hits and keeps one id; markers carry that id."""
    sim, slot = one_source
    truth = slot.directions['array'][0].azimuth
    node, out, markers = _run_node(ros, {'method': method, 'array': 'respeaker4'}, slot.array,
                                   slot.stream_rate, 'mic_array')
    ros.spin_until(lambda: len(out) >= 6, what='6 windows')
    k = node.tracker.params.confirm_hits
    assert [len(a.sources) for a in out[:k - 1]] == [0] * (k - 1)   # not yet confirmed
    srcs = _sources(out)
    assert srcs, 'no direction published'
    assert {s.id for s in srcs} == {1}
    az = np.median([s.azimuth for s in srcs])
    assert abs(math.degrees(az - truth)) < 10, (math.degrees(az), math.degrees(truth))
    assert all(a.header.frame_id == 'mic_array' for a in out)
    for s in srcs:
        assert not s.front_back_ambiguous and 0 <= s.confidence <= 1
        assert not s.elevation_known  # a planar array
        v = (s.direction.x, s.direction.y, s.direction.z)
        assert np.allclose(v, (math.cos(s.azimuth), math.sin(s.azimuth), 0.0), atol=1e-5)
    arrows = [mk for arr in markers for mk in arr.markers
              if mk.type == Marker.ARROW and mk.action == Marker.ADD]
    labels = [mk for arr in markers for mk in arr.markers if mk.type == Marker.TEXT_VIEW_FACING]
    assert arrows and {mk.id for mk in arrows} == {1} and {mk.text for mk in labels} == {'1'}
    assert all(arr.markers[0].action == Marker.DELETEALL for arr in markers)


def test_silence_publishes_an_empty_array(ros):
    """Nothing sounds: a message per window with no sources ("no source",
    not "nothing published")."""
    x = np.zeros((4, 16000), np.float32)
    node, out, markers = _run_node(ros, {'method': 'srp', 'array': 'respeaker4'}, x, 16000,
                                   'mic_array')
    ros.spin_until(lambda: len(out) >= 6, what='6 windows')
    assert [len(a.sources) for a in out] == [0] * len(out)
    assert all(len(arr.markers) == 1 for arr in markers)  # the DELETEALL only


def test_turns_from_tf_reach_the_tracker(ros, one_source):
    """odom -> mic_array on /tf at the windows' stamps: each window after
    the first gets its turn from TF (counted in /diagnostics), and the
    source keeps its id."""
    from tf2_msgs.msg import TFMessage

    from av_perception.ros.tf import transform

    sim, slot = one_source

    def send_tf(node):
        pub = ros.publisher(TFMessage, '/tf', qos.TF)
        pub.publish(TFMessage(transforms=[
            transform('odom', 'mic_array', (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0),
                      10**9 + k * 10**8) for k in range(12)]))
        ros.spin_until(lambda: node.tf_listener.buffer.can_transform(
            'odom', 'mic_array', 10**9 + 10**9), what='TF')

    node, out, _ = _run_node(ros, {'method': 'srp', 'array': 'respeaker4'}, slot.array,
                             slot.stream_rate, 'mic_array', before_audio=send_tf)
    ros.spin_until(lambda: len(out) >= 6, what='6 windows')
    assert node.monitor.facts['turns_from_tf'] == str(len(out) - 1)
    assert 'turns_unknown' not in node.monitor.facts
    assert {s.id for s in _sources(out)} == {1}


def test_two_sources_90_degrees_apart_are_both_found(ros):
    """NormMUSIC with two sources, untracked (every estimate, id 0): each
    true direction is found (within 10 deg) in at least half of the
    analysis windows of one second."""
    scene = _scene([10.0, 100.0], cls=('noise', 'noise'))
    scene = replace(scene, poses=scene.poses * 2)
    with SceneSimulator(scene) as sim:
        x = np.concatenate([sim.slot(0).array, sim.slot(1).array], axis=1)
        truths = [d.azimuth for d in sim.directions(scene.poses[0])['array']]
    node, out, markers = _run_node(ros, {'method': 'normmusic', 'array': 'respeaker4',
                                         'num_sources': 2, 'min_confidence': 0.0,
                                         'tracking': False}, x, 16000, 'mic_array')
    ros.spin_until(lambda: len(out) >= 6, what="all windows")
    by_stamp = {(m.header.stamp.sec, m.header.stamp.nanosec): [s.azimuth for s in m.sources]
                for m in out}
    assert len(by_stamp) >= 6  # 0.5 s windows every 0.1 s over 1 s
    assert {s.id for s in _sources(out)} == {0}
    for t in truths:
        hits = sum(any(abs(math.degrees(fold_wrap(a - t))) < 10 for a in azs)
                   for azs in by_stamp.values())
        assert hits >= len(by_stamp) / 2, (math.degrees(t), list(by_stamp.values()))


def fold_wrap(a):
    return (a + math.pi) % (2 * math.pi) - math.pi


def test_wrong_channel_count_is_dropped_and_counted(ros):
    node = ros.node(SoundDirectionNode, {'method': 'srp', 'array': 'respeaker4'})
    pub = ros.publisher(AudioChunk, 'audio/raw', qos.AUDIO)
    pub.publish(block_to_chunk(AudioBlock(np.zeros((2, 1600), np.float32), 16000, 0, 1,
                                          'mic_array')))
    pub.publish(block_to_chunk(AudioBlock(np.zeros((4, 1600), np.float32), 44100, 0, 1,
                                          'mic_array')))
    stats = node.input('audio/raw')
    ros.spin_until(lambda: stats.received == 2, what='2 chunks')
    assert dict(stats.drops) == {'channels': 1, 'sample_rate': 1}


def test_gcc_on_a_4mic_array_is_refused_at_start(ros):
    from av_perception.errors import ConfigError
    with pytest.raises(ConfigError, match='gcc'):
        ros.node(SoundDirectionNode, {'method': 'gcc', 'array': 'respeaker4'})


def test_classic_estimator_rejects_wrong_shapes():
    from av_perception.arrays import load_array
    from av_perception.errors import InputError
    est = ClassicDoa(load_array('respeaker4'), 'srp')
    with pytest.raises(InputError):
        est.estimate(np.zeros((3, 4096)))
    with pytest.raises(InputError):
        est.estimate(np.zeros((4, 100)))


@pytest.mark.parametrize('array,topic,role,frame', [
    ('respeaker4', 'audio/raw', 'array', 'mic_array'),
    ('binaural', 'audio/binaural', 'binaural', 'head')])
def test_node_with_the_shipped_model(ros, one_source, array, topic, role, frame):
    """Each shipped ONNX model (4-mic, binaural) runs in the node (provider
    and model id in /diagnostics) and finds the simulated source within
    10 deg (folded into the front for the binaural head)."""
    from av_perception.direction.classic import fold_front
    sim, slot = one_source
    samples = slot.array if role == 'array' else slot.binaural
    truth = slot.directions[role][0].azimuth
    node, out, _ = _run_node(ros, {'method': 'learned', 'array': array, 'audio_topic': topic,
                                   'tracking': False}, samples, slot.stream_rate, frame,
                             topic=topic)
    assert node.monitor.facts['execution_provider'] == 'CPUExecutionProvider'
    assert node.monitor.facts['model_id'].startswith(f'direction-{array}')
    srcs = _sources(out)
    az = np.median([s.azimuth for s in srcs])
    want = fold_front(truth) if role == 'binaural' else truth
    assert abs(math.degrees(fold_wrap(az - want))) < 10, (math.degrees(az), math.degrees(want))
    assert all(s.front_back_ambiguous == (role == 'binaural') for s in srcs)


def test_node_finds_a_source_with_the_binaural_head_by_gcc(ros, one_source):
    """GCC-PHAT on the binaural stream: the source at 60 deg comes out within
    10 deg, flagged front/back ambiguous, in the head frame."""
    sim, rec = one_source
    truth = rec.directions['binaural'][0].azimuth
    node, out, _ = _run_node(ros, {'method': 'gcc', 'array': 'binaural',
                                   'audio_topic': 'audio/binaural'}, rec.binaural,
                             rec.stream_rate, 'head', topic='audio/binaural')
    ros.spin_until(lambda: len(_sources(out)) >= 3, what='a confirmed track')
    srcs = _sources(out)
    az = np.median([s.azimuth for s in srcs])
    assert abs(math.degrees(az - truth)) < 10, (math.degrees(az), math.degrees(truth))
    assert all(m.header.frame_id == 'head' for m in out)
    assert all(s.front_back_ambiguous for s in srcs) and {s.id for s in srcs} == {1}


def test_a_3d_array_gives_elevation_and_a_planar_one_does_not():
    """Six microphones spanning 3-D space find a broadband source at azimuth
    40 deg, elevation 30 deg within one grid step (4 x 10 deg) in free
    field; the planar 4-mic array reports elevation 0."""
    import pyroomacoustics as pra

    from av_perception.arrays import ArrayGeometry, load_array
    pos = np.array([[0.04, 0.04, 0.04], [0.04, -0.04, -0.04], [-0.04, 0.04, -0.04],
                    [-0.04, -0.04, 0.04], [0, 0, 0.06], [0.06, 0, 0]])
    geom = ArrayGeometry('tetra6', 'mic_array', 16000, 'planar', tuple('abcdef'), pos)
    assert geom.resolves_elevation and not load_array('respeaker4').resolves_elevation
    az, el = math.radians(40), math.radians(30)
    room = pra.AnechoicRoom(3, fs=16000)
    room.add_source(2 * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az),
                                  math.sin(el)]),
                    signal=np.random.default_rng(0).normal(size=16000))
    room.add_microphone_array(pos.T)
    room.simulate()
    x = room.mic_array.signals[:, :8000]
    for method in ('srp', 'normmusic'):
        e = ClassicDoa(geom, method).estimate(x)[0]
        assert abs(math.degrees(e.azimuth) - 40) <= 4 and abs(math.degrees(e.elevation) - 30) <= 10
    flat = ClassicDoa(load_array('respeaker4'), 'srp').estimate(
        np.asarray(room.mic_array.signals[:4, :8000]))
    assert flat[0].elevation == 0.0


def test_source_frames_are_named_by_slot_not_by_track_id():
    """The k-th source in order of track id gets ``<prefix><k>``: ids only
    count up, and a frame per id would leave a dead frame per track in every
    TF listener; the direction is the source's, 1 m out."""
    from av_perception.direction.tracker import TrackedSource
    from av_perception.ros.sound_sources import source_frames

    def src(i: int, az: float) -> TrackedSource:
        d = (math.cos(az), math.sin(az), 0.0)
        return TrackedSource(i, az, 0.0, False, 0.8, False, d, 3, 0)

    names = set()
    for first in range(0, 3000, 3):   # a thousand windows, each with new tracks
        frames = source_frames('mic_array', 'sound_source_',
                               [src(first + 2, 0.5), src(first, -1.0)], 10**9)
        names |= {f.child_frame_id for f in frames}
        assert [f.child_frame_id for f in frames] == ['sound_source_0', 'sound_source_1']
        t = frames[0].transform.translation          # the older track, at -1 rad
        assert (t.x, t.y) == pytest.approx((math.cos(-1.0), math.sin(-1.0)))
        assert frames[0].header.frame_id == 'mic_array'
    assert names == {'sound_source_0', 'sound_source_1'}
