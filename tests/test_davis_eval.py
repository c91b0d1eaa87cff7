"""DAVIS J&F evaluator: hand-built cases with analytic answers (reference notes downstream-protocols.md §6)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from downstream import davis_eval as de
from gan_core.errors import DataError
from gan_core.utils.images import write_mask


def square(h, w, top, left, side, value=1):
    m = np.zeros((h, w), dtype=np.int64)
    m[top : top + side, left : left + side] = value
    return m


# ------------------------------------------------------------------------------------------- primitives
def test_disk_sizes_match_skimage_and_197_pixels():
    from skimage.morphology import disk as sk_disk

    assert de.disk(8).sum() == 197
    assert de.disk(8).shape == (17, 17)
    for r in range(1, 11):
        np.testing.assert_array_equal(de.disk(r), sk_disk(r).astype(bool))


def test_bound_pixels_480p_is_8():
    # ceil(0.008 * sqrt(480^2 + 854^2)) = ceil(7.837) = 8
    assert de.bound_pixels((480, 854)) == 8
    assert de.bound_pixels((60, 80)) == 1  # ceil(0.008 * 100) = 1
    assert de.bound_pixels((60, 80), 3) == 3  # >= 1: pixels


def test_seg2bmap_by_hand():
    seg = np.zeros((5, 5), bool)
    seg[1:3, 1:3] = True
    # boundary = ring of the 3x3 square with corners (0,0) and (2,2) (see toolkit's shift rule)
    expected = np.zeros((5, 5), bool)
    expected[0, 0:3] = expected[2, 0:3] = True
    expected[0:3, 0] = expected[0:3, 2] = True
    np.testing.assert_array_equal(de.seg2bmap(seg), expected)
    # last row / column special cases, and b[-1,-1] = 0
    full = np.ones((3, 4), bool)
    assert not de.seg2bmap(full).any()
    last = np.zeros((3, 3), bool)
    last[2, 1] = True
    b = de.seg2bmap(last)
    assert b[2, 0] and b[2, 1] and not b[2, 2]


def test_jaccard_shifted_square_is_analytic():
    a, k = 20, 3
    gt = square(60, 80, 10, 10, a)
    pred = square(60, 80, 10, 10 + k, a)
    assert de.jaccard(pred, gt) == pytest.approx((a - k) / (a + k))
    assert de.jaccard(np.zeros_like(gt), np.zeros_like(gt)) == 1.0  # empty union -> 1
    assert de.jaccard(np.zeros_like(gt), gt) == 0.0


@pytest.mark.parametrize("shift,tol,perfect", [((0, 3), 3, True), ((2, 2), 3, True), ((0, 4), 3, False),
                                               ((3, 3), 4, False), ((0, 1), 1, True)])
def test_f_is_one_iff_shift_within_tolerance(shift, tol, perfect):
    gt = square(60, 80, 15, 20, 18)
    pred = square(60, 80, 15 + shift[0], 20 + shift[1], 18)
    f = de.f_measure(pred, gt, bound_th=tol)
    # a shifted square has a translated boundary: every pixel matches iff |shift| <= tolerance (disk)
    if perfect:
        assert f == 1.0
    else:
        assert f < 1.0


def _f_bruteforce(fg, gt, r):
    """Second implementation: match boundary pixels by Euclidean distance <= r (no morphology)."""
    fb, gb = np.argwhere(de.seg2bmap(fg)), np.argwhere(de.seg2bmap(gt))
    d = cdist(fb, gb)
    p = (d.min(axis=1) <= r).mean()
    rec = (d.min(axis=0) <= r).mean()
    return 0.0 if p + rec == 0 else 2 * p * rec / (p + rec)


def test_f_matches_distance_bruteforce_on_random_ellipses():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :64]
    for _ in range(6):
        e = []
        for _ in range(2):
            cy, cx, ry, rx = rng.uniform(12, 36), rng.uniform(15, 50), rng.uniform(4, 14), rng.uniform(4, 14)
            e.append(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1)
        for r in (1, 2, 4):
            assert de.f_measure(e[0], e[1], bound_th=r) == pytest.approx(_f_bruteforce(e[0], e[1], r), abs=1e-12)


def test_f_empty_special_cases():
    gt = square(30, 40, 5, 5, 10)
    empty = np.zeros_like(gt)
    assert de.f_measure(empty, empty) == 1.0  # P = R = 1
    assert de.f_measure(empty, gt) == 0.0  # P = 1, R = 0
    assert de.f_measure(gt, empty) == 0.0  # P = 0, R = 1
    assert de.f_measure(gt, gt) == 1.0


def test_statistics_decay_bins_by_hand():
    v = np.arange(10, dtype=float)
    m, rec, dec = de.statistics(v / 10)
    assert m == pytest.approx(0.45)
    assert rec == pytest.approx(0.4)  # 0.6, 0.7, 0.8, 0.9 > 0.5
    # bins from round(linspace(1,10,5)) - 1 = [0,2,5,7,9]: first [0:3], last [7:10]
    assert dec == pytest.approx((0.0 + 0.1 + 0.2) / 3 - (0.7 + 0.8 + 0.9) / 3)


# ------------------------------------------------------------------------------------------- sequences
def _seq(n, h=30, w=40):
    return [square(h, w, 5, 5, 10, 1) + square(h, w, 16, 22, 8, 2) for _ in range(n)]


def test_first_and_last_frames_are_not_evaluated():
    gt = _seq(5)
    pred = [g.copy() for g in gt]
    pred[0][:] = 0
    pred[-1][:] = 2
    res = de.evaluate_sequence(gt, pred, "2017")
    assert res[1]["J"] == 1.0 and res[2]["F"] == 1.0
    # None is accepted for the unevaluated frames
    res = de.evaluate_sequence(gt, [None] + pred[1:-1] + [None], "2017")
    assert res[2]["J"] == 1.0


def test_per_object_scores_and_summary_averages_over_objects():
    gt = _seq(4)
    pred = [g.copy() for g in gt]
    for p in pred[1:-1]:
        p[p == 2] = 0  # object 2 missed everywhere
    res = de.evaluate_sequence(gt, pred, "2017")
    assert res[1]["J"] == 1.0 and res[2]["J"] == 0.0 and res[2]["F"] == 0.0
    import pandas as pd

    df = pd.DataFrame([{"sequence": "a", "object": 1, "J": 1.0, "F": 1.0},
                       {"sequence": "a", "object": 2, "J": 0.5, "F": 0.5},
                       {"sequence": "b", "object": 1, "J": 0.0, "F": 0.0}])
    s = de.summarise(df)
    assert s["J"] == pytest.approx(0.5) and s["J&F"] == pytest.approx(0.5)  # not (0.75 + 0)/2


def test_2016_mode_merges_objects():
    gt = _seq(4)
    pred = [(g > 0).astype(np.int64) for g in gt]  # one label for both objects
    res16 = de.evaluate_sequence(gt, pred, "2016")
    assert list(res16) == [1] and res16[1]["J"] == 1.0 and res16[1]["F"] == 1.0
    res17 = de.evaluate_sequence(gt, pred, "2017")
    assert res17[1]["J"] == pytest.approx(100 / 164) and res17[2]["J"] == 0.0  # 10x10 vs 10x10 + 8x8
    # 2016 binarises predictions (> 0): any nonzero id is foreground
    res16b = de.evaluate_sequence(gt, [p * 3 for p in pred], "2016")
    assert res16b[1]["J"] == 1.0


def test_void_is_background_in_gt():
    h, w = 30, 40
    gt = [square(h, w, 5, 5, 10, 1) for _ in range(3)]
    for g in gt:
        g[20:25, 20:30] = 255  # void region (50 px)
    pred = [square(h, w, 5, 5, 10, 1) for _ in range(3)]
    pred[1][20:25, 20:30] = 1  # predicting void pixels counts as false positive
    res = de.evaluate_sequence(gt, pred, "2017")
    assert list(res) == [1]  # 255 is not an object
    assert res[1]["J"] == pytest.approx(100 / 150)


def test_index_above_objects_and_missing_file_raise_dataerror(tmp_path):
    root, results = tmp_path / "davis", tmp_path / "res"
    gt = _seq(4)
    for i, g in enumerate(gt):
        write_mask(root / "Annotations" / "480p" / "s" / f"{i:05d}.png", g)
        write_mask(results / "s" / f"{i:05d}.png", g)
    df = de.evaluate(results, root, ["s"], "2017")
    assert len(df) == 2 and (df["J&F"] == 1.0).all()
    bad = gt[2].copy()
    bad[0, 0] = 3
    write_mask(results / "s" / "00002.png", bad)
    with pytest.raises(DataError, match="00002.png.*index 3"):
        de.evaluate(results, root, ["s"], "2017")
    (results / "s" / "00001.png").unlink()
    with pytest.raises(DataError, match="00001.png.*missing"):
        de.evaluate(results, root, ["s"], "2017")
    # first/last frame predictions are not needed (the toolkit does not read them)
    write_mask(results / "s" / "00001.png", gt[1])
    write_mask(results / "s" / "00002.png", gt[2])
    (results / "s" / "00000.png").unlink()
    assert de.summarise(de.evaluate(results, root, ["s"], "2017"))["J&F"] == 1.0


def test_480p_shift_against_tolerance_8():
    gt = square(480, 854, 100, 200, 150)
    assert de.f_measure(square(480, 854, 100, 208, 150), gt) == 1.0  # shift 8 == tolerance
    assert de.f_measure(square(480, 854, 100, 209, 150), gt) < 1.0
    assert math.isclose(de.jaccard(square(480, 854, 100, 208, 150), gt), 142 / 158)
