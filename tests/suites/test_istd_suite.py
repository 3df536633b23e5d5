"""The istd suite end to end on tiny data: grid -> runner -> store -> report, the failure
of a corrupt dataset's cells only, and the recorded segmentation rule."""
from __future__ import annotations

import hashlib
import json
import os

import pytest
import torch

from bench import registry as R
from bench.grid import build_cells
from bench.runner import RunOptions, run_grid
from bench.store import Store
from tests.helpers import write_istd_folder

R.load_all()
SUITE = R.SUITES["istd"]
TINY = "istd_synthetic[n_images=3,min_size=64,max_size=72]"


# tiny problems: one torch thread (the shared fixture in tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


def test_grids_resolve_and_metrics_are_registered():
    from bench.suite import grid_parts
    grids = (SUITE.grid, SUITE.quick, SUITE.smoke, *SUITE.smoke_extra, *SUITE.extra_grids.values())
    for spec in (p for g in grids for p in grid_parts(g)):
        cells = build_cells("istd", spec.datasets, spec.degradations, spec.methods, ["cpu"], 0, spec.protocols)
        assert cells and {c.protocol for c in cells} == set(spec.protocols or ("basicirstd",))
    for m in SUITE.metrics:
        assert R.METRICS[m].suite == "istd" and R.METRICS[m].scope == "dataset"


def test_tiny_grid_runs_scores_and_reports(tmp_path):
    store = Store(str(tmp_path / "r.sqlite"))
    cells = build_cells("istd", [TINY], ["clean", "salt_pepper[density=0.05]"],
                        ["mpcm", "pstnn[max_iter=30]", "ipi[max_iter=30,segmentation=mean_std5]"], ["cpu"], 0)
    summary = run_grid(cells, store, RunOptions(repeat=1, warmup=False), progress=False)
    assert summary.failed == 0, summary.text()
    frame = store.frame("istd")
    assert len(frame) == 6
    for _, r in frame.iterrows():
        assert set(SUITE.metrics) <= set(r["metrics"])
        assert r["extras"]["segmentation"] == r["method_params"]["segmentation"]
        assert set(r["extras"]["by_rule"]) >= {"max_norm", "minmax", "mean_std5"}
        assert len(r["extras"]["pd_fa_curve"]["pd"]) == len(r["extras"]["pd_fa_curve"]["thresholds"])
    ipi = frame[frame["method"] == "ipi"].iloc[0]
    assert ipi["extras"]["by_rule"]["mean_std5"]["iou"] == pytest.approx(ipi["metrics"]["iou"])
    paths = SUITE.report(frame, str(tmp_path / "out"), {})
    names = {os.path.basename(p) for p in paths}
    for stem in ("istd_main", "istd_runtime", "istd_rules"):
        assert f"{stem}.tex" in names and f"{stem}.md" in names
    assert "istd_pd_fa.png" in names and "istd_visual.png" in names
    main = open(tmp_path / "out" / "istd_main.md").read()
    notes = json.load(open(tmp_path / "out" / "istd_main.json"))["notes"]  # the sidecar: what the caption leaves out
    assert "BasicIRSTD" in main and "max_norm" in notes and "mean_std5" in notes
    assert "GPU" not in main  # nothing ran on a GPU: the column is left out


def test_make_task_is_seeded_per_cell():
    data = R.DATASETS["istd_synthetic"](n_images=2, min_size=64, max_size=72).load(None)
    deg = R.DEGRADATIONS["gaussian_noise"](sigma=10.0)
    a = SUITE.make_task(data, deg, 11, "cpu")
    b = SUITE.make_task(data, deg, 11, "cpu")
    c = SUITE.make_task(data, deg, 12, "cpu")
    assert all(torch.equal(x, y) for x, y in zip(a.inputs.images, b.inputs.images))
    assert not torch.equal(a.inputs.images[0], c.inputs.images[0])
    assert a.n_samples == 2 and a.reference[0].dtype == torch.bool


def test_validate_output_rejects_bad_maps():
    from bench.methods.istd.common import TargetMaps
    task, _ = SUITE.tiny_task("mpcm", "cpu", 0)
    good = [torch.zeros(r.shape) for r in task.reference]
    SUITE.validate_output(task, TargetMaps(tuple(good)))
    with pytest.raises(ValueError, match="maps for"):
        SUITE.validate_output(task, TargetMaps(tuple(good[:1])))
    bad = [g.clone() for g in good]; bad[1][0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        SUITE.validate_output(task, TargetMaps(tuple(bad)))
    with pytest.raises(ValueError, match="shape"):
        SUITE.validate_output(task, TargetMaps((torch.zeros(3, 3), good[1])))


def test_corrupt_file_fails_only_that_datasets_cells(tmp_path):
    write_istd_folder(tmp_path, "toy", n=2, size=64)
    base = tmp_path / "istd" / "toy"
    lines = [f"{hashlib.sha256(open(p, 'rb').read()).hexdigest()}  ./{os.path.relpath(p, tmp_path)}"
             for p in sorted(base.rglob("*.png"))]
    (tmp_path / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    with open(base / "images" / "1.png", "ab") as f:
        f.write(b"garbage")
    store = Store(str(tmp_path / "r.sqlite"))
    cells = build_cells("istd", ["istd_folder[path=istd/toy]", TINY], ["clean"], ["mpcm"], ["cpu"], 0)
    summary = run_grid(cells, store, RunOptions(data_root=str(tmp_path), repeat=1, warmup=False), progress=False)
    assert summary.failed == 1 and summary.done == 1
    failed = store.frame("istd", status="failed").iloc[0]
    assert "DataError" in failed["error"] and "1.png" in failed["error"] and "checksum" in failed["error"]


def _untrained_checkpoint(path, method="l_rpcanet", recipe="test", **knobs):
    """A checkpoint of an untrained network (what the tests need: a loadable file)."""
    from bench.methods.istd import learned as L
    from bench.checkpoints import save_checkpoint
    cfg = L.net_config(method, **knobs)
    net = L.build(cfg, seed=0)
    save_checkpoint(str(path), net.state_dict(),
                    {"method": method, "config": L.config_dict(cfg), "seed": 0, "recipe": {"name": recipe},
                     "training": {"steps": 0, "seconds": 1.0}, "how_to_reproduce": "test"},
                    reference=L.build(cfg, seed=0).state_dict())
    return str(path)


def test_learned_rows_and_ablation_tables(tmp_path):
    main = _untrained_checkpoint(tmp_path / "main.npz", stages=1)
    k1 = _untrained_checkpoint(tmp_path / "l_rpcanet_ablation_stages1.npz", "l_rpcanet", "ablation+stages=1", stages=1)
    k2 = _untrained_checkpoint(tmp_path / "l_rpcanet_ablation_stages2.npz", "l_rpcanet", "ablation+stages=2", stages=2)
    k6 = _untrained_checkpoint(tmp_path / "l_rpcanet_ablation_stages6.npz", "l_rpcanet", "ablation+stages=6", stages=6)
    none = _untrained_checkpoint(tmp_path / "l_rpcanet_ablation_se-none.npz", "l_rpcanet", "ablation+se=none", se="none")
    store = Store(str(tmp_path / "r.sqlite"))
    methods = ["mpcm", f"l_rpcanet[checkpoint={main}]",
               "l_rpcanet[checkpoint=[" + ",".join((k1, k2, k6, none)) + "]]"]
    cells = build_cells("istd", [TINY], ["clean"], methods, ["cpu"], 0)
    summary = run_grid(cells, store, RunOptions(repeat=1), progress=False)
    assert summary.failed == 0, summary.text()
    frame = store.frame("istd")
    learned = frame[frame["family"] == "learned"]
    assert set(learned["parameter_count"]) == {475_188 // 6, 2 * 475_188 // 6, 475_188, 475_188 - 6 * 4 * 162}
    assert all(r["extras"]["segmentation"] == "prob" for _, r in learned.iterrows())
    assert all(r["extras"]["pd_fa_curve"]["normalised"] is False for _, r in learned.iterrows())
    paths = SUITE.report(frame, str(tmp_path / "out"), {})
    names = {os.path.basename(p) for p in paths}
    stem = "istd_synthetic_max_size_72_min_size_64_n_images_3"
    assert f"istd_ablation_stages_{stem}.md" in names and f"istd_ablation_se_{stem}.md" in names
    ks = open(tmp_path / "out" / f"istd_ablation_stages_{stem}.md").read()
    ks_notes = json.load(open(tmp_path / "out" / f"istd_ablation_stages_{stem}.json"))["notes"]
    assert "79,198" in ks and "158,396" in ks and "475,188" in ks and "300 Adam steps" in ks_notes
    se = open(tmp_path / "out" / f"istd_ablation_se_{stem}.md").read()
    assert "none" in se and "B+T+N+D" in se
    main_md = open(tmp_path / "out" / "istd_main.md").read()
    assert "79,198" in main_md and "_ablation_" not in main_md  # ablation rows stay out of the main table

    # rows fine-tuned from published weights (ablation_finetune): the file they started from,
    # as released, heads both tables; the caption names the start and the recipe
    from bench.suites.istd_ablation import ablation_tables
    abl = frame[frame["method_label"].str.contains("_ablation_")].copy()
    abl["extras"] = [{**e, "training": {**e["training"], "recipe": "ablation_finetune+stages=1 from published:x",
                                        "init": "published:x"}} for e in abl["extras"]]
    ref = frame[frame["method_label"] == f"l_rpcanet[checkpoint={main}]"].copy()
    ref["extras"] = [{**e, "weights": {"source": "published", "name": "x"}} for e in ref["extras"]]
    ablation_tables(abl, str(tmp_path / "ft"), ref)
    ks = open(tmp_path / "ft" / f"istd_ablation_stages_{stem}.md").read()
    ks_notes = json.load(open(tmp_path / "ft" / f"istd_ablation_stages_{stem}.json"))["notes"]
    se = open(tmp_path / "ft" / f"istd_ablation_se_{stem}.md").read()
    assert "6, the authors' file as released" in ks and "all, the authors' file as released" in se
    assert "fine-tuned from the authors' file published:x" in ks_notes and "100 Adam steps" in ks_notes
    # another file, or none in the store: no such row, the rest as before
    ablation_tables(abl, str(tmp_path / "ft2"), ref.assign(extras=[{**e, "weights": {"source": "published", "name": "y"}}
                                                                  for e in ref["extras"]]))
    ks2 = open(tmp_path / "ft2" / f"istd_ablation_stages_{stem}.md").read()
    assert "authors' file" not in ks2 and "158,396" in ks2
    # a row trained from scratch beside fine-tuned ones (a network of more stages than the
    # file's): labelled so in the K table, kept out of the SE table, its own recipe named
    mixed = frame[frame["method_label"].str.contains("_ablation_")].copy()
    mixed["extras"] = [e if "stages6" in e["checkpoint"] else
                       {**e, "training": {**e["training"], "recipe": "ablation_finetune+x from published:x",
                                          "init": "published:x"}} for e in mixed["extras"]]
    ablation_tables(mixed, str(tmp_path / "mixed"), ref)
    ks3 = open(tmp_path / "mixed" / f"istd_ablation_stages_{stem}.md").read()
    notes3 = json.load(open(tmp_path / "mixed" / f"istd_ablation_stages_{stem}.json"))["notes"]
    se3 = open(tmp_path / "mixed" / f"istd_ablation_se_{stem}.md").read()
    assert "| 6, from scratch " in ks3 and "| 6 " not in ks3.replace("| 6, ", "")
    assert ks3.index("| 6, the authors' file") < ks3.index("| 2 ") < ks3.index("| 6, from scratch ")
    assert "Rows marked from scratch (K = 6)" in notes3 and "300 Adam steps" in notes3 and "100 Adam steps" in notes3
    assert "B+T+N+D" not in se3.replace("all, the authors' file as released", "") and "none" in se3


def test_missing_learned_checkpoints_are_skipped_with_the_command_that_makes_them(tmp_path):
    cells = build_cells("istd", [TINY], ["clean"],
                        [f"l_rpcanet[checkpoint={tmp_path}/l_rpcanet_ablation_stages3.npz]",
                         f"l_rpcanet[checkpoint={tmp_path}/l_rpcanet_ablation_se-background+target.npz]",
                         "mpcm", f"l_rpcanet[checkpoint={tmp_path}/l_rpcanet_sirst_from_nudt_sirst.npz]",
                         f"l_rpcanet[checkpoint={tmp_path}/l_rpcanet_nudt_sirst_ablation_se-none_from_nudt_sirst.npz]"],
                        ["cpu"], 0)
    reasons = [SUITE.skip_reason(c) for c in cells]
    assert ("--dataset nudt_sirst --recipe ablation_finetune --set se=none --init published:nudt_sirst"
            in reasons[4]), reasons[4]
    assert "--recipe ablation --set stages=3" in reasons[0]
    assert "--set se=background+target" in reasons[1]
    assert reasons[2] is None
    assert "--recipe finetune --init published:nudt_sirst" in reasons[3]
    made = _untrained_checkpoint(tmp_path / "l_rpcanet_ablation_stages3.npz", stages=3)
    assert SUITE.skip_reason(build_cells("istd", [TINY], ["clean"], [f"l_rpcanet[checkpoint={made}]"],
                                         ["cpu"], 0)[0]) is None


def test_bn_diagnostic_rows_get_their_own_table_and_stay_out_of_the_main_one(tmp_path):
    main = _untrained_checkpoint(tmp_path / "main.npz", stages=1)
    other = _untrained_checkpoint(tmp_path / "other.npz", stages=2)
    store = Store(str(tmp_path / "r.sqlite"))
    # two rows of one method with different checkpoints: the table keeps both (one per label)
    methods = ["mpcm", f"l_rpcanet[checkpoint={main}]", f"l_rpcanet[checkpoint={main},bn=image]",
               f"l_rpcanet[checkpoint={other}]"]
    summary = run_grid(build_cells("istd", [TINY], ["clean"], methods, ["cpu"], 0), store,
                       RunOptions(repeat=1), progress=False)
    assert summary.failed == 0, summary.text()
    frame = store.frame("istd")
    paths = SUITE.report(frame, str(tmp_path / "out"), {})
    stem = "istd_synthetic_max_size_72_min_size_64_n_images_3"
    assert f"istd_bn_{stem}.md" in {os.path.basename(p) for p in paths}
    bn = open(tmp_path / "out" / f"istd_bn_{stem}.md").read()
    assert "running (stored)" in bn and "this image" in bn and "Diagnostic" in bn
    assert "main.npz" in bn and "other.npz" in bn
    main_md = open(tmp_path / "out" / "istd_main.md").read()
    assert "bn=image" not in main_md and "L-RPCANet" in main_md
    assert "bn" in SUITE.extra_grids and "l_rpcanet[bn=image]" in SUITE.extra_grids["bn"].methods


def test_time_per_image_is_read_on_the_full_sirst_split_whatever_the_row_order():
    import pandas as pd

    from bench.suites.istd_report import _ms_per_image
    rows = [("istd_synthetic", 1.0, 10), ("sirst", 86.0, 86), ("sirst[limit=20]", 40.0, 20)]
    for order in (rows, rows[::-1], [rows[2], rows[0], rows[1]]):
        frame = pd.DataFrame([{"dataset": d, "method_label": "m", "device": "cpu", "time_s": t, "n_samples": n}
                              for d, t, n in order])
        assert _ms_per_image(frame) == {("m", "cpu"): 1000.0}
        # without the full split: the other SIRST selection before another dataset
        assert _ms_per_image(frame[frame["dataset"] != "sirst"]) == {("m", "cpu"): 2000.0}


def test_pd_fa_legend_says_why_an_area_is_zero():
    from bench.suites.istd_figures import curve_label
    assert curve_label("ipi", 88.84, [5.0, 20.0, 300.0]) == "ipi (AUC 88.8)"
    assert curve_label("l_rpcanet", 0.0, [900.0, 446.09]) == "l_rpcanet (AUC 0: Fa >= 446 at every threshold)"


# --------------------------------------------------------------------------- training data
def test_positive_crops_contain_a_target():
    from bench.suites.istd import random_crop
    img = torch.rand(50, 70)
    mask = torch.zeros(50, 70)
    mask[40, 65] = 1
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        x, m = random_crop(img, mask, torch.nonzero(mask), 16, 1.0, g)
        assert x.shape == (16, 16) and m.sum() == 1
    x, m = random_crop(torch.rand(10, 12), torch.zeros(10, 12), torch.zeros(0, 2, dtype=torch.long), 16, 0.5, g)
    assert x.shape == (16, 16)  # padded


def test_training_data_never_hands_out_the_test_subset(data_root):
    from bench.errors import BenchError
    with pytest.raises(BenchError, match="train and val subsets only"):
        SUITE.training_data("sirst", "test", data_root)
    with pytest.raises(BenchError, match="subset='val' is not allowed"):  # the synthetic set has no val subset
        SUITE.training_data("istd_synthetic", "val", data_root)
    with pytest.raises(BenchError, match="not a dataset of the istd suite"):
        SUITE.training_data("gaussian_lasso", "train", data_root)
    train = SUITE.training_data(None, "train", data_root)
    val = SUITE.training_data(None, "val", data_root)
    test = R.DATASETS["sirst"](subset="test").load(data_root)
    assert train.dataset == "sirst" and train.split == "train" and val.split == "val"
    assert len({train.problem_id, val.problem_id, test.instance_id}) == 3
    assert not set(train.samples.names) & set(test.names) and not set(val.samples.names) & set(test.names)


def test_training_batches_are_drawn_from_the_generator_only(data_root):
    train = SUITE.training_data(None, "train", data_root)
    draw = lambda: SUITE.training_batch(train, 4, torch.Generator().manual_seed(5), crop=32,  # noqa: E731
                                        positive_fraction=1.0)
    (x1, m1), (x2, m2) = draw(), draw()
    assert x1.shape == m1.shape == (4, 1, 32, 32)
    assert torch.equal(x1, x2) and torch.equal(m1, m2)
    assert 0.0 <= float(x1.min()) and float(x1.max()) <= 1.0
    assert (m1.flatten(1).sum(1) > 0).all()  # positive_fraction=1: every crop holds a target pixel
    val = SUITE.validation_task(SUITE.training_data(None, "val", data_root), 0, limit=3)
    assert val.n_samples == 3 and len(val.inputs.images) == len(val.reference) == 3


def test_cross_dataset_rows_get_their_own_table_and_the_main_table_names_each_row_s_weights(
        tmp_path, data_root, weights_root, monkeypatch):
    """Published weights of another training set (``published:nudt_sirst``) on SIRST go to
    ``istd_cross_dataset`` (with what they were trained on and the authors' figure in the
    caption) and stay out of the main table, whose ``weights`` column says, per row, published
    (and on what) / trained here (recipe, steps) / – (classical)."""
    if not os.path.isdir(os.path.join(data_root, "istd", "sirst-v1")):
        pytest.skip(f"SIRST not found under {data_root}")
    monkeypatch.setenv("BENCH_WEIGHTS", weights_root)
    own = _untrained_checkpoint(tmp_path / "own.npz", stages=1)
    store = Store(str(tmp_path / "r.sqlite"))
    methods = ["mpcm", f"l_rpcanet[checkpoint={own}]", "rpcanet[checkpoint=published:sirst]",
               "rpcanet[checkpoint=published:nudt_sirst]"]
    summary = run_grid(build_cells("istd", ["sirst[limit=1]"], ["clean"], methods, ["cpu"], 0), store,
                       RunOptions(data_root=data_root, repeat=1, warmup=False), progress=False)
    assert summary.failed == 0, summary.text()
    paths = SUITE.report(store.frame("istd"), str(tmp_path / "out"), {})
    assert "istd_cross_dataset_sirst_limit_1.md" in {os.path.basename(p) for p in paths}
    cross = open(tmp_path / "out" / "istd_cross_dataset_sirst_limit_1.md").read()
    assert "| RPCANet†" in cross and "NUDT-SIRST" in cross
    side = json.load(open(tmp_path / "out" / "istd_cross_dataset_sirst_limit_1.json"))
    assert "iou 89.31" in side["notes"]  # the authors' figure on their own test set, in the sidecar only
    assert "rpcanet[checkpoint=published:nudt_sirst]" in side["rows"]
    assert "published:sirst]" not in cross
    main = open(tmp_path / "out" / "istd_main.md").read()
    assert "nudt_sirst" not in main.split("\n", 1)[1]  # the table, not the caption
    lines = {ln.split("|")[1].strip(): ln for ln in main.splitlines() if ln.startswith("| ")}
    assert "MPCM" in lines and "RPCANet†" in lines  # the mark: the authors' published weights
    legend = main.rstrip().splitlines()[-1]
    assert legend.startswith("†") and "trained on SIRST v1" in legend


def test_the_main_table_reads_each_data_set_with_its_own_published_weights(tmp_path, data_root, weights_root,
                                                                          monkeypatch):
    """As the papers' main tables: one "RPCANet†" row whose SIRST columns come from
    ``published:sirst`` and NUDT-SIRST columns from ``published:nudt_sirst`` (the sidecar lists
    both files); the SIRST file tested on NUDT-SIRST is a cross-dataset row, not in the main table."""
    for sub in ("sirst-v1", "NUDT-SIRST"):
        if not os.path.isdir(os.path.join(data_root, "istd", sub)):
            pytest.skip(f"{sub} not found under {data_root}")
    monkeypatch.setenv("BENCH_WEIGHTS", weights_root)
    store = Store(str(tmp_path / "r.sqlite"))
    own = _untrained_checkpoint(tmp_path / "own.npz", stages=1)   # trained here (on SIRST, as shipped)
    cells = (build_cells("istd", ["sirst[limit=1]"], ["clean"], ["mpcm", "rpcanet[checkpoint=published:sirst]"],
                         ["cpu"], 0)
             + build_cells("istd", ["nudt_sirst[limit=1]"], ["clean"],
                           ["mpcm", "rpcanet[checkpoint=[published:nudt_sirst,published:sirst]]",
                            f"l_rpcanet[checkpoint={own}]"], ["cpu"], 0))
    summary = run_grid(cells, store, RunOptions(data_root=data_root, repeat=1, warmup=False), progress=False)
    assert summary.failed == 0, summary.text()
    SUITE.report(store.frame("istd"), str(tmp_path / "out"), {})
    main = open(tmp_path / "out" / "istd_main.md").read()
    rows = [ln.split("|") for ln in main.splitlines() if ln.startswith("| ")]
    header, body = rows[0], {r[1].strip(): r for r in rows[2:]}
    assert [k for k in body if k.startswith("RPCANet")] == ["RPCANet†"]
    cols = {h.strip(): i for i, h in enumerate(header)}
    merged = body["RPCANet†"]
    assert merged[cols["SIRST (limit 1) mIoU"]].strip() != "–"
    assert merged[cols["NUDT-SIRST (limit 1) mIoU"]].strip() != "–"
    side = json.load(open(tmp_path / "out" / "istd_main.json"))
    files = side["rows"]["rpcanet[checkpoint=published]"]["weights"]
    assert sorted(w["name"] for w in files) == ["nudt_sirst", "sirst"]
    cross = open(tmp_path / "out" / "istd_cross_dataset_nudt_sirst_limit_1.md").read()
    assert "NUDT-SIRST (limit 1) mIoU" in cross and "RPCANet†" in cross
    rows = json.load(open(tmp_path / "out" / "istd_cross_dataset_nudt_sirst_limit_1.json"))["rows"]
    assert "rpcanet[checkpoint=published:sirst]" in rows
    # a network trained here on SIRST is a cross-dataset row on NUDT-SIRST too, named as such
    assert f"l_rpcanet[checkpoint={own}]" in rows
    trained = {ln.split("|")[1].strip(): ln.split("|")[2].strip() for ln in cross.splitlines() if ln.startswith("| ")}
    assert any(v.startswith("SIRST") and "here (test)" in v for v in trained.values()), trained
    # ... and leaves the main table's NUDT-SIRST columns to the rows of that set's own weights
    names = [ln.split("|")[1].strip() for ln in main.splitlines() if ln.startswith("| ")]
    assert "MPCM" in names and not [n for n in names if n.startswith("L-RPCANet")], names


def test_a_subset_of_a_set_present_in_full_feeds_only_its_robustness_table(tmp_path):
    """The robustness grid's nudt_sirst[limit=166] beside the main table's nudt_sirst: the
    subset's rows make its robustness table and stay out of the main table, the runtime and
    rules tables; a clean-only set gets no robustness table."""
    full = write_istd_folder(tmp_path, "toy", n=4, size=48)
    part = full.replace("]", ",limit=2]")
    store = Store(str(tmp_path / "r.sqlite"))
    cells = (build_cells("istd", [full], ["clean"], ["mpcm"], ["cpu"], 0, data_root=str(tmp_path))
             + build_cells("istd", [part], ["clean", "gaussian_noise[sigma=10]"], ["mpcm"], ["cpu"], 0,
                           data_root=str(tmp_path)))
    opts = RunOptions(data_root=str(tmp_path), repeat=1, warmup=False)
    assert run_grid(cells, store, opts, progress=False).failed == 0
    paths = {os.path.basename(p) for p in SUITE.report(store.frame("istd"), str(tmp_path / "out"), {})}
    robustness = [p for p in paths if p.startswith("istd_robustness_") and p.endswith(".md")]
    assert len(robustness) == 1 and "limit_2" in robustness[0], robustness
    for name in ("istd_main.md", "istd_runtime.md", "istd_rules.md"):
        text = open(tmp_path / "out" / name).read()
        assert "limit 2" not in text, name
    assert "toy) mIoU" in open(tmp_path / "out" / "istd_main.md").read()
