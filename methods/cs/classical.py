"""Classical block-CS reconstructions, all started from x0 = Qinit y (the authors'
initialisation, which the learned networks start from too):

* ``qinit`` (family ``reference``): x0 = Qinit y itself, the linear map every method starts
  from (fitted on training blocks: a learned linear reconstruction, and a strong one).
* ``block_ista`` / ``block_fista``: min_x 0.5 ||Phi x - y||^2 + lam ||W x||_1 per 33x33 block, W the
  orthonormal 2-D DCT of the block (``transform=dct``; the l1 weight of coefficient (i, j) is
  (i + j) / 2, ``weighting=frequency``, or 1 with the DC coefficient free, ``flat``) or the identity (``transform=identity``: the l1 prior ISTA-Net's phases reduce to with
  identity transforms). Batched over every block of the set; the gradient step is the one
  ISTA-Net uses (:func:`bench.methods.cs.common.gradient_step`). Phi has orthonormal rows,
  so ||Phi||^2 = 1 and ``step`` 1 is 1/L.
* ``tv_admm``: min_x 0.5 ||A x - y||^2 + lam TV(x) on the zero-padded image (isotropic TV,
  periodic differences), by ADMM with the splits u = x (the data term, solved in closed form
  per block because A A^T = I) and z = D x (group soft threshold); the x-step is diagonal
  in Fourier. Images of one size run as one batch.
* ``pnp_hqs``: plug-and-play half-quadratic splitting with BM3D (the ``bm3d`` package, CPU)
  as the denoiser: x_k = argmin 0.5 ||A x - y||^2 + rho_k/2 ||x - z_{k-1}||^2 (closed form),
  z_k = BM3D(x_k, sigma_k), with sigma_k decreasing geometrically from ``sigma_start`` to
  ``sigma_end`` (gray levels) and rho_k = lam max(sigma_noise, 0.5/255)^2 / sigma_k^2 (the
  DPIR schedule; without measurement noise a near-projection onto {A x = y}); returns z_K.
  BM3D runs on one thread of its own (deterministic output), profile 'np', both stages.
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch

from bench.operators import FiniteDifference, blocks_to_image, crop
from bench.params import Param, iterations
from bench.registry import Method, register_method
from bench.methods.cs.common import (BLOCK, CsInput, data_prox, gradient_step, group_by_shape, initial_blocks,
                                     padded_images)
from bench.methods.prox import soft_threshold

TRANSFORMS = ("dct", "identity")


def dct_matrix(n: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
    """The orthonormal DCT-II matrix C (n x n): C[k, j] = s_k cos(pi (j + 1/2) k / n)."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(n, dtype=torch.float64)[None, :]
    c = torch.cos(math.pi * (j + 0.5) * k / n) * math.sqrt(2.0 / n)
    c[0] /= math.sqrt(2.0)
    return c.to(device, dtype)


class BlockTransform:
    """An orthonormal transform of flattened 33x33 blocks (N, 1089) and the weights of its
    coefficients in the l1 prior."""

    def __init__(self, kind: str, dtype, device, weighting: str = "flat"):
        self.kind = kind
        if kind == "dct":
            self.c = dct_matrix(BLOCK, dtype, device)
            if weighting == "frequency":
                # the weight of coefficient (i, j) grows with its frequency, (i + j) / 2
                k = torch.arange(BLOCK, dtype=dtype, device=device)
                self.weight = ((k[:, None] + k[None, :]) / 2).reshape(-1)
            else:
                self.weight = torch.ones(BLOCK * BLOCK, dtype=dtype, device=device)
                self.weight[0] = 0.0            # the DC coefficient is not penalised
        elif kind == "identity":
            self.weight = None
        else:
            raise ValueError(f"transform {kind!r}: expected one of {', '.join(TRANSFORMS)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "identity":
            return x
        b = x.reshape(-1, BLOCK, BLOCK)
        return (self.c @ b @ self.c.T).reshape(-1, BLOCK * BLOCK)

    def inverse(self, a: torch.Tensor) -> torch.Tensor:
        if self.kind == "identity":
            return a
        b = a.reshape(-1, BLOCK, BLOCK)
        return (self.c.T @ b @ self.c).reshape(-1, BLOCK * BLOCK)

    def prox(self, x: torch.Tensor, threshold: float) -> torch.Tensor:
        """argmin_z 0.5 ||z - x||^2 + threshold ||W z||_1 (weighted soft threshold in W's domain)."""
        t = threshold if self.weight is None else threshold * self.weight
        return self.inverse(soft_threshold(self.forward(x), t))


WEIGHTINGS = ("flat", "frequency")
# defaults: the best of lam in {1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2} x both weightings on Monarch,
# Parrots and cameraman at 10 and 25 % (FISTA, 200 iterations); none beats x0 = Qinit y there
_SPARSE_PARAMS = {"n_iter": 200, "lam": 0.003, "step": 1.0, "transform": "dct", "weighting": "frequency"}
_SPARSE_SPECS = {"n_iter": iterations(), "lam": Param(float, min=0, help="l1 weight ([0, 1] images)"),
                 "step": Param(float, min=0, max=2, min_exclusive=True, max_exclusive=True,
                               help="gradient step (1 = 1/||Phi||^2)"),
                 "transform": Param(str, choices=TRANSFORMS),
                 "weighting": Param(str, choices=WEIGHTINGS,
                                    help="DCT weights: flat (1, DC 0) or frequency ((i + j) / 2 for coefficient i, j)")}


class _BlockSparse(Method):
    suite = "cs"
    family = "classical"
    devices = ("cpu", "cuda")
    parameters = dict(_SPARSE_PARAMS)
    parameter_specs = dict(_SPARSE_SPECS)
    momentum = False

    def block_iterates(self, inputs: CsInput) -> Iterator[torch.Tensor]:
        """Every block of the set (N, 1089) after each iteration, x0 = Qinit y first."""
        y = inputs.stacked()
        phi = inputs.phi.to(y.dtype)
        phi_t_phi, phi_t_y = phi.T @ phi, y @ phi
        w = BlockTransform(self.params["transform"], y.dtype, y.device, self.params["weighting"])
        step, lam = float(self.params["step"]), float(self.params["lam"])
        x = initial_blocks(inputs).to(y.dtype)
        yield x
        z, t = x, 1.0
        for _ in range(int(self.params["n_iter"])):
            x_new = w.prox(gradient_step(z, phi_t_phi, phi_t_y, step), step * lam)
            if self.momentum:
                t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
                z = x_new + ((t - 1) / t_new) * (x_new - x)
                t = t_new
            else:
                z = x_new
            x = x_new
            yield x

    def iterates(self, inputs: CsInput):
        for x in self.block_iterates(inputs):
            yield inputs.split(x)

    def run(self, inputs: CsInput):
        for x in self.block_iterates(inputs):
            pass
        return inputs.split(x)


@register_method
class Ista(_BlockSparse):
    name = "block_ista"
    display_name = "Block-ISTA"
    description = "ISTA per 33x33 block, l1 prior on the block DCT (or the pixels), from Qinit y"


@register_method
class Fista(_BlockSparse):
    name = "block_fista"
    display_name = "Block-FISTA"
    momentum = True
    description = "FISTA per 33x33 block, l1 prior on the block DCT (or the pixels), from Qinit y"


@register_method
class Qinit(Method):
    name = "qinit"
    display_name = "Qinit"
    suite = "cs"
    family = "reference"
    devices = ("cpu", "cuda")
    description = "x0 = Qinit y per block: the least-squares linear map every method starts from (a reference row)"

    def run(self, inputs: CsInput):
        return inputs.split(initial_blocks(inputs))


# --------------------------------------------------------------------------- TV
@register_method
class TvAdmm(Method):
    name = "tv_admm"
    display_name = "TV"
    suite = "cs"
    family = "classical"
    devices = ("cpu", "cuda")
    # lam: the best of {0.001, 0.002, 0.003, 0.01, 0.03} on Monarch, Parrots, cameraman at 10 and 25 %
    parameters = {"n_iter": 100, "lam": 0.001, "rho": 0.1}
    parameter_specs = {"n_iter": iterations(), "lam": Param(float, min=0, help="TV weight ([0, 1] images)"),
                       "rho": Param(float, min=0, min_exclusive=True, help="ADMM penalty")}
    description = "isotropic TV on the padded image by ADMM (data term split off, solved per block in closed form)"

    def _group_iterates(self, inputs: CsInput, index: list[int]) -> Iterator[torch.Tensor]:
        """The padded images of ``index`` (one shape) as a batch (n, Hp, Wp), per iteration."""
        y = torch.stack([inputs.measurements[i] for i in index])
        phi = inputs.phi.to(y.dtype)
        phi_t_y = y @ phi
        x = torch.stack([blocks_to_image(b, inputs.padded_shapes[i], BLOCK)
                         for b, i in zip(y @ inputs.qinit.T.to(y.dtype), index)])
        yield x
        lam, rho = float(self.params["lam"]), float(self.params["rho"])
        d = FiniteDifference(tuple(x.shape[-2:]), dims=(-2, -1), boundary="periodic", dtype=y.dtype, device=y.device)
        denom = 1.0 + d.gram_eigenvalues()
        u, z = x.clone(), d.forward(x)
        d1, d2 = torch.zeros_like(u), torch.zeros_like(z)
        for _ in range(int(self.params["n_iter"])):
            rhs = (u - d1) + d.adjoint(z - d2)
            x = torch.fft.ifft2(torch.fft.fft2(rhs) / denom).real
            u = torch.stack([data_prox(v, phi, pty, rho) for v, pty in zip(x + d1, phi_t_y)])
            dx = d.forward(x)
            v = dx + d2
            norm = v.pow(2).sum(dim=-3, keepdim=True).sqrt()
            z = v * torch.clamp(1 - (lam / rho) / norm.clamp_min(1e-12), min=0)
            d1 = d1 + x - u
            d2 = d2 + dx - z
            yield x

    def iterates(self, inputs: CsInput):
        groups = list(group_by_shape(inputs.padded_shapes).values())
        streams = [self._group_iterates(inputs, idx) for idx in groups]
        for batches in zip(*streams):
            out: list = [None] * len(inputs.shapes)
            for idx, batch in zip(groups, batches):
                for k, i in enumerate(idx):
                    out[i] = crop(batch[k], inputs.shapes[i])
            yield tuple(out)

    def run(self, inputs: CsInput):
        for out in self.iterates(inputs):
            pass
        return out


# --------------------------------------------------------------------------- PnP
@register_method
class PnpHqs(Method):
    name = "pnp_hqs"
    display_name = "PnP-BM3D"
    suite = "cs"
    family = "classical"
    devices = ("cpu",)
    warmup = False          # BM3D: seconds per call; one timed run
    max_repeat = 1
    parameters = {"n_iter": 8, "sigma_start": 40.0, "sigma_end": 4.0, "lam": 1.0}
    parameter_specs = {"n_iter": iterations(),
                       "sigma_start": Param(float, min=0, min_exclusive=True, help="first BM3D sigma (gray levels)"),
                       "sigma_end": Param(float, min=0, min_exclusive=True, help="last BM3D sigma (gray levels)"),
                       "lam": Param(float, min=0, min_exclusive=True, help="weight of the data step's penalty")}
    description = "plug-and-play HQS with BM3D (bm3d package, CPU) as the denoiser, decreasing sigma, from Qinit y"

    def sigmas(self) -> list[float]:
        """The BM3D sigma of each iteration ([0, 1] units): geometric from start to end."""
        n, a, b = int(self.params["n_iter"]), float(self.params["sigma_start"]), float(self.params["sigma_end"])
        if n == 1:
            return [b / 255.0]
        return [a * (b / a) ** (k / (n - 1)) / 255.0 for k in range(n)]

    def iterates(self, inputs: CsInput):
        import bm3d

        # one thread of the package's own: with more its output varies from run to run
        # (as bm4d's, measured 1e-7), and grid workers have a core each
        profile = bm3d.BM3DProfile()
        profile.num_threads = 1
        y = inputs.stacked()
        phi = inputs.phi.to(y.dtype)
        x0 = padded_images(inputs, initial_blocks(inputs).to(y.dtype))
        pty = [m @ phi for m in inputs.measurements]
        z = list(x0)
        yield tuple(crop(v, s) for v, s in zip(z, inputs.shapes))
        noise = max(float(inputs.sigma), 0.5 / 255.0)
        for sigma in self.sigmas():
            rho = float(self.params["lam"]) * noise ** 2 / sigma ** 2
            for i in range(len(z)):
                x = data_prox(z[i], phi, pty[i], rho)
                den = bm3d.bm3d(x.detach().cpu().double().numpy(), sigma_psd=sigma, profile=profile)
                z[i] = torch.from_numpy(np.ascontiguousarray(den)).to(x.device, x.dtype)
            yield tuple(crop(v, s) for v, s in zip(z, inputs.shapes))

    def run(self, inputs: CsInput):
        for out in self.iterates(inputs):
            pass
        return out
