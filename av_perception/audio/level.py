"""The level of a block of samples: one definition for every gate on it
(the nodes' silence thresholds, the loud windows of training and
estimation)."""

from __future__ import annotations

import numpy as np


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level over all channels and samples [dBFS], full scale +/-1
    (digital silence: -200)."""
    x = np.asarray(samples, np.float64)
    return float(10.0 * np.log10(np.mean(x ** 2) + 1e-20))


__all__ = ['level_dbfs']
