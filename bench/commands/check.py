"""``python -m bench check``: rerun every suite's smoke grid and compare with the committed
baselines (or rewrite them with ``--update``)."""
from __future__ import annotations

import time

from bench.paths import default_data_root


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
