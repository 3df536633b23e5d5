"""The LISTA family: the invariant (untrained = ISTA), support selection, ALISTA's weight,
and the method's checkpoint semantics."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from bench import registry as R
from bench.datasets.sparse import make_matrix, sample_codes
from bench.errors import CheckpointError
from bench.methods.sparse.classical import Ista, LassoInput, lipschitz_scale
from bench.methods.sparse.unrolled import (VARIANTS, UnrolledIsta, analytic_weight, analytic_weight_closed_form,
                                           analytic_weight_objective, analytic_weight_qp, parameter_count,
                                           shrink_ss, support_percent)

LEARNED = ("lista", "lista_cp", "lista_cpss", "tilista", "alista")


@pytest.fixture(scope="module")
def problem():
    A = make_matrix(50, 100, seed=5)
    g = torch.Generator().manual_seed(6)
    x = sample_codes(16, 100, 0.1, g)
    y = x @ A.T + 0.01 * torch.randn(16, 50, generator=g, dtype=torch.float64)
    return A, x, y


def _ista_iterates(A, y, n_iter, lam=0.4):
    return list(Ista(n_iter=n_iter, lam=lam).iterates(LassoInput(A, y)))


@pytest.mark.parametrize("variant, support_selection, weight", [
    ("lista", None, None), ("lista_cp", None, None), ("tilista", False, None),
    ("lista_cpss", False, None), ("alista", False, "A/scale"),
])
def test_untrained_network_gives_the_iterates_of_ista(problem, variant, support_selection, weight):
    A, _, y = problem
    W = A / lipschitz_scale(A) if weight == "A/scale" else None
    net = UnrolledIsta(A, variant, n_layers=16, lam=0.4, weight=W, support_selection=support_selection)
    with torch.no_grad():
        ours = list(net.iterates(y))
    ref = _ista_iterates(A, y, 16)
    assert len(ours) == len(ref) == 17
    assert torch.equal(ours[0], torch.zeros_like(ours[0]))
    for k, (a, b) in enumerate(zip(ours, ref)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=f"{variant}: layer {k} differs from ISTA")


def test_invariant_holds_in_float32(problem):
    A, _, y = problem
    A32, y32 = A.float(), y.float()
    net = UnrolledIsta(A32, "lista_cp", n_layers=16)
    with torch.no_grad():
        ours = net(y32)
    torch.testing.assert_close(ours, _ista_iterates(A32, y32, 16)[-1], rtol=1e-4, atol=1e-5)


def test_every_variant_is_a_row_of_the_table_and_registered():
    R.load_all()
    assert set(VARIANTS) == set(LEARNED)
    for name in LEARNED:
        cls = R.METHODS[name]
        assert cls.family == "learned" and cls.suite == "sparse"
        assert cls.parameters["n_layers"] == 16 and cls.parameters["checkpoint"] == "shipped"


@pytest.mark.parametrize("variant, expected", [
    ("lista", 16 * (500 * 500 + 500 * 250 + 1)), ("lista_cp", 16 * (250 * 500 + 1)),
    ("lista_cpss", 16 * (250 * 500 + 1)), ("tilista", 250 * 500 + 32), ("alista", 32),
])
def test_parameter_counts(variant, expected):
    assert parameter_count(variant, (250, 500), 16) == expected
    A = make_matrix(25, 50, seed=0)
    net = UnrolledIsta(A, variant, n_layers=3, weight=A if variant == "alista" else None)
    assert net.learned_parameter_count() == parameter_count(variant, (25, 50), 3)


def test_support_selection_passes_the_largest_entries_unshrunk():
    z = torch.linspace(-1, 1, 201).reshape(1, -1)
    theta = torch.tensor(0.1)
    out = shrink_ss(z, theta, percent=5.0)
    big = z.abs() > torch.quantile(z.abs(), 0.95, dim=-1, keepdim=True, interpolation="nearest")
    assert big.sum() >= 8
    assert torch.equal(out[big], z[big])                       # selected: unshrunk
    small = ~big
    torch.testing.assert_close(out[small], torch.sign(z[small]) * (z[small].abs() - 0.1).clamp(min=0))
    assert torch.equal(shrink_ss(z, theta, 0.0), torch.sign(z) * (z.abs() - theta).clamp(min=0))
    assert support_percent(1) == pytest.approx(1.2) and support_percent(16) == 13.0


def test_support_selection_mask_carries_no_gradient():
    z = torch.randn(4, 100, requires_grad=True)
    theta = torch.tensor(0.3, requires_grad=True)
    shrink_ss(z, theta, 10.0).sum().backward()
    assert torch.isfinite(z.grad).all() and theta.grad is not None


def test_alista_weight_qp_matches_the_closed_form():
    A = make_matrix(20, 40, seed=1)
    Wc = analytic_weight_closed_form(A)
    Wq = analytic_weight_qp(A)
    torch.testing.assert_close(torch.diagonal(Wc.T @ A), torch.ones(40, dtype=torch.float64))
    rel = float((Wq - Wc).norm() / Wc.norm())
    assert rel < 1e-6, rel
    assert abs(analytic_weight_objective(Wq, A) - analytic_weight_objective(Wc, A)) < 1e-6 * analytic_weight_objective(Wc, A)
    # the closed form is optimal: a feasible perturbation cannot lower the objective
    g = torch.Generator().manual_seed(0)
    D = torch.randn(20, 40, generator=g, dtype=torch.float64) * 1e-3
    D = D - A * ((D * A).sum(0, keepdim=True) / (A * A).sum(0, keepdim=True))  # keep diag(W^T A) = 1
    assert analytic_weight_objective(Wc + D, A) > analytic_weight_objective(Wc, A)


def test_alista_weight_is_cached_per_instance(tmp_path):
    A = make_matrix(20, 40, seed=2)
    W1, info1 = analytic_weight(A, "qp", cache_dir=str(tmp_path))
    W2, info2 = analytic_weight(A, "qp", cache_dir=str(tmp_path))
    assert "cached" not in info1 and "cached" in info2
    assert torch.equal(W1, W2) and info2["relative_difference"] < 1e-6
    assert len(list(tmp_path.iterdir())) == 1


def _tiny(name):
    R.load_all()
    suite = R.SUITES["sparse"]
    task, params = suite.tiny_task(name, "cpu", 0)
    return suite, task, params


@pytest.mark.parametrize("name", LEARNED)
def test_untrained_method_yields_x0_then_each_layer(name):
    suite, task, params = _tiny(name)
    assert params["checkpoint"] == "none"
    m = R.METHODS[name](**params)
    m.setup(R.MethodContext(device="cpu", seed=0, problem_id=task.problem_id, problem=task.problem))
    its = list(m.iterates(task.inputs))
    assert len(its) == params["n_layers"] + 1 and float(its[0].abs().sum()) == 0
    assert m.parameter_count() == parameter_count(name, (20, 40), params["n_layers"])
    assert "untrained" in m.row_extras()["checkpoint"]
    assert "checkpoint=None" in R.METHODS[name].label(m.params)  # none is None, as the selector reads it


def test_missing_checkpoint_fails_with_the_command_to_train_it(tmp_path):
    suite, task, _ = _tiny("lista_cp")
    m = R.METHODS["lista_cp"]()
    with pytest.raises(CheckpointError, match="python -m bench train --suite sparse --method lista_cp --snr 17"):
        m.setup(R.MethodContext(device="cpu", seed=0, problem_id="x",
                                problem=dataclasses.replace(task.problem, snr_db=17.0)))
    with pytest.raises(CheckpointError, match="needs the cell's SNR"):
        R.METHODS["lista_cp"]().setup(R.MethodContext(device="cpu", seed=0, problem_id="x"))
    with pytest.raises(CheckpointError, match="does not exist"):
        R.METHODS["lista_cp"](checkpoint=str(tmp_path / "nope.npz")).setup(
            R.MethodContext(device="cpu", seed=0, problem_id="x"))


def test_sparse_report_draws_the_layer_figure_and_table(tmp_path):
    """Learned (untrained here) and classical rows on the same layer axis; the skip rule for
    checkpoint=shipped at an SNR without a shipped checkpoint."""
    from bench.cli import main

    torch.set_num_threads(1)
    store = str(tmp_path / "r.sqlite")
    rc = main(["run", "--suite", "sparse", "--dataset", "gaussian_lasso[m=20,n=40,n_test=50]",
               "--degradation", "awgn_snr[snr_db=inf]", "--degradation", "awgn_snr[snr_db=40]",
               "--method", "ista[n_iter=20]", "--method", "lista_cp[checkpoint=none,n_layers=16]",
               "--method", "alista[checkpoint=none,analytic_weight=closed_form]",
               "--repeat", "1", "--no-progress", "--results", store])
    assert rc == 0
    out = tmp_path / "rep"
    assert main(["report", "--suite", "sparse", "--results", store, "--out", str(out)]) == 0
    md = next(out.glob("sparse_layers*.md")).read_text()
    assert "LISTA-CP°" in md and "° untrained" in md and "params" in md and "CPU s/1000" in md
    assert next(out.glob("sparse_nmse_layers*.png")).stat().st_size > 0
    # untrained LISTA-CP = ISTA: the same NMSE at layer 16 in the table
    row = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert row["ISTA (K=20)"].split("|")[2].strip().strip("*") == \
        row["LISTA-CP°"].split("|")[2].strip().strip("*")


def test_shipped_checkpoint_cells_without_a_checkpoint_are_skipped_with_the_train_command():
    from bench.grid import build_cells
    R.load_all()
    suite = R.SUITES["sparse"]
    cells = build_cells("sparse", ["gaussian_lasso"], ["awgn_snr[snr_db=7]"], ["lista_cp", "ista"], ["cpu"], 0)
    reasons = {c.method: suite.skip_reason(c) for c in cells}
    assert reasons["ista"] is None
    assert "python -m bench train --suite sparse --method lista_cp --snr 7" in reasons["lista_cp"]


def test_shipped_checkpoints_fit_the_budget_and_match_the_command_that_remakes_them():
    """Every learned network has a checkpoint at SNR inf and 40 dB for the default instance;
    each stores the recipe and command that `bench train` builds today, its stored (encoded)
    state validates like the trained one; each file stays under 5 MiB and all of them within
    the suite's 40 MB."""
    import math
    import os

    from bench.datasets.sparse import instance_hash
    from bench.methods.sparse.lista import CHECKPOINT_DIR, default_checkpoint
    from bench.methods.sparse.unrolled import train_command
    from bench.methods.sparse.training import recipe_config
    from bench.checkpoints import CHECKPOINT_MAX_BYTES, read_checkpoint_meta

    instance = instance_hash(make_matrix(250, 500, 0))
    for name in LEARNED:
        for snr in (math.inf, 40.0):
            path = default_checkpoint(name, snr)
            assert os.path.exists(path), f"missing {path}: {train_command(name, snr)}"
            meta = read_checkpoint_meta(path)
            assert (meta["method"], meta["instance"], float(meta["snr_db"])) == (name, instance, snr)
            assert meta["recipe"] == recipe_config(name, "cpu"), f"{path} was made by another recipe"
            assert meta["how_to_reproduce"] == train_command(name, snr)
            drift = abs(meta["validation"]["val_nmse_db"] - meta["validation_as_stored"]["val_nmse_db"])
            assert drift < 0.01, f"{path}: the stored encoding moves validation by {drift:.3f} dB"
            assert os.path.getsize(path) < CHECKPOINT_MAX_BYTES, f"{path} is over the project's 5 MiB per file"
    total = sum(os.path.getsize(os.path.join(CHECKPOINT_DIR, f)) for f in os.listdir(CHECKPOINT_DIR))
    assert total < 40e6


def test_registered_classes_are_generated_from_the_table():
    """One registered class per row of VARIANTS, made from the row (no class statement
    repeats it): found under its name in the module, named after the variant, its selector
    the row's key and its description the row's title."""
    import bench.methods.sparse.lista as lista

    R.load_all()
    for name in LEARNED:
        cls = R.METHODS[name]
        assert getattr(lista, cls.__name__) is cls and cls.__module__ == lista.__name__
        assert cls.__name__.lower() == name.replace("_", "")
        assert cls.variant == name and cls.description == VARIANTS[name].title
    assert R.METHODS["alista"](analytic_weight="closed_form").weight_source() == "closed_form"
    assert R.METHODS["lista_cp"]().weight_source() == "closed_form"
