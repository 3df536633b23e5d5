"""Diagnostics of the SMDS-Net / STAR-Net pipeline (issue 17's measured causes), not a method.

``subspace_floor``: the best any network of the family can do inside its pipeline. Per block
(56x56, stride 12, the authors' padding), the networks see the noisy block projected on the
HySime basis E estimated from the NLM-prefiltered *noisy* block and return E times their
estimate, so every output block lies in span(E). The floor projects the *clean* block on
that same E and merges the blocks with the networks' weights: its PSNR bounds what the
denoising inside the subspace can reach, and its drop with ``max_rank=9`` measures the cap.

``python -m bench.methods.hsi.diagnostics`` prints it for the test split at sigma 10-70
(about 5 minutes on one core: the NLM prefilter of every block). The noise is the suite's
model (``hsi_gaussian``) drawn with seed 0, not a stored cell's draws.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from bench.methods.hsi import blocks as hb


def subspace_floor(clean: torch.Tensor, noisy: torch.Tensor, max_ranks=(9, 0),
                   block: int = hb.BLOCK, stride: int = hb.BLOCK_STRIDE) -> dict[int, np.ndarray]:
    """(H, W, B) clean and noisy cubes -> {max_rank: the merged projection of the clean cube}
    (0: every HySime dimension, the authors' code; 9: the grids' cap)."""
    nb, geometry = hb.make_blocks(noisy.to(torch.float32), block, stride)
    cb, _ = hb.make_blocks(clean.to(torch.float32), block, stride)
    bases = hb.subspace_bases(nb, 0)     # every HySime dimension, in HySime's order (zero columns up to 9)
    out = {}
    for cap in max_ranks:
        proj = torch.empty_like(cb)
        for i, e in enumerate(bases):
            e = e[:, :cap] if cap else e
            proj[i] = torch.einsum("hwb,bc,dc->hwd", cb[i], e, e)
        out[cap] = hb.merge_blocks(proj, geometry, stride).double().numpy()
    return out


def main(argv=None) -> int:
    from bench import paths
    from bench import registry as R
    from bench.datasets.hsi_noise import HsiGaussian
    from bench.metrics import hsi as M

    parser = argparse.ArgumentParser(prog="python -m bench.methods.hsi.diagnostics", description=__doc__.split("\n\n")[1])
    parser.add_argument("--dataset", default="hsi_split[split=test]")
    parser.add_argument("--sigma", type=float, nargs="+", default=[10, 30, 50, 70])
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)
    R.load_all()
    torch.set_num_threads(1)
    from bench.selectors import parse_selector
    name, params = parse_selector(args.dataset)
    data = R.DATASETS[name](**params).load(paths.data_root(args.data_root))
    suite = R.SUITES.get_or_fail("hsi")
    for sigma in args.sigma:
        task = suite.make_task(data, HsiGaussian(sigma=float(sigma)), 0, "cpu")
        for cube, clean, noisy in zip(data.names, data.cubes, task.inputs.noisy):
            floors = subspace_floor(clean, noisy)
            ref = clean.double().numpy()
            print(json.dumps({"cube": cube, "sigma": sigma, "floor_psnr_cap9": round(M.psnr(floors[9], ref), 2),
                              "floor_psnr_uncapped": round(M.psnr(floors[0], ref), 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
