"""``bench run --executor dask``: the grid's cells as tasks on ``dask.distributed``.

A thin alternative to the local process pool of :func:`bench.runner.run_grid`, not a second
runner: each task is :func:`bench.runner.execute` (the same cell execution, with the same
handling of a method that raises: a failed row with its reason), run on a worker; the
:class:`~bench.results.CellResult` comes back to the client process, which alone writes the
SQLite store through :func:`bench.runner.store_result` (the local runner's write path). No
worker opens the store, so the store never sits on a network file system.

Where the workers are: a ``LocalCluster`` of ``jobs`` worker processes on this machine
(one thread each, loopback only, no dashboard), or an existing cluster whose scheduler is at
``scheduler`` (``tcp://HOST:PORT``: workers started by hand with ``dask worker``, or by
``dask-jobqueue`` on SLURM, see :mod:`bench.cluster`). The workers read the data and the
weights from the client's roots (absolute paths, handed with every task): on a cluster those
paths must exist on every node (a shared file system) or point at copies with the same
layout (``bench data fetch`` on each node).

Faults. A worker that dies (SIGKILL, out of memory, a lost node) loses its in-flight cells
only: the scheduler reruns them on another worker (Dask's own retry; a cell whose workers
died ``distributed.scheduler.allowed-failures`` + 1 times, 4 by default, raises
``KilledWorker``) and a cell that still does not come back is stored as failed with the
reason, so a rerun of the same command retries it. Every cell that came back was stored at
once, one transaction each, keyed by the cell's hash: nothing finished is lost and no row is
duplicated. Ctrl-C (or SIGTERM) on the client cancels the cells in flight, shuts a
LocalCluster down and keeps every stored cell.
"""
from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, replace
from typing import Callable

from bench.errors import BenchError
from bench.outcome import CellOutcome
from bench.runner import available_cores, choose_threads, execute, failed_result, store_result

#: seconds to wait for an existing scheduler before giving up (``--scheduler``)
CONNECT_TIMEOUT_S = 10


class SchedulerError(BenchError):
    """No Dask scheduler at the address given, or dask.distributed not installed (exit 2)."""

    exit_code = 2


def require_distributed():
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise SchedulerError("--executor dask needs dask.distributed: pip install -e \".[dist]\" "
                             "(or pip install \"dask[distributed]\")") from None


def run_cell(cell, opts, threads: int | None, weights_root: str | None):
    """On a worker: run one cell with ``threads`` torch threads (None: this worker's share
    of its cores) and the client's weights root; the result, the seconds inside the method
    and where and when it ran."""
    import torch

    if weights_root:
        # the methods, the suites' skips and the weights digest read it from here (bench.paths)
        os.environ["BENCH_WEIGHTS"] = weights_root
    if threads is None:
        try:
            from distributed import get_worker
            per = get_worker().state.nthreads
        except Exception:  # noqa: BLE001 - not on a worker (called directly)
            per = 1
        threads = max(1, available_cores() // max(1, per))
    torch.set_num_threads(int(threads))
    start = time.time()
    t0 = time.perf_counter()
    result, method_time = execute(cell, opts)
    return result, method_time, {"wall_s": time.perf_counter() - t0, "start": start, "end": time.time(),
                                 "pid": os.getpid(), "host": socket.gethostname()}


def local_cluster(jobs: int):
    """A LocalCluster of ``jobs`` worker processes with one thread each, on the loopback
    interface, without a dashboard and without a memory limit (as the local process pool)."""
    from distributed import LocalCluster

    # the scheduler's HTTP server (health routes; no dashboard) on a free loopback port, not 8787
    return LocalCluster(n_workers=max(1, int(jobs)), threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address=None, memory_limit=0, silence_logs=logging.ERROR,
                        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})


def connect(scheduler: str | None, jobs: int, cluster: dict | None = None, threads: int | None = None,
            data_root: str | None = None):
    """A client: on the scheduler at ``scheduler``; else on a new SLURM cluster of ``jobs``
    jobs (``cluster``: {"kind": "slurm", "options": {...}}, :mod:`bench.cluster`); else on a
    new LocalCluster of ``jobs`` workers. Returns (client, the cluster to close or None, torch
    threads per cell)."""
    require_distributed()
    from distributed import Client

    if cluster and cluster.get("kind") == "slurm":
        from bench.cluster import slurm_cluster
        made, per = slurm_cluster(cluster.get("options") or {}, data_root, os.environ.get("BENCH_WEIGHTS"), threads)
        made.scale(jobs=max(1, int(jobs)))
        return Client(made, set_as_default=False), made, per

    if scheduler:
        try:
            return Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False), None, threads
        except (OSError, TimeoutError, ValueError) as e:
            raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT_S} s "
                                 f"({type(e).__name__}: {e}); start one (`dask scheduler`, then `dask worker "
                                 f"ADDRESS` on each node) or leave --scheduler out for a LocalCluster of "
                                 f"--jobs workers") from None
    made = local_cluster(jobs)
    return Client(made, set_as_default=False), made, threads


def _close(client, cluster) -> None:
    for thing in (client, cluster):
        if thing is None:
            continue
        try:
            thing.close(timeout=20)
        except Exception:  # noqa: BLE001 - closing after an interrupt or a lost worker
            pass


def parse_scheduler_address(address: str) -> str:
    """``address`` if it can name a Dask scheduler (``tcp://HOST:PORT``, ``tls://...``,
    ``ucx://...``, ``inproc://...``, ``ws(s)://...`` or ``HOST:PORT``), else a
    :class:`SchedulerError` at once (not a traceback after a timeout)."""
    schemes = ("tcp", "tls", "ucx", "inproc", "ws", "wss")
    text = (address or "").strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "tcp", text
    host, colon, port = rest.rpartition(":")
    ok = scheme in schemes and (scheme == "inproc" or (colon and host.strip("[]") and port.isdigit()
                                                       and 0 < int(port) < 65536))
    if not ok:
        raise SchedulerError(f"--scheduler {address!r} is not a Dask scheduler address: give "
                             f"tcp://HOST:PORT (the address `dask scheduler` prints), e.g. tcp://127.0.0.1:8786")
    return text


@dataclass
class DaskExecutor:
    """The :class:`~bench.outcome.Executor` of ``bench run --executor dask``: the cells on a
    LocalCluster of ``jobs`` workers, the cluster at ``scheduler``, or a SLURM cluster
    (``cluster``: {"kind": "slurm", "options": {...}}, :mod:`bench.cluster`)."""

    scheduler: str | None = None
    cluster: dict | None = None

    def __call__(self, todo, store, opts, jobs: int, account: Callable, bar, timings: list | None = None) -> None:
        # an existing cluster's workers choose their own share (None); a LocalCluster
        # shares this machine's free cores as the process pool does
        remote = bool(self.scheduler or self.cluster)
        threads = opts.threads if (opts.threads is not None or remote) else choose_threads(jobs).threads
        run_on_dask(todo, store, opts, jobs, threads, self.scheduler, account, bar, timings, self.cluster)


def run_on_dask(todo, store, opts, jobs: int, threads: int | None, scheduler: str | None,
                account: Callable, bar, timings: list | None = None, cluster_spec: dict | None = None) -> None:
    """Run ``todo`` on Dask, store each result here as it comes back and hand its
    :class:`~bench.runner.CellOutcome` to ``account`` (the runner's progress and summary).
    ``timings`` (when a list) receives each cell's worker-side times (``bench.measure``)."""
    from distributed import as_completed

    t0 = time.perf_counter()
    client, cluster, threads = connect(scheduler, jobs, cluster_spec, threads, opts.data_root)
    try:
        kind = "SLURM cluster" if cluster_spec else "LocalCluster"
        where = scheduler or f"{kind} of {jobs} {'job' if cluster_spec else 'worker'}{'s' if jobs != 1 else ''} at " \
                             f"{client.scheduler.address}"
        n_workers = len(client.scheduler_info().get("workers", {}))
        bar.write(f"dask: {where}, {n_workers} worker(s) connected ({time.perf_counter() - t0:.1f} s)")
        if (scheduler or cluster_spec) and not n_workers:
            bar.write("dask: no worker is connected yet: the cells wait until one joins")
        # every worker reads the roots the client resolved, as absolute paths
        opts = replace(opts, data_root=os.path.abspath(opts.data_root) if opts.data_root else None)
        weights_root = os.environ.get("BENCH_WEIGHTS")
        weights_root = os.path.abspath(weights_root) if weights_root else None
        token = uuid.uuid4().hex[:8]
        futures = {}
        for cell in todo:
            fut = client.submit(run_cell, cell, opts, threads, weights_root, pure=False,
                                key=f"cell-{cell.method}-{cell.key}-{token}")
            futures[fut] = (cell, time.perf_counter())
        try:
            for fut in as_completed(list(futures), loop=client.loop):
                cell, _ = futures[fut]
                try:
                    result, method_time, info = fut.result()
                except Exception as e:  # noqa: BLE001 - a lost cell is a failed cell, the grid goes on
                    name = type(e).__name__
                    why = (" (the workers running it died; a rerun retries it)" if name == "KilledWorker" else "")
                    result, method_time, info = failed_result(cell, f"{name}: {e}{why}"), 0.0, {}
                store_result(result, store)
                if timings is not None:
                    timings.append({"key": cell.key, "received": time.time(), **info})
                account(CellOutcome(cell.key, cell.describe(), result.status, result.error or "",
                                    method_time, info.get("wall_s", 0.0)))
                fut.release()
        except KeyboardInterrupt:
            client.cancel(list(futures), force=True)
            raise
    finally:
        _close(client, cluster)
