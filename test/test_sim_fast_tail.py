"""The vectorised tail synthesis (av_perception.sim.fast_tail) against
pyroomacoustics' own loops: the same impulse trains from the same seed, and
the shared generator left in the same state."""

import numpy as np
import pyroomacoustics
import pytest
from pyroomacoustics import random as pra_random
from pyroomacoustics.simulation import rt

import av_perception.sim.acoustics  # noqa: F401  (installs the fast tail)
from av_perception.sim import fast_tail


def _tail(poisson, directional, seed, volume, duration, taps):
    """Impulse times, impulse train, and the generator's next draw."""
    pra_random.seed(seed)
    t0, times = poisson(volume, duration, 343.0)
    rng = np.random.default_rng(seed)
    response = rng.normal(size=(12, taps))
    hist = rng.random((12, int(duration / 0.004) + 1))
    hist[:, :3] = 0.0                                   # empty bins: the uniform fallback
    seq = directional(t0, times, response, hist, 0.004, 16000)
    return times, seq, pra_random.get_rng().uniform()


def test_installed_for_the_pinned_release():
    assert pyroomacoustics.__version__ == fast_tail.PINNED
    assert rt.poisson_sequence is fast_tail.poisson_sequence
    assert rt.directional_sequence is fast_tail.directional_sequence
    assert rt.interp_hist is fast_tail.interp_hist
    assert set(fast_tail.UPSTREAM) == set(fast_tail.REPLACED)


def test_remembered_histogram_interpolation_is_upstreams():
    """The same result as upstream's for each content, also when a histogram
    comes back after others (and its array cannot be changed by a caller)."""
    rng = np.random.default_rng(4)
    hists = [rng.random(n) for n in (150, 625, 37)] + [rng.random((3, 40))]
    for _ in range(2):
        for h, n_samples in zip(hists, (9600, 40000, 4096, 2600)):
            ours = fast_tail.interp_hist(h.copy(), n_samples)
            assert np.array_equal(ours, fast_tail.UPSTREAM['interp_hist'](h, n_samples))
            assert not ours.flags.writeable
    h = hists[0].copy()
    first = fast_tail.interp_hist(h, 9600)
    h[10] += 1.0  # other content: computed again
    assert not np.array_equal(fast_tail.interp_hist(h, 9600), first)


@pytest.mark.parametrize('volume,duration', [(50.0, 0.6), (20.0, 0.3), (300.0, 1.0),
                                             (50.0, 0.01)])
def test_same_impulses_and_generator_state_as_upstream(volume, duration):
    up = _tail(fast_tail.UPSTREAM['poisson_sequence'],
               fast_tail.UPSTREAM['directional_sequence'], 7, volume, duration, 1)
    ours = _tail(fast_tail.poisson_sequence, fast_tail.directional_sequence, 7, volume,
                 duration, 1)
    assert len(ours[0]) == len(up[0]) > 10
    assert ours[2] == up[2]                              # the next draw: same state
    _same_train(ours, up)


def _same_train(ours, up, atol=0.0):
    """Equal (to ``atol``; bit for bit by default) where log over an array
    equals log of each number (as on the CI machine); else the times within a
    few units in the last place and the same train up to an impulse moved by
    a sample here and there."""
    np.testing.assert_allclose(ours[0], up[0], rtol=1e-14, atol=0)
    if np.array_equal(ours[0], up[0]):
        np.testing.assert_allclose(ours[1], up[1], rtol=0, atol=atol)
    else:
        a, b = ours[1], up[1]
        n = min(len(a), len(b))
        assert abs(len(a) - len(b)) <= 1
        assert np.corrcoef(a[:n], b[:n])[0, 1] > 0.99


def test_multi_tap_responses_match_to_rounding():
    up = _tail(fast_tail.UPSTREAM['poisson_sequence'],
               fast_tail.UPSTREAM['directional_sequence'], 3, 60.0, 0.4, 8)
    ours = _tail(fast_tail.poisson_sequence, fast_tail.directional_sequence, 3, 60.0, 0.4, 8)
    assert ours[2] == up[2]
    _same_train(ours, up, atol=1e-12)                    # taps added in another order


def test_another_release_keeps_its_own_code(monkeypatch):
    monkeypatch.setattr(pyroomacoustics, '__version__', '0.11.0')
    monkeypatch.setattr(rt, 'poisson_sequence', fast_tail.UPSTREAM['poisson_sequence'])
    assert fast_tail.install() is False
    assert rt.poisson_sequence is fast_tail.UPSTREAM['poisson_sequence']
