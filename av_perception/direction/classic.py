"""Classic direction of arrival: SRP-PHAT and NormMUSIC for arrays of 3+
microphones, each on pyroomacoustics' grid with its steering computed once
(:mod:`av_perception.direction.srp`, :mod:`av_perception.direction.normmusic`),
GCC-PHAT for two.

Angles follow REP 103 in the array frame: azimuth counter-clockwise from +x
[rad], elevation above the x-y plane: estimated on an azimuth x elevation
grid (4 x 10 deg) where the microphones span 3-D space, 0 for planar arrays
(which cannot tell up from down). Two-microphone arrays (and binaural heads) cannot tell front
from back: their azimuths are folded into the front half-plane (|az| <= 90
deg) and flagged ``front_back_ambiguous``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyroomacoustics as pra

from av_perception.arrays import ArrayGeometry
from av_perception.direction.features import stft
from av_perception.direction.normmusic import NormMusic
from av_perception.direction.srp import (SrpPhat, has_onsets, onset_weights,
                                         weighted_cross_spectra)
from av_perception.errors import InputError

C = 343.0
METHODS = ('srp', 'normmusic', 'gcc')
#: GCC-PHAT-beta's exponent (here and in the learned models' features): beta < 1
#: keeps some of the spectrum's magnitude, so noise-only bins do not count as much
#: as the source's; robust in reverb
PHAT_BETA = 0.7
#: frames [STFT hops] an onset-weighted SRP-PHAT measures each bin's rise
#: against (``ClassicDoa(onset=True)``): 3 hops of 8 ms at 16 kHz, nfft 256
ONSET_HISTORY = 3
#: Elevation grid step of 3-D arrays [deg].
ELEVATION_STEP_DEG = 10.0


@dataclass
class DoaEstimate:
    """One source's direction in the array frame.

    Attributes:
        azimuth: rad, CCW from +x, in (-pi, pi].
        elevation: rad (0 where the geometry cannot resolve it).
        confidence: [0, 1]: how much the peak stands above the spatial
            spectrum's median (0: a flat spectrum, 1: a single sharp peak).
        front_back_ambiguous: True for 2-mic / binaural arrays.
    """

    azimuth: float
    elevation: float
    confidence: float
    front_back_ambiguous: bool


def wrap(a: float) -> float:
    """Angle into (-pi, pi]."""
    return float(-((-a + math.pi) % (2 * math.pi) - math.pi))


def fold_front(az: float) -> float:
    """Mirror an azimuth into the front half-plane across the y axis."""
    az = wrap(az)
    if az > math.pi / 2:
        return math.pi - az
    if az < -math.pi / 2:
        return -math.pi - az
    return az


def _peak_confidence(values: np.ndarray, peak: float) -> float:
    """How far the peak stands above the spectrum's median, as a share of
    the spectrum's range: 0 for a flat spectrum, near 1 for one sharp peak
    (independent of the spectrum's offset, which is large for SRP-PHAT)."""
    med, low = float(np.median(values)), float(np.min(values))
    return float(np.clip((peak - med) / (peak - low + 1e-12), 0.0, 1.0))


class ClassicDoa:
    """Direction of arrival of up to ``num_src`` sources in one block of audio.

    Args:
        geometry: the array (positions in its frame, sample rate).
        method: 'srp' (SRP-PHAT), 'normmusic' or 'gcc' (two microphones only).
        nfft: STFT size [samples] (256 at 16 kHz: 16 ms frames, 31 Hz bins).
        freq_range: band used [Hz]; default 300 Hz to 7.9 kHz (or 0.49 of the
            sample rate): the wide band keeps SRP-PHAT and NormMUSIC sharp on
            a 4-cm array despite spatial aliasing above ~3.7 kHz (bench/direction:
            median error 4.8 deg vs 11.5 with 300-3500 Hz); 200-1500 Hz for
            a binaural head (where interaural phase gives a reliable delay).
        grid_deg: azimuth grid step [deg] (at least 4 for 3-D arrays, whose
            grid also spans elevation).
        reference: run pyroomacoustics' own SRP-PHAT or NormMUSIC (they
            recompute the steering on every call: about 10x the CPU time)
            instead of the package's (:mod:`av_perception.direction.srp`,
            :mod:`av_perception.direction.normmusic`), which give the same
            maps; the baselines of bench/direction and the tests.
        onset: weight SRP-PHAT's time-frequency bins by their onsets
            (:data:`ONSET_HISTORY` frames back; :mod:`av_perception.direction.srp`):
            the acoustic image's map, whose peak follows the direct sound
            rather than a strong reflection; for GCC-PHAT the same weighting
            of the ``nfft`` frames' cross-spectra, summed (a block without
            any onset, e.g. a steady tone: plain GCC-PHAT). Not with
            ``reference`` or NormMUSIC (pyroomacoustics has no such weighting).
    """

    def __init__(self, geometry: ArrayGeometry, method: str = 'srp', nfft: int = 256,
                 freq_range: tuple[float, float] | None = None, grid_deg: float = 1.0,
                 num_src: int = 1, reference: bool = False, onset: bool = False) -> None:
        if method not in METHODS:
            raise InputError('method', f'one of {METHODS}', repr(method))
        if onset and (method not in ('srp', 'gcc') or reference):
            raise InputError('onset', "method 'srp' (the package's, not reference) or 'gcc'",
                             f'method {method!r}, reference {reference}')
        if method == 'gcc' and geometry.channels != 2:
            raise InputError('method', 'gcc for a 2-microphone array',
                             f'{geometry.channels} microphones')
        if method != 'gcc' and geometry.channels < 3:
            raise InputError('method', "'gcc' for a 2-microphone array (srp/normmusic "
                             'need 3+ microphones)', repr(method))
        self.geometry = geometry
        self.method = method
        self.nfft = nfft
        self.onset = bool(onset)
        self.freq_range = freq_range or (
            (200.0, 1500.0) if geometry.kind == 'binaural'
            else (300.0, min(7900.0, 0.49 * geometry.sample_rate)))
        self.num_src = num_src
        self.ambiguous = geometry.front_back_ambiguous
        fs = geometry.sample_rate
        self.elevation = geometry.resolves_elevation and method != 'gcc'
        self._srp: SrpPhat | None = None
        self._music: NormMusic | None = None
        if method != 'gcc':
            cls = pra.doa.algorithms['SRP' if method == 'srp' else 'NormMUSIC']
            if self.elevation:  # a 3-D array: azimuth x elevation grid (poles left out)
                step = max(grid_deg, 4.0)
                az = np.linspace(-np.pi, np.pi, int(round(360 / step)), endpoint=False)
                col = np.radians(np.arange(ELEVATION_STEP_DEG / 2, 180.0, ELEVATION_STEP_DEG))
                self._doa = cls(geometry.positions.T, fs, nfft, c=C, num_src=num_src,
                                azimuth=az, colatitude=col, dim=3)
                self.grid = np.asarray(self._doa.grid.azimuth, float)
                self.grid_elevation = np.pi / 2 - np.asarray(self._doa.grid.colatitude, float)
            else:
                n = int(round(360 / grid_deg))
                self.grid = np.linspace(-np.pi, np.pi, n, endpoint=False)
                self.grid_elevation = np.zeros_like(self.grid)
                self._doa = cls(geometry.positions.T, fs, nfft, c=C, num_src=num_src,
                                azimuth=self.grid, dim=2)
            if method == 'srp' and not reference:
                # SRP-PHAT as one matrix product on pyroomacoustics' grid and delays
                self._srp = SrpPhat(self._doa, self.freq_range,
                                    ONSET_HISTORY if onset else 0)
            elif method == 'normmusic' and not reference:
                # NormMUSIC with pyroomacoustics' steering vectors computed once
                self._music = NormMusic(self._doa, self.freq_range)

    def _spectrum(self, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The method's power over the grid and the indices of its ``k``
        highest peaks (weakest first) for one block's STFT (M, bins, frames)."""
        if self._srp is not None:
            values = self._srp.power(X)
            return values, self._srp.peaks(values, k)
        if self._music is not None:
            values = self._music.power(X, k)
            return values, self._music.peaks(values, k)
        self._doa.locate_sources(X, num_src=k, freq_range=list(self.freq_range))
        return np.asarray(self._doa.grid.values, float), np.atleast_1d(self._doa.src_idx)

    def spatial_spectrum(self, samples: np.ndarray) -> np.ndarray:
        """The method's power over the grid (``self.grid``, ``self.grid_elevation``)
        for one block (channels, frames); SRP-PHAT's is the acoustic image."""
        return self._spectrum(stft(samples, self.nfft), self.num_src)[0]

    def estimate(self, samples: np.ndarray, num_src: int | None = None) -> list[DoaEstimate]:
        """Directions of the strongest sources in a block (channels, frames)."""
        samples = np.asarray(samples, np.float64)
        if samples.ndim != 2 or samples.shape[0] != self.geometry.channels:
            raise InputError('channels', f'({self.geometry.channels}, frames) samples',
                             f'shape {samples.shape}')
        if samples.shape[1] < self.nfft:
            raise InputError('length', f'at least {self.nfft} frames', str(samples.shape[1]))
        k = num_src or self.num_src
        if self.method == 'gcc':
            return self._gcc(samples, k)
        values, peaks = self._spectrum(stft(samples, self.nfft), k)
        out = []
        for idx in peaks[:k]:
            az = wrap(float(self.grid[idx]))
            if self.ambiguous:
                az = fold_front(az)
            out.append(DoaEstimate(az, float(self.grid_elevation[idx]),
                                   _peak_confidence(values, float(values[idx])), self.ambiguous))
        return out

    def _onset_cross(self, samples: np.ndarray) -> np.ndarray | None:
        """GCC-PHAT's cross-spectrum over the block's ``nfft`` frames, each
        time-frequency bin's PHAT-beta cross-spectrum weighted by its onset
        (:func:`~av_perception.direction.srp.onset_weights`, the acoustic
        image's weighting) and summed: the direct sound, which arrives first,
        sets the delay rather than a louder reflection. None where nothing
        rises (a steady tone): the caller uses the plain cross-spectrum."""
        X = stft(samples, self.nfft)                           # (2, nfft // 2 + 1, frames)
        freqs = np.fft.rfftfreq(self.nfft, 1 / self.geometry.sample_rate)
        band = (freqs >= self.freq_range[0]) & (freqs <= self.freq_range[1])
        w = onset_weights((np.abs(X[:, band]) ** 2).sum(axis=0), ONSET_HISTORY)
        if not has_onsets(w):
            return None
        return weighted_cross_spectra(X, band, [(0, 1)], w, PHAT_BETA)[0]

    def _gcc(self, samples: np.ndarray, k: int) -> list[DoaEstimate]:
        """GCC-PHAT between the two microphones (written here: pyroomacoustics
        has no two-microphone TDOA estimator). The delay gives the angle to the
        microphone axis; the azimuth is folded into the front half-plane."""
        p0, p1 = self.geometry.positions
        axis = (p1 - p0)[:2]
        d = float(np.linalg.norm(axis))
        fs = self.geometry.sample_rate
        up = 8  # interpolation of the cross-correlation
        cross = self._onset_cross(samples) if self.onset else None
        if cross is None:   # the whole block's cross-spectrum: one frame, unweighted
            n = 2 * samples.shape[1]
            freqs = np.fft.rfftfreq(n, 1 / fs)
            band = (freqs >= self.freq_range[0]) & (freqs <= self.freq_range[1])
            cross = weighted_cross_spectra(np.fft.rfft(samples, n, axis=1)[:, :, None], band,
                                           [(0, 1)], None, PHAT_BETA)[0]
        else:
            n = self.nfft
        r = np.fft.irfft(cross, n * up)
        binaural = self.geometry.kind == 'binaural'
        r_head = self.geometry.head_radius or d / 2
        # a head's diffraction makes interaural delays longer than d / c
        # (Woodworth: tau = r / c * (theta + sin theta), theta the lateral angle)
        max_tau = r_head / C * (math.pi / 2 + 1) if binaural else d / C
        max_lag = int(math.ceil(max_tau * fs * up)) + 1
        r = np.concatenate([r[-max_lag:], r[:max_lag + 1]])
        lags = np.arange(-max_lag, max_lag + 1)
        # local maxima, the window's ends included: a correlation still rising
        # at the largest possible delay is a source at the side (before
        # 2026-12-07 the ends were left out, and such a block, 2 % of the
        # rotation bench's segments, gave no estimate at all)
        padded = np.concatenate([[-np.inf], r, [-np.inf]])
        peaks = [i for i in range(len(r)) if padded[i + 1] >= padded[i]
                 and padded[i + 1] >= padded[i + 2]]
        peaks = sorted(peaks, key=lambda i: r[i], reverse=True)[:k]
        alpha = math.atan2(axis[1], axis[0])
        grid = np.linspace(-math.pi / 2, math.pi / 2, 1801)
        woodworth = r_head / C * (grid + np.sin(grid))
        out = []
        for i in peaks:
            tau = lags[i] / (fs * up)  # arrival at mic 1 minus arrival at mic 0 [s]
            if binaural and self.geometry.itd_table is not None:  # measured on the head
                table = self.geometry.itd_table
                az = math.copysign(float(np.interp(abs(tau), table[:, 1], table[:, 0])), tau)
            elif binaural:  # mic 0 left, mic 1 right: tau > 0 for a source on the left
                az = float(np.interp(tau, woodworth, grid))
            else:
                cos_t = float(np.clip(-C * tau / d, -1.0, 1.0))
                az = fold_front(alpha + math.acos(cos_t))  # acos: angle to the axis p0 -> p1
            out.append(DoaEstimate(az, 0.0, _peak_confidence(r, float(r[i])), True))
        return out
