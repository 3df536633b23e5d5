"""``bench check``: rerun the smoke grid of every suite and compare with the baselines
committed under ``results/baselines/<suite>.json``, with a tolerance per metric.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass

import torch

from bench import paths
from bench import registry as R
from bench.grid import build_cells, protocol_mark
from bench.runner import RunOptions, run_grid
from bench.store import Store


@dataclass
class Drift:
    suite: str
    cell: str
    metric: str
    baseline: float | None
    now: float | None
    tolerance: float
    status: str  # ok / moved / missing / new / failed / skipped: <why>


def cell_label(row) -> str:
    """A smoke cell's name in the baselines: dataset | degradation | method, and
    ``| protocol=NAME`` for a cell of a protocol other than the suite's default (so that
    the names of default-protocol cells are those of the baselines written before)."""
    label = f"{row['dataset']} | {row['degradation']} | {row['method_label']}"
    mark = protocol_mark(row["suite"], row.get("protocol"))
    return label + (f" | {mark}" if mark else "")


def smoke_label(cell) -> str:
    """:func:`cell_label` of a cell before it ran (the labels its row will have)."""
    mark = protocol_mark(cell.suite, cell.protocol)
    return (f"{cell.dataset_label()} | {cell.degradation_label()} | {cell.method_label()}"
            + (f" | {mark}" if mark else ""))


def skipped_smoke_cells(suite_name: str) -> dict[str, str]:
    """Label -> why, for the smoke cells the suite leaves out on this machine
    (:meth:`~bench.suite.Suite.skip_reason`: a published weights file not downloaded, say):
    ``bench check`` reports them as skipped instead of comparing them."""
    suite = R.SUITES[suite_name]
    return {smoke_label(c): r for c in smoke_cells(suite_name) for r in [suite.skip_reason(c)] if r}


def smoke_cells(suite_name: str, devices=("cpu",), seed: int = 0, data_root: str | None = None):
    """The cells of a suite's smoke grid and of its ``smoke_extra`` specs (each spec with its
    own protocols), in that order, without repeats."""
    suite = R.SUITES[suite_name]
    cells, seen = [], set()
    for spec in (suite.smoke, *suite.smoke_extra):
        for c in build_cells(suite_name, spec.datasets, spec.degradations, spec.methods, list(devices), seed,
                             spec.protocols, data_root=data_root):
            if c.key not in seen:
                seen.add(c.key)
                cells.append(c)
    return cells


def tolerance_of(metric_name: str, method: str | None = None, method_tolerances: dict | None = None) -> float:
    """The metric's own tolerance (``nmse_db@16`` uses ``nmse_db``'s), or the one the
    baseline file declares for the method (``method_tolerances``: see
    :func:`load_method_tolerances`)."""
    R.load_all()
    base = metric_name.split("@")[0]
    own = (method_tolerances or {}).get(method or "", {})
    if base in own:
        return float(own[base])
    m = R.METRICS.get(base)
    return m.tolerance if m else 1e-6


def smoke_methods(suite_name: str) -> dict[str, str]:
    """Smoke cell label -> method name (whose declared tolerances apply)."""
    return {smoke_label(c): c.method for c in smoke_cells(suite_name)}


def load_method_tolerances(suite_name: str) -> dict:
    """``method_tolerances`` of the committed baseline: method -> {metric: absolute
    tolerance, "why": what was measured}, for a method whose numbers depend on the CPU (a
    compiled library with per-CPU code paths). It lives with the baselines, not with the
    method, because it is the check's expectation, not something that shapes a number (a
    method module's source is part of every cell key of that method)."""
    doc = read_baseline(suite_name)
    return {} if doc is None else doc.get("method_tolerances", {})


def _number(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def read_baseline(suite_name: str) -> dict | None:
    """The committed baseline file of a suite as a checked document (None when there is
    none): valid JSON, ``cells`` a mapping of cell label -> {metric: number or null},
    ``method_tolerances`` (optional) method -> {metric: number, "why": text}. Anything else
    is a :class:`~bench.errors.BenchError` naming the file and the entry, raised before any
    smoke cell runs (``bench check`` reads every baseline first)."""
    from bench.errors import BenchError

    p = baseline_path(suite_name)
    if not os.path.exists(p):
        return None
    fix = f"fix it, restore it with `git checkout -- {os.path.relpath(p)}`, or rewrite it with " \
          f"`python -m bench check --update --suite {suite_name}` after removing it"
    try:
        with open(p) as f:
            doc = json.load(f)
    except json.JSONDecodeError as e:
        raise BenchError(f"baseline {p} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}): {fix}"
                         ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise BenchError(f"cannot read the baseline {p} ({e}): {fix}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), dict):
        raise BenchError(f"baseline {p} has no 'cells' mapping (cell label -> {{metric: value}}): {fix}")
    for cell, metrics in doc["cells"].items():
        if not isinstance(metrics, dict) or not all(_number(v) for v in metrics.values()):
            raise BenchError(f"baseline {p}: cell {cell!r} must map metric names to numbers (or null), "
                             f"not {json.dumps(metrics)[:80]}: {fix}")
    tolerances = doc.get("method_tolerances", {})
    if not isinstance(tolerances, dict):
        raise BenchError(f"baseline {p}: method_tolerances must map methods to {{metric: tolerance, 'why': "
                         f"text}}: {fix}")
    for method, tols in tolerances.items():
        if not isinstance(tols, dict) or not str(tols.get("why", "")).strip():
            raise BenchError(f"{p}: method_tolerances[{method!r}] needs a 'why' beside its tolerances "
                             "(what was measured that makes this method's numbers move)")
        bad = [k for k, v in tols.items() if k != "why" and not (_number(v) and v is not None)]
        if bad:
            raise BenchError(f"baseline {p}: method_tolerances[{method!r}][{bad[0]!r}] must be a number: {fix}")
    return doc


def run_smoke(suite_name: str, data_root: str | None, progress: bool = True):
    suite = R.SUITES[suite_name]
    cells = [c for c in smoke_cells(suite_name, data_root=data_root) if not suite.skip_reason(c)]
    # a suite may pin the torch threads of its smoke run (``check_threads``): values only are
    # compared, and small problems run faster and identically on one thread of a busy machine
    threads = suite.check_threads
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(os.path.join(tmp, "smoke.sqlite"))
            summary = run_grid(cells, store, RunOptions(data_root=data_root, repeat=1, warmup=False),
                               progress=progress)
            ok = store.frame(suite_name)
            failed = store.frame(suite_name, status="failed")
            store.close()
    finally:
        torch.set_num_threads(previous)
    values = {}
    for _, row in ok.iterrows():
        values[cell_label(row)] = suite.check_values(row)
    failures = {cell_label(r): r["error"] for _, r in failed.iterrows()}
    return values, failures, summary


def compare(suite_name: str, values: dict, failures: dict, baseline: dict,
            skipped: dict | None = None, methods: dict | None = None,
            method_tolerances: dict | None = None) -> list[Drift]:
    """One :class:`Drift` per baseline value (and per new value); a baseline cell in
    ``skipped`` (label -> why; :func:`skipped_smoke_cells`) is one ``skipped: <why>`` entry.
    ``methods`` (label -> method name; :func:`smoke_methods`) and ``method_tolerances``
    (:func:`load_method_tolerances`) give a method's declared tolerances to its cells."""
    out = []
    skipped = skipped or {}
    methods = methods or {}
    for cell, metrics in sorted(baseline.items()):
        if cell in skipped and cell not in values and cell not in failures:
            out.append(Drift(suite_name, cell, "-", None, None, 0, f"skipped: {skipped[cell]}"))
            continue
        if cell in failures:
            out.append(Drift(suite_name, cell, "-", None, None, 0, f"failed: {failures[cell]}"))
            continue
        now = values.get(cell)
        for metric, b in sorted(metrics.items()):
            tol = tolerance_of(metric, methods.get(cell), method_tolerances)
            if now is None or metric not in now:
                out.append(Drift(suite_name, cell, metric, b, None, tol, "missing"))
                continue
            v = now[metric]
            same = (v == b) or (isinstance(v, float) and isinstance(b, float) and math.isfinite(v)
                                and math.isfinite(b) and abs(v - b) <= tol)
            out.append(Drift(suite_name, cell, metric, b, v, tol, "ok" if same else "moved"))
    for cell, metrics in sorted(values.items()):
        if cell not in baseline:
            for metric, v in sorted(metrics.items()):
                out.append(Drift(suite_name, cell, metric, None, v, tolerance_of(metric, methods.get(cell), method_tolerances),
                                 "new"))
    for cell, err in failures.items():
        if cell not in baseline:
            out.append(Drift(suite_name, cell, "-", None, None, 0, f"failed: {err}"))
    return out


def baseline_path(suite_name: str) -> str:
    return os.path.join(paths.BASELINES_DIR, f"{suite_name}.json")


def load_baseline(suite_name: str) -> dict | None:
    doc = read_baseline(suite_name)
    return None if doc is None else doc["cells"]


def write_baseline(suite_name: str, values: dict) -> str:
    from bench.provenance import git_commit, versions
    os.makedirs(paths.BASELINES_DIR, exist_ok=True)
    p = baseline_path(suite_name)
    doc = {"suite": suite_name, "written_by": "python -m bench check --update",
           "commit": git_commit(), "versions": versions(), "cells": values}
    tolerances = load_method_tolerances(suite_name)   # a rewrite keeps the declared ones
    if tolerances:
        doc["method_tolerances"] = tolerances
    with open(p, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    return p


def add_to_baseline(suite_name: str, values: dict) -> tuple[str, list[str]]:
    """Add to the committed baseline the cells and metrics of ``values`` it lacks (a method
    added to the smoke grid, say), leaving every committed value and the header that says how
    they were written as they are; the addition is listed under ``added`` (command, commit,
    cells). Returns the path and one ``cell: metric`` line per value added."""
    from bench.provenance import git_commit
    p = baseline_path(suite_name)
    if not os.path.exists(p):
        return write_baseline(suite_name, values), [f"{c}: {m}" for c, ms in sorted(values.items()) for m in sorted(ms)]
    doc = read_baseline(suite_name)
    cells = doc["cells"]
    added = []
    for cell, metrics in sorted(values.items()):
        for metric, v in sorted(metrics.items()):
            if metric not in cells.get(cell, {}):
                cells.setdefault(cell, {})[metric] = v
                added.append(f"{cell}: {metric}")
    if added:
        doc.setdefault("added", []).append({"by": f"python -m bench check --update --new-only --suite {suite_name}",
                                            "commit": git_commit(),
                                            "cells": sorted({a.split(": ")[0] for a in added})})
        with open(p, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
    return p, added


def format_drifts(drifts: list[Drift], only_bad: bool = True) -> str:
    rows = [d for d in drifts if d.status != "ok"] if only_bad else drifts
    if not rows:
        return ""
    def fmt(v):
        return "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))
    header = ("suite", "cell", "metric", "baseline", "now", "delta", "tolerance", "status")
    table = [header]
    for d in rows:
        delta = (d.now - d.baseline) if isinstance(d.now, float) and isinstance(d.baseline, float) else None
        table.append((d.suite, d.cell, d.metric, fmt(d.baseline), fmt(d.now), fmt(delta), fmt(d.tolerance), d.status))
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
