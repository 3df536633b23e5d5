"""ISTA, FISTA and ADMM against the LASSO optimum computed by cvxpy."""
from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
import torch

from bench.datasets.sparse import make_matrix, sample_codes
from bench.methods.prox import soft_threshold
from bench.methods.sparse.classical import Admm, Fista, Ista, LassoInput, lasso_objective

LAM = 0.1


@pytest.fixture(scope="module")
def small_problem():
    A = make_matrix(30, 60, seed=3)
    g = torch.Generator().manual_seed(4)
    x = sample_codes(4, 60, 0.1, g)
    y = x @ A.T + 0.01 * torch.randn(4, 30, generator=g, dtype=torch.float64)
    optima = []
    for i in range(4):
        v = cp.Variable(60)
        prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(A.numpy() @ v - y[i].numpy()) + LAM * cp.norm1(v)))
        prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
        optima.append(prob.value)
    return A, y, np.array(optima)


@pytest.mark.parametrize("cls, n_iter", [(Fista, 3000), (Admm, 3000)])
def test_reaches_the_lasso_optimum(small_problem, cls, n_iter):
    A, y, optima = small_problem
    x = cls(n_iter=n_iter, lam=LAM).run(LassoInput(A, y))
    obj = lasso_objective(A, y, x, LAM).numpy()
    rel = np.abs(obj - optima) / np.abs(optima)
    assert rel.max() < 1e-6, rel


def test_ista_objective_never_increases(small_problem):
    A, y, _ = small_problem
    values = [lasso_objective(A, y, x, LAM) for x in Ista(n_iter=500, lam=LAM).iterates(LassoInput(A, y))]
    diffs = torch.stack(values[1:]) - torch.stack(values[:-1])
    assert (diffs <= 1e-12).all(), float(diffs.max())
    assert values[-1].sum() < values[1].sum()


def test_ista_is_the_documented_iteration(small_problem):
    A, y, _ = small_problem
    scale = 1.001 * torch.linalg.matrix_norm(A, ord=2) ** 2
    x = torch.zeros(4, 60, dtype=torch.float64)
    it = Ista(n_iter=3, lam=0.4).iterates(LassoInput(A, y))
    assert torch.equal(next(it), x)
    for got in it:
        x = soft_threshold(x - (x @ A.T - y) @ A / scale, 0.4 / scale)
        torch.testing.assert_close(got, x)


def test_runs_in_float32_on_device(device):
    A = make_matrix(20, 40, 0).float().to(device)
    y = torch.randn(5, 20, device=device)
    for cls in (Ista, Fista, Admm):
        out = cls(n_iter=20).run(LassoInput(A, y))
        assert out.dtype == torch.float32 and out.device.type == device
