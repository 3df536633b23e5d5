"""Artifact files belong to their store: two stores in one folder never share one."""
from __future__ import annotations

import os

import numpy as np

from bench.artifacts import folder_name, load, save
from bench.results import CellResult
from bench.store import Store


def _row(key, img):
    return CellResult.from_row({
        "key": key, "suite": "istd", "dataset": "d", "dataset_params": {}, "sample_set": "d",
        "degradation": "clean", "degradation_params": {}, "method": "mpcm", "method_label": "mpcm",
        "method_params": {}, "family": "classical", "device": "cpu", "seed": 0, "source_hash": "h",
        "status": "ok", "metrics": {"pd": 1.0},
        "extras": {"visual": [{"name": "x"}], "arrays": {"visual0_map": img}}})


def test_two_stores_in_one_folder_keep_their_own_files_for_the_same_cell(tmp_path):
    real, constant = np.arange(12, dtype=np.uint8).reshape(3, 4), np.full((3, 4), 7, np.uint8)
    a, b = Store(str(tmp_path / "a.sqlite")), Store(str(tmp_path / "b.sqlite"))
    a.put(save(_row("same-key", real), a.path))
    b.put(save(_row("same-key", constant), b.path))  # the same cell, run on other data, into b
    np.testing.assert_array_equal(load(a.frame("istd").iloc[0])["visual0_map"], real)
    np.testing.assert_array_equal(load(b.frame("istd").iloc[0])["visual0_map"], constant)
    assert folder_name(a.path) == "a.sqlite.artifacts"
    assert os.listdir(tmp_path / "a.sqlite.artifacts") == ["same-key.npz"]
    assert not (tmp_path / "artifacts").exists()


def test_rows_of_an_older_store_read_the_shared_folder_as_before(tmp_path):
    img = np.arange(6, dtype=np.uint8).reshape(2, 3)
    os.makedirs(tmp_path / "artifacts")
    np.savez_compressed(tmp_path / "artifacts" / "k.npz", visual0_map=img)
    store = Store(str(tmp_path / "old.sqlite"))
    row = _row("k", img)
    import dataclasses
    store.put(dataclasses.replace(row, extras=dataclasses.replace(row.extras, arrays=None,
                                                                  artifact=os.path.join("artifacts", "k.npz"))))
    np.testing.assert_array_equal(load(store.frame("istd").iloc[0])["visual0_map"], img)
