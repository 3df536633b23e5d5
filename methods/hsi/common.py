"""What an ``hsi`` method receives, shared by classical and learned methods.

A method gets :class:`HsiInput` for a whole sample set and returns a tuple of denoised
cubes, one (H, W, B) tensor per noisy cube, on the inputs' device and dtype.

``sigma`` is the noise std on the [0, 1] data scale that the method may use: the true
sigma in the non-blind Gaussian cases (``sigma_source == "true"``), otherwise the
estimate of :func:`bench.datasets.hsi_noise.estimate_sigma` (median absolute deviation of
the finest diagonal Haar wavelet coefficients / 0.6745, per band; the scalar is their root
mean square) made by the suite before timing (``sigma_source == "estimated"``). Methods
that need no sigma ignore it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class HsiInput:
    noisy: tuple[torch.Tensor, ...]        # each (H, W, B)
    sigma: tuple[float, ...]               # per cube, [0, 1] scale
    sigma_bands: tuple[torch.Tensor, ...]  # per cube, (B,)
    sigma_source: str = "true"             # "true" (non-blind) or "estimated" (blind, mixed)
