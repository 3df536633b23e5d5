"""Figures' arrays as files beside the store, not inside result rows.

A suite's ``score`` puts the arrays a report's figure needs (a few images, maps, masks,
false-colour previews; uint8) in its extras' ``arrays`` (:attr:`bench.results.Extras.arrays`)
as {name: array}. Before the row is stored, :func:`save`
moves them to ``<store>.artifacts/<cell key>.npz`` (compressed; ``results.sqlite`` keeps
its files in ``results.sqlite.artifacts/``) and keeps the file's path, relative to the
store's folder, in the extras' ``artifact``; the row itself holds no image. Each store has
its own folder, so two stores in one folder never share a file, even for the same cell key.
A report reads them back with :func:`load` (it never recomputes them). Rows of older stores
name ``artifacts/<cell key>.npz`` (a folder all stores beside it shared); they are read
from there as before. The folder sits beside the store and is ignored by git like the store.
"""
from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from bench.results import CellResult

#: the folder, beside the store, that held the artifact files of every store there (rows
#: of older stores name it; new rows use :func:`folder_name`)
FOLDER = "artifacts"
#: appended to the store's file name: the folder of that store's artifact files
SUFFIX = ".artifacts"


def folder_name(store_path: str) -> str:
    """The store's own artifact folder, relative to the store's folder:
    ``<store file name>.artifacts``."""
    return os.path.basename(os.path.abspath(store_path)) + SUFFIX


def folders(store_path: str) -> list[str]:
    """The absolute folders whose files rows of the store at ``store_path`` may name: its
    own, and the older shared ``artifacts/`` beside it."""
    base = os.path.dirname(os.path.abspath(store_path))
    return [os.path.join(base, folder_name(store_path)), os.path.join(base, FOLDER)]


def save(result: "CellResult", store_path: str) -> "CellResult":
    """Move a result's arrays (``extras.arrays``, handed by its suite's ``score``) to its
    artifact file: a copy of the result with the file's path in ``extras.artifact`` and no
    arrays; a result without arrays is returned as it is."""
    arrays = result.extras.arrays if result.extras is not None else None
    if not arrays:
        return result
    rel = _write(result.key, arrays, store_path)
    return dataclasses.replace(result, extras=dataclasses.replace(result.extras, arrays=None, artifact=rel))


def _write(key: str, arrays: dict, store_path: str) -> str:
    """Write ``arrays`` to the artifact file of the cell ``key``; its path relative to the
    store's folder."""
    rel = os.path.join(folder_name(store_path), f"{key}.npz")
    path = os.path.join(os.path.dirname(os.path.abspath(store_path)), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
    os.replace(tmp, path)  # a reader never sees half a file
    return rel


def load(row: Any, store_path: str | None = None) -> dict[str, np.ndarray]:
    """The arrays of a stored row's artifact file; {} when it has none or the file is gone.
    A relative path is read beside ``store_path`` (default: the store whose frame the row
    came from, which :meth:`bench.store.Store.frame` records in the frame's ``attrs``;
    pandas hands them on to the rows and sub-frames made from it)."""
    extras = row.get("extras") if hasattr(row, "get") else getattr(row, "extras", None)  # frame row / CellResult
    rel = (extras or {}).get("artifact") if extras is None or hasattr(extras, "get") else extras.artifact
    if not rel:
        return {}
    base = store_path or (getattr(row, "attrs", None) or {}).get("store_path")
    path = rel if os.path.isabs(rel) or not base else os.path.join(os.path.dirname(os.path.abspath(base)), rel)
    if not os.path.exists(path):
        return {}
    with np.load(path) as f:
        return {k: f[k] for k in f.files}
