"""NormMUSIC with its steering vectors computed once: the package's NormMUSIC
for arrays of 3+ microphones (``ClassicDoa(method='normmusic')``).

pyroomacoustics 0.10 evaluates NormMUSIC (``pra.doa.NormMUSIC._process``)
by recomputing every steering vector ``exp(1j omega tau)`` over frequency x
microphones x grid on each call (``doa.mode_vec[freq_bins, :, :]``) and the
quadratic form ``a^H (I - Es Es^H) a`` as one small matrix product per
frequency and grid point: about 10 ms per 0.5 s window on the 4-mic array,
over the direction bench's 10 ms budget. No library this package depends on
has it faster, so it is written here (by hand) on pyroomacoustics' own grid,
steering vectors, frequency bins and peak finder, and gives the same
pseudo-spectrum as ``pra.doa.NormMUSIC`` up to floating-point rounding:

- the spatial covariance per frequency, averaged over the block's STFT
  frames: ``R_f = mean_s x_f,s x_f,s^H``;
- its ``k`` leading eigenvectors ``Es`` (the signal subspace, ``k`` the
  number of sources asked for);
- per frequency and grid point ``P_f(n) = 1 / |En^H a|^2`` with ``En``
  the other eigenvectors (the noise subspace): the same as pyroomacoustics'
  ``1 / |a^H (I - Es Es^H) a|``, without the cancellation of forming
  ``I - Es Es^H`` (the two agree to about 1e-8 relative when the noise
  subspace has one dimension, to rounding otherwise); each frequency's
  pseudo-spectrum divided by its maximum over the grid (the frequency
  normalisation of NormMUSIC), then averaged over frequency.

The steering vectors are complex128, F x M x N: 0.7 MB for the 4-mic
array's 1 deg grid over 122 bins.
"""

from __future__ import annotations

import numpy as np
import pyroomacoustics as pra

from av_perception.direction.srp import GridPeaks, band_bins


class NormMusic:
    """NormMUSIC on the grid of a pyroomacoustics DOA object.

    Args:
        doa: a far-field ``pra.doa.NormMUSIC`` (its microphone positions,
            grid, sample rate, FFT size and speed of sound define the
            steering vectors ``doa.mode_vec``).
        freq_range: band [Hz] (``locate_sources``' ``freq_range``).

    Attributes:
        bins: the STFT bins used (F of them).
    """

    def __init__(self, doa: pra.doa.DOA, freq_range: tuple[float, float]) -> None:
        self.bins = band_bins(doa.fs, doa.nfft, freq_range)
        self._steer = np.asarray(doa.mode_vec[self.bins, :, :])       # (F, M, N)
        self._peaks = GridPeaks(doa.grid)

    def power(self, X: np.ndarray, k: int = 1) -> np.ndarray:
        """The frequency-normalised MUSIC pseudo-spectrum over the grid (N,)
        of one block's STFT (M, nfft // 2 + 1, S), with a signal subspace of
        ``k`` dimensions (``pra.doa.NormMUSIC``'s ``num_src``)."""
        Xb = X[:, self.bins, :].transpose(1, 0, 2)                    # (F, M, S)
        cov = np.matmul(Xb, Xb.conj().transpose(0, 2, 1)) / X.shape[2]
        _, vec = np.linalg.eigh(cov)                                  # ascending
        noise = vec[..., :-max(1, int(k))]                            # (F, M, M - k)
        proj = np.matmul(noise.conj().transpose(0, 2, 1), self._steer)    # (F, M - k, N)
        pssl = 1.0 / np.sum(np.abs(proj) ** 2, axis=1)
        pssl /= pssl.max(axis=1, keepdims=True)
        return pssl.mean(axis=0)

    def peaks(self, values: np.ndarray, k: int) -> np.ndarray:
        """The ``k`` highest peaks of ``values``, weakest first
        (``grid.find_peaks``)."""
        return self._peaks(values, k)


__all__ = ['NormMusic']
