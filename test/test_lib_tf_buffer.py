"""Unit tests of av_perception.geometry.tf_buffer: the TF buffer written here
because tf2_ros is not on PyPI (static and dynamic edges, chains, time
interpolation, bounded cache, errors that say why)."""

from __future__ import annotations

import math
from types import SimpleNamespace as NS

import numpy as np
import pytest

from av_perception.geometry.frames import yaw_quaternion
from av_perception.geometry.tf_buffer import (ConnectivityError, ExtrapolationError, TfBuffer,
                                              Transform, TransformError, UnknownFrameError)

S = 10**9


def yaw_tf(x: float, y: float, yaw: float, z: float = 0.0) -> Transform:
    qx, qy, qz, qw = yaw_quaternion(yaw)
    return Transform((x, y, z), (qw, qx, qy, qz))


def stamped(parent: str, child: str, xyz, quat_xyzw, stamp_ns: int):
    """A TransformStamped-like object, as rclpy and rosbags messages look."""
    x, y, z, w = quat_xyzw
    return NS(header=NS(stamp=NS(sec=stamp_ns // S, nanosec=stamp_ns % S), frame_id=parent),
              child_frame_id=child,
              transform=NS(translation=NS(x=xyz[0], y=xyz[1], z=xyz[2]),
                           rotation=NS(x=x, y=y, z=z, w=w)))


@pytest.fixture
def robot() -> TfBuffer:
    """odom -> base_link moving (x: 0 -> 2 m, yaw 0 -> 90 deg over 1 s),
    base_link -> camera_link static, map -> odom static."""
    b = TfBuffer()
    b.add_message(NS(transforms=[
        stamped('base_link', 'camera_link', (0.1, 0.0, 0.5), (0, 0, 0, 1), 0),
        stamped('/map', 'odom', (10.0, 0.0, 0.0), (0, 0, 0, 1), 0)]), static=True)
    b.add_message(NS(transforms=[stamped('odom', 'base_link', (0, 0, 0), (0, 0, 0, 1), 100 * S)]))
    b.add_message(NS(transforms=[stamped('odom', 'base_link', (2, 0, 0),
                                         yaw_quaternion(math.pi / 2), 101 * S)]))
    return b


def test_lookup_at_a_stored_stamp_maps_points_from_source_to_target(robot):
    """lookup(target, source) is the pose of source in target: a point 1 m
    ahead of the turned base is 1 m along odom's +y from the base."""
    t = robot.lookup('odom', 'base_link', 101 * S)
    assert t.xyz == pytest.approx((2, 0, 0))
    assert t.yaw == pytest.approx(math.pi / 2)
    assert t.apply(np.array([1.0, 0, 0])) == pytest.approx([2, 1, 0])
    back = robot.lookup('base_link', 'odom', 101 * S)
    assert back.apply(np.array([2.0, 1, 0])) == pytest.approx([1, 0, 0], abs=1e-12)


def test_interpolates_translation_linearly_and_rotation_by_slerp(robot):
    t = robot.lookup('odom', 'base_link', 100 * S + S // 4)
    assert t.xyz == pytest.approx((0.5, 0, 0))
    assert t.yaw == pytest.approx(math.pi / 8)          # a quarter of 90 deg, not a lerp
    assert np.linalg.norm(t.quat_wxyz) == pytest.approx(1.0)


def test_slerp_takes_the_short_way_across_pi():
    """From +170 deg to -170 deg is 20 deg through 180, not 340 deg through 0
    (the second quaternion is also given with the opposite sign)."""
    b = TfBuffer()
    b.set_transform('odom', 'base', yaw_tf(0, 0, math.radians(170)), 0)
    q = yaw_tf(0, 0, math.radians(-170)).quat_wxyz
    b.set_transform('odom', 'base', Transform((0, 0, 0), tuple(-v for v in q)), 2 * S)
    assert abs(b.lookup('odom', 'base', S).yaw) == pytest.approx(math.pi)


def test_chains_static_and_dynamic_edges_across_the_tree(robot):
    """camera_link in map: map->odom (static) . odom->base (at t) . base->camera (static)."""
    t = robot.lookup('map', 'camera_link', 101 * S)
    assert t.xyz == pytest.approx((12.0, 0.1, 0.5))
    assert t.yaw == pytest.approx(math.pi / 2)
    # the same chain the other way round is its inverse
    inv = robot.lookup('camera_link', 'map', 101 * S)
    assert (inv.matrix @ t.matrix) == pytest.approx(np.eye(4), abs=1e-12)
    # leading slashes do not matter; a frame to itself is the identity
    assert robot.lookup('/map', '/camera_link', 101 * S).xyz == pytest.approx(t.xyz)
    assert robot.lookup('odom', 'odom', 5).xyz == (0.0, 0.0, 0.0)


def test_latest_common_time(robot):
    assert robot.lookup('map', 'camera_link', None).xyz == pytest.approx((12.0, 0.1, 0.5))
    assert robot.latest_common_ns('map', 'camera_link') == 101 * S


def test_errors_name_the_frames_the_stamp_and_why(robot):
    with pytest.raises(UnknownFrameError, match=r"'lidar'.*never been seen"):
        robot.lookup('odom', 'lidar', 100 * S)
    with pytest.raises(ExtrapolationError,
                       match=r"'odom' <- 'base_link' at 99.5.*'odom' -> 'base_link'.*past") as e:
        robot.lookup('odom', 'base_link', 99 * S + S // 2)
    assert isinstance(e.value, LookupError) and isinstance(e.value, TransformError)
    with pytest.raises(ExtrapolationError, match=r'future.*0\.500 s earlier'):
        robot.lookup('map', 'camera_link', 101 * S + S // 2)
    robot.set_transform('world', 'other', Transform.identity(), 0, static=True)
    with pytest.raises(ConnectivityError, match=r"'odom' <- 'other'.*unconnected"):
        robot.lookup('odom', 'other', 100 * S)


def test_tolerance_takes_the_nearest_end(robot):
    """Within the tolerance a stamp just past the newest transform takes it;
    beyond, it is an error."""
    t = robot.lookup('odom', 'base_link', 101 * S + 10**7, tolerance_ns=2 * 10**7)
    assert t.xyz == pytest.approx((2, 0, 0))
    with pytest.raises(ExtrapolationError):
        robot.lookup('odom', 'base_link', 101 * S + 3 * 10**7, tolerance_ns=2 * 10**7)
    assert not robot.can_transform('odom', 'base_link', 50 * S)
    assert robot.can_transform('odom', 'base_link', 100 * S)


def test_a_single_transform_answers_only_its_own_stamp():
    b = TfBuffer()
    b.set_transform('odom', 'base', yaw_tf(1, 2, 0.3), 5 * S)
    assert b.lookup('odom', 'base', 5 * S).xyz == pytest.approx((1, 2, 0))
    with pytest.raises(ExtrapolationError):
        b.lookup('odom', 'base', 5 * S + 1)


def test_cache_is_bounded_behind_the_newest_stamp():
    """10 s by default, as tf2: older transforms go, and one arriving older
    than the cache keeps is dropped and counted; out-of-order ones within the
    cache are sorted in."""
    b = TfBuffer()
    for k in range(100):                       # 50 Hz for 2 s ... then 30 s later
        b.set_transform('odom', 'base', yaw_tf(k, 0, 0), k * S // 50)
    b.set_transform('odom', 'base', yaw_tf(-1, 0, 0), 32 * S)
    with pytest.raises(ExtrapolationError, match='past'):
        b.lookup('odom', 'base', S)
    b.set_transform('odom', 'base', yaw_tf(5, 0, 0), 10 * S)
    assert b.dropped_old == 1
    b.set_transform('odom', 'base', yaw_tf(7, 0, 0), 31 * S)
    assert b.lookup('odom', 'base', 31 * S + S // 2).xyz == pytest.approx((3, 0, 0))
    edge = b._dynamic[('odom', 'base')]
    assert list(edge.stamps) == [31 * S, 32 * S]
    unbounded = TfBuffer(cache_ns=None)
    for k in range(3):
        unbounded.set_transform('odom', 'base', yaw_tf(k, 0, 0), k * 100 * S)
    assert unbounded.lookup('odom', 'base', 50 * S).xyz == pytest.approx((0.5, 0, 0))


def test_reparenting_a_child_drops_its_old_edge():
    b = TfBuffer()
    b.set_transform('odom', 'base', yaw_tf(1, 0, 0), 0, static=True)
    b.set_transform('map', 'base', yaw_tf(2, 0, 0), 0, static=True)
    assert b.reparented == 1
    with pytest.raises(ConnectivityError):
        b.lookup('odom', 'base', 0)
    assert b.lookup('map', 'base', 0).xyz == pytest.approx((2, 0, 0))


def test_bad_input_is_refused():
    b = TfBuffer()
    with pytest.raises(ValueError, match='distinct'):
        b.set_transform('base', '/base', Transform.identity(), 0)
    with pytest.raises(ValueError, match='quaternion'):
        b.add_transform(stamped('odom', 'base', (0, 0, 0), (0, 0, 0, 0), 0))


def test_reads_rosbags_tf_messages(tmp_path):
    """The same buffer is fed from a bag's /tf (rosbags objects)."""
    from av_perception.bag.io import BagWriter, read_bag
    from av_perception.bag.messages import Messages
    from av_perception.geometry.frames import StaticFrame
    m = Messages()
    with BagWriter(tmp_path / 'bag') as w:
        for k in range(3):
            f = StaticFrame('odom', 'base_link', (0.5 * k, 0.0, 0.0), yaw_quaternion(0.1 * k))
            w.write('/tf', 'tf2_msgs/msg/TFMessage', k * S, m.tf([f], k * S))
    b = TfBuffer()
    for msg in read_bag(tmp_path / 'bag', ['tf']):
        b.add_message(msg.msg)
    t = b.lookup('odom', 'base_link', S + S // 2)
    assert t.xyz == pytest.approx((0.75, 0, 0)) and t.yaw == pytest.approx(0.15)
