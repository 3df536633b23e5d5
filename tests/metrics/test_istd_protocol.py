"""The istd suite's scoring protocols on hand-made masks: each rule of the RPCANet authors'
test code (``rpcanet``: 0.5 x the map's own maximum, pooled IoU, any-overlap Pd, Fa over
background pixels, target-free images skipped for Pd and Fa, everything at 256x256) set
beside the default BasicIRSTD protocol where the two differ; the protocol as part of a
cell's key, of its stored row and of every caption; and the command line's refusals."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import numpy as np
import pytest
import torch

from bench import registry as R
from bench.cli import main
from bench.datasets.istd import IstdData
from bench.grid import Cell, build_cells
from bench.methods.istd.common import TargetMaps
from bench.metrics.istd import (PROTOCOLS, match_any_overlap, match_targets, resize_image, resize_map, resize_mask,
                                score_masks)
from bench.store import Store, dumps

R.load_all()
SUITE = R.SUITES["istd"]
S = 256  # the rpcanet protocol's size: hand-made data of that size is not resized
pytestmark = pytest.mark.usefixtures("one_thread")


def _task(masks, protocol, images=None):
    """A task of the suite from hand-made masks (bool arrays), clean images of zeros."""
    masks = tuple(torch.from_numpy(np.asarray(m, dtype=bool)) for m in masks)
    images = images or tuple(torch.zeros(m.shape, dtype=torch.float32) for m in masks)
    data = IstdData(tuple(f"img{i}" for i in range(len(masks))), tuple(images), masks, source="hand-made",
                    instance_id="hand")
    return SUITE.make_task(data, R.DEGRADATIONS["clean"](), 0, "cpu", protocol=protocol)


def _score(masks, maps, protocol, rule="prob"):
    task = _task(masks, protocol)
    out = TargetMaps(tuple(torch.as_tensor(np.asarray(m, dtype=np.float64)) for m in maps), rule)
    SUITE.validate_output(task, out)
    return SUITE.score(task, out)


def _blank(n=S):
    return np.zeros((n, n))


# --------------------------------------------------------------------------- threshold
def test_a_pixel_is_positive_above_half_of_its_own_maps_maximum_not_above_an_absolute_half():
    truth = _blank().astype(bool)
    truth[100:103, 100:103] = True
    prob = _blank() + 0.05
    prob[100:103, 100:103] = 0.4   # a faint network: below 0.5, above 0.5 x its maximum 0.4
    prob[0, 0] = 0.19              # below 0.2 = 0.5 x 0.4: background
    ours, extras = _score([truth], [prob], "rpcanet")
    assert ours["iou"] == 100.0 and ours["pd"] == 100.0 and ours["fa"] == 0.0
    assert extras.segmentation == "max_norm" and extras.protocol == "rpcanet"
    basic, extras = _score([truth], [prob], "basicirstd")  # the absolute 0.5 marks nothing
    assert basic["iou"] == 0.0 and basic["pd"] == 0.0 and extras.segmentation == "prob"
    prob[0, 0] = 0.21  # above 0.5 x the maximum: one false pixel
    ours, _ = _score([truth], [prob], "rpcanet")
    assert ours["iou"] == pytest.approx(100 * 9 / 10) and ours["fa"] == pytest.approx(1e6 / (S * S - 9))


def test_classical_maps_keep_the_cells_rule_which_by_default_is_the_same_threshold():
    truth = _blank().astype(bool)
    truth[10:12, 10:12] = True
    m = _blank() - 3.0             # IPI-like: negative background
    m[10:12, 10:12] = 8.0
    m[50, 50] = 4.5                # above 0.5 x 8
    ours, extras = _score([truth], [m], "rpcanet", rule="max_norm")
    assert extras.segmentation == "max_norm" and ours["fa"] == pytest.approx(1e6 / (S * S - 4))
    strict, extras = _score([truth], [m], "rpcanet", rule="mean_std10")
    assert extras.segmentation == "mean_std10"


# --------------------------------------------------------------------------- IoU
def test_iou_is_pooled_over_the_set_not_averaged_over_images():
    a, b = _blank().astype(bool), _blank().astype(bool)
    a[5, 5] = True
    b[9, 9] = True
    pa, pb = _blank(), _blank()
    pa[5, 5] = 1.0                                 # TP 1
    pb[9, 9] = 1.0
    pb[30, 30:33] = 1.0                            # TP 1, FP 3
    got, _ = _score([a, b], [pa, pb], "rpcanet")
    assert got["iou"] == pytest.approx(100 * 2 / (2 + 3))          # total TP / (TP + FP + FN)
    assert got["niou"] == pytest.approx(100 * (1 + 1 / 4) / 2)     # the per-image mean differs
    assert got["precision"] == pytest.approx(40.0) and got["recall"] == 100.0
    assert got["f1"] == pytest.approx(100 * 2 * 0.4 / 1.4)


# --------------------------------------------------------------------------- Pd
def test_a_prediction_touching_one_pixel_of_a_target_detects_it():
    truth = _blank().astype(bool)
    truth[100:105, 100:105] = True                 # centroid (102, 102)
    pred = _blank()
    pred[104, 104] = 1.0                           # one pixel of the target...
    pred[105:115, 104:115] = 1.0                   # ...joined to a large blob outside: centroid far away
    ours, _ = _score([truth], [pred], "rpcanet")
    basic, _ = _score([truth], [pred], "basicirstd")
    assert ours["pd"] == 100.0                     # any overlap
    assert basic["pd"] == 0.0                      # BasicIRSTD: centroid distance >= 3
    p, g = pred > 0.5, truth
    assert match_any_overlap(p, g)[:2] == (1, 1) and match_targets(p, g)[:2] == (1, 0)


def test_targets_are_8_connected_components_each_detected_once():
    truth = _blank(16).astype(bool)
    truth[2, 2] = truth[3, 3] = True               # diagonal neighbours: one target
    truth[10, 10] = True                           # a second target
    pred = np.zeros((16, 16), dtype=bool)
    pred[2, 2] = pred[3, 3] = True                 # both pixels of the first target
    assert match_any_overlap(pred, truth)[:2] == (2, 1)


# --------------------------------------------------------------------------- Fa
def test_fa_divides_false_pixels_by_background_pixels_only():
    truth = np.zeros((10, 10), dtype=bool)
    truth[4:6, 4:6] = True                         # 4 target pixels, 96 background
    pred = truth.copy()
    pred[4, 6] = True                              # spills out of the target: a false pixel here...
    pred[0, 0] = pred[0, 1] = True                 # ...and a false component of 2 pixels
    assert match_any_overlap(pred, truth) == (1, 1, 3, 96)
    # BasicIRSTD counts only unmatched components' pixels, over all pixels
    assert match_targets(pred, truth) == (1, 1, 2, 100)
    got = score_masks([pred], [truth], match=match_any_overlap)
    assert got["fa"] == pytest.approx(1e6 * 3 / 96)


def test_images_without_targets_are_skipped_for_pd_and_fa_but_not_for_iou():
    truth = _blank().astype(bool)
    truth[20:22, 20:22] = True
    empty = _blank().astype(bool)
    pred = _blank()
    pred[20:22, 20:22] = 1.0
    pred[200, 200] = 1.0                           # one false pixel on the image with a target
    noisy = _blank() + 0.01
    noisy[60:70, 60:70] = 1.0                      # 100 false pixels on a target-free image
    alone, _ = _score([truth], [pred], "rpcanet")
    both, extras = _score([truth, empty], [pred, noisy], "rpcanet")
    assert both["pd"] == alone["pd"] == 100.0 and both["fa"] == alone["fa"] == pytest.approx(1e6 / (S * S - 4))
    assert both["iou"] == pytest.approx(100 * 4 / (4 + 1 + 100)) and alone["iou"] == pytest.approx(80.0)
    assert match_any_overlap(noisy > 0.5, empty) == (0, 0, 0, 0)
    assert extras.per_image.n_targets == [1, 0] and extras.per_image.false_pixels == [1, 0]
    basic, _ = _score([truth, empty], [pred, noisy], "basicirstd")  # BasicIRSTD counts that image
    assert basic["fa"] == pytest.approx(1e6 * 101 / (2 * S * S))


# --------------------------------------------------------------------------- 256x256
def test_images_are_resized_bilinear_to_8_bit_levels():
    img = torch.tensor([[0.0, 100.0], [200.0, 255.0]])
    # half-pixel centres, edges clamped: source coordinates -0.25, 0.25, 0.75, 1.25 -> 0, .25, .75, 1
    w = np.array([[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    expected = np.floor(w @ img.numpy().astype(np.float64) @ w.T + 0.5)
    got = resize_image(img, 4)
    assert got.dtype == torch.float32 and got.shape == (4, 4)
    np.testing.assert_array_equal(got.numpy(), expected)
    assert float(got[1, 1]) == 72.0  # 0.1875 * 100 + 0.1875 * 200 + 0.0625 * 255 = 72.1875
    # an exact half rounds up, as cv2's fixed-point rounding does (not to even): 0, 0.5, 1.5, 2
    half = resize_image(torch.tensor([[0.0, 2.0]]), 4)[0]
    np.testing.assert_array_equal(half.numpy(), [0, 1, 2, 2])
    up = resize_image(torch.tensor([[0.0, 3.0]]).repeat(2, 1), 4)[0]  # 0, 0.75, 2.25, 3
    np.testing.assert_array_equal(up.numpy(), [0, 1, 2, 3])
    assert resize_image(torch.tensor([[0.0, 5.0]]), 2)[0].tolist() == [0.0, 5.0]


def test_masks_are_resized_nearest_and_maps_bilinear_only_when_not_256():
    mask = torch.zeros(6, 6, dtype=torch.bool)
    mask[1, 3] = True
    small = resize_mask(mask, 4)                   # source rows/cols floor(i * 6 / 4): 0, 1, 3, 4
    assert small.dtype == torch.bool and small.nonzero().tolist() == [[1, 2]]
    big = resize_mask(mask[:3, :3] | torch.eye(3, dtype=torch.bool), 6)
    np.testing.assert_array_equal(big.numpy(), np.kron(np.eye(3), np.ones((2, 2))).astype(bool))
    m = torch.rand(S, S, dtype=torch.float64)
    assert resize_map(m, S) is m                   # a 256x256 map is scored as it is
    r = resize_map(torch.tensor([[0.0, 1.0]]), 4)
    assert r.shape == (4, 4) and r[0].tolist() == [0.0, 0.25, 0.75, 1.0]


def test_rpcanet_tasks_hand_methods_256x256_images_and_score_at_256():
    h, w = 60, 90
    truth = np.zeros((h, w), dtype=bool)
    truth[30:32, 45:47] = True
    img = torch.full((h, w), 10.0)
    img[30:32, 45:47] = 250.0
    data = IstdData(("a",), (img,), (torch.from_numpy(truth),), source="hand-made", instance_id="hand")
    data = dataclasses.replace(data, reference_times={"a": 5.0})
    task = SUITE.make_task(data, R.DEGRADATIONS["clean"](), 0, "cpu", protocol="rpcanet")
    assert task.inputs.images[0].shape == (S, S) and task.reference[0].shape == (S, S)
    assert torch.equal(task.inputs.images[0], task.inputs.images[0].round())
    assert task.problem.protocol == "rpcanet" and task.problem.authors_ipi_s_per_image is None
    assert torch.equal(task.reference[0], resize_mask(torch.from_numpy(truth), S))
    native = SUITE.make_task(data, R.DEGRADATIONS["clean"](), 0, "cpu")
    assert native.inputs.images[0].shape == (h, w) and native.problem.protocol == "basicirstd"
    assert native.problem.authors_ipi_s_per_image == 5.0 and native.problem_id == "hand"
    # a method's maps of the 256x256 inputs: MPCM end to end
    from bench.methods.istd.classical import Mpcm
    out = Mpcm().run(task.inputs)
    SUITE.validate_output(task, out)
    metrics, extras = SUITE.score(task, out)
    assert extras.protocol == "rpcanet" and metrics["pd"] == 100.0


# --------------------------------------------------------------------------- keys, rows, captions
def test_default_protocol_cells_keep_the_key_of_the_code_before_protocols():
    (basic,) = build_cells("istd", ["istd_synthetic[n_images=2]"], ["clean"], ["mpcm"], ["cpu"], 0)
    (ours,) = build_cells("istd", ["istd_synthetic[n_images=2]"], ["clean"], ["mpcm"], ["cpu"], 0, ["rpcanet"])
    assert basic.protocol == "basicirstd" and ours.protocol == "rpcanet"
    # the payload hashed before protocols existed (bench/grid.py at d5d4951)
    payload = {"suite": basic.suite, "dataset": [basic.dataset, basic.dparams], "sample_set": basic.sample_set(),
               "degradation": [basic.degradation, basic.gparams], "method": [basic.method, basic.mparams],
               "device": basic.device, "seed": basic.seed, "source": basic.source_hash}
    assert basic.key == hashlib.sha256(dumps(payload).encode()).hexdigest()[:32]
    assert ours.key != basic.key and ours.source_hash == basic.source_hash
    assert "protocol=rpcanet" in ours.describe() and "protocol" not in basic.describe()
    # the noise of a (dataset, degradation) is the same under both protocols
    assert ours.degradation_seed() == basic.degradation_seed()
    both = build_cells("istd", ["istd_synthetic[n_images=2]"], ["clean"], ["mpcm"], ["cpu"], 0,
                       ["basicirstd", "rpcanet"])
    assert [c.key for c in both] == [basic.key, ours.key]
    # a suite without protocols: cells without one, keys as before
    (sparse,) = build_cells("sparse", ["gaussian_lasso"], ["awgn_snr"], ["ista"], ["cpu"], 0)
    assert sparse.protocol == "" and Cell(**{**sparse.__dict__}).key == sparse.key


def test_rows_store_their_protocol_and_older_rows_read_as_the_default(tmp_path):
    from bench.runner import RunOptions, run_grid
    store = Store(str(tmp_path / "r.sqlite"))
    cells = build_cells("istd", ["istd_synthetic[n_images=2,min_size=64,max_size=64]"], ["clean"], ["mpcm"],
                        ["cpu"], 0, ["basicirstd", "rpcanet"])
    assert run_grid(cells, store, RunOptions(repeat=1, warmup=False), progress=False).failed == 0
    frame = store.frame("istd").set_index("protocol")
    assert set(frame.index) == {"basicirstd", "rpcanet"}
    assert frame.loc["rpcanet", "extras"]["protocol"] == "rpcanet"
    assert frame.loc["basicirstd", "metrics"] != frame.loc["rpcanet", "metrics"]
    # the default protocol's values are those of the BasicIRSTD scoring of the same maps
    task = SUITE.make_task(R.DATASETS["istd_synthetic"](n_images=2, min_size=64, max_size=64).load(None),
                           R.DEGRADATIONS["clean"](), cells[0].degradation_seed(), "cpu")
    from bench.methods.istd.classical import Mpcm
    from bench.metrics.istd import segment
    maps = Mpcm().run(task.inputs).maps
    want = score_masks([segment(m, "max_norm") for m in maps], task.reference)
    assert {k: frame.loc["basicirstd", "metrics"][k] for k in want} == want
    assert {r.protocol for r in store.results("istd")} == {"basicirstd", "rpcanet"}
    # a row written before the column existed reads as the suite's default protocol
    store.connect().execute("UPDATE results SET protocol=NULL")
    assert set(store.frame("istd")["protocol"]) == {"basicirstd"}
    assert {r.protocol for r in store.results("istd")} == {"basicirstd"}


def test_the_report_keeps_protocols_apart_and_every_caption_names_them(tmp_path):
    from bench.runner import RunOptions, run_grid
    store = Store(str(tmp_path / "r.sqlite"))
    cells = build_cells("istd", ["istd_synthetic[n_images=2,min_size=64,max_size=64]"],
                        ["clean", "gaussian_noise[sigma=10]"], ["mpcm"], ["cpu"], 0, ["basicirstd", "rpcanet"])
    # a set scored clean only has no robustness table (its rows are the main table's)
    cells += build_cells("istd", ["istd_synthetic[n_images=2,min_size=48,max_size=48]"], ["clean"], ["mpcm"],
                         ["cpu"], 0, ["basicirstd"])
    assert run_grid(cells, store, RunOptions(repeat=1, warmup=False), progress=False).failed == 0
    out = tmp_path / "out"
    paths = SUITE.report(store.frame("istd"), str(out), {})
    tables = {os.path.basename(p): open(p).read() for p in paths if p.endswith(".md")}
    sidecars = {os.path.basename(p)[:-5] + ".md": json.load(open(p)) for p in paths if p.endswith(".json")}
    for name in ("istd_main.md", "istd_runtime.md", "istd_rules.md"):  # rows of both protocols
        # each protocol's definition in the table's provenance file, the caption names them briefly
        assert set(sidecars[name]["protocols"]) == {"basicirstd", "rpcanet"}, name
        assert sidecars[name]["protocols"]["rpcanet"].startswith("Protocol rpcanet"), name
    robustness = {n: t for n, t in tables.items() if n.startswith("istd_robustness_")}
    assert len(robustness) == 2  # one per (dataset, protocol), each naming its own
    for name, text in robustness.items():
        theirs = name.endswith("_rpcanet_protocol.md")
        assert set(sidecars[name]["protocols"]) == ({"rpcanet"} if theirs else {"basicirstd"}), name
        assert ("RPCANet authors' protocol" in text) == theirs and ("BasicIRSTD protocol" in text) != theirs, name
        assert "Gaussian (σ=10) mIoU" in text, name  # the default noise level is named, not left out
    main_md = open(out / "istd_main.md").read()
    header = next(line for line in main_md.splitlines() if line.startswith("|") and "mIoU" in line)
    assert "| synthetic (max size 64, min size 64, n images 2) mIoU" in header
    assert "synthetic (max size 48, min size 48, n images 2) mIoU" in header
    assert not [n for n in robustness if "48" in n]
    assert "synthetic (max size 64, min size 64, n images 2), rpcanet protocol mIoU" in header


# --------------------------------------------------------------------------- command line
def test_unknown_protocol_and_a_suite_without_protocols_exit_2(tmp_path, capsys):
    res = str(tmp_path / "r.sqlite")
    assert main(["run", "--suite", "istd", "--protocol", "authors", "--method", "mpcm", "--results", res,
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "unknown protocol 'authors'" in err and "valid protocols: basicirstd, rpcanet" in err
    assert main(["run", "--suite", "sparse", "--protocol", "rpcanet", "--results", res, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "suite 'sparse' has no scoring protocols" in err and "valid protocols: (none)" in err
    assert "suites with protocols: istd" in err


def test_check_covers_the_rpcanet_protocol_under_its_own_labels():
    from bench.check import cell_label, smoke_cells
    cells = smoke_cells("istd")
    assert {c.protocol for c in cells} == {"basicirstd", "rpcanet"}
    row = {"suite": "istd", "dataset": "sirst[limit=3]", "degradation": "clean", "method_label": "mpcm"}
    assert cell_label({**row, "protocol": "basicirstd"}) == "sirst[limit=3] | clean | mpcm"
    assert cell_label({**row, "protocol": "rpcanet"}) == "sirst[limit=3] | clean | mpcm | protocol=rpcanet"
    assert cell_label({**row, "suite": "sparse", "protocol": None}) == "sirst[limit=3] | clean | mpcm"
