"""Degradations of the ISTD robustness study (the slides): clean, additive Gaussian noise
and salt-and-pepper noise on 8-bit gray levels, seeded per cell by the generator the suite
passes (the same noisy images for every method of a (dataset, degradation) pair).

Each ``apply`` takes one (H, W) image in gray levels 0..255 and returns a new one.
"""
from __future__ import annotations

import torch

from bench.datasets.gaussian import Gaussian
from bench.params import Param
from bench.registry import Degradation, register_degradation


@register_degradation
class Clean(Degradation):
    name = "clean"
    suites = ("istd",)
    description = "no degradation (the images as read)"
    parameters = {}

    def apply(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return image.clone()


@register_degradation
class GaussianNoise(Degradation):
    name = "gaussian_noise"
    suites = ("istd",)
    description = "additive white Gaussian noise of std sigma gray levels, result clipped to 0..255"
    parameters = {"sigma": 10.0}
    parameter_specs = {"sigma": Param(float, min=0, help="gray levels of 0..255")}

    def apply(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return _GRAY_LEVELS.add(image, float(self.params["sigma"]), generator)


#: sigma in gray levels on gray-level images: drawn and added in float64, clipped to 0..255
_GRAY_LEVELS = Gaussian(scale=1.0, clip=(0.0, 255.0), draw=torch.float64, arithmetic="float64")


@register_degradation
class SaltPepper(Degradation):
    name = "salt_pepper"
    suites = ("istd",)
    description = "salt-and-pepper noise: a fraction `density` of pixels set to 0 or 255 (half each)"
    parameters = {"density": 0.01}
    parameter_specs = {"density": Param(float, min=0, max=1, help="fraction of the pixels")}

    def apply(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        density = float(self.params["density"])
        r = torch.rand(image.shape, generator=generator, dtype=torch.float64)
        out = image.clone()
        out[r < density / 2] = 0
        out[(r >= density / 2) & (r < density)] = 255
        return out
