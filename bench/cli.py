"""Command line: ``python -m bench {list,weights,data,run,report,publish,export,check}``.

Exit status: 0 success; 1 a cell failed, a check moved, a fatal data/checkpoint error, or
(``weights``) a published weights file is corrupt; 2 bad input (unknown name, malformed
selector, a parameter value its component does not allow, bad option); 130 interrupted.

This module builds the parser and dispatches; each command's handler is in
:mod:`bench.commands` (``train``'s in :mod:`bench.train`).
"""
from __future__ import annotations

import argparse
import os
import sys

# where things are is bench.paths' business; these names stay importable from here
from bench.paths import DEFAULT_REPORTS, DEFAULT_RESULTS, default_data_root  # noqa: F401

from bench.commands.check import cmd_check
from bench.commands.listing import cmd_data, cmd_list, cmd_weights
from bench.commands.report import cmd_export, cmd_publish, cmd_report
from bench.commands.run import cmd_run


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
