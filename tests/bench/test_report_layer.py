"""The shared report layer: newest row per cell, CPU before GPU, bold by each metric's own
direction, '–' where nothing was measured; figures' arrays as artifact files beside the
store (never inside a row, while older rows with base64 images stay readable); and one
suite's tables byte for byte against golden files written by the code before the layer."""
from __future__ import annotations

import base64
import math
import os

import numpy as np
import pytest

from bench import registry as R
from bench.artifacts import load, save
from bench.results import CellResult
from bench.cli import main
from bench.report import (metric_cells, metric_table, newest, pivot, prefer_cpu, to_markdown, row_arrays)
from bench.store import Store

R.load_all()
GOLDEN = os.path.join(os.path.dirname(__file__), "golden")


def _istd_row(key, method, device, iou, fa, created, dataset="toy"):
    return dict(key=key, suite="istd", dataset=dataset, dataset_params={}, sample_set=dataset, degradation="clean",
                degradation_params={}, method=method, method_label=method, method_params={}, family="classical",
                device=device, seed=0, source_hash="h", status="ok", metrics={"iou": iou, "fa": fa},
                curves={}, extras={}, n_samples=2, time_s=1.0, times_s=[1.0],
                provenance={"commit": "abc", "cpu_model": "x", "threads": 1}, created_at=created)


def _table(frame):
    rows = prefer_cpu(newest(frame), ["dataset", "method_label"])
    labels = {"mIoU": "iou", "Fa": "fa", "Pd": "pd"}
    values = pivot(rows, "method_label", lambda r: metric_cells(r, labels, r["dataset"]), ["a", "b", "c"],
                   [(ds, m) for ds in ("toy", "other") for m in labels])
    return values, metric_table(values, "istd", "cap", "tab:t", metrics=labels)


def test_pivot_keeps_the_newest_row_prefers_cpu_and_bolds_by_direction(tmp_path):
    store = Store(str(tmp_path / "r.sqlite"))
    store.put(_istd_row("a-old", "a", "cpu", 90.0, 1.0, created=1.0))   # superseded by the rerun below
    store.put(_istd_row("a-new", "a", "cpu", 40.0, 8.0, created=2.0))
    store.put(_istd_row("b-gpu", "b", "cuda", 99.0, 0.5, created=3.0))  # the CPU row of b wins
    store.put(_istd_row("b-cpu", "b", "cpu", 50.0, 9.0, created=1.5))
    store.put(_istd_row("c-gpu", "c", "cuda", 45.0, 3.0, created=1.0))  # c ran on the GPU only
    values, table = _table(store.frame("istd"))
    assert values.at["a", ("toy", "mIoU")] == 40.0 and values.at["b", ("toy", "mIoU")] == 50.0
    assert values.at["c", ("toy", "Fa")] == 3.0
    assert math.isnan(values.at["a", ("toy", "Pd")]) and values[("other", "mIoU")].isna().all()
    # directions come from the registry: IoU higher is better, Fa lower is better
    assert table.directions[("toy", "mIoU")] == "max" and table.directions[("toy", "Fa")] == "min"
    md = to_markdown(table)
    line = {l.split("|")[1].strip(): l for l in md.splitlines() if l.startswith("| ")}
    assert "**50.00**" in line["b"] and "**3.00**" in line["c"] and "**" not in line["a"]
    assert line["a"].count("–") == 0  # the columns no row has a value in are left out
    assert "other" not in md and "Pd" not in md


def test_metric_label_and_format_come_from_the_registry():
    assert R.METRICS["iou"].display == "mIoU" and R.METRICS["ssim"].fmt == "{:.4f}"
    assert R.METRICS["ergas_msiqa"].display == "ERGAS" and R.METRICS["nmse_db"].display == "NMSE"
    import pandas as pd
    v = pd.DataFrame({"a": [0.123456, 30.0], "b": [0.2, 31.0]}, index=["sigma=10 SSIM", "sigma=10 PSNR"])
    t = metric_table(v, "hsi", "cap", "tab:x", axis="row", key=lambda s: s.split()[-1], index_name="case")
    md = to_markdown(t)
    assert "0.1235" in md and "**0.2000**" in md and "**31.00**" in md  # per-row format and bold


def test_artifacts_keep_arrays_out_of_the_row_and_old_base64_rows_stay_readable(tmp_path):
    store = Store(str(tmp_path / "r.sqlite"))
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    row = save(CellResult.from_row({**_istd_row("k1", "a", "cpu", 1.0, 1.0, 1.0),
                                    "extras": {"visual": [{"name": "x"}], "arrays": {"visual0_map": img}}}),
               store.path)
    assert row.extras.arrays is None and row.extras.artifact == os.path.join("r.sqlite.artifacts", "k1.npz")
    assert "arrays" not in row.extras.to_json()
    store.put(row)
    frame = store.frame("istd")
    assert "visual0_map" not in str(frame.iloc[0]["extras"])
    np.testing.assert_array_equal(row_arrays(frame.iloc[0])["visual0_map"], img)
    os.remove(tmp_path / "r.sqlite.artifacts" / "k1.npz")
    assert load(frame.iloc[0]) == {}  # a missing file: no figure panel, no crash
    # a row stored before the artifacts (base64 images inside it) is still read
    from bench.suites.hsi_report_common import decode_preview
    from bench.suites.istd_figures import visual_panel
    old = {"shape": [2, 2, 3], "bands": [0, 1, 2], "b64": base64.b64encode(bytes(range(12))).decode()}
    assert decode_preview(old).shape == (2, 2, 3) and decode_preview({"shape": [2, 2, 3]}, {}) is None
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    old_row = {"extras": {"visual": [{"name": "x", "map": base64.b64encode(buf.getvalue()).decode()}]}}
    np.testing.assert_array_equal(visual_panel(old_row, 0, "map", {}), img)


@pytest.mark.usefixtures("one_thread")
def test_istd_rows_hold_no_image_and_the_report_reads_the_artifacts(tmp_path):
    from bench.grid import build_cells
    from bench.runner import RunOptions, run_grid
    store = Store(str(tmp_path / "r.sqlite"))
    cells = build_cells("istd", ["istd_synthetic[n_images=2,min_size=64,max_size=64]"], ["clean"], ["mpcm"],
                        ["cpu"], 0)
    assert run_grid(cells, store, RunOptions(repeat=1, warmup=False), progress=False).failed == 0
    r = store.frame("istd").iloc[0]
    assert set(r["extras"]["visual"][0]) == {"name"} and "arrays" not in r["extras"]
    arrays = load(r)
    assert arrays["visual0_mask"].dtype == np.uint8 and arrays["visual0_map"].shape == (64, 64)
    paths = R.SUITES["istd"].report(store.frame("istd"), str(tmp_path / "out"), {})
    assert any(p.endswith("istd_visual.png") for p in paths)


def _sparse_row(key, method, snr, curve, time_s, device="cpu", created=1.0, family="classical", pc=None,
                training=None):
    return dict(key=key, suite="sparse", dataset="gaussian_lasso",
                dataset_params={"m": 250, "n": 500, "p": 0.1, "n_test": 1000, "instance_seed": 0},
                sample_set="gaussian_lasso", degradation=f"awgn_snr[snr_db={snr}]",
                degradation_params={"snr_db": snr}, method=method, method_label=method,
                method_params={"n_iter": len(curve) - 1} if family == "classical" else {"n_layers": 16},
                family=family, device=device, seed=0, source_hash="h", status="ok",
                metrics={"nmse_db": curve[-1]}, curves={"nmse_db": curve},
                extras={"training": training} if training else {}, n_samples=1000, parameter_count=pc,
                time_s=time_s, times_s=[time_s], provenance={"commit": "abc", "cpu_model": "x", "threads": 2},
                created_at=created)


def test_sparse_tables_match_the_golden_files_of_the_code_before_the_layer(tmp_path):
    """The golden files pin the sparse tables written from this fixture (first by the code
    before the shared layer; since rewritten once for the papers' names, short captions and
    the provenance sidecar): a change to them is a deliberate change of the reports."""
    s = Store(str(tmp_path / "r.sqlite"))
    ci = [0.0] + [-1.0 - 0.013 * k for k in range(1, 1001)]
    cf = [0.0] + [-2.0 - 0.021 * k for k in range(1, 1001)]
    s.put(_sparse_row("1", "ista", math.inf, ci, 3.0))
    s.put(_sparse_row("2", "fista", math.inf, cf, 3.5))
    s.put(_sparse_row("3", "ista", 40.0, ci[:101], 2.0))
    s.put(_sparse_row("4", "fista", 40.0, cf[:101], 2.5, device="cuda"))
    s.put(_sparse_row("5", "fista", 40.0, [0.0] + [9.0] * 100, 9.9, created=0.5))  # superseded by key 6
    s.put(_sparse_row("6", "fista", 40.0, [x - 0.5 for x in cf[:101]], 2.7, created=2.0))
    s.put(_sparse_row("7", "lista", math.inf, [0.0] + [-3.0 - 0.5 * k for k in range(1, 17)], 0.02,
                      family="learned", pc=262_656, training={"steps": 12000, "seconds": 345.6}))
    out = tmp_path / "out"
    assert main(["report", "--suite", "sparse", "--results", s.path, "--out", str(out)]) == 0
    for name in sorted(os.listdir(GOLDEN)):
        assert (out / name).read_text() == open(os.path.join(GOLDEN, name)).read(), name
