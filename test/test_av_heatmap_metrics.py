"""The paper's metrics on hand-made heatmaps whose cIoU is known, and the
retrieval recall on hand-made similarities."""

from __future__ import annotations

import numpy as np
import pytest

from av_perception.av_heatmap import metrics
from av_perception.errors import InputError


def _mask(h, w, rows, cols):
    m = np.zeros((h, w), bool)
    m[rows, cols] = True
    return m


def test_ciou_of_a_map_whose_upper_half_is_hot():
    # map: 1 on the top half, 0 below -> median value 1 (index H*W//2 of the sorted
    # map) -> P = pixels > 1 = none... so use a ramp: P = strictly above the median
    h = w = 8
    heat = np.zeros((h, w))
    heat[:4] = 1.0
    heat[:4, :] += np.arange(w)[None] * 1e-3  # distinct values on the hot half
    # sorted values: 32 zeros, then the 32 hot values; threshold = sorted[32] = the
    # smallest hot value (column 0 of rows 0-3); P = hot pixels in columns 1..7
    p = metrics.predicted_region(heat, (h, w))
    assert p.sum() == 28 and not p[:, 0].any() and not p[4:].any()
    g = _mask(h, w, slice(0, 4), slice(0, 8))          # G = the whole top half (32 px)
    # |P n G| = 28, |G| = 32, |P \ G| = 0 -> 28 / 32
    assert metrics.ciou(heat, g) == pytest.approx(28 / 32)
    g2 = _mask(h, w, slice(0, 2), slice(0, 8))         # G = rows 0-1 (16 px)
    # |P n G| = 14, |P \ G| = 14 -> 14 / (16 + 14)
    assert metrics.ciou(heat, g2) == pytest.approx(14 / 30)


def test_ciou_resizes_the_map_to_the_mask_and_is_scale_free():
    # a 2x2 map, hot on the left column, scored against a 16x16 mask of the left half
    heat = np.array([[1.0, 0.0], [1.0, 0.0]])
    g = _mask(16, 16, slice(None), slice(0, 8))
    c = metrics.ciou(heat, g)
    # bilinear upsampling (half-pixel centres): columns 0-3 are 1, then 0.9375,
    # 0.8125, ... 0.0625 for columns 4-11, 0 for 12-15; the value at index 128 of
    # the sorted map is column 7's (0.5625), so P = columns 0-6: 112 of G's 128 px
    assert c == pytest.approx(112 / 128)
    assert metrics.ciou(heat * 7 + 3, g) == pytest.approx(c)   # min-max normalised
    assert metrics.ciou(1 - heat, g) == 0.0                     # all of P outside G


def test_flat_map_predicts_nothing_and_empty_mask_is_refused():
    g = _mask(8, 8, slice(0, 4), slice(0, 4))
    assert metrics.ciou(np.ones((8, 8)), g) == 0.0   # nothing strictly above the median
    with pytest.raises(InputError, match='non-empty'):
        metrics.ciou(np.ones((8, 8)), np.zeros((8, 8), bool))


def test_success_rate_and_auc():
    cious = [0.0, 0.25, 0.5, 1.0]
    assert metrics.success_rate(cious) == 0.5
    # success(t) = share >= t on 0, 0.05, ..., 1: 1 at t=0; 0.75 for 0<t<=0.25;
    # 0.5 for 0.25<t<=0.5; 0.25 for 0.5<t<=1 -> trapezoids over the 21 points
    t = np.linspace(0, 1, 21)
    rates = np.array([np.mean(np.array(cious) >= x) for x in t])
    assert metrics.auc(cious) == pytest.approx(np.trapezoid(rates, t))
    assert metrics.auc([1.0] * 3) == pytest.approx(1.0)
    assert metrics.auc([0.0] * 3) == pytest.approx(0.05 / 2)


def test_recall_at_k_on_a_known_similarity():
    s = np.array([[0.9, 0.1, 0.2],
                  [0.5, 0.4, 0.1],    # partner ranked 2nd
                  [0.3, 0.2, 0.1]])   # partner ranked 3rd
    r = metrics.recall_at(s, ks=(1, 2, 3))
    assert r == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3), 3: 1.0}
    a = np.eye(5)
    out = metrics.retrieval(a, a, candidates=100)
    assert out['r1_a2i'] == 1.0 and out['r1_i2a'] == 1.0 and out['candidates'] == 5


def test_retrieval_from_a_score_matrix_draws_the_same_candidates():
    rng = np.random.default_rng(3)
    a, v = rng.standard_normal((150, 8)), rng.standard_normal((150, 8))
    v[:50] = a[:50]  # the first 50 find their partner
    by_emb = metrics.retrieval(a, v, candidates=100, draws=4, seed=1)
    by_sim = metrics.retrieval_from_similarity(a @ v.T, candidates=100, draws=4, seed=1)
    assert by_emb == by_sim
    assert 0.2 < by_sim['r1_a2i'] < 0.5 and by_sim['candidates'] == 100
    # audio 1 scores image 0 above its own partner: a2i misses, i2a of image 0 misses
    s = np.eye(3)
    s[1, 0] = 2.0
    r = metrics.retrieval_from_similarity(s)
    assert r['r1_a2i'] == pytest.approx(2 / 3) and r['r1_i2a'] == pytest.approx(2 / 3)
    with pytest.raises(InputError):
        metrics.retrieval_from_similarity(np.zeros((3, 4)))


def test_center_prior_beats_a_corner_map_on_a_central_object():
    g = _mask(64, 64, slice(16, 48), slice(16, 48))
    prior = metrics.center_prior(64, 64)
    corner = np.zeros((64, 64))
    corner[:8, :8] = 1
    corner += np.random.default_rng(0).random((64, 64)) * 1e-3
    assert metrics.ciou(prior, g) > 0.45
    assert metrics.ciou(corner, g) < 0.3


# ------------------------------------------------------------ robot views
def test_pointing_hits_inside_and_within_width_over_32_pixels():
    g = _mask(128, 128, slice(60, 66), slice(60, 66))        # a 6 x 6 object

    def peak_at(r, c):
        m = np.zeros((128, 128))
        m[r, c] = 1.0
        return m
    assert metrics.pointing(peak_at(62, 62), g)               # on it
    assert metrics.pointing(peak_at(62, 69), g)               # 4 px right of col 65: tol 4
    assert not metrics.pointing(peak_at(62, 70), g)           # 5 px: a miss
    assert metrics.pointing(peak_at(62, 70), g, tolerance=5.0)
    # the peak is taken at the mask's size: a 2x2 map hot top-left points top-left
    assert metrics.peak(np.array([[1.0, 0.0], [0.0, 0.0]]), (8, 8)) == (0, 0)
    with pytest.raises(InputError):
        metrics.pointing(peak_at(0, 0), np.zeros((128, 128), bool))


def test_pixel_auc_of_perfect_inverted_flat_and_half_right_maps():
    g = _mask(10, 10, slice(0, 2), slice(0, 10))              # 20 object px, 80 background
    heat = g.astype(float)
    assert metrics.pixel_auc(heat, g) == 1.0
    assert metrics.pixel_auc(1 - heat, g) == 0.0
    assert metrics.pixel_auc(np.ones((10, 10)), g) == 0.5     # ties count half
    half = np.zeros((10, 10))
    half[0] = 1.0                                             # 10 object px above everything,
    # the other 10 tie with the 80 background px: (10 * 80 + 10 * 80 / 2) / (20 * 80) = 0.75
    assert metrics.pixel_auc(half, g) == pytest.approx(0.75)
    assert metrics.pixel_auc(heat, np.ones((10, 10), bool)) == 1.0


def test_size_ciou_predicts_the_object_s_size():
    g = _mask(10, 10, slice(0, 2), slice(0, 5))               # 10 px
    heat = np.zeros((10, 10))
    heat[0:2, 0:5] = 1.0
    assert metrics.size_ciou(heat, g) == 1.0
    shifted = np.zeros((10, 10))
    shifted[0:2, 3:8] = 1.0 + np.arange(5)[None] * 1e-3       # top-10: cols 3-7, 4 px on G
    # |P n G| = 4, |P \ G| = 6 -> 4 / (10 + 6)
    assert metrics.size_ciou(shifted, g) == pytest.approx(4 / 16)
    # a flat map ties everywhere: all 100 px predicted -> 10 / (10 + 90)
    assert metrics.size_ciou(np.ones((10, 10)), g) == pytest.approx(0.1)
    # a smooth map, highest on the object: the paper's median threshold predicts
    # half the image (cIoU < 0.5 whatever the map), the object's size predicts it
    yy, xx = np.mgrid[0:10, 0:10]
    smooth = np.where(g, 2.0, 1.0 - np.hypot(yy - 0.5, xx - 2.0) / 20)
    assert metrics.size_ciou(smooth, g) == 1.0
    assert metrics.ciou(smooth, g) < 0.25          # about 10 / (10 + 39)


def test_random_map_is_seeded_and_scores_about_chance():
    g = _mask(64, 64, slice(10, 30), slice(10, 30))
    a = metrics.random_map(64, 64, np.random.default_rng(3))
    b = metrics.random_map(64, 64, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert abs(metrics.pixel_auc(a, g) - 0.5) < 0.05
