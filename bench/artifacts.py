"""Figures' arrays as files beside the store, not inside result rows.

A suite's ``score`` puts the arrays a report's figure needs (a few images, maps, masks,
false-colour previews; uint8) in its extras' ``arrays`` (:attr:`bench.results.Extras.arrays`,
``extras[ARRAYS]`` in a row dict) as {name: array}. Before the row is stored, :func:`save`
moves them to ``<store folder>/artifacts/<cell key>.npz`` (compressed) and keeps the file's
path, relative to the store's folder, in the extras' ``artifact``; the row itself holds no
image. A report reads them back with :func:`load` (it never recomputes
them). The folder sits beside the store and is ignored by git like the store.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

#: the extras key under which a row dict's ``score`` handed arrays to the runner (never
#: stored; :attr:`bench.results.Extras.arrays` in typed extras)
ARRAYS = "arrays"
#: the folder, beside the store, that holds the artifact files
FOLDER = "artifacts"


def save(row: Any, store_path: str) -> Any:
    """Move a row's arrays to its artifact file and keep the file's path in its extras
    (``artifact``); a row without arrays is returned as it is. ``row`` is a
    :class:`bench.results.CellResult` (its ``extras.arrays``; a new CellResult is
    returned, the extras' ``arrays`` None) or a row dict of earlier code (its
    ``extras[ARRAYS]``, popped in place)."""
    from bench.results import CellResult
    if isinstance(row, CellResult):
        arrays = getattr(row.extras, "arrays", None)
        if arrays is None:
            return row
        rel = _write(row.key, arrays, store_path) if arrays else row.extras.artifact
        return dataclasses.replace(row, extras=dataclasses.replace(row.extras, arrays=None, artifact=rel))
    extras = row.get("extras") if isinstance(row, dict) else getattr(row, "extras", None)
    if not isinstance(extras, dict) or ARRAYS not in extras:
        return row
    arrays = extras.pop(ARRAYS) or {}
    if not arrays:
        return row
    key = row["key"] if isinstance(row, dict) else row.key
    extras["artifact"] = _write(key, arrays, store_path)
    return row


def _write(key: str, arrays: dict, store_path: str) -> str:
    """Write ``arrays`` to the artifact file of the cell ``key``; its path relative to the
    store's folder."""
    rel = os.path.join(FOLDER, f"{key}.npz")
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
