"""Unit tests of av_perception.geometry.frames: static frames (REP 103 / REP 105)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from av_perception.errors import ConfigError
from av_perception.geometry.frames import (
    OPTICAL_RPY, StaticFrame, check_tree, rotation_matrix, yaw_quaternion)


def test_zero_rpy_is_the_identity_quaternion():
    """No rotation is (x, y, z, w) = (0, 0, 0, 1); the translation is kept as floats."""
    f = StaticFrame.from_rpy('base_link', 'mic_array', [0.1, 0, 0.3], [0, 0, 0])
    assert f.quat_xyzw == pytest.approx((0.0, 0.0, 0.0, 1.0))
    assert f.xyz == (0.1, 0.0, 0.3)
    assert all(isinstance(v, float) for v in f.xyz)
    assert (f.parent, f.child) == ('base_link', 'mic_array')


def test_yaw_90_degrees_quaternion():
    """Yaw +90 deg about z is (0, 0, sin 45, cos 45) in (x, y, z, w) order."""
    f = StaticFrame.from_rpy('base_link', 'head', (0, 0, 0), (0, 0, math.pi / 2))
    s = math.sqrt(0.5)
    assert f.quat_xyzw == pytest.approx((0.0, 0.0, s, s))
    assert f.quat_xyzw == pytest.approx(yaw_quaternion(math.pi / 2))


def test_yaw_90_degrees_turns_forward_into_left():
    """A child frame yawed +90 deg: its x axis (forward) is the parent's +y (left)."""
    f = StaticFrame.from_rpy('base_link', 'head', (0, 0, 0), (0, 0, math.pi / 2))
    r = rotation_matrix(f.quat_xyzw)
    np.testing.assert_allclose(r @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(r @ [0, 0, 1], [0, 0, 1], atol=1e-12)


def test_quaternions_are_unit_length():
    """from_rpy gives a unit quaternion for arbitrary angles."""
    f = StaticFrame.from_rpy('a', 'b', (0, 0, 0), (0.3, -1.1, 2.7))
    assert math.fsum(v * v for v in f.quat_xyzw) == pytest.approx(1.0)


def test_optical_z_is_body_forward():
    """The camera's optical axis (optical +z) points along the body's +x (forward)."""
    r = rotation_matrix(StaticFrame.from_rpy('cam', 'cam_optical', (0, 0, 0), OPTICAL_RPY)
                        .quat_xyzw)
    np.testing.assert_allclose(r @ [0, 0, 1], [1, 0, 0], atol=1e-12)


def test_optical_x_is_body_right_and_y_is_down():
    """Optical +x (image right) is body -y, optical +y (image down) is body -z."""
    r = rotation_matrix(StaticFrame.from_rpy('cam', 'cam_optical', (0, 0, 0), OPTICAL_RPY)
                        .quat_xyzw)
    np.testing.assert_allclose(r @ [1, 0, 0], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(r @ [0, 1, 0], [0, 0, -1], atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)


@pytest.mark.parametrize('xyz, rpy', [((0, 0), (0, 0, 0)), ((0, 0, 0), (0, 0, 0, 0)),
                                      ((0, 0, 0, 0), (0, 0))])
def test_wrong_length_is_a_config_error(xyz, rpy):
    """xyz and rpy need exactly 3 numbers each; the one-line message names the frame."""
    with pytest.raises(ConfigError) as exc:
        StaticFrame.from_rpy('base_link', 'cam', xyz, rpy)
    assert "'cam'" in str(exc.value)
    assert '3 numbers' in str(exc.value)
    assert '\n' not in str(exc.value)


@pytest.mark.parametrize('xyz, rpy', [((math.nan, 0, 0), (0, 0, 0)),
                                      ((0, 0, 0), (0, math.inf, 0)),
                                      ((0, -math.inf, 0), (0, 0, 0))])
def test_non_finite_values_are_a_config_error(xyz, rpy):
    """NaN or Inf in a transform would poison every TF lookup: refused."""
    with pytest.raises(ConfigError) as exc:
        StaticFrame.from_rpy('base_link', 'cam', xyz, rpy)
    assert 'finite' in str(exc.value)


@pytest.mark.parametrize('parent, child', [('', 'cam'), ('cam', ''), ('cam', 'cam')])
def test_parent_and_child_must_be_distinct_names(parent, child):
    """An empty frame name or a frame that is its own parent is refused."""
    with pytest.raises(ConfigError):
        StaticFrame.from_rpy(parent, child, (0, 0, 0), (0, 0, 0))


def test_valid_tree_passes():
    """base_link -> {mic_array, head -> head_optical} is a tree."""
    frames = [StaticFrame.from_rpy('base_link', 'mic_array', (0, 0, 0.3), (0, 0, 0)),
              StaticFrame.from_rpy('base_link', 'head', (0.1, 0, 0.5), (0, 0, 0)),
              StaticFrame.from_rpy('head', 'head_optical', (0, 0, 0), OPTICAL_RPY)]
    assert check_tree(frames) is None


def test_child_with_two_parents_is_refused():
    """TF allows one parent per frame; the message names both parents."""
    frames = [StaticFrame.from_rpy('base_link', 'cam', (0, 0, 0), (0, 0, 0)),
              StaticFrame.from_rpy('head', 'cam', (0, 0, 0), (0, 0, 0))]
    with pytest.raises(ConfigError) as exc:
        check_tree(frames)
    msg = str(exc.value)
    assert "'cam'" in msg and "'base_link'" in msg and "'head'" in msg
    assert 'two parents' in msg


def test_cycle_is_refused():
    """a -> b -> c -> a is not a tree."""
    frames = [StaticFrame.from_rpy('a', 'b', (0, 0, 0), (0, 0, 0)),
              StaticFrame.from_rpy('b', 'c', (0, 0, 0), (0, 0, 0)),
              StaticFrame.from_rpy('c', 'a', (0, 0, 0), (0, 0, 0))]
    with pytest.raises(ConfigError) as exc:
        check_tree(frames)
    assert 'cycle' in str(exc.value)


def test_self_parent_built_directly_is_a_cycle():
    """A frame that is its own parent (bypassing from_rpy) is a one-frame cycle."""
    with pytest.raises(ConfigError) as exc:
        check_tree([StaticFrame('x', 'x', (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))])
    assert "'x'" in str(exc.value)
