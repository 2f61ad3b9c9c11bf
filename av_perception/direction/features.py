"""The audio front end for direction of arrival: one STFT, used by the
classic methods, the learned model's training and the node alike."""

from __future__ import annotations

import numpy as np
from scipy.signal import stft as _stft


def stft(samples: np.ndarray, nfft: int = 512, hop: int | None = None) -> np.ndarray:
    """(channels, frames) -> complex STFT (channels, nfft // 2 + 1, blocks),
    Hann window, hop nfft / 2 (the layout pyroomacoustics' DOA expects)."""
    hop = hop or nfft // 2
    _, _, X = _stft(np.asarray(samples, np.float64), nperseg=nfft, noverlap=nfft - hop,
                    window='hann', boundary=None, padded=False, axis=-1)
    return X
