"""Committed data behind the committed reports: ``bench publish`` and ``bench report --all``.

A report folder under ``reports/`` is written from one store. ``python -m bench publish
--results S.sqlite --suite hsi --folder reports/hsi`` commits what that report reads, in
``results/published/`` (a few MB in all), and rewrites the folder from it:

* ``<name>.csv.gz``: the suite's tidy table, exactly as ``bench export`` writes it (one row
  per cell and metric; :mod:`bench.export`), gzip-compressed;
* ``<name>.cells.json.gz``: per cell key, what a row holds that the tidy table flattens or
  leaves out and a report reads: its curves, its extras (per-image values, weights and
  training provenance, the artifact file's name), its whole provenance, its exact
  ``created_at`` (reports keep the newest row of a cell) and its source hash; a cell
  without metrics (no tidy row) carries its other columns here too;
* ``<name>.npz``: the figures' arrays (:mod:`bench.artifacts`) that the report reads, as
  ``<cell key>/<array name>`` (:func:`arrays_used`: a row's other arrays, e.g. the visual
  panels of a method no figure shows, are left out); absent when the report reads none;
* ``index.json``: report folder -> suite, the three files and the report options.

``python -m bench report --all`` reads ``index.json`` and rewrites every listed folder from
those files without running a method: the rows are imported into a temporary store (and the
arrays into its ``artifacts/`` folder) and the suite's report reads that store exactly as
``bench report`` reads a real one. Files a folder holds that the rebuild did not write
(tables and figures of an older report) are removed, ``reports/index.html`` is
rewritten (:mod:`bench.html`) and so are the README's headline tables
(:func:`refresh_readme`). Rebuilding twice gives the same bytes (see
:func:`bench.report.save_figure` for the figures' volatile metadata).
"""
from __future__ import annotations

import gzip
import io
import json
import math
import os
import re
import shutil
import sqlite3
import tempfile
from typing import Any

from bench.errors import BenchError

#: where the published data and its index live (relative to the working directory, like
#: the command line's other defaults)
PUBLISHED = os.path.join("results", "published")
INDEX = "index.json"
#: the extensions of the files a report writes (what ``report --all`` may remove as stale)
REPORT_EXTS = (".tex", ".md", ".json", ".png", ".pdf")

#: store columns the tidy table holds as such (the rest come from the cells file)
_FROM_TIDY = ("suite", "dataset", "sample_set", "degradation", "method", "method_label", "family", "device",
              "protocol")
_JSON_FROM_TIDY = ("dataset_params", "degradation_params", "method_params", "times_s")
_NUM_FROM_TIDY = ("n_samples", "seed", "time_s", "warmup_s", "parameter_count", "threads")


def default_name(folder: str, suite: str) -> str:
    """The published files' name of a report folder: its path below ``reports/`` with
    ``/`` as ``_`` (``reports/hsi`` -> ``hsi``); ``reports`` itself: the suite's name."""
    rel = os.path.relpath(os.path.abspath(folder), os.path.abspath("reports"))
    if rel == ".":
        return suite
    if rel.startswith(".."):
        rel = os.path.basename(os.path.abspath(folder))
    return rel.replace(os.sep, "_")


def _gzip_bytes(data: bytes) -> bytes:
    # mtime=0 and no file name in the header: the same data gives the same file
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as f:
        f.write(data)
    return buf.getvalue()


def read_index(root: str = PUBLISHED) -> dict:
    path = os.path.join(root, INDEX)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _write_index(index: dict, root: str) -> str:
    path = os.path.join(root, INDEX)
    with open(path, "w") as f:
        json.dump(dict(sorted(index.items())), f, indent=1, sort_keys=True)
        f.write("\n")
    return path


def publish(store_path: str, suite: str, folder: str, options: dict | None = None, name: str | None = None,
            root: str = PUBLISHED) -> dict:
    """Write the published files of ``suite`` from the store at ``store_path`` for the report
    folder ``folder`` and list them in ``root/index.json``; the index entry."""
    import numpy as np

    from bench import registry as R
    from bench.artifacts import load
    from bench.export import tidy_frame
    from bench.store import Store

    R.SUITES.get_or_fail(suite)
    rel = os.path.relpath(os.path.abspath(folder), os.path.abspath("reports"))
    if rel.startswith(".."):
        raise BenchError(f"--folder {folder}: a published report folder lives under reports/ (e.g. reports/{suite}); "
                         f"run from the repository's root")
    if not os.path.exists(store_path):
        raise BenchError(f"no result store at {store_path}: run `python -m bench run --suite {suite}` first "
                         f"or pass --results")
    frame = Store(store_path).frame(suite)
    if frame.empty:
        raise BenchError(f"the store {store_path} has no finished cells of suite {suite!r}")
    name = name or default_name(folder, suite)
    os.makedirs(root, exist_ok=True)
    tidy = tidy_frame(frame, suite)
    data = os.path.join(root, f"{name}.csv.gz")
    with open(data, "wb") as f:
        f.write(_gzip_bytes(tidy.to_csv(index=False).encode()))
    with_metrics = set(tidy["key"])
    raw = _raw_rows(store_path, suite)
    cells, arrays = {}, {}
    for r in frame.to_dict("records"):
        key = r["key"]
        entry = {"created_at": raw[key]["created_at"], "source_hash": raw[key]["source_hash"],
                 "curves": raw[key]["curves"], "extras": raw[key]["extras"], "provenance": raw[key]["provenance"]}
        if key not in with_metrics:  # no tidy row: the cell's other columns too
            entry["row"] = {c: raw[key][c] for c in raw[key] if c not in entry}
        cells[key] = entry
    used = arrays_used(suite, frame, options or {})
    for r in frame.to_dict("records"):
        names = used.get(r["key"])
        if names:
            have = load(r, store_path)
            keep = sorted(n for n in names if n is not _NONEMPTY and n in have)
            if not keep and have:  # only its truth was asked: one array keeps the row non-empty
                keep = [min(have, key=lambda n: (have[n].size, n))]
            for k in keep:
                arrays[f"{r['key']}/{k}"] = have[k]
    cells_path = os.path.join(root, f"{name}.cells.json.gz")
    with open(cells_path, "wb") as f:
        f.write(_gzip_bytes(json.dumps(cells, sort_keys=True, indent=0).encode()))
    arrays_path = os.path.join(root, f"{name}.npz")
    if arrays:
        np.savez_compressed(arrays_path, **arrays)
    elif os.path.exists(arrays_path):
        os.remove(arrays_path)
    entry = {"suite": suite, "data": data, "cells": cells_path, "arrays": arrays_path if arrays else None,
             "options": dict(sorted((options or {}).items())), "rows": int(len(frame)),
             "commits": sorted({str(c)[:12] + ("-dirty" if str(c).endswith("-dirty") else "")
                                for c in tidy["commit"].dropna()})}
    index = read_index(root)
    index[os.path.normpath(folder)] = entry
    _write_index(index, root)
    return entry


class _Recorder(dict):
    """A row's arrays that note which names a report reads (or asks about)."""

    def __init__(self, data: dict, used: set):
        super().__init__(data)
        self._used = used

    def __getitem__(self, k):
        self._used.add(k)
        return super().__getitem__(k)

    def get(self, k, default=None):
        self._used.add(k)
        return super().get(k, default)

    def __contains__(self, k):
        self._used.add(k)
        return super().__contains__(k)

    def _all(self):
        self._used.update(dict.keys(self))

    def keys(self):
        self._all()
        return super().keys()

    def values(self):
        self._all()
        return super().values()

    def items(self):
        self._all()
        return super().items()

    def __iter__(self):
        self._all()
        return super().__iter__()

    def __len__(self):
        self._all()
        return super().__len__()

    def __bool__(self):  # `if arrays:` needs one array kept, not all of them
        self._used.add(_NONEMPTY)
        return dict.__len__(self) > 0


#: noted when a report only asks whether a row has arrays at all
_NONEMPTY = object()


def arrays_used(suite: str, frame, options: dict) -> dict[str, set]:
    """cell key -> the names of its artifact arrays that the suite's report reads, found by
    writing the report once (to a temporary folder) with :func:`bench.artifacts.load`
    noting every name read: only those are published, so that the data stays small."""
    import bench.artifacts as A
    from bench import registry as R

    used: dict[str, set] = {}
    original = A.load

    def recording_load(row, store_path=None):
        data = original(row, store_path)
        key = row.get("key") if hasattr(row, "get") else getattr(row, "key", None)
        return _Recorder(data, used.setdefault(str(key), set())) if data else data

    tmp = tempfile.mkdtemp(prefix="bench-publish-")
    A.load = recording_load
    try:
        R.SUITES.get_or_fail(suite).report(frame, tmp, dict(options))
    finally:
        A.load = original
        shutil.rmtree(tmp, ignore_errors=True)
    return used


def _raw_rows(store_path: str, suite: str) -> dict[str, dict]:
    """key -> the stored columns as text (the JSON columns as stored), status ok."""
    conn = sqlite3.connect(store_path)
    try:
        cur = conn.execute("SELECT * FROM results WHERE suite=? AND status='ok'", (suite,))
        names = [d[0] for d in cur.description]
        return {row["key"]: row for row in (dict(zip(names, v)) for v in cur.fetchall())}
    finally:
        conn.close()


def _nan_to_none(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def import_published(entry: dict, store_path: str) -> int:
    """Import the published rows of one index entry into a (new) store at ``store_path``,
    and their arrays into the artifact files beside it; the number of rows."""
    import numpy as np
    import pandas as pd

    from bench.artifacts import FOLDER
    from bench.store import Store, dumps

    for k in ("data", "cells"):
        if not entry.get(k) or not os.path.exists(entry[k]):
            raise BenchError(f"published data file {entry.get(k)!r} is missing: rerun `python -m bench publish` "
                             f"for this report folder or restore the file from git")
    # every column as text (a label such as "0" stays a string; floats are parsed below from
    # the shortest exact repr the export wrote), empty fields as missing
    tidy = pd.read_csv(entry["data"], dtype=str, keep_default_na=False, na_values=[""])
    with gzip.open(entry["cells"], "rt") as f:
        cells = json.load(f)
    rows: dict[str, dict] = {}
    for r in tidy.to_dict("records"):
        row = rows.get(r["key"])
        if row is None:
            row = {c: _nan_to_none(r[c]) for c in _FROM_TIDY}
            for c in _JSON_FROM_TIDY:
                row[c] = _nan_to_none(r[c])
            for c in _NUM_FROM_TIDY:
                v = _nan_to_none(r[c])
                row[c] = (int(v) if c in ("n_samples", "seed", "parameter_count", "threads") else float(v)) \
                    if v is not None else None
            row["key"], row["metrics"] = r["key"], {}
            rows[r["key"]] = row
        v = _nan_to_none(r["value"])
        row["metrics"][r["metric"]] = float(v) if v is not None else None
    array_keys: set[str] = set()
    if entry.get("arrays") and os.path.exists(entry["arrays"]):
        with np.load(entry["arrays"]) as f:
            array_keys = {name.split("/", 1)[0] for name in f.files}
    Store(store_path).close()  # creates the schema
    conn = sqlite3.connect(store_path)
    try:
        for key, c in cells.items():
            row = dict(rows.get(key) or c.get("row") or {})
            if not row:
                raise BenchError(f"published cell {key} has neither tidy rows nor its columns in {entry['cells']}")
            row["key"] = key
            if isinstance(row.get("metrics"), dict):
                row["metrics"] = dumps(row["metrics"])
            row.update({k: c[k] for k in ("created_at", "source_hash", "curves", "extras", "provenance")})
            if key in array_keys:
                # the arrays come back in the rebuilt store's own ``artifacts/`` (below), whatever
                # folder the row named in the store it was published from
                row["extras"] = _with_artifact(row["extras"], os.path.join(FOLDER, f"{key}.npz"))
            row["status"], row["error"] = "ok", None
            cols = ",".join(row)
            conn.execute(f"INSERT OR REPLACE INTO results ({cols}) VALUES ({','.join('?' for _ in row)})",
                         list(row.values()))
        conn.commit()
    finally:
        conn.close()
    if entry.get("arrays"):
        if not os.path.exists(entry["arrays"]):
            raise BenchError(f"published arrays file {entry['arrays']} is missing: rerun `python -m bench publish` "
                             f"for this report folder or restore the file from git")
        per_key: dict[str, dict] = {}
        with np.load(entry["arrays"]) as f:
            for name in f.files:
                key, arr = name.split("/", 1)
                per_key.setdefault(key, {})[arr] = f[name]
        folder = os.path.join(os.path.dirname(os.path.abspath(store_path)), FOLDER)
        os.makedirs(folder, exist_ok=True)
        for key, arrs in per_key.items():
            np.savez_compressed(os.path.join(folder, f"{key}.npz"), **arrs)
    return len(cells)


def _with_artifact(extras, rel: str):
    """A row's extras (JSON text or a dict, as the cells file holds them) naming ``rel`` as
    its artifact file, in the same form."""
    if isinstance(extras, str):
        return json.dumps({**json.loads(extras), "artifact": rel})
    return {**(extras or {}), "artifact": rel}


def report_folder(entry: dict, outdir: str) -> list[str]:
    """Write one published report folder to ``outdir`` from its published data; the paths."""
    from bench import registry as R
    from bench.store import Store

    suite = R.SUITES.get_or_fail(entry["suite"])
    tmp = tempfile.mkdtemp(prefix="bench-published-")
    try:
        path = os.path.join(tmp, "published.sqlite")
        import_published(entry, path)
        store = Store(path)
        frame = store.frame(entry["suite"])
        store.close()
        return list(suite.report(frame, outdir, dict(entry.get("options") or {})))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def out_folder(folder: str, out_root: str | None) -> str:
    """Where ``report --all`` writes the report folder ``folder`` (a path below ``reports/``):
    the folder itself, or the same path below ``out_root``."""
    if out_root is None:
        return folder
    rel = os.path.relpath(os.path.abspath(folder), os.path.abspath("reports"))
    if rel.startswith(".."):
        raise BenchError(f"published folder {folder!r} is not under reports/: fix results/published/index.json")
    return os.path.normpath(os.path.join(out_root, rel))


def remove_stale(outdir: str, written: list[str]) -> list[str]:
    """Remove the report files (by extension) directly in ``outdir`` that were not written
    now; the paths removed. A file sharing its stem with one written now stays (a table's
    sidecar ``<stem>.json``, a figure's ``.pdf``, even if the report did not list them), and
    so do sub-folders (other report folders) and index.html."""
    keep = {os.path.abspath(p) for p in written}
    stems = {os.path.splitext(p)[0] for p in keep}
    gone = []
    for f in sorted(os.listdir(outdir)):
        p = os.path.join(outdir, f)
        if (os.path.isfile(p) and f.endswith(REPORT_EXTS) and os.path.abspath(p) not in keep
                and os.path.splitext(os.path.abspath(p))[0] not in stems):
            os.remove(p)
            gone.append(p)
    return gone


def report_all(out_root: str | None = None, root: str = PUBLISHED) -> tuple[list[str], list[str]]:
    """Rewrite every published report folder (below ``out_root`` instead of ``reports/``
    when given); (paths written, stale paths removed)."""
    index = read_index(root)
    if not index:
        raise BenchError(f"no published report data ({os.path.join(root, INDEX)} is missing or empty): "
                         f"write it with `python -m bench publish --results S.sqlite --suite SUITE --folder reports/...`")
    written, removed = [], []
    for folder, entry in sorted(index.items()):
        outdir = out_folder(folder, out_root)
        os.makedirs(outdir, exist_ok=True)
        paths = report_folder(entry, outdir)
        written += paths
        removed += remove_stale(outdir, paths)
    return written, removed


# --------------------------------------------------------------------------- README's tables
#: a headline table in the README: the lines between these markers are the table (and the
#: legend lines under it) of the named report file, as generated
_README_BLOCK = re.compile(r"(<!-- table: (?P<path>[^ ]+) -->\n)(?P<body>.*?)(<!-- end table -->)", re.S)


def table_section(md_text: str) -> str:
    """A report's Markdown table without its caption: from the table's first line to the end
    (the legend lines under it included)."""
    lines = md_text.rstrip("\n").split("\n")
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("|")), len(lines))
    # blank lines around it: Markdown renderers then read it as a table between the markers
    return "\n" + "\n".join(lines[start:]) + "\n\n"


def refresh_readme(path: str = "README.md") -> list[str]:
    """Rewrite the README's headline tables (between ``<!-- table: reports/X.md -->`` and
    ``<!-- end table -->``) from the report files they name; the files whose block changed.
    A named file that does not exist leaves its block as it is."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    base = os.path.dirname(os.path.abspath(path))
    changed = []

    def repl(m):
        src = os.path.join(base, m.group("path"))
        if not os.path.exists(src):
            return m.group(0)
        with open(src, encoding="utf-8") as f:
            body = table_section(f.read())
        if body != m.group("body"):
            changed.append(m.group("path"))
        return m.group(1) + body + m.group(4)

    new = _README_BLOCK.sub(repl, text)
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
    return changed
