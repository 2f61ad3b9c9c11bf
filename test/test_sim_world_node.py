"""The live simulated robot publishes the contract's topics, in real time,
with continuous audio streams."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CameraInfo, Image
from geometry_msgs.msg import PoseStamped
from tf2_msgs.msg import TFMessage

from av_perception.audio.chunk import StreamChecker
from av_perception.nodes.sim_world import SimWorldNode
from av_perception.ros import qos
from av_perception.ros.messages import chunk_to_block, image_to_array
from av_perception.robot import load_robot
from av_perception.msg import AudioChunk, SoundSourceArray


def test_sim_world_streams_camera_audio_echo_and_truth(ros):
    node = ros.node(SimWorldNode, {'poses': 2, 'split': 'test', 'scene_id': 1})
    imgs = ros.collect(Image, 'camera/image_raw', qos.SENSOR)
    infos = ros.collect(CameraInfo, 'camera/camera_info', qos.RELIABLE)
    depth = ros.collect(Image, 'gt/depth', qos.RELIABLE)
    echoes = ros.collect(AudioChunk, 'audio/echo', qos.AUDIO)
    raw = ros.collect(AudioChunk, 'audio/raw', qos.AUDIO)
    binaural = ros.collect(AudioChunk, 'audio/binaural', qos.AUDIO)
    dirs = ros.collect(SoundSourceArray, 'gt/sound_direction', qos.RELIABLE)
    poses = ros.collect(PoseStamped, 'gt/pose', qos.RELIABLE)
    tf = ros.collect(TFMessage, '/tf', qos.TF)
    ros.spin_until(lambda: len(echoes) >= 3 and len(raw) >= 12 and len(imgs) >= 12,
                   timeout=90.0, what='a few slots of simulated data')
    robot = load_robot()
    rgb = image_to_array(imgs[-1])
    assert rgb.shape == (robot.camera.height, robot.camera.width, 3)
    assert imgs[-1].header.frame_id == 'camera_link_optical'
    assert infos[-1].k[0] == robot.camera.fx
    d = image_to_array(depth[-1])
    assert d.dtype == np.float32 and np.isfinite(d).all()
    assert depth[-1].header.stamp == imgs[-1].header.stamp or len(depth) != len(imgs)
    e = chunk_to_block(echoes[0])
    assert e.channels == 2 and e.frames == robot.echo_window(e.sample_rate)
    assert [m.first_sample for m in echoes[:3]] == [0, 1, 2]
    for stream in (raw, binaural):
        checker = StreamChecker()
        events = [ev for m in stream for ev in checker.check(chunk_to_block(m))]
        assert events == [], events
    assert {m.header.frame_id for m in dirs} == {'mic_array', 'head'}
    assert all(s.confidence == 1.0 and s.id >= 1 for m in dirs for s in m.sources)
    assert any(m.sources for m in dirs)
    assert poses[-1].header.frame_id == 'map'
    odom = [t for m in tf for t in m.transforms]
    assert odom and odom[0].header.frame_id == 'odom' and odom[0].child_frame_id == 'base_link'
    # the odometry starts at the identity and follows the true pose's changes
    assert odom[0].transform.translation.x == 0.0 and odom[0].transform.rotation.w == 1.0
    # real time: 10 frames per second of stream time
    span = (imgs[-1].header.stamp.sec - imgs[0].header.stamp.sec) + (
        imgs[-1].header.stamp.nanosec - imgs[0].header.stamp.nanosec) * 1e-9
    assert abs(span - 0.1 * (len(imgs) - 1)) < 1e-6
    assert node.monitor.facts['slots_rendered'] == '2/2'


def test_the_robot_drives_its_path_back_and_forth():
    """Every move between slots is one step of the generated path (looping
    would jump from the last pose to the first in one camera frame)."""
    from av_perception.nodes.sim_world import path_index
    for n in (2, 3, 12):
        seq = [path_index(k, n) for k in range(5 * n)]
        assert seq[:n] == list(range(n)) and set(seq) == set(range(n))
        assert all(abs(a - b) == 1 for a, b in zip(seq, seq[1:])), (n, seq)
