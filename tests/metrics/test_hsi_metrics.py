"""HSI metrics against hand-computed values and scikit-image."""
from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench import registry as R
from bench.metrics import hsi as M


def _pair(seed=0, shape=(24, 20, 4), noise=0.1):
    rng = np.random.default_rng(seed)
    ref = rng.uniform(0.1, 0.9, shape)
    est = np.clip(ref + noise * rng.standard_normal(shape), 0, 1)
    return est, ref


def test_psnr_hand_computed():
    ref = np.full((4, 4, 2), 0.5)
    est = ref.copy()
    est[..., 0] += 0.1  # MSE 0.01 -> 20 dB
    est[..., 1] += 0.2  # MSE 0.04 -> 13.9794 dB
    assert M.psnr(est, ref) == pytest.approx((20 + 10 * math.log10(25)) / 2, abs=1e-9)


def test_psnr_matches_scikit_image_per_band():
    est, ref = _pair()
    expected = np.mean([peak_signal_noise_ratio(ref[..., b], est[..., b], data_range=1) for b in range(4)])
    assert M.psnr(est, ref) == pytest.approx(expected, abs=1e-9)
    assert M.starnet_psnr(est, ref) == pytest.approx(expected, abs=1e-9)


def test_ssim_hand_computed_constant_images():
    # constant images: every window has zero variance, SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    ref, est = np.full((16, 16, 1), 0.5), np.full((16, 16, 1), 0.6)
    c1 = 0.01 ** 2
    assert M.ssim(est, ref) == pytest.approx((2 * 0.3 + c1) / (0.25 + 0.36 + c1), abs=1e-12)
    assert M.ssim(ref, ref) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_scikit_image_gaussian_window():
    est, ref = _pair(1)
    expected = np.mean([structural_similarity(ref[..., b], est[..., b], data_range=1, gaussian_weights=True,
                                              sigma=1.5, use_sample_covariance=False) for b in range(4)])
    assert M.ssim(est, ref) == pytest.approx(expected, abs=1e-9)


def test_starnet_ssim_is_scikit_image_defaults_on_x255_with_range_2():
    est, ref = _pair(2)
    expected = np.mean([structural_similarity(ref[..., b] * 255, est[..., b] * 255, data_range=2)
                        for b in range(4)])
    assert M.starnet_ssim(est, ref) == pytest.approx(expected, abs=1e-12)


def test_sam_hand_computed_with_zero_guard():
    ref = np.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])  # (1, 4, 2)
    est = np.array([[[1.0, 1.0], [0.0, 1.0], [0.0, 0.0], [1.0, 0.0]]])
    # angles: pi/4, pi/2, 0 (both zero), pi/2 (one zero)
    assert M.sam(est, ref) == pytest.approx((math.pi / 4 + math.pi / 2 + 0 + math.pi / 2) / 4, abs=1e-12)
    assert M.sam(ref, ref) == 0.0
    assert M.starnet_sam(est[:, :2], ref[:, :2]) == pytest.approx((math.pi / 4 + math.pi / 2) / 2, abs=1e-6)


def test_ergas_variants_hand_computed():
    ref = np.empty((4, 4, 2))
    ref[..., 0], ref[..., 1] = 0.2, 0.5
    est = ref.copy()
    est[..., 0] += 0.02
    est[..., 1] -= 0.05
    d2 = np.array([0.02 ** 2, 0.05 ** 2])
    m = np.array([0.2, 0.5])
    assert M.ergas(est, ref) == pytest.approx(100 * math.sqrt(np.mean(d2 / m ** 2)), abs=1e-9)
    assert M.ergas_msiqa(est, ref) == pytest.approx(100 * math.sqrt(np.mean(d2 / m)), abs=1e-9)
    est_mean = np.array([0.22, 0.45]) * 255
    assert M.starnet_ergas(est, ref) == pytest.approx(100 * math.sqrt(np.mean(d2 * 255 ** 2 / est_mean)), abs=1e-9)
    assert M.ergas(ref, ref) == 0.0


def test_starnet_ergas_reads_in_the_hundreds_for_noisy_input():
    est, ref = _pair(3, noise=30 / 255)
    assert M.starnet_ergas(est, ref) > 100 > M.ergas(est, ref)


def test_metric_sets_are_registered_with_units_and_tolerances():
    R.load_all()
    for name, metrics in M.METRIC_SETS.items():
        assert len(metrics) == 4 and name in M.METRIC_SET_CAPTIONS
        for m in metrics:
            meta = R.METRICS[m]
            assert meta.suite == "hsi" and meta.direction in ("min", "max") and meta.tolerance > 0
            assert meta.definition
    assert R.METRICS["sam"].unit == "rad" and R.METRICS["psnr"].unit == "dB"


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        M.psnr(np.zeros((4, 4, 2)), np.zeros((4, 4, 3)))


def test_starnet_ergas_is_defined_when_an_estimate_band_mean_is_negative():
    from bench.metrics.hsi import starnet_ergas
    ref = np.full((4, 4, 2), 0.01)
    est = ref.copy()
    est[..., 0] = -0.02  # a noisy near-zero band whose mean went negative
    v = starnet_ergas(est, ref)
    mse0 = ((0.03 * 255) ** 2)
    expected = 100 * math.sqrt(np.mean([mse0 / (0.02 * 255), 0.0]))
    assert math.isfinite(v) and abs(v - expected) < 1e-9
