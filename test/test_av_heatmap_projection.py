"""The acoustic image's projection into the camera: a synthetic source at a
known place lands at the pixel the camera sees it at, parallax included
(the array is 0.10 m behind and above the camera), marginalised over
distance, for planar and 3-D grids; the frames come from TF as a bag or a
listener gives them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from av_perception.av_heatmap.dataset import camera_view
from av_perception.av_heatmap.projection import (AcousticProjector, CameraView, direction_map,
                                                 elevation_prior, grid_directions, normalise_power,
                                                 pixel_ray, project_point)
from av_perception.bag.contents import Intrinsics
from av_perception.errors import InputError
from av_perception.geometry.frames import OPTICAL_RPY, StaticFrame
from av_perception.geometry.tf_buffer import TfBuffer, Transform

K = np.array([[64.0, 0.0, 64.0], [0.0, 64.0, 64.0], [0.0, 0.0, 1.0]])   # 128 px, 90 deg
PLANAR = grid_directions(np.radians(np.arange(-180.0, 180.0, 1.0)))


def _tf(camera_xyz=(0.10, 0.0, 0.50), array_xyz=(0.0, 0.0, 0.60)) -> TfBuffer:
    """base -> mic_array, base -> camera_link -> camera_link_optical (the
    simulated robot's /tf_static)."""
    tf = TfBuffer()
    for f in (StaticFrame.from_rpy('base_link', 'mic_array', array_xyz, (0, 0, 0)),
              StaticFrame.from_rpy('base_link', 'camera_link', camera_xyz, (0, 0, 0)),
              StaticFrame.from_rpy('camera_link', 'camera_link_optical', (0, 0, 0),
                                   OPTICAL_RPY)):
        x, y, z, w = f.quat_xyzw
        tf.set_transform(f.parent, f.child, Transform(f.xyz, (w, x, y, z)), 0, static=True)
    return tf


def _view(**kw) -> CameraView:
    return camera_view(Intrinsics(K, 128, 128, 'camera_link_optical'), _tf(**kw), 'mic_array')


def _source(view: CameraView, tf: TfBuffer, p_base) -> tuple[np.ndarray, tuple[float, float]]:
    """A source at ``p_base`` (base frame [m]): its direction in the array
    frame and the pixel (u, v) the camera sees it at."""
    p_opt = tf.lookup('camera_link_optical', 'base_link', None).apply(p_base)
    p_arr = tf.lookup('mic_array', 'base_link', None).apply(p_base)
    return p_arr, project_point(view.K, p_opt)


def _peak_col(image: np.ndarray, row: float) -> int:
    return int(np.argmax(image[int(round(row))]))


def test_camera_view_comes_from_tf_and_camera_info():
    view = _view()
    assert view.array_frame == 'mic_array' and view.optical_frame == 'camera_link_optical'
    # the optical frame's origin (the camera) is 0.10 m ahead of and 0.10 m below the array
    np.testing.assert_allclose(view.array_from_optical.xyz, (0.10, 0.0, -0.10), atol=1e-12)
    # optical z (forward) is the array's +x, optical x (right) its -y
    r = view.array_from_optical.matrix[:3, :3]
    np.testing.assert_allclose(r @ [0, 0, 1], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(r @ [1, 0, 0], [0, -1, 0], atol=1e-12)
    with pytest.raises(InputError, match='fx'):
        CameraView(np.zeros((3, 3)), 128, 128, Transform.identity())


@pytest.mark.parametrize('p_base', [(1.1, 0.45, 0.9), (0.8, -0.5, 0.3), (1.5, 0.0, 0.6)])
def test_a_source_at_a_known_distance_lands_on_its_pixel_with_parallax(p_base):
    """Projected at the source's true distance, the synthetic acoustic image
    of a source peaks (on the source's row) within a pixel of where the
    camera sees it; the same image projected as if array and camera were at
    one place is off by several pixels for near, off-axis sources."""
    tf = _tf()
    view = _view()
    p_arr, (u, v) = _source(view, tf, p_base)
    dist = float(np.linalg.norm(tf.lookup('camera_link_optical', 'base_link', None)
                                .apply(p_base)))
    power = direction_map(PLANAR, p_arr, sigma_deg=1.0)
    image = AcousticProjector(view, PLANAR, distances=(dist,)).project(power)
    assert image.shape == (128, 128)
    assert abs(_peak_col(image, v) - u) <= 1.0, (_peak_col(image, v), u)
    no_parallax = CameraView(K, 128, 128,
                             Transform((0.0, 0.0, 0.0), view.array_from_optical.quat_wxyz))
    naive = AcousticProjector(no_parallax, PLANAR, distances=(dist,)).project(power)
    if abs(p_base[1]) > 0.3:    # off-axis and near: parallax moves it
        assert abs(_peak_col(naive, v) - u) >= 2.5, (_peak_col(naive, v), u)


def test_marginalised_over_distance_the_peak_stays_near_the_source():
    """Over 0.5-6 m the map is a mean of the distances' columns: for a
    source at 2 m, 35 deg to the left, the peak is within 3 px of it, the
    map is 1 nowhere else far from it, and a coarser output grid keeps the
    same geometry (cell centres at integer coordinates)."""
    tf = _tf()
    view = _view()
    p_arr, (u, v) = _source(view, tf, (1.64, 1.15, 0.6))
    power = direction_map(PLANAR, p_arr, sigma_deg=2.0)
    image = AcousticProjector(view, PLANAR).project(power)
    assert abs(_peak_col(image, v) - u) <= 3.0
    assert image.max() <= 1.0 and image[:, 110:].max() < 0.05      # far right: nothing
    coarse = AcousticProjector(view, PLANAR, shape=(16, 16)).project(power)
    col = int(np.argmax(coarse[int(v / 8)]))
    assert abs((col + 0.5) * 8 - 0.5 - u) <= 8.0


def test_a_planar_array_gives_a_band_a_3d_grid_a_spot():
    """A planar grid cannot tell the row: its map is nearly the same up and
    down the source's column. A grid with elevations puts the peak on the
    source's row as well."""
    tf = _tf()
    view = _view()
    p_arr, (u, v) = _source(view, tf, (2.1, 0.5, 1.5))
    planar = AcousticProjector(view, PLANAR, distances=(2.2,)).project(
        direction_map(PLANAR, p_arr, 2.0))
    col = int(round(u))
    assert planar[:, col].min() > 0.8 * planar[:, col].max()
    az, el = np.meshgrid(np.radians(np.arange(-180.0, 180.0, 2.0)),
                         np.radians(np.arange(-60.0, 61.0, 2.0)))
    sphere = grid_directions(az.ravel(), el.ravel())
    spot = AcousticProjector(view, sphere, distances=(2.2,)).project(
        direction_map(sphere, p_arr, 3.0))
    r, c = np.unravel_index(np.argmax(spot), spot.shape)
    assert abs(c - u) <= 2 and abs(r - v) <= 3, ((r, c), (u, v))


def test_pixel_rays_and_points_agree_and_the_horizon_prior_is_level():
    view = _view()
    ray = pixel_ray(K, 20.0, 100.0)
    u, v = project_point(K, 3.0 * ray)
    assert (u, v) == pytest.approx((20.0, 100.0))
    assert np.linalg.norm(ray) == pytest.approx(1.0)
    with pytest.raises(InputError):
        project_point(K, (0.0, 0.0, -1.0))
    prior = elevation_prior(view)
    # a level camera: the horizon is the principal point's row (64, integer centres)
    assert int(np.argmax(prior[:, 64])) == 64
    assert prior[0, 64] < 0.05 and prior[64, 0] == pytest.approx(1.0, abs=1e-6)
    # centred 10 deg below the array's plane: the rows of rays 10 deg down,
    # 64 + tan 10 deg x (the ray's horizontal reach in px): 75.3 on the
    # centre column, 78.8 on column 10 (the band bends off-axis)
    below = elevation_prior(view, center_deg=-10.0)
    assert int(np.argmax(below[:, 64])) == 75 and int(np.argmax(below[:, 10])) == 79
    assert below[75, 64] == pytest.approx(1.0, abs=0.01) and below[64, 64] < 0.9


def test_normalised_power_is_zero_below_the_median_and_one_at_the_peak():
    p = np.array([1.0, 1.1, 1.2, 1.3, 2.0])
    a = normalise_power(p)
    assert a.max() == 1.0 and a[np.argmax(p)] == 1.0 and a[0] == 0.0 and a[1] == 0.0
    assert not normalise_power(np.ones(5)).any()


def test_a_wrong_grid_is_refused():
    proj = AcousticProjector(_view(), PLANAR, shape=(4, 4))
    with pytest.raises(InputError, match='360 grid values'):
        proj.project(np.zeros(10))
    batch = proj.project(np.zeros((3, 360)))
    assert batch.shape == (3, 4, 4)


def _yawed(yaw_deg: float) -> Transform:
    from transforms3d.euler import euler2quat
    return Transform((0.0, 0.0, 0.6), tuple(euler2quat(0.0, 0.0, math.radians(yaw_deg))))


def test_the_acoustic_memory_carries_past_windows_through_the_odometry():
    """A source fixed in the odometry frame at 40 deg: heard at 40 deg, then,
    after the robot turned 30 deg left, at 10 deg. The memory's image in the
    current array frame peaks at 10 deg; a window heard from elsewhere (a
    reflection at -60 deg) is outvoted; windows older than ``seconds`` or
    from more than ``max_travel`` away are dropped; without odometry only
    the current window counts."""
    from av_perception.av_heatmap.projection import AcousticMemory
    az = np.degrees(np.arctan2(PLANAR[:, 1], PLANAR[:, 0]))

    def heard(deg):
        return direction_map(PLANAR, [math.cos(math.radians(deg)), math.sin(math.radians(deg)),
                                      0.0], 3.0)
    mem = AcousticMemory(PLANAR, seconds=1.5)
    mem.add(heard(40.0), 0, _yawed(0.0))
    mem.add(heard(-60.0), 5 * 10**8, _yawed(15.0))       # a reflection, 0.5 s later
    mem.add(heard(10.0), 10**9, _yawed(30.0))
    image = mem.image(10**9, _yawed(30.0))
    assert abs(az[np.argmax(image)] - 10.0) <= 1.0
    assert image.max() == pytest.approx(1.0)
    # the reflection alone (at 15 deg of yaw, -60 there) would point at -75 now
    assert image[np.argmin(np.abs(az + 75.0))] < 0.6
    # 2 s later the first windows have aged out: only the new one counts
    mem.add(heard(-20.0), 3 * 10**9, _yawed(30.0))
    assert abs(az[np.argmax(mem.image(3 * 10**9, _yawed(30.0)))] + 20.0) <= 1.0
    # a window from 1 m away is not carried over
    far = AcousticMemory(PLANAR, seconds=5.0, max_travel=0.3)
    far.add(heard(40.0), 0, Transform((1.0, 0.0, 0.6), (1.0, 0.0, 0.0, 0.0)))
    far.add(heard(-30.0), 10**8, _yawed(0.0))
    assert abs(az[np.argmax(far.image(10**8, _yawed(0.0)))] + 30.0) <= 1.0
    # no odometry: the current window alone
    mem.add(heard(70.0), 3 * 10**9 + 1, None)
    assert abs(az[np.argmax(mem.image(3 * 10**9 + 1, None))] - 70.0) <= 1.0


def test_the_acoustic_memory_weighs_each_window_by_how_far_its_peak_stands_out():
    """A window that heard a source (free field, 4-mic array) has a tall SRP
    peak over its floor; one of independent sensor noise alone has a nearly
    flat map, though normalised it is as tall as any. Weighted by
    :func:`power_contrast`, the memory follows the source through later
    noise windows; weighted alike, the noise windows outvote it. Weights of
    zero everywhere fall back to the plain mean; a negative or NaN weight is 0."""
    from av_perception.arrays import load_array
    from av_perception.av_heatmap.projection import (AcousticImage, AcousticMemory,
                                                     normalise_power, power_contrast)
    from test_direction_srp import _record
    geometry = load_array('respeaker4')
    imager = AcousticImage(geometry)
    rng = np.random.default_rng(3)
    # the helper cuts its recording's start: ask for more than the window
    source = _record(geometry, [(40.0, 0.0)], None, seconds=0.6, seed=3)[:, :6400]
    assert source.shape == (geometry.channels, 6400)
    az = np.degrees(np.arctan2(imager.directions[:, 1], imager.directions[:, 0]))
    raw_source = imager.spectrum(source)
    assert abs(az[np.argmax(raw_source)] - 40.0) <= 3.0
    noises = [imager.spectrum(rng.normal(size=source.shape)) for _ in range(3)]
    assert all(power_contrast(r) < 0.2 * power_contrast(raw_source) for r in noises)
    assert all(normalise_power(r).max() == pytest.approx(1.0) for r in noises)

    def memory(weighted: bool) -> np.ndarray:
        mem = AcousticMemory(imager.directions, seconds=1.5)
        for k, raw in enumerate([raw_source, *noises]):
            mem.add(normalise_power(raw), k * 5 * 10**8, _yawed(0.0),
                    power_contrast(raw) if weighted else 1.0)
        return mem.image(15 * 10**8, _yawed(0.0))
    assert abs(az[np.argmax(memory(True))] - 40.0) <= 3.0
    assert abs(az[np.argmax(memory(False))] - 40.0) > 3.0
    flat = AcousticMemory(PLANAR, seconds=1.5)
    flat.add(direction_map(PLANAR, [1.0, 0.0, 0.0], 3.0), 0, _yawed(0.0), 0.0)
    flat.add(direction_map(PLANAR, [0.0, 1.0, 0.0], 3.0), 10**8, _yawed(0.0), -1.0)
    flat.add(direction_map(PLANAR, [-1.0, 0.0, 0.0], 3.0), 2 * 10**8, _yawed(0.0), float('nan'))
    both = flat.image(2 * 10**8, _yawed(0.0))
    assert both[np.argmin(np.abs(np.degrees(np.arctan2(PLANAR[:, 1], PLANAR[:, 0]))))] \
        == pytest.approx(1.0)
    assert both.max() == pytest.approx(1.0)
