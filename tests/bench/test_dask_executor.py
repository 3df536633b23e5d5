"""``bench run --executor dask``: the same rows as the local runner, only the client writes
the store, a worker killed mid-grid or a client interrupted loses no finished cell and
duplicates none. Real LocalClusters (worker processes on 127.0.0.1) and real signals."""
from __future__ import annotations

import os
import signal
import sqlite3
import time

import pytest

pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

from bench.cli import main  # noqa: E402
from bench.dask_executor import DaskExecutor  # noqa: E402
from bench.runner import RunOptions, run_grid  # noqa: E402
from bench.store import Store  # noqa: E402
from tests.helpers import (assert_complete_store, count_rows, ista_grid_args, run_bench, start_bench,  # noqa: E402
                           tiny_cells, tiny_run_args, wait_for_rows)

# 12 cells of about a second each: a worker is always busy with one
GRID = [*ista_grid_args(400), "--threads", "1"]


def _start(res, env, jobs=2):
    return start_bench(["run", *GRID, "--results", res, "--executor", "dask", "--jobs", str(jobs)], env)


def _workers(pid):
    """The Dask worker processes the client ``pid`` spawned (multiprocessing's spawn)."""
    out = []
    for p in psutil.Process(pid).children(recursive=True):
        try:
            if "spawn_main" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.Error:
            pass
    return out


def _rerun(res, env, executor="dask"):
    return run_bench(["run", *GRID, "--results", res, "--executor", executor, "--jobs", "2"], env)


def test_dask_gives_the_local_runners_rows(tmp_path):
    cells = tiny_cells(["ista[n_iter=50]", "fista[n_iter=50]"], ["awgn_snr[snr_db=[40,inf]]"])
    local, dask = Store(str(tmp_path / "local.sqlite")), Store(str(tmp_path / "dask.sqlite"))
    s1 = run_grid(cells, local, RunOptions(repeat=1, threads=1), progress=False)
    s2 = run_grid(cells, dask, RunOptions(repeat=1, threads=1), jobs=2, progress=False, executor=DaskExecutor())
    assert (s1.done, s2.done, s2.failed) == (4, 4, 0)
    a = local.frame("sparse").set_index("key").sort_index()
    b = dask.frame("sparse").set_index("key").sort_index()
    assert list(a.index) == list(b.index)
    for key in a.index:
        assert a.loc[key, "metrics"] == b.loc[key, "metrics"]  # identical, not close
        assert a.loc[key, "curves"] == b.loc[key, "curves"]
    assert set(b["threads"]) == {1}
    # the reports print the same accuracy table from either store
    for name, st in (("local", local), ("dask", dask)):
        assert main(["report", "--suite", "sparse", "--results", st.path, "--out", str(tmp_path / name)]) == 0
    (a_md,) = (tmp_path / "local").glob("sparse_nmse_*.md")
    b_md = tmp_path / "dask" / a_md.name
    assert a_md.read_text() == b_md.read_text() and "-" in a_md.read_text()
    # the cache: a rerun on Dask reuses every finished cell and submits nothing
    s3 = run_grid(cells, dask, RunOptions(repeat=1, threads=1), jobs=2, progress=False, executor=DaskExecutor())
    assert (s3.reused, s3.done) == (4, 0)
    assert dask.count() == 4


def test_unreachable_scheduler_is_a_clear_error(tmp_path, capsys, monkeypatch):
    from bench import dask_executor
    monkeypatch.setattr(dask_executor, "CONNECT_TIMEOUT_S", 2)
    rc = main(tiny_run_args(str(tmp_path / "r.sqlite"), "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9",
                            method="ista[n_iter=5]"))
    err = capsys.readouterr().err
    assert rc == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert count_rows(str(tmp_path / "r.sqlite")) == 0


def test_scheduler_needs_the_dask_executor(tmp_path, capsys):
    rc = main(tiny_run_args(str(tmp_path / "r.sqlite"), "--scheduler", "tcp://127.0.0.1:8786", method="ista[n_iter=5]"))
    assert rc == 2
    assert "--scheduler needs --executor dask" in capsys.readouterr().err


def test_existing_scheduler_runs_the_cells(tmp_path, capsys):
    """--scheduler: a cluster started elsewhere (here a LocalCluster of this test)."""
    from bench.dask_executor import local_cluster
    with local_cluster(1) as cluster:
        # no --threads: each worker takes its own share of its cores
        rc = main(tiny_run_args(str(tmp_path / "r.sqlite"), "--repeat", "1", "--executor", "dask", "--scheduler",
                                cluster.scheduler_address, method="ista[n_iter=[5,6]]",
                                degradation="awgn_snr[snr_db=40]", threads=None))
    assert rc == 0, capsys.readouterr().err
    rows = Store(str(tmp_path / "r.sqlite")).frame("sparse")
    assert len(rows) == 2
    assert set(rows["threads"]) == {max(1, len(os.sched_getaffinity(0)))}  # the worker's cores / its 1 thread


@pytest.mark.parametrize("allowed_failures", [None, 0], ids=["dask-retries", "stored-as-failed"])
def test_worker_killed_mid_grid(tmp_path, bench_env, allowed_failures):
    """SIGKILL one worker while it runs a cell. Dask reruns its cell on another worker (its
    own retry); with no failure allowed the cell is stored as failed with the reason. Either
    way no finished cell is lost, no row is duplicated, a rerun completes the grid."""
    env = dict(bench_env)
    if allowed_failures is not None:
        env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = str(allowed_failures)
    res = str(tmp_path / "r.sqlite")
    proc = _start(res, env)
    wait_for_rows(proc, res, 2)
    workers = _workers(proc.pid)
    assert len(workers) == 2, [w.cmdline() for w in workers]
    before = count_rows(res)
    victim = workers[0]
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    out, err = proc.communicate(timeout=300)
    after_ok, after_failed = count_rows(res), count_rows(res, "failed")
    assert after_ok >= before  # nothing finished was lost
    if allowed_failures is None:
        assert proc.returncode == 0, err
        assert after_ok == 12 and after_failed == 0
    else:
        assert proc.returncode == 1, err
        assert after_failed >= 1 and after_ok + after_failed == 12
        with sqlite3.connect(res) as c:
            errors = [r[0] for r in c.execute("SELECT error FROM results WHERE status='failed'")]
        assert all("KilledWorker" in e for e in errors), errors
        assert "FAILED" in out
        done = _rerun(res, bench_env)
        assert done.returncode == 0, done.stderr
        assert f"{after_ok} reused" in done.stdout
    assert_complete_store(res, 12)


def test_client_interrupt_keeps_finished_cells(tmp_path, bench_env):
    res = str(tmp_path / "r.sqlite")
    proc = _start(res, bench_env)
    wait_for_rows(proc, res, 1)
    workers = _workers(proc.pid)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert "interrupted" in out
    kept = count_rows(res)
    assert 1 <= kept < 12
    # the LocalCluster went down with the client
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, [p.pid for p in alive]
    done = _rerun(res, bench_env)
    assert done.returncode == 0, done.stderr
    assert f"{kept} reused" in done.stdout
    assert_complete_store(res, 12)


def test_a_failing_cell_is_stored_as_failed_with_its_reason(tmp_path, capsys):
    """A cell that raises on a worker (here: its data folder does not exist, and no download
    provides it) is a failed row with the reason, as with the local runner; the run goes on
    and exits 1."""
    res = str(tmp_path / "r.sqlite")
    rc = main(["run", "--suite", "istd", "--dataset", f"istd_folder[path={tmp_path / 'nowhere'}]", "--degradation",
               "clean", "--method", "ipi", "--method", "mpcm", "--no-progress", "--repeat", "1", "--threads", "1",
               "--results", res, "--data-root", str(tmp_path / "empty"), "--executor", "dask", "--jobs", "1"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "4 failed" in out and "FAILED" in out  # two methods under both of the default grid's protocols
    failed = Store(res).frame("istd", status="failed")
    assert len(failed) == 4
    assert all("DataError" in e and "no ISTD data folder" in e for e in failed["error"])


def test_a_malformed_scheduler_address_is_refused_at_once(tmp_path, capsys):
    t0 = time.time()
    for address in ("garbage://x", "tcp://", "tcp://host", "tcp://host:port", "", "localhost:99999"):
        rc = main(tiny_run_args(str(tmp_path / "r.sqlite"), "--executor", "dask", "--scheduler", address,
                                method="ista[n_iter=5]"))
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and "is not a Dask scheduler address" in err, (address, err)
    assert time.time() - t0 < 10
    assert not (tmp_path / "r.sqlite").exists()
