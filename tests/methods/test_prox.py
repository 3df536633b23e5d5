"""The one soft-threshold module (bench.methods.prox): its operator for t >= 0 gives the
values of every formula the suites wrote before (bit for bit where the formula was the same,
and the same values downstream where only the sign of a zero could differ), and the two
learned-threshold variants keep their papers' behaviour for negative thresholds."""
from __future__ import annotations

import pytest
import torch

from bench import contracts
from bench import registry as R
from bench.methods.prox import (soft_threshold, soft_threshold_ista_net, soft_threshold_smds_net,
                                soft_threshold_smds_net_)

DTYPES = [torch.float32, torch.float64]


def _bits(x):
    return x.view(torch.int32 if x.dtype == torch.float32 else torch.int64)


# --------------------------------------------------------------------------- the former formulas
def _sparse_before(z, theta):                      # methods/sparse/classical.py, LISTA, IPI
    if not isinstance(theta, torch.Tensor):
        theta = torch.as_tensor(theta, dtype=z.dtype, device=z.device)
    return z - torch.clamp(z, -theta, theta)


def _ista_net_before(x, t):                        # methods/cs/common.py (ISTA-Net and the cs classical methods)
    return torch.sign(x) * torch.relu(torch.abs(x) - t)


def _hsi_classical_before(x, t):                   # methods/hsi/classical.py (LRTDTV)
    return torch.sign(x) * torch.clamp(x.abs() - t, min=0)


def _thresholds(dtype, g):
    return [0.0, 0.37, 1e-3, torch.tensor(0.37, dtype=dtype), 0.5 * torch.rand(64, generator=g, dtype=dtype),
            torch.zeros(64, dtype=dtype)]


def test_soft_threshold_values():
    z = torch.tensor([-2.0, -0.5, 0.0, 0.375, 1.5])
    assert torch.equal(soft_threshold(z, 0.5), torch.tensor([-1.5, 0.0, 0.0, 0.0, 1.0]))
    assert torch.equal(soft_threshold(z, torch.tensor([0.0, 1.0, 0.0, 0.125, 2.0])),
                       torch.tensor([-2.0, 0.0, 0.0, 0.25, 0.0]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_for_nonnegative_thresholds_every_former_formula_gives_the_same_values(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 64, generator=g, dtype=dtype)
    x[0, :4] = torch.tensor([0.37, -0.37, 0.0, -0.0], dtype=dtype)   # on the threshold, and both zeros
    for t in _thresholds(dtype, g):
        new = soft_threshold(x, t)
        assert torch.equal(_bits(new), _bits(_sparse_before(x, t)))   # the same formula: the same bits
        for before in (_ista_net_before, _hsi_classical_before, soft_threshold_smds_net):
            old = before(x, t)
            assert new.dtype == old.dtype and torch.equal(new, old)    # -0.0 == 0.0
            nonzero = new != 0
            assert torch.equal(_bits(new[nonzero]), _bits(old[nonzero]))   # only zeros' signs may differ


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_is_the_former_ipi_buffers(dtype):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 30, generator=g, dtype=dtype)
    t_lam = 0.123456789
    R_, E_old = torch.empty_like(x), torch.empty_like(x)
    torch.clamp(x, -t_lam, t_lam, out=R_)
    torch.sub(x, R_, out=E_old)
    E_new = torch.full_like(x, float("nan"))
    got = soft_threshold(x, t_lam, out=E_new)
    assert got is E_new and torch.equal(_bits(E_new), _bits(E_old))
    assert torch.equal(_bits(soft_threshold(x, t_lam)), _bits(E_old))


def test_negative_learned_thresholds_keep_each_papers_formula():
    x = torch.tensor([-3.0, -0.5, -0.0, 0.0, 0.25, 2.0], dtype=torch.float64)
    t = -1.0
    # ISTA-Net: sign(x) (|x| + |t|), zero stays zero
    want = torch.tensor([-4.0, -1.5, 0.0, 0.0, 1.25, 3.0], dtype=torch.float64)
    assert torch.equal(soft_threshold_ista_net(x, t), want)
    # SMDS-Net / STAR-Net: relu(x - t) - relu(-x - t) = x + clamp(x, t, -t): 2x inside |t|
    want = torch.tensor([-4.0, -1.0, 0.0, 0.0, 0.5, 3.0], dtype=torch.float64)
    assert torch.equal(soft_threshold_smds_net(x, t), want)
    assert torch.equal(torch.relu(x - t) - torch.relu(-x - t), want)
    assert not torch.equal(soft_threshold_ista_net(x, t), soft_threshold_smds_net(x, t))


def test_smds_net_threshold_is_the_authors_formula_for_any_sign():
    """relu(x - t) - relu(-x - t), also where a learned t is negative (SMDS-Net's files have such)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 729, generator=g, dtype=torch.float64)
    for t in (0.3 * torch.randn(729, generator=g, dtype=torch.float64), torch.full((729,), 0.2, dtype=torch.float64),
              0.1, -0.1, 0.0):
        ref = torch.relu(x - t) - torch.relu(-x - t)
        assert torch.allclose(soft_threshold_smds_net(x, t), ref, atol=1e-12)
        assert torch.allclose(soft_threshold_smds_net_(x.clone(), t), ref, atol=1e-12)


# --------------------------------------------------------------------------- downstream
@pytest.mark.parametrize("name, module, before, params", [
    ("block_ista", "bench.methods.cs.classical", _ista_net_before, {"n_iter": 30}),
    ("block_fista", "bench.methods.cs.classical", _ista_net_before, {"n_iter": 30, "transform": "identity"}),
    ("block_fista", "bench.methods.cs.classical", _ista_net_before, {"n_iter": 30, "weighting": "flat"}),
    ("lrtdtv", "bench.methods.hsi.classical", _hsi_classical_before, {"n_iter": 8}),
])
def test_methods_that_changed_formula_give_the_same_results(monkeypatch, name, module, before, params):
    """block_ista/block_fista (cs) and LRTDTV (hsi) used sign(x) max(|x| - t, 0) and now use
    x - clamp(x, -t, t): their results are the same (compared with torch.equal, which takes
    -0.0 == 0.0; a value that moved would fail)."""
    import importlib
    R.load_all()
    cls = R.METHODS[name]
    suite = R.SUITES[cls.suite]
    task, tiny = suite.tiny_task(name, "cpu", 0)

    def run():
        method = cls(**{**tiny, **params})
        method.setup(R.MethodContext(device="cpu", seed=0, problem_id=task.problem_id, problem=task.problem))
        return method.run(task.inputs)

    new = run()
    monkeypatch.setattr(importlib.import_module(module), "soft_threshold", before)
    old = run()
    new_t, old_t = contracts.tensors(new), contracts.tensors(old)
    assert len(new_t) == len(old_t) > 0
    for a, b in zip(new_t, old_t):
        assert torch.equal(a, b)
