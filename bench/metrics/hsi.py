"""Metrics of the ``hsi`` suite (SPECS section 3), on one cube ``(H, W, B)``, bands last.

Two named metric sets:

- ``standard`` (the published MATLAB evaluation, MSIQA defaults, data in [0, 1]):
  ``psnr`` mean over bands of 10 log10(1 / MSE_b); ``ssim`` mean over bands, Gaussian
  window 11x11, sigma 1.5, K = (0.01, 0.03), data range 1, 'valid' window positions;
  ``sam`` mean over pixels of the spectral angle in radians; ``ergas`` the standard form
  100 sqrt(mean_b(MSE_b / mean(ref_b)^2)). ``ergas_msiqa`` is the MSIQA toolbox variant
  100 sqrt(mean_b(MSE_b / mean(ref_b))), available by name (metric set ``msiqa``).
- ``starnet`` (the STAR-Net code's ``MSIQA``, behind the slides' tables): PSNR per band by
  scikit-image with the range inferred (1 for [0, 1] data); SSIM per band by
  scikit-image's defaults (7x7 uniform window, sample covariance) on data multiplied by
  255 with the data range scikit-image < 0.20 inferred for float input (2, from its
  (-1, 1) dtype range: only this makes the x255 matter); SAM with eps = 1e-8 added to the
  dot product and both norms; ERGAS on data x 255 as 100 sqrt(mean_b(MSE_b /
  mean(estimate_b))), which is why it reads in the hundreds for a noisy input.

Every table names the set its numbers come from.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from bench.registry import Metric, register_metric

EPS = 1e-12


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _check(est, ref):
    e, r = _np(est), _np(ref)
    if e.shape != r.shape or e.ndim != 3:
        raise ValueError(f"expected two (H, W, B) cubes of one shape, got {e.shape} and {r.shape}")
    return e, r


# --------------------------------------------------------------------------- standard set
def band_mse(est, ref) -> np.ndarray:
    e, r = _check(est, ref)
    return ((e - r) ** 2).mean(axis=(0, 1))


def psnr(est, ref) -> float:
    """Mean over bands of 10 log10(1 / MSE_b) (data range 1); a perfect band counts as 100 dB
    so that a mean stays finite."""
    mse = band_mse(est, ref)
    vals = np.where(mse > 0, 10 * np.log10(1.0 / np.maximum(mse, 1e-30)), 100.0)
    return float(vals.mean())


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    ax = np.arange(size) - (size - 1) / 2
    g = np.exp(-(ax ** 2) / (2 * sigma ** 2))
    w = np.outer(g, g)
    return w / w.sum()


def ssim(est, ref, data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> float:
    """Mean over bands of SSIM (Wang et al. 2004): Gaussian window, population
    covariances, the mean over 'valid' window positions (MATLAB ``ssim_index``,
    scikit-image ``gaussian_weights=True, use_sample_covariance=False``)."""
    e, r = _check(est, ref)
    w = torch.from_numpy(gaussian_window(window, sigma))[None, None]
    x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(r, -1, 0)))[:, None]  # (B, 1, H, W)
    y = torch.from_numpy(np.ascontiguousarray(np.moveaxis(e, -1, 0)))[:, None]
    f = lambda t: torch.nn.functional.conv2d(t, w)  # noqa: E731 - valid positions
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(smap.mean(dim=(1, 2, 3)).mean())


def sam(est, ref) -> float:
    """Mean over pixels of arccos(<x, y> / (||x|| ||y||)) in radians. Zero-vector guard:
    a pixel that is zero in both cubes has angle 0; zero in one only, pi/2."""
    e, r = _check(est, ref)
    dot = (e * r).sum(-1)
    ne, nr = np.linalg.norm(e, axis=-1), np.linalg.norm(r, axis=-1)
    denom = ne * nr
    cos = np.where(denom > 0, dot / np.maximum(denom, 1e-300), 0.0)
    ang = np.arccos(np.clip(cos, -1.0, 1.0))
    ang = np.where((ne == 0) & (nr == 0), 0.0, ang)
    return float(ang.mean())


def ergas(est, ref) -> float:
    """Standard ERGAS for denoising (resolution ratio 1): 100 sqrt(mean_b(MSE_b / mean(ref_b)^2))."""
    e, r = _check(est, ref)
    mse = ((e - r) ** 2).mean(axis=(0, 1))
    mu = r.mean(axis=(0, 1))
    return float(100 * math.sqrt(np.mean(mse / np.maximum(mu ** 2, EPS))))


def ergas_msiqa(est, ref) -> float:
    """MSIQA toolbox variant: 100 sqrt(mean_b(MSE_b / mean(ref_b))) (no square)."""
    e, r = _check(est, ref)
    mse = ((e - r) ** 2).mean(axis=(0, 1))
    mu = r.mean(axis=(0, 1))
    return float(100 * math.sqrt(np.mean(mse / np.maximum(mu, EPS))))


# --------------------------------------------------------------------------- starnet set
def starnet_psnr(est, ref) -> float:
    """scikit-image ``peak_signal_noise_ratio`` per band with the range inferred (1 for
    float data in [0, 1]), mean over bands."""
    from skimage.metrics import peak_signal_noise_ratio

    e, r = _check(est, ref)
    rng = 1.0 if r.min() >= 0 else 2.0
    vals = []
    for b in range(r.shape[-1]):
        mse = float(((e[..., b] - r[..., b]) ** 2).mean())
        vals.append(100.0 if mse == 0 else peak_signal_noise_ratio(r[..., b], e[..., b], data_range=rng))
    return float(np.mean(vals))


STARNET_SSIM_RANGE = 2.0  # what scikit-image < 0.20 inferred for float input


def starnet_ssim(est, ref) -> float:
    """scikit-image ``structural_similarity`` per band with its defaults (7x7 uniform
    window, sample covariance) on data x 255, data range 2, mean over bands."""
    from skimage.metrics import structural_similarity

    e, r = _check(est, ref)
    vals = [structural_similarity(r[..., b] * 255, e[..., b] * 255, data_range=STARNET_SSIM_RANGE)
            for b in range(r.shape[-1])]
    return float(np.mean(vals))


def starnet_sam(est, ref, eps: float = 1e-8) -> float:
    """(<x, y> + eps) / (||x|| + eps) / (||y|| + eps), arccos, mean over pixels (radians)."""
    e, r = _check(est, ref)
    cos = ((e * r).sum(-1) + eps) / (np.linalg.norm(e, axis=-1) + eps) / (np.linalg.norm(r, axis=-1) + eps)
    return float(np.mean(np.real(np.arccos(np.clip(cos, -1.0, 1.0)))))


def starnet_ergas(est, ref) -> float:
    """On data x 255: 100 sqrt(mean_b(MSE_b / mean(estimate_b))).

    The STAR-Net code divides by the estimate's band mean, which can be negative for a
    very noisy input on near-zero bands (ABU cubes at sigma 70): its code then takes the
    square root of a negative mean and gives NaN. Here the band mean's absolute value,
    floored at EPS, is the divisor, so the value stays defined (and equals the original
    wherever the original is defined with positive band means)."""
    e, r = _check(est, ref)
    e, r = e * 255, r * 255
    mse = ((e - r) ** 2).mean(axis=(0, 1))
    mu = np.abs(e.mean(axis=(0, 1)))
    return float(100 * math.sqrt(np.mean(mse / np.maximum(mu, EPS))))


# --------------------------------------------------------------------------- registration
METRIC_SETS: dict[str, tuple[str, ...]] = {
    "standard": ("psnr", "ssim", "sam", "ergas"),
    "msiqa": ("psnr", "ssim", "sam", "ergas_msiqa"),
    "starnet": ("starnet_psnr", "starnet_ssim", "starnet_sam", "starnet_ergas"),
}

METRIC_SET_CAPTIONS = {
    "standard": ("metric set 'standard' (MSIQA defaults): PSNR mean over bands on [0,1] data; SSIM mean over "
                 "bands, Gaussian window 11, sigma 1.5, K=(0.01,0.03); SAM in radians; ERGAS = 100 sqrt(mean_b "
                 "MSE_b / mean(ref_b)^2)"),
    "msiqa": ("metric set 'msiqa': as 'standard' but ERGAS = 100 sqrt(mean_b MSE_b / mean(ref_b)) as the MSIQA "
              "MATLAB toolbox computes it"),
    "starnet": ("metric set 'starnet' (STAR-Net code's MSIQA, the slides' convention): scikit-image PSNR per band; "
                "scikit-image SSIM defaults (7x7 uniform window) on data x255 with data range 2; SAM in radians "
                "with eps 1e-8; ERGAS on data x255 = 100 sqrt(mean_b MSE_b / mean(estimate_b))"),
}

#: the tables' row name and number format of each metric (both ERGAS variants print "ERGAS")
_LABELS = {"psnr": ("PSNR", "{:.2f}"), "ssim": ("SSIM", "{:.4f}"), "sam": ("SAM", "{:.4f}"),
           "ergas": ("ERGAS", "{:.2f}"), "ergas_msiqa": ("ERGAS", "{:.2f}")}

for _name, _dir, _unit, _tol, _fn, _def in (
    ("psnr", "max", "dB", 0.05, psnr, "mean over bands of 10 log10(1/MSE_b), data in [0,1]"),
    ("ssim", "max", "", 0.002, ssim, "mean over bands, Gaussian window 11x11 sigma 1.5, K=(0.01,0.03), range 1"),
    ("sam", "min", "rad", 0.002, sam, "mean over pixels of the spectral angle (radians)"),
    ("ergas", "min", "", 0.3, ergas, "100 sqrt(mean_b MSE_b / mean(ref_b)^2) (standard form)"),
    ("ergas_msiqa", "min", "", 0.3, ergas_msiqa, "100 sqrt(mean_b MSE_b / mean(ref_b)) (MSIQA toolbox variant)"),
    ("starnet_psnr", "max", "dB", 0.05, starnet_psnr, "STAR-Net code: skimage PSNR per band, range inferred (1)"),
    ("starnet_ssim", "max", "", 0.002, starnet_ssim, "STAR-Net code: skimage SSIM defaults on x255 data, range 2"),
    ("starnet_sam", "min", "rad", 0.002, starnet_sam, "STAR-Net code: SAM with eps 1e-8 (radians)"),
    ("starnet_ergas", "min", "", 2.0, starnet_ergas, "STAR-Net code: 100 sqrt(mean_b MSE_b / mean(est_b)) on x255 data"),
):
    _base = _name.replace("starnet_", "")
    register_metric(Metric(name=_name, suite="hsi", direction=_dir, unit=_unit, definition=_def,
                           tolerance=_tol, fn=_fn, scope="sample", label=_LABELS[_base][0],
                           fmt=_LABELS[_base][1]))

HSI_METRICS = tuple(dict.fromkeys(m for s in METRIC_SETS.values() for m in s))
