"""The hsi suite end to end on a tiny grid: run, store, report (tables with the best per
row in bold, captions naming the metric set, runtime and parameter tables, figures)."""
from __future__ import annotations

import json

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
    notes = json.load(open(os.path.join(out, f"{stem}_standard.json")))["notes"]  # the sidecar
    assert "metric set 'standard'" in notes and "avg PSNR" in md and "mixed ERGAS" in md and "**" in md
    assert "| Noisy" in md or "Noisy |" in md
    assert "metric set 'starnet'" in json.load(open(os.path.join(out, f"{stem}_starnet.json")))["notes"]
    # PSNR row: the stored values, the best of the row in bold
    psnr = {r["method_label"]: r["metrics"]["psnr"] for _, r in frame.iterrows()
            if r["degradation_params"].get("sigma") == 70.0}
    best = max(psnr, key=psnr.get)
    col = [c.strip() for c in md.splitlines()[2].split("|")].index("σ=70 PSNR")   # methods as rows
    cells = [ln.split("|")[col].strip() for ln in md.splitlines()[4:] if ln.startswith("| ")]
    assert f"**{psnr[best]:.2f}**" in cells
    runtime = open(os.path.join(out, "hsi_runtime.md")).read()
    assert "GPU" not in runtime and "CPU" in runtime  # no GPU measured: the column is left out
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


def test_dataset_scene_names_match_the_training_split_checkpoints_record():
    """``scene_ids`` (read without files) names scenes as the trained checkpoints' metas do:
    the train split's are exactly the shipped networks' training + validation scenes, and no
    test scene is among them (a renamed scene on either side fails here)."""
    from bench.checkpoints import read_checkpoint_meta
    from bench import weights
    train = set(R.DATASETS["hsi_split"](split="train").scene_ids())
    test = set(R.DATASETS["hsi_split"](split="test").scene_ids())
    assert test == {"cave:chart_and_stuffed_toy", "pavia", "pavia_university"} and not train & test
    for method in ("smds_net", "star_net", "star_net_s"):
        meta = read_checkpoint_meta(weights.resolve("hsi", method, f"shipped:{method}_cpu").path)
        assert set(meta["train_scenes"]) | set(meta["val_scenes"]) == train, method
    assert R.DATASETS["abu"]().scene_ids() == ("abu-urban-1",)
    assert R.DATASETS["cave"]().scene_ids() == ("cave:chart_and_stuffed_toy",)
    assert R.DATASETS["hsi_synthetic"]().scene_ids() == ()


def test_trained_rows_are_not_scored_on_their_training_scenes():
    """The default grid's datasets include training-split scenes: a trained-here row is left
    out there with a line naming the scenes, kept on the test scenes and the synthetic set;
    a published row (the authors' data, none of ours) is not left out for that reason."""
    from bench.suites.hsi import _seen_in_training
    from bench import weights
    suite = R.SUITES["hsi"]
    trained = "star_net_s[checkpoint=shipped:star_net_s_cpu,max_rank=9]"
    cells = {c.dataset: c for c in build_cells("hsi", ["abu", "samson", "cave", "pavia", "hsi_synthetic"],
                                               ["hsi_gaussian[sigma=50]"], [trained], ["cpu"], seed=0)}
    reason = suite.skip_reason(cells["abu"])
    assert reason and "abu-urban-1" in reason and "training split" in reason
    assert "samson" in suite.skip_reason(cells["samson"])      # a validation scene counts too
    for ds in ("cave", "pavia", "hsi_synthetic"):
        assert suite.skip_reason(cells[ds]) is None, ds
    published = build_cells("hsi", ["abu"], ["hsi_gaussian[sigma=50]"],
                            ["smds_net[checkpoint=published:icvl_sigma55]"], ["cpu"], seed=0)[0]
    assert _seen_in_training(published, weights.resolve("hsi", "smds_net", "published:icvl_sigma55")) is None


def test_report_writes_a_table_per_cube_of_a_several_cube_dataset(tmp_path):
    """A dataset of several cubes also gets one table per cube (the slides' table per test
    scene of hsi_split), from the rows' per-cube values; per_cube=0 turns them off."""
    cells = build_cells("hsi", ["hsi_synthetic[n_cubes=2,size=16,bands=8]"], ["hsi_gaussian[sigma=[30,70]]"],
                        ["noisy", "subspace_tv"], ["cpu"], seed=0)
    store = Store(str(tmp_path / "r.sqlite"))
    assert run_grid(cells, store, RunOptions(repeat=1), progress=False).failed == 0
    out = str(tmp_path / "rep")
    assert main(["report", "--suite", "hsi", "--results", store.path, "--out", out,
                 "--option", "metric_sets=standard"]) == 0
    stem = "hsi_table_hsi_synthetic_bands_8_size_16"   # n_cubes=2 is the default: not in the label
    assert {f"{stem}_standard.md", f"{stem}_synthetic_1_standard.md"} <= set(os.listdir(out))
    frame = store.frame("hsi")
    row = frame[(frame["method_label"] == "subspace_tv")
                & (frame["degradation_params"].map(lambda p: p.get("sigma")) == 70.0)].iloc[0]
    want = row["extras"]["per_cube"]["psnr"][1]
    assert abs(want - row["metrics"]["psnr"]) > 1e-3      # the cube's own value, not the mean
    md = open(os.path.join(out, f"{stem}_synthetic_1_standard.md")).read()
    assert "cube synthetic-1 alone" in json.load(open(os.path.join(out, f"{stem}_synthetic_1_standard.json")))["notes"]
    header = [c.strip() for c in md.splitlines()[2].split("|")]
    line = [c.strip() for c in next(l for l in md.splitlines() if l.startswith("| Subspace-TV")).split("|")]
    assert line[header.index("σ=70 PSNR")].strip("*") == f"{want:.2f}"
    out2 = str(tmp_path / "rep2")
    assert main(["report", "--suite", "hsi", "--results", store.path, "--out", out2,
                 "--option", "metric_sets=standard", "--option", "per_cube=0"]) == 0
    assert not [f for f in os.listdir(out2) if "synthetic_1" in f]


def test_table_captions_name_each_learned_rows_weights_and_training():
    """A trained-here row's caption note gives its recipe, steps, minutes, command and the
    scenes it trained and validated on (once for rows sharing them); a published row its
    source and training data."""
    from bench.suites.hsi_report_common import training_note
    tr = {"recipe": "cpu", "steps": 300, "batch_size": 2, "crop": 24, "seconds": 904.3, "threads": 1,
          "command": "python -m bench train --suite hsi --method star_net --recipe cpu",
          "train_scenes": ["cave:cloth", "jasper_ridge"], "val_scenes": ["samson"]}
    rows = pd.DataFrame([
        {"family": "learned", "method_label": "star_net[checkpoint=shipped:star_net_cpu]",
         "extras": {"weights": {"source": "trained here"}, "training": tr}},
        {"family": "learned", "method_label": "star_net_s[checkpoint=shipped:star_net_s_cpu]",
         "extras": {"weights": {"source": "trained here"}, "training": dict(tr, seconds=357.0)}},
        {"family": "learned", "method_label": "smds_net",
         "extras": {"weights": {"source": "published"}, "training": {"source": "github.com/x @ 1", "dataset": "ICVL"}}},
        {"family": "classical", "method_label": "bm4d", "extras": {}},
    ])
    note = training_note(rows)
    assert "star_net[checkpoint=shipped:star_net_cpu]: trained here, recipe cpu (300 Adam steps of 2 24x24 crops, 15 min" in note
    assert "star_net_s[checkpoint=shipped:star_net_s_cpu]" in note and "6 min on 1 thread(s)" in note
    assert note.count("trained here on cave:cloth, jasper_ridge") == 1 and "validation PSNR on samson" in note
    assert "smds_net: published (github.com/x @ 1; trained on ICVL)" in note and "bm4d" not in note
    assert training_note(rows[rows["family"] == "classical"]) == "none"


def test_a_store_of_only_the_noisy_rows_reports_what_it_can(tmp_path, capsys):
    res = str(tmp_path / "r.sqlite")
    assert main(["run", "--suite", "hsi", "--dataset", "hsi_synthetic[n_cubes=1,size=32,bands=8]",
                 "--degradation", "hsi_gaussian[sigma=30]", "--method", "noisy", "--repeat", "1", "--no-progress",
                 "--threads", "1", "--results", res]) == 0
    assert main(["report", "--suite", "hsi", "--results", res, "--out", str(tmp_path / "rep")]) == 0
    written = capsys.readouterr().out.split()
    assert any("hsi_table_" in p for p in written)  # the Noisy column's accuracy table
    assert not any("hsi_runtime" in p or "hsi_parameters" in p for p in written)  # no method to time
    files = os.listdir(tmp_path / "rep" / "hsi") if os.path.isdir(tmp_path / "rep" / "hsi") else os.listdir(tmp_path / "rep")
    assert any(f.startswith("hsi_table_") for f in files)
    assert not any(f.startswith(("hsi_accuracy_vs_time", "hsi_runtime")) for f in files)  # no method to place
