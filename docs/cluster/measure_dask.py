"""Local runner against a 2-worker Dask LocalCluster on the smoke grids (the README's
"Running on a cluster" figures). Run from the repository root:

    python docs/cluster/measure_dask.py [--suite sparse --suite istd] [--repeat 1]

For each suite's smoke grid (the cells ``bench check`` runs), in one process, one after the
other, each into a fresh store: the local runner with one process (``--jobs 1``), the local
process pool (``--jobs 2``) and Dask (``--executor dask --jobs 2``, a LocalCluster started
for the run: its start-up is part of its wall time, as for a user). Prints whether every
cell's metric values are identical (exactly) across the three, the wall times and their
ratios, and Dask's overhead per cell:

* return path: from the end of a cell on its worker to its row stored by the client (ms);
* worker time not spent in cells: (workers x (wall - cluster start-up) - sum of the cells'
  worker-side times) / cells (ms): scheduling, transfers, and idle time at the end of the grid.

Torch threads: one per worker/process everywhere (the figures compare executors, not threads).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        d = dict((k.strip(), v.strip()) for k, _, v in (l.partition(":") for l in out.splitlines()))
        return f"{d.get('Model name', '?')}, {d.get('CPU(s)', '?')} CPU(s)"
    except (OSError, subprocess.SubprocessError):
        return platform.processor()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", action="append")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()

    from bench import registry as R
    from bench.check import smoke_cells
    from bench.paths import data_root
    from bench.dask_executor import DaskExecutor
    from bench.runner import RunOptions, run_grid
    from bench.store import Store

    R.load_all()
    root = data_root(args.data_root)
    print(f"date {time.strftime('%Y-%m-%d %H:%M %Z')}; CPU {_cpu()}; load average at start {_load()}")
    for name in args.suite or ["sparse", "istd"]:
        suite = R.SUITES[name]
        cells = [c for c in smoke_cells(name) if not suite.skip_reason(c)]
        opts = RunOptions(data_root=root, repeat=args.repeat, threads=1)
        with tempfile.TemporaryDirectory() as tmp:
            runs = {}
            for label, kw in (("local, 1 process", dict(jobs=1)), ("local pool, 2 processes", dict(jobs=2)),
                              ("dask LocalCluster, 2 workers", dict(jobs=2, executor=DaskExecutor()))):
                store = Store(os.path.join(tmp, f"{len(runs)}.sqlite"))
                timings: list = []
                load = _load()
                began = time.time()
                t0 = time.perf_counter()
                summary = run_grid(cells, store, opts, progress=False, timings=timings, **kw)
                wall = time.perf_counter() - t0
                frame = store.frame(name)
                runs[label] = (wall, summary, {k: m for k, m in zip(frame["key"], frame["metrics"])}, timings, load,
                               began)
            ref = runs["local, 1 process"][2]
            print(f"\nsuite {name}: {len(cells)} smoke cells")
            for label, (wall, summary, metrics, timings, load, _) in runs.items():
                same = metrics == ref
                print(f"  {label:30s} wall {wall:7.2f} s  ({summary.done} ok, {summary.failed} failed; "
                      f"load at start {load}); metrics identical to the 1-process run: {same}")
            w1, wp, wd = (runs[k][0] for k in runs)
            print(f"  ratio dask / local 1 process {wd / w1:.2f}; dask / local pool {wd / wp:.2f}")
            timings, began = runs["dask LocalCluster, 2 workers"][3], runs["dask LocalCluster, 2 workers"][5]
            if timings:
                back = [1e3 * (t["received"] - t["end"]) for t in timings if "end" in t]
                first = min(t["start"] for t in timings if "start" in t)
                last = max(t["received"] for t in timings)
                busy = sum(t["wall_s"] for t in timings if "wall_s" in t)
                idle = (2 * (last - first) - busy) / len(timings) * 1e3
                print(f"  dask overhead per cell: return path median {statistics.median(back):.1f} ms "
                      f"(max {max(back):.1f}); worker time outside cells {idle:.1f} ms per cell; "
                      f"{first - began:.2f} s from the start of the run (cluster start-up) to the first cell")
    print(f"\nload average at the end {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
