"""``box_filter``: a spatial mean filter per band (family ``reference``).

The real-data study's reference row: smoothing alone lifts the classification scores of a
noisy cube (neighbouring pixels mostly share a class), so a denoiser's row is read against
this one. ``size`` x ``size`` window, reflected at the borders, each band on its own.
"""
from __future__ import annotations

import torch

from bench.methods.hsi.common import HsiMethod
from bench.params import Param
from bench.registry import register_method


@register_method
class BoxFilter(HsiMethod):
    name = "box_filter"
    display_name = "Mean filter"
    family = "reference"
    description = "size x size spatial mean per band (the real-data reference row; not a denoiser)"
    parameters = {"size": 3}
    parameter_specs = {"size": Param(int, min=1, help="odd window edge in pixels")}

    def denoise(self, noisy, sigma, sigma_bands):
        k = int(self.params["size"])
        if k % 2 == 0:
            raise ValueError(f"box_filter: size must be odd, got {k}")
        x = noisy.permute(2, 0, 1)[:, None]          # (B, 1, H, W)
        pad = k // 2
        x = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect") if pad else x
        out = torch.nn.functional.avg_pool2d(x, k, stride=1)
        return out[:, 0].permute(1, 2, 0).contiguous()
