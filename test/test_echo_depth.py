"""Echo depth end to end on a tiny configuration: simulated bags -> data set
(teacher pseudo-depth) -> a few training steps with decreasing loss -> ONNX
export equal to PyTorch -> the running node publishes depth, camera info and
occupancy with the right encoding, size, frame and stamp. Plus the SAM
block's shapes and bad input."""

from __future__ import annotations

import io
import socket

import numpy as np
import pytest
import torch

from av_perception.arrays import load_array
from av_perception.audio.chunk import AudioBlock
from av_perception.cli import main as cli
from av_perception.echo import dataset as echo_dataset
from av_perception.echo.evaluate import Scores, depth_metrics, load_test, score_student
from av_perception.echo.features import echo_features, mirror_features, spec_for
from av_perception.echo.model import EchoDepthModel
from av_perception.echo.nets import EchoStudent, SamBlock, sam_ks, triplet
from av_perception.echo.occupancy import FREE, OCCUPIED, occupancy_from_depth
from av_perception.errors import ConfigError, InputError
from av_perception.sim.bags import SceneJob, simulate_scene
from av_perception.train.echo_depth import (StudentConfig, TeacherConfig, build_student,
                                            train_student, train_teacher)

SPEC = spec_for(load_array('echo_head_cardioid'))
TINY = dict(sam_blocks=2, k=8, width=4, token_dim=16, epochs=8, batch=4, lr=3e-3)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """Two simulated rooms of three poses, a teacher trained for one epoch,
    the data set, and a SAM student trained for a few steps."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp('echo')
    bags = root / 'bags'
    for i in range(2):
        simulate_scene(SceneJob('train', i, 5, str(bags), 3))
    teacher = root / 'teacher.onnx'
    train_teacher(bags, teacher, TeacherConfig(epochs=1, width=4, batch=4))
    data = root / 'data'
    summary = echo_dataset.build(bags, data, teacher, SPEC)
    cfg = StudentConfig(variant='sam', **TINY)
    student = root / 'student.onnx'
    res = train_student(data, student, cfg)
    return {'root': root, 'bags': bags, 'teacher': teacher, 'data': data, 'summary': summary,
            'student': student, 'cfg': cfg, 'res': res}


def test_dataset_pairs_every_echo_and_keeps_ground_truth(tiny):
    s = tiny['summary']
    assert (s['pairs'], s['unpaired'], s['ground_truth']) == (6, 0, True)
    cache = echo_dataset.load(tiny['data'])
    assert cache.features.shape == (6, SPEC.n_channels, SPEC.bins, SPEC.frames)
    assert cache.pseudo.shape == cache.gt.shape == (6, 64, 64)
    assert sorted(cache.teacher_feats) == ['feat_16x16', 'feat_32x32', 'feat_4x4', 'feat_8x8']
    # the camera is a 90 deg pinhole: fx = w / 2 at the output size
    np.testing.assert_allclose(cache.k[0, 0], 32.0)


def test_training_loss_decreases_and_onnx_equals_torch(tiny):
    losses = tiny['res'].step_losses
    assert len(losses) >= 8
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    cache = echo_dataset.load(tiny['data'])
    model, _ = build_student(cache, tiny['cfg'])
    ckpt = tiny['student'].parent / f'{tiny["student"].stem}_checkpoints'
    model.load_state_dict(torch.load(ckpt / 'best.pt', weights_only=True)['model'])
    model.eval()
    x = cache.features.astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x))[0][:, 0].numpy()
    net = EchoDepthModel(tiny['student'])
    np.testing.assert_allclose(net.predict_features(x), want, rtol=1e-4, atol=1e-4)
    assert (ckpt / 'curve.png').is_file() and (ckpt / 'curve.json').is_file()
    assert net.model.metadata['variant'] == 'sam'
    assert (net.model.metadata['triplet_weight'], net.model.metadata['margin']) == ('0.1', '0.3')
    assert net.spec == SPEC


def test_resume_continues_from_the_checkpoint(tiny):
    log = io.StringIO()
    res = train_student(tiny['data'], tiny['student'], StudentConfig(variant='sam', **TINY),
                        progress=log)
    assert res.step_losses == []           # all epochs were done: nothing to redo
    assert 'resuming at epoch 8' in log.getvalue()


def test_ddp_code_path_runs_with_one_process(tiny, monkeypatch):
    import torch.distributed as dist
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    for k, v in {'MASTER_ADDR': '127.0.0.1', 'MASTER_PORT': str(port), 'WORLD_SIZE': '1',
                 'RANK': '0', 'LOCAL_RANK': '0'}.items():
        monkeypatch.setenv(k, v)
    try:
        res = train_student(tiny['data'], tiny['root'] / 'ddp.onnx',
                            StudentConfig(variant='pseudo', **{**TINY, 'epochs': 1}))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    assert res.distributed and res.world_size == 1
    assert (tiny['root'] / 'ddp.onnx').is_file()


def test_eval_scores_the_tiny_model(tiny):
    r = score_student(tiny['bags'], tiny['student'])
    assert r['images'] == 6
    assert 0.0 <= r['delta1'] <= r['delta2'] <= r['delta3'] <= 1.0
    assert r['mae'] > 0 and r['rmse'] >= r['mae']
    assert sum(v['share'] for v in r['by_range'].values() if v) == pytest.approx(1.0)


def _tf_messages(stamp: int, x: float = 0.0):
    """The robot's static frames (base -> echo head at z 0.3 -> its optical
    frame) and the odometry odom -> base at ``stamp``, x forward by ``x``."""
    from tf2_msgs.msg import TFMessage

    from av_perception.geometry.frames import OPTICAL_RPY, StaticFrame
    from av_perception.ros.tf import transform
    statics = [StaticFrame.from_rpy('base_link', 'echo_head', (0.1, 0.0, 0.3), (0, 0, 0)),
               StaticFrame.from_rpy('echo_head', 'echo_head_optical', (0, 0, 0), OPTICAL_RPY)]
    static = TFMessage(transforms=[transform(f.parent, f.child, f.xyz, f.quat_xyzw, 0)
                                   for f in statics])
    odom = TFMessage(transforms=[transform('odom', 'base_link', (x, 0.0, 0.0),
                                           (0.0, 0.0, 0.0, 1.0), stamp)])
    return static, odom


def test_node_publishes_depth_info_scan_occupancy_and_map(tiny, ros):
    from nav_msgs.msg import OccupancyGrid
    from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2
    from tf2_msgs.msg import TFMessage

    from av_perception.echo.occupancy import CameraMount, GridSpec
    from av_perception.msg import AudioChunk
    from av_perception.nodes.echo_depth import EchoDepthNode
    from av_perception.ros import qos
    from av_perception.ros.messages import block_to_chunk

    node = ros.node(EchoDepthNode, {'model': str(tiny['student']), 'publish_points': True,
                                    'map_period': 0.1, 'tf_timeout': 0.3})
    depth = ros.collect(Image, 'echo_depth/depth', qos.RELIABLE)
    info = ros.collect(CameraInfo, 'echo_depth/camera_info', qos.RELIABLE)
    occ = ros.collect(OccupancyGrid, 'echo_depth/occupancy', qos.RELIABLE)
    scan = ros.collect(LaserScan, 'echo_depth/scan', qos.RELIABLE)
    points = ros.collect(PointCloud2, 'echo_depth/points', qos.RELIABLE)
    emap = ros.collect(OccupancyGrid, 'echo_depth/map', qos.LATCHED)
    pub = ros.publisher(AudioChunk, 'audio/echo', qos.AUDIO)
    test = load_test(tiny['bags'], SPEC, (64, 64))
    stamp = 1_700_000_123_456_789_000
    static, odom = _tf_messages(stamp, x=1.5)

    # no TF yet: depth comes, the grid, scan and map wait, then count it
    pub.publish(block_to_chunk(AudioBlock(test.pairs.echo[0], 44100, 0, stamp, 'echo_head')))
    ros.spin_until(lambda: depth and node.input('occupancy').drops, what='an echo without TF')
    assert not occ and not scan and not emap
    assert 'echo_head_optical' in node.input('occupancy').last_detail['no_transform']

    ros.publisher(TFMessage, '/tf_static', qos.LATCHED).publish(static)
    ros.publisher(TFMessage, '/tf', qos.TF).publish(odom)
    pub.publish(block_to_chunk(AudioBlock(test.pairs.echo[0], 44100, 0, stamp, 'echo_head')))
    ros.spin_until(lambda: len(depth) == 2 and occ and scan and emap and points,
                   what='echo_depth outputs')
    img = depth[-1]
    assert (img.encoding, img.height, img.width) == ('32FC1', 64, 64)
    assert img.header.frame_id == 'echo_head_optical'
    assert img.header.stamp.sec * 10**9 + img.header.stamp.nanosec == stamp
    assert info[-1].header == img.header and info[-1].k[0] == pytest.approx(32.0)
    d = np.frombuffer(bytes(img.data), np.float32).reshape(64, 64)
    assert not np.isnan(d).any()                        # REP 117: NaN only where invalid
    assert occ[0].header.frame_id == 'base_link' and occ[0].header.stamp == img.header.stamp
    assert (occ[0].info.width, occ[0].info.height) == (100, 100)
    # the grid is the ray casting of the published depth from the camera pose TF gives
    k = np.asarray(info[-1].k).reshape(3, 3)
    mount = CameraMount((0.1, 0.0, 0.3))
    want = occupancy_from_depth(d, k, mount, GridSpec(), 12.0)
    np.testing.assert_array_equal(np.asarray(occ[0].data, np.int8).reshape(100, 100), want)
    s = scan[0]
    assert s.header.frame_id == 'echo_head' and len(s.ranges) == 64
    assert s.angle_min < 0 < s.angle_max and s.range_max == pytest.approx(12.0)
    # the map: in odom, where the base was (x 1.5 m), its free cells are the grid's
    m = emap[-1]
    assert m.header.frame_id == 'odom' and m.info.resolution == pytest.approx(0.1)
    grid = np.asarray(m.data, np.int8).reshape(m.info.height, m.info.width)
    assert (grid == 0).any()
    ys, xs = np.nonzero(grid == 0)
    cx = m.info.origin.position.x + (xs.mean() + 0.5) * 0.1
    gy, gx = np.nonzero(want == 0)
    assert cx == pytest.approx(1.5 - 5.0 + (gx.mean() + 0.5) * 0.1, abs=0.3)
    assert [f.name for f in points[0].fields] == ['x', 'y', 'z', 'return']
    # bad input: one channel, a truncated echo, a wrong sample rate: dropped and counted
    for samples, rate in ((test.pairs.echo[0][:1], 44100), (test.pairs.echo[0][:, :1000], 44100),
                          (test.pairs.echo[0], 16000)):
        pub.publish(block_to_chunk(AudioBlock(samples, rate, 0, stamp, 'echo_head')))
    stats = node.input('audio/echo')
    ros.spin_until(lambda: sum(stats.drops.values()) == 3, what='three drops')
    assert dict(stats.drops) == {'channels': 1, 'window': 1, 'sample_rate': 1}
    assert node.monitor.facts['execution_provider'] == 'CPUExecutionProvider'


def test_node_refuses_a_model_for_another_range(tiny, ros):
    from av_perception.nodes.echo_depth import EchoDepthNode
    with pytest.raises(ConfigError, match='window'):
        ros.node(EchoDepthNode, {'model': str(tiny['student']), 'max_range': 6.0})


def test_cli_errors_are_one_line(tiny, tmp_path, capsys):
    assert cli(['dataset', '--bags', str(tmp_path), '--out', str(tmp_path / 'd')]) == 2
    assert cli(['train', 'echo-depth', '--data', str(tmp_path), '--out',
                str(tmp_path / 'm.onnx')]) == 2
    assert cli(['eval', 'echo-depth', '--bags', str(tiny['bags']), '--model',
                str(tiny['teacher'])]) == 2      # a teacher is not an echo-depth model
    assert cli(['train', 'echo-depth', '--data', str(tiny['data']), '--out',
                str(tmp_path / 'm.onnx'), '--triplet-weight', '-1']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(e.startswith('av-perception ') for e in err)
    assert "expected task='echo_depth'" in err[2]
    assert '--triplet-weight and --margin must be at least 0' in err[3]


# ------------------------------------------------------------ SAM and pieces
@pytest.mark.parametrize('k', [1, 4, 64])
@pytest.mark.parametrize('shape', [(8, 4, 4), (16, 8, 8), (4, 16, 16), (2, 32, 32)])
def test_sam_block_shapes(k, shape):
    blk = SamBlock(k, shape, token_dim=12, heads=4)
    tokens = torch.randn(3, 7, 12)
    assert blk(tokens).shape == (3, *shape)
    sim = blk.similarity(tokens)
    assert sim.shape == (3, k)
    # T_k = max_j p_k . W a(j), computed naively (scaled by 1/sqrt(C h w))
    wa = tokens @ blk.w.weight.T                                   # (N, J, C h w)
    naive = torch.einsum('ks,njs->nkj', blk.p, wa).max(2).values / np.sqrt(blk.p.shape[1])
    torch.testing.assert_close(sim, naive, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('blocks', [1, 2, 3, 4])
def test_student_with_n_sam_blocks(blocks):
    shapes = [(8, 4, 4), (8, 8, 8), (4, 16, 16), (2, 32, 32)][:blocks]
    assert sam_ks(64, blocks) == [64, 16, 4, 1][:blocks]
    net = EchoStudent(5, 64, 96, sam_shapes=shapes, k=64, width=4, token_dim=16)
    depth, aligned = net(torch.randn(2, 5, 64, 96))
    assert depth.shape == (2, 1, 64, 64) and ((depth > 0) & (depth < 12)).all()
    assert [tuple(a.shape[1:]) for a in aligned] == shapes
    assert [b.k for b in net.sam] == sam_ks(64, blocks)


def test_triplet_loss_pulls_to_own_teacher_feature():
    t = torch.eye(4).reshape(4, 1, 2, 2)
    assert float(triplet(t.clone(), t)) == 0.0          # own feature, others far
    assert float(triplet(t.roll(1, 0), t)) > 0.3        # matched to the wrong sample


def test_mirror_features_equal_the_swapped_echo():
    echo = np.random.default_rng(0).normal(size=(2, SPEC.window)).astype(np.float32)
    np.testing.assert_allclose(mirror_features(echo_features(echo, SPEC)),
                               echo_features(echo[::-1], SPEC), atol=1e-5)


def test_features_refuse_bad_echoes():
    with pytest.raises(InputError, match='channels'):
        echo_features(np.zeros((1, SPEC.window)), SPEC)
    with pytest.raises(InputError, match='window'):
        echo_features(np.zeros((2, 100)), SPEC)
    with pytest.raises(InputError, match='sample_rate'):
        echo_features(np.zeros((2, SPEC.window)), SPEC, sample_rate=16000)
    with pytest.raises(InputError, match='non_finite'):
        echo_features(np.full((2, SPEC.window), np.nan), SPEC)


def test_occupancy_of_a_wall_ahead():
    k = np.array([[32.0, 0, 32], [0, 32, 32], [0, 0, 1]])
    grid = occupancy_from_depth(np.full((64, 64), 3.0), k)      # a wall 3 m ahead of the camera
    rows, cols = np.nonzero(grid == OCCUPIED)
    x = -5 + (cols + 0.5) * 0.1
    assert np.all(np.abs(x - 3.1) < 0.11)                       # camera at x = 0.10 m
    rows, cols = np.nonzero(grid == FREE)
    x, y = -5 + (cols + 0.5) * 0.1, -5 + (rows + 0.5) * 0.1
    assert x.max() < 3.1 and np.all(np.abs(y) <= x - 0.1 + 0.15)  # inside the 90 deg view
    assert grid[50, 20] == -1                                   # behind the robot: unknown


def test_depth_metrics_definitions():
    gt = np.array([[1.0, 2.0], [4.0, np.nan], [20.0, 1.0]])   # NaN and > 12 m: not valid
    pred = np.array([[1.0, 2.4], [3.0, 5.0], [1.0, 2.0]])
    m = depth_metrics(pred, gt, 12.0)
    assert m['mae'] == pytest.approx((0 + 0.4 + 1.0 + 1.0) / 4)
    assert m['rmse'] == pytest.approx(np.sqrt((0 + 0.16 + 1.0 + 1.0) / 4))
    assert m['abs_rel'] == pytest.approx((0 + 0.2 + 0.25 + 1.0) / 4)
    assert m['delta1'] == pytest.approx(2 / 4) and m['delta2'] == pytest.approx(3 / 4)
    assert m['delta3'] == pytest.approx(3 / 4)          # 2.0 vs 1.0: ratio 2 > 1.25^3


def test_error_by_true_depth_pools_pixels_per_range():
    """Per-range RMSE pools pixels over images; shares sum to 1; an empty
    range is None; invalid pixels (NaN, beyond the range) are left out."""
    s = Scores()
    s.add_ranges(np.array([[1.0, 2.4], [3.0, 5.0]]), np.array([[0.5, 2.0], [np.nan, 7.0]]), 12.0)
    s.add_ranges(np.array([[0.9, 1.0]]), np.array([[0.5, 20.0]]), 12.0)
    r = s.summary()['by_range']
    assert list(r) == ['0-1 m', '1-2 m', '2-4 m', '4-6 m', '>= 6 m']
    assert r['0-1 m']['rmse'] == pytest.approx(np.sqrt((0.25 + 0.16) / 2), abs=1e-4)
    assert r['0-1 m']['share'] == pytest.approx(0.5)
    assert r['2-4 m']['abs_rel'] == pytest.approx(0.2) and r['>= 6 m']['rmse'] == 2.0
    assert r['1-2 m'] is None and r['4-6 m'] is None
    assert sum(v['share'] for v in r.values() if v) == pytest.approx(1.0)


def test_shipped_models_fit_the_simulated_robot():
    net = EchoDepthModel(expect={'sample_rate': 44100, 'channels': 2, 'window': SPEC.window,
                                 'geometry': 'echo_head_cardioid'})
    assert net.spec == SPEC and (net.height, net.width) == (64, 64)
    assert net.model.metadata['variant'] == 'sam'
    depth = net(np.zeros((2, SPEC.window), np.float32))
    assert depth.shape == (64, 64) and np.isfinite(depth).all()


def test_echo_only_bags_have_camera_echo_and_ground_truth(tmp_path):
    from av_perception.bag.io import read_bag
    simulate_scene(SceneJob('train', 3, 5, str(tmp_path), 1, echo_only=True))
    topics = {m.topic for m in read_bag(tmp_path / 'train_00003')}
    assert {'audio/echo', 'camera/image_raw', 'gt/depth'} <= topics
    assert not topics & {'audio/raw', 'audio/binaural', 'gt/sound_direction'}
    pairs = echo_dataset.read_pairs(tmp_path / 'train_00003', SPEC, (64, 64))
    assert len(pairs) == 1 and np.abs(pairs.echo[0]).max() > 1e-3    # a real echo


def test_train_cli_defaults_are_the_student_configs():
    """The `train echo-depth` flags default to StudentConfig's fields (the
    parser leaves them None), and the help states those values."""
    import argparse

    from av_perception.cli import STUDENT_FLAGS, build_parser
    from av_perception.train.echo_depth import StudentConfig
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train = next(a for a in sub.choices['train']._actions
                 if isinstance(a, argparse._SubParsersAction)).choices['echo-depth']
    actions = {a.dest: a for a in train._actions}
    cfg = StudentConfig()
    for flag in STUDENT_FLAGS:
        assert actions[flag].default is None
        value = getattr(cfg, flag)
        text = value if isinstance(value, str) else f'{value:g}'
        assert f'default {text}' in ' '.join(actions[flag].help.split()), flag
