"""Parameter values are checked against what each component declares (type, range or
choices): a bad value stops the command with exit 2, naming the parameter, the value and
what is allowed, before any cell runs or is stored."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from bench import registry as R
from bench.errors import BadParameterError, BenchError
from bench.grid import build_cells
from bench.suite import grid_parts
from bench.params import Param, bad_defaults, undeclared

R.load_all()
COMPONENTS = sorted([(kind, name) for kind, reg in (("dataset", R.DATASETS), ("degradation", R.DEGRADATIONS),
                                                     ("method", R.METHODS)) for name in reg])


# --------------------------------------------------------------------------- contract
@pytest.mark.parametrize("kind, name", COMPONENTS, ids=[f"{k}:{n}" for k, n in COMPONENTS])
def test_every_parameter_declares_a_spec_that_its_default_passes(kind, name):
    cls = {"dataset": R.DATASETS, "degradation": R.DEGRADATIONS, "method": R.METHODS}[kind][name]
    assert undeclared(cls) == [], f"{kind} {name}: no spec in parameter_specs for {undeclared(cls)}"
    assert set(cls.parameter_specs) <= set(cls.parameters), \
        f"{kind} {name}: specs for parameters it does not have: {set(cls.parameter_specs) - set(cls.parameters)}"
    assert bad_defaults(cls) == [], f"{kind} {name}: defaults refused by their own specs: {bad_defaults(cls)}"
    cls(**cls.parameters)  # the defaults given explicitly build the component
    assert "(undeclared)" not in cls.parameter_help()


def test_every_grid_of_every_suite_passes_the_checks():
    """The selectors the suites ship (default, full, quick, smoke and extra grids, with their
    protocols) are all valid."""
    for suite in R.SUITES.values():
        full = [suite.full] if getattr(suite, "full", None) else []   # `--grid full`
        grids = [suite.grid, *full, suite.quick, suite.smoke, *suite.smoke_extra, *suite.extra_grids.values()]
        for spec in (p for g in grids for p in grid_parts(g)):
            build_cells(suite.name, spec.datasets, spec.degradations, spec.methods, ["cpu"], 0, spec.protocols)


# --------------------------------------------------------------------------- bad values
@pytest.mark.parametrize("kind, selector, shown, allowed", [
    ("method", "fista[n_iter=-5]", "n_iter=-5", "an integer in [1, 1000000]"),
    ("method", "ista[n_iter=2.5]", "n_iter=2.5", "an integer in [1, 1000000]"),
    ("method", "ista[n_iter=true]", "n_iter=True", "an integer in [1, 1000000]"),
    ("method", "fista[lam=-0.1]", "lam=-0.1", "a number >= 0"),
    ("method", "admm[rho=0]", "rho=0", "a number > 0"),
    ("method", "fista[lam=abc]", "lam='abc'", "a number >= 0"),
    ("method", "alista[analytic_weight=cvx]", "analytic_weight='cvx'", "one of 'qp', 'closed_form'"),
    ("method", "lista[n_layers=0]", "n_layers=0", "an integer >= 1"),
    ("dataset", "gaussian_lasso[p=1.5]", "p=1.5", "a number in (0, 1]"),
    ("dataset", "gaussian_lasso[n_test=0]", "n_test=0", "an integer >= 1"),
    ("degradation", "awgn_snr[snr_db=-inf]", "snr_db=-inf", "inf or a number"),
    ("degradation", "awgn_snr[snr_db=nan]", "snr_db='nan'", "inf or a number"),
    # an iteration count has an upper bound that says why (a typo would run until killed)
    ("method", "ista[n_iter=1e26]", "n_iter=1e+26", "an integer in [1, 1000000] (at most 1,000,000: a cell's curves"),
])
def test_a_bad_value_names_the_parameter_the_value_and_what_is_allowed(kind, selector, shown, allowed):
    axes = {"dataset": ["gaussian_lasso[n_test=10]"], "degradation": ["awgn_snr"], "method": ["ista[n_iter=3]"]}
    axes[kind] = [selector]
    with pytest.raises(BadParameterError) as e:
        build_cells("sparse", axes["dataset"], axes["degradation"], axes["method"], ["cpu"], 0)
    msg = str(e.value)
    assert msg.startswith(selector.split("[")[0] + ": "), msg
    assert f"parameter {shown} is not allowed" in msg and allowed in msg, msg
    assert e.value.exit_code == 2 and isinstance(e.value, BenchError)


@pytest.mark.parametrize("cls_name, params, fragment", [
    ("mpcm", {"scales": (3, 4)}, "odd"),
    ("mpcm", {"scales": ()}, "at least 1 value"),
    ("mpcm", {"polarity": "dark"}, "one of 'bright', 'any'"),
    ("ipi", {"segmentation": "otsu"}, "one of 'max_norm'"),
    ("rpcanet", {"bn": "batch"}, "one of 'running', 'image'"),
    ("lrtdtv", {"rank": (10, 10)}, "'auto', 'specs' or a tuple of 3 values, each an integer >= 1"),
    ("bm4d", {"profile": "fast"}, "one of 'np', 'refilter'"),
    ("subspace_tv", {"max_rank": -1}, "an integer >= 1"),
])
def test_methods_of_other_suites_check_their_values(cls_name, params, fragment):
    with pytest.raises(BadParameterError, match=list(params)[0]) as e:
        R.METHODS[cls_name](**params)
    assert fragment in str(e.value)


@pytest.mark.parametrize("registry, name, params", [
    ("DATASETS", "sirst", {"mask_mismatch": "crop"}),
    ("DATASETS", "istd_folder", {"layout": "voc"}),
    ("DATASETS", "istd_synthetic", {"subset": "val"}),
    ("DATASETS", "cave", {"size": -1}),
    ("DATASETS", "hsi_synthetic", {"size": 1}),
    ("DATASETS", "abu", {"scene": "urban-9"}),
    ("DATASETS", "hsi_mat", {"band_axis": 3}),
    ("DEGRADATIONS", "hsi_gaussian", {"sigma": -1}),
    ("DEGRADATIONS", "hsi_mixed", {"impulse_ratios": (0.1, 1.5)}),
    ("DEGRADATIONS", "salt_pepper", {"density": 2}),
])
def test_datasets_and_degradations_check_their_values(registry, name, params):
    with pytest.raises(BadParameterError, match=list(params)[0]):
        getattr(R, registry)[name](**params)


def test_good_values_pass_and_are_normalised():
    assert R.METHODS["fista"](n_iter=1e3).params["n_iter"] == 1000
    assert type(R.METHODS["fista"](n_iter=1e3).params["n_iter"]) is int
    assert R.METHODS["fista"].label(R.METHODS["fista"](n_iter=1000.0).params) == "fista"
    assert R.METHODS["fista"](lam=1).params["lam"] == 1  # an int for a float: kept as given
    assert R.METHODS["lista"](checkpoint=None).params["checkpoint"] is None
    assert R.METHODS["lista"](checkpoint="some/path.npz").params["checkpoint"] == "some/path.npz"
    assert R.METHODS["lrtdtv"](rank=[8, 8, 3]).params["rank"] == (8, 8, 3)
    assert R.METHODS["lrtdtv"](rank="specs").params["rank"] == "specs"
    assert R.DEGRADATIONS["awgn_snr"](snr_db=float("inf")).params["snr_db"] == float("inf")
    assert R.DATASETS["cave"](size=0).params["size"] == 0  # 0: the whole scene
    assert R.DATASETS["hsi_mat"](variable=None, band_axis=0).params["band_axis"] == 0


def test_param_rules_and_descriptions():
    p = Param(float, min=0, max=1, min_exclusive=True)
    assert p.describe() == "a number in (0, 1]"
    assert p.normalise(1) == (True, 1) and p.normalise(0)[0] is False and p.normalise(True)[0] is False
    assert Param(int, min=11, allow=(0,)).describe() == "0 or an integer >= 11"
    assert Param(str, choices=("a", "b"), help="what it does").describe() == "one of 'a', 'b' (what it does)"
    with pytest.raises(BadParameterError, match=r"^x: parameter k='1' is not allowed; k must be an integer$"):
        Param(int).check("k", "1", "x")
    with pytest.raises(TypeError):
        Param(list)


def test_bench_list_prints_what_each_parameter_allows(capsys):
    from bench.cli import main
    assert main(["list", "--suite", "sparse"]) == 0
    out = capsys.readouterr().out
    assert "n_iter: an integer in [1, 1000000]" in out and "snr_db: inf or a number" in out


# --------------------------------------------------------------------------- command line
def _rows(path):
    if not os.path.exists(path):
        return 0
    with sqlite3.connect(path) as c:
        tables = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return sum(c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables)


def test_bench_run_with_a_bad_value_exits_2_and_stores_nothing(tmp_path, bench_env):
    res = str(tmp_path / "r.sqlite")
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--suite", "sparse", "--smoke",
                           "--method", "fista[n_iter=-5]", "--results", res, "--no-progress"],
                          env=bench_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "fista: parameter n_iter=-5 is not allowed" in proc.stderr, proc.stderr
    assert "an integer in [1, 1000000]" in proc.stderr, proc.stderr
    assert _rows(res) == 0, "a row was stored for a run that should not have started"


def test_bench_train_with_a_bad_dataset_value_exits_2(tmp_path, bench_env):
    out = str(tmp_path / "ck.npz")
    proc = subprocess.run([sys.executable, "-m", "bench", "train", "--suite", "sparse", "--method", "lista",
                           "--dataset", "gaussian_lasso[m=-3]", "--out", out, "--no-progress"],
                          env=bench_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "gaussian_lasso: parameter m=-3 is not allowed" in proc.stderr and "an integer >= 1" in proc.stderr
    assert not os.path.exists(out)


def test_a_word_with_an_underscore_between_digits_stays_a_string():
    # sirst[split=50_50] names a split folder (Python would read 50_50 as the int 5050)
    from bench.selectors import parse_selector
    assert parse_selector("sirst[split=50_50,limit=20]") == ("sirst", {"split": "50_50", "limit": 20})
    assert R.DATASETS["sirst"](split="50_50").params["split"] == "50_50"


# --------------------------------------------------------------------------- ranges
@pytest.mark.parametrize("suite, axis, selector, shown", [
    ("istd", "dataset", "istd_synthetic[min_size=100,max_size=50]", "min_size=100"),
    ("hsi", "degradation", "hsi_blind[sigma_min=70,sigma_max=10]", "sigma_min=70"),
    ("hsi", "degradation", "hsi_mixed[sigma_min=70,sigma_max=10]", "sigma_min=70"),
    ("hsi", "degradation", "hsi_mixed[stripe_min=0.5,stripe_max=0.1]", "stripe_min=0.5"),
    ("hsi", "dataset", "pavia[size=1]", "size=1"),
    ("hsi", "dataset", "hsi_synthetic[size=8]", "size=8"),
])
def test_inconsistent_ranges_and_sizes_under_the_metric_window_are_refused(suite, axis, selector, shown):
    """The two ends of a range are checked with the parameters (before any cell runs), and
    so are crops and cube sizes under the SSIM window."""
    from bench import registry as R
    R.load_all()
    axes = {"dataset": [R.SUITES[suite].smoke.datasets[0]], "degradation": [R.SUITES[suite].smoke.degradations[0]],
            "method": [R.SUITES[suite].smoke.methods[0]]}
    axes[axis] = [selector]
    with pytest.raises(BadParameterError) as e:
        build_cells(suite, axes["dataset"], axes["degradation"], axes["method"], ["cpu"], 0)
    assert f"parameter {shown} is not allowed" in str(e.value) and e.value.exit_code == 2


def test_an_ordered_pair_may_be_equal_and_names_both_ends():
    from bench.params import Ordered
    Ordered("lo", "hi").check("x", {"lo": 3, "hi": 3})
    with pytest.raises(BadParameterError, match="lo=4 is not allowed; lo must be at most hi=3"):
        Ordered("lo", "hi").check("x", {"lo": 4, "hi": 3})
