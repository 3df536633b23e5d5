"""``python -m bench report``, ``publish`` and ``export``: tables, figures, the HTML page and
the committed data behind them, all read from a store or from results/published/."""
from __future__ import annotations

import os
import sys

from bench.paths import DEFAULT_REPORTS


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
    _write_html(html_root(args.out))
    if len(failed):
        print(f"note: {len(failed)} failed cell(s) are not in the tables (see the store's 'error' column)",
              file=sys.stderr)
    return 0


def html_root(out: str) -> str:
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
    _write_html(html_root(args.folder))
    return 0


def cmd_export(args) -> int:
    from bench.export import export
    path, n = export(args.results, args.suite, args.format, args.out)
    print(f"{path}: {n} row(s)")
    return 0
