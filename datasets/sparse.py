"""The LASSO sparse-coding problem of LISTA-CP (NeurIPS 2018) and ALISTA (ICLR 2019).

SPECS section 1: A is m x n with i.i.d. N(0, 1/m) entries, each column then scaled to
unit l2 norm; x* has entries nonzero with probability p (Bernoulli), values N(0, 1).
The matrix and the test set come from fixed seeds so that classical and learned methods
are compared on the very same problem instance and samples.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from bench.errors import DataError
from bench.params import Param
from bench.registry import Dataset, register_dataset


@dataclass(frozen=True)
class LassoData:
    A: torch.Tensor  # (m, n), float64, unit-norm columns
    x: torch.Tensor  # (N, n), float64, the true sparse codes (one row per sample)
    p: float
    instance_id: str  # hash of A: checkpoints of learned methods belong to one instance


def make_matrix(m: int, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(m, n, generator=g, dtype=torch.float64) / m ** 0.5
    return A / A.norm(dim=0, keepdim=True)


def sample_codes(count: int, n: int, p: float, generator: torch.Generator,
                 dtype=torch.float64) -> torch.Tensor:
    """Bernoulli(p)-Gaussian codes, one row per sample."""
    support = torch.rand(count, n, generator=generator, dtype=torch.float64) < p
    values = torch.randn(count, n, generator=generator, dtype=torch.float64)
    return (support * values).to(dtype)


def instance_hash(A: torch.Tensor) -> str:
    return hashlib.sha256(A.contiguous().numpy().tobytes()).hexdigest()[:16]


@register_dataset
class GaussianLasso(Dataset):
    name = "gaussian_lasso"
    suite = "sparse"
    description = "column-normalised Gaussian A (m x n), Bernoulli(p)-Gaussian codes, fixed test set"
    parameters = {"m": 250, "n": 500, "p": 0.1, "n_test": 1000, "instance_seed": 0}
    parameter_specs = {"m": Param(int, min=1, help="measurements"), "n": Param(int, min=1, help="code length"),
                       "p": Param(float, min=0, max=1, min_exclusive=True, help="probability of a nonzero entry"),
                       "n_test": Param(int, min=1), "instance_seed": Param(int, min=0)}

    def load(self, data_root=None) -> LassoData:
        m, n, p = int(self.params["m"]), int(self.params["n"]), float(self.params["p"])
        seed = int(self.params["instance_seed"])
        A = make_matrix(m, n, seed)
        # the test set has its own stream so that changing n_test keeps the first samples
        g = torch.Generator().manual_seed(seed + 1_000_003)
        x = sample_codes(int(self.params["n_test"]), n, p, g)
        if not bool(x.any()):
            # the NMSE divides by the codes' energy: undefined for a set of zero codes
            raise DataError(f"{self.label(self.params)}: every one of the {x.shape[0]} test codes is zero (n={n}, "
                            f"p={p:g}), so the NMSE is undefined; raise p, n or n_test")
        return LassoData(A=A, x=x, p=p, instance_id=instance_hash(A))
