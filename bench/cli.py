"""Command line: ``python -m bench {list,weights,data,run,report,publish,export,check}``.

Exit status: 0 success; 1 a cell failed, a check moved, a fatal data/checkpoint error, or
(``weights``) a published weights file is corrupt; 2 bad input (unknown name, malformed
selector, a parameter value its component does not allow, bad option); 130 interrupted.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

# where things are is bench.paths' business; these names stay importable from here
from bench.paths import DEFAULT_REPORTS, DEFAULT_RESULTS, default_data_root  # noqa: F401


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=None,
                   help="folder with the real data sets (default: $BENCH_DATA, else "
                        "~/.cache/imaging-bench/data); `data list` shows what is there, `data fetch` gets it")
    p.add_argument("--results", default=DEFAULT_RESULTS,
                   help=f"path of the SQLite result store (default: {DEFAULT_RESULTS})")
    _add_weights_root(p)


def _add_weights_root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights-root", default=None,
                   help="folder with the published weights, checkpoint=published:<name> (default: $BENCH_WEIGHTS, "
                        "else ~/.cache/imaging-bench/weights); see `weights`, `data fetch weights`")


#: the range of a base seed: a row stores it as SQLite's 64-bit signed INTEGER
MIN_SEED, MAX_SEED = -(2**63), 2**63 - 1


def _seed(text: str) -> int:
    """``--seed``: a 64-bit integer (:data:`MIN_SEED` to :data:`MAX_SEED`), checked before any cell runs."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer: give a whole number, e.g. 0") from None
    if not MIN_SEED <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} is out of range: give a whole number from {MIN_SEED} to "
                                         f"{MAX_SEED} (the store keeps seeds as 64-bit integers)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark classical solvers against deep-unrolling networks on imaging inverse problems.",
        epilog="Selectors name a component and optionally parameters: fista, 'fista[n_iter=200,lam=0.1]', "
               "'ista[n_iter=[100,1000]]' (a list expands into several cells).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="print suites, datasets, degradations, methods and metrics")
    p.add_argument("--suite", help="only this suite")

    p = sub.add_parser("weights", help="list the published weight sets the project knows and the status of each file",
                       description="Every published weight set (the authors' released networks): method, name "
                                   "(select it with checkpoint=published:<name>), source repository and commit, "
                                   "what it was trained on, the published figure and its protocol, the file expected "
                                   "under the weights root and its status: present, missing or corrupt (sha256 "
                                   "differs from the project's manifest). Exit 0, or 1 when a file is corrupt "
                                   "(missing files are not an error: download the ones you need).")
    p.add_argument("--suite", help="only this suite's weights (istd, cs, hsi)")
    p.add_argument("--method", help="only this method's weights")
    _add_weights_root(p)

    p = sub.add_parser("data", help="list the real data sets and published weights (present/missing/corrupt), "
                                    "fetch them",
                       description="`data list`: every real data set and published weights file the project can "
                                   "use, with its status under the data/weights root (present, missing, corrupt: "
                                   "sha256 differs from the manifest), size, source and what to cite; exit 1 when "
                                   "one is corrupt. `data fetch NAME|all`: download from the public sources (or "
                                   "--mirror) into the data or weights root, every file checked against the "
                                   "manifest's sha256 (a corrupt or interrupted download is retried, never used); "
                                   "exit 1 when something could not be fetched, 2 for an unknown name.")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    dp = dsub.add_parser("list", help="every data set and weights file with its status")
    dp.add_argument("names", nargs="*", metavar="NAME", help="only these (default: everything)")
    dp.add_argument("--data-root", default=None, help="the data root (default: $BENCH_DATA, else "
                                                      "~/.cache/imaging-bench/data)")
    _add_weights_root(dp)
    dp = dsub.add_parser("fetch", help="download data sets / weights, verified by sha256")
    dp.add_argument("names", nargs="+", metavar="NAME",
                    help="a data set (see `data list`), a weights file (method:name), a method's weights, "
                         "`data`, `weights` or `all`")
    dp.add_argument("--data-root", default=None, help="where data sets go (default: $BENCH_DATA, else "
                                                      "~/.cache/imaging-bench/data)")
    dp.add_argument("--mirror", default=None, metavar="URL",
                    help="fetch from a copy served at URL/data/<path> and URL/weights/<path> instead of the public "
                         "sources (default: $BENCH_MIRROR)")
    dp.add_argument("--retries", type=int, default=2, help="further tries of a failed download (default 2)")
    _add_weights_root(dp)
    dp = dsub.add_parser("verify", help="check a manual download file by file against the shipped hashes",
                         description="Check a user's copy of a data set that is a manual download (irstd1k) file "
                                     "by file against the SHA-256 shipped with the project, and report the mask "
                                     "binarisation rule the loader applies; exit 1 when a file differs or is "
                                     "missing.")
    dp.add_argument("name", metavar="NAME", help="irstd1k")
    dp.add_argument("--path", default=None, help="the copy's folder (default: <data root>/istd/IRSTD-1k)")
    dp.add_argument("--data-root", default=None, help="the data root (default: $BENCH_DATA, else "
                                                      "~/.cache/imaging-bench/data)")

    p = sub.add_parser("run", help="run a suite's grid and store every finished cell",
                       description="Run the grid (datasets x degradations x methods x devices) of a suite. "
                                   "Finished cells already in the store are reused; failed ones are retried.")
    p.add_argument("--suite", required=True, help="suite to run (see `list`)")
    p.add_argument("--method", action="append", metavar="SELECTOR",
                   help="method selector, repeatable, e.g. 'fista[n_iter=200]' (default: the suite's grid)")
    p.add_argument("--dataset", action="append", metavar="SELECTOR", help="dataset selector, repeatable")
    p.add_argument("--degradation", action="append", metavar="SELECTOR",
                   help="degradation selector, repeatable, e.g. 'awgn_snr[snr_db=40]'")
    p.add_argument("--device", default="cpu", help="comma-separated devices: cpu, cuda or cpu,cuda (default cpu)")
    p.add_argument("--repeat", type=int, default=None, help="timed repeats after the warm-up; the median is kept (default 3, 1 with --quick)")
    p.add_argument("--jobs", type=int, default=1,
                   help="parallel worker processes (threads are split between them); with --executor dask the "
                        "LocalCluster's workers")
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="where the cells run: local (this process, or a pool of --jobs processes; default) or "
                        "dask (tasks on dask.distributed: a LocalCluster of --jobs workers, or the cluster at "
                        "--scheduler; only this process writes the store; needs the `dist` extra)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="with --executor dask: an existing Dask scheduler, e.g. tcp://HOST:8786 (workers started "
                        "with `dask worker` or dask-jobqueue; they must see the same --data-root/--weights-root "
                        "paths); default: a LocalCluster on this machine")
    p.add_argument("--cluster", choices=["local", "slurm"], default="local",
                   help="with --executor dask and no --scheduler: local (a LocalCluster of --jobs workers) or slurm "
                        "(--jobs SLURM jobs of Dask workers through dask-jobqueue; settings from "
                        "~/.config/dask/jobqueue.yaml and --cluster-option)")
    p.add_argument("--cluster-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a SLURM job setting, repeatable: queue, account, cores, processes, memory, walltime, "
                        "job_extra_directives (comma-separated), ...")
    p.add_argument("--print-job-script", action="store_true",
                   help="with --cluster slurm: print the job script that would be submitted and exit")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads per worker, N >= 1 (default: the cores that other work leaves free, "
                        "by the load average, divided by --jobs, at least 1; torch's own default, every core in "
                        "every process, ran 5-40x slower on busy cores); printed at start, each stored row records it")
    p.add_argument("--quick", action="store_true", help="the suite's reduced grid (minutes)")
    p.add_argument("--smoke", action="store_true", help="the suite's smoke grid (what `check` runs)")
    p.add_argument("--grid", default=None, metavar="NAME",
                   help="one of the suite's named grids: default (the paper's main table), full (every data set and "
                        "noise case), or an extra one such as istd's `ablation` (see `list`)")
    p.add_argument("--protocol", action="append", metavar="NAME",
                   help="scoring protocol of a suite that has several (see `list`), repeatable, e.g. istd's "
                        "`rpcanet` (the RPCANet authors' test code); default: the grid's, else the suite's default")
    p.add_argument("--seed", type=_seed, default=0,
                   help="base seed (a 64-bit integer); every cell's seeds derive from it by hashing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-report", action="store_true",
                   help="do not write the suite's report at the end (as `bench report` would; also $BENCH_NO_REPORT=1)")
    p.add_argument("--out", default=None, help=f"report folder (default {DEFAULT_REPORTS}/<suite>)")
    p.add_argument("--offline", action="store_true",
                   help="fetch nothing (also $BENCH_OFFLINE=1): cells that need absent data or weights are skipped")
    p.add_argument("--mirror", default=None, metavar="URL",
                   help="fetch missing data and weights from this mirror (as `bench data fetch --mirror`)")
    _add_common(p)

    p = sub.add_parser("report", help="write LaTeX/Markdown tables, PNG/PDF figures and the HTML page from the store",
                       description="Write a suite's tables and figures from the store (--suite), or rewrite every "
                                   "committed report folder from the committed data in results/published/ "
                                   "(--all; no method runs; the README's headline tables are refreshed from "
                                   "them too). Either way the HTML results page index.html is rewritten at the "
                                   "top of the report folders.")
    p.add_argument("--suite", default=None, help="the suite whose report to write from --results")
    p.add_argument("--all", action="store_true",
                   help="rewrite every report folder listed in results/published/index.json from its published "
                        "data (see `publish`), removing the folder's report files it no longer writes")
    p.add_argument("--out", default=DEFAULT_REPORTS, help=f"output folder (default {DEFAULT_REPORTS}/)")
    p.add_argument("--out-root", default=None, metavar="DIR",
                   help="with --all: write the folders below DIR instead of reports/ (reports/hsi -> DIR/hsi)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a suite-specific report option, repeatable, e.g. metric_sets=starnet (hsi)")
    _add_common(p)

    p = sub.add_parser("publish", help="commit a report's data: the tidy table, cells and figure arrays of a store "
                                       "in results/published/, then rewrite the report folder from them",
                       description="Write the data a report folder is made from, from one store, to "
                                   "results/published/<name>.csv.gz (the `export` table, gzip), "
                                   "<name>.cells.json.gz (each cell's curves, extras and provenance), "
                                   "<name>.npz (the figures' arrays) and list them in results/published/index.json "
                                   "with the suite and the report options; then rewrite the folder from those files "
                                   "as `report --all` does. Commit both the data and the folder.")
    p.add_argument("--suite", required=True, help="the suite whose finished cells (of --results) to publish")
    p.add_argument("--folder", required=True, metavar="DIR", help="the report folder, under reports/, e.g. reports/hsi")
    p.add_argument("--name", default=None,
                   help="the data files' name (default: the folder's path below reports/, e.g. hsi)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a report option recorded with the data and used on every rebuild, repeatable")
    p.add_argument("--no-report", action="store_true", help="only write the data, not the report folder")
    _add_common(p)

    p = sub.add_parser("export", help="the store as a tidy table: one row per (cell, metric), CSV/Parquet/JSON",
                       description="One row per finished cell and metric: suite, dataset and its parameters, "
                                   "degradation, method label and parameters, device, protocol, weights provenance, "
                                   "metric value, unit and direction, timing and provenance (commit, versions, "
                                   "CPU/GPU, threads). Values unrounded, as stored. To commit the data behind a "
                                   "report folder (this table plus what the report reads), see `publish`.")
    p.add_argument("--suite", required=True)
    p.add_argument("--format", default="csv", choices=["csv", "parquet", "json"], help="default csv")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="output file (default: reports/<suite>_tidy.<format>)")
    _add_common(p)

    p = sub.add_parser("check", help="rerun the smoke grids and compare with the committed baselines")
    p.add_argument("--suite", action="append", help="only these suites (default: every suite)")
    p.add_argument("--update", action="store_true", help="rewrite the baselines from this run")
    p.add_argument("--new-only", action="store_true",
                   help="with --update: only add the cells and metrics the baselines lack (a method new to the "
                        "smoke grid); every committed value stays as it is")
    p.add_argument("--no-progress", action="store_true")
    _add_common(p)

    # suites may add commands (e.g. `train`) in their own module with add_parser(sub)
    import importlib.util
    if importlib.util.find_spec("bench.train") is not None:
        from bench import train
        train.add_parser(sub)
    return parser


def cmd_list(args) -> int:
    from bench import registry as R
    R.load_all()
    suites = [R.SUITES.get_or_fail(args.suite)] if args.suite else list(R.SUITES.values())
    for s in suites:
        print(f"suite {s.name}: {s.description}")
        print("  datasets:")
        for d in R.datasets_of(s.name):
            print(f"    {d.name:22s} {_params(d.parameters)}{'  [reads --data-root]' if d.needs_data else ''}")
            if d.description:
                print(f"    {'':22s} {d.description}")
            _print_allowed(d)
        print("  degradations:")
        for g in R.DEGRADATIONS.values():
            if s.name in g.suites:
                print(f"    {g.name:22s} {_params(g.parameters)}")
                if g.description:
                    print(f"    {'':22s} {g.description}")
                _print_allowed(g)
        print("  methods:")
        for m in R.methods_of(s.name):
            print(f"    {m.name:22s} {m.family:9s} devices={','.join(m.devices):9s} {_params(m.parameters)}")
            if m.description:
                print(f"    {'':22s} {m.description}")
            _print_allowed(m)
        print("  metrics:")
        for name in s.metrics:
            mt = R.METRICS[name]
            arrow = "lower is better" if mt.direction == "min" else "higher is better"
            print(f"    {mt.name:22s} [{mt.unit}] {arrow}; {mt.definition}")
        _print_grids(s)
        if s.protocols:
            print("  protocols (run --protocol NAME):")
            for name in s.protocols:
                default = " (default)" if name == s.default_protocol else ""
                print(f"    {name + default:22s} {s.protocol_description(name)}")
        print()
    return 0


def named_grids(suite) -> dict:
    """Every grid ``bench run --grid NAME`` runs: ``default`` (what ``bench run`` runs without
    ``--grid``: the suite's ``grid``, its paper's main table), ``full`` (the suite's ``full``:
    every data set and noise case; the default grid where a suite has none) and the suite's
    ``extra_grids``."""
    return {"default": suite.grid, "full": getattr(suite, "full", None) or suite.grid, **suite.extra_grids}


def grid_cell_count(suite, grid) -> int:
    """The cells of a grid on one device (datasets x noise cases x methods x protocols, summed
    over the grid's parts)."""
    from bench.grid import resolve, resolve_protocols
    from bench import registry as R
    from bench.suite import grid_parts
    total = 0
    for spec in grid_parts(grid):
        n = len(resolve_protocols(suite.name, spec.protocols))
        for sel, reg, what in ((spec.datasets, R.DATASETS, "dataset"),
                               (spec.degradations, R.DEGRADATIONS, "degradation"), (spec.methods, R.METHODS, "method")):
            n *= len(resolve(sel, reg, suite.name, what))
        total += n
    return total


def _print_grids(s) -> None:
    """``bench list``: every grid of a suite with its size and, where measured, its time."""
    from bench.grid_times import measured
    print("  grids (run --grid NAME; `default` is what `bench run` runs, the paper's main table):")
    from bench.suite import grid_parts
    for gname, g in named_grids(s).items():
        same = gname == "full" and getattr(s, "full", None) is None
        t = measured(s.name, gname)
        shape = " + ".join(f"{len(p.datasets)} dataset(s) x {len(p.degradations)} degradation(s) x "
                           f"{len(p.methods)} method selector(s)"
                           + (f", protocol(s) {', '.join(p.protocols)}" if p.protocols else "") for p in grid_parts(g))
        print(f"    {gname:22s} {grid_cell_count(s, g):4d} cells (before skips): {shape}"
              + (" (the default grid)" if same else "") + (f"; {t.line()}" if t else ""))


def _print_allowed(cls) -> None:
    """One line per parameter: what values it takes (its spec, :mod:`bench.params`)."""
    for k in cls.parameters:
        spec = cls.parameter_specs.get(k)
        print(f"    {'':22s}   {k}: {spec.describe() if spec else '(undeclared)'}")


def _params(p: dict) -> str:
    from bench.registry import format_value
    return "[" + ", ".join(f"{k}={format_value(v)}" for k, v in p.items()) + "]" if p else "[]"


def cmd_weights(args) -> int:
    from bench import weights
    text, corrupt = weights.listing(args.weights_root, suite=args.suite, method=args.method)
    print(text)
    return 1 if corrupt else 0


def cmd_data(args) -> int:
    from bench import data
    if args.data_command == "list":
        text, corrupt = data.listing(args.data_root, args.weights_root, args.names or None)
        print(text)
        return 1 if corrupt else 0
    if args.data_command == "fetch":
        if args.retries < 0:
            print("error: --retries must be at least 0", file=sys.stderr)
            return 2
        bad = data.fetch(args.names, args.data_root, args.weights_root, args.mirror, args.retries)
        return 1 if bad else 0
    if args.data_command == "verify":
        from bench.data_verify import verify
        return verify(args.name, args.path, args.data_root)
    print("usage: python -m bench data {list,fetch,verify} ...", file=sys.stderr)
    return 2


def cmd_run(args) -> int:
    import torch

    from bench import registry as R
    from bench.grid import build_cells
    from bench.runner import RunOptions, choose_threads, run_grid
    from bench.store import Store

    if args.threads is not None and args.threads < 1:
        print(f"error: --threads must be at least 1 (got {args.threads})", file=sys.stderr)
        return 2
    suite = R.SUITES.get_or_fail(args.suite)
    spec = suite.smoke if args.smoke else (suite.quick if args.quick else suite.grid)
    if args.grid:
        extra = named_grids(suite)
        if args.grid not in extra:
            from bench.errors import UnknownNameError
            raise UnknownNameError(f"suite {args.suite} has no grid {args.grid!r}", valid=sorted(extra), what="grid")
        spec = extra[args.grid]
    devices = [d.strip() for d in args.device.split(",") if d.strip()]
    for d in devices:
        if d not in ("cpu", "cuda"):
            from bench.errors import UnknownNameError
            raise UnknownNameError(f"unknown device {d!r}", valid=["cpu", "cuda"], what="device")
    if "cuda" in devices and not torch.cuda.is_available():
        print("cuda: no CUDA device on this machine; its cells are skipped", file=sys.stderr)
        devices = [d for d in devices if d != "cuda"]
    if not devices:
        print("nothing to run: no requested device is available", file=sys.stderr)
        return 1
    data_root = args.data_root or default_data_root()
    # --smoke: the smoke grid and the suite's further smoke specs (what `check` runs)
    from bench.suite import grid_parts
    specs = [*grid_parts(spec), *(suite.smoke_extra if args.smoke and not args.grid else ())]

    def planned():
        out, seen = [], set()
        for sp in specs:
            for c in build_cells(args.suite, args.dataset or sp.datasets, args.degradation or sp.degradations,
                                 args.method or sp.methods, devices, args.seed, args.protocol or sp.protocols,
                                 data_root=data_root):
                if c.key not in seen:
                    seen.add(c.key)
                    out.append(c)
        return out

    cells = all_cells = planned()
    unsupported = [c for c in cells if c.device not in R.METHODS[c.method].devices]
    cells = [c for c in cells if c.device in R.METHODS[c.method].devices]
    for name in sorted({(c.method, c.device) for c in unsupported}):
        print(f"{name[0]} does not run on {name[1]}: those cells are skipped (shown as '-')", file=sys.stderr)
    from bench.fetching import fetch_for_cells, offline_requested
    fetched = fetch_for_cells(cells, data_root, args.weights_root, args.offline or offline_requested(), args.mirror)
    if fetched.fetched:
        # a cell's key holds the SHA-256 of the data files it reads: plan again with the files
        # now on disk (same cells, same order), so that a rerun finds the rows stored now
        again = dict(zip((c.key for c in all_cells), planned()))
        cells = [again[c.key] for c in cells]
        fetched.failed = [(again[c.key], why) for c, why in fetched.failed]
        fetched.reasons = {again[k].key: why for k, why in fetched.reasons.items()}
    not_fetched = {c.key for c, _ in fetched.failed}      # failed below, with the fetch's reason
    cells = [c for c in cells if c.key not in not_fetched]
    reasons = {c.key: fetched.reasons.get(c.key) or suite.skip_reason(c) for c in cells}
    for line in group_skip_lines(reasons.values()):
        print(line, file=sys.stderr)
    unsupported += [c for c in cells if reasons[c.key]]
    cells = [c for c in cells if not reasons[c.key]]
    repeat = args.repeat if args.repeat is not None else (1 if (args.quick or args.smoke) else 3)
    if repeat < 1 or args.jobs < 1:
        print("error: --repeat and --jobs must be at least 1", file=sys.stderr)
        return 2
    if args.scheduler and args.executor != "dask":
        print("error: --scheduler needs --executor dask", file=sys.stderr)
        return 2
    executor = "local"
    if args.executor == "dask":
        # the command line chooses the executor: the runner never imports Dask
        from bench.dask_executor import DaskExecutor, parse_scheduler_address, require_distributed
        if args.scheduler is not None:
            parse_scheduler_address(args.scheduler)
        require_distributed()
    cluster = None
    if args.cluster == "slurm" or args.print_job_script:
        if args.executor != "dask" or args.scheduler or args.cluster != "slurm":
            print("error: --cluster slurm and --print-job-script need --executor dask --cluster slurm and no "
                  "--scheduler", file=sys.stderr)
            return 2
        from bench.cluster import parse_options, slurm_cluster
        cluster = {"kind": "slurm", "options": parse_options(args.cluster_option)}
        if args.print_job_script:
            made, _ = slurm_cluster(cluster["options"], data_root, os.environ.get("BENCH_WEIGHTS"), args.threads,
                                    preview=True)
            try:
                print(made.job_script())
            finally:
                made.close()
            return 0
    if args.executor == "dask":
        executor = DaskExecutor(scheduler=args.scheduler, cluster=cluster)
    store = Store(args.results)  # a store that cannot be written fails here, before any cell is computed
    threads = choose_threads(args.jobs, args.threads)
    print(f"suite {args.suite}: {len(cells)} cell(s); store {args.results}; data root {data_root}", file=sys.stderr)
    per_cell = threads.threads
    if (args.scheduler or cluster) and args.threads is None:
        # this machine's load says nothing about the cluster's: each worker takes its own share
        per_cell = None
        print("threads: each worker's cores divided by its threads / worker processes (--threads N to override)",
              file=sys.stderr)
    else:
        print(threads.line(), file=sys.stderr)
    summary = run_grid(cells, store, RunOptions(data_root=data_root, repeat=repeat, threads=per_cell),
                       jobs=args.jobs, progress=not args.no_progress, executor=executor)
    summary.skipped = len(unsupported)
    for cell, why in fetched.failed:   # a fetch that failed fails the cells that needed it
        from bench.runner import failed_result, store_result
        store_result(failed_result(cell, why), store)
        summary.failed += 1
        print(f"FAILED {cell.describe()}: {why}", file=sys.stderr)
    print(summary.text())
    if summary.interrupted:
        return 130
    if not (args.no_report or os.environ.get("BENCH_NO_REPORT", "").strip().lower() in ("1", "true", "yes", "on")):
        report_after_run(suite, store, args.out or os.path.join(DEFAULT_REPORTS, suite.name))
    return 1 if summary.failed else 0


def group_skip_lines(reasons) -> list[str]:
    """One line per reason for the cells a run leaves out: reasons that differ only in what
    they name before their first ": " (a method, a checkpoint) share a line that lists those."""
    groups: dict[str, dict[str, int]] = {}
    for r in reasons:
        if not r:
            continue
        subject, sep, why = r.partition(": ")
        if not sep:
            subject, why = "", r
        groups.setdefault(why, {})
        groups[why][subject] = groups[why].get(subject, 0) + 1
    lines = []
    for why, subjects in groups.items():
        n = sum(subjects.values())
        named = [s for s in subjects if s]
        lines.append(f"skipped {n} cell(s): {why}" + (f" [{'; '.join(named)}]" if named else ""))
    return lines


def report_after_run(suite, store, out: str) -> list[str]:
    """``bench run``'s last step: the suite's report from every finished row of the store, as
    ``bench report`` writes it; prints where the Markdown, LaTeX and HTML files went. A report
    that fails is named (the stored rows are kept; `bench report` retries it)."""
    frame = store.frame(suite.name)
    if frame.empty:
        print(f"report: no finished cell of suite {suite.name} in {store.path}; nothing written", file=sys.stderr)
        return []
    try:
        paths = [str(p) for p in suite.report(frame, out, {})]
    except Exception as e:  # noqa: BLE001 - the results are stored; only the report is missing
        print(f"report: FAILED ({type(e).__name__}: {e}); the results are stored, retry with "
              f"`python -m bench report --suite {suite.name} --results {store.path} --out {out}`", file=sys.stderr)
        return []
    kinds = {".md": "Markdown", ".tex": "LaTeX", ".html": "HTML", ".pdf": "PDF figures", ".png": "PNG figures"}
    by_kind: dict[str, list[str]] = {}
    for p in paths:
        by_kind.setdefault(kinds.get(os.path.splitext(p)[1].lower(), "other"), []).append(p)
    print(f"report of suite {suite.name} written to {out}/ ({len(paths)} file(s)):")
    for kind in ("Markdown", "LaTeX", "HTML", "PDF figures", "PNG figures", "other"):
        if kind in by_kind:
            files = by_kind[kind]
            first = next((f for f in files if os.path.basename(f).startswith("index")), files[0])
            print(f"  {kind:12s} {len(files):3d}: {first}" + (" ..." if len(files) > 1 else ""))
    try:
        from bench.html import write_index
        print(f"  {'HTML':12s} page: {write_index(_html_root(out))}")
    except Exception as e:  # noqa: BLE001 - the tables and figures are written; only the page is missing
        print(f"report: the results page was not written ({type(e).__name__}: {e}); "
              f"`python -m bench report --suite {suite.name} --results {store.path}` retries it", file=sys.stderr)
    return paths


def _report_options(items) -> dict:
    options = {}
    for item in items:
        if "=" not in item:
            from bench.errors import SelectorError
            raise SelectorError(f"--option {item!r} is not of the form KEY=VALUE")
        key, value = item.split("=", 1)
        options[key.strip()] = value.strip()
    return options


def _write_html(out: str) -> None:
    from bench.html import write_index
    print(write_index(out))


def cmd_report(args) -> int:
    from bench import registry as R
    from bench.errors import BenchError, OutputError, SelectorError
    from bench.outputs import check_out, unwritable
    from bench.store import Store, check_store_path

    if args.all:
        if args.suite or args.option:
            raise SelectorError("--all rewrites every published report with its recorded options: "
                                "drop --suite/--option (or drop --all)")
        from bench.publish import report_all
        written, removed = report_all(args.out_root)
        for p in written:
            print(p)
        for p in removed:
            print(f"removed (no longer written): {p}")
        _write_html(args.out_root or DEFAULT_REPORTS)
        if args.out_root is None:
            from bench.publish import refresh_readme
            for p in refresh_readme():
                print(f"README.md: headline table from {p}")
        return 0
    if args.out_root:
        raise SelectorError("--out-root goes with --all; use --out for one suite's report")
    if not args.suite:
        raise SelectorError("say which report: --suite SUITE (from --results), or --all (every committed report "
                            "from results/published/)")
    suite = R.SUITES.get_or_fail(args.suite)
    check_store_path(args.results)
    if not os.path.exists(args.results):
        raise BenchError(f"no result store at {args.results}: run `python -m bench run --suite {args.suite}` first "
                         f"or pass --results")
    check_out(args.out, args.results)
    store = Store(args.results, readonly=True)  # a report only reads: works on read-only media too
    frame = store.frame(args.suite)
    if frame.empty:
        raise BenchError(f"the store {args.results} has no finished cells of suite {args.suite!r}")
    failed = store.frame(args.suite, status="failed")
    store.close()
    options = _report_options(args.option)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise OutputError(f"--out {args.out} is a file: pass a folder for the report's tables and figures")
    try:
        paths = suite.report(frame, args.out, options)
    except OSError as e:
        raise OutputError(unwritable(args.out, e)) from None
    for p in paths:
        print(p)
    _write_html(_html_root(args.out))
    if len(failed):
        print(f"note: {len(failed)} failed cell(s) are not in the tables (see the store's 'error' column)",
              file=sys.stderr)
    return 0


def _html_root(out: str) -> str:
    """Where the HTML page goes for a report written to ``out``: the default report folder
    when ``out`` is in it (reports/hsi -> reports/index.html), else ``out`` itself."""
    root = os.path.abspath(DEFAULT_REPORTS)
    o = os.path.abspath(out)
    return DEFAULT_REPORTS if o == root or o.startswith(root + os.sep) else out


def cmd_publish(args) -> int:
    from bench.publish import publish, read_index, remove_stale, report_folder

    options = _report_options(args.option)
    entry = publish(args.results, args.suite, args.folder, options, args.name)
    for k in ("data", "cells", "arrays"):
        if entry[k]:
            print(f"{entry[k]}: {os.path.getsize(entry[k]) / 1e6:.2f} MB")
    commits = entry.get("commits") or []
    print(f"{entry['rows']} cell(s) from {len(commits)} commit(s): {', '.join(commits)}"
          + ("" if len(commits) <= 1 else " (a report folder is best made from one store at one commit)"))
    if args.no_report:
        return 0
    paths = report_folder(read_index()[os.path.normpath(args.folder)], args.folder)
    for p in paths:
        print(p)
    for p in remove_stale(args.folder, paths):
        print(f"removed (no longer written): {p}")
    _write_html(_html_root(args.folder))
    return 0


def cmd_export(args) -> int:
    from bench.export import export
    path, n = export(args.results, args.suite, args.format, args.out)
    print(f"{path}: {n} row(s)")
    return 0


def cmd_check(args) -> int:
    from bench import registry as R
    from bench.check import (add_to_baseline, compare, format_drifts, load_baseline, read_baseline, run_smoke,
                             skipped_smoke_cells, smoke_methods, load_method_tolerances, write_baseline)

    R.load_all()
    names = args.suite or list(R.SUITES)
    for n in names:
        R.SUITES.get_or_fail(n)
    for n in names:  # a malformed baseline is refused before any smoke grid runs
        read_baseline(n)
    data_root = args.data_root or default_data_root()
    bad = 0
    t0 = time.perf_counter()
    for name in names:
        values, failures, summary = run_smoke(name, data_root, progress=not args.no_progress)
        if args.update:
            if failures:
                print(f"{name}: {len(failures)} smoke cell(s) failed; baselines not written:")
                for c, e in failures.items():
                    print(f"  {c}: {e}")
                bad += 1
                continue
            if args.new_only:
                path, added = add_to_baseline(name, values)
                print(f"{name}: {len(added)} new value(s) added to {path}" + "".join(f"\n  {a}" for a in added))
                continue
            print(f"{name}: baseline written to {write_baseline(name, values)} ({len(values)} cells)")
            continue
        baseline = load_baseline(name)
        if baseline is None:
            print(f"{name}: no baseline committed (results/baselines/{name}.json); "
                  f"create it with `python -m bench check --update --suite {name}`")
            bad += 1
            continue
        drifts = compare(name, values, failures, baseline, skipped_smoke_cells(name), smoke_methods(name),
                         load_method_tolerances(name))
        # a cell left out here (a published weights file not downloaded) is named, not compared
        left_out = [d for d in drifts if d.status.startswith("skipped")]
        for d in left_out:
            print(f"{name}: not compared: {d.cell}: {d.status}")
        moved = [d for d in drifts if d.status != "ok" and d not in left_out]
        n_ok = len(drifts) - len(moved) - len(left_out)
        if moved:
            bad += 1
            print(f"{name}: {len(moved)} value(s) moved beyond tolerance, {n_ok} within:")
            print(format_drifts(drifts))
        else:
            print(f"{name}: {n_ok} value(s) within tolerance of the baselines ({summary.wall_s:.1f} s)")
    print(f"check finished in {time.perf_counter() - t0:.1f} s: {'FAILED' if bad else 'OK'}")
    return 1 if bad else 0


def _terminate_as_interrupt():
    """SIGTERM (a job scheduler, `kill`) ends a run like Ctrl-C: finished cells are kept and
    the summary is printed."""
    import signal
    import threading

    def handler(signum, frame):
        raise KeyboardInterrupt
    if threading.current_thread() is threading.main_thread():
        return signal.signal(signal.SIGTERM, handler)
    return None


def main(argv=None) -> int:
    from bench.errors import BenchError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    previous = _terminate_as_interrupt()
    saved_weights_root = os.environ.get("BENCH_WEIGHTS")
    if getattr(args, "weights_root", None):
        # the methods, the suites' skips and the cell keys (in every worker process, which
        # inherits the environment) read the weights root from $BENCH_WEIGHTS (bench.paths)
        os.environ["BENCH_WEIGHTS"] = os.path.abspath(args.weights_root)
    try:
        commands = {"list": cmd_list, "weights": cmd_weights, "run": cmd_run, "report": cmd_report,
                    "check": cmd_check, "data": cmd_data, "export": cmd_export,
                    "publish": cmd_publish}
        if args.command == "train":
            from bench.train import cmd_train
            commands["train"] = cmd_train
        return commands[args.command](args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            import signal
            signal.signal(signal.SIGTERM, previous)
        if saved_weights_root is None:
            os.environ.pop("BENCH_WEIGHTS", None)
        else:
            os.environ["BENCH_WEIGHTS"] = saved_weights_root


if __name__ == "__main__":
    sys.exit(main())
