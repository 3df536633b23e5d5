"""ISTA, FISTA and ADMM for the LASSO, batched over samples (one row per sample).

    minimise_x  0.5 ||A x - y||^2 + lam ||x||_1

All three solve every sample of the test set at once with dense matrix products, on the
CPU or a GPU, in the dtype of the inputs. ``lam`` is the LASSO weight (default 0.4, the
value behind LISTA's threshold initialisation in SPECS section 1). The step of ISTA and
FISTA is 1/scale with scale = 1.001 ||A||_2^2, exactly as the LISTA family initialises,
so an untrained LISTA reproduces these iterates. A and A^T are applied through the problem's
operator (:class:`bench.operators.MatrixOperator`, ``LassoInput.operator``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from bench.methods.prox import soft_threshold
from bench.operators import LinearOperator, MatrixOperator, as_operator
from bench.params import Param, iterations
from bench.registry import Method, register_method


@dataclass(frozen=True)
class LassoInput:
    A: torch.Tensor  # (m, n)
    y: torch.Tensor  # (N, m), one sample per row

    @property
    def operator(self) -> MatrixOperator:
        """A as an operator: ``forward(x) = x @ A.T``, ``adjoint(r) = r @ A`` (rows are samples)."""
        return MatrixOperator(self.A)


def lipschitz_scale(A: torch.Tensor | LinearOperator) -> torch.Tensor:
    """1.001 ||A||_2^2, the step normaliser of ISTA and of LISTA's initialisation (A a matrix
    or an operator; its ``norm_estimate``, exact for a matrix)."""
    return 1.001 * as_operator(A).norm_estimate() ** 2


def lasso_objective(A: torch.Tensor | LinearOperator, y: torch.Tensor, x: torch.Tensor, lam: float) -> torch.Tensor:
    """Per-sample objective 0.5 ||A x - y||^2 + lam ||x||_1."""
    r = as_operator(A).forward(x) - y
    return 0.5 * (r * r).sum(-1) + lam * x.abs().sum(-1)


class _Lasso(Method):
    suite = "sparse"
    family = "classical"
    devices = ("cpu", "cuda")
    parameters = {"n_iter": 1000, "lam": 0.4}
    parameter_specs = {"n_iter": iterations(),
                       "lam": Param(float, min=0, help="the LASSO weight; 0 is least squares")}
    #: the operator type the solvers apply A through (editing it invalidates stored cells)
    source_dependencies = ("bench.operators",)

    def run(self, inputs: LassoInput) -> torch.Tensor:
        x = None
        for x in self.iterates(inputs):
            pass
        return x

    def _proximal_gradient_setup(self, inputs: LassoInput):
        """The operator, step 1/scale, threshold lam/scale and x^0 = 0, shared by ISTA and
        FISTA. The operator's ``gradient_step`` is v - step A^T (A v - y), for a matrix two
        fused matrix products."""
        op, y = inputs.operator, inputs.y
        scale = lipschitz_scale(op)
        step, theta = float(1.0 / scale), float(self.params["lam"]) / scale
        return op, y, step, theta, y.new_zeros(y.shape[0], *op.in_shape)


@register_method
class Ista(_Lasso):
    name = "ista"
    display_name = "ISTA"
    description = "iterative soft-thresholding, step 1/(1.001 ||A||^2)"

    def iterates(self, inputs: LassoInput) -> Iterator[torch.Tensor]:
        op, y, step, theta, x = self._proximal_gradient_setup(inputs)
        yield x
        for _ in range(int(self.params["n_iter"])):
            x = soft_threshold(op.gradient_step(x, y, step), theta)
            yield x


@register_method
class Fista(_Lasso):
    name = "fista"
    display_name = "FISTA"
    description = "ISTA with Nesterov momentum (Beck and Teboulle 2009)"

    def iterates(self, inputs: LassoInput) -> Iterator[torch.Tensor]:
        op, y, step, theta, x = self._proximal_gradient_setup(inputs)
        v, t = x, 1.0
        yield x
        for _ in range(int(self.params["n_iter"])):
            x_new = soft_threshold(op.gradient_step(v, y, step), theta)
            t_new = (1 + (1 + 4 * t * t) ** 0.5) / 2
            # v = x_new + beta (x_new - x) = lerp(x, x_new, 1 + beta): one pass over memory
            v = torch.lerp(x, x_new, 1.0 + (t - 1) / t_new)
            x, t = x_new, t_new
            yield x


@register_method
class Admm(_Lasso):
    name = "admm"
    display_name = "ADMM"
    description = "ADMM on x = z; x-update by the matrix inversion lemma with a cached Cholesky factor"
    parameters = {"n_iter": 1000, "lam": 0.4, "rho": 1.0}
    parameter_specs = {**_Lasso.parameter_specs, "rho": Param(float, min=0, min_exclusive=True,
                                                              help="the ADMM penalty")}

    def iterates(self, inputs: LassoInput) -> Iterator[torch.Tensor]:
        op, y = inputs.operator, inputs.y
        lam, n_iter, rho = float(self.params["lam"]), int(self.params["n_iter"]), float(self.params["rho"])
        # (A^T A + rho I)^-1 q = (q - A^T (rho I + A A^T)^-1 A q) / rho; the factor needs A itself
        K = op.A @ op.A.T
        K.diagonal().add_(rho)
        L = torch.linalg.cholesky(K)
        Aty = op.adjoint(y)
        z = y.new_zeros(y.shape[0], *op.in_shape)
        u = torch.zeros_like(z)
        yield z
        for _ in range(n_iter):
            q = Aty + rho * (z - u)
            w = torch.cholesky_solve(op.forward(q).T, L).T  # (N, m)
            x = (q - op.adjoint(w)) / rho
            z = soft_threshold(x + u, lam / rho)
            u = u + x - z
            yield z
