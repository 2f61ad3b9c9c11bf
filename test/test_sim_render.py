"""Tests of av_perception.sim.render: the camera images obey the scene's
geometry and the camera's intrinsics (pybullet TinyRenderer, no ROS).

Pixel convention under test (OpenCV / ROS CameraInfo): pixel (u, v) samples
the ray K^-1 (u, v, 1); row 0 is the top, column 0 the left.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing

import cv2
import numpy as np
import pybullet as p
import pytest

from av_perception.sim.render import (TEXTURE_SIZE, SceneRenderer, View, source_mask,
                                      texture_image)
from av_perception.sim.scene import SURFACES, TEXTURES, Box, Pose2D, base_to_world, generate_scene
from av_perception.sim.texture_cache import shared_texture_cache
from av_perception.robot import load_robot

ROOM = (6.0, 4.0, 3.0)
GREY = (0.6, 0.6, 0.6)
FLOOR_RED = (0.9, 0.2, 0.1)
CEILING_BLUE = (0.1, 0.3, 0.9)


@pytest.fixture(scope='module')
def robot():
    return load_robot()


def with_camera(robot, **changes):
    return dataclasses.replace(robot, camera=dataclasses.replace(robot.camera, **changes))


def room(boxes=(), size=ROOM, texture='plain', colors=None):
    """A hand-made scene: an empty room of ``size`` (plus ``boxes``)."""
    cols = {s: GREY for s in SURFACES}
    cols.update(floor=FLOOR_RED, ceiling=CEILING_BLUE)
    cols.update(colors or {})
    return dataclasses.replace(generate_scene(0), boxes=tuple(boxes), sources=(), size=size,
                               wall_textures={s: texture for s in SURFACES}, wall_colors=cols,
                               poses=(Pose2D(1.0, 1.0, 0.0),))


def block(center_xy, size, color=(0.2, 0.8, 0.2), texture='plain') -> Box:
    """A box standing on the floor."""
    return Box(center=(center_xy[0], center_xy[1], size[2] / 2), size=tuple(size), color=color,
               texture=texture, material='hard_surface')


def ray_cast_depth(robot, pose: Pose2D, size) -> np.ndarray:
    """Planar depth of every pixel in an empty box room, by ray casting the
    pinhole model (pixel (u, v) -> optical ray ((u - cx) / fx, (v - cy) / fy, 1))."""
    cam = robot.camera
    K = cam.K
    u, v = np.meshgrid(np.arange(cam.width, dtype=float), np.arange(cam.height, dtype=float))
    xo, yo = (u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    # optical z = base forward, x = base right (-y), y = down (-z); per unit optical z
    dirs = (c - s * (-xo), s + c * (-xo), -yo)
    eye = base_to_world(pose, cam.xyz)
    t = np.full(u.shape, np.inf)
    for d, e, hi in zip(dirs, eye, size):
        d = np.broadcast_to(d, u.shape)
        with np.errstate(divide='ignore', invalid='ignore'):
            hit = np.where(d > 1e-12, (hi - e) / d, np.where(d < -1e-12, -e / d, np.inf))
        t = np.minimum(t, hit)
    return t


# ------------------------------------------------------------ 1. room depth
@pytest.mark.parametrize('yaw, wall_distance', [
    (0.0, 6.0 - 2.6),             # east wall; camera 0.1 m ahead of the base
    (math.pi / 2, 4.0 - 1.6),     # north wall
    (math.pi, 2.5 - 0.1),         # west wall
    (-math.pi / 2, 1.5 - 0.1),    # south wall
])
def test_centre_depth_is_the_distance_to_the_wall_ahead_and_planar(robot, yaw, wall_distance):
    """Facing a wall squarely, the centre pixel's depth is the camera-wall
    distance, and along the centre row the depth stays that distance (planar
    depth, not ray length, which would grow by 1/cos of the ray's angle)."""
    pose = Pose2D(2.5, 1.5, yaw)
    cam = robot.camera
    with SceneRenderer(room(), robot) as r:
        view = r.render(pose)
    cx, cy = int(cam.K[0, 2]), int(cam.K[1, 2])
    assert view.depth.dtype == np.float32 and view.depth.shape == (cam.height, cam.width)
    assert view.depth[cy, cx] == pytest.approx(wall_distance, abs=0.02)
    # columns whose rays hit the wall ahead, not a side wall: the wall is
    # seen for |u - cx| < fx * (distance to the nearer side wall) / wall distance
    eye = base_to_world(pose, cam.xyz)
    lateral = min(eye[1], ROOM[1] - eye[1]) if abs(math.cos(yaw)) > 0.5 else \
        min(eye[0], ROOM[0] - eye[0])
    half = int(cam.fx * lateral / wall_distance) - 1
    assert half >= 20  # a wide span, where ray length would differ by > 5 %
    row = view.depth[cy, cx - half:cx + half + 1]
    np.testing.assert_allclose(row, wall_distance, atol=0.02)
    edge_ray_length = wall_distance * math.hypot(1.0, half / cam.fx)
    assert edge_ray_length - wall_distance > 0.05  # the check above can tell the two apart
    assert np.all(view.labels == -1)  # an empty room: only room surfaces


@pytest.mark.parametrize('size, hfov, pose', [
    ((128, 128), 90.0, Pose2D(2.0, 1.3, 0.7)),
    ((160, 120), 70.0, Pose2D(4.5, 3.1, -2.4)),
    ((75, 101), 60.0, Pose2D(1.0, 2.0, 3.0)),
])
def test_every_pixel_depth_matches_a_ray_cast_of_the_room(robot, size, hfov, pose):
    """At an oblique yaw and for several image sizes and fields of view, every
    pixel's depth equals the ray-cast planar depth of the pinhole model."""
    rob = with_camera(robot, width=size[0], height=size[1], hfov_deg=hfov)
    with SceneRenderer(room(), rob) as r:
        view = r.render(pose)
    assert view.depth.shape == (size[1], size[0])
    expected = ray_cast_depth(rob, pose, ROOM)
    np.testing.assert_allclose(view.depth, expected, rtol=2e-3)


def test_nothing_beyond_the_far_plane_is_infinite_depth(robot):
    """With the far plane nearer than the wall ahead, the centre sees nothing:
    depth +inf (REP 118), label -1; the floor below is still drawn."""
    rob = with_camera(robot, far=3.0)
    with SceneRenderer(room(), rob) as r:
        view = r.render(Pose2D(1.0, 2.0, 0.0))  # east wall 4.9 m ahead
    cy, cx = rob.camera.height // 2, rob.camera.width // 2
    assert np.isposinf(view.depth[cy, cx])
    assert view.labels[cy, cx] == -1
    assert np.isfinite(view.depth[-1, cx]) and view.depth[-1, cx] < 1.0


# ------------------------------------------------------------ 2. box ahead
def test_box_ahead_depth_label_and_mask_area(robot):
    """A box straight ahead: the centre sees its near face at the expected
    depth, carries its index, and its mask has the area the intrinsics give."""
    cam = robot.camera
    size = (0.4, 0.6, 1.0)
    target = block((4.0, 2.0), size, color=(0.8, 0.3, 0.7), texture='checker')
    decoy = block((4.0, 3.4), (0.3, 0.3, 0.5), color=(0.1, 0.6, 0.9))  # index 0, to the left
    scene = room([decoy, target])
    pose = Pose2D(2.0, 2.0, 0.0)
    with SceneRenderer(scene, robot) as r:
        view = r.render(pose)
    d = 4.0 - size[0] / 2 - base_to_world(pose, cam.xyz)[0]  # 1.7 m to the near face
    cx, cy = int(cam.K[0, 2]), int(cam.K[1, 2])
    assert view.depth[cy, cx] == pytest.approx(d, abs=0.02)
    assert view.labels.dtype == np.int32
    assert view.labels[cy, cx] == 1
    mask = source_mask(view, 1)
    assert mask.dtype == np.uint8 and mask.shape == (cam.height, cam.width)
    assert set(np.unique(mask)) <= {0, 255}
    assert mask[cy, cx] == 255
    np.testing.assert_array_equal(mask == 255, view.labels == 1)
    # the camera (0.5 m high) is below the top and within the box's width:
    # only the near face shows, a rectangle of fx*W/d by fy*H/d pixels
    fx = fy = cam.fx
    expected_area = (fx * size[1] / d) * (fy * size[2] / d)
    area = int(np.count_nonzero(mask))
    assert area == pytest.approx(expected_area, rel=0.2)
    # and its extent is where the projection puts the face's edges (+- 1 px)
    rows, cols = np.nonzero(mask)
    assert cols.min() == pytest.approx(cx - fx * (size[1] / 2) / d, abs=1.0)
    assert cols.max() == pytest.approx(cx + fx * (size[1] / 2) / d, abs=1.0)
    assert rows.min() == pytest.approx(cy - fy * (size[2] - cam.xyz[2]) / d, abs=1.0)
    assert rows.max() == pytest.approx(cy + fy * cam.xyz[2] / d, abs=1.0)
    # the decoy (index 0) is on the robot's left (+y): the left of the image
    decoy_cols = np.nonzero(view.labels == 0)[1]
    assert decoy_cols.size > 0 and decoy_cols.max() < cx
    assert np.count_nonzero(source_mask(view, 0)) == decoy_cols.size


# ---------------------------------------------------------------- 3. yaw turn
@pytest.mark.parametrize('turn_deg', [5.0, -5.0])
def test_yaw_turn_shifts_the_image_by_the_intrinsics(robot, turn_deg):
    """Turning left (CCW, +yaw) moves image content right by fx*tan(turn);
    turning right moves it left. Tracked: a narrow tall pole far ahead."""
    pole = block((5.6, 2.0), (0.15, 0.15, 2.5), color=(0.95, 0.85, 0.1))
    scene = room([block((1.0, 3.5), (0.3, 0.3, 0.5)), pole])
    with SceneRenderer(scene, robot) as r:
        before = r.render(Pose2D(2.0, 2.0, 0.0)).labels == 1
        after = r.render(Pose2D(2.0, 2.0, math.radians(turn_deg))).labels == 1
    assert before.sum() > 50 and after.sum() > 50
    shift = np.nonzero(after)[1].mean() - np.nonzero(before)[1].mean()
    expected = robot.camera.fx * math.tan(math.radians(turn_deg))
    assert shift == pytest.approx(expected, abs=1.0)
    # a turn about the vertical axis moves nothing up or down
    assert np.nonzero(after)[0].mean() == pytest.approx(np.nonzero(before)[0].mean(), abs=0.5)


@pytest.mark.parametrize('texture', [t for t in TEXTURES if t != 'plain'])
def test_textures_let_orb_recover_a_yaw_turn(robot, texture):
    """On every non-plain texture ORB finds and matches features, and the
    matches give the 5 deg turn (camera on the turn axis: no parallax)."""
    rob = with_camera(robot, xyz=(0.0, 0.0, 0.5))
    colors = {'west': (0.5, 0.6, 0.8), 'east': (0.7, 0.5, 0.5), 'south': (0.6, 0.8, 0.6),
              'north': (0.8, 0.8, 0.5), 'floor': (0.8, 0.7, 0.5), 'ceiling': (0.9, 0.9, 0.9)}
    scene = room(size=(6.0, 5.0, 3.0), texture=texture, colors=colors)
    pose = Pose2D(3.0, 2.5, 1.0)
    with SceneRenderer(scene, rob) as r:
        a = r.render(pose).rgb
        b = r.render(dataclasses.replace(pose, yaw=pose.yaw + math.radians(5.0))).rgb
    orb = cv2.ORB_create(nfeatures=500, edgeThreshold=8, patchSize=15, fastThreshold=10)
    ka, da = orb.detectAndCompute(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), None)
    kb, db = orb.detectAndCompute(cv2.cvtColor(b, cv2.COLOR_RGB2GRAY), None)
    assert len(ka) >= 100 and len(kb) >= 100
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(da, db)
    assert len(matches) >= 50
    fx, cx = rob.camera.fx, rob.camera.K[0, 2]
    # azimuth of a pixel is atan((u - cx) / fx) whatever its row (pitch 0)
    turn = [math.atan((kb[m.trainIdx].pt[0] - cx) / fx)
            - math.atan((ka[m.queryIdx].pt[0] - cx) / fx) for m in matches]
    assert math.degrees(float(np.median(turn))) == pytest.approx(5.0, abs=0.5)


def test_texture_images_are_deterministic_tinted_and_featured():
    """Texture images depend only on (name, colour); plain is flat; the others
    have edges (strong local contrast) and are tinted by the colour."""
    color = (0.9, 0.5, 0.2)
    for name in TEXTURES:
        img = texture_image(name, color)
        assert img.shape == (TEXTURE_SIZE, TEXTURE_SIZE, 3) and img.dtype == np.uint8
        np.testing.assert_array_equal(img, texture_image(name, color))
        # tint: channel means in the colour's proportions
        means = img.reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(means / means[0], np.array(color) / color[0], rtol=0.03)
        grey = img.astype(float).mean(axis=2)
        steps = max(np.abs(np.diff(grey, axis=0)).max(), np.abs(np.diff(grey, axis=1)).max())
        if name == 'plain':
            assert steps == 0
        else:
            assert steps > 50, name
    assert not np.array_equal(texture_image('checker', color), texture_image('checker', GREY))
    with pytest.raises(ValueError):
        texture_image('velvet', color)


# ------------------------------------------------------------ 4. determinism
def _render_in_worker(args):
    scene, robot, pose = args
    with SceneRenderer(scene, robot) as r:
        v = r.render(pose)
    return v.rgb, v.depth, v.labels


def test_rendering_is_deterministic_across_calls_instances_and_processes(robot):
    """The same scene and pose give identical arrays: twice in a row, after
    other poses, in a second renderer alive at the same time (own client, other
    scene in between), and in worker processes."""
    scene = generate_scene(3)
    other = generate_scene(4)
    pose = scene.poses[0]
    with SceneRenderer(scene, robot) as r1:
        first = r1.render(pose)
        assert len(np.unique(first.labels)) > 1  # sees a box, not only walls
        again = r1.render(pose)
        turned = r1.render(dataclasses.replace(pose, yaw=pose.yaw + 0.3))
        for q in scene.poses[1:]:
            r1.render(q)
        with SceneRenderer(other, robot) as r2:
            r2.render(other.poses[0])
            later = r1.render(pose)
        with SceneRenderer(scene, robot) as r3:
            fresh = r3.render(pose)
    ctx = multiprocessing.get_context('fork')
    # a pool's workers end without atexit handlers: they share a cache this process removes
    with shared_texture_cache(), ctx.Pool(2) as pool:
        workers = pool.map(_render_in_worker, [(scene, robot, pose)] * 2)
    views = [again, later, fresh] + [View(*w) for w in workers]
    for v in views:
        np.testing.assert_array_equal(v.rgb, first.rgb)
        np.testing.assert_array_equal(v.depth, first.depth)
        np.testing.assert_array_equal(v.labels, first.labels)
    # and a different pose is a different image
    assert not np.array_equal(turned.rgb, first.rgb)


def test_close_disconnects_and_render_after_close_fails(robot):
    """close() (and leaving the with-block) disconnects the renderer's client."""
    with SceneRenderer(room(), robot) as r:
        client = r._client
        assert p.getConnectionInfo(physicsClientId=client)['isConnected'] == 1
    assert p.getConnectionInfo(physicsClientId=client)['isConnected'] == 0
    with pytest.raises(RuntimeError):
        r.render(Pose2D(1.0, 1.0, 0.0))
    r.close()  # idempotent


# ----------------------------------------------------------- 5. image is upright
def test_row_zero_is_the_top_floor_below_ceiling_above(robot):
    """Bottom rows see the (red) floor at the depth of a plane cam_height below
    the camera, top rows the (blue) ceiling at the depth of a plane
    (Lz - cam_height) above it: row 0 is the top of the image."""
    cam = robot.camera
    h = cam.xyz[2]
    with SceneRenderer(room(), robot) as r:
        view = r.render(Pose2D(1.0, 2.0, 0.0))
    fy, cy, cx = cam.fx, cam.K[1, 2], int(cam.K[0, 2])
    bottom = view.rgb[-8:].reshape(-1, 3).astype(float).mean(axis=0)
    top = view.rgb[:8].reshape(-1, 3).astype(float).mean(axis=0)
    assert bottom[0] > 2 * bottom[2]  # red floor
    assert top[2] > 2 * top[0]        # blue ceiling
    for v in range(int(cy) + 12, cam.height, 5):
        assert view.labels[v, cx] == -1
        depth = float(view.depth[v, cx])
        # the stated half-pixel form, and the exact OpenCV-convention one
        assert depth == pytest.approx(h * fy / (v + 0.5 - cy), rel=0.05)
        assert depth == pytest.approx(h * fy / (v - cy), rel=0.005)
    # ceiling rows: those whose ray meets the ceiling before the east wall
    wall = ROOM[0] - 1.1
    for v in range(0, int(cy - (ROOM[2] - h) * fy / wall) - 1, 5):
        assert view.labels[v, cx] == -1
        depth = float(view.depth[v, cx])
        assert depth == pytest.approx((ROOM[2] - h) * fy / (cy - v), rel=0.005)
