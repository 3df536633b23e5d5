"""SLURM through dask-jobqueue, as far as it can be tested without SLURM: the generated job
script carries the project's environment (Python, data and weights roots, thread settings)
and the site's settings (the documented jobqueue.yaml, --cluster-option)."""
from __future__ import annotations

import os
import sys

import pytest

pytest.importorskip("dask_jobqueue")
yaml = pytest.importorskip("yaml")

from bench.cli import main  # noqa: E402
from tests.helpers import TINY_LASSO  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = ["run", "--suite", "sparse", "--dataset", TINY_LASSO, "--method", "ista",
       "--executor", "dask", "--cluster", "slurm", "--print-job-script", "--no-progress"]


def _script(capsys, *extra):
    rc = main([*RUN, *extra])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


def test_job_script_carries_the_environment_and_threads(tmp_path, capsys):
    out = _script(capsys, "--data-root", str(tmp_path / "data"), "--weights-root", str(tmp_path / "w"),
                  "--cluster-option", "queue=short", "--cluster-option", "cores=4", "--cluster-option",
                  "processes=2", "--cluster-option", "job_extra_directives=--constraint=avx2")
    assert out.startswith("#!/usr/bin/env bash")
    assert f"export BENCH_DATA={tmp_path / 'data'}" in out
    assert f"export BENCH_WEIGHTS={tmp_path / 'w'}" in out
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        assert f"export {var}=2" in out  # 4 cores / 2 worker processes
    assert f"{sys.executable} -m distributed.cli.dask_worker" in out
    assert out.rstrip().endswith("--nthreads 1") and "--nworkers 2" in out  # one cell at a time per process
    assert "#SBATCH -p short" in out and "#SBATCH --cpus-per-task=4" in out and "#SBATCH --constraint=avx2" in out
    if sys.prefix != sys.base_prefix:
        assert f"source {os.path.join(sys.prefix, 'bin', 'activate')}" in out
    # the exports come before the worker starts
    assert out.index("export BENCH_DATA") < out.index("dask_worker")


def test_explicit_threads_and_the_documented_config(tmp_path, capsys):
    import dask
    with open(os.path.join(REPO, "docs", "cluster", "jobqueue.yaml")) as f:
        conf = yaml.safe_load(f)
    with dask.config.set({"jobqueue.slurm": {**dask.config.get("jobqueue.slurm"), **conf["jobqueue"]["slurm"]}}):
        out = _script(capsys, "--threads", "3", "--data-root", str(tmp_path))
    assert "#SBATCH -p compute" in out and "#SBATCH -A my-project" in out and "#SBATCH -t 04:00:00" in out
    assert "--nworkers 8" in out and "export OMP_NUM_THREADS=3" in out


@pytest.mark.parametrize("bad", [["--cluster-option", "cores=zero"], ["--cluster-option", "nope=1"],
                                 ["--cluster-option", "queue"], ["--scheduler", "tcp://127.0.0.1:8786"]])
def test_bad_cluster_options_exit_2(capsys, bad):
    assert main([*RUN, *bad]) == 2
    assert "error" in capsys.readouterr().err
