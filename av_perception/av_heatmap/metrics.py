"""Localization metrics: for a robot's view, and the paper's.

For a robot's view, where sounding objects cover 0.5-10 % of the image
(the paper's median threshold predicts half of it, so its cIoU cannot reach
0.5 unless the object covers a quarter of the image):

- ``pointing``: the map's peak (argmax at image size) falls inside the
  mask dilated by ``width / 32`` pixels (:func:`pointing`);
- ``pixel_auc``: area under the ROC curve of the map's values as a
  classifier of the mask's pixels (ties count half; :func:`pixel_auc`);
- ``size_ciou``: cIoU with the predicted region = the top-|G| pixels of the
  map, |G| the object's size (:func:`size_ciou`).

The paper's, computed as its public evaluation code does
(SSLalignment ``test.py`` / ``utils.py``), for close-ups:

- the map is resized to the image (bilinear), min-max normalised, and
  thresholded at its median: the predicted region P is the pixels strictly
  above ``sorted(map)[H * W // 2]``;
- per sample cIoU = |P ∩ G| / (|G| + |P \\ G|), G the ground-truth mask;
- ``ciou`` = share of samples with cIoU >= 0.5; ``auc`` = area (trapezoids)
  under the share of samples with cIoU >= t for t = 0, 0.05, ..., 1;
- retrieval: recall at 1/5/10 of the true partner among the candidates,
  audio -> image and image -> audio, by global-embedding similarity.
"""

from __future__ import annotations

import numpy as np

from av_perception.errors import InputError

THRESHOLDS = np.linspace(0.0, 1.0, 21)


def resize_map(heatmap: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize (OpenCV, as the paper's code) to (height, width), float32."""
    import cv2
    h = np.asarray(heatmap, np.float32)
    if h.shape == (height, width):
        return h
    return cv2.resize(h, (width, height), interpolation=cv2.INTER_LINEAR)


def min_max(x: np.ndarray) -> np.ndarray:
    """(x - min) / (max - min); a constant map is returned unchanged."""
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else x


def predicted_region(heatmap: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """P: the map resized to ``shape``, min-max normalised, strictly above its median
    (the value at index H*W // 2 of the sorted map, as the paper's code)."""
    m = min_max(resize_map(heatmap, *shape))
    thr = np.sort(m.ravel())[m.size // 2]
    return m > thr


def ciou(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """Per-sample cIoU of a heatmap (any size) against a boolean mask.

    Raises:
        InputError: an empty mask (nothing to localise: not scored).
    """
    g = _mask(mask)
    p = predicted_region(heatmap, g.shape)
    return float((p & g).sum() / (g.sum() + (p & ~g).sum()))


def _mask(mask) -> np.ndarray:
    g = np.asarray(mask, bool)
    if not g.any():
        raise InputError('mask', 'a non-empty ground-truth mask', 'an empty one')
    return g


def peak(heatmap: np.ndarray, shape: tuple[int, int]) -> tuple[int, int]:
    """(row, col) [px] of the map's maximum once resized to ``shape`` (the
    first in row-major order on ties)."""
    m = resize_map(heatmap, *shape)
    r, c = np.unravel_index(int(np.argmax(m)), m.shape)
    return int(r), int(c)


def pointing(heatmap: np.ndarray, mask: np.ndarray, tolerance: float | None = None) -> bool:
    """True if the map's peak lies within ``tolerance`` pixels (Euclidean;
    default the mask's width / 32) of the mask.

    Raises:
        InputError: an empty mask.
    """
    from scipy.ndimage import distance_transform_edt
    g = _mask(mask)
    tol = g.shape[1] / 32.0 if tolerance is None else float(tolerance)
    r, c = peak(heatmap, g.shape)
    if g[r, c]:
        return True
    return bool(distance_transform_edt(~g)[r, c] <= tol)


def pixel_auc(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """AUC-ROC of the map (resized to the mask) as a score of each pixel
    being on the object: the probability that a random object pixel scores
    above a random background pixel, ties counting half (0.5: no better than
    chance; a constant map scores 0.5). A mask covering the whole image
    scores 1.

    Raises:
        InputError: an empty mask.
    """
    from scipy.stats import rankdata
    g = _mask(mask)
    n_pos, n_neg = int(g.sum()), int(g.size - g.sum())
    if n_neg == 0:
        return 1.0
    ranks = rankdata(resize_map(heatmap, *g.shape).ravel(), method='average')
    u = ranks[g.ravel()].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def size_ciou(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """cIoU with the predicted region P = the pixels at or above the map's
    |G|-th highest value (resized to the mask): a region of the object's
    size, more where values tie at the threshold (a flat map predicts the
    whole image); cIoU = |P ∩ G| / (|G| + |P \\ G|).

    Raises:
        InputError: an empty mask.
    """
    g = _mask(mask)
    m = resize_map(heatmap, *g.shape)
    k = int(g.sum())
    thr = np.partition(m.ravel(), m.size - k)[m.size - k]
    p = m >= thr
    return float((p & g).sum() / (g.sum() + (p & ~g).sum()))


def success_rate(cious) -> float:
    """The paper's ``ciou``: share of samples with cIoU >= 0.5."""
    c = np.asarray(cious, float)
    return float((c >= 0.5).mean()) if c.size else float('nan')


def auc(cious) -> float:
    """Area under the success-rate curve over thresholds 0..1 step 0.05
    (trapezoids, as sklearn.metrics.auc)."""
    c = np.asarray(cious, float)
    if not c.size:
        return float('nan')
    rates = np.array([(c >= t).mean() for t in THRESHOLDS])
    return float(np.sum((rates[1:] + rates[:-1]) / 2 * np.diff(THRESHOLDS)))


def recall_at(sim: np.ndarray, ks=(1, 5, 10)) -> dict[int, float]:
    """Recall@k of row i's partner (column i) in a square similarity matrix
    (rank = how many candidates score strictly higher, + 1)."""
    s = np.asarray(sim, float)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise InputError('similarity', 'a square matrix', f'shape {s.shape}')
    rank = (s > np.diag(s)[:, None]).sum(axis=1) + 1
    return {k: float((rank <= k).mean()) for k in ks}


def retrieval(audio_emb: np.ndarray, image_emb: np.ndarray, candidates: int = 100,
              draws: int = 10, seed: int = 0) -> dict[str, float]:
    """R@1/5/10 audio -> image and image -> audio among ``candidates``
    samples (the true partner and candidates - 1 others), averaged over
    ``draws`` random sets of candidates (all samples if there are fewer),
    by the similarity of the global embeddings."""
    a, v = np.asarray(audio_emb, float), np.asarray(image_emb, float)
    return retrieval_from_similarity(a @ v.T, candidates, draws, seed)


def retrieval_from_similarity(sim: np.ndarray, candidates: int = 100, draws: int = 10,
                              seed: int = 0) -> dict[str, float]:
    """:func:`retrieval` from any (N, N) audio x image score matrix (row i:
    audio i; column i: its partner), with the same draws of candidates."""
    s_all = np.asarray(sim, float)
    if s_all.ndim != 2 or s_all.shape[0] != s_all.shape[1]:
        raise InputError('similarity', 'a square matrix', f'shape {s_all.shape}')
    n = len(s_all)
    rng = np.random.default_rng(seed)
    sets = [np.arange(n)] if n <= candidates else \
        [rng.choice(n, candidates, replace=False) for _ in range(draws)]
    acc: dict[str, list] = {}
    for idx in sets:
        s = s_all[np.ix_(idx, idx)]
        for name, m in (('a2i', s), ('i2a', s.T)):
            for k, r in recall_at(m).items():
                acc.setdefault(f'r{k}_{name}', []).append(r)
    out = {k: float(np.mean(v)) for k, v in acc.items()}
    out['candidates'] = int(min(n, candidates))
    return out


def random_map(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """The random baseline: independent uniform values per pixel (its peak
    is a uniformly random point; its pixel AUC about 0.5)."""
    return rng.random((height, width)).astype(np.float32)


def center_prior(height: int, width: int, sigma: float = 0.25) -> np.ndarray:
    """The centre-prior baseline: a Gaussian centred in the image, standard
    deviation ``sigma`` of the image's size."""
    y = (np.arange(height) + 0.5) / height - 0.5
    x = (np.arange(width) + 0.5) / width - 0.5
    return np.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma ** 2)).astype(np.float32)
