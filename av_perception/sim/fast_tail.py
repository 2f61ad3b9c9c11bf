"""Vectorised drop-ins for the two Python loops of pyroomacoustics' ray-traced
tail synthesis, and a memo of its histogram interpolation (no ROS).

pyroomacoustics builds the late tail of every (source, microphone) impulse
response from a Poisson train of signed impulses
(``simulation.rt.poisson_sequence``) placed one by one
(``simulation.rt.directional_sequence``, marked "TODO: vectorize or port to
C++" upstream). Both loops run in Python, one iteration per impulse (up to
10,000 per second of tail), and profiled as 37 % of a simulated sample with
every stream (4.0 s + 4.4 s of 23 s for 8 samples, one process). No
maintained library offers a faster version, so these two functions are
written here; everything else stays pyroomacoustics'.

They are exact replacements for the pinned release (:data:`PINNED`):

- the same random draws in the same order, leaving the generator in the same
  state, so the rest of a simulation draws exactly what it drew before;
- the same arithmetic in the same order (the impulse times are accumulated
  one after another, as the loop does). The one difference is ``log`` over
  an array instead of one number at a time; on this machine the two agree
  bit for bit, so rendered slots are byte-identical to upstream's. Where
  numpy vectorises ``log`` differently they may differ in the last place,
  which can move an impulse by one sample at a rounding boundary;
  ``test_sim_fast_tail`` bounds that.

:func:`install` patches them into ``pyroomacoustics.simulation.rt`` only for
that release; another version keeps its own code (and is as slow as before).

Both functions follow pyroomacoustics' ``simulation/rt.py`` step for step
(only the loops are rewritten), so they carry its licence: MIT,
Copyright (c) 2014-2017 EPFL-LCAV (the full text ships with pyroomacoustics,
``pyroomacoustics-0.10.1.dist-info/licenses/LICENSE``).
"""

from __future__ import annotations

import numpy as np

#: The pyroomacoustics release whose loops these reproduce.
PINNED = '0.10.1'

#: pyroomacoustics' own functions, kept by :func:`install`.
UPSTREAM: dict = {}


def poisson_sequence(volume, duration, c, max_rate=10000, t0=None):
    """Arrival times of the tail's impulses: a Poisson process whose rate
    grows as 4 pi c^3 t^2 / V up to ``max_rate`` [1/s] (pyroomacoustics'
    ``poisson_sequence``, same signature, draws and result).

    While the rate grows, each gap depends on the time reached, so that part
    stays a loop (about a hundred impulses in a room); once the rate is
    capped the gaps are i.i.d. and are drawn as one array.
    """
    from pyroomacoustics import random as pra_random

    rng = pra_random.get_rng()
    fpcv = 4 * np.pi * c ** 3 / volume
    if t0 is None:
        t0 = ((2 * np.log(2)) / fpcv) ** (1.0 / 3.0)
    end = t0 + duration
    times = [t0]
    # the growing part, exactly as upstream (note its rate at t0 + t)
    while times[-1] < end and fpcv * (t0 + times[-1]) ** 2 < max_rate:
        z = rng.uniform()
        mu = np.minimum(fpcv * (t0 + times[-1]) ** 2, max_rate)
        times.append(times[-1] + np.log(1 / z) / mu)
    out = [np.asarray(times)]
    last = times[-1]
    while last < end:
        # draw more gaps than needed, then rewind the generator and draw
        # exactly as many as the loop would have (one per impulse appended,
        # including the first one past the end)
        n = int((end - last) * max_rate * 1.2) + 64
        state = rng.bit_generator.state
        z = rng.uniform(size=n)
        acc = np.cumsum(np.concatenate([[last], np.log(1 / z) / max_rate]))[1:]
        past = np.flatnonzero(acc >= end)
        k = int(past[0]) + 1 if past.size else n
        if k < n:
            rng.bit_generator.state = state
            rng.uniform(size=k)
        out.append(acc[:k])
        last = float(acc[k - 1])
    return t0, np.concatenate(out)


def directional_sequence(t0, times, response, hist, hist_bin_size, fs):
    """The signed impulse train of the tail, each impulse through a response
    drawn from the direction histogram and scaled to unit local energy
    (pyroomacoustics' ``directional_sequence``, same signature, draws and
    result): the draws are upstream's; the placement loop is one scatter-add
    per response tap instead of one Python step per impulse."""
    from pyroomacoustics import random as pra_random
    from pyroomacoustics.simulation.rt import binary_sequence, seq_rolling_power

    rng = pra_random.get_rng()
    seq_bp = binary_sequence(times, fs)
    seq_power = seq_rolling_power(seq_bp, int(hist_bin_size * fs), filter_length_mult=2)
    nonzero = seq_power > 1e-10
    seq_power_norm = np.where(nonzero, 1.0 / np.where(nonzero, seq_power, 1.0), 0.0)
    indices = (times * fs).astype(np.int64)
    bins = np.floor((times - t0) / hist_bin_size).astype(np.int64)
    bins = np.minimum(bins, hist.shape[-1] - 1)
    cumul_hist = np.cumsum(hist, axis=0)
    cumul_uniform = np.cumsum(np.ones((cumul_hist.shape[0], 1)), axis=0)
    mask = cumul_hist[[-1], :] > 1e-10
    denom = np.where(mask, cumul_hist[[-1], :], cumul_uniform[[-1], :])
    cdf = np.where(mask, cumul_hist, cumul_uniform) / denom
    cdf_per_delta = cdf[:, bins]
    z = rng.uniform(size=bins.shape[0])
    r_ind = np.sum(z[None, :] > cdf_per_delta, axis=0)
    chosen_response = response[r_ind, :]
    signs = rng.choice([1, -1], size=len(indices))
    seq = np.zeros(indices[-1] + response.shape[1] + 1)
    # upstream: for each impulse i, seq[i:i + taps] += sign * taps * sqrt(norm[i]);
    # np.add.at adds repeated indices in impulse order, as that loop does
    contrib = (signs[:, None] * chosen_response) * np.sqrt(seq_power_norm[indices])[:, None]
    for j in range(response.shape[1]):
        np.add.at(seq, indices + j, contrib[:, j])
    return seq


#: Interpolated histograms kept by :func:`interp_hist` (newest last).
_INTERP_CACHE: dict = {}
_INTERP_CACHE_SIZE = 64


def interp_hist(hist, N):
    """pyroomacoustics' ``interp_hist`` (a band's energy histogram
    interpolated to N samples), remembered by content: every microphone that
    shares a ray-tracing receiver (av_perception.sim.acoustics) has the same
    histograms, and upstream interpolates them again for each microphone and
    band (a scipy ``interp1d`` per call, 40 % of the tail synthesis of 2-3 s
    tails). Returns upstream's array (read-only), computed once per content."""
    hist = np.asarray(hist)
    key = (int(N), hist.shape, hist.dtype.str, hist.tobytes())
    out = _INTERP_CACHE.pop(key, None)
    if out is None:
        out = UPSTREAM['interp_hist'](hist, N)
        out.setflags(write=False)
        if len(_INTERP_CACHE) >= _INTERP_CACHE_SIZE:
            _INTERP_CACHE.pop(next(iter(_INTERP_CACHE)))
    _INTERP_CACHE[key] = out
    return out


#: The functions :func:`install` puts into ``pyroomacoustics.simulation.rt``.
REPLACED = ('poisson_sequence', 'directional_sequence', 'interp_hist')


def install() -> bool:
    """Use these functions in pyroomacoustics' tail synthesis if its version
    is :data:`PINNED`; returns whether they were installed."""
    import pyroomacoustics
    from pyroomacoustics.simulation import rt

    if pyroomacoustics.__version__ != PINNED:
        return False
    for name in REPLACED:
        fn = getattr(rt, name)
        if fn is not globals()[name]:
            UPSTREAM.setdefault(name, fn)
        setattr(rt, name, globals()[name])
    return True


__all__ = ['PINNED', 'REPLACED', 'UPSTREAM', 'directional_sequence', 'install', 'interp_hist',
           'poisson_sequence']
