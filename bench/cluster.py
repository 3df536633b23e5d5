"""Dask workers on a SLURM cluster through ``dask-jobqueue`` (``bench run --executor dask
--cluster slurm``).

The client (``bench run``) starts a scheduler on the machine it runs on (a login node, say)
and submits ``--jobs`` SLURM jobs; each job starts Dask workers that connect back to it, run
cells and hand the results back, so only the client writes the store. The job script carries
the project's environment: the Python of this environment (``sys.executable``; a virtual
environment on a shared file system, or the same path on every node), the data and weights
roots (``BENCH_DATA``, ``BENCH_WEIGHTS``: absolute paths every node must see), and the thread
settings (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and torch's
threads per cell: the job's cores divided by its worker processes).

Settings come, lowest first, from dask-jobqueue's own configuration
(``~/.config/dask/jobqueue.yaml``, section ``jobqueue.slurm``: queue, account, memory,
walltime, ...), this module's defaults (:data:`DEFAULTS`) where that file sets nothing, and
``--cluster-option KEY=VALUE`` (repeatable). ``--print-job-script`` prints the script that
would be submitted and exits, without SLURM.
"""
from __future__ import annotations

import os
import shlex
import sys
from typing import Any

from bench.errors import BenchError

#: used where neither the jobqueue configuration nor --cluster-option says
DEFAULTS: dict[str, Any] = {"cores": 1, "memory": "8GB", "walltime": "02:00:00"}
#: options read as integers / as comma-separated lists
_INTS = ("cores", "processes")
_LISTS = ("job_extra_directives", "worker_extra_args", "job_script_prologue")
KNOWN = ("queue", "account", "cores", "processes", "memory", "walltime", "job_name", "local_directory",
         "log_directory", "interface", "job_extra_directives", "worker_extra_args", "job_script_prologue")


class ClusterError(BenchError):
    exit_code = 2


def parse_options(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings -> keyword arguments of ``SLURMCluster``."""
    out: dict[str, Any] = {}
    for item in items or ():
        if "=" not in item:
            raise ClusterError(f"--cluster-option {item!r} is not of the form KEY=VALUE")
        key, value = (s.strip() for s in item.split("=", 1))
        if key not in KNOWN:
            raise ClusterError(f"--cluster-option {key}: unknown; known: {', '.join(KNOWN)}")
        if key in _INTS:
            try:
                out[key] = int(value)
            except ValueError:
                raise ClusterError(f"--cluster-option {key}={value}: an integer is needed") from None
            if out[key] < 1:
                raise ClusterError(f"--cluster-option {key}={value}: at least 1")
        elif key in _LISTS:
            out[key] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            out[key] = value
    return out


def environment(data_root: str | None, weights_root: str | None, threads: int) -> list[str]:
    """The job script's lines that give every worker this project's environment."""
    lines = []
    prefix = sys.prefix
    if prefix != getattr(sys, "base_prefix", prefix) and os.path.exists(os.path.join(prefix, "bin", "activate")):
        lines.append(f"source {shlex.quote(os.path.join(prefix, 'bin', 'activate'))}")
    if data_root:
        lines.append(f"export BENCH_DATA={shlex.quote(os.path.abspath(data_root))}")
    if weights_root:
        lines.append(f"export BENCH_WEIGHTS={shlex.quote(os.path.abspath(weights_root))}")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        lines.append(f"export {var}={int(threads)}")
    lines.append("export MPLBACKEND=Agg")
    return lines


def slurm_settings(options: dict[str, Any], threads: int | None) -> tuple[dict[str, Any], int]:
    """The keyword arguments for ``SLURMCluster`` (options over the jobqueue configuration
    over :data:`DEFAULTS`) and the torch threads of each worker process."""
    import dask

    conf = dask.config.get("jobqueue.slurm", default={}) or {}
    kw: dict[str, Any] = {k: v for k, v in DEFAULTS.items() if conf.get(k) is None}
    if conf.get("name") in (None, "dask-worker"):  # jobqueue's default job name
        kw["job_name"] = "bench-worker"
    kw.update(options)
    cores = int(kw.get("cores") or conf.get("cores") or 1)
    processes = int(kw.get("processes") or conf.get("processes") or cores)  # one process per core by default
    kw["processes"] = processes
    per = threads if threads is not None else max(1, cores // processes)
    return kw, per


def slurm_cluster(options: dict[str, Any], data_root: str | None, weights_root: str | None,
                  threads: int | None = None, preview: bool = False):
    """A ``dask_jobqueue.SLURMCluster`` whose job script carries the project's environment;
    (cluster, torch threads per cell)."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise ClusterError("--cluster slurm needs dask-jobqueue: pip install -e \".[dist]\"") from None
    import dask

    kw, per = slurm_settings(options, threads)
    conf = dask.config.get("jobqueue.slurm", default={}) or {}
    prologue = (environment(data_root, weights_root, per) + list(conf.get("job-script-prologue") or [])
                + list(kw.pop("job_script_prologue", []) or []))
    # one cell at a time per worker process (its torch threads fill the process's cores):
    # dask-jobqueue would give each process cores/processes task threads; the dask worker
    # command takes the last --nthreads
    kw["worker_extra_args"] = (list(conf.get("worker-extra-args") or []) + list(kw.get("worker_extra_args") or [])
                               + ["--nthreads", "1"])
    # a preview binds the scheduler it needs to loopback; a real run listens where the
    # workers can reach it (jobqueue's `interface`/`scheduler-options` settings)
    scheduler = {"dashboard": False, **({"host": "127.0.0.1"} if preview else {})}
    cluster = SLURMCluster(python=sys.executable, job_script_prologue=prologue, scheduler_options=scheduler, **kw)
    return cluster, per
