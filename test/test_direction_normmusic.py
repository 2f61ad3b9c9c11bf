"""The package's NormMUSIC (av_perception.direction.normmusic) against
pyroomacoustics' own: the same pseudo-spectrum and the same peaks, on planar
and 3-D arrays, in free field and in a reverberant room (the recordings of
test_direction_srp)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from av_perception.arrays import load_array
from av_perception.direction.classic import ClassicDoa
from av_perception.direction.evaluate import make_estimator
from test_direction_srp import CASES, _case


@pytest.mark.parametrize('name', list(CASES))
@pytest.mark.parametrize('k', [1, 2, 3])
def test_pseudo_spectrum_and_peaks_equal_pyroomacoustics_normmusic(name, k):
    """Value for value the frequency-normalised MUSIC pseudo-spectrum of
    ``pra.doa.NormMUSIC`` (signal subspace of ``k`` dimensions) over the
    azimuth grid of a planar array and the azimuth x elevation grid of a
    3-D one, and the same peaks, directions and confidences."""
    geometry, dirs, x = _case(name)
    fast = ClassicDoa(geometry, 'normmusic', num_src=k)
    ref = ClassicDoa(geometry, 'normmusic', num_src=k, reference=True)
    assert fast._music is not None and ref._music is None
    np.testing.assert_array_equal(fast.grid, ref.grid)
    v, want = fast.spatial_spectrum(x), ref.spatial_spectrum(x)
    # pyroomacoustics forms I - Es Es^H, whose cancellation leaves ~1e-8 relative
    # where the noise subspace has one dimension (k = 3 of 4 microphones)
    np.testing.assert_allclose(v, want, rtol=1e-9 if k < 3 else 1e-6, atol=1e-12)
    assert np.ptp(want) > 0.1 * np.max(want)  # not a flat map that anything would match
    got, expect = fast.estimate(x, k), ref.estimate(x, k)
    assert [(e.azimuth, e.elevation) for e in got] == [(e.azimuth, e.elevation) for e in expect]
    np.testing.assert_allclose([e.confidence for e in got], [e.confidence for e in expect],
                               rtol=1e-9, atol=1e-12)
    if CASES[name][2] is None and k == 1:   # free field: the peak is the source
        az, el = dirs[0]
        step = 4.0 if geometry.resolves_elevation else 1.0
        assert abs(math.degrees(math.remainder(got[0].azimuth - math.radians(az),
                                               2 * math.pi))) <= 2 * step + 3


def test_scoring_names_pyroomacoustics_normmusic_as_the_baseline():
    geometry = load_array('respeaker4')
    assert make_estimator('normmusic', geometry)._music is not None
    assert make_estimator('normmusic_pra', geometry)._music is None
    assert make_estimator('srp_pra', geometry)._srp is None
