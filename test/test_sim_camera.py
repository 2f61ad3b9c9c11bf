"""The simulated camera's geometry: planar depth of a wall, a yaw turn shifts
the image as the intrinsics predict, the floor's depth follows the camera
height, rendering is deterministic."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from av_perception.sim.render import SceneRenderer
from av_perception.sim.scene import Box, Pose2D, generate_scene, load_robot

ROBOT = load_robot()
CAM = ROBOT.camera


def scene(boxes=()):
    return replace(generate_scene(0), size=(6.0, 4.0, 3.0), boxes=tuple(boxes), sources=())


def test_depth_of_a_facing_wall_is_planar_and_right():
    with SceneRenderer(scene(), ROBOT) as r:
        v = r.render(Pose2D(1.5, 2.0, 0.0))
    d = 6.0 - 1.5 - CAM.xyz[0]
    h, w = v.depth.shape
    assert v.depth[h // 2, w // 2] == pytest.approx(d, abs=0.02)
    half = int(CAM.fx * 1.9 / d)  # the facing wall spans +-2 m: stay 0.1 m inside it
    row = v.depth[h // 2, w // 2 - half: w // 2 + half]
    assert np.abs(row - d).max() < 0.02  # planar depth, not ray length
    assert (v.labels == -1).all()


def test_yaw_turn_shifts_the_image_by_the_intrinsics():
    post = Box((5.0, 2.0, 1.0), (0.1, 0.1, 2.0), (1, 0, 0), 'plain', 'wood_16mm')
    with SceneRenderer(scene([post]), ROBOT) as r:
        a = r.render(Pose2D(1.5, 2.0, 0.0))
        b = r.render(Pose2D(1.5, 2.0, math.radians(5.0)))  # CCW: turning left
    cols_a = np.nonzero(a.labels == 0)[1].mean()
    cols_b = np.nonzero(b.labels == 0)[1].mean()
    # the post stays put in the world: in the image it moves right by fx tan(5 deg)
    assert cols_b - cols_a == pytest.approx(CAM.fx * math.tan(math.radians(5.0)), abs=1.0)
    assert cols_a == pytest.approx(CAM.width / 2, abs=1.0)  # straight ahead: centre column


def test_floor_depth_follows_the_camera_height():
    with SceneRenderer(scene(), ROBOT) as r:
        v = r.render(Pose2D(1.5, 2.0, 0.0))
    cy = CAM.height / 2.0
    for row in (CAM.height - 5, CAM.height - 20):
        expected = CAM.xyz[2] * CAM.fx / (row + 0.5 - cy)
        assert v.depth[row, CAM.width // 2] == pytest.approx(expected, rel=0.05)


def test_rendering_is_deterministic_across_renderers():
    sc = generate_scene(5)
    with SceneRenderer(sc, ROBOT) as r1, SceneRenderer(sc, ROBOT) as r2:
        a, b = r1.render(sc.poses[0]), r2.render(sc.poses[0])
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.depth, b.depth)
    np.testing.assert_array_equal(a.labels, b.labels)
