"""The cs metrics against hand-computed values: the authors' PSNR (peak 255, output clipped
to [0, 1]) and scikit-image's SSIM as their script calls it, checked against a direct loop
over the 7x7 windows."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.metrics.cs import psnr, ssim


def test_psnr_by_hand():
    ref = torch.full((5, 6), 100 / 255, dtype=torch.float64)
    est = torch.full((5, 6), 110 / 255, dtype=torch.float64)
    assert psnr(est, ref) == pytest.approx(20 * math.log10(255 / 10), abs=1e-12)   # MSE 100: 28.1308
    assert psnr(est, ref) == pytest.approx(28.130803608679, abs=1e-9)
    assert psnr(ref, ref) == 100.0


def test_psnr_clips_the_output_to_0_1():
    ref = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    est = torch.tensor([[1.7, -0.4]], dtype=torch.float64)
    assert psnr(est, ref) == 100.0
    # one pixel 1.2 against 0.9 scores as 1.0 against 0.9: MSE = (25.5^2) / 2
    assert psnr(torch.tensor([[1.2, 0.0]], dtype=torch.float64), torch.tensor([[0.9, 0.0]], dtype=torch.float64)) == pytest.approx(
        20 * math.log10(255 / math.sqrt(25.5 ** 2 / 2)), abs=1e-9)


def _ssim_loop(x: np.ndarray, y: np.ndarray, L: float = 255.0, w: int = 7) -> float:
    """SSIM of Wang et al. as compare_ssim computes it, written as a loop: every 7x7 window
    that fits, sample (co)variances (N - 1), C1 = (0.01 L)^2, C2 = (0.03 L)^2, the mean."""
    c1, c2, n = (0.01 * L) ** 2, (0.03 * L) ** 2, w * w
    vals = []
    for i in range(x.shape[0] - w + 1):
        for j in range(x.shape[1] - w + 1):
            a, b = x[i:i + w, j:j + w].ravel(), y[i:i + w, j:j + w].ravel()
            ma, mb = a.mean(), b.mean()
            va, vb = a.var() * n / (n - 1), b.var() * n / (n - 1)
            cov = ((a - ma) * (b - mb)).sum() / (n - 1)
            vals.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def test_ssim_against_the_window_loop():
    g = np.random.default_rng(0)
    ref = np.round(g.uniform(0, 255, (12, 15))) / 255
    est = np.clip(ref + g.normal(0, 0.08, ref.shape), -0.1, 1.1)
    want = _ssim_loop(np.clip(est, 0, 1) * 255, ref * 255)
    assert ssim(torch.from_numpy(est), torch.from_numpy(ref)) == pytest.approx(want, abs=1e-12)
    assert 0.1 < want < 0.99


def test_ssim_by_hand_on_a_7x7_image():
    """One window: a constant offset d of a ramp keeps the contrast terms at 1, so
    SSIM = (2 m (m + d) + C1) / (m^2 + (m + d)^2 + C1)."""
    ref = np.arange(49, dtype=np.float64).reshape(7, 7) / 255
    est = ref + 20 / 255
    m, md, c1 = 24.0, 44.0, (0.01 * 255) ** 2
    assert ssim(torch.from_numpy(est), torch.from_numpy(ref)) == pytest.approx((2 * m * md + c1) / (m * m + md * md + c1),
                                                                                abs=1e-12)
    assert ssim(torch.from_numpy(ref), torch.from_numpy(ref)) == pytest.approx(1.0, abs=1e-15)


def test_metrics_refuse_shapes_that_differ():
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(torch.zeros(3, 3), torch.zeros(3, 4))
