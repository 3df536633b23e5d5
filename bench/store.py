"""The result store: one SQLite database, one row per finished cell.

Why SQLite: it ships with Python, is a real transactional database (a cell is written in
one transaction, so a run killed with SIGKILL loses at most the cells in flight), and in
WAL mode several worker processes can write to the same file safely. Rows are keyed by
the cell's hash (see :mod:`bench.grid`), so a rerun skips finished cells and can never
duplicate one.

A row is written from a typed :class:`~bench.results.CellResult` (:meth:`Store.put`) and
read back either as the DataFrame the reports read (:meth:`Store.frame`, JSON columns
decoded to plain Python values) or as CellResults (:meth:`Store.results`).

A path that cannot be a store (empty, a folder, below a file, a file that is not SQLite) or a
store that cannot be written is a one-line :class:`~bench.errors.StoreError` when the store
is opened, before any cell is computed. A write that meets another process's lock waits in
short tries, says so on stderr after :data:`LOCK_NOTICE_S` (with the holder's pid where the
OS tells), stops at Ctrl-C or SIGTERM, and gives up after :data:`LOCK_GIVE_UP_S`. Readers
(``report``, ``export``) open the store read-only (``Store(path, readonly=True)``), which
works on read-only files and media.
"""
from __future__ import annotations

import os
import sqlite3
import sys
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

#: seconds a write waits for another process's lock before saying so (then every
#: :data:`LOCK_NOTICE_EVERY_S`), and before giving up (:class:`~bench.errors.StoreError`)
LOCK_NOTICE_S = 2.0
LOCK_NOTICE_EVERY_S = 30.0
LOCK_GIVE_UP_S = 600.0
#: SQLite's own busy wait per try (ms): short, so that Ctrl-C and SIGTERM, which Python
#: handles between tries, end a wait within about this long
_BUSY_MS = 250


def check_store_path(path: str) -> str:
    """``path`` as a result store's path, or a :class:`~bench.errors.StoreError` naming what
    is wrong with it: empty (SQLite would keep a temporary database and store nothing), a
    folder, or below a file."""
    from bench.errors import StoreError

    if not isinstance(path, str) or not path.strip():
        raise StoreError(f"--results {path!r} is not a path to a file: pass the store's file, e.g. "
                         f"--results results/results.sqlite", exit_code=2)
    if path == ":memory:" or path.startswith("file:"):
        raise StoreError(f"--results {path!r} is not a path to a file: pass the store's file, e.g. "
                         f"--results results/results.sqlite", exit_code=2)
    if os.path.isdir(path):
        raise StoreError(f"--results {path} is a folder, not a store file: pass a file inside it, e.g. "
                         f"--results {os.path.join(path, 'results.sqlite')}", exit_code=2)
    parent = os.path.dirname(os.path.abspath(path))
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent) if os.path.dirname(parent) != parent else ""
    if parent and not os.path.isdir(parent):
        raise StoreError(f"--results {path}: {parent} is a file, not a folder: pass a path whose folders are "
                         f"folders", exit_code=2)
    return path


def lock_holders(path: str) -> list[int]:
    """The processes (other than this one) holding a write lock on the SQLite file ``path``
    or on its ``-shm`` file, from ``/proc/locks`` (Linux; [] elsewhere or when unknown)."""
    inodes = set()
    for p in (path, path + "-shm"):
        try:
            inodes.add(os.stat(p).st_ino)
        except OSError:
            pass
    pids = set()
    try:
        with open("/proc/locks") as f:
            for line in f:
                parts = line.split()
                if "->" in parts:  # a waiter, not a holder
                    continue
                if len(parts) < 6 or parts[3] != "WRITE":
                    continue
                try:
                    pid, inode = int(parts[4]), int(parts[5].split(":")[-1])
                except ValueError:
                    continue
                if inode in inodes and pid > 0 and pid != os.getpid():
                    pids.add(pid)
    except OSError:
        return []
    return sorted(pids)


def _sqlite_problem(path: str, e: Exception, writing: bool) -> "Exception":
    """A :class:`~bench.errors.StoreError` for SQLite's error ``e`` on the store ``path``
    (``e`` itself when it says nothing about the file: a bad row, a bug)."""
    from bench.errors import StoreError

    text = str(e)
    if isinstance(e, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text
                                                  or "encrypted" in text):
        return StoreError(f"{path} is not a SQLite result store ({text}): pass another --results file; this "
                          f"one is left as it is")
    if "readonly" in text or "read-only" in text:
        return StoreError(f"the result store {path} is read-only ({text}): make the file and its folder writable "
                          f"(chmod u+w) or pass --results a writable path; nothing was computed")
    if "unable to open" in text or "disk I/O" in text:
        folder = os.path.dirname(os.path.abspath(path))
        what = ("make its folder writable (SQLite writes <store>-wal and <store>-shm beside it) or pass --results "
                "a path in a writable folder") if writing else "check that the file and its folder can be read"
        return StoreError(f"cannot open the result store {path} in {folder} ({text}): {what}")
    return e


@dataclass
class Store:
    path: str
    #: open for reading only (``report``, ``export``): no schema change, no write, works on
    #: a read-only file or folder
    readonly: bool = False

    def __post_init__(self):
        from bench.errors import StoreError

        check_store_path(self.path)
        self._conn: sqlite3.Connection | None = None
        if self.readonly:
            if not os.path.isfile(self.path):
                raise StoreError(f"no result store at {self.path}: pass --results an existing store")
            try:
                self.connect().execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            except sqlite3.Error as e:
                self.close()
                raise _sqlite_problem(self.path, e, writing=False) from None
            return
        d = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot make the folder {d} of the result store {self.path} ({e.strerror}): pass "
                             f"--results a path in a writable folder") from None
        try:
            def schema(conn):
                conn.executescript(SCHEMA)
                self._add_missing_columns(conn)
            self._locked(schema)
            self._locked(self._check_writable)
        except sqlite3.Error as e:
            self.close()
            raise _sqlite_problem(self.path, e, writing=True) from None

    def connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.readonly:
                from urllib.parse import quote
                uri = "file:" + quote(os.path.abspath(self.path)) + "?mode=ro"
                conn = sqlite3.connect(uri, uri=True, timeout=_BUSY_MS / 1000, isolation_level=None)
                try:
                    conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                except sqlite3.OperationalError:
                    # a WAL store on read-only media, without its -shm file: SQLite cannot
                    # share its index there; nobody can write it either, so read it as immutable
                    conn.close()
                    if os.access(os.path.dirname(os.path.abspath(self.path)), os.W_OK) and \
                            os.access(self.path, os.W_OK):
                        raise
                    conn = sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None)
                self._conn = conn
                return conn
            conn = sqlite3.connect(self.path, timeout=_BUSY_MS / 1000, isolation_level=None)
            self._conn = conn
            self._locked(lambda c: c.execute("PRAGMA journal_mode=WAL"))
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
        return self._conn

    def _check_writable(self, conn: sqlite3.Connection) -> None:
        # a write transaction that writes nothing: a read-only file fails here, before any
        # cell is computed, not when the first finished cell is stored
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")

    def _locked(self, action):
        """Run ``action(connection)``, retrying while another process holds the store's
        lock: after :data:`LOCK_NOTICE_S` it says so on stderr (and names the holder's pid
        where the OS tells), again every :data:`LOCK_NOTICE_EVERY_S`, and gives up with a
        :class:`~bench.errors.StoreError` after :data:`LOCK_GIVE_UP_S`. Ctrl-C and SIGTERM
        end the wait within a fraction of a second."""
        from bench.errors import StoreError

        conn = self.connect()
        t0 = time.monotonic()
        next_notice = LOCK_NOTICE_S
        while True:
            try:
                return action(conn)
            except sqlite3.OperationalError as e:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.OperationalError:
                        pass
                if "locked" not in str(e) and "busy" not in str(e):
                    raise
            waited = time.monotonic() - t0
            if waited >= LOCK_GIVE_UP_S:
                raise StoreError(f"the result store {self.path} stayed locked by another process for "
                                 f"{waited:.0f} s{self._holder_text()}: end that process, or pass --results "
                                 f"another store")
            if waited >= next_notice:
                print(f"waiting for the store lock held by another process{self._holder_text()} on {self.path} "
                      f"({waited:.0f} s so far; Ctrl-C stops)", file=sys.stderr, flush=True)
                next_notice = waited + LOCK_NOTICE_EVERY_S
            time.sleep(0.05)

    def _holder_text(self) -> str:
        pids = lock_holders(self.path)
        return f" (pid {', '.join(map(str, pids))})" if pids else ""

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
        def write(conn):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"INSERT OR REPLACE INTO results ({cols}) VALUES ({marks})", list(row.values()))
            conn.execute("COMMIT")
        try:
            self._locked(write)
        except sqlite3.Error as e:
            problem = _sqlite_problem(self.path, e, writing=True)
            if problem is e:
                raise
            raise problem from None

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
        for name, _ in self.ADDED_COLUMNS:  # an older store opened read-only keeps its columns
            if name not in df:
                df[name] = None
        # a row stored before rows recorded their protocol ran under its suite's default
        defaults = {s: default_protocol(s) for s in df["suite"].unique()}
        df["protocol"] = [p if isinstance(p, str) else defaults[s] for s, p in zip(df["suite"], df["protocol"])]
        df.attrs["store_path"] = os.path.abspath(self.path)  # where rows' artifact files are (bench.artifacts)
        return df
