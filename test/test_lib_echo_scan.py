"""An echo's column rays as a LaserScan: nearest surface per bin, +Inf where
free to the range, NaN where the echo says nothing (REP 117)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from av_perception.echo.occupancy import CameraMount, depth_rays
from av_perception.echo.scan import rays_to_scan, scan_bins
from av_perception.geometry.tf_buffer import Transform

K = np.array([[32.0, 0, 32.0], [0, 32.0, 32.0], [0, 0, 1]])   # 64 x 64, 90 deg


def _identity(points):
    return points


def test_bins_cover_the_field_of_view_one_per_column():
    amin, inc, n = scan_bins(K, 64, 0.0)
    assert n == 64
    assert amin == pytest.approx(-math.atan(31 / 32)) and amin + inc * 63 == pytest.approx(
        math.atan(32 / 32))


def test_a_wall_gives_its_distance_and_free_columns_are_inf():
    depth = np.full((64, 64), 3.0, np.float32)       # a wall 3 m ahead ...
    depth[:, :16] = np.inf                            # ... except on the left: nothing returns
    mount = CameraMount((0.0, 0.0, 0.5))
    rays = depth_rays(depth, K, mount, max_range=12.0)
    scan = rays_to_scan(rays, _identity, *scan_bins(K, 64, 0.0), range_max=12.0)
    ahead = int(round((0.0 - scan.angle_min) / scan.angle_increment))
    assert scan.ranges[ahead] == pytest.approx(3.0, abs=0.05)
    angles = scan.angle_min + scan.angle_increment * np.arange(len(scan.ranges))
    left = angles > math.atan(16.5 / 32)              # columns 0-15: image left = +y
    assert np.isposinf(scan.ranges[left]).all() and np.isfinite(scan.ranges[~left]).all()


def test_a_column_without_a_reading_is_nan():
    depth = np.full((64, 64), np.nan, np.float32)
    depth[:, 40] = 2.0
    rays = depth_rays(depth, K, CameraMount((0.0, 0.0, 0.5)), max_range=12.0)
    scan = rays_to_scan(rays, _identity, *scan_bins(K, 64, 0.0), range_max=12.0)
    finite = np.isfinite(scan.ranges)
    assert 1 <= finite.sum() <= 2 and np.isnan(scan.ranges[~finite]).all()  # a column ~ 1.3 bins
    assert scan.ranges[finite] == pytest.approx(2.0 / math.cos(math.atan(8 / 32)), abs=0.1)


def test_the_scan_frame_rotates_the_bins():
    depth = np.full((64, 64), 3.0, np.float32)
    rays = depth_rays(depth, K, CameraMount((0.0, 0.0, 0.5)), max_range=12.0)
    quarter = Transform((0.0, 0.0, 0.0), (math.cos(math.pi / 4), 0.0, 0.0,
                                          math.sin(math.pi / 4)))    # yaw +90 deg
    scan = rays_to_scan(rays, quarter.apply, *scan_bins(K, 64, math.pi / 2), range_max=12.0)
    mid = int(round((math.pi / 2 - scan.angle_min) / scan.angle_increment))
    assert scan.ranges[mid] == pytest.approx(3.0, abs=0.05)
