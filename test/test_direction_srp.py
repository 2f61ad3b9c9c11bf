"""The package's vectorised SRP-PHAT (av_perception.direction.srp) against
pyroomacoustics' own: the same power map and the same peaks, on planar and
3-D arrays, in free field and in a reverberant room; and without the per-call
steering that made pyroomacoustics' slow (its CPU time is bench/direction.py's)."""

from __future__ import annotations

import math

import numpy as np
import pyroomacoustics as pra
import pytest

from av_perception.arrays import ArrayGeometry, load_array
from av_perception.direction.classic import ClassicDoa
from av_perception.direction.evaluate import ESTIMATORS, make_estimator

FS = 16000
#: four microphones on the corners of a tetrahedron (8 cm edges' cube): a 3-D array
TETRA = np.array([[0.04, 0.04, 0.04], [0.04, -0.04, -0.04], [-0.04, 0.04, -0.04],
                  [-0.04, -0.04, 0.04]])


def _tetra() -> ArrayGeometry:
    return ArrayGeometry('tetra4', 'mic_array', FS, 'planar', tuple('abcd'), TETRA)


def _unit(az_deg: float, el_deg: float) -> np.ndarray:
    az, el = math.radians(az_deg), math.radians(el_deg)
    return np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])


def _record(geometry: ArrayGeometry, directions: list[tuple[float, float]],
            rt60: float | None, seconds: float = 0.5, seed: int = 0) -> np.ndarray:
    """(channels, frames) of white-noise sources 1.5 m away in the given
    (azimuth, elevation) [deg] directions: in free field (``rt60`` None) or
    in a 6 x 5 x 3 m room with that reverberation time [s]."""
    rng = np.random.default_rng(seed)
    centre = np.array([2.6, 2.1, 1.4])
    if rt60 is None:
        room = pra.AnechoicRoom(3, fs=FS)
        centre = np.zeros(3)
    else:
        absorption, order = pra.inverse_sabine(rt60, [6.0, 5.0, 3.0])
        room = pra.ShoeBox([6.0, 5.0, 3.0], fs=FS, materials=pra.Material(absorption),
                           max_order=min(order, 12))
    for az, el in directions:
        room.add_source(centre + 1.5 * _unit(az, el), signal=rng.normal(size=int(FS * seconds)))
    room.add_microphone_array((centre + geometry.positions).T)
    room.simulate()
    x = room.mic_array.signals[:, 2000:2000 + int(FS * seconds)]
    return x + 1e-3 * rng.normal(size=x.shape)  # a little sensor noise


CASES = {  # array, sources (azimuth, elevation) [deg], RT60 [s]
    'planar_free_field': ('respeaker4', [(40.0, 0.0)], None),
    'planar_room_two_sources': ('respeaker4', [(-120.0, 0.0), (60.0, 0.0)], 0.5),
    '3d_free_field': ('tetra4', [(40.0, 30.0)], None),
    '3d_room_two_sources': ('tetra4', [(150.0, -20.0), (-50.0, 10.0)], 0.4),
}


def _case(name: str) -> tuple[ArrayGeometry, list, np.ndarray]:
    array, dirs, rt60 = CASES[name]
    geometry = _tetra() if array == 'tetra4' else load_array(array)
    return geometry, dirs, _record(geometry, dirs, rt60)


@pytest.mark.parametrize('name', list(CASES))
def test_power_map_equals_pyroomacoustics_srp(name):
    """The vectorised power map is pyroomacoustics' SRP-PHAT map, value for
    value (same PHAT weighting, band, offset and normalisation), over the
    azimuth grid of a planar array and the azimuth x elevation grid of a 3-D one."""
    geometry, _, x = _case(name)
    fast = ClassicDoa(geometry, 'srp')
    ref = ClassicDoa(geometry, 'srp', reference=True)
    assert fast._srp is not None and ref._srp is None
    np.testing.assert_array_equal(fast.grid, ref.grid)
    np.testing.assert_array_equal(fast.grid_elevation, ref.grid_elevation)
    assert fast.grid.size == (360 if not geometry.resolves_elevation else 90 * 18)
    v, want = fast.spatial_spectrum(x), ref.spatial_spectrum(x)
    np.testing.assert_allclose(v, want, rtol=1e-10, atol=0)
    assert np.ptp(want) > 0.05  # not a flat map that anything would match


@pytest.mark.parametrize('name', list(CASES))
@pytest.mark.parametrize('k', [1, 2, 8])
def test_estimates_equal_pyroomacoustics_srp_and_find_the_sources(name, k):
    """The same peaks (num_src 1, 2, 8: weakest first, as pyroomacoustics
    orders them), directions and confidences as pyroomacoustics' SRP-PHAT;
    the strongest are the true sources (within a few grid steps in free
    field, 15 deg in a room)."""
    geometry, dirs, x = _case(name)
    got = ClassicDoa(geometry, 'srp').estimate(x, k)
    want = ClassicDoa(geometry, 'srp', reference=True).estimate(x, k)
    assert [(e.azimuth, e.elevation) for e in got] == [(e.azimuth, e.elevation) for e in want]
    np.testing.assert_allclose([e.confidence for e in got], [e.confidence for e in want],
                               rtol=1e-9, atol=1e-12)
    assert len(got) == min(k, len(want)) and len(got) >= min(k, len(dirs))
    found = got[-len(dirs):] if k >= len(dirs) else got
    step_az, step_el = (4.0, 10.0) if geometry.resolves_elevation else (1.0, 0.0)
    tol_az = 2 * step_az + 3 if CASES[name][2] is None else 15.0
    for e in found:  # each of the strongest peaks is near a true source
        err = min((abs(math.degrees(math.remainder(e.azimuth - math.radians(az), 2 * math.pi))),
                   abs(math.degrees(e.elevation) - el)) for az, el in dirs)
        assert err[0] <= tol_az and err[1] <= step_el, (e, dirs)


@pytest.mark.parametrize('grid', ['circle', 'sphere'])
def test_peak_picking_equals_pyroomacoustics_on_any_map(grid):
    """Local maxima and their order on random maps (many peaks, plateaus of
    equal values) are those of pyroomacoustics' ``grid.find_peaks``."""
    geometry = _tetra() if grid == 'sphere' else load_array('respeaker4')
    fast = ClassicDoa(geometry, 'srp')
    ref_grid = ClassicDoa(geometry, 'srp', reference=True)._doa.grid
    rng = np.random.default_rng(3)
    for trial in range(20):
        values = rng.normal(size=fast.grid.size)
        if trial % 2:
            values = np.round(values, 1)  # plateaus
        ref_grid.set_values(values)
        for k in (1, 3, 8):
            np.testing.assert_array_equal(fast._srp.peaks(values, k),
                                          np.asarray(ref_grid.find_peaks(k)))


def test_teacher_acoustic_image_is_unchanged():
    """The 16-mic acoustic image the direction models are distilled from
    (nfft 512, 300-3500 Hz, 0.256 s windows) is pyroomacoustics' SRP map."""
    geometry = load_array('teacher16')
    x = _record(geometry, [(75.0, 0.0)], 0.3, seconds=0.256)
    kw = {'nfft': 512, 'freq_range': (300.0, 3500.0)}
    np.testing.assert_allclose(ClassicDoa(geometry, 'srp', **kw).spatial_spectrum(x),
                               ClassicDoa(geometry, 'srp', reference=True, **kw)
                               .spatial_spectrum(x), rtol=1e-10, atol=0)


def test_scoring_names_pyroomacoustics_srp_as_the_baseline():
    geometry = load_array('respeaker4')
    assert make_estimator('srp', geometry)._srp is not None
    assert make_estimator('srp_pra', geometry)._srp is None


@pytest.mark.parametrize('array', ['respeaker4', 'tetra4'])
@pytest.mark.parametrize('method', ['srp', 'normmusic'])
def test_a_window_never_recomputes_the_steering(array, method):
    """What made pyroomacoustics' SRP-PHAT and NormMUSIC 10x slower is gone:
    after construction, estimating a 0.5 s window reads neither its steering
    vectors nor its delays (they are held, built once), on the planar 4-mic
    array and on a 4-mic 3-D array's azimuth x elevation grid. (The CPU time
    per window is bench/direction.py's figure, not a test's: 1.0 and 1.9 ms
    per 100 ms chunk against pyroomacoustics' 12 and 10 ms.)"""
    geometry = _tetra() if array == 'tetra4' else load_array(array)
    x = np.random.default_rng(0).normal(size=(4, 8000))
    est = ClassicDoa(geometry, method)
    want = est.estimate(x, 2)

    class Untouchable:
        def __getitem__(self, _):
            raise AssertionError('steering vectors recomputed for a window')

        def __getattr__(self, name):
            raise AssertionError(f'steering {name} read for a window')
    est._doa.mode_vec = Untouchable()
    got = est.estimate(x, 2)
    assert [(e.azimuth, e.elevation, e.confidence) for e in got] == \
        [(e.azimuth, e.elevation, e.confidence) for e in want]


def _bursts(seconds: float, seed: int) -> np.ndarray:
    """Noise bursts of 60 ms every 150 ms, silence between (speech-like onsets)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(FS * seconds))
    return rng.normal(size=len(t)) * ((t % int(0.15 * FS)) < int(0.06 * FS))


@pytest.mark.parametrize('array, source, echo', [
    ('respeaker4', (40.0, 0.0), (-110.0, 0.0)),
    ('tetra4', (40.0, 30.0), (-110.0, -20.0)),   # a 3-D array: azimuth x elevation grid
])
def test_onset_weighting_follows_the_direct_sound_not_a_louder_reflection(array, source, echo):
    """A source and its echo from another direction 25 ms later, 1.6x as
    loud (a hard surface nearer the array than the source): plain SRP-PHAT
    peaks on the echo, the onset-weighted map (the acoustic image's, the
    node's srp_onset) on the source, whose sound arrives first; on a planar
    array and on a 3-D one, in azimuth and elevation (within the 3-D grid's
    10 deg elevation step)."""
    geometry = _tetra() if array == 'tetra4' else load_array(array)
    dry = _bursts(0.6, 3)
    room = pra.AnechoicRoom(3, fs=FS)
    room.add_source(1.5 * _unit(*source), signal=dry)
    room.add_source(1.5 * _unit(*echo), signal=1.6 * dry, delay=0.025)
    room.add_microphone_array(geometry.positions.T)
    room.simulate()
    x = room.mic_array.signals[:, 800:800 + 6400]
    x = x + 1e-4 * np.random.default_rng(1).normal(size=x.shape)

    def off(doa: ClassicDoa, want: tuple[float, float]) -> tuple[float, float]:
        e = doa.estimate(x)[0]
        return (abs((math.degrees(e.azimuth) - want[0] + 180.0) % 360.0 - 180.0),
                abs(math.degrees(e.elevation) - want[1]))

    az_tol, el_tol = (5.0, 10.0) if geometry.resolves_elevation else (5.0, 0.0)
    for doa, want in ((ClassicDoa(geometry, 'srp'), echo),
                      (ClassicDoa(geometry, 'srp', onset=True), source),
                      # the node's and eval's methods are these estimators
                      (make_estimator('srp_onset', geometry), source),
                      (make_estimator('srp', geometry), echo)):
        d_az, d_el = off(doa, want)
        assert d_az < az_tol and d_el <= el_tol, (doa.method, want, d_az, d_el)


def _tone(geometry: ArrayGeometry, az_deg: float, hz: float, frames: int) -> np.ndarray:
    """(channels, frames) of a steady tone from ``az_deg`` 1.5 m away in free
    field, from 2000 samples in (past the simulation's onset)."""
    t = np.arange(2000 + frames) / FS
    room = pra.AnechoicRoom(3, fs=FS)
    room.add_source(1.5 * _unit(az_deg, 0.0), signal=np.sin(2 * np.pi * hz * t))
    room.add_microphone_array(geometry.positions.T)
    room.simulate()
    return room.mic_array.signals[:, 2000:2000 + frames]


def test_onset_weighting_of_a_steady_tone_is_the_plain_map():
    """Nothing rises in a steady tone: the weighted map is the plain one."""
    geometry = load_array('respeaker4')
    x = _tone(geometry, 70.0, 1000.0, 6400)
    plain = ClassicDoa(geometry, 'srp').spatial_spectrum(x)
    weighted = ClassicDoa(geometry, 'srp', onset=True).spatial_spectrum(x)
    np.testing.assert_allclose(weighted, plain, rtol=1e-9)


def test_onset_weighting_is_for_the_packages_srp_and_gcc_only():
    geometry = load_array('respeaker4')
    from av_perception.errors import InputError
    with pytest.raises(InputError, match='onset'):
        ClassicDoa(geometry, 'normmusic', onset=True)
    with pytest.raises(InputError, match='onset'):
        ClassicDoa(geometry, 'srp', onset=True, reference=True)
    assert ClassicDoa(load_array('binaural'), 'gcc', onset=True).onset


def _pair() -> ArrayGeometry:
    """Two free-field microphones 18 cm apart on the y axis (a binaural
    head's spacing without the head): GCC-PHAT's delay -> angle to the axis."""
    return ArrayGeometry('pair18', 'mic_array', FS, 'planar', ('l', 'r'),
                         np.array([[0.0, 0.09, 0.0], [0.0, -0.09, 0.0]]))


def test_onset_weighted_gcc_follows_the_direct_sound_not_a_louder_reflection():
    """Two microphones: a source at 40 deg and its echo from -50 deg 25 ms
    later, 1.6x as loud: GCC-PHAT's delay is the echo's, the onset-weighted
    one's (``gcc_onset``) the source's; on a steady tone nothing rises and
    it is GCC-PHAT's estimate (750 Hz: six periods to the STFT's 128-sample
    hop, so every frame's power is the same)."""
    geometry = _pair()
    dry = _bursts(0.4, 5)
    room = pra.AnechoicRoom(3, fs=FS)
    room.add_source(2.0 * _unit(40.0, 0.0), signal=dry)
    room.add_source(2.0 * _unit(-50.0, 0.0), signal=1.6 * dry, delay=0.025)
    room.add_microphone_array(geometry.positions.T)
    room.simulate()
    x = room.mic_array.signals[:, 800:800 + 4096]
    x = x + 1e-4 * np.random.default_rng(1).normal(size=x.shape)

    def az(doa) -> float:
        return math.degrees(doa.estimate(x)[0].azimuth)
    assert abs(az(make_estimator('gcc', geometry)) - (-50.0)) < 6.0
    assert abs(az(make_estimator('gcc_onset', geometry)) - 40.0) < 6.0
    tone = _tone(geometry, 30.0, 750.0, 4096)
    plain, weighted = (make_estimator(m, geometry).estimate(tone)[0]
                       for m in ('gcc', 'gcc_onset'))
    assert weighted.azimuth == plain.azimuth and weighted.confidence == plain.confidence


@pytest.mark.parametrize('method', ['gcc', 'gcc_onset'])
@pytest.mark.parametrize('side', [1, -1])
def test_gcc_at_the_largest_delay_is_a_source_at_the_side(method, side):
    """Noise bursts reaching one ear 0.9 ms before the other, beyond the
    head's largest modelled delay (0.75 ms): the correlation still rises at
    the end of the searched lags. That end is the peak, a source at the
    side (left: mic 0 first, positive), at the azimuth the head's delay table
    gives the largest searched delay (80 deg), not a block without an
    estimate."""
    head = load_array('binaural')
    lag = round(0.9e-3 * FS)
    dry = _bursts(0.3, 7)
    first, later = dry[lag:], dry[:-lag]
    x = np.stack([first, later] if side > 0 else [later, first])[:, :4096]
    x = x + 1e-4 * np.random.default_rng(2).normal(size=x.shape)
    found = make_estimator(method, head).estimate(x)
    assert found and side * math.degrees(found[0].azimuth) > 75.0, found


def test_eval_offers_every_method_the_node_runs():
    """``eval direction --method`` lists its choices without importing the
    estimators (the parser stays light): they are the node's, ESTIMATORS."""
    import argparse

    from av_perception.cli import build_parser

    def sub(parser, name):
        act = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return act.choices[name]
    direction = sub(sub(build_parser(), 'eval'), 'direction')
    method = next(a for a in direction._actions if a.dest == 'method')
    assert set(method.choices) == set(ESTIMATORS)
    assert direction.parse_args(['--bags', '.', '--method', 'srp_onset']).method == 'srp_onset'
