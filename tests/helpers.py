"""What the tests share to build tiny grids and to run ``python -m bench run`` as a real
process: one version of each (timing helpers for the benchmarks are in
``tests/benchmarks/timing.py``)."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

#: a sparse problem small enough that a cell runs in milliseconds
TINY_LASSO = "gaussian_lasso[m=20,n=40,n_test=16]"
TINY = [TINY_LASSO]


def tiny_cells(methods, degradations=("awgn_snr",), datasets=TINY, seed=0):
    """The sparse cells (cpu) of ``datasets`` x ``degradations`` x ``methods``."""
    from bench.grid import build_cells
    return build_cells("sparse", list(datasets), list(degradations), list(methods), ["cpu"], seed)


def tiny_run_args(res, *extra, method="ista[n_iter=3]", degradation="awgn_snr", threads=1):
    """``bench run``'s arguments for one tiny sparse cell stored in ``res`` (``threads=None``:
    no ``--threads``, the run chooses)."""
    args = ["run", "--suite", "sparse", "--dataset", TINY_LASSO, "--degradation", degradation, "--method", method,
            "--no-progress", "--results", res]
    if threads is not None:
        args += ["--threads", str(threads)]
    return args + list(extra)


def ista_grid_args(first_n_iter):
    """``bench run``'s arguments for 12 ISTA cells (n_iter = first_n_iter ... first_n_iter+11)
    of a 100x200 problem with 400 samples, one repeat: each takes long enough (a fraction of
    a second to a second) that a run can be killed or interrupted mid-grid."""
    iters = ",".join(str(first_n_iter + i) for i in range(12))
    return ["--suite", "sparse", "--dataset", "gaussian_lasso[m=100,n=200,n_test=400]",
            "--degradation", "awgn_snr[snr_db=40]", "--method", f"ista[n_iter=[{iters}]]",
            "--repeat", "1", "--no-progress"]


def count_rows(path, status="ok") -> int:
    """The rows of ``status`` in the store at ``path`` (0 while it does not exist or is locked)."""
    if not os.path.exists(path):
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as c:
            return c.execute("SELECT COUNT(*) FROM results WHERE status=?", (status,)).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def start_bench(args, env) -> subprocess.Popen:
    """``python -m bench ARGS`` in its own session (a signal to the test's process group does
    not reach it), with SIGINT's default disposition (a shell running CI in the background
    starts its children with SIGINT ignored, and Python then never raises KeyboardInterrupt)."""
    return subprocess.Popen([sys.executable, "-m", "bench", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def run_bench(args, env, timeout=300) -> subprocess.CompletedProcess:
    """``python -m bench ARGS`` to its end, output captured."""
    return subprocess.run([sys.executable, "-m", "bench", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def wait_for_rows(proc, res, n, timeout=120) -> None:
    """Wait until the store ``res`` holds ``n`` finished rows; fails the test (and kills the
    run's process group) when the run ends first or no rows appear within ``timeout`` s."""
    t0 = time.time()
    while count_rows(res) < n:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {n} row(s) were stored: {proc.communicate()}")
        if time.time() - t0 > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("no rows appeared")
        time.sleep(0.02)


def assert_complete_store(res, n) -> None:
    """The store ``res`` is intact and holds ``n`` rows, one per key, ``n`` finished methods."""
    with sqlite3.connect(res) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        total, distinct = c.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM results").fetchone()
        labels = c.execute("SELECT COUNT(DISTINCT method_label) FROM results WHERE status='ok'").fetchone()[0]
    assert total == distinct == labels == n


def write_istd_folder(root, name: str = "toy", n: int = 2, size: int = 64) -> str:
    """A small ISTD test set in the DNANet layout under ``<root>/istd/<name>``: ``n`` 8-bit
    images of ``size`` x ``size`` (a seeded noisy background, a bright 2x2 target), their
    masks and ``50_50/test.txt`` listing them all; its ``istd_folder`` selector (data root:
    ``root``)."""
    import numpy as np
    from PIL import Image

    base = os.path.join(str(root), "istd", name)
    rng = np.random.default_rng(size)
    r, c = size // 2, size // 3
    for i in range(n):
        img = rng.integers(20, 90, (size, size)).astype(np.uint8)
        img[r:r + 2, c:c + 2] = 230
        mask = np.zeros((size, size), np.uint8)
        mask[r:r + 2, c:c + 2] = 255
        for sub, arr in (("images", img), ("masks", mask)):
            os.makedirs(os.path.join(base, sub), exist_ok=True)
            Image.fromarray(arr).save(os.path.join(base, sub, f"{i}.png"))
    os.makedirs(os.path.join(base, "50_50"), exist_ok=True)
    with open(os.path.join(base, "50_50", "test.txt"), "w") as f:
        f.write("".join(f"{i}\n" for i in range(n)))
    return f"istd_folder[path=istd/{name}]"
