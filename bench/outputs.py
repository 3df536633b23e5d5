"""Where ``report`` and ``export`` write: guarded and atomic.

An output path never names the result store (or its ``-wal``/``-shm`` files) nor a path
inside the store's artifact folders (:mod:`bench.artifacts`): :func:`check_out` refuses it
before anything is read. Every output file is written to a temporary file in the same
folder and renamed over the target (:func:`atomic`), so a crash or a full disk never leaves
a half-written table, figure or export; an older file of that name stays as it was.
"""
from __future__ import annotations

import contextlib
import os
import tempfile

from bench.errors import OutputError


def _real(path: str) -> str:
    return os.path.realpath(os.path.abspath(path))


def _inside(path: str, folder: str) -> bool:
    path, folder = _real(path), _real(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_out(out: str, store_path: str, option: str = "--out") -> str:
    """``out`` when writing there cannot harm the store at ``store_path``; else an
    :class:`~bench.errors.OutputError` naming both and what to do."""
    from bench.artifacts import folders

    if not isinstance(out, str) or not out.strip():
        raise OutputError(f"{option} {out!r} is not a path: pass a file or folder to write to")
    store = _real(store_path)
    for name in (store, store + "-wal", store + "-shm", store + "-journal"):
        if _real(out) == name:
            raise OutputError(f"{option} {out} is the result store {store_path} (or one of its files): writing "
                              f"there would destroy every stored row; pass another {option} path")
    for folder in folders(store_path):
        if _inside(out, folder):
            raise OutputError(f"{option} {out} is inside {folder}, the store's artifact files: pass "
                              f"another {option} path")
    return out


@contextlib.contextmanager
def atomic(path: str):
    """Yield a temporary path beside ``path`` (same extension, so that writers that go by
    it pick the format); on success it replaces ``path`` in one rename, on failure it is
    removed. Folders are made; an unwritable or invalid path is an
    :class:`~bench.errors.OutputError` naming it."""
    folder = os.path.dirname(os.path.abspath(path))
    stem, ext = os.path.splitext(os.path.basename(path))
    try:
        if os.path.isdir(path):
            raise IsADirectoryError(21, "is a folder", path)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp{ext}", dir=folder)
        os.close(fd)
    except OSError as e:
        raise OutputError(unwritable(path, e)) from None
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise OutputError(unwritable(path, e)) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def unwritable(path: str, e: OSError) -> str:
    """The one-line message for an output ``path`` the OS refused (``e``)."""
    name = getattr(e, "filename", None)
    temporary = bool(name) and os.path.basename(str(name)).startswith(".") and ".tmp" in os.path.basename(str(name))
    where = f" ({name})" if name and name != path and not temporary else ""
    return (f"cannot write {path}: {e.strerror or e}{where}; pass --out a path in a writable folder "
            f"(no file where a folder is needed)")
