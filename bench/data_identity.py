"""The identity of the data a cell reads (part of its key) and the check of each data file
against the data root's ``SHA256SUMS``.

A dataset that reads files lists them, without reading them, in
:meth:`bench.registry.Dataset.files`; :func:`dataset_identity` hashes that list into the
``data`` entry of the cell's key (:attr:`bench.grid.Cell.key`). The entry is the SHA-256 of
every listed file's path under the data root and of its bytes, so a changed or different
file (another data root, a corrupt copy, an edited mask) gives another key and never reuses
a stored row, while an identical copy of the data under another root shares the key. A
generated dataset lists no file and is identified by its parameters alone, as before.

Each file is hashed once: :func:`file_sha256` remembers the digest by (path, size,
mtime_ns) in this process and in a small cache file (:data:`CACHE_FILE`,
``results/cache/data_sha256.json``; safe to delete), so that building the keys of a grid
whose files were seen before costs one ``stat`` per file. The same digests serve
:func:`verify`, which every loader calls on each file it reads: a file that the data root's
``SHA256SUMS`` lists with another hash raises :class:`bench.errors.DataError` naming the
file and the command that downloads it again (``python -m bench data fetch NAME``); the
runner turns it into failed rows of that dataset's cells only.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import threading
from typing import Iterable

from bench import paths
from bench.errors import DataError

#: digests of data files by absolute path: {path: [size, mtime_ns, sha256]}
CACHE_FILE = os.path.join(paths.CACHE_DIR, "data_sha256.json")

_MEMO: dict[tuple[str, int, int], str] = {}
_LOADED: set[str] = set()
_DIRTY: set[str] = set()
_LOCK = threading.Lock()
_SUMS: dict[tuple[str, int], dict[str, str]] = {}


# --------------------------------------------------------------------------- file digests
def _load_cache(cache_file: str) -> None:
    if cache_file in _LOADED:
        return
    _LOADED.add(cache_file)
    try:
        with open(cache_file) as f:
            table = json.load(f)
        for path, (size, mtime_ns, sha) in table.items():
            _MEMO.setdefault((path, int(size), int(mtime_ns)), str(sha))
    except (OSError, ValueError, TypeError, AttributeError):
        pass  # absent or unreadable: the digests are computed again


def _save_cache(cache_file: str) -> None:
    """Write every digest known in this process (and those another process wrote meanwhile)
    whose file still has that size and mtime, atomically: a temporary file, then rename (a
    read-only checkout keeps none)."""
    _LOADED.discard(cache_file)
    _load_cache(cache_file)
    table = {}
    for (path, size, mtime_ns), sha in _MEMO.items():
        try:
            st = os.stat(path)
        except OSError:
            continue
        if st.st_size == size and st.st_mtime_ns == mtime_ns:
            table[path] = [size, mtime_ns, sha]
    try:
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        tmp = f"{cache_file}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "w") as f:
            json.dump(table, f)
        os.replace(tmp, cache_file)
    except OSError:
        pass


def file_sha256(path: str, cache_file: str | None = None) -> str | None:
    """The SHA-256 (hex) of the file ``path`` (None: it does not exist), computed once per
    (path, size, mtime_ns) and remembered in ``cache_file`` (default :data:`CACHE_FILE`)."""
    cache_file = cache_file or CACHE_FILE
    path = os.path.abspath(path)
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    token = (path, st.st_size, st.st_mtime_ns)
    with _LOCK:
        _load_cache(cache_file)
        if token in _MEMO:
            return _MEMO[token]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with _LOCK:
        _MEMO[token] = digest
        _DIRTY.add(cache_file)
    return digest


def flush() -> None:
    """Write the digests computed since the last flush to their cache file (at exit too)."""
    with _LOCK:
        for cache_file in sorted(_DIRTY):
            _save_cache(cache_file)
        _DIRTY.clear()


atexit.register(flush)


def clear_memo() -> None:
    """Forget the digests of this process (tests); the cache file is read again."""
    with _LOCK:
        _MEMO.clear()
        _LOADED.clear()
        _DIRTY.clear()
        _SUMS.clear()


# --------------------------------------------------------------------------- the manifest
def _rel(path: str, data_root: str | None) -> str:
    """``path`` relative to the data root ("/"-separated), or absolute when outside it."""
    path = os.path.normpath(os.path.abspath(path))
    if data_root:
        root = os.path.normpath(os.path.abspath(data_root))
        if path == root or path.startswith(root + os.sep):
            return os.path.relpath(path, root).replace(os.sep, "/")
    return path


def manifest(data_root: str | None) -> dict[str, str]:
    """The data root's ``SHA256SUMS`` as {path relative to the root ("/"-separated): sha256};
    empty when the root has none."""
    if not data_root:
        return {}
    path = os.path.join(data_root, "SHA256SUMS")
    try:
        st = os.stat(path)
    except OSError:
        return {}
    key = (os.path.abspath(path), st.st_mtime_ns)
    if key not in _SUMS:
        table = {}
        with open(path) as f:
            for line in f:
                parts = line.strip().split(None, 1)
                if len(parts) == 2:
                    rel = os.path.normpath(parts[1].lstrip("*")).replace(os.sep, "/")
                    table[rel] = parts[0].lower()
        _SUMS[key] = table
    return _SUMS[key]


def fetch_hint(rel: str) -> str:
    """What gets a data file again: ``python -m bench data fetch NAME`` for a file of a known
    data set, else the listing command."""
    from bench.data_manifest import dataset_of

    d = dataset_of(rel) if not os.path.isabs(rel) else None
    if d is not None and not d.manual:
        return f"`python -m bench data fetch {d.name}` downloads it again"
    if d is not None:
        return f"make it again ({d.manual})"
    return "replace it with the right file (`python -m bench data list` shows the known data sets)"


def verify(path: str, data_root: str | None) -> None:
    """Compare the file ``path`` with its line in the data root's ``SHA256SUMS``, where there
    is one (a file it does not list passes); :class:`DataError` naming the file and the fix."""
    rel = _rel(path, data_root)
    expected = manifest(data_root).get(rel)
    if expected is None:
        return
    digest = file_sha256(path)
    if digest is None:
        return  # a missing file: the loader says so with its own message
    if digest != expected:
        raise DataError(f"checksum mismatch for {path}: SHA-256 {digest[:16]}... but the data root's SHA256SUMS "
                        f"lists {expected[:16]}...; the file is corrupt or a different version: {fetch_hint(rel)}")


# --------------------------------------------------------------------------- identities
def files_identity(files: Iterable[str], data_root: str | None) -> str:
    """32 hex digits of the files' paths (relative to the data root) and bytes; "" for no
    file. A missing file counts as missing (its cell fails when loaded)."""
    entries = sorted({_rel(p, data_root) for p in files})
    if not entries:
        return ""
    root = os.path.abspath(data_root) if data_root else ""
    h = hashlib.sha256()
    for rel in entries:
        full = rel if os.path.isabs(rel) else os.path.join(root, rel)
        h.update(f"{rel}\0{file_sha256(full) or 'missing'}\n".encode())
    flush()
    return h.hexdigest()[:32]


def dataset_identity(dataset, data_root: str | None) -> str:
    """The ``data`` entry of the key of the cells of ``dataset`` (an instance) read from
    ``data_root``: :func:`files_identity` of its :meth:`~bench.registry.Dataset.files`
    ("" for a generated dataset). A listing that fails (a missing folder, an unreadable
    split file) gives a marker naming the error: the cell's load fails the same way and its
    row is a failed one, which is never reused."""
    try:
        files = tuple(dataset.files(data_root))
    except Exception as e:  # noqa: BLE001 - the load reports it properly
        if not getattr(dataset, "needs_data", False):
            raise
        return "unlisted:" + hashlib.sha256(f"{type(e).__name__}: {e}".encode()).hexdigest()[:16]
    return files_identity(files, data_root)
