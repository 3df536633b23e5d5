"""BasicIRSTD metrics on hand-labelled toy cases (exact expected values)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.metrics.istd import (match_targets, pd_fa_auc, pd_fa_curve, score_masks, segment)


def _toy():
    """Image 1 (10x10): target A (2x2 at rows 1-2, cols 1-2), target B (single pixel at
    (7, 7)); prediction: A's 4 pixels plus 2 more to its right (one 6-pixel component whose
    centroid is 0.5 px from A's), and a false alarm of 3 pixels at row 5, cols 0-2.
    B is missed. Image 2 (10x10): no target, prediction of 1 pixel at (0, 9)."""
    g1 = np.zeros((10, 10), bool); g1[1:3, 1:3] = True; g1[7, 7] = True
    p1 = np.zeros((10, 10), bool); p1[1:3, 1:4] = True; p1[5, 0:3] = True
    g2 = np.zeros((10, 10), bool)
    p2 = np.zeros((10, 10), bool); p2[0, 9] = True
    return [p1, p2], [g1, g2]


def test_toy_case_exact_values():
    preds, gts = _toy()
    s = score_masks(preds, gts)
    # intersection 4; union: image 1 = 9 predicted + 5 true - 4 = 10, image 2 = 1
    assert s["iou"] == pytest.approx(100 * 4 / 11)
    # nIoU: image 1 4/10, image 2: intersection 0 / union 1 = 0
    assert s["niou"] == pytest.approx(100 * (0.4 + 0.0) / 2)
    # TP 4, FP 5 + 1 = 6, FN 1
    assert s["precision"] == pytest.approx(100 * 4 / 10)
    assert s["recall"] == pytest.approx(100 * 4 / 5)
    p, r = 0.4, 0.8
    assert s["f1"] == pytest.approx(100 * 2 * p * r / (p + r))
    # one of two targets detected; false pixels: 3 (image 1) + 1 (image 2) over 200 pixels
    assert s["pd"] == pytest.approx(50.0)
    assert s["fa"] == pytest.approx(1e6 * 4 / 200)


def test_image_without_target_and_without_prediction():
    g = np.zeros((8, 8), bool)
    s = score_masks([g.copy()], [g])
    assert s["iou"] == 0.0 and s["pd"] == 0.0 and s["fa"] == 0.0
    # BasicIRSTD's nIoU counts an empty union as 0 (intersection / (union + eps))
    assert s["niou"] == 0.0
    # an empty image next to a perfect one: dataset IoU unaffected, nIoU halved
    g1 = np.zeros((8, 8), bool); g1[3, 3] = True
    s = score_masks([g1, g], [g1, g])
    assert s["iou"] == pytest.approx(100.0) and s["niou"] == pytest.approx(50.0)
    assert s["pd"] == 100.0 and s["fa"] == 0.0


def test_prediction_touching_two_targets_detects_at_most_one():
    # two single-pixel targets 4 apart on one row; one predicted component covers both:
    # its centroid is 2 px from each, so the first target takes it, the second finds it used
    g = np.zeros((9, 9), bool); g[4, 2] = True; g[4, 6] = True
    p = np.zeros((9, 9), bool); p[4, 2:7] = True
    n_t, n_d, false_px, n_px = match_targets(p, g)
    assert (n_t, n_d, false_px, n_px) == (2, 1, 0, 81)
    s = score_masks([p], [g])
    assert s["pd"] == 50.0 and s["fa"] == 0.0
    assert s["iou"] == pytest.approx(100 * 2 / 5)


def test_centroid_distance_is_strict_and_8_connectivity():
    g = np.zeros((12, 12), bool); g[5, 5] = True
    p = np.zeros((12, 12), bool); p[5, 8] = True  # distance exactly 3: not detected
    assert match_targets(p, g)[1] == 0
    # diagonal pixels form one component under 8-connectivity
    p = np.zeros((12, 12), bool); p[4, 4] = p[5, 5] = p[6, 6] = True
    n_t, n_d, false_px, _ = match_targets(p, g)
    assert n_d == 1 and false_px == 0


def test_segmentation_rules():
    m = torch.tensor([[-1.0, 0.2], [0.6, 1.0]])
    assert segment(m, "max_norm").tolist() == [[False, False], [True, True]]
    # min-max: (x + 1) / 2 > 0.5  <=> x > 0: the weak 0.2 is marked too (the collapse on
    # maps with negative values that SPECS describes)
    assert segment(m, "minmax").tolist() == [[False, True], [True, True]]
    flat = torch.zeros(3, 3)
    assert not segment(flat, "max_norm").any() and not segment(flat, "minmax").any()
    x = torch.zeros(10, 10); x[0, 0] = 100.0
    assert segment(x, "mean_std3").sum() == 1
    with pytest.raises(ValueError, match="unknown segmentation rule"):
        segment(m, "otsu")


def test_pd_fa_curve_and_area():
    g = torch.zeros(10, 10, dtype=torch.bool); g[2, 2] = True
    m = torch.zeros(10, 10); m[2, 2] = 1.0; m[8, 8] = 0.3
    pds, fas = pd_fa_curve([m], [g], thresholds=(0.1, 0.5))
    assert pds == [100.0, 100.0]
    assert fas == [1e6 / 100, 0.0]
    # the envelope: Pd 100 reachable at Fa = 0 gives area 100; reachable only from Fa = 10
    # (of the box's 100) gives 90; a point beyond the box counts for nothing
    assert pd_fa_auc([100.0], [0.0]) == pytest.approx(100.0)
    assert pd_fa_auc([100.0], [10.0]) == pytest.approx(90.0)
    assert pd_fa_auc([50.0], [1e6]) == 0.0
    # not monotone in the threshold: (Fa 0, Pd 75), (Fa 20, Pd 50) -> envelope stays at 75
    assert pd_fa_auc([75.0, 50.0, 100.0], [0.0, 20.0, 50.0]) == pytest.approx(0.5 * 75 + 0.5 * 100)
    assert math.isfinite(pd_fa_auc([], []))
