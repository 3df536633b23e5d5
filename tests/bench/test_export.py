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
from tests.helpers import TINY_LASSO


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("export") / "r.sqlite")
    rc = main(["run", "--suite", "sparse", "--dataset", TINY_LASSO, "--degradation", "awgn_snr[snr_db=[inf,40]]",
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
    # JSON has no inf/nan: its records carry a flag column naming a non-finite value (bench.export)
    assert list(df.columns) == list(COLUMNS) + (["value_nonfinite"] if fmt == "json" else [])
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
    from bench.report_style import display_labels
    from bench.store import Store as _Store
    labels = display_labels(_Store(store, readonly=True).frame("sparse"))
    checked = 0
    for r in df.itertuples():
        snr = json.loads(r.degradation_params)["snr_db"]
        col = f"{'inf' if snr == float('inf') else f'{snr:g}'} k=16"
        row = labels[r.method_label].md                    # the table names methods as the papers do
        assert table[row][col] == f"{r.value:.2f}", (r.method_label, row, col)
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


def _one_cell_store(path, tmp_path):
    """A store whose one cell scored nmse_db = -inf (ISTA without a penalty recovers the
    noiseless 1x1 problem exactly)."""
    rc = main(["run", "--suite", "sparse", "--dataset", "gaussian_lasso[m=1,n=1,p=1,n_test=3]",
               "--degradation", "awgn_snr[snr_db=inf]", "--method", "ista[lam=0,n_iter=50]", "--repeat", "1",
               "--no-progress", "--threads", "1", "--results", path])
    assert rc == 0
    return path


def test_json_export_of_an_infinite_value_is_valid_json_with_a_flag(tmp_path, capsys):
    res = _one_cell_store(str(tmp_path / "r.sqlite"), tmp_path)
    assert Store(res).frame("sparse").iloc[0]["metrics"]["nmse_db"] == float("-inf")
    out = tmp_path / "t.json"
    assert main(["export", "--suite", "sparse", "--format", "json", "--out", str(out), "--results", res]) == 0
    (record,) = json.loads(out.read_text())  # strict JSON: no -Infinity token
    assert record["value"] is None and record["value_nonfinite"] == "-inf"
    csv = tmp_path / "t.csv"
    assert main(["export", "--suite", "sparse", "--out", str(csv), "--results", res]) == 0
    assert pd.read_csv(csv)["value"].iloc[0] == float("-inf")
    assert not [n for n in os.listdir(tmp_path) if ".tmp" in n]  # no temporary file left


def test_export_refuses_to_overwrite_the_store_or_its_artifacts(store, tmp_path, capsys):
    n = Store(store).count()
    for out in (store, store + ".artifacts/t.csv", store + "-wal"):
        assert main(["export", "--suite", "sparse", "--out", out, "--results", store]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --out ") and err.count("\n") == 1 and "pass another --out" in err
    assert Store(store).count() == n
    assert main(["report", "--suite", "sparse", "--out", store + ".artifacts", "--results", store]) == 2
    assert "artifact" in capsys.readouterr().err


def test_a_failed_export_leaves_the_older_file_whole(store, tmp_path, monkeypatch, capsys):
    out = tmp_path / "t.json"
    out.write_text("older export\n")

    def broken(obj, f, **kw):
        f.write('[{"value": ')
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(json, "dump", broken)
    assert main(["export", "--suite", "sparse", "--format", "json", "--out", str(out), "--results", store]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_text() == "older export\n" and os.listdir(tmp_path) == ["t.json"]


def test_unwritable_or_invalid_out_is_one_line(store, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    cases = [["export", "--out", str(tmp_path / "a_file" / "t.csv")],
             ["export", "--out", str(tmp_path)],
             ["report", "--out", str(tmp_path / "a_file")],
             ["report", "--out", str(tmp_path / "a_file" / "sub")]]
    for cmd, *rest in cases:
        assert main([cmd, "--suite", "sparse", "--results", store, *rest]) == 2, rest
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert (tmp_path / "a_file").read_text() == "x"


def test_export_and_report_open_the_store_read_only(store, tmp_path):
    mtime = os.stat(store).st_mtime_ns
    assert main(["export", "--suite", "sparse", "--out", str(tmp_path / "t.csv"), "--results", store]) == 0
    assert main(["report", "--suite", "sparse", "--out", str(tmp_path / "rep"), "--results", store]) == 0
    assert os.stat(store).st_mtime_ns == mtime
