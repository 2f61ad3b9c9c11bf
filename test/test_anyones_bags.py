"""Eval, dataset and training on bags from another generator (issue #23, item 3).

The bags come from ``test/other_robot_bags.py`` (rosbags' own Writer, sqlite3,
no av_perception code): other frame names (``body``, ``head_cam_optical``,
``ears``, ``mics``), another camera (160 x 120 px), views 2 s apart while the
robot turns 45 deg in place, some reached through a symbolic link, some
lacking a topic. What is checked is the plumbing (which bags and pairs are
used, what is refused and how it is said), not the scores.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from av_perception.bag.contents import (Motion, MotionFrames, UnusableBag, each_bag,
                                        list_bags, require_topics)
from av_perception.errors import ConfigError, InputError

sys.path.insert(0, str(Path(__file__).parent))
from other_robot_bags import write_bag  # noqa: E402

os.environ.setdefault('OMP_NUM_THREADS', '1')

ECHO = (2, 44100, 3086)        # the default echo head's channels, rate, window
FRAMES = ['--odom-frame', 'odom', '--base-frame', 'body']


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'av_perception.cli', *args],
                          capture_output=True, text=True, timeout=300)


def one_error_line(r: subprocess.CompletedProcess) -> str:
    """The command failed with exactly one error line, no traceback."""
    assert r.returncode == 2, r.stderr
    assert 'Traceback' not in r.stderr
    errors = [line for line in r.stderr.splitlines() if 'error:' in line]
    assert len(errors) == 1, r.stderr
    return errors[0]


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    """real/turns (gt/pose and odometry), real/no_binaural, real/wide (120 deg
    camera), odo/turns (odometry only), and root/ whose only way to real/ is
    a symbolic link (plus a link back up: a cycle)."""
    top = tmp_path_factory.mktemp('other_robot')
    real, odo, root = top / 'real', top / 'odo', top / 'root'
    write_bag(real / 'turns', echo=ECHO)
    write_bag(real / 'no_binaural', skip=('audio/binaural',), seed=1, echo=ECHO)
    write_bag(real / 'wide', hfov_deg=120.0, seed=2, echo=ECHO)
    for i in range(2):
        write_bag(odo / f'turns_{i}', views=8, gt_pose=False, seed=3 + i, echo=ECHO)
    root.mkdir()
    (root / 'link').symlink_to(real, target_is_directory=True)
    (real / 'loop').symlink_to(real, target_is_directory=True)   # a cycle
    return {'top': top, 'real': real, 'odo': odo, 'root': root}


# ------------------------------------------------------------------ folders
def test_list_bags_follows_links_and_lists_each_bag_once(bags):
    found = list_bags(bags['root'])
    assert [p.name for p in found] == ['no_binaural', 'turns', 'wide']
    assert all(p.parent == bags['root'] / 'link' for p in found)
    # the same bags through two roots, and a cycle: each once
    again = list_bags(bags['root'], bags['real'])
    assert len(again) == 3
    everything = list_bags(bags['top'])
    assert sorted(p.name for p in everything) == ['no_binaural', 'turns', 'turns_0',
                                                  'turns_1', 'wide']


def test_a_missing_topic_names_the_bag_the_topic_and_what_is_there(bags):
    bag = bags['real'] / 'no_binaural'
    with pytest.raises(UnusableBag) as err:
        require_topics(bag, ['camera/image_raw', 'audio/binaural', ('gt/pose', 'tf')])
    msg = str(err.value)
    assert str(bag) in msg and 'audio/binaural' in msg and 'camera/image_raw (6)' in msg
    assert '\n' not in msg
    # it survives a worker process (training reads bags in a pool)
    back = pickle.loads(pickle.dumps(err.value))
    assert isinstance(back, UnusableBag) and str(back) == msg and back.bag == str(bag)
    out = io.StringIO()
    used = each_bag(list_bags(bags['real']), None, ['audio/binaural'], out=out)
    assert [p.name for p, _ in used] == ['turns', 'wide']
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and 'no_binaural' in lines[0] and '1 of 3 bags skipped' in lines[1]
    with pytest.raises(InputError, match='none of 1'):
        each_bag([bag], None, ['audio/binaural'], out=io.StringIO())


# ----------------------------------------------------------------- rotation
def test_eval_rotation_scores_turns_two_seconds_apart_through_a_link(bags):
    r = cli('eval', 'rotation', '--bags', str(bags['root']))
    assert r.returncode == 0, r.stderr
    selfsup = next(line for line in r.stdout.splitlines() if 'selfsup' in line)
    assert 'n 5' in selfsup                     # 6 views, 2 s apart: 5 turn pairs
    # the label-trained reference reads the 45 deg turns of the synthetic camera
    supervised = next(line for line in r.stdout.splitlines() if 'supervised:' in line)
    assert float(supervised.split('median ')[1].split()[0]) < 5.0
    # the two bags it cannot use are reported, one line each, and counted
    warnings = [line for line in r.stderr.splitlines() if line.startswith('warning')]
    assert len(warnings) == 3, r.stderr
    assert 'no_binaural' in warnings[0] and 'audio/binaural' in warnings[0]
    assert 'wide' in warnings[1] and '120.0 deg' in warnings[1] and '90.0 deg' in warnings[1]
    assert '2 of 3 bags skipped' in warnings[2]


def test_eval_rotation_refuses_in_one_line(bags):
    line = one_error_line(cli('eval', 'rotation', '--bags', str(bags['root']),
                              '--max-pair-seconds', '1'))
    assert 'no turn-in-place pair' in line and '--max-pair-seconds' in line
    line = one_error_line(cli('eval', 'rotation', '--bags',
                              str(bags['root'] / 'link' / 'no_binaural')))
    assert 'audio/binaural' in line and 'no_binaural' in line
    # scoring needs the ground truth: odometry alone is not scored against
    line = one_error_line(cli('eval', 'rotation', '--bags', str(bags['odo']), *FRAMES))
    assert 'gt/pose' in line


def test_training_pairs_come_from_the_odometry_of_bags_without_ground_truth(bags):
    from av_perception.rotation.dataset import BagOptions, PairRule, load_all
    from av_perception.rotation.features import RotationSpec
    spec = RotationSpec()
    opts = BagOptions(frames=MotionFrames('odom', 'body'))
    views, pairs = load_all(bags['odo'], spec, options=opts, progress=io.StringIO())
    assert [v.motion for v in views] == ['odometry', 'odometry']
    assert len(pairs) == 14
    assert all(p.dt == pytest.approx(2.0) for p in pairs)
    assert all(p.yaw == pytest.approx(math.radians(45.0), abs=1e-6) for p in pairs)
    # the REP 105 default base frame is not this robot's: said, with its frames
    with pytest.raises(InputError) as err:
        load_all(bags['odo'], spec, progress=io.StringIO())
    assert 'odom <- base_link' in str(err.value) and 'body' in str(err.value)
    # a shorter --max-pair-seconds, a robot that drives, a turn the model cannot read
    with pytest.raises(ConfigError, match='more than 1 s apart'):
        load_all(bags['odo'], spec, options=BagOptions(frames=opts.frames,
                                                       pairs=PairRule(max_seconds=1.0)),
                 progress=io.StringIO())


@pytest.mark.parametrize('kwargs, why', [
    (dict(drive=0.2), 'moved more than 0.01 m'),
    (dict(turn_deg=60.0), 'turned more than the model reads (50.6 deg)'),
])
def test_only_turns_in_place_the_model_can_read_are_pairs(tmp_path, kwargs, why):
    from av_perception.rotation.dataset import load_all
    from av_perception.rotation.features import RotationSpec
    write_bag(tmp_path / 'bag', views=3, echo=ECHO, **kwargs)
    with pytest.raises(ConfigError, match=re.escape(why)):
        load_all(tmp_path, RotationSpec(), need_truth=True, progress=io.StringIO())


def test_train_rotation_cli_learns_from_odometry_only_bags(bags, tmp_path):
    r = cli('train', 'rotation', '--bags', str(bags['odo']), '--out', str(tmp_path / 'm'),
            '--target', 'labels', '--epochs', '1', *FRAMES)
    assert r.returncode == 0, r.stderr
    assert '14 turn pairs from 2 bags' in r.stdout
    from av_perception.rotation.estimate import VisualRotation
    assert VisualRotation(tmp_path / 'm' / 'rotation_visual_labels.onnx').spec.hfov_deg == 90.0
    line = one_error_line(cli('train', 'rotation', '--bags', str(bags['odo']), '--out',
                              str(tmp_path / 'm2'), '--epochs', '1'))
    assert 'base_link' in line
    # a bad self-training setting is refused before a single bag is read
    r = cli('train', 'rotation', '--bags', str(bags['odo']), '--out', str(tmp_path / 'm3'),
            '--refine-rounds', '-1')
    assert 'rounds must be at least 0' in one_error_line(r) and '[bags]' not in r.stderr
    r = cli('train', 'rotation', '--bags', str(bags['odo']), '--out', str(tmp_path / 'm4'),
            '--refine-members', '0')
    assert 'members must be at least 1, got 0' in one_error_line(r) and '[bags]' not in r.stderr


def test_train_rotation_learns_the_binaural_direction_from_bags_without_any_label(tmp_path):
    """A robot's bags: odometry, camera, binaural audio; no gt/pose, no
    gt/sound_direction. The binaural network learns from the shipped visual
    model's turns and its mirror image is fixed by GCC-PHAT's left/right,
    so not one label is read (the metadata says so); asking for labels
    there is refused in one line."""
    root = tmp_path / 'robot'
    for i in range(2):
        write_bag(root / f'turns_{i}', views=8, gt_pose=False, seed=3 + i, echo=ECHO,
                  skip=('gt/sound_direction',))
    visual = Path(__file__).parents[1] / 'av_perception' / 'models' / 'rotation_visual.onnx'
    common = ('train', 'rotation', '--bags', str(root), '--target', 'selfsup',
              '--visual-model', str(visual), '--binaural-epochs', '2', *FRAMES)
    r = cli(*common, '--out', str(tmp_path / 'm'))
    assert r.returncode == 0, r.stderr
    assert 'by the left/right of GCC-PHAT on 16 views (no labels)' in r.stdout
    from av_perception.inference import OnnxModel
    meta = OnnxModel(tmp_path / 'm' / 'rotation_binaural.onnx').metadata
    assert meta['labelled_samples'] == '0' and 'GCC-PHAT' in meta['sign_scale']
    assert 'pseudo-label from' in meta['self_training']      # the chains' round ran
    assert "the 5 members' distributions averaged" in meta['self_training']
    line = one_error_line(cli(*common, '--out', str(tmp_path / 'm2'), '--binaural-sign',
                              'labels'))
    assert 'gt/sound_direction' in line and '--binaural-sign geometry' in line


def test_train_rotation_takes_the_binaural_head_by_name_not_the_simulators(bags, tmp_path):
    """Another robot's head (its own geometry file, named on the command
    line): both models record it, and the binaural network's features are
    those of its microphones; a head at another sample rate than the bags'
    audio is refused in one line."""
    from av_perception.inference import OnnxModel
    ears, fast = _robot_ears(tmp_path)
    common = ('train', 'rotation', '--bags', str(bags['odo']), '--target', 'selfsup',
              '--epochs', '1', '--binaural-epochs', '1', *FRAMES)
    r = cli(*common, '--out', str(tmp_path / 'm'), '--binaural-array', str(ears))
    assert r.returncode == 0, r.stderr
    for name in ('rotation_visual.onnx', 'rotation_binaural.onnx'):
        assert OnnxModel(tmp_path / 'm' / name).metadata['array'] == 'robot_ears', name
    line = one_error_line(cli(*common, '--out', str(tmp_path / 'm2'), '--binaural-array',
                              str(fast)))
    assert '48000' in line and '16000' in line


def _robot_ears(folder: Path) -> tuple[Path, Path]:
    """Another robot's binaural head as a geometry file (robot_ears.yaml: the
    other generator's ears, 16 kHz), and the same head at 48 kHz (fast.yaml)."""
    import yaml
    sim = yaml.safe_load((Path(__file__).parents[1] / 'config' / 'arrays' /
                          'binaural.yaml').read_text())
    head = {k: v for k, v in sim.items() if k != 'itd_table'}   # the sim head's own ITDs
    head.update(name='robot_ears', frame_id='ears', head_radius=0.08,
                mics=[{'name': 'l', 'position': [0.0, 0.075, 0.0]},
                      {'name': 'r', 'position': [0.0, -0.075, 0.0]}])
    (folder / 'robot_ears.yaml').write_text(yaml.safe_dump(head))
    (folder / 'fast.yaml').write_text(yaml.safe_dump(dict(head, name='fast', sample_rate=48000)))
    return folder / 'robot_ears.yaml', folder / 'fast.yaml'


# --------------------------------------------------------------- direction
def test_train_direction_takes_student_and_teacher_geometry_by_name(tmp_path):
    """Distillation on another robot's bags: the student's head and the
    larger array that teaches (a 6-mic ring on audio/teacher) are named on the
    command line, not the simulator's; the model records both. The simulator's
    16-mic teacher, a head at another rate, or a four-microphone 'head' are
    refused in one line that names what was expected and what came."""
    import yaml
    from av_perception.inference import OnnxModel
    from other_robot_bags import TEACHER_RADIUS
    root = tmp_path / 'bags'
    for i in range(3):
        write_bag(root / f'ring_{i}', views=3, teacher=6, seed=i, echo=ECHO)
    ears, fast = _robot_ears(tmp_path)
    ring = {'name': 'ring6', 'frame_id': 'ring', 'sample_rate': 16000, 'kind': 'circular',
            'mics': [{'name': f'm{k}', 'position': [
                round(TEACHER_RADIUS * math.cos(k * math.pi / 3), 6),
                round(TEACHER_RADIUS * math.sin(k * math.pi / 3), 6), 0.0]} for k in range(6)]}
    (tmp_path / 'ring6.yaml').write_text(yaml.safe_dump(ring))
    common = ('train', 'direction', '--bags', str(root), '--array', 'binaural', '--target',
              'teacher', '--epochs', '2', '--jobs', '1')
    r = cli(*common, '--out', str(tmp_path / 'm.onnx'), '--geometry', str(ears),
            '--teacher-geometry', str(tmp_path / 'ring6.yaml'))
    assert r.returncode == 0, r.stderr
    meta = OnnxModel(tmp_path / 'm.onnx').metadata
    assert (meta['array'], meta['teacher_array']) == ('robot_ears', 'ring6')
    line = one_error_line(cli(*common, '--out', str(tmp_path / 'm2.onnx'), '--geometry',
                              str(ears)))
    assert 'audio/teacher' in line and '16 channels' in line and '6 channels' in line
    line = one_error_line(cli(*common, '--out', str(tmp_path / 'm3.onnx'), '--geometry',
                              str(fast), '--teacher-geometry', str(tmp_path / 'ring6.yaml')))
    assert '48000' in line and '16000' in line
    line = one_error_line(cli(*common, '--out', str(tmp_path / 'm4.onnx'), '--geometry',
                              str(tmp_path / 'ring6.yaml')))
    assert 'two-microphone head' in line and '6 microphones' in line


def test_motion_interpolates_the_odometry_between_its_stamps(bags):
    from av_perception.bag.contents import BagFrames
    from av_perception.bag.io import read_bag
    bag = bags['odo'] / 'turns_0'
    frames = BagFrames(bag)
    for m in read_bag(bag, ['tf', 'tf_static']):
        frames.feed(m)
    motion = Motion(frames, [], MotionFrames('odom', 'body'))
    t0 = 1_800_000_000 * 10**9
    x, y, yaw = motion.at(t0 + 50_000_000)          # between two odometry messages
    assert (x, y) == pytest.approx((0.0, 0.0), abs=1e-9)
    assert yaw == pytest.approx(math.radians(45.0) / 40, rel=1e-3)
    assert motion.at(t0 - 10**9) is None            # before the odometry: unknown
    cam = frames.lookup('body', 'head_cam_optical', t0)
    assert cam.xyz == pytest.approx((0.05, 0.0, 0.8))


# -------------------------------------------------------------- echo depth
def test_echo_dataset_and_eval_take_the_camera_and_its_mount_from_the_bag(tmp_path):
    from av_perception.echo import dataset as echo_dataset
    from av_perception.echo.evaluate import score_student
    from av_perception.echo.occupancy import CameraMount
    from av_perception.paths import shipped_model
    folder = tmp_path / 'bags'
    write_bag(folder / 'a_square', width=96, height=96, echo=ECHO)   # the model's 90 deg
    write_bag(folder / 'b_other', echo=ECHO, seed=1)          # 160 x 120: other intrinsics
    write_bag(folder / 'c_no_info', width=96, height=96, echo=ECHO, seed=2,
              skip=('camera/camera_info',))
    log = io.StringIO()
    summary = echo_dataset.build(folder, tmp_path / 'data', shipped_model('echo_teacher'),
                                 echo_dataset_spec(), progress=log)
    assert summary['pairs'] == 6 and summary['bags'] == [str(p) for p in list_bags(folder)]
    warnings = [line for line in log.getvalue().splitlines() if 'warning' in line]
    assert 'b_other' in warnings[0] and 'fx 32.00 fy 42.67' in warnings[0]
    assert 'c_no_info' in warnings[1] and 'camera/camera_info' in warnings[1]
    np.testing.assert_allclose(echo_dataset.load(tmp_path / 'data').k,
                               [[32, 0, 32], [0, 32, 32], [0, 0, 1]])
    # scoring: the mount from the bag's /tf_static, in the frame asked for
    scored = score_student(folder, base_frame='body')
    assert scored['images'] == 6 and scored['occ_iou'] is not None
    unscored = score_student(folder)                 # no base_link in this robot's TF
    assert unscored['images'] == 6 and unscored['occ_iou'] is None
    m = CameraMount.from_optical((0.05, 0.0, 0.8), (-0.5, 0.5, -0.5, 0.5))
    assert m.xyz == (0.05, 0.0, 0.8) and m.rpy == pytest.approx((0.0, 0.0, 0.0), abs=1e-9)
    r, t = m.optical_to_base()
    np.testing.assert_allclose(r @ [0, 0, 1], [1, 0, 0], atol=1e-12)   # optical z: forward


def echo_dataset_spec():
    from av_perception.arrays import DEFAULT_ECHO_ARRAY, load_array
    from av_perception.echo.features import spec_for
    return spec_for(load_array(DEFAULT_ECHO_ARRAY), 12.0)


def test_the_sim_mount_from_tf_is_the_one_the_node_defaults_to():
    """The simulated robot's /tf_static gives back CameraMount's default
    (where the simulated camera is): scoring simulated bags does not change."""
    from av_perception.echo.occupancy import CameraMount
    from av_perception.geometry.frames import OPTICAL_RPY, StaticFrame, rotation_matrix
    body = StaticFrame.from_rpy('base_link', 'camera_link', (0.10, 0.0, 0.50), (0, 0, 0))
    optical = StaticFrame.from_rpy('camera_link', 'opt', (0, 0, 0), OPTICAL_RPY)
    from transforms3d.quaternions import mat2quat
    w, x, y, z = mat2quat(rotation_matrix(body.quat_xyzw) @ rotation_matrix(optical.quat_xyzw))
    m = CameraMount.from_optical(body.xyz, (x, y, z, w))
    assert m.xyz == CameraMount().xyz and m.rpy == pytest.approx(CameraMount().rpy, abs=1e-9)


# ------------------------------------------------------- direction, heatmap
def test_eval_direction_checks_each_stream_against_the_geometry(bags):
    r = cli('eval', 'direction', '--bags', str(bags['root']), '--array', 'binaural',
            '--method', 'gcc')
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.split(' n ')[1].split(',')[0]) > 0
    assert 'no_binaural' in r.stderr and '1 of 3 bags skipped, 2 used' in r.stderr
    # audio/raw (4 microphones) scored as if it came from a binaural head
    line = one_error_line(cli('eval', 'direction', '--bags', str(bags['root']), '--array',
                              'array', '--method', 'gcc', '--geometry', 'binaural'))
    assert 'audio/raw with 2 channels at 16000 Hz' in line and '4 channels at 16000 Hz' in line


def test_eval_av_heatmap_checks_the_camera_when_the_model_says_its_field_of_view(
        bags, tmp_path):
    import onnx

    from av_perception.paths import shipped_model
    m = onnx.load(str(shipped_model('av_heatmap')))
    fov = next(p for p in m.metadata_props if p.key == 'hfov_deg')
    assert fov.value == '90.00'                     # the simulated robot's camera
    fov.value = '60.00'
    model = tmp_path / 'narrow.onnx'
    onnx.save(m, str(model))
    line = one_error_line(cli('eval', 'av-heatmap', '--bags', str(bags['root']), '--model',
                              str(model)))
    assert '60.0 deg' in line and 'camera_info' in line
    # the shipped model (90 deg): the 120 deg camera's bag is left out, the others scored
    # with the acoustic image projected through their own frames (mics, head_cam_optical)
    r = cli('eval', 'av-heatmap', '--bags', str(bags['root']))
    assert r.returncode == 0, r.stderr
    assert 'wide' in r.stderr and '1 of 3 bags skipped, 2 used' in r.stderr
    assert '12 scored images' in r.stdout and 'acoustic ' in r.stdout


def test_namespaced_topics_are_read_with_the_namespace_option(tmp_path):
    write_bag(tmp_path / 'ns', namespace='robot7', echo=ECHO)
    line = one_error_line(cli('eval', 'rotation', '--bags', str(tmp_path)))
    assert 'robot7/camera/image_raw' in line         # what the bag has, as it is
    r = cli('eval', 'rotation', '--bags', str(tmp_path), '--namespace', 'robot7')
    assert r.returncode == 0, r.stderr
    assert 'binaural direction not scored' not in r.stderr


def test_eval_rotation_says_when_the_binaural_direction_cannot_be_scored(tmp_path):
    write_bag(tmp_path / 'b', echo=ECHO, skip=('gt/sound_direction',))
    r = cli('eval', 'rotation', '--bags', str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert 'binaural direction not scored in' in r.stderr and 'n 5' in r.stdout


def test_a_malformed_transform_is_left_out_and_counted():
    from types import SimpleNamespace as NS

    from av_perception.bag.contents import BagFrames
    from av_perception.bag.io import BagMessage

    def tf(parent, child, w):
        return NS(header=NS(stamp=NS(sec=1, nanosec=0), frame_id=parent), child_frame_id=child,
                  transform=NS(translation=NS(x=1.0, y=0.0, z=0.0),
                               rotation=NS(x=0.0, y=0.0, z=0.0, w=w)))
    frames = BagFrames('bag')
    msg = NS(transforms=[tf('body', 'cam', 0.0), tf('body', 'mics', 1.0)])
    assert frames.feed(BagMessage('tf_static', 'tf2_msgs/msg/TFMessage', 0, msg))
    assert frames.bad_transforms == 1
    assert frames.lookup('body', 'mics', 10**9).xyz == pytest.approx((1.0, 0.0, 0.0))
    with pytest.raises(UnusableBag, match='1 malformed transforms left out'):
        frames.lookup('body', 'cam', 10**9)


def test_eval_direction_says_when_the_truth_is_in_another_frame(tmp_path):
    """A truth in no frame of the stream would give no window to score."""
    write_bag(tmp_path / 'b', echo=ECHO, truth_frame='/ears')
    line = one_error_line(cli('eval', 'direction', '--bags', str(tmp_path), '--array',
                              'binaural', '--method', 'gcc'))
    assert "gt/sound_direction in the frame of audio/binaural ('ears')" in line
    assert "['/ears']" in line


# ---------------------------------------------------------------- echo map
K64 = np.array([[32.0, 0, 32], [0, 32, 32], [0, 0, 1]])    # 64 x 64, 90 deg: the model's


class RoomDepth:
    """A perfect echo-depth predictor for other_robot_bags' room: the k-th
    call renders the k-th view (the echo head at ``echo_xyz``, ``echo_yaw_deg``)."""

    def __init__(self, turn_deg: float, drive: float, **head) -> None:
        from other_robot_bags import room_depth, view_pose
        self.view = lambda i: room_depth(view_pose(i, turn_deg, drive), K64, (64, 64), **head)
        self.k = 0

    def __call__(self, samples, rate) -> np.ndarray:
        d = self.view(self.k)
        self.k += 1
        return np.minimum(d, 12.0)


def test_echo_map_places_each_echo_where_the_bags_tf_says(tmp_path):
    """Another robot's frames (odom -> body -> sonar -> sonar_optical), its
    echo head 0.3 m forward, 0.2 m left and turned 25 deg, a 0.05 m
    gt/occupancy: perfect depth maps the room only when it is placed by the
    bag's TF, not by the simulated robot's mount."""
    from av_perception.echo.map_evaluate import MapFrames, MapSetup, read_echoes, score_bag
    from av_perception.echo.mapping import FusionParams
    from av_perception.echo.occupancy import CameraMount
    head = {'echo_xyz': (0.3, 0.2, 0.8), 'echo_yaw_deg': 25.0}
    write_bag(tmp_path / 'b', views=8, turn_deg=45.0, drive=0.15, echo=ECHO, **head)
    frames = MapFrames('odom', 'body')
    bag = read_echoes(tmp_path / 'b', RoomDepth(45.0, 0.15, **head), 12.0, frames=frames)
    assert (len(bag.echoes), bag.without_camera, bag.without_odometry) == (8, 0, 0)
    assert bag.echoes[0].mount.xyz == pytest.approx(head['echo_xyz'])
    assert bag.echoes[0].mount.rpy == pytest.approx((0, 0, math.radians(25.0)), abs=1e-9)
    assert bag.echoes[3].pose == pytest.approx((0.45, 0.0, math.radians(135.0)), abs=1e-9)
    setup = MapSetup(K64, 64, 12.0, FusionParams(free_fraction=1.0))     # perfect depth
    good = score_bag(bag, setup)
    assert good['reference_cells']['occupied'] > 50 and good['reference_cells']['free'] > 1000
    for m in ('free_iou', 'occ_recall', 'occ_precision'):
        assert np.mean([s[m] for s in good['single']]) > 0.9, m
        assert good['fused'][m] > 0.9, m
    # the same depth placed where the simulated robot has its echo head
    from dataclasses import replace
    sim = replace(bag, echoes=[replace(e, mount=CameraMount()) for e in bag.echoes])
    bad = score_bag(sim, setup)
    assert bad['fused']['free_iou'] < good['fused']['free_iou'] - 0.1
    assert bad['fused']['occ_precision'] < good['fused']['occ_precision'] - 0.3


def test_eval_echo_map_skips_bags_it_cannot_score_and_says_why(tmp_path):
    """--base-frame, --optical-frame and --odom-frame name the frames; a bag
    without a needed topic, or whose TF does not place the echo head, is
    named on one line and skipped; none usable: one error line."""
    folder = tmp_path / 'bags'
    write_bag(folder / 'a_good', echo=ECHO)
    write_bag(folder / 'b_no_occupancy', echo=ECHO, seed=1, skip=('gt/occupancy',))
    write_bag(folder / 'c_no_optical', echo=ECHO, seed=2, echo_optical=False)
    write_bag(folder / 'd_no_odometry', echo=ECHO, seed=3, odometry=False)
    r = cli('eval', 'echo-map', '--bags', str(folder), '--base-frame', 'body')
    assert r.returncode == 0, r.stderr
    assert '1 bags, 6 echoes fused of 6' in r.stdout
    warnings = [line for line in r.stderr.splitlines() if line.startswith('warning')]
    assert len(warnings) == 4, r.stderr
    assert 'b_no_occupancy' in warnings[0] and 'topic gt/occupancy' in warnings[0]
    assert 'c_no_optical' in warnings[1] and '6 without the camera pose' in warnings[1]
    assert "'sonar_optical' has never been seen" in warnings[1]
    assert 'd_no_odometry' in warnings[2] and 'topic tf' in warnings[2]
    assert '3 of 4 bags skipped' in warnings[3]
    # the camera's optical frame, named, places c's echoes there (and a's)
    r = cli('eval', 'echo-map', '--bags', str(folder / 'a_good'), str(folder / 'c_no_optical'),
            '--base-frame', 'body', '--optical-frame', 'head_cam_optical')
    assert r.returncode == 0, r.stderr
    assert '2 bags, 12 echoes fused of 12' in r.stdout
    # the REP 105 default base_link is not this robot's: nothing to score, one line
    line = one_error_line(cli('eval', 'echo-map', '--bags', str(folder)))
    assert 'none of 4' in line and '--base-frame' in line
