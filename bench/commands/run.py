"""``python -m bench run``: plan a suite's grid, fetch what it needs, skip what cannot run, run
the cells (locally or on Dask) into the store and write the suite's report."""
from __future__ import annotations

import os
import sys

from bench.commands.report import html_root
from bench.paths import DEFAULT_REPORTS, default_data_root


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


def named_grids(suite) -> dict:
    """Every grid ``bench run --grid NAME`` runs: ``default`` (what ``bench run`` runs without
    ``--grid``: the suite's ``grid``, its paper's main table), ``full`` (the suite's ``full``:
    every data set and noise case; the default grid where a suite has none) and the suite's
    ``extra_grids``."""
    return {"default": suite.grid, "full": getattr(suite, "full", None) or suite.grid, **suite.extra_grids}


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
        print(f"  {'HTML':12s} page: {write_index(html_root(out))}")
    except Exception as e:  # noqa: BLE001 - the tables and figures are written; only the page is missing
        print(f"report: the results page was not written ({type(e).__name__}: {e}); "
              f"`python -m bench report --suite {suite.name} --results {store.path}` retries it", file=sys.stderr)
    return paths
