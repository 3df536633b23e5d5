"""Runs cells and stores each finished one at once (one transaction per cell).

A cell: load the dataset (cached per process), build the task for the degradation and
device, set the method up, draw its curves if it can be stepped (this pass is also the
warm-up), otherwise run it once untimed as a warm-up, then time ``repeat`` runs and keep
the median. The output of the last timed run is validated (shape, finite) and scored.
A method that raises or returns NaN/Inf becomes a failed row with its reason.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import torch

from bench import artifacts, shared_outputs
from bench import registry as R
from bench.errors import BenchError
from bench.grid import Cell
from bench.outcome import CellOutcome, Executor  # noqa: F401 - importable from here as before
from bench.provenance import provenance
from bench.results import CellResult
from bench.store import Store
from bench.timing import median, synchronize, timed

_DATA_CACHE: dict[Any, Any] = {}
_TASK_CACHE: dict[Any, Any] = {}


@dataclass
class RunOptions:
    data_root: str | None = None
    repeat: int = 3
    warmup: bool = True
    #: torch threads per cell: in each worker of ``jobs > 1`` (None: :func:`choose_threads`)
    #: and in this process for ``jobs == 1`` (None: leave torch's setting, e.g. the one
    #: ``bench check`` pins); each row records the threads its cell ran with
    threads: int | None = None


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def busy_cores() -> float:
    """How many cores other work keeps busy now: the 1-minute load average (runnable
    processes, this one not yet counted) where the OS has one, else 0."""
    try:
        return max(0.0, float(os.getloadavg()[0]))
    except (AttributeError, OSError):
        return 0.0


@dataclass(frozen=True)
class ThreadChoice:
    """Torch threads per worker and why (``bench run`` prints :meth:`line` at start)."""

    threads: int
    jobs: int
    cores: int
    busy: float                 # busy cores measured (the load average) when chosen
    requested: int | None = None

    def line(self) -> str:
        workers = f"{self.jobs} worker{'s' if self.jobs != 1 else ''}"
        if self.requested is not None:
            why = f"--threads {self.requested}; {self.cores} cores"
        else:
            free = max(1, round(self.cores - self.busy))
            why = (f"{self.cores} core{'s' if self.cores != 1 else ''}, {self.busy:.1f} busy with other work "
                   f"(load average) -> {free} free, split between the workers; --threads N to override")
        return f"threads: {self.threads} per worker x {workers} ({why})"


def choose_threads(jobs: int, requested: int | None = None, cores: int | None = None,
                   busy: float | None = None) -> ThreadChoice:
    """Torch threads per worker: ``requested`` (``--threads``) when given, else the cores
    that other work leaves free (``cores`` minus ``busy``, the load average, rounded; at
    least 1) divided between the ``jobs`` workers, at least 1 each.

    Why not torch's default (one thread per core in every process): on a machine whose
    cores are busy, each operation's threads wait at a barrier for a descheduled sibling;
    on this project's 2-core machine that made runs 5-40x slower (measured, see README).
    The load average lags by up to a minute, so right after other work stops this may
    choose fewer threads than an idle machine would allow: at most the cores' factor
    slower, against 5-40x the other way; ``--threads`` overrides."""
    jobs = max(1, int(jobs))
    cores = available_cores() if cores is None else int(cores)
    if requested is not None:
        if int(requested) < 1:
            raise ValueError(f"threads must be at least 1, not {requested}")
        return ThreadChoice(int(requested), jobs, cores, 0.0, int(requested))
    busy = busy_cores() if busy is None else float(busy)
    free = max(1, round(cores - busy))
    return ThreadChoice(max(1, free // jobs), jobs, cores, busy)


def load_dataset(cell: Cell, data_root: str | None):
    key = (cell.dataset, cell.dataset_params, data_root, cell.data_hash)  # changed files: loaded again
    if key not in _DATA_CACHE:
        if len(_DATA_CACHE) > 4:
            _DATA_CACHE.clear()
            _TASK_CACHE.clear()
        ds = R.DATASETS[cell.dataset](**cell.dparams)
        data = ds.load(data_root)
        ds.validate(data)  # non-finite values: a failed cell naming the data, before any method runs
        _DATA_CACHE[key] = data
    return _DATA_CACHE[key]


def build_task(cell: Cell, data_root: str | None):
    suite = R.SUITES[cell.suite]
    key = (cell.dataset, cell.dataset_params, cell.degradation, cell.degradation_params,
           cell.device, cell.seed, data_root, cell.protocol, cell.data_hash)
    if key not in _TASK_CACHE:
        if len(_TASK_CACHE) > 8:
            _TASK_CACHE.clear()
        data = load_dataset(cell, data_root)
        degradation = R.DEGRADATIONS[cell.degradation](**cell.gparams)
        # a suite with protocols builds the task of the cell's protocol (bench.suite.Suite);
        # a cell made by hand without one runs under the suite's default, as its key says
        protocol = {"protocol": cell.protocol or suite.default_protocol} if suite.protocols else {}
        _TASK_CACHE[key] = suite.make_task(data, degradation, cell.degradation_seed(), cell.device, **protocol)
    return _TASK_CACHE[key]


def cell_base(cell: Cell) -> dict[str, Any]:
    """The columns of a cell's row that do not depend on running it (key, labels,
    parameters, seed, provenance, threads, protocol)."""
    R.load_all()
    suite = R.SUITES[cell.suite]
    mcls = R.METHODS[cell.method]
    return {
        "key": cell.key, "suite": cell.suite, "dataset": cell.dataset_label(),
        "dataset_params": cell.dparams, "sample_set": cell.sample_set(),
        "degradation": cell.degradation_label(), "degradation_params": cell.gparams,
        "method": cell.method, "method_label": cell.method_label(), "method_params": cell.mparams,
        "family": mcls.family, "device": cell.device, "seed": cell.seed,
        "source_hash": cell.source_hash, "provenance": provenance(cell.device),
        "threads": torch.get_num_threads(), "protocol": cell.protocol or suite.default_protocol,
    }


def failed_result(cell: Cell, error: str) -> CellResult:
    """The failed row of a cell that did not run to the end (the reason in ``error``), as
    :func:`execute` stores a method that raises."""
    return CellResult(**cell_base(cell), status="failed", error=error)


def execute(cell: Cell, opts: RunOptions) -> tuple[CellResult, float]:
    """Run one cell; return its result (the row to store) and the seconds spent inside
    the method."""
    R.load_all()
    suite = R.SUITES[cell.suite]
    mcls = R.METHODS[cell.method]
    base = cell_base(cell)
    method_time = 0.0
    try:
        task = build_task(cell, opts.data_root)
        base["n_samples"] = task.n_samples
        method = mcls(**cell.mparams)
        torch.manual_seed(cell.method_seed())
        method.setup(R.MethodContext(device=cell.device, seed=cell.method_seed(),
                                     data_root=opts.data_root, problem_id=task.problem_id,
                                     problem=task.problem))
        base["parameter_count"] = method.parameter_count()
        ident = _share_identity(cell, suite, method, task)
        shared = shared_outputs.CACHE.lookup(ident) if ident is not None else None
        if shared is not None:
            # the same method on equal inputs, run by a cell of another protocol: scored here
            output, times, warmup_s, curves = shared.output, list(shared.times), shared.warmup_s, {}
            row_extras, reused = {**shared.extras, "output_shared": {"cell": shared.key, "protocol": shared.protocol}}, \
                shared.reused
        else:
            output, times, warmup_s, curves, reused, spent = _run_method(cell, suite, method, task, opts)
            method_time += spent
            row_extras = method.row_extras()
            if ident is not None:
                shared_outputs.CACHE.put(ident, shared_outputs.SharedRun(
                    cell.key, cell.protocol or suite.default_protocol or "", output, list(times), warmup_s,
                    row_extras, reused))
        suite.validate_output(task, output)
        metrics, extras = suite.score(task, output)
        # the suite's typed extras (a plain dict from a suite of earlier code is read into
        # them), with the method's row extras (checkpoint, training, ...) laid over them
        extras = suite.extras_type.from_json(extras or {}).merged(row_extras)
        if reused:
            extras = extras.merged({"reused_s": reused})
        bad = [k for k, v in metrics.items() if v is not None and v != v]
        if bad:
            raise ValueError(f"metric(s) {', '.join(bad)} are NaN")
        result = CellResult(**base, status="ok", error=None, metrics=metrics, curves=curves, extras=extras,
                            time_s=median(times), times_s=times, warmup_s=warmup_s)
    except KeyboardInterrupt:
        raise
    except BenchError as e:
        result = CellResult(**base, status="failed", error=f"{type(e).__name__}: {e}")
    except Exception as e:  # noqa: BLE001 - a failing method is a failed cell, the run goes on
        tb = traceback.extract_tb(e.__traceback__)
        where = f" (at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno})" if tb else ""
        result = CellResult(**base, status="failed", error=f"{type(e).__name__}: {e}{where}")
    return result, method_time


def _share_identity(cell: Cell, suite, method, task) -> tuple | None:
    """What a cell's output is shared under (:mod:`bench.shared_outputs`), or None where it is
    not shared: the runner did not open a group, the method opts out or draws curves."""
    if not shared_outputs.CACHE.enabled or not method.share_output or (suite.curve_metrics and method.can_step):
        return None
    return (shared_outputs.share_key(cell), cell.method_seed(), method.output_identity(),
            shared_outputs.inputs_digest(task.inputs))


def _run_method(cell: Cell, suite, method, task, opts: RunOptions):
    """The curve pass or warm-up, then the timed repeats: (output of the last, times, warm-up
    seconds, curves, reused seconds, seconds spent in the method)."""
    method_time = 0.0
    curves: dict[str, list[float]] = {}
    warmup_s = None
    if suite.curve_metrics and method.can_step:
        # the curve pass: untimed, doubles as the warm-up
        it = method.iterates(task.inputs)
        t_method = 0.0
        while True:
            synchronize(cell.device)
            t0 = time.perf_counter()
            try:
                est = next(it)
            except StopIteration:
                break
            synchronize(cell.device)
            t_method += time.perf_counter() - t0
            for name, value in suite.curve_point(task, est).items():
                curves.setdefault(name, []).append(value)
        warmup_s = t_method
        method_time += t_method
    elif opts.warmup and method.warmup:
        # a method may warm up on less than the whole task (``warm_up``: one image, say)
        _, warmup_s = timed(lambda: method.warm_up(task.inputs), cell.device)
        method_time += warmup_s
    times = []
    output = None
    n_repeat = max(1, opts.repeat)
    if method.max_repeat:  # minutes-long methods time a single run
        n_repeat = min(n_repeat, max(1, int(method.max_repeat)))
    reused = 0.0
    for _ in range(n_repeat):
        output, dt = timed(lambda: method.run(task.inputs), cell.device)
        reused = float(method.reused_seconds())   # shared work reused: counted as if done here
        times.append(dt + reused)
    method_time += sum(times)
    return output, times, warmup_s, curves, reused, method_time


# --------------------------------------------------------------------------- workers
_WORKER_STORE: Store | None = None


def _init_worker(store_path: str, threads: int, parent_pid: int | None = None) -> None:
    """A worker process: dies with its parent (:func:`_die_with_parent`), ignores Ctrl-C
    (the parent handles it), runs torch on ``threads`` threads (:func:`choose_threads`) and
    opens the store."""
    global _WORKER_STORE
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    torch.set_num_threads(threads)
    _WORKER_STORE = Store(store_path)


#: seconds between a worker's checks that its parent is alive (where the OS cannot tell it)
PARENT_CHECK_S = 1.0


def _die_with_parent(parent_pid: int) -> None:
    """End this worker when the process that started it dies, even by SIGKILL or the
    out-of-memory killer (which give the parent no chance to stop its pool): on Linux the
    kernel sends SIGKILL (``prctl(PR_SET_PDEATHSIG)``); everywhere a daemon thread checks
    every :data:`PARENT_CHECK_S` whether the parent changed (an orphan is adopted by
    another process) and exits at once. A worker that outlived its parent would go on
    computing and storing cells nobody waits for."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)

    def watch():
        while True:
            time.sleep(PARENT_CHECK_S)
            if os.getppid() != parent_pid:
                os._exit(1)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def store_result(result: CellResult, store: Store) -> None:
    """The one write path of a finished cell (every executor): its figures' arrays to a file
    beside the store (:mod:`bench.artifacts`), then the row, in one transaction."""
    store.put(artifacts.save(result, store.path))


def run_and_store(cell: Cell, opts: RunOptions, store: Store | None = None) -> CellOutcome:
    store = store or _WORKER_STORE
    t0 = time.perf_counter()
    result, method_time = execute(cell, opts)
    try:
        store_result(result, store)
    except (KeyboardInterrupt, BenchError):
        # interrupted while waiting for the store's lock, or the lock was never released
        print(f"computed but not stored: {cell.describe()} ({result.status}); rerun the same command to "
              f"compute it again", file=sys.stderr, flush=True)
        raise
    return CellOutcome(cell.key, cell.describe(), result.status, result.error or "",
                       method_time, time.perf_counter() - t0)


def run_group_and_store(group: list[Cell], opts: RunOptions, store: Store | None = None,
                        bar=None, on_outcome=None) -> list[CellOutcome]:
    """Run and store the cells of one group (:func:`bench.shared_outputs.group_cells`: one
    method, data and noise under several protocols) one after the other in this process; a
    cell whose inputs equal an earlier one's takes its output (:mod:`bench.shared_outputs`).
    ``on_outcome`` is called as each cell is stored (an interrupted group still counts the
    cells it stored)."""
    shared_outputs.CACHE.enabled = len(group) > 1
    outcomes = []
    try:
        for cell in group:
            if bar is not None:
                bar.set_postfix_str(cell.describe()[-60:])
            outcomes.append(run_and_store(cell, opts, store))
            if on_outcome is not None:
                on_outcome(outcomes[-1])
    finally:
        shared_outputs.CACHE.clear()
    return outcomes


def expected_cost(cell: Cell) -> float:
    """A cell's expected seconds per sample (:func:`bench.grid_times.expected_seconds`; 0 when
    unknown)."""
    from bench.grid_times import expected_seconds
    return expected_seconds(cell.suite, cell.method, cell.mparams)


def longest_first(cells: list[Cell]) -> list[Cell]:
    """The order in which a pool of workers takes the cells: the costliest first (longest
    processing time first: the workers finish together instead of one running a long cell
    alone at the end), the grid's order among equals."""
    return sorted(cells, key=lambda c: -expected_cost(c))


def longest_first_groups(groups: list[list[Cell]]) -> list[list[Cell]]:
    """:func:`longest_first` for groups of cells that run in one worker: the costliest group
    first; a group costs the sum of its cells' expected seconds (an upper bound: cells that
    share an output cost less)."""
    return sorted(groups, key=lambda g: -sum(expected_cost(c) for c in g))


@dataclass
class RunSummary:
    total: int = 0
    done: int = 0
    reused: int = 0
    failed: int = 0
    skipped: int = 0
    interrupted: bool = False
    wall_s: float = 0.0
    method_s: float = 0.0
    failures: list[CellOutcome] = field(default_factory=list)
    skip_notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"cells: {self.total} in grid, {self.done} done, {self.reused} reused from the store, "
                 f"{self.failed} failed, {self.skipped} skipped; wall time {self.wall_s:.1f} s "
                 f"(inside methods {self.method_s:.1f} s)"]
        lines += [f"  skipped: {n}" for n in self.skip_notes]
        for f in self.failures:
            lines.append(f"  FAILED {f.label}: {f.error}")
        if self.interrupted:
            lines.append("interrupted: every finished cell is stored; rerun the same command to complete the grid")
        return "\n".join(lines)


def run_grid(cells: list[Cell], store: Store, opts: RunOptions, jobs: int = 1,
             progress: bool = True, executor: "str | Executor" = "local",
             timings: list | None = None) -> RunSummary:
    """Run the cells not yet finished in ``store`` and store each as it finishes.

    ``executor``: ``local`` (this process for ``jobs == 1``, else a pool of ``jobs`` worker
    processes that write the store themselves and die with this process) or an
    :class:`~bench.outcome.Executor` the caller chose, e.g.
    :class:`bench.dask_executor.DaskExecutor` (the cells run as tasks on
    ``dask.distributed``; results come back here and only this process writes the store;
    ``timings`` collects each cell's worker-side times). The runner imports no executor.
    The cache (finished cells reused), the progress bar, the summary and Ctrl-C behave alike."""
    from tqdm import tqdm

    if executor != "local" and not callable(executor):
        raise ValueError(f"unknown executor {executor!r}: 'local' or an Executor (bench.outcome)")

    t_start = time.perf_counter()
    summary = RunSummary(total=len(cells))
    finished = store.finished_keys(c.key for c in cells)
    todo = [c for c in cells if c.key not in finished]
    summary.reused = len(cells) - len(todo)
    bar = tqdm(total=len(todo), desc="cells", unit="cell", disable=not progress,
               dynamic_ncols=True, file=sys.stderr)

    def account(outcome: CellOutcome):
        summary.method_s += outcome.method_time_s
        if outcome.status == "ok":
            summary.done += 1
        else:
            summary.failed += 1
            summary.failures.append(outcome)
            bar.write(f"FAILED {outcome.label}: {outcome.error}", file=sys.stderr)
        bar.set_postfix_str(outcome.label[-60:], refresh=False)
        bar.update(1)

    previous_threads = torch.get_num_threads()
    try:
        if executor != "local":
            if todo:
                executor(todo, store, opts, jobs, account, bar, timings)
        elif jobs <= 1 or len(todo) <= 1:
            if opts.threads is not None:
                torch.set_num_threads(int(opts.threads))
            for group in shared_outputs.group_cells(todo):
                run_group_and_store(group, opts, store, bar, on_outcome=account)
        else:
            threads = opts.threads if opts.threads is not None else choose_threads(jobs).threads
            ctx = mp.get_context("spawn")
            pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                                          initargs=(store.path, threads, os.getpid()))
            try:
                futures = {pool.submit(run_group_and_store, g, opts): g
                           for g in longest_first_groups(shared_outputs.group_cells(todo))}
                for fut in cf.as_completed(futures):
                    for outcome in fut.result():
                        account(outcome)
            except BaseException:  # Ctrl-C, or a worker's store error: no worker goes on alone
                for p in list(getattr(pool, "_processes", {}).values()):
                    p.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown()
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
        torch.set_num_threads(previous_threads)
    summary.wall_s = time.perf_counter() - t_start
    return summary
