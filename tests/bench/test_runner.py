"""The runner: stores finished cells, turns raising/NaN methods into failed rows, goes on."""
from __future__ import annotations

import pytest
import torch

from bench import registry as R
from bench.cli import main
from bench.methods.sparse.classical import Ista
from bench.runner import RunOptions, run_grid
from bench.store import Store
from tests.helpers import tiny_cells, tiny_run_args


class _Raises(Ista):
    name = "test_raises"

    def run(self, inputs):
        raise RuntimeError("boom")

    def iterates(self, inputs):
        raise RuntimeError("boom")


class _Nan(Ista):
    name = "test_nan"

    def run(self, inputs):
        return torch.full((inputs.y.shape[0], inputs.A.shape[1]), float("nan"))

    iterates = R.Method.iterates


@pytest.fixture
def bad_methods():
    for cls in (_Raises, _Nan):
        R.METHODS[cls.name] = cls
    yield
    for cls in (_Raises, _Nan):
        R.METHODS.pop(cls.name, None)


def test_failed_cells_are_stored_and_the_run_goes_on(tmp_path, bad_methods):
    store = Store(str(tmp_path / "r.sqlite"))
    cells = tiny_cells(["test_raises", "ista[n_iter=5]", "test_nan"])
    s = run_grid(cells, store, RunOptions(repeat=1), progress=False)
    assert (s.done, s.failed) == (1, 2)
    failed = store.frame("sparse", status="failed").set_index("method")
    assert "boom" in failed.loc["test_raises", "error"]
    assert "non-finite" in failed.loc["test_nan", "error"]
    # a rerun retries failed cells only
    s2 = run_grid(cells, store, RunOptions(repeat=1), progress=False)
    assert (s2.reused, s2.failed, s2.done) == (1, 2, 0)
    assert store.count() == 3


def test_timing_and_provenance_are_stored(tmp_path):
    store = Store(str(tmp_path / "r.sqlite"))
    cells = tiny_cells(["fista[n_iter=10]"], ["awgn_snr[snr_db=30]"])
    run_grid(cells, store, RunOptions(repeat=3), progress=False)
    row = store.frame("sparse").iloc[0]
    assert len(row["times_s"]) == 3 and row["time_s"] == sorted(row["times_s"])[1]
    assert row["warmup_s"] > 0  # the curve pass is the warm-up
    assert len(row["curves"]["nmse_db"]) == 11
    prov = row["provenance"]
    for k in ("commit", "versions", "device_name", "threads", "cpu_model"):
        assert k in prov
    assert prov["versions"]["torch"] == torch.__version__
    assert row["metrics"]["nmse_db"] == pytest.approx(row["curves"]["nmse_db"][-1], abs=1e-3)


def test_cli_exit_codes(tmp_path, capsys, bad_methods):
    res = str(tmp_path / "r.sqlite")
    assert main(["run", "--suite", "nope", "--results", res]) == 2
    err = capsys.readouterr().err
    assert "unknown suite 'nope'" in err and "sparse" in err
    assert main(["run", "--suite", "sparse", "--method", "fista[n_iter=", "--results", res]) == 2
    assert "missing closing" in capsys.readouterr().err
    assert main(["run", "--suite", "sparse", "--method", "magic", "--results", res]) == 2
    assert "ista" in capsys.readouterr().err
    assert main(["run", "--suite", "sparse", "--device", "tpu", "--results", res]) == 2
    # a parameter value outside its declared range: exit 2 before anything runs
    assert main(["run", "--suite", "sparse", "--method", "fista[lam=nan,n_iter=5]", "--results", res]) == 2
    assert "parameter lam='nan' is not allowed" in capsys.readouterr().err
    # a diverging/NaN method fails its cell, the others are stored, exit status 1
    code = main(tiny_run_args(res, "--method", "ista[n_iter=5]", method="test_nan"))
    assert code == 1
    out = capsys.readouterr().out
    assert "1 done" in out and "1 failed" in out and "FAILED" in out
    assert len(Store(res).frame("sparse")) == 1


def test_cuda_absent_is_skipped_with_a_line(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = main(tiny_run_args(str(tmp_path / "r.sqlite"), "--device", "cpu,cuda"))
    assert code == 0
    assert "cuda: no CUDA device" in capsys.readouterr().err


def test_list_prints_every_axis(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("suite sparse", "gaussian_lasso", "awgn_snr", "fista", "classical", "nmse_db", "lower is better"):
        assert word in out


def test_report_without_store_is_a_clear_error(tmp_path, capsys):
    assert main(["report", "--suite", "sparse", "--results", str(tmp_path / "none.sqlite")]) == 1
    assert "run --suite sparse" in capsys.readouterr().err


# --------------------------------------------------------------------------- threads
def test_threads_split_the_free_cores_between_workers_and_honour_an_explicit_request():
    from bench.runner import choose_threads
    assert choose_threads(1, cores=2, busy=0.0).threads == 2
    assert choose_threads(2, cores=2, busy=0.0).threads == 1
    assert choose_threads(1, cores=2, busy=1.0).threads == 1    # one core busy with other work
    assert choose_threads(1, cores=2, busy=5.0).threads == 1    # never below 1
    assert choose_threads(3, cores=16, busy=3.6).threads == 4   # 12 free cores / 3 workers
    c = choose_threads(2, requested=3, cores=2, busy=2.0)
    assert c.threads == 3 and "--threads 3" in c.line()
    line = choose_threads(1, cores=2, busy=1.2).line()
    assert "1 per worker x 1 worker" in line and "1.2 busy" in line
    with pytest.raises(ValueError):
        choose_threads(1, requested=0)


def test_rows_record_the_threads_their_cell_ran_with(tmp_path):
    cells = tiny_cells(["ista[n_iter=3]"])
    store = Store(str(tmp_path / "r.sqlite"))
    before = torch.get_num_threads()
    run_grid(cells, store, RunOptions(repeat=1, threads=1), progress=False)
    assert torch.get_num_threads() == before  # restored after the run
    assert list(store.frame()["threads"]) == [1]


# --------------------------------------------------------------------------- bad paths and values
def test_results_must_name_a_file_and_a_store_that_cannot_be_used_computes_nothing(tmp_path, capsys, monkeypatch):
    import bench.runner as runner
    ran = []
    monkeypatch.setattr(runner, "execute", lambda *a, **k: ran.append(a) or pytest.fail("a cell was computed"))
    (tmp_path / "not.sqlite").write_bytes(b"key,value\n1,2\n")
    (tmp_path / "a_file").write_text("x")
    cases = {"": 2, str(tmp_path): 2, str(tmp_path / "a_file" / "r.sqlite"): 2, str(tmp_path / "not.sqlite"): 1}
    for res, code in cases.items():
        assert main(tiny_run_args(res)) == code, res
        captured = capsys.readouterr()
        assert "done" not in captured.out
        lines = captured.err.strip().splitlines()
        assert lines[-1].startswith("error: ") and "Traceback" not in captured.err
        assert (repr(res) if not res else res) in lines[-1]
    assert ran == [] and (tmp_path / "not.sqlite").read_bytes() == b"key,value\n1,2\n"


def test_a_seed_out_of_range_is_refused_before_anything_runs(tmp_path, capsys):
    res = tmp_path / "r.sqlite"
    with pytest.raises(SystemExit) as e:
        main(tiny_run_args(str(res), "--seed", "9223372036854775808"))
    assert e.value.code == 2
    assert "--seed: 9223372036854775808 is out of range" in capsys.readouterr().err
    assert not res.exists()
    assert main(tiny_run_args(str(res), "--seed", "9223372036854775807")) == 0  # the largest one is stored


def test_the_runner_never_imports_an_executor():
    """The command line chooses the executor (bench.dask_executor imports the runner, never
    the other way round): no import circle."""
    import ast

    import bench.runner
    tree = ast.parse(open(bench.runner.__file__).read())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and ("dask" in m or "distributed" in m)}


def test_a_cell_computed_but_not_stored_is_reported(tmp_path, capsys, monkeypatch):
    from bench.errors import StoreError
    from bench.runner import run_and_store

    store = Store(str(tmp_path / "r.sqlite"))

    def locked(*a, **k):
        raise StoreError("the result store stayed locked")
    monkeypatch.setattr(store, "put", locked)
    (cell,) = tiny_cells(["ista[n_iter=3]"])
    with pytest.raises(StoreError):
        run_and_store(cell, RunOptions(repeat=1), store)
    assert f"computed but not stored: {cell.describe()} (ok)" in capsys.readouterr().err


def test_non_finite_loaded_data_fails_its_cells_naming_the_sample_before_any_method_runs(tmp_path):
    """A NaN in loaded data (which the loader let through) fails the cell with a DataError
    naming the dataset and the sample; the method is never set up (it used to run and blame
    itself: "the method diverged")."""
    from bench.datasets.sparse import GaussianLasso, LassoData

    class _NanLasso(GaussianLasso):
        name = "test_nan_lasso"

        def load(self, data_root=None):
            d = super().load(data_root)
            x = d.x.clone()
            x[2, 0] = float("nan")
            return LassoData(A=d.A, x=x, p=d.p, instance_id=d.instance_id)

    ran = []

    class _Spy(Ista):
        name = "test_spy"

        def setup(self, context):
            ran.append(True)
            super().setup(context)

    R.DATASETS[_NanLasso.name], R.METHODS[_Spy.name] = _NanLasso, _Spy
    try:
        store = Store(str(tmp_path / "r.sqlite"))
        cells = tiny_cells(["test_spy"], datasets=["test_nan_lasso[m=20,n=40,n_test=16]"])
        s = run_grid(cells, store, RunOptions(repeat=1), progress=False)
        assert s.failed == 1 and not ran
        error = store.frame("sparse", status="failed").iloc[0]["error"]
        assert error.startswith("DataError: test_nan_lasso") and "x holds 1 non-finite value(s) (NaN or infinity) (the first at index (2, 0))" in error, error
    finally:
        R.DATASETS.pop(_NanLasso.name, None)
        R.METHODS.pop(_Spy.name, None)
