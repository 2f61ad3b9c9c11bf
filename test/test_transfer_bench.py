"""bench/transfer.py's split of an echo model's RMSE change into the part
its test sets' mix of true depths explains and the part it does not."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / 'bench'


@pytest.fixture(scope='module')
def transfer():
    sys.path.insert(0, str(BENCH))   # transfer.py imports its sibling rendered.py
    try:
        spec = importlib.util.spec_from_file_location('bench_transfer', BENCH / 'transfer.py')
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))


def _ranges(shares, rmses):
    names = ('0-1 m', '1-2 m', '2-4 m', '4-6 m', '>= 6 m')
    return {k: {'share': s, 'rmse': r, 'abs_rel': 0.2} for k, s, r in zip(names, shares, rmses)}


def test_same_errors_per_range_more_far_pixels_is_all_mix(transfer):
    errs = (0.5, 0.5, 0.7, 1.4, 2.5)
    m = transfer.depth_mix(_ranges((0.5, 0.2, 0.2, 0.08, 0.02), errs),
                           _ranges((0.5, 0.2, 0.1, 0.1, 0.1), errs))
    assert m['pooled_rmse_shift'] > m['pooled_rmse_test']
    assert m['test_at_shift_mix'] == pytest.approx(m['pooled_rmse_shift'], abs=1e-3)
    assert m['from_mix'] == pytest.approx(1.0, abs=0.01)
    assert m['share_beyond_6m'] == {'test': 0.02, 'shift': 0.1}


def test_same_mix_worse_errors_is_none_of_it(transfer):
    shares = (0.5, 0.2, 0.2, 0.08, 0.02)
    m = transfer.depth_mix(_ranges(shares, (0.5, 0.5, 0.7, 1.4, 2.5)),
                           _ranges(shares, (0.6, 0.6, 0.9, 1.8, 4.0)))
    assert m['test_at_shift_mix'] == pytest.approx(m['pooled_rmse_test'])
    assert m['from_mix'] == pytest.approx(0.0)
