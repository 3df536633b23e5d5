"""The hsi suite on a real noisy cube without a clean reference (Indian Pines): the cells,
their scores, which cells are left out, and the report's real-data table and figure."""
from __future__ import annotations

import json
import os

from bench import registry as R
from bench.cli import main
from bench.grid import build_cells
from bench.runner import RunOptions, run_grid
from bench.store import Store

R.load_all()


def test_indian_pines_cells_are_scored_without_a_reference_and_reported(tmp_path):
    cells = build_cells("hsi", ["indian_pines[size=32]"], ["hsi_real"], ["noisy", "box_filter[size=3]"], ["cpu"],
                        seed=0)
    store = Store(str(tmp_path / "r.sqlite"))
    summary = run_grid(cells, store, RunOptions(repeat=1), progress=False)
    assert summary.failed == 0 and summary.done == 2
    frame = store.frame("hsi")
    rows = {r["method_label"]: r for _, r in frame.iterrows()}
    noisy, box = rows["noisy"], rows["box_filter"]
    assert set(noisy["metrics"]) == {"nr_sigma", "nr_removed", "svm_oa", "svm_aa", "svm_kappa"}
    assert noisy["metrics"]["nr_removed"] == 0.0
    assert len(noisy["extras"]["per_seed"]["svm_oa"]) == 5 and noisy["extras"]["sigma_source"] == "estimated"
    # smoothing lowers the residual-noise index and, on this crop, lifts the accuracy
    assert box["metrics"]["nr_sigma"] < noisy["metrics"]["nr_sigma"]
    assert box["metrics"]["svm_oa"] > noisy["metrics"]["svm_oa"]
    assert R.SUITES["hsi"].check_values(box)["svm_kappa"] == box["metrics"]["svm_kappa"]
    out = str(tmp_path / "rep")
    assert main(["report", "--suite", "hsi", "--results", store.path, "--out", out]) == 0
    files = set(os.listdir(out))
    assert {"hsi_real_indian_pines_size_32.md", "hsi_real_indian_pines_size_32_false_colour.png"} <= files
    assert not any(f.startswith("hsi_table_") for f in files)     # no reference-metric table for a real cube
    md = open(os.path.join(out, "hsi_real_indian_pines_size_32.md")).read()
    assert "RBF SVM on 10 % of each class's labelled pixels" in md          # the protocol, in the caption
    notes = json.load(open(os.path.join(out, "hsi_real_indian_pines_size_32.json")))["notes"]
    assert "10% of the labelled pixels of each class" in notes               # its details, in the sidecar
    line = next(l for l in md.splitlines() if l.startswith("| Mean filter"))
    assert f"**{box['metrics']['svm_oa']:.1f}**" in line


def test_real_cubes_run_only_under_hsi_real_and_hsi_real_only_on_them():
    suite = R.SUITES["hsi"]
    cells = build_cells("hsi", ["indian_pines[size=32]", "hsi_synthetic[n_cubes=1,size=16]"],
                        ["hsi_real", "hsi_gaussian[sigma=30]"], ["noisy", "box_filter"], ["cpu"], seed=0)
    kept = {(c.dataset, c.degradation, c.method) for c in cells if not suite.skip_reason(c)}
    assert kept == {("indian_pines", "hsi_real", "noisy"), ("indian_pines", "hsi_real", "box_filter"),
                    ("hsi_synthetic", "hsi_gaussian", "noisy")}
    reasons = {suite.skip_reason(c) for c in cells} - {None}
    assert any("runs under hsi_real only" in r for r in reasons)
    assert any("adds no noise" in r for r in reasons)


def test_networks_trained_on_the_simulated_indian_pines_are_not_scored_on_the_real_one():
    """The training split's simu_indian is the same AVIRIS scene: trained-here rows are left out
    on indian_pines with the line naming it; the published rows and the classical ones run."""
    from bench.grid import build_cells
    suite = R.SUITES["hsi"]
    cells = build_cells("hsi", ["indian_pines"], ["hsi_real"],
                        ["star_net[checkpoint=shipped:star_net_cpu]", "smds_net", "ngmeet"], ["cpu"], 0)
    why = {c.method_label(): suite.skip_reason(c) for c in cells}
    assert "trained on simu_indian" in why["star_net[checkpoint=shipped:star_net_cpu]"]
    assert why["smds_net"] is None and why["ngmeet"] is None

