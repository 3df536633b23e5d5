"""The RPCANet and L-RPCANet authors' published weights in this project's networks
(``checkpoint=published:<name>``): every ISTD file loads strictly into the configuration read
from its shapes, with its parameter count pinned; a file with one key renamed or one shape
changed is refused naming it; the loaded RPCANet SIRST weights detect targets on real SIRST
images. Skipped without ``../shared/weights`` (the ``weights_root`` fixture)."""
from __future__ import annotations

import dataclasses
import os

import pytest
import torch

from bench import registry as R
from bench import weights as W
from bench.errors import CheckpointError
from bench.methods.istd import learned as L

R.load_all()
pytestmark = pytest.mark.usefixtures("one_thread")

#: (method, name) -> learned parameters (the weights README; the slides' "0.216M" is sirst_aug's)
COUNTS = {("rpcanet", "sirst"): 679_896, ("rpcanet", "nudt_sirst"): 679_896, ("rpcanet", "irstd_1k"): 679_896,
          ("rpcanet", "sirst_aug"): 679_896, ("l_rpcanet", "nudt_sirst"): 475_188,
          ("l_rpcanet", "irstd_1k"): 433_428, ("l_rpcanet", "sirst_aug"): 215_916}


@pytest.fixture
def published_root(weights_root, monkeypatch):
    monkeypatch.setenv("BENCH_WEIGHTS", weights_root)
    return weights_root


def _loaded(method: str, name: str):
    m = R.METHODS[method](checkpoint=f"published:{name}")
    m.setup(R.MethodContext(device="cpu", seed=0))
    return m


@pytest.mark.parametrize("method, name", sorted(COUNTS))
def test_every_istd_file_loads_strictly_with_its_parameter_count(published_root, method, name):
    entry = W.find_published(method, name)
    state = W.load_published(entry)
    assert len(state) == entry.tensors
    m = _loaded(method, name)
    assert m.parameter_count() == COUNTS[method, name] == entry.parameters
    # strict: every tensor of the file is in the network, bit for bit, and nothing else is
    ours = m._net.state_dict()
    assert len(ours) == len(state)
    for k, v in ours.items():
        assert torch.equal(v, state[L.authors_key(k, m._net.cfg)]), k


def test_the_inferred_configurations(published_root):
    """RPCANet's files are the project's RPCANet configuration; L-RPCANet's three files are
    three configurations: the public code's default (NUDT-SIRST), a noise module of 3 hidden
    layers (IRSTD-1k) and bottlenecks of 4 channels (SIRST-Aug, the slides' 0.216M)."""
    assert _loaded("rpcanet", "sirst")._net.cfg == L.RPCANET
    assert _loaded("l_rpcanet", "nudt_sirst")._net.cfg == L.L_RPCANET
    irstd = _loaded("l_rpcanet", "irstd_1k")._net.cfg
    assert irstd == dataclasses.replace(L.L_RPCANET, noise=dataclasses.replace(L.L_RPCANET.noise, hidden=3))
    aug = _loaded("l_rpcanet", "sirst_aug")._net.cfg
    assert aug == dataclasses.replace(L.L_RPCANET, **{m: dataclasses.replace(getattr(L.L_RPCANET, m), width=4)
                                                      for m in ("background", "target", "noise")})


def _resaved(state: dict, tmp_path, name="changed.pkl") -> dict:
    """``state`` saved with torch.save and read back the way published files are read."""
    path = str(tmp_path / name)
    torch.save(state, path)
    return W.load_state_file(path)


def test_a_renamed_key_is_refused_naming_it(published_root, tmp_path):
    state = W.load_published(W.find_published("rpcanet", "sirst"))
    renamed = {("decos.2.sparse.eps" if k == "decos.2.sparse.epsilon" else k): v for k, v in state.items()}
    state = _resaved(renamed, tmp_path)
    with pytest.raises(CheckpointError, match=r"key 'decos\.2\.sparse\.eps' \(1,\) has no place"):
        L.published_network("rpcanet", state, "changed.pkl")
    # a key of the first stage, which the configuration is read from, too
    lrp = W.load_published(W.find_published("l_rpcanet", "nudt_sirst"))
    lrp = {("decos.0.residual.se.fc.0.weight" if k == "decos.0.residual.channel_attention.excitation.0.weight"
            else k): v for k, v in lrp.items()}
    with pytest.raises(CheckpointError, match=r"decos\.0\.residual\.se\.fc\.0\.weight"):
        L.published_network("l_rpcanet", _resaved(lrp, tmp_path, "l.pkl"), "l.pkl")


def test_a_changed_shape_is_refused_naming_it(published_root, tmp_path):
    state = W.load_published(W.find_published("rpcanet", "sirst"))
    key = "decos.3.merge.mapping.6.weight"
    state[key] = torch.zeros(32, 32, 1, 1)
    with pytest.raises(CheckpointError, match=r"key 'decos\.3\.merge\.mapping\.6\.weight' has shape "
                                              r"\(32, 32, 1, 1\), the network expects \(32, 32, 3, 3\)"):
        L.published_network("rpcanet", _resaved(state, tmp_path), "changed.pkl")


def test_a_missing_key_and_the_other_method_s_file_are_refused(published_root, tmp_path):
    state = W.load_published(W.find_published("rpcanet", "sirst"))
    del state["decos.5.merge.mapping.12.bias"]
    with pytest.raises(CheckpointError, match=r"key 'decos\.5\.merge\.mapping\.12\.bias' \(1,\) is missing"):
        L.published_network("rpcanet", state, "changed.pkl")
    lrp = W.load_published(W.find_published("l_rpcanet", "nudt_sirst"))
    with pytest.raises(CheckpointError, match="has a noise module"):
        L.published_network("rpcanet", lrp, "nudt_sirst.pkl")
    with pytest.raises(CheckpointError, match="not an RPCANet-family state_dict"):
        L.published_network("rpcanet", {"fcs.0.soft_thr": torch.zeros(1)}, "ista.pkl")


def test_the_row_records_where_the_weights_come_from(published_root):
    m = _loaded("l_rpcanet", "sirst_aug")
    extras = m.row_extras()
    assert extras["checkpoint"] == "published:sirst_aug" and extras["stages"] == 6
    w = extras["weights"]
    assert w["source"] == "published" and w["file_sha256"] == W.find_published("l_rpcanet", "sirst_aug").sha256
    assert w["repo"] == "xianchaoxiu/L-RPCANet" and w["commit"] == "47f8e53" and w["published_figure"] == {"iou": 74.56}
    assert len(w["decoded_sha256"]) == 64
    shipped = R.METHODS["rpcanet"]()
    shipped.setup(R.MethodContext(device="cpu", seed=0))
    sw = shipped.row_extras()["weights"]
    assert sw["source"] == "shipped" and sw["checkpoint"] == os.path.join("methods", "istd", "checkpoints",
                                                                          "rpcanet_sirst.npz")


def test_rpcanet_published_sirst_weights_detect_targets_on_sirst_test_images(published_root, data_root, tmp_path):
    """A sanity bound, not a reproduction: RPCANet with the authors' SIRST weights on the first
    4 SIRST test images at native resolution (the suite's default protocol, BasicIRSTD,
    rule prob > 0.5). Measured: IoU 77.85 / F1 87.55 / Pd 100 / Fa 0 (the shipped CPU-budget
    checkpoint on the same images: IoU 58.42, Pd 75, Fa 368). Bound, with margin: IoU > 65,
    Pd >= 90, Fa < 50."""
    from bench.grid import build_cells
    from bench.runner import RunOptions, run_grid
    from bench.store import Store

    if not os.path.isdir(os.path.join(data_root, "istd", "sirst-v1")):
        pytest.skip(f"SIRST not found under {data_root}")
    store = Store(str(tmp_path / "r.sqlite"))
    cells = build_cells("istd", ["sirst[limit=4]"], ["clean"], ["rpcanet[checkpoint=published:sirst]"], ["cpu"], 0)
    summary = run_grid(cells, store, RunOptions(data_root=data_root, repeat=1, warmup=False), progress=False)
    assert summary.failed == 0, summary.text()
    row = store.frame("istd").iloc[0]
    assert row["parameter_count"] == 679_896
    assert row["extras"]["weights"]["source"] == "published"
    m = row["metrics"]
    assert m["iou"] > 65 and m["pd"] >= 90 and m["fa"] < 50, m


# --------------------------------------------------------------------------- fine-tuning (--init)
def test_fine_tuning_starts_from_the_published_weights_and_stores_a_delta_from_them(published_root, data_root,
                                                                                     tmp_path):
    """``bench train --init published:nudt_sirst``: the job's network is the published one
    (its configuration, its tensors), the validation at step 0 scores those weights, the
    checkpoint is stored as a delta from them (meta ``init`` names the file and its SHA-256)
    and the method loads it back to the trained state; moving the published file away makes
    the suite skip the cells with the download line, and a changed SHA-256 is refused."""
    from bench.checkpoints import read_checkpoint_meta
    from bench.train import train

    if not os.path.isdir(os.path.join(data_root, "istd", "sirst-v1")):
        pytest.skip(f"SIRST not found under {data_root}")
    job, default = R.METHODS["l_rpcanet"].training_job(
        recipe="finetune", dataset="sirst", init="published:nudt_sirst", data_root=data_root,
        overrides={"steps": 2, "eval_every": 2, "val_limit": 1, "batch_size": 2, "crop": 32})
    published = _loaded("l_rpcanet", "nudt_sirst")._net.state_dict()
    assert job.net_cfg == L.L_RPCANET
    assert all(torch.equal(v, published[k]) for k, v in job.model.state_dict().items())
    assert "--init published:nudt_sirst" in job.command() and job.recipe["init"] == "published:nudt_sirst"
    out = str(tmp_path / "ft.npz")
    res = train(job, out, progress=False)
    meta = read_checkpoint_meta(out)
    assert meta["init"]["checkpoint"] == "published:nudt_sirst"
    assert meta["init"]["sha256"] == W.find_published("l_rpcanet", "nudt_sirst").sha256
    assert res.steps == 2
    m = R.METHODS["l_rpcanet"](checkpoint=out)
    m.setup(R.MethodContext(device="cpu", seed=0))
    trained = job.model.state_dict()
    changed = [k for k, v in m._net.state_dict().items() if not torch.equal(v, published[k])]
    assert changed, "the loaded checkpoint equals the published weights: the delta was lost"
    for k, v in m._net.state_dict().items():
        if v.is_floating_point():  # float16 deltas: within a float16 step of the trained value
            assert torch.allclose(v, trained[k].cpu(), atol=1e-3, rtol=1e-3), k
    # the reference is the published file: without it the cell is skipped with a download line
    empty = tmp_path / "empty_root"
    empty.mkdir()
    src = W.resolve("istd", "l_rpcanet", out, weights_root=str(empty))
    os.environ["BENCH_WEIGHTS"] = str(empty)
    try:
        reason = W.missing_reason(src)
    finally:
        os.environ["BENCH_WEIGHTS"] = published_root
    assert reason is not None and "fine-tuned from" in reason and "nudt_sirst" in reason


def test_fine_tuning_a_cut_of_the_published_network(published_root, data_root, tmp_path):
    """``--init published:nudt_sirst --set stages=2 --set se=background`` (an ablation row):
    the network starts from the file's first 2 stages less the SE blocks of T, N and D, trains
    on NUDT-SIRST's train list with every 10th image held out, is stored as a delta from those
    tensors under its shipped ablation name, and loads back to the trained state."""
    from bench.checkpoints import read_checkpoint_meta
    from bench.train import train

    if not os.path.isdir(os.path.join(data_root, "istd", "NUDT-SIRST")):
        pytest.skip(f"NUDT-SIRST not found under {data_root}")
    job, default = R.METHODS["l_rpcanet"].training_job(
        recipe="ablation_finetune", dataset="nudt_sirst", init="published:nudt_sirst", data_root=data_root,
        overrides={"stages": 2, "se": "background", "steps": 2, "eval_every": 2, "val_limit": 1, "crop": 32})
    published = _loaded("l_rpcanet", "nudt_sirst")._net.state_dict()
    start = job.model.state_dict()
    assert (job.net_cfg.stages, job.net_cfg.se_modules()) == (2, ("background",))
    assert all(k.startswith(("stages.0.", "stages.1.")) and torch.equal(v, published[k]) for k, v in start.items())
    assert not any(".se." in k for k in start if not k.split(".")[2] == "background")
    assert (len(job.train_data.samples), len(job.val_data.samples)) == (597, 66)
    assert not set(job.train_data.samples.names) & set(job.val_data.samples.names)
    # recipe keys changed (steps, ...): not the shipped file, whose name says set, knobs and start
    assert os.path.join("results", "checkpoints") in default
    assert (L.ablation_finetuned_name("l_rpcanet", "nudt_sirst", {"stages": 2, "se": "background"}, "published:nudt_sirst")
            == "l_rpcanet_nudt_sirst_ablation_se-background_stages2_from_nudt_sirst")
    out = str(tmp_path / "cut.npz")
    train(job, out, progress=False)
    assert read_checkpoint_meta(out)["init"]["checkpoint"] == "published:nudt_sirst"
    m = R.METHODS["l_rpcanet"](checkpoint=out)
    m.setup(R.MethodContext(device="cpu", seed=0))
    trained = job.model.state_dict()
    assert set(m._net.state_dict()) == set(trained)
    for k, v in m._net.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(v, trained[k].cpu(), atol=1e-3, rtol=1e-3), k


def test_fine_tuning_refusals(published_root, data_root):
    """--init names published weights of the method, keeps their network, and only methods
    that fine-tune accept it (the command line exits 2 otherwise, naming the problem)."""
    from bench.cli import main
    from bench.errors import BenchError, UnknownNameError

    with pytest.raises(BenchError, match="must be published weights of l_rpcanet"):
        L._init_network("l_rpcanet", "l_rpcanet_sirst", {})
    with pytest.raises(UnknownNameError):
        L._init_network("l_rpcanet", "published:no_such_set", {})
    # a network knob may only cut the file's network: more stages or SE blocks it lacks are refused
    with pytest.raises(BenchError, match="at most 6 with --init published:nudt_sirst"):
        L._init_network("l_rpcanet", "published:nudt_sirst", {"stages": 7})
    with pytest.raises(BenchError, match="SE blocks that published:sirst lacks"):
        L._init_network("rpcanet", "published:sirst", {"se": "background"})
    assert main(["train", "--suite", "sparse", "--method", "lista", "--init", "published:sirst",
                 "--no-progress"]) == 2
