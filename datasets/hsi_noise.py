"""Noise models of the ``hsi`` suite (SPECS section 3, QRNN3D protocol), seeded per cell.

Sigma is given on the [0, 255] scale and applied as sigma/255 to the [0, 1] cubes.
``apply(clean, generator)`` takes one (H, W, B) cube and returns ``(noisy, NoiseDraw)``;
the draw records what the suite may tell a method (the true sigma in the non-blind case).
Noisy cubes are not clipped (as in QRNN3D).

- ``hsi_gaussian[sigma=s]``: i.i.d. Gaussian, s in {10, 30, 50, 70}.
- ``hsi_blind``: i.i.d. Gaussian with sigma ~ U(10, 70) drawn per cube.
- ``hsi_mixed``: non-i.i.d. Gaussian (sigma_b ~ U(10, 70) per band) on every band, plus
  impulse (salt and pepper) noise on a third of the bands (ratio drawn from
  {0.1, 0.3, 0.5, 0.7} per band) plus stripes on a third of the bands (5-15 % of the
  columns shifted by U(-0.25, 0.25)), the QRNN3D "mixture" case.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.datasets.gaussian import Gaussian
from bench.params import Ordered, Param
from bench.registry import Degradation, register_degradation


@dataclass(frozen=True)
class NoiseDraw:
    kind: str                      # gaussian / blind / mixed
    sigma: float                   # on [0, 1] data: the i.i.d. sigma, or the rms of sigma_b
    sigma_bands: torch.Tensor      # (B,) per-band Gaussian sigma on [0, 1] data
    known: bool                    # may a method be told sigma? (non-blind cases only)


#: sigma on the [0, 255] scale, cubes on [0, 1]; drawn in float64, added in the cube's dtype
_IID = Gaussian(scale=255.0, draw=torch.float64, arithmetic="data")
#: the mixture's Gaussian part: drawn and added in float64 (its impulses and stripes follow there)
_MIXED = Gaussian(scale=255.0, draw=torch.float64, arithmetic="float64")


def _uniform(lo: float, hi: float, size, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(size, generator=g, dtype=torch.float64)


@register_degradation
class HsiGaussian(Degradation):
    name = "hsi_gaussian"
    suites = ("hsi",)
    description = "i.i.d. Gaussian noise, std sigma/255 on [0,1] cubes (sigma on the [0,255] scale)"
    parameters = {"sigma": 30.0}
    parameter_specs = {"sigma": Param(float, min=0, help="on the [0, 255] scale")}

    def apply(self, clean: torch.Tensor, g: torch.Generator):
        sigma = float(self.params["sigma"])
        s, bands = _IID.std(sigma), clean.shape[-1]
        return _IID.add(clean, sigma, g), NoiseDraw("gaussian", s, torch.full((bands,), s), True)


@register_degradation
class HsiBlind(Degradation):
    name = "hsi_blind"
    suites = ("hsi",)
    description = "i.i.d. Gaussian noise with sigma ~ U(sigma_min, sigma_max)/255 drawn per cube (blind)"
    parameters = {"sigma_min": 10.0, "sigma_max": 70.0}
    parameter_specs = {"sigma_min": Param(float, min=0, help="on the [0, 255] scale"),
                       "sigma_max": Param(float, min=0, help="on the [0, 255] scale")}
    parameter_rules = (Ordered("sigma_min", "sigma_max"),)

    def apply(self, clean: torch.Tensor, g: torch.Generator):
        sigma = float(_uniform(self.params["sigma_min"], self.params["sigma_max"], (1,), g))
        s, bands = _IID.std(sigma), clean.shape[-1]
        return _IID.add(clean, sigma, g), NoiseDraw("blind", s, torch.full((bands,), s), False)


@register_degradation
class HsiMixed(Degradation):
    name = "hsi_mixed"
    suites = ("hsi",)
    description = ("non-i.i.d. Gaussian (sigma_b ~ U(10,70)/255 per band) + impulse on 1/3 of the bands "
                   "+ stripes on 1/3 of the bands (QRNN3D mixture)")
    parameters = {"sigma_min": 10.0, "sigma_max": 70.0, "impulse_ratios": (0.1, 0.3, 0.5, 0.7),
                  "stripe_min": 0.05, "stripe_max": 0.15, "band_fraction": 1 / 3}
    parameter_specs = {**HsiBlind.parameter_specs,
                       "impulse_ratios": Param(tuple, min_length=1, items=Param(float, min=0, max=1),
                                               help="fractions of pixels hit, one drawn per band"),
                       "stripe_min": Param(float, min=0, max=1, help="fraction of the columns"),
                       "stripe_max": Param(float, min=0, max=1, help="fraction of the columns"),
                       "band_fraction": Param(float, min=0, max=1,
                                              help="fraction of the bands with impulses, and of those with stripes")}
    parameter_rules = (Ordered("sigma_min", "sigma_max"), Ordered("stripe_min", "stripe_max"))

    def apply(self, clean: torch.Tensor, g: torch.Generator):
        p = self.params
        h, w, bands = clean.shape
        sigma = _uniform(p["sigma_min"], p["sigma_max"], (bands,), g)
        sig = _MIXED.std(sigma)
        noisy = _MIXED.add(clean.to(torch.float64), sigma, g)   # float64 until the end
        n_sel = max(1, int(round(bands * float(p["band_fraction"]))))
        # impulse: salt and pepper (half each) on n_sel random bands
        ratios = torch.tensor([float(r) for r in p["impulse_ratios"]], dtype=torch.float64)
        for b in torch.randperm(bands, generator=g)[:n_sel].tolist():
            ratio = float(ratios[torch.randint(len(ratios), (1,), generator=g)])
            hit = torch.rand(h, w, generator=g, dtype=torch.float64) < ratio
            salt = torch.rand(h, w, generator=g, dtype=torch.float64) < 0.5
            band = noisy[..., b]
            band[hit & salt] = 1.0
            band[hit & ~salt] = 0.0
        # stripes: a random 5-15 % of the columns of n_sel random bands shifted by U(-0.25, 0.25)
        lo, hi = int(float(p["stripe_min"]) * w), max(int(float(p["stripe_max"]) * w), int(float(p["stripe_min"]) * w) + 1)
        for b in torch.randperm(bands, generator=g)[:n_sel].tolist():
            n_cols = int(torch.randint(lo, hi, (1,), generator=g))
            cols = torch.randperm(w, generator=g)[:n_cols]
            shift = _uniform(-0.25, 0.25, (n_cols,), g)
            noisy[:, cols, b] -= shift
        rms = float(sig.pow(2).mean().sqrt())
        return noisy.to(clean.dtype), NoiseDraw("mixed", rms, sig, False)


# --------------------------------------------------------------------------- estimation
def estimate_sigma_bands(noisy: torch.Tensor) -> torch.Tensor:
    """Per-band noise std of an (H, W, B) cube: the median absolute deviation of the
    finest-scale diagonal Haar wavelet coefficients divided by 0.6745 (Donoho and
    Johnstone 1994), the estimator of BM3D/BM4D demos and of scikit-image's
    ``estimate_sigma``. Robust to the image content and to impulse outliers."""
    x = noisy.to(torch.float64)
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    x = x[:h, :w]
    hh = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2.0
    flat = hh.reshape(-1, x.shape[-1])
    return flat.abs().median(dim=0).values / 0.6745


def estimate_sigma(noisy: torch.Tensor) -> tuple[float, torch.Tensor]:
    """(scalar, per-band): the scalar is the root mean square of the per-band estimates."""
    bands = estimate_sigma_bands(noisy)
    return float(bands.pow(2).mean().sqrt()), bands
