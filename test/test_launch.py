"""The launch files, loaded with a stand-in for launch/launch_ros (neither is
on PyPI; see launch_standin.py): which nodes each starts for each argument,
that they agree with ``av-perception run`` on the same params file, and two
namespaced robots started as the launch file starts them, side by side, with
no crosstalk."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from av_perception.nodes import NODES
from av_perception.runner import nodes_in_params
from launch_standin import evaluate, load_launch_file

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ROBOT = ROOT / 'launch' / 'robot.launch.py'
SIM = ROOT / 'launch' / 'sim.launch.py'
CAPTURE = {'audio_capture', 'chirp_emitter'}
PERCEPTION = {'sound_direction', 'echo_depth', 'rotation', 'av_heatmap'}


def launched(path: Path, **args) -> list:
    return evaluate(load_launch_file(path, ROOT), {k: str(v) for k, v in args.items()})


def names(nodes) -> set[tuple[str, str]]:
    return {(n.namespace, n.name) for n in nodes}


@pytest.mark.parametrize('path', [ROBOT, SIM], ids=lambda p: p.name)
def test_launch_files_start_package_executables_configured_by_their_params_file(path):
    nodes = launched(path, recorder='true')
    assert nodes
    for n in nodes:
        assert n.executable in NODES, n.executable
        assert n.params_files == [str(ROOT / 'config' / f'{path.name.split(".")[0]}.yaml')]
    # the same graph as `av-perception run` on the same file
    assert names(nodes) == set(nodes_in_params(nodes[0].params_files[0]))


def test_robot_launch_groups_switch():
    every = {n for _, n in names(launched(ROBOT, recorder='true'))}
    assert every == {'static_frames', 'audio_monitor', 'recorder'} | CAPTURE | PERCEPTION
    default = {n for _, n in names(launched(ROBOT))}
    assert default == every - {'recorder'}
    assert {n for _, n in names(launched(ROBOT, capture='false'))} == default - CAPTURE
    assert {n for _, n in names(launched(ROBOT, perception='false'))} == default - PERCEPTION
    with pytest.raises(ValueError, match='true/false'):
        launched(ROBOT, capture='maybe')


def test_sim_launch_groups_switch():
    assert names(launched(SIM, perception='false', recorder='false')) == {
        ('/', 'sim_world'), ('/', 'audio_monitor')}
    assert ('/binaural', 'sound_direction') in names(launched(SIM))


@pytest.mark.parametrize('path', [ROBOT, SIM], ids=lambda p: p.name)
def test_namespace_moves_every_node_and_its_tf(path):
    nodes = launched(path, namespace='robot1', recorder='true')
    assert all(n.namespace.startswith('/robot1') for n in nodes)
    assert ('/robot1/binaural', 'sound_direction') in names(nodes) or path == ROBOT
    for n in nodes:
        assert ('/tf', 'tf') in n.remaps and ('/tf_static', 'tf_static') in n.remaps
    assert names(nodes) == set(nodes_in_params(nodes[0].params_files[0], 'robot1'))


def test_use_sim_time_reaches_every_node():
    assert all(n.params.get('use_sim_time') == 'true'
               for n in launched(ROBOT, use_sim_time='true'))
    assert all(n.params.get('use_sim_time') == 'false' for n in launched(ROBOT))


def _wait(predicate, ros, timeout, what):
    ros.spin_until(predicate, timeout=timeout, what=what)


def test_two_namespaced_robots_side_by_side_without_crosstalk(ros, tmp_path):
    """robot1 as robot.launch.py starts it (one process per node), robot2 with
    `av-perception run --namespace robot2` (one process), both from
    config/robot.yaml, robot2's camera moved by a namespaced key in a second
    file. Each robot's static frames arrive on its own tf_static, audio sent to
    robot1 gives directions on robot1 only, and nothing reaches /tf or /tf_static."""
    from tf2_msgs.msg import TFMessage

    from av_perception.msg import AudioChunk, SoundSourceArray
    from av_perception.audio.chunk import AudioBlock
    from av_perception.ros import qos
    from av_perception.ros.messages import block_to_chunk

    robot2 = tmp_path / 'robot2.yaml'
    robot2.write_text((ROOT / 'config' / 'robot.yaml').read_text()
                      + '\n/robot2/static_frames:\n  ros__parameters:\n    camera_link:\n'
                        '      xyz: [0.2, 0.0, 0.9]\n')
    procs = []
    try:
        for n in launched(ROBOT, namespace='robot1', capture='false'):
            if n.name in ('static_frames', 'sound_direction'):
                procs.append(subprocess.Popen(n.command(BIN), stdout=subprocess.DEVNULL,
                                              stderr=subprocess.STDOUT, cwd=tmp_path))
        procs.append(subprocess.Popen(
            [str(BIN / 'av-perception'), 'run', str(robot2), '--namespace', 'robot2'],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=tmp_path))
        got = {k: ros.collect(TFMessage, k, qos.LATCHED)
               for k in ('/robot1/tf_static', '/robot2/tf_static', '/tf_static')}
        dirs = {k: ros.collect(SoundSourceArray, f'/{k}/sound_direction')
                for k in ('robot1', 'robot2')}
        _wait(lambda: got['/robot1/tf_static'] and got['/robot2/tf_static'], ros, 60,
              'both robots\' static frames')
        frames = {k: {t.child_frame_id: t for t in v[-1].transforms}
                  for k, v in got.items() if v}
        assert set(frames['/robot1/tf_static']) == {'mic_array', 'echo_head', 'camera_link',
                                                    'echo_head_optical',
                                                    'camera_link_optical'}
        assert set(frames['/robot2/tf_static']) == set(frames['/robot1/tf_static'])
        assert frames['/robot1/tf_static']['camera_link'].transform.translation.z == 0.25
        assert frames['/robot2/tf_static']['camera_link'].transform.translation.z == 0.9
        pub = ros.publisher(AudioChunk, '/robot1/audio/raw', qos.AUDIO)
        rng = np.random.default_rng(3)
        for i in range(12):  # 1.2 s of noise, louder in mic 0
            x = rng.normal(0, 0.05, (4, 1600)).astype(np.float32)
            x[0] *= 3
            pub.publish(block_to_chunk(AudioBlock(x, 16000, i * 1600, 10**9 + i * 10**8,
                                                  'mic_array')))
        _wait(lambda: dirs['robot1'], ros, 30, 'a direction from robot1')
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            ros.executor.spin_once(timeout_sec=0.05)
        assert dirs['robot2'] == []
        assert got['/tf_static'] == []
        assert all(d.header.frame_id == 'mic_array' for d in dirs['robot1'])
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
