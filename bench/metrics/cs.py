"""Metrics of the ``cs`` suite, as the ISTA-Net authors' test script computes them
(``TEST_CS_ISTA_Net[_plus].py`` of github jianzhangcs/ISTA-Net-PyTorch; protocol
``ista_net`` of :data:`bench.weights.PROTOCOLS`), on one image at a time:

- the estimate is clipped to [0, 1] and multiplied by 255 (float64, not rounded); the
  reference is the 8-bit luminance (the suite stores it / 255 and multiplies back: exact);
- ``psnr``: 20 log10(255 / sqrt(MSE)) over the unpadded image; 100 when the MSE is 0;
- ``ssim``: scikit-image's ``structural_similarity(estimate, reference, data_range=255)``
  with its defaults, which are those of the ``compare_ssim`` the script imports: a 7x7
  uniform window, sample covariance (N - 1), K1 = 0.01, K2 = 0.03, the mean over the
  window positions that fit inside the image (3 pixels cropped at each border).

The set's value is the mean of the per-image values (``np.mean(PSNR_All)``).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from bench.registry import Metric, register_metric

PEAK = 255.0


def _as_255(estimate, reference) -> tuple[np.ndarray, np.ndarray]:
    """The clipped estimate x 255 and the reference x 255, float64 numpy, same shape."""
    e = estimate.detach().cpu().to(torch.float64).numpy() if isinstance(estimate, torch.Tensor) else np.asarray(estimate, np.float64)
    r = reference.detach().cpu().to(torch.float64).numpy() if isinstance(reference, torch.Tensor) else np.asarray(reference, np.float64)
    if e.shape != r.shape:
        raise ValueError(f"estimate {e.shape} and reference {r.shape} differ in shape")
    return np.clip(e, 0.0, 1.0) * PEAK, r * PEAK


def psnr(estimate, reference) -> float:
    """The authors' PSNR of one image (module docstring): inputs in [0, 1] units."""
    e, r = _as_255(estimate, reference)
    mse = float(np.mean((e - r) ** 2))
    if mse == 0:
        return 100.0
    return 20 * math.log10(PEAK / math.sqrt(mse))


def ssim(estimate, reference) -> float:
    """The authors' SSIM of one image (module docstring): inputs in [0, 1] units."""
    from skimage.metrics import structural_similarity

    e, r = _as_255(estimate, reference)
    return float(structural_similarity(e, r, data_range=PEAK))


register_metric(Metric(
    name="psnr_cs", suite="cs", direction="max", unit="dB", label="PSNR", fmt="{:.2f}", tolerance=0.01,
    definition="per image 20 log10(255 / RMSE) of the output clipped to [0, 1] x 255 against the 8-bit luminance, "
               "unpadded; mean over the images (the ISTA-Net authors' test script)", fn=psnr))
register_metric(Metric(
    name="ssim_cs", suite="cs", direction="max", unit="", label="SSIM", fmt="{:.4f}", tolerance=1e-4,
    definition="per image scikit-image SSIM (7x7 uniform window, sample covariance, data_range 255) of the output "
               "clipped to [0, 1] x 255; mean over the images (the ISTA-Net authors' test script)", fn=ssim))
