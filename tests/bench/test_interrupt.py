"""A run killed with SIGKILL (or interrupted) loses at most the cells in flight; a rerun
completes the grid with no duplicate rows. Real subprocesses."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

GRID = ["--suite", "sparse", "--dataset", "gaussian_lasso[m=100,n=200,n_test=400]",
        "--degradation", "awgn_snr[snr_db=40]", "--method", "ista[n_iter=[300,301,302,303,304,305,306,307,308,309,310,311]]",
        "--repeat", "1", "--no-progress"]


def _count(path):
    if not os.path.exists(path):
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as c:
            return c.execute("SELECT COUNT(*) FROM results WHERE status='ok'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _start(res, env, jobs=1):
    # a shell running CI in the background starts its children with SIGINT ignored (POSIX),
    # and Python then never raises KeyboardInterrupt: give the child the default disposition
    return subprocess.Popen([sys.executable, "-m", "bench", "run", *GRID, "--results", res, "--jobs", str(jobs)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_rows(proc, res, n, timeout=120):
    t0 = time.time()
    while _count(res) < n:
        if proc.poll() is not None:
            pytest.fail(f"run ended before it was killed: {proc.communicate()}")
        if time.time() - t0 > timeout:
            proc.kill()
            pytest.fail("no rows appeared")
        time.sleep(0.02)


@pytest.mark.parametrize("jobs", [1, 2])
def test_sigkill_loses_only_cells_in_flight(tmp_path, bench_env, jobs):
    res = str(tmp_path / "r.sqlite")
    proc = _start(res, bench_env, jobs)
    _wait_for_rows(proc, res, 2)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, workers included
    proc.wait()
    before = _count(res)
    assert 2 <= before < 12, "the run should have been killed mid-grid"
    done = subprocess.run([sys.executable, "-m", "bench", "run", *GRID, "--results", res],
                          env=bench_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{before} reused" in done.stdout
    with sqlite3.connect(res) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        total, distinct = c.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM results").fetchone()
        labels = c.execute("SELECT COUNT(DISTINCT method_label) FROM results").fetchone()[0]
    assert total == distinct == labels == 12


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_keeps_finished_cells(tmp_path, bench_env, sig):
    res = str(tmp_path / "r.sqlite")
    proc = _start(res, bench_env)
    _wait_for_rows(proc, res, 1)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in out
    kept = _count(res)
    assert kept >= 1
    done = subprocess.run([sys.executable, "-m", "bench", "run", *GRID, "--results", res],
                          env=bench_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and f"{kept} reused" in done.stdout
