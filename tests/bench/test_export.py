"""``bench export``: one row per (cell, metric), the store's values in csv, parquet and json
alike, the numbers the reports print."""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from bench.cli import main
from bench.export import COLUMNS
from bench.store import Store

TINY = "gaussian_lasso[m=20,n=40,n_test=16]"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("export") / "r.sqlite")
    rc = main(["run", "--suite", "sparse", "--dataset", TINY, "--degradation", "awgn_snr[snr_db=[inf,40]]",
               "--method", "ista[n_iter=16]", "--method", "fista[n_iter=16]", "--method", "admm[n_iter=16]", "--repeat", "1", "--no-progress", "--threads", "1",
               "--results", path])
    assert rc == 0
    return path


def _read(path, fmt):
    return {"csv": pd.read_csv, "parquet": pd.read_parquet, "json": lambda p: pd.read_json(p, precise_float=True)}[fmt](path)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_one_row_per_cell_and_metric_with_the_stores_values(store, tmp_path, fmt, capsys):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out = str(tmp_path / f"t.{fmt}")
    assert main(["export", "--suite", "sparse", "--format", fmt, "--out", out, "--results", store]) == 0
    assert f"{out}: 6 row(s)" in capsys.readouterr().out
    df = _read(out, fmt)
    assert list(df.columns) == list(COLUMNS)
    rows = Store(store).frame("sparse")
    assert len(df) == sum(len(m) for m in rows["metrics"]) == 6
    assert not df.duplicated(["key", "metric"]).any()
    stored = {(r.key, m): v for r in rows.itertuples() for m, v in r.metrics.items()}
    for r in df.itertuples():
        assert r.value == stored[(r.key, r.metric)]  # unrounded, exactly the stored value
        row = rows.set_index("key").loc[r.key]
        assert r.method_label == row["method_label"] and r.device == "cpu" and r.threads == 1
        assert r.time_s == row["time_s"]
        assert json.loads(r.method_params) == row["method_params"]
        assert r.commit == row["provenance"]["commit"] and r.torch == row["provenance"]["versions"]["torch"]
        assert r.unit == "dB" and r.direction == "min" and r.family == "classical"
    assert set(df["degradation_params"].map(lambda s: json.loads(s)["snr_db"])) == {float("inf"), 40}


def test_matches_the_reports_table(store, tmp_path):
    """The NMSE table's k=16 column holds the final metric of a 16-iteration method, rounded."""
    out = str(tmp_path / "t.csv")
    assert main(["export", "--suite", "sparse", "--out", out, "--results", store]) == 0
    assert main(["report", "--suite", "sparse", "--out", str(tmp_path / "rep"), "--results", store]) == 0
    df = pd.read_csv(out)
    (md,) = (tmp_path / "rep").glob("sparse_nmse_*.md")  # the report names the instance
    with open(md) as f:
        lines = [l for l in f if l.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|\n").split("|")]
    table = {c[0]: dict(zip(header[1:], c[1:])) for c in
             ([x.strip().strip("*") for x in l.strip("|\n").split("|")] for l in lines[1:])}
    checked = 0
    for r in df.itertuples():
        snr = json.loads(r.degradation_params)["snr_db"]
        col = f"{'inf' if snr == float('inf') else f'{snr:g}'} k=16"
        assert table[r.method_label][col] == f"{r.value:.2f}", (r.method_label, col)
        checked += 1
    assert checked == 6


def test_export_errors(tmp_path, capsys):
    assert main(["export", "--suite", "sparse", "--results", str(tmp_path / "none.sqlite")]) == 1
    assert "no result store" in capsys.readouterr().err
    assert main(["export", "--suite", "no_suite", "--results", str(tmp_path / "none.sqlite")]) == 2
    Store(str(tmp_path / "empty.sqlite"))
    assert main(["export", "--suite", "sparse", "--results", str(tmp_path / "empty.sqlite")]) == 1
    assert "no finished cells" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "reports")
