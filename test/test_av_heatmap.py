"""Audio-visual heatmaps: the running node with the shipped model puts the
heatmap on the sounding object; it publishes where to look (the peak's ray
in the optical frame, from the acoustic image projected through CameraInfo
and TF), nothing while silent; image/audio pairing; ONNX equals PyTorch;
bad input is refused or dropped and counted; the trainer learns from bags
without ground truth."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from geometry_msgs.msg import PointStamped
from sensor_msgs.msg import CameraInfo, Image

from av_perception.arrays import load_array
from av_perception.audio.chunk import AudioBlock
from av_perception.av_heatmap.frontend import audio_features, image_input, spec_for_array
from av_perception.av_heatmap.heatmap import HeatmapModel, overlay
from av_perception.av_heatmap.sync import AudioImageSync
from av_perception.errors import ConfigError, InputError
from av_perception.nodes.av_heatmap import AvHeatmapNode
from av_perception.geometry.frames import OPTICAL_RPY, StaticFrame
from av_perception.ros import qos
from av_perception.ros.messages import array_to_image, block_to_chunk, header
from av_perception.ros.tf import StaticTfBroadcaster
from av_perception.robot import load_robot
from av_perception.sim.scene import SOUND_CLASSES, Box, Pose2D, Source, world_to_base
from av_perception.sim.world import SceneSimulator
from av_perception.msg import AudioChunk
from conftest import diag_values
from test_sim_physics import room

GEOM = load_array('respeaker4')
T0 = 10**9
ROBOT = load_robot()
OPTICAL = 'camera_link_optical'


def _robot_frames() -> list[StaticFrame]:
    """The simulated robot's /tf_static: base -> mic_array, camera_link, optical."""
    cam = ROBOT.camera
    return [StaticFrame.from_rpy('base_link', GEOM.frame_id, ROBOT.arrays['array'].xyz, (0, 0, 0)),
            StaticFrame.from_rpy('base_link', cam.frame, cam.xyz, (0, 0, 0)),
            StaticFrame.from_rpy(cam.frame, OPTICAL, (0, 0, 0), OPTICAL_RPY)]


def _camera_geometry(ros, node) -> None:
    """Publish the robot's /tf_static and the camera's CameraInfo; return once
    the node has both."""
    tf = StaticTfBroadcaster(ros.probe)
    tf.send_frames(_robot_frames(), T0)
    info_pub = ros.publisher(CameraInfo, 'camera/camera_info', qos.SENSOR)
    cam = ROBOT.camera
    info = CameraInfo(header=header(T0, OPTICAL), width=cam.width, height=cam.height,
                      k=[float(v) for v in cam.K.ravel()], distortion_model='plumb_bob')
    info.p = [float(v) for v in np.hstack([cam.K, np.zeros((3, 1))]).ravel()]
    info_pub.publish(info)
    ros.spin_until(lambda: node.info is not None and node.tf.buffer.can_transform(
        GEOM.frame_id, OPTICAL, None), what='CameraInfo and /tf_static in the node')


def _object(cls: str, azimuth_deg: float, active: bool, index: int, robot=(1.5, 4.0),
            dist=2.2, scale=1.0) -> tuple[Box, Source]:
    c = SOUND_CLASSES[cls]
    size, mouth = tuple(scale * v for v in c.size), tuple(scale * v for v in c.mouth)
    x = robot[0] + dist * math.cos(math.radians(azimuth_deg))
    y = robot[1] + dist * math.sin(math.radians(azimuth_deg))
    box = Box((x, y, size[2] / 2), size, c.color, c.texture, 'hard_surface', cls)
    return box, Source(cls, index, (x + mouth[0], y + mouth[1], mouth[2]), 11 + index,
                       active, -25.0)


@pytest.fixture(scope='module')
def left_scene():
    """The robot faces +x; a sounding object 25 deg to the left, a silent one
    of another kind 25 deg to the right (both in view)."""
    (b0, s0), (b1, s1) = _object('speech', 25.0, True, 0), _object('tone', -25.0, False, 1)
    scene = replace(room(sources=None), boxes=(b0, b1), sources=(s0, s1),
                    poses=(Pose2D(1.5, 4.0, 0.0),))
    with SceneSimulator(scene) as sim:
        slot = sim.slot(0)
    return slot


def _two_object_slot(sounding: str, silent: str, sounding_left: bool):
    """A close-up as the shipped model was trained on (simulate --view
    sources): the robot faces +x, two objects at 2x their class's size 1.1 m
    away, 20 deg left and right; the one of class ``sounding`` sounds."""
    az = 20.0 if sounding_left else -20.0
    (b0, s0), (b1, s1) = (_object(sounding, az, True, 0, dist=1.1, scale=2.0),
                          _object(silent, -az, False, 1, dist=1.1, scale=2.0))
    scene = replace(room(sources=None), boxes=(b0, b1), sources=(s0, s1),
                    poses=(Pose2D(1.5, 4.0, 0.0),))
    with SceneSimulator(scene) as sim:
        return sim.slot(0)


def _publish(ros, node, rgb, audio, image_stamp=None, audio_stamp=T0, frame=OPTICAL):
    """The image, stamped (by default) at the end of the audio: the node pairs
    it with the window heard up to then."""
    if image_stamp is None:
        image_stamp = audio_stamp + int(round(audio.shape[1] / GEOM.sample_rate * 1e9))
    img_pub = ros.publisher(Image, 'camera/image_raw', qos.SENSOR)
    aud_pub = ros.publisher(AudioChunk, 'audio/raw', qos.AUDIO)
    img_pub.publish(array_to_image(rgb, 'rgb8', header(image_stamp, frame)))
    step = GEOM.sample_rate // 10
    n = audio.shape[1] // step
    stats = node.input('audio/raw')
    before = stats.received
    for k in range(n):
        aud_pub.publish(block_to_chunk(AudioBlock(audio[:, k * step:(k + 1) * step],
                                                  GEOM.sample_rate, k * step,
                                                  audio_stamp + k * 10**8, 'mic_array')))
    ros.spin_until(lambda: stats.received == before + n, what='all chunks')


def _stand_in(path, acoustic: bool, cosine):
    """A stand-in model with the package's contract (alone or fused) whose
    map is ``cosine(grid)`` (a (G, G) tensor), whatever it sees: the node's
    pairing, resizing, orientation, fusion and publishing checked against an
    exact answer (the shipped model is checked on scenes below)."""
    import torch

    from av_perception.train.av_heatmap import export
    spec = spec_for_array(GEOM, acoustic=acoustic)

    class Fixed(torch.nn.Module):
        def forward(self, image, spectrogram):
            zero = 0.0 * (image.mean() + spectrogram.mean())
            cos = cosine(spec.grid).expand(image.shape[0], spec.grid, spec.grid) + zero
            emb = torch.nn.functional.normalize(torch.ones(image.shape[0], 64) + zero, dim=1)
            return cos, emb, emb
    export(Fixed(), spec, path, True, 0, 0)
    return path


def _left_model(path):
    """Alone: +1 on the left half of the grid, -1 on the right."""
    import torch

    def left(g):
        return torch.where(torch.arange(g, dtype=torch.float32) < g / 2, 1.0, -1.0)
    return _stand_in(path, False, left)


def _horizon_model(path):
    """Fused: the same cosine in every column, highest on the middle rows
    (the row of the horizon): the fused peak's column is the acoustic
    image's alone."""
    import torch

    def horizon(g):
        rows = torch.arange(g, dtype=torch.float32) - (g - 1) / 2
        return torch.exp(-(rows / 2.0) ** 2)[:, None].expand(g, g) * 0.9
    return _stand_in(path, True, horizon)


def test_running_node_puts_the_heatmap_where_the_model_says_and_stamps_it(ros, left_scene,
                                                                          tmp_path):
    """The running node with a model whose map is the left half: the
    published heatmap has its mass on the left of the image (no flip, no
    transposition), the image's size, encoding, frame and stamp, values in
    [0, 1]; the overlay likewise."""
    slot = left_scene
    h, w = slot.source_mask.shape
    node = ros.node(AvHeatmapNode, {'model': str(_left_model(tmp_path / 'left.onnx'))})
    heat = ros.collect(Image, 'av_heatmap/heatmap', qos.RELIABLE)
    over = ros.collect(Image, 'av_heatmap/overlay', qos.RELIABLE)
    stamp = T0 + int(round(slot.array.shape[1] / GEOM.sample_rate * 1e9))
    _publish(ros, node, slot.rgb, slot.array, image_stamp=stamp)
    ros.spin_until(lambda: heat and over, what='a heatmap and an overlay')
    m, o = heat[0], over[0]
    assert (m.encoding, m.width, m.height) == ('32FC1', w, h)
    assert (o.encoding, o.width, o.height) == ('rgb8', w, h)
    for msg in (m, o):
        assert msg.header.frame_id == OPTICAL
        assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == stamp
    hm = np.frombuffer(bytes(m.data), np.float32).reshape(h, w)
    assert hm.min() >= 0.0 and hm.max() <= 1.0
    left, right = hm[:, : w // 2].sum(), hm[:, w // 2:].sum()
    assert left > 10 * right, (left, right)


# A steady tone is not a sounding source here: with the 4-mic array in a
# reverberant room its acoustic image peaks 84 deg off (a tone at -20 deg
# peaks at +64 deg), the lack of interaural/inter-mic cue measured for
# tones in docs/rotation.md; it stays in as the silent look-alike.
@pytest.mark.parametrize('sounding,silent', [('alarm', 'noise'), ('speech', 'tone')])
def test_the_shipped_model_puts_the_heatmap_on_the_sounding_object(ros, sounding, silent):
    """The running node with the shipped model: two objects in view, one on
    each side; the heatmap's mass is on the side of the one that sounds,
    and moves to the other side when the other object is placed there (the
    same images but mirrored scenes: it follows the sound, not a side). The
    mass is the heatmap above its median (the region the paper's metric
    predicts, weighted by how far above)."""
    node = ros.node(AvHeatmapNode)
    _camera_geometry(ros, node)
    heat = ros.collect(Image, 'av_heatmap/heatmap', qos.RELIABLE)
    for k, left in enumerate((True, False)):
        slot = _two_object_slot(sounding, silent, left)
        h, w = slot.source_mask.shape
        mask_cols = np.flatnonzero(slot.source_mask.any(axis=0))
        assert (mask_cols.mean() < w / 2) == left   # the scene is what it claims
        _publish(ros, node, slot.rgb, slot.array, audio_stamp=T0 + k * 2 * 10**9)
        ros.spin_until(lambda: len(heat) > k, what=f'heatmap {k}')
        hm = np.frombuffer(bytes(heat[k].data), np.float32).reshape(h, w)
        mass = np.clip(hm - np.median(hm), 0.0, None)
        lmass, rmass = mass[:, : w // 2].sum(), mass[:, w // 2:].sum()
        assert (lmass > 2 * rmass) if left else (rmass > 2 * lmass), (left, lmass, rmass)


def _angles(v) -> tuple[float, float]:
    """(right, down) angles [deg] of an optical-frame vector from the optical axis."""
    x, y, z = (float(c) for c in v)
    return math.degrees(math.atan2(x, z)), math.degrees(math.atan2(y, math.hypot(x, z)))


def test_the_peak_points_where_the_sound_comes_from(ros, left_scene, tmp_path):
    """A fused stand-in model that prefers the horizon row and no column:
    the peak the node publishes (PointStamped in the optical frame, the
    image's stamp) is the ray towards the sounding object, 25 deg to the
    left, found by the array's acoustic image projected through the
    CameraInfo and /tf_static it received; its length is the score in
    (0, 1]. It follows the sound: the same image with the audio of a source
    on the right points right."""
    node = ros.node(AvHeatmapNode, {'model': str(_horizon_model(tmp_path / 'h.onnx'))})
    peaks = ros.collect(PointStamped, 'av_heatmap/peak', qos.RELIABLE)
    heat = ros.collect(Image, 'av_heatmap/heatmap', qos.RELIABLE)
    _camera_geometry(ros, node)
    slot = left_scene
    stamp = T0 + int(round(slot.array.shape[1] / GEOM.sample_rate * 1e9))
    _publish(ros, node, slot.rgb, slot.array, image_stamp=stamp)
    ros.spin_until(lambda: peaks and heat, what='a peak')
    p = peaks[0]
    assert p.header.frame_id == OPTICAL
    assert p.header.stamp.sec * 10**9 + p.header.stamp.nanosec == stamp
    v = np.array([p.point.x, p.point.y, p.point.z])
    score = float(np.linalg.norm(v))
    assert 0.0 < score <= 1.0
    hm = np.frombuffer(bytes(heat[0].data), np.float32).reshape(heat[0].height, heat[0].width)
    assert hm.max() == pytest.approx(score, rel=1e-5)       # the heatmap's peak is the score
    src = left_scene_source_optical()
    right, down = _angles(v)
    want_right, _ = _angles(src)
    assert abs(right - want_right) < 6.0, (right, want_right)   # 25 deg left: x < 0
    assert abs(down) < 8.0                                         # the horizon rows
    # the mirrored audio (the array's channels reordered) puts the sound on the right
    from av_perception.train.av_heatmap_data import mirror_order
    mirrored = slot.array[mirror_order(spec_for_array(GEOM))]
    _publish(ros, node, slot.rgb, mirrored, audio_stamp=T0 + 2 * 10**9)
    ros.spin_until(lambda: len(peaks) > 1, what='a second peak')
    right2, _ = _angles([peaks[1].point.x, peaks[1].point.y, peaks[1].point.z])
    assert right2 > 15.0 and right < -15.0, (right, right2)


def left_scene_source_optical() -> np.ndarray:
    """The sounding object's emission point in the optical frame of the
    left_scene pose [m]."""
    _, src = _object('speech', 25.0, True, 0)
    p_base = world_to_base(Pose2D(1.5, 4.0, 0.0), src.position)
    return _robot_tf().lookup(OPTICAL, 'base_link', None).apply(p_base)


def _robot_tf():
    """A TfBuffer holding the simulated robot's /tf_static (:func:`_robot_frames`)."""
    from av_perception.geometry.tf_buffer import TfBuffer, Transform
    tf = TfBuffer()
    for f in _robot_frames():
        x, y, z, w = f.quat_xyzw
        tf.set_transform(f.parent, f.child, Transform(f.xyz, (w, x, y, z)), 0, static=True)
    return tf


def test_without_camera_info_or_tf_a_fused_model_drops_the_image_and_says_why(ros, left_scene):
    node = ros.node(AvHeatmapNode)
    heat = ros.collect(Image, 'av_heatmap/heatmap', qos.RELIABLE)
    _publish(ros, node, left_scene.rgb, left_scene.array)
    ros.spin_until(lambda: node.input('camera/image_raw').dropped >= 1, what='the drop')
    assert 'camera_view' in node.input('camera/image_raw').drops and heat == []


def test_silent_audio_publishes_nothing_and_says_so(ros, left_scene):
    from diagnostic_msgs.msg import DiagnosticArray
    node = ros.node(AvHeatmapNode, {'diagnostics_period': 0.2})
    _camera_geometry(ros, node)
    heat = ros.collect(Image, 'av_heatmap/heatmap', qos.RELIABLE)
    peaks = ros.collect(PointStamped, 'av_heatmap/peak', qos.RELIABLE)
    diags = ros.collect(DiagnosticArray, '/diagnostics', qos.RELIABLE)
    silence = np.full((4, 8000), 1e-5, np.float32)   # -100 dBFS
    _publish(ros, node, left_scene.rgb, silence)
    ros.spin_until(lambda: node.silent >= 1, what='the silent image')
    ros.spin_until(lambda: any('silent' in diag_values([a], 'av_heatmap').get('state', '')
                               for a in diags), what='/diagnostics saying silent')
    assert heat == [] and peaks == []
    assert diag_values(diags, 'av_heatmap')['silent_images'] == '1'


def test_wrong_channel_count_and_bad_image_are_dropped_and_counted(ros):
    node = ros.node(AvHeatmapNode)
    aud_pub = ros.publisher(AudioChunk, 'audio/raw', qos.AUDIO)
    img_pub = ros.publisher(Image, 'camera/image_raw', qos.SENSOR)
    aud_pub.publish(block_to_chunk(AudioBlock(np.zeros((2, 1600), np.float32), 16000, 0, T0,
                                              'mic_array')))
    bad = Image(header=header(T0, 'camera_optical'), height=4, width=4, encoding='yuv422',
                step=8, data=bytes(32))
    img_pub.publish(bad)
    ros.spin_until(lambda: node.input('audio/raw').dropped >= 1
                   and node.input('camera/image_raw').dropped >= 1, what='both drops')
    assert 'channels' in node.input('audio/raw').drops
    assert 'encoding' in node.input('camera/image_raw').drops


def test_image_without_audio_in_tolerance_is_dropped():
    sync = AudioImageSync(16000, 4, 6400, tolerance=0.05, align='after')
    block = AudioBlock(np.ones((4, 1600), np.float32), 16000, 0, T0)
    sync.push_audio(block)
    ready, dropped = sync.push_image(T0 - 2 * 10**8, 'early')     # 0.2 s before the audio
    assert ready == [] and [d.kind for d in dropped] == ['sync']
    ready, dropped = sync.push_image(T0 + 10**8, 'waits')         # needs audio up to +0.5 s
    assert ready == [] and dropped == []
    for k in range(1, 5):
        ready, _ = sync.push_audio(replace(block, samples=np.full((4, 1600), k, np.float32),
                                           first_sample=k * 1600, stamp_ns=T0 + k * 10**8))
    assert [p.image for p in ready] == ['waits']
    w = ready[0].window
    assert w.shape == (4, 6400) and w[0, 0] == 1 and w[0, -1] == 4   # from the image stamp on


def test_an_image_gets_the_audio_that_ends_at_its_stamp_by_default():
    """align='before': the window is the 0.4 s heard up to the image; an
    image earlier than 0.4 s into the stream has no such audio (dropped)."""
    sync = AudioImageSync(16000, 4, 6400, tolerance=0.05)
    block = AudioBlock(np.zeros((4, 1600), np.float32), 16000, 0, T0)
    ready = []
    for k in range(6):                      # 0.6 s of audio, chunk k filled with k
        r, _ = sync.push_audio(replace(block, samples=np.full((4, 1600), k, np.float32),
                                       first_sample=k * 1600, stamp_ns=T0 + k * 10**8))
        ready += r
    ready, dropped = sync.push_image(T0 + 2 * 10**8, 'too early')  # 0.2 s of audio before it
    assert ready == [] and [d.kind for d in dropped] == ['sync']
    ready, dropped = sync.push_image(T0 + 5 * 10**8, 'now')        # audio 0.1 .. 0.5 s
    assert [p.image for p in ready] == ['now'] and dropped == []
    w = ready[0].window
    assert w.shape == (4, 6400) and w[0, 0] == 1 and w[0, -1] == 4
    ready, dropped = sync.push_image(T0 + 7 * 10**8, 'waits')      # its audio is not here yet
    assert ready == [] and dropped == []
    ready, _ = sync.push_audio(replace(block, samples=np.full((4, 1600), 6, np.float32),
                                       first_sample=6 * 1600, stamp_ns=T0 + 6 * 10**8))
    assert [p.image for p in ready] == ['waits'] and ready[0].window[0, -1] == 6


def test_onnx_equals_pytorch(tmp_path):
    import torch
    from av_perception.av_heatmap.networks import AvModel
    from av_perception.train.av_heatmap import export
    spec = spec_for_array(GEOM)
    torch.manual_seed(0)
    model = AvModel(spec).eval()
    path = tmp_path / 'm.onnx'
    export(model, spec, path, extra_positives=True, n_train=0, n_bags=0)
    rng = np.random.default_rng(0)
    rgb = [rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for _ in range(3)]
    audio = [rng.normal(0, 0.05, (4, spec.window)).astype(np.float32) for _ in range(3)]
    cos, ga, gv = HeatmapModel(path, GEOM).run(rgb, audio)
    with torch.no_grad():
        img = torch.from_numpy(np.stack([image_input(i, spec) for i in rgb]))
        feats = [audio_features(a, spec) for a in audio]
        ref = model(img, torch.from_numpy(np.stack([f[0] for f in feats])))
    for got, want in zip((cos, ga, gv), ref):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-4)


def test_bad_input_is_refused_with_what_was_expected():
    spec = spec_for_array(GEOM)
    with pytest.raises(InputError, match=r'\(4, 6400\)'):
        audio_features(np.zeros((2, 6400), np.float32), spec)
    bad = np.zeros((4, 6400), np.float32)
    bad[0, 5] = np.nan
    with pytest.raises(InputError, match='finite'):
        audio_features(bad, spec)
    with pytest.raises(InputError, match='uint8 RGB'):
        image_input(np.zeros((8, 8), np.float32), spec)
    with pytest.raises(ConfigError, match='binaural'):
        HeatmapModel(None, load_array('binaural'))       # the model is for the 4-mic array
    with pytest.raises(ConfigError, match='does not exist'):
        HeatmapModel('/nonexistent.onnx', GEOM)
    assert overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4))).max() == 0


def test_a_fused_model_gets_the_acoustic_image_it_was_trained_with(tmp_path):
    """Models name their acoustic image in their metadata (``acoustic_image``):
    new ones the onset-weighted SRP-PHAT, one without the key the plain map
    that models were fused with before; an unknown one is refused."""
    import onnx

    from av_perception.train.export import add_metadata
    new = _horizon_model(tmp_path / 'new.onnx')
    assert HeatmapModel(new, GEOM).acoustic_image.kind == 'srp_phat_onset'
    m = onnx.load(str(new))
    keep = [p for p in m.metadata_props if p.key != 'acoustic_image']
    del m.metadata_props[:]
    m.metadata_props.extend(keep)
    legacy = tmp_path / 'legacy.onnx'
    onnx.save(m, str(legacy))
    plain = HeatmapModel(legacy, GEOM).acoustic_image
    assert plain.kind == 'srp_phat' and plain.doa._srp.onset_history == 0
    add_metadata(legacy, {'acoustic_image': 'beamformer9000'})
    with pytest.raises(ConfigError, match='beamformer9000'):
        HeatmapModel(legacy, GEOM)


def _robot_view():
    """The simulated robot camera's CameraView in the array frame."""
    from av_perception.av_heatmap.dataset import camera_view
    from av_perception.bag.contents import Intrinsics
    cam = ROBOT.camera
    return camera_view(Intrinsics(cam.K, cam.width, cam.height, OPTICAL), _robot_tf(),
                       GEOM.frame_id)


def test_the_horizon_prior_can_be_centred_for_another_robot(tmp_path):
    """The contract's prior centre (10 deg below the array's plane) suits the
    simulated robot; an array mounted higher sees the floor's objects further
    down: ``set_prior_center`` (the node's ``prior_center``) moves the prior's
    brightest row with the angle, and the fused peak with it on a map that
    prefers no row. A model without a prior, or an angle beyond +-90, is
    refused."""
    model = HeatmapModel(_horizon_model(tmp_path / 'h.onnx'), GEOM)
    view = _robot_view()
    col = view.width // 2
    assert model.spec.prior_center == pytest.approx(-10.0)

    def brightest_row():
        return int(np.argmax(model.prior(view)[:, col]))
    rows = {}
    for center in (-10.0, -25.0, 5.0):
        model.set_prior_center(center)
        rows[center] = brightest_row()
    fy, cy = view.K[1, 1], view.K[1, 2]
    for center, row in rows.items():   # a level camera: row = cy - fy tan(elevation)
        assert abs(row - (cy - fy * math.tan(math.radians(center)))) <= 1.0, (center, row)
    assert rows[-25.0] > rows[-10.0] > rows[5.0]
    # the fused peak follows it where the acoustic image is a vertical band
    flat = np.zeros((view.height, view.width), np.float32)
    flat[:, col - 4:col + 5] = 1.0
    rgb = np.zeros((view.height, view.width, 3), np.uint8)
    window = np.zeros((GEOM.channels, model.window), np.float32)
    cosine = np.zeros((model.spec.grid, model.spec.grid), np.float32)
    peaks = {}
    for center in (-25.0, 5.0):
        model.set_prior_center(center)
        peaks[center] = model.localize(rgb, window, view, cosine=cosine, acoustic=flat).peak[0]
    assert abs(peaks[-25.0] - rows[-25.0]) <= 2 and abs(peaks[5.0] - rows[5.0]) <= 2, peaks
    with pytest.raises(ConfigError, match='elevation in \\[-90, 90\\]'):
        model.set_prior_center(120.0)
    assert model.spec.prior_center == 5.0
    with pytest.raises(ConfigError, match='no horizon prior'):
        HeatmapModel(_left_model(tmp_path / 'left.onnx'), GEOM).set_prior_center(-10.0)


def test_the_models_acoustic_memory_follows_the_window_that_heard_a_source():
    """HeatmapModel.acoustic, as the node and scoring call it: a window that
    heard a source 10 deg left of the camera axis (free field), then three
    windows of independent noise; the memory's projected image still peaks
    on the source's column, because each window counts by its map's
    contrast (the noise windows' normalised maps are as tall as any)."""
    from av_perception.geometry.tf_buffer import Transform
    from test_direction_srp import _record
    model = HeatmapModel(None, GEOM)
    view = _robot_view()
    rng = np.random.default_rng(5)
    n = model.window
    # the helper cuts its recording's start: ask for more than the window
    source = _record(GEOM, [(10.0, 0.0)], None, seconds=1.5 * n / GEOM.sample_rate,
                     seed=5)[:, :n].astype(np.float32)
    assert source.shape == (GEOM.channels, n)
    column = int(np.argmax(model.acoustic(source, view).max(axis=0)))
    assert column < view.width / 2 - 5                 # left of the axis
    odom = Transform((0.0, 0.0, 0.6), (1.0, 0.0, 0.0, 0.0))
    model.memory.clear()
    for k, window in enumerate([source] + [rng.normal(size=source.shape).astype(np.float32)
                                           for _ in range(3)]):
        image = model.acoustic(window, view, k * 4 * 10**8, odom)
    assert abs(int(np.argmax(image.max(axis=0))) - column) <= 2


def test_eval_cli_on_a_folder_without_bags_fails_in_one_line(tmp_path, capsys):
    from av_perception.cli import main
    assert main(['eval', 'av-heatmap', '--bags', str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'bag' in err[0]


def _without_ground_truth(src, dst) -> None:
    """Copy every bag under ``src`` to ``dst`` without its gt/... topics:
    what a robot records."""
    from av_perception.bag.io import BagWriter, read_bag
    from av_perception.direction.dataset import list_bags
    for bag in list_bags(src):
        with BagWriter(dst / bag.name) as w:
            for m in read_bag(bag):
                if not m.topic.startswith('gt/'):
                    w.write('/' + m.topic, m.msgtype, m.timestamp, m.msg)


def test_training_from_bags_without_ground_truth_exports_a_fused_model(tmp_path):
    """The trainer learns from a robot's bags: array, camera, CameraInfo and
    TF, no gt topic; it exports a fused model (its contract and data in the
    metadata) that the node loads, and resumes from its checkpoints. A bag
    without the array -> camera transform is refused with the reason."""
    import io
    import json

    from av_perception.bag.io import read_bag
    from av_perception.sim.bags import simulate
    from av_perception.train.av_heatmap import AvHeatmapConfig, train
    sim = tmp_path / 'sim'
    simulate(sim, scenes=5, seed=5, poses=4, jobs=1, progress=io.StringIO(), view='sources')
    bags = tmp_path / 'bags'
    _without_ground_truth(sim, bags)
    topics = {m.topic for m in read_bag(bags / 'train_00000')}
    assert {'camera/image_raw', 'camera/camera_info', 'audio/raw', 'tf_static'} <= topics
    assert not any(t.startswith('gt/') for t in topics)
    out = tmp_path / 'm.onnx'
    res = train(bags, out, AvHeatmapConfig(epochs=2, batch=2, jobs=1, warmup=1,
                                           data_note='5 tiny rooms'), progress=io.StringIO())
    assert res.samples == 20 and res.bags == 5 and 4 <= res.anchors < 16
    curve = json.loads((tmp_path / 'm_checkpoints' / 'curve.json').read_text())
    assert [c['epoch'] for c in curve] == [1, 2]
    assert all(np.isfinite(c['train_where']) for c in curve)
    assert (tmp_path / 'm_checkpoints' / 'curve.png').is_file()
    model = HeatmapModel(out, GEOM)
    assert model.fused and model.spec == spec_for_array(GEOM)
    meta = model.model.metadata
    assert meta['extra_positives'] == 'True' and meta['train_data'] == '5 tiny rooms'
    assert meta['model_id'] == 'av_heatmap-respeaker4-fused-multi-positive'
    assert meta['acoustic_image'] == 'srp_phat_onset'     # the map it was trained with
    assert meta['train_randomize'] == 'unrecorded 5 bags'   # copied without the sim's index
    log = io.StringIO()
    train(bags, out, AvHeatmapConfig(epochs=2, batch=2, jobs=1, warmup=1), progress=log)
    assert 'resuming at epoch 2' in log.getvalue()
    # the same bags without /tf_static: the acoustic image cannot be projected
    from av_perception.bag.io import BagWriter
    bare = tmp_path / 'bare'
    with BagWriter(bare / 'train_00000') as w:
        for m in read_bag(bags / 'train_00000'):
            if m.topic != 'tf_static':
                w.write('/' + m.topic, m.msgtype, m.timestamp, m.msg)
    with pytest.raises(ConfigError, match='transform from the array frame'):
        train(bare, tmp_path / 'b.onnx', AvHeatmapConfig(epochs=1, batch=2, jobs=1),
              progress=io.StringIO())
