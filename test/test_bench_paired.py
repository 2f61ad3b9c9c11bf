"""bench/paired.py: the interval of a ratio between two methods scored on the
same samples, resampling samples or whole rooms."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / 'bench'


@pytest.fixture(scope='module')
def paired():
    spec = importlib.util.spec_from_file_location('bench_paired', BENCH / 'paired.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_method_twice_as_wrong_everywhere_has_ratio_two(paired):
    b = np.random.default_rng(1).uniform(1, 50, 200)
    assert paired.paired_ratio_ci(2 * b, b) == [2.0, 2.0]
    assert paired.paired_ratio_ci(2 * b, b, groups=np.arange(200) // 10) == [2.0, 2.0]
    assert paired.paired_ratio_ci(b, b[:-1]) is None


def test_rooms_that_repeat_one_error_widen_the_interval(paired):
    """Ten rooms of twenty segments each, every segment of a room with the
    room's error: twenty times the samples but ten independent draws; the
    interval over rooms is the honest one and wider."""
    rng = np.random.default_rng(0)
    a_room, b_room = rng.uniform(5, 60, 10), rng.uniform(5, 60, 10)
    rooms = np.repeat(np.arange(10), 20)
    a, b = a_room[rooms], b_room[rooms]
    by_sample = paired.paired_ratio_ci(a, b)
    by_room = paired.paired_ratio_ci(a, b, groups=rooms)
    assert by_room[1] - by_room[0] > 1.5 * (by_sample[1] - by_sample[0])
