"""How sure a benchmark's ratio is: a paired bootstrap interval, shared by
the benches that compare two methods scored on the same samples."""

from __future__ import annotations

import numpy as np


def paired_ratio_ci(a: list, b: list, draws: int = 2000, seed: int = 0,
                    stat=np.median, groups: list | None = None) -> list | None:
    """95 % interval of stat(a) / stat(b) (median errors, mean pointing) over
    samples resampled together (both methods scored on the same samples, in
    the same order); None if the lists differ in length or are empty.
    ``groups`` (one label per sample, e.g. its room): resample whole groups
    instead, since samples of one room are not independent of each other
    (an interval over samples would then be too narrow)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size != b.size or a.size == 0:
        return None
    rng = np.random.default_rng(seed)
    if groups is None:
        idx = rng.integers(0, a.size, (draws, a.size))
        r = stat(a[idx], axis=1) / np.maximum(stat(b[idx], axis=1), 1e-9)
    else:
        labels = np.asarray(groups)
        if labels.size != a.size:
            return None
        members = [np.flatnonzero(labels == g) for g in np.unique(labels)]
        r = np.empty(draws)
        for k in range(draws):
            picked = rng.integers(0, len(members), len(members))
            idx = np.concatenate([members[i] for i in picked])
            r[k] = stat(a[idx]) / max(stat(b[idx]), 1e-9)
    return [round(float(q), 3) for q in np.quantile(r, (0.025, 0.975))]
