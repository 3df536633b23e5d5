"""The cs suite end to end on its smoke grid (synthetic images, generated matrix; no
download): the task measures every block with Phi, the rows carry per-image values and
the matrix, the report writes its tables and figures, and published cells are left out
where the authors' matrices do not apply."""
from __future__ import annotations

import json
import os

import pytest
import torch

from bench import registry as R
from bench.datasets.cs import CsSynthetic, MeasurementNoise
from bench.grid import build_cells
from bench.operators import BlockCSOperator
from bench.runner import RunOptions, run_grid
from bench.store import Store

R.load_all()
pytestmark = pytest.mark.usefixtures("one_thread")
SUITE = R.SUITES["cs"]


def test_the_task_measures_every_block_and_adds_the_noise():
    data = CsSynthetic(n_images=2, size=40, ratio=10).load()
    clean = SUITE.make_task(data, MeasurementNoise(), 0, "cpu")
    phi = data.matrix.phi.float()
    for y, im in zip(clean.inputs.measurements, data.images):
        assert y.dtype == torch.float32 and y.shape == (4, 109)
        assert torch.equal(y, BlockCSOperator(phi, im.shape).forward(im.float()))
    noisy = SUITE.make_task(data, MeasurementNoise(sigma=5.0), 0, "cpu")
    diff = torch.cat(noisy.inputs.measurements) - torch.cat(clean.inputs.measurements)
    assert abs(float(diff.std()) * 255 / 5 - 1) < 0.15 and noisy.inputs.sigma == pytest.approx(5 / 255)
    assert noisy.problem.ratio == 10 and noisy.problem.matrix_kind == "generated"


def test_outputs_of_the_wrong_shape_or_not_finite_are_refused():
    task, _ = SUITE.tiny_task("tv_admm", "cpu", 0)
    good = tuple(torch.zeros(s) for s in task.inputs.shapes)
    SUITE.validate_output(task, good)
    with pytest.raises(ValueError, match="tuple of 2"):
        SUITE.validate_output(task, good[:1])
    with pytest.raises(ValueError, match="non-finite"):
        SUITE.validate_output(task, (good[0], good[1] * float("nan")))
    with pytest.raises(ValueError, match="shape"):
        SUITE.validate_output(task, (good[0], torch.zeros(3, 3)))


def test_published_cells_are_left_out_where_the_authors_matrices_do_not_apply():
    cells = build_cells("cs", ["cs_synthetic", "set11[ratio=[10,50]]"], ["measurement_noise"],
                        ["ista_net", "ista_net[checkpoint=none]", "ista_net_plus[checkpoint=published:ratio_10]",
                         "tv_admm"], ["cpu"], 0)
    reasons = {(c.dataset_label(), c.method_label()): SUITE.skip_reason(c) for c in cells}
    assert "generated matrix" in reasons[("cs_synthetic", "ista_net")]
    assert "generated matrix" in reasons[("set11[ratio=50]", "ista_net")]
    assert "left out at 50 %" in reasons[("set11[ratio=50]", "ista_net_plus[checkpoint=published:ratio_10]")] \
        or "generated matrix" in reasons[("set11[ratio=50]", "ista_net_plus[checkpoint=published:ratio_10]")]
    assert reasons[("cs_synthetic", "tv_admm")] is None
    missing = build_cells("cs", ["set11[ratio=10]"], ["measurement_noise"], ["ista_net[checkpoint=nowhere/n.npz]"],
                          ["cpu"], 0)
    assert "python -m bench train --suite cs --method ista_net" in SUITE.skip_reason(missing[0])
    assert reasons[("cs_synthetic", "ista_net[checkpoint=None]")] is None


def test_smoke_grid_runs_stores_and_reports(tmp_path):
    spec = SUITE.smoke
    cells = build_cells("cs", spec.datasets, spec.degradations, spec.methods, ["cpu"], 0)
    store = Store(str(tmp_path / "r.sqlite"))
    summary = run_grid(cells, store, RunOptions(repeat=1, warmup=False), progress=False)
    assert summary.failed == 0 and summary.done == len(cells) == 14
    frame = store.frame("cs")
    row = frame[(frame["method_label"] == "tv_admm[n_iter=30]") & (frame["degradation"] == "measurement_noise")].iloc[0]
    ex = row["extras"]
    assert ex["ratio"] == 25 and ex["matrix"] == "generated(seed=0)" and len(ex["per_image"]["psnr_cs"]) == 2
    assert row["metrics"]["psnr_cs"] == pytest.approx(sum(ex["per_image"]["psnr_cs"]) / 2)
    # a classical reconstruction beats the untrained network and x0 = Qinit y
    by = {r["method_label"]: r["metrics"]["psnr_cs"] for _, r in frame[frame["degradation"] == "measurement_noise"].iterrows()}
    assert by["tv_admm[n_iter=30]"] > by["ista_net[checkpoint=None]"] + 5
    paths = SUITE.report(frame, str(tmp_path / "reports"), {})
    names = {os.path.basename(p) for p in paths}
    stem = "cs_synthetic_n_images_2_size_64"          # the image set: the dataset selector less the ratio
    assert {f"cs_ratio_{stem}.md", f"cs_noise_{stem}.md", f"cs_visual_{stem}.png", f"cs_per_image_{stem}_25.md"} <= names
    text = open(tmp_path / "reports" / f"cs_ratio_{stem}.md").read()
    notes = json.load(open(tmp_path / "reports" / f"cs_ratio_{stem}.json"))["notes"]  # beside the table
    assert "ISTA-Net" in text and "**" in text and "Protocol ista_net" in notes and "train400" in notes
    store.close()


def test_the_caption_names_each_ratios_own_training_of_a_trained_row():
    """checkpoint=shipped reads one file per ratio: the caption gives each ratio's minutes,
    not the recipe and time of whichever row came last."""
    import pandas as pd

    from bench.suites.cs_report import _learned_note

    def row(ratio, seconds):
        return {"family": "learned", "method_label": "ista_net[checkpoint=shipped]", "ratio": ratio,
                "extras": {"weights": {"source": "file"},
                           "training": {"recipe": f"cpu+ratio={ratio}", "steps": 400, "seconds": seconds, "threads": 1}}}

    note = _learned_note(pd.DataFrame([row(10, 600.0), row(50, 1800.0)]))
    assert "10 %: 10" in note and "50 %: 30" in note and "ratio=50" not in note
    assert note.count("ista_net[checkpoint=shipped]") == 1
