"""pyroomacoustics' octave-band filter bank with a closed-form analysis (no ROS).

pyroomacoustics splits every impulse response into octave bands with
Antoni's (2010) perfect-reconstruction filter bank
(``AntoniOctaveFilterBank``): ``analysis(x, band=b)`` takes the spectrum of
``x`` zero-padded to ``n_fft = 2 ** ceil(log2(2 len(x)))``, windows the bins
of band b, transforms them to sub-band coefficients and back, and returns the
band's signal. Analysis followed by synthesis is a zero-phase filter: the
spectrum times the squared window ``G_b(k) ** 2``, so the whole round trip is
one real FFT, one product and one inverse real FFT. It is called once per
band (7 at 16 kHz) for every image-source response and every ray-traced tail,
and profiled as about a fifth of a simulated sample, mostly in the round
trip and in rebuilding the same windows on every call.

:class:`OctaveBands` computes the same filter in closed form, with the
windows built once per FFT size, the spectrum of an input reused across
the bands of one signal (pyroomacoustics analyses the same tail sequence
once per band), and its analysis FFTs in single precision (a 2-3 s tail's
FFT of 2 ** 17 points is several times faster so, its arrays fitting the
cache). It agrees with upstream to 1e-6 of the peak (``test_sim_acoustics``),
the precision of the float32 the responses are stored in (pyroomacoustics
builds its image-source responses in float32 too). Everything else is
pyroomacoustics' own class.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
from pyroomacoustics.acoustics import AntoniOctaveFilterBank, magnitude_response_to_minimum_phase

__all__ = ['OctaveBands']


class OctaveBands(AntoniOctaveFilterBank):
    """``AntoniOctaveFilterBank`` with :meth:`analysis` and :meth:`synthesis`
    in closed form (same arguments, same results to rounding)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._gains: dict[int, np.ndarray] = {}
        self._last: tuple | None = None  # (input, its copy, n_fft, spectrum)

    def gains(self, n_fft: int, dtype=np.float64) -> np.ndarray:
        """(n_bands, n_fft // 2 + 1) squared band windows of an ``n_fft`` FFT
        (cached per size and dtype)."""
        g = self._gains.get((n_fft, np.dtype(dtype)))
        if g is None:
            windows, n_freq, *_ = self._make_window_function(n_fft)
            g = np.ascontiguousarray(windows[:, :n_freq] ** 2, dtype=dtype)
            g.setflags(write=False)
            self._gains[(n_fft, np.dtype(dtype))] = g
        return g

    def _spectrum(self, x: np.ndarray, n_fft: int) -> np.ndarray:
        """Single-precision spectrum of x zero-padded to n_fft (the last one
        is remembered, by identity and content)."""
        last = self._last
        if last is not None and last[0] is x and last[2] == n_fft and np.array_equal(x, last[1]):
            return last[3]
        spec = scipy.fft.rfft(x.astype(np.float32), axis=-1, n=n_fft)
        self._last = (x, x.copy(), n_fft, spec)
        return spec

    def analysis(self, x, band=None, oversampling=2):
        """x (..., n) filtered through one band (``band``: (..., n)) or all
        bands (None: (..., n, n_bands)), as upstream's ``analysis``."""
        x = np.asarray(x)
        n = x.shape[-1]
        n_fft = 2 ** math.ceil(math.log2(oversampling * n))
        gains = self.gains(n_fft, np.float32)
        spec = self._spectrum(x, n_fft)

        def one(b: int) -> np.ndarray:
            return scipy.fft.irfft(spec * gains[b], axis=-1, n=n_fft)[..., :n].astype(np.float64)

        if band is None:
            bands = list(range(self.n_bands))
        elif isinstance(band, (int, np.integer)):
            return one(int(band))
        elif isinstance(band, list) and all(isinstance(b, int) for b in band):
            bands = band
        else:
            raise ValueError(f'band should be an int or list of int (got {band}).')
        out = np.stack([one(b) for b in bands], axis=-1)
        return out[..., 0] if out.shape[-1] == 1 else out

    def synthesis(self, band_magnitudes, min_phase=False, filter_length=None, oversampling=2):
        """Filters (..., filter_length) with the given band magnitudes
        (..., n_bands), as upstream's ``synthesis``: a centred unit impulse
        through the bands, each scaled by its magnitude."""
        coeffs = np.asarray(band_magnitudes)
        if filter_length is None:
            filter_length = self.n_fft
        n_fft = 2 ** math.ceil(math.log2(oversampling * filter_length))
        gains = self.gains(n_fft)
        k = np.arange(gains.shape[-1])
        impulse = np.exp(-2j * np.pi * k * (filter_length // 2) / n_fft)  # rfft of the impulse
        ir = np.fft.irfft((coeffs @ gains) * impulse, axis=-1, n=n_fft)[..., :filter_length]
        if min_phase:
            mag_resp = np.abs(np.fft.rfft(ir, axis=-1))
            return magnitude_response_to_minimum_phase(mag_resp, ir.shape[-1], axis=-1,
                                                       eps=1e-7)
        return ir
