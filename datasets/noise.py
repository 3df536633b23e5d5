"""Degradations: noise models applied to clean measurements, seeded per cell."""
from __future__ import annotations

import torch

from bench.datasets.gaussian import Gaussian
from bench.params import Param
from bench.registry import Degradation, register_degradation


@register_degradation
class AwgnSnr(Degradation):
    """Additive white Gaussian noise at a given SNR, per sample (SPECS section 1):
    std = std(A x*) * 10^(-SNR/20); SNR = inf means noiseless."""

    name = "awgn_snr"
    suites = ("sparse",)
    description = "white Gaussian noise, std = std(clean) * 10^(-snr_db/20) per sample; inf = none"
    parameters = {"snr_db": float("inf")}
    parameter_specs = {"snr_db": Param(float, allow=(float("inf"),), help="inf: noiseless")}

    def apply(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        snr = float(self.params["snr_db"])
        if snr == float("inf"):
            return clean.clone()
        return _AWGN.add(clean, clean.std(dim=-1, keepdim=True) * 10 ** (-snr / 20), generator)


#: drawn and added in the samples' own dtype; sigma is the per-sample std itself
_AWGN = Gaussian(scale=1.0, draw=None)
