"""Scores of real cubes without a clean reference: noise index, removed RMS, the SVM protocol."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.metrics.hsi_realworld import (TRAIN_FRACTION, accuracies, classify, noise_sigma_index, removed_rms,
                                         score_real, stratified_split)


def test_accuracies_on_a_hand_computed_case():
    truth = np.array([1, 1, 1, 1, 2, 2, 3, 3])
    pred = np.array([1, 1, 1, 2, 2, 2, 3, 1])
    oa, aa, kappa = accuracies(truth, pred)
    assert oa == pytest.approx(100 * 6 / 8)
    assert aa == pytest.approx(100 * (3 / 4 + 1 + 1 / 2) / 3)
    # chance agreement: sum_c p_true(c) p_pred(c) = .5*.5 + .25*.375 + .25*.125
    pe = 0.5 * 0.5 + 0.25 * 0.375 + 0.25 * 0.125
    assert kappa == pytest.approx(100 * (0.75 - pe) / (1 - pe))


def test_stratified_split_takes_the_fraction_of_each_class_and_at_least_one():
    labels = np.zeros((10, 10), dtype=int)
    labels[:5] = 1          # 50 pixels
    labels[5, :3] = 2       # 3 pixels: round(0.3) = 0 -> 1
    train, test = stratified_split(labels, TRAIN_FRACTION, seed=0)
    flat = labels.ravel()
    assert (flat[train] == 1).sum() == 5 and (flat[train] == 2).sum() == 1
    assert len(test) == 50 - 5 + 3 - 1 and not set(train) & set(test)
    assert 0 not in set(flat[np.concatenate([train, test])])       # unlabelled pixels never used
    again, _ = stratified_split(labels, TRAIN_FRACTION, seed=0)
    other, _ = stratified_split(labels, TRAIN_FRACTION, seed=1)
    assert np.array_equal(train, again) and not np.array_equal(np.sort(train), np.sort(other))


def test_classify_separates_distinct_spectra_and_fails_on_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(1, 5), 100).reshape(20, 20)
    means = rng.random((5, 6))
    cube = means[labels] + 0.01 * rng.standard_normal((20, 20, 6))
    got = classify(cube, labels, seeds=(0, 1))
    assert set(got) == {"svm_oa", "svm_aa", "svm_kappa"} and all(len(v) == 2 for v in got.values())
    assert min(got["svm_oa"]) > 99 and min(got["svm_kappa"]) > 98
    chance = classify(rng.standard_normal((20, 20, 6)), labels, seeds=(0,))
    assert chance["svm_oa"][0] < 50
    with pytest.raises(ValueError, match="do not match"):
        classify(cube, labels[:10], seeds=(0,))


def test_noise_index_reads_the_added_noise_and_removed_rms():
    rng = np.random.default_rng(1)
    clean = np.tile(np.linspace(0.2, 0.8, 64)[:, None, None], (1, 64, 5))
    noisy = clean + (10 / 255) * rng.standard_normal(clean.shape)
    assert noise_sigma_index(noisy) == pytest.approx(10, rel=0.1)
    assert noise_sigma_index(clean) < 0.5
    assert removed_rms(noisy, clean) == pytest.approx(10, rel=0.05)
    metrics, per_seed = score_real(torch.from_numpy(noisy), torch.from_numpy(clean), None)
    assert set(metrics) == {"nr_sigma", "nr_removed"} and per_seed == {}
