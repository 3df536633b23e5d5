"""The hsi suite end to end on a tiny grid: run, store, report (tables with the best per
row in bold, captions naming the metric set, runtime and parameter tables, figures)."""
from __future__ import annotations

import os

import pandas as pd
import pytest
import torch

from bench import registry as R
from bench.cli import main
from bench.grid import build_cells
from bench.report import Table, best_mask
from bench.runner import RunOptions, run_grid
from bench.store import Store

R.load_all()


def test_best_mask_by_row():
    values = pd.DataFrame({"a": [1.0, 5.0], "b": [2.0, 4.0]}, index=["psnr", "sam"])
    mask = best_mask(values, {"psnr": "max", "sam": "min"}, axis="row")
    assert mask.loc["psnr"].tolist() == [False, True] and mask.loc["sam"].tolist() == [False, True]
    assert Table(values, {}, "", "").bold_axis == "column"  # default unchanged


def test_validate_output_rejects_bad_cubes():
    suite = R.SUITES["hsi"]
    task, _ = suite.tiny_task("noisy", "cpu", 0)
    good = R.METHODS["noisy"]().run(task.inputs)
    suite.validate_output(task, good)
    with pytest.raises(ValueError):
        suite.validate_output(task, good[0])
    bad = good[0].clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        suite.validate_output(task, (bad,))


def test_tiny_grid_runs_and_reports(tmp_path):
    cells = build_cells("hsi", ["hsi_synthetic[n_cubes=1,size=16,bands=8]"],
                        ["hsi_gaussian[sigma=[30,70]]", "hsi_mixed"],
                        ["noisy", "subspace_tv", "lrtdtv[n_iter=3]"], ["cpu"], seed=0)
    store = Store(str(tmp_path / "r.sqlite"))
    summary = run_grid(cells, store, RunOptions(repeat=1), progress=False)
    assert summary.failed == 0 and summary.done == 9
    frame = store.frame("hsi")
    row = frame[frame["method_label"] == "subspace_tv"].iloc[0]
    assert set(R.SUITES["hsi"].metrics) <= set(row["metrics"])
    # the false-colour previews are in the row's artifact file, not in the row
    from bench.artifacts import load
    assert "b64" not in row["extras"]["preview"] and "arrays" not in row["extras"]
    assert load(row)["preview"].shape == tuple(row["extras"]["preview"]["shape"])
    out = str(tmp_path / "rep")
    assert main(["report", "--suite", "hsi", "--results", store.path, "--out", out]) == 0
    files = set(os.listdir(out))
    stem = "hsi_table_hsi_synthetic_bands_8_n_cubes_1_size_16"
    for name in (f"{stem}_standard.md", f"{stem}_starnet.tex", "hsi_runtime.md", "hsi_parameters.md",
                 "hsi_psnr_vs_sigma.png", "hsi_accuracy_vs_time.png", "hsi_false_colour.png"):
        assert name in files, name
    md = open(os.path.join(out, f"{stem}_standard.md")).read()
    assert "metric set 'standard'" in md and "avg PSNR" in md and "mixed ERGAS" in md and "**" in md
    assert "| Noisy" in md or "Noisy |" in md
    assert "metric set 'starnet'" in open(os.path.join(out, f"{stem}_starnet.md")).read()
    # PSNR row: the stored values, the best of the row in bold
    psnr = {r["method_label"]: r["metrics"]["psnr"] for _, r in frame.iterrows()
            if r["degradation_params"].get("sigma") == 70.0}
    best = max(psnr, key=psnr.get)
    line = next(l for l in md.splitlines() if l.startswith("| sigma=70 PSNR"))
    assert f"**{psnr[best]:.2f}**" in line
    runtime = open(os.path.join(out, "hsi_runtime.md")).read()
    assert "–" in runtime  # no GPU measured
    # a report limited to one metric set
    out2 = str(tmp_path / "rep2")
    assert main(["report", "--suite", "hsi", "--results", store.path, "--out", out2,
                 "--option", "metric_sets=starnet"]) == 0
    tables = [f for f in os.listdir(out2) if f.startswith("hsi_table_") and f.endswith(".md")]
    assert tables == [f"{stem}_starnet.md"]
    assert main(["report", "--suite", "hsi", "--results", store.path, "--out", out2,
                 "--option", "metric_sets=slides"]) == 2


def test_identical_cells_give_identical_metrics(tmp_path):
    suite = R.SUITES["hsi"]
    t1, _ = suite.tiny_task("subspace_tv", "cpu", 3)
    t2, _ = suite.tiny_task("subspace_tv", "cpu", 3)
    assert torch.equal(t1.inputs.noisy[0], t2.inputs.noisy[0])
