"""A run killed with SIGKILL (or interrupted) loses at most the cells in flight; a rerun
completes the grid with no duplicate rows. Real subprocesses."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import assert_complete_store, count_rows, ista_grid_args, run_bench, start_bench, wait_for_rows

GRID = ista_grid_args(300)


def _start(res, env, jobs=1):
    return start_bench(["run", *GRID, "--results", res, "--jobs", str(jobs)], env)


@pytest.mark.parametrize("jobs", [1, 2])
def test_sigkill_loses_only_cells_in_flight(tmp_path, bench_env, jobs):
    res = str(tmp_path / "r.sqlite")
    proc = _start(res, bench_env, jobs)
    wait_for_rows(proc, res, 2)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, workers included
    proc.wait()
    before = count_rows(res)
    assert 2 <= before < 12, "the run should have been killed mid-grid"
    done = run_bench(["run", *GRID, "--results", res], bench_env)
    assert done.returncode == 0, done.stderr
    assert f"{before} reused" in done.stdout
    assert_complete_store(res, 12)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_keeps_finished_cells(tmp_path, bench_env, sig):
    res = str(tmp_path / "r.sqlite")
    proc = _start(res, bench_env)
    wait_for_rows(proc, res, 1)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in out
    kept = count_rows(res)
    assert kept >= 1
    done = run_bench(["run", *GRID, "--results", res], bench_env)
    assert done.returncode == 0 and f"{kept} reused" in done.stdout


def _alive(pid):
    """Whether ``pid`` is a live process (a zombie waiting for its reaper counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_workers_die_with_a_sigkilled_parent(tmp_path, bench_env):
    psutil = pytest.importorskip("psutil")
    res = str(tmp_path / "r.sqlite")
    proc = _start(res, bench_env, jobs=2)
    wait_for_rows(proc, res, 1)
    workers = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    assert len(workers) >= 2
    proc.kill()  # the parent only: an out-of-memory kill gives it no chance to stop its pool
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.2)
    left = [p for p in workers if _alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, "workers outlived their parent"
    stored = count_rows(res)
    time.sleep(2)
    assert count_rows(res) == stored, "an orphaned worker went on storing cells"


def test_a_run_waiting_for_a_locked_store_says_so_and_ends_on_sigterm(tmp_path, bench_env):
    from tests.bench.test_store import hold_lock

    res = str(tmp_path / "r.sqlite")
    subprocess.run([sys.executable, "-c", f"from bench.store import Store; Store({res!r}).close()"],
                   env=bench_env, check=True)
    holder = hold_lock(res)
    err_path = tmp_path / "err.txt"
    try:
        with open(err_path, "w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "bench", "run", *GRID, "--results", res], env=bench_env,
                                    stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
            t0 = time.time()
            while "waiting for the store lock held by another process" not in err_path.read_text():
                if proc.poll() is not None or time.time() - t0 > 60:
                    proc.kill()
                    pytest.fail(f"no lock notice: {err_path.read_text()}")
                time.sleep(0.1)
            assert f"(pid {holder.pid})" in err_path.read_text()
            t1 = time.time()
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
            assert time.time() - t1 < 5, "SIGTERM took effect only after the wait"
        assert proc.returncode == 130, err_path.read_text()
        assert "Traceback" not in err_path.read_text()
    finally:
        holder.kill()
        holder.wait()
    assert count_rows(res) == 0
