"""Unit tests of the echo map: REP 117 depth and free rays (echo.occupancy),
log-odds fusion in odom (echo.mapping), and its scoring on a bag written
here (echo.map_evaluate, `av-perception eval echo-map`)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace as NS

import numpy as np
import pytest

from av_perception.echo.mapping import EchoMap, FusionParams, export, logodds
from av_perception.echo.occupancy import (FREE, OCCUPIED, UNKNOWN, EchoRays, GridSpec,
                                          depth_rays, occupancy_from_depth, rep117_depth)

K = np.array([[32.0, 0, 32], [0, 32, 32], [0, 0, 1]])    # 64 x 64, 90 deg field of view
CELL = 0.1


def centres(grid: GridSpec = GridSpec()) -> tuple[np.ndarray, np.ndarray]:
    c = grid.origin[0] + (np.arange(grid.cells) + 0.5) * grid.resolution
    return np.meshgrid(c, c)                              # x, y of every cell


# ------------------------------------------------------------------ REP 117

def test_rep117_depth_marks_no_return_inf_and_invalid_nan():
    d = rep117_depth(np.array([1.0, 11.9, 11.995, 12.0, 0.0, -1.0, np.nan, np.inf]), 12.0)
    assert d.dtype == np.float32
    assert np.isposinf(d[2:4]).all() and np.isposinf(d[7])
    assert np.isnan(d[4:7]).all() and d[0] == 1.0 and d[1] == pytest.approx(11.9)


def test_a_no_return_image_clears_the_view_to_max_range():
    """All +Inf: free along every column to the range, nothing occupied (the
    same image as NaN, invalid, says nothing)."""
    inf = occupancy_from_depth(np.full((64, 64), np.inf), K, max_range=3.0)
    x, y = centres()
    assert (inf == OCCUPIED).sum() == 0
    free = inf == FREE
    assert free.sum() > 500
    d = np.hypot(x - 0.1, y)                              # camera at x = 0.10 m
    assert d[free].max() < 3.0 * math.sqrt(2) + CELL      # optical depth 3 m at 45 deg
    assert np.all(np.abs(y[free]) <= (x[free] - 0.1) + 0.15)  # inside the 90 deg view
    assert free[50, 50 + 25] and free[50, 50 + 30]        # 2.4 and 2.9 m ahead
    assert not free[50, 50 + 35]                          # 3.4 m: beyond the range
    unbounded = occupancy_from_depth(np.full((64, 64), np.inf), K)
    assert unbounded[50, 99] == FREE                      # to the grid's edge
    assert (occupancy_from_depth(np.full((64, 64), np.nan), K) == UNKNOWN).all()


def test_no_return_columns_beside_a_wall_are_free_not_dropped():
    """Half the columns see a wall 2 m ahead, the others nothing within
    range: the latter are free past 2 m (before REP 117 they were dropped)."""
    d = np.full((64, 64), 2.0)
    d[:, 40:] = np.inf                                     # the right side: no return
    grid = occupancy_from_depth(d, K, max_range=12.0)
    x, y = centres()
    az = np.arctan2(y, x - 0.1)                            # seen from the camera
    right = (az < -0.3) & (az > -0.75)                     # columns 40-63: -14 to -45 deg
    assert (grid[right & (x > 3.0)] == FREE).mean() > 0.95
    left = (az > 0.0) & (az < 0.75)
    assert (grid[left & (x > 2.3)] == UNKNOWN).all()       # behind the wall
    occ = grid == OCCUPIED
    assert occ[left].sum() > 10 and np.all(np.abs(x[occ] - 2.1) <= 0.06)  # the wall, 2 m ahead
    rays = depth_rays(d, K, max_range=12.0)
    assert rays.hit[:40].all() and not rays.hit[40:].any()
    assert (rays.range[40:] > 11.0).all()


def test_no_return_pixels_are_free_only_within_the_height_band():
    """The bottom pixel (44 deg down) leaves the band (z >= 0.25 m) 0.25 m
    below the camera (0.5 m high), 0.26 m ahead: that is all it clears."""
    d = np.full((64, 64), np.nan)
    d[63, 32] = np.inf                                     # bottom row, centre column
    rays = depth_rays(d, K, max_range=12.0)
    assert not rays.hit[32]
    assert rays.range[32] == pytest.approx(0.25 * 32 / 31, rel=1e-6)    # slope 31/32 down
    assert rays.range[:32].max() == 0.0


# ------------------------------------------------------------------ fusion

def wall_rays(distance: float, n: int = 64) -> EchoRays:
    """A wall across the view ``distance`` ahead of a sensor at the base origin."""
    az = np.linspace(-math.pi / 4, math.pi / 4, n)
    return EchoRays((0.0, 0.0), az, distance / np.cos(az), np.ones(n, bool))


def test_fusion_accumulates_clamped_log_odds_per_echo():
    p = FusionParams()
    m = EchoMap(p)
    for _ in range(30):
        m.add_rays(wall_rays(2.0), (0.0, 0.0, 0.0))
    lo = m.logodds
    assert lo.max() == pytest.approx(logodds(p.p_max), rel=1e-6)   # clamped
    assert lo.min() == pytest.approx(logodds(p.p_min), rel=1e-6)
    one = EchoMap(p)
    one.add_rays(wall_rays(2.0), (0.0, 0.0, 0.0))
    vals = np.unique(one.logodds[one.logodds != 0])        # each cell once per echo
    assert vals == pytest.approx(sorted([logodds(p.p_miss), logodds(p.p_hit)]), rel=1e-6)
    g = m.occupancy()
    x = g.origin[0] + (np.arange(g.data.shape[1]) + 0.5) * g.resolution
    y = g.origin[1] + (np.arange(g.data.shape[0]) + 0.5) * g.resolution
    occ_r, occ_c = np.nonzero(g.data == OCCUPIED)
    assert np.all(np.abs(x[occ_c] - 2.0) <= CELL) and np.abs(y[occ_r]).max() > 1.8
    assert (g.data == FREE).sum() > 300 and g.frame_id == 'odom'


def test_fusion_uses_the_pose_in_odom():
    """The same echo taken with the base at (1, 2) facing +y puts the wall at
    y = 4 across x in odom; a wall seen once occupied, then seen free by
    enough echoes, is cleared."""
    m = EchoMap()
    m.add_rays(wall_rays(2.0), (1.0, 2.0, math.pi / 2))
    g = m.occupancy()
    assert g.origin[0] % CELL == pytest.approx(0.0, abs=1e-9) or \
        g.origin[0] % CELL == pytest.approx(CELL, abs=1e-9)          # on the lattice
    r, c = np.nonzero(g.data == OCCUPIED)
    y = g.origin[1] + (r + 0.5) * CELL
    x = g.origin[0] + (c + 0.5) * CELL
    assert np.all(np.abs(y - 4.0) <= CELL) and x.min() < -0.7 and x.max() > 2.7
    p = m.params                                           # the wall moved away to 3 m:
    n = math.ceil((logodds(p.p_hit) - logodds(p.free_threshold)) / -logodds(p.p_miss))
    g = m.occupancy()
    col = int((1.0 - g.origin[0]) / CELL)
    row = int((4.0 - g.origin[1]) / CELL)
    for k in range(1, n + 1):                              # n echoes clear it, not n - 1
        m.add_rays(wall_rays(3.0), (1.0, 2.0, math.pi / 2))
        g = m.occupancy()
        assert (g.data[row, col] == FREE) == (k == n)
    assert g.data[row + 10, col] == OCCUPIED


def test_map_grows_and_keeps_its_cells():
    m = EchoMap(FusionParams(grow=1.0))
    m.add_rays(wall_rays(2.0), (0.0, 0.0, 0.0))
    before = m.occupancy()
    m.add_rays(wall_rays(2.0), (30.0, -20.0, 0.0))
    after = m.occupancy()
    assert after.data.shape[1] > 300 and after.data.shape[0] > 200
    dc = int(round((before.origin[0] - after.origin[0]) / CELL))
    dr = int(round((before.origin[1] - after.origin[1]) / CELL))
    h, w = before.data.shape
    np.testing.assert_array_equal(after.data[dr:dr + h, dc:dc + w], before.data)
    small = EchoMap(FusionParams(max_size=8.0))
    small.add_rays(wall_rays(2.0), (0.0, 0.0, 0.0))
    small.add_rays(wall_rays(2.0), (30.0, 0.0, 0.0))
    assert max(small.occupancy().data.shape) <= 80 and small.dropped_points > 0


def test_export_thresholds_and_parameter_checks():
    p = FusionParams(occupied_threshold=0.8, free_threshold=0.2)
    lo = np.array([0.0, logodds(0.85), logodds(0.7), logodds(0.15), logodds(0.3)], np.float32)
    assert export(lo, p).tolist() == [UNKNOWN, OCCUPIED, UNKNOWN, FREE, UNKNOWN]
    for bad in (dict(p_hit=0.4), dict(p_miss=0.6), dict(free_threshold=0.7),
                dict(p_max=0.5), dict(resolution=0.0)):
        with pytest.raises(ValueError):
            FusionParams(**bad).check()


def test_add_depth_takes_a_tf_buffer_transform():
    from av_perception.geometry.frames import yaw_quaternion
    from av_perception.geometry.tf_buffer import TfBuffer, Transform
    qx, qy, qz, qw = yaw_quaternion(math.pi)
    tf = TfBuffer()
    tf.set_transform('odom', 'base_link', Transform((5.0, 0.0, 0.0), (qw, qx, qy, qz)), 7)
    m = EchoMap(max_range=12.0)
    m.add_depth(np.full((64, 64), 2.0), K, tf.lookup('odom', 'base_link', 7))
    g = m.occupancy()
    r, c = np.nonzero(g.data == OCCUPIED)
    x = g.origin[0] + (c + 0.5) * CELL
    assert np.all(np.abs(x - (5.0 - 2.1)) <= CELL)         # camera 0.1 m ahead, facing -x


# ------------------------------------------------------------------ scoring a bag

ROOM = (6.0, 4.0, 2.5)


def room_depth(pose, mount_xyz=(0.10, 0.0, 0.50)) -> np.ndarray:
    """Perfect depth (optical z [m]) of the virtual camera in an empty room
    0 <= x <= 6, 0 <= y <= 4, 0 <= z <= 2.5 (world), robot at ``pose``."""
    from av_perception.echo.occupancy import CameraMount
    r, _ = CameraMount(mount_xyz).optical_to_base()
    u, v = np.meshgrid(np.arange(64.0), np.arange(64.0))
    d = np.stack([(u - 32) / 32, (v - 32) / 32, np.ones_like(u)], -1) @ r.T   # base, per m
    x, y, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    w = np.stack([c * d[..., 0] - s * d[..., 1], s * d[..., 0] + c * d[..., 1], d[..., 2]], -1)
    o = np.array([x + c * mount_xyz[0], y + s * mount_xyz[0], mount_xyz[2]])
    t = np.full(u.shape, np.inf)
    for axis, hi in enumerate(ROOM):
        for plane in (0.0, hi):
            with np.errstate(divide='ignore', invalid='ignore'):
                ti = (plane - o[axis]) / w[..., axis]
            t = np.where((ti > 1e-9) & (ti < t), ti, t)
    return t.astype(np.float32)


POSES = [(1.5, 2.0, 0.0), (1.5, 2.0, 0.7), (2.0, 2.2, 0.7), (2.0, 2.2, 1.6),
         (2.0, 2.2, 2.6), (2.0, 2.2, -2.4), (2.2, 1.8, -1.2), (2.2, 1.8, 0.0)]


def write_room_bag(path: Path, topic_prefix: str = '', drop_tf_of: int | None = None,
                   gt: bool = True) -> None:
    """A bag of the empty room: an echo chunk (noise: the test's predictor
    ignores it), odom -> base_link (odom = the first pose) and gt/occupancy
    at each pose's stamp, and a static base_link -> echo_head -> echo_head_optical
    (the echo depth's virtual camera, where the simulated robot has it)."""
    from av_perception.bag.io import BagWriter
    from av_perception.bag.messages import Messages
    from av_perception.geometry.frames import OPTICAL_RPY, StaticFrame, yaw_quaternion
    from av_perception.sim.scene import Pose2D
    from av_perception.sim.world import occupancy_grid
    m = Messages()
    t0 = 1_700_000_000 * 10**9
    p0 = POSES[0]
    with BagWriter(path) as w:
        w.write(f'{topic_prefix}/tf_static', 'tf2_msgs/msg/TFMessage', t0, m.tf(
            [StaticFrame.from_rpy('base_link', 'echo_head', (0.1, 0, 0.5), (0, 0, 0)),
             StaticFrame.from_rpy('echo_head', 'echo_head_optical', (0, 0, 0), OPTICAL_RPY)],
            t0))
        for k, (x, y, yaw) in enumerate(POSES):
            t = t0 + k * 500_000_000
            if k != drop_tf_of:
                c, s = math.cos(-p0[2]), math.sin(-p0[2])
                dx, dy = x - p0[0], y - p0[1]
                odom = StaticFrame('odom', 'base_link', (c * dx - s * dy, s * dx + c * dy, 0.0),
                                   yaw_quaternion(yaw - p0[2]))
                w.write(f'{topic_prefix}/tf', 'tf2_msgs/msg/TFMessage', t, m.tf([odom], t))
            box_plan = np.array([[0.0, 0.0], [ROOM[0], 0.0], [ROOM[0], ROOM[1]], [0.0, ROOM[1]]])
            occ = occupancy_grid(NS(size=ROOM, boxes=(), plan=box_plan), Pose2D(x, y, yaw))
            if gt:
                w.write(f'{topic_prefix}/gt/occupancy', 'nav_msgs/msg/OccupancyGrid', t,
                        m.occupancy(occ.data, occ.resolution, occ.origin, t, 'base_link'))
            noise = np.random.default_rng(k).normal(0, 1e-3, (2, 3086)).astype(np.float32)
            w.write(f'{topic_prefix}/audio/echo', 'av_perception_msgs/msg/AudioChunk', t,
                    m.audio_chunk(noise, 44100, k, t, 'echo_head'))


class RoomOracle:
    """A predictor that knows the room: the perfect depth at the k-th echo's pose."""

    def __init__(self, poses=POSES) -> None:
        self.poses, self.k = poses, 0

    def __call__(self, samples, rate) -> np.ndarray:
        assert samples.shape == (2, 3086) and rate == 44100
        d = room_depth(self.poses[self.k])
        self.k += 1
        return np.where(d > 12.0, 12.0, d)


@pytest.fixture(scope='module')
def room_bag(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp('echo_map') / 'room'
    write_room_bag(path)
    return path


def setup():
    """Perfect depth: every ray freed up to its surface (the default frees
    less, for the echo student's overshooting far surfaces)."""
    from av_perception.echo.map_evaluate import MapSetup
    return MapSetup(K, 64, 12.0, FusionParams(free_fraction=1.0))


def test_perfect_depth_maps_the_room(room_bag):
    """Perfect echoes: each single grid matches its gt, and the fused map of
    turns and moves matches the reference (walls within one cell)."""
    from av_perception.echo.map_evaluate import read_echoes, score_bag, summarize
    bag = read_echoes(room_bag, RoomOracle(), 12.0)
    assert (len(bag.echoes), bag.without_odometry, bag.without_gt) == (8, 0, 0)
    assert bag.echoes[0].mount.xyz == pytest.approx((0.1, 0.0, 0.5))    # from /tf_static
    assert bag.echoes[2].pose == pytest.approx((0.5, 0.2, 0.7), abs=1e-9)  # odom: first pose
    s = summarize([score_bag(bag, setup())])
    assert s['single']['free_iou'] > 0.9 and s['single']['occ_recall'] > 0.9
    assert s['fused']['free_iou'] > 0.9
    assert s['fused']['occ_recall'] > 0.9 and s['fused']['occ_precision'] > 0.95
    assert s['counts']['reference_occupied_cells'] > 100
    assert s['counts']['reference_free_cells'] > 1000 and s['counts']['echoes_used'] == 8


def test_depth_from_other_poses_than_the_odometry_scores_lower(room_bag):
    """Every other echo's depth taken 0.4 rad off the yaw the odometry (and
    its gt/occupancy) says: the fused map's walls come out doubled."""
    from av_perception.echo.map_evaluate import read_echoes, score_bag
    wrong = [(x, y, yaw + 0.4 * (k % 2)) for k, (x, y, yaw) in enumerate(POSES)]
    good = score_bag(read_echoes(room_bag, RoomOracle(), 12.0), setup())
    bad = score_bag(read_echoes(room_bag, RoomOracle(wrong), 12.0), setup())
    assert bad['fused']['occ_precision'] < good['fused']['occ_precision'] - 0.2
    assert bad['fused']['free_iou'] < good['fused']['free_iou'] - 0.08


def test_echoes_without_tf_are_counted_not_guessed(tmp_path):
    from av_perception.echo.map_evaluate import read_echoes
    write_room_bag(tmp_path / 'bag', drop_tf_of=7)           # the last: after the odometry
    bag = read_echoes(tmp_path / 'bag', RoomOracle(), 12.0)
    assert (len(bag.echoes), bag.without_odometry, bag.without_camera) == (7, 1, 0)
    assert bag.tf_errors == {'odometry ExtrapolationError': 1}
    # one in the middle is interpolated between its neighbours, not dropped
    write_room_bag(tmp_path / 'mid', drop_tf_of=3)
    bag = read_echoes(tmp_path / 'mid', RoomOracle(), 12.0)
    assert (len(bag.echoes), bag.without_odometry) == (8, 0)
    assert bag.echoes[3].pose[:2] == pytest.approx((0.5, 0.2), abs=1e-9)


def test_namespaced_topics_are_read(tmp_path):
    from av_perception.echo.map_evaluate import read_echoes
    write_room_bag(tmp_path / 'ns', topic_prefix='/robot1')
    bag = read_echoes(tmp_path / 'ns', RoomOracle(), 12.0, namespace='robot1')
    assert len(bag.echoes) == 8


def test_eval_echo_map_cli(room_bag, tmp_path):
    """The command runs on the bag with the shipped model (whatever it makes
    of noise) and says in one line what is wrong with bad input."""
    exe = Path(sys.executable).parent / 'av-perception'
    r = subprocess.run([str(exe), 'eval', 'echo-map', '--bags', str(room_bag)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert 'free_iou' in r.stdout and '1 bags, 8 echoes fused of 8' in r.stdout
    (tmp_path / 'empty').mkdir()
    write_room_bag(tmp_path / 'no_gt', gt=False)
    for args, want in (([str(tmp_path / 'empty')], 'bag folders'),
                       ([str(tmp_path / 'no_gt')], 'topic gt/occupancy'),
                       ([str(room_bag), '--odom-frame', 'map'], '8 without the odometry'),
                       ([str(room_bag), '--base-frame', 'body'], '8 without the camera pose')):
        r = subprocess.run([str(exe), 'eval', 'echo-map', '--bags', *args],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 2 and want in r.stderr, r.stderr
        assert 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_free_fraction_frees_only_the_near_part_of_a_surface_ray():
    """A wall 4 m ahead: with free_fraction 0.75 the first 3 m are freed, the
    last metre before the wall is left unknown, the wall is still hit."""
    rays = EchoRays((0.0, 0.0), np.array([0.0]), np.array([4.05]), np.array([True]))
    out = {}
    for frac in (1.0, 0.75):
        m = EchoMap(FusionParams(free_fraction=frac))
        m.add_rays(rays, (0.0, 0.0, 0.0))
        g = m.occupancy()
        row = g.data[int(-g.origin[1] / CELL)]
        out[frac] = {v: int((row == v).sum()) for v in (FREE, OCCUPIED)}
    assert out[1.0] == {FREE: 40, OCCUPIED: 1}
    assert out[0.75] == {FREE: 31, OCCUPIED: 1}
    with pytest.raises(ValueError, match='free_fraction'):
        FusionParams(free_fraction=0.0).check()
