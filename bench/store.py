"""The result store: one SQLite database, one row per finished cell.

Why SQLite: it ships with Python, is a real transactional database (a cell is written in
one transaction, so a run killed with SIGKILL loses at most the cells in flight), and in
WAL mode several worker processes can write to the same file safely. Rows are keyed by
the cell's hash (see :mod:`bench.grid`), so a rerun skips finished cells and can never
duplicate one.

A row is written from a typed :class:`~bench.results.CellResult` (:meth:`Store.put`) and
read back either as the DataFrame the reports read (:meth:`Store.frame`, JSON columns
decoded to plain Python values) or as CellResults (:meth:`Store.results`).
"""
from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

# the row's JSON encoding lives with the row's type; these names stay importable from here
from bench.results import JSON_COLUMNS, CellResult, default_protocol, dumps, extras_type, loads  # noqa: F401

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key            TEXT PRIMARY KEY,
    suite          TEXT NOT NULL,
    dataset        TEXT NOT NULL,      -- label, e.g. gaussian_lasso or sirst[split=50_50]
    dataset_params TEXT NOT NULL,      -- JSON, all parameters
    sample_set     TEXT NOT NULL,      -- identifies the samples (instance, split, crop)
    degradation    TEXT NOT NULL,
    degradation_params TEXT NOT NULL,
    method         TEXT NOT NULL,      -- name
    method_label   TEXT NOT NULL,      -- name[non-default params]
    method_params  TEXT NOT NULL,
    family         TEXT NOT NULL,
    device         TEXT NOT NULL,      -- cpu / cuda
    seed           INTEGER NOT NULL,
    source_hash    TEXT NOT NULL,
    status         TEXT NOT NULL,      -- ok / failed
    error          TEXT,
    metrics        TEXT,               -- JSON {metric: value}
    curves         TEXT,               -- JSON {name: [values]}
    extras         TEXT,               -- JSON, suite-specific (per-sample values, ...)
    n_samples      INTEGER,
    time_s         REAL,               -- median of timed repeats, whole sample set
    times_s        TEXT,               -- JSON list of every timed repeat
    warmup_s       REAL,
    parameter_count INTEGER,
    provenance     TEXT,               -- JSON: commit, versions, device name, threads, cpu
    created_at     REAL NOT NULL,
    threads        INTEGER,            -- torch threads the cell ran with (NULL in older stores)
    protocol       TEXT                -- the suite's scoring protocol (NULL: none, or an older row: the default)
);
CREATE INDEX IF NOT EXISTS results_suite ON results(suite);
"""

@dataclass
class Store:
    path: str

    def __post_init__(self):
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        self._conn: sqlite3.Connection | None = None
        with self.connect() as conn:
            conn.executescript(SCHEMA)
            self._add_missing_columns(conn)

    def connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            self._conn = conn
        return self._conn

    #: columns added after the first stores were written: (name, SQL type); an older store
    #: gets them (NULL in its old rows) when opened
    ADDED_COLUMNS = (("threads", "INTEGER"), ("protocol", "TEXT"))

    def _add_missing_columns(self, conn: sqlite3.Connection) -> None:
        have = {r[1] for r in conn.execute("PRAGMA table_info(results)").fetchall()}
        for name, sql_type in self.ADDED_COLUMNS:
            if name not in have:
                try:
                    conn.execute(f"ALTER TABLE results ADD COLUMN {name} {sql_type}")
                except sqlite3.OperationalError as e:  # another process added it meanwhile
                    if "duplicate column" not in str(e):
                        raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- writing
    def put(self, result: CellResult | Mapping[str, Any]) -> None:
        """Insert or replace one cell, in one transaction. ``result`` is a
        :class:`~bench.results.CellResult` (a row dict of earlier code is read into one
        first, so that it is checked alike); it is written to the same columns as ever, its
        extras as their flat JSON object. Its figures' arrays must have gone to the artifact
        file already (:func:`bench.artifacts.save`): a row holds no image."""
        if not isinstance(result, CellResult):
            result = CellResult.from_row(result)
        if result.extras is not None and result.extras.arrays:
            raise ValueError(f"cell {result.key}: its extras still hold arrays "
                             f"({', '.join(sorted(result.extras.arrays))}); bench.artifacts.save moves them to a file")
        row = result.to_row()
        if row["created_at"] is None:
            row["created_at"] = time.time()
        for c in JSON_COLUMNS:
            if c in row and not isinstance(row[c], str) and row[c] is not None:
                row[c] = dumps(row[c])
        cols = ",".join(row)
        marks = ",".join("?" for _ in row)
        conn = self.connect()
        for attempt in range(20):
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(f"INSERT OR REPLACE INTO results ({cols}) VALUES ({marks})", list(row.values()))
                conn.execute("COMMIT")
                return
            except sqlite3.OperationalError as e:  # pragma: no cover - contention
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.OperationalError:
                    pass
                if "locked" not in str(e) or attempt == 19:
                    raise
                time.sleep(0.05 * (attempt + 1))

    # -- reading
    def finished_keys(self, keys: Iterable[str] | None = None) -> set[str]:
        conn = self.connect()
        rows = conn.execute("SELECT key FROM results WHERE status='ok'").fetchall()
        found = {r[0] for r in rows}
        return found if keys is None else found & set(keys)

    def count(self) -> int:
        return self.connect().execute("SELECT COUNT(*) FROM results").fetchone()[0]

    @staticmethod
    def _select(suite: str | None, status: str | None) -> tuple[str, list]:
        q, args = "SELECT * FROM results", []
        conds = []
        if suite:
            conds.append("suite=?")
            args.append(suite)
        if status:
            conds.append("status=?")
            args.append(status)
        if conds:
            q += " WHERE " + " AND ".join(conds)
        return q + " ORDER BY created_at", args

    def results(self, suite: str | None = None, status: str | None = "ok") -> list[CellResult]:
        """All rows (of one suite; ``status`` None: failed ones too) as
        :class:`~bench.results.CellResult`, oldest first, extras read into each suite's
        typed extras (keys they do not declare kept in ``extras.other``): rows of earlier
        code read too."""
        q, args = self._select(suite, status)
        cur = self.connect().execute(q, args)
        names = [d[0] for d in cur.description]
        types: dict[str, Any] = {}
        out = []
        for values in cur.fetchall():
            row = dict(zip(names, values))
            s = row.get("suite")
            if s not in types:
                types[s] = extras_type(s)
            out.append(CellResult.from_row(row, extras=types[s]))
        return out

    def frame(self, suite: str | None = None, status: str | None = "ok"):
        """All rows (of one suite) as a pandas DataFrame with JSON columns decoded (the
        extras as plain dicts, as the reports read them)."""
        import pandas as pd

        q, args = self._select(suite, status)
        df = pd.read_sql_query(q, self.connect(), params=args)
        for c in JSON_COLUMNS:
            if c in df:
                df[c] = df[c].map(loads)
        # a row stored before rows recorded their protocol ran under its suite's default
        defaults = {s: default_protocol(s) for s in df["suite"].unique()}
        df["protocol"] = [p if isinstance(p, str) else defaults[s] for s, p in zip(df["suite"], df["protocol"])]
        df.attrs["store_path"] = os.path.abspath(self.path)  # where rows' artifact files are (bench.artifacts)
        return df
