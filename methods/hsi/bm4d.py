"""BM4D (Maggioni et al. 2013) through the ``bm4d`` package: ``bm4d.bm4d(z, sigma,
profile='np')`` with sigma as a std on the data's scale ([0, 1] cubes, so sigma/255).
CPU only (no GPU path: its GPU cells show '-').

Minutes per cube on two cores (SPECS: 69 s at 128x128x31, 260 s at 256x256x31), so the
runner does no untimed warm-up run (``warmup = False``) and times one run
(``max_repeat = 1``): a grid does not pay it three or four times, and at this length the
first-call overhead a warm-up removes is negligible. ``threads`` (default 1) is the
package's own thread count (0 = every core); one thread keeps the output deterministic.
"""
from __future__ import annotations

import numpy as np
import torch

from bench.methods.hsi.common import HsiMethod
from bench.params import Param
from bench.registry import register_method


@register_method
class Bm4d(HsiMethod):
    name = "bm4d"
    devices = ("cpu",)
    description = "BM4D (bm4d package, profile 'np'), sigma on the [0,1] data scale; CPU only"
    parameters = {"profile": "np", "threads": 1}
    # the bm4d package's profile names (8x8 ones need at least 5 bands)
    parameter_specs = {"profile": Param(str, choices=("np", "refilter", "8x8", "8x8refilter")),
                       "threads": Param(int, min=0, help="the package's threads; 0: every core")}
    warmup = False   # minutes per cube: the runner skips the untimed warm-up run
    max_repeat = 1   # and times a single run

    def denoise(self, noisy, sigma, sigma_bands):
        import bm4d

        z = noisy.detach().cpu().numpy().astype(np.float64)
        # the package's own profile selection (5-voxel blocks need >= 5 bands), then its
        # thread count: 1 by default, because with more the package's output varies slightly
        # from run to run (its documentation says so; measured: 2e-7) and grid workers of
        # `--jobs 2` on two cores have one core each
        profile = bm4d._select_profile(str(self.params["profile"]), z)
        profile.num_threads = int(self.params["threads"])
        out = bm4d.bm4d(z, float(sigma), profile=profile)
        return torch.from_numpy(np.ascontiguousarray(out)).to(noisy.device, noisy.dtype)
