"""RPCANet and L-RPCANet: parameter counts, the update equations, the ablation knobs, the
loss, the crops, and a real (tiny) training on SIRST through `bench train` that the
registered method then loads."""
from __future__ import annotations

import json
import os

import pytest
import torch

from bench import registry as R
from bench import weights as W
from bench.errors import BenchError, CheckpointError
from bench.methods.istd import learned as L
from bench.methods.istd.common import IstdInput

R.load_all()


# tiny problems: one torch thread (the shared fixture in tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


def test_parameter_counts_of_the_published_configurations():
    assert L.build(L.RPCANET).parameter_count() == 679_896       # SPECS / the public RPCANet code
    assert L.build(L.L_RPCANET).parameter_count() == 475_188     # the public L-RPCANet code


def test_parameters_grow_linearly_with_the_number_of_stages():
    per_stage = L.build(L.net_config("l_rpcanet", stages=1)).parameter_count()
    assert per_stage == 475_188 // 6
    for k in (2, 3, 7):
        assert L.build(L.net_config("l_rpcanet", stages=k)).parameter_count() == k * per_stage


def test_se_blocks_switch_per_module():
    full = L.build(L.L_RPCANET).parameter_count()
    none = L.build(L.net_config("l_rpcanet", se="none")).parameter_count()
    # an SE block on 32 channels with reduction 16: 32*2+2 + 2*32+32 = 162 parameters
    assert full - none == 6 * 4 * 162
    only_t = L.net_config("l_rpcanet", se="target")
    assert only_t.se_modules() == ("target",)
    assert L.build(only_t).parameter_count() - none == 6 * 162
    with pytest.raises(BenchError, match="unknown module"):
        L.net_config("rpcanet", se="noise")  # RPCANet has no noise module


def test_stage_follows_the_update_equations():
    """With every CNN replaced by a known function the stage gives SPECS' formulas."""
    torch.manual_seed(0)
    stage = L.Stage(L.L_RPCANET)
    stage.background.forward = lambda x: 0.5 * x
    stage.target.forward = lambda x: x ** 2
    stage.noise.forward = lambda x: -x
    stage.image.forward = lambda x: 2 * x
    with torch.no_grad():
        stage.eps.fill_(0.1)
        stage.sigma.fill_(0.2)
    D, T, N = torch.rand(3, 1, 1, 5, 6, dtype=torch.float32)
    D2, T2, N2 = stage(D, T, N)
    x = D - T - N
    B = x + 0.5 * x
    xt = T + D - B - N
    Te = xt - 0.1 * xt ** 2
    xn = N + D - B - Te
    Ne = xn + 0.2 * xn
    torch.testing.assert_close(T2, Te)
    torch.testing.assert_close(N2, Ne)
    torch.testing.assert_close(D2, 2 * (B + Te + Ne))


def test_noise_restarts_each_stage_unless_carried():
    cfg = L.net_config("l_rpcanet", stages=2)
    a = L.build(cfg, seed=3).eval()
    b = L.build(L.net_config("l_rpcanet", stages=2, noise_carry=True), seed=3).eval()
    x = torch.rand(1, 1, 24, 24)
    with torch.no_grad():
        for s in b.stages:  # make the noise update matter
            s.sigma.fill_(0.5)
        for s in a.stages:
            s.sigma.fill_(0.5)
        assert not torch.allclose(a(x)[1], b(x)[1])
        one = L.build(L.net_config("l_rpcanet", stages=1), seed=3).eval()
        one.stages[0].sigma.fill_(0.5)
        # one stage: carrying or not is the same network
        c = L.build(L.net_config("l_rpcanet", stages=1, noise_carry=True), seed=3).eval()
        c.stages[0].sigma.fill_(0.5)
        torch.testing.assert_close(one(x)[1], c(x)[1])


def test_initialisation_is_deterministic_from_the_seed():
    a, b, c = (L.build(L.RPCANET, s).state_dict() for s in (5, 5, 6))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point() and a[k].numel() > 1)


def test_soft_iou_loss():
    mask = torch.zeros(1, 1, 8, 8)
    mask[0, 0, 2:4, 2:4] = 1
    perfect = (mask * 2 - 1) * 50.0
    assert float(L.soft_iou_loss(perfect, mask)) < 1e-6
    # all-zero logits: p = 0.5 everywhere; I = 2, U = 32 + 4 - 2 = 34; loss = 1 - 3/35
    assert float(L.soft_iou_loss(torch.zeros(1, 1, 8, 8), mask)) == pytest.approx(1 - 3 / 35)


def test_soft_iou_over_the_batch_keeps_a_gradient_on_false_blobs_of_target_free_crops():
    mask = torch.zeros(2, 1, 8, 8)
    mask[0, 0, 2:4, 2:4] = 1                      # image 0: a 4-pixel target; image 1: none
    logits = (mask * 2 - 1) * 50.0                # image 0 perfect
    logits[1, 0, 4:8, 0:8] = 50.0                 # image 1: a 32-pixel false blob
    logits.requires_grad_(True)
    per_image = L.soft_iou_loss(logits, mask)
    # per image: mean(1, (0 + 1) / (32 + 1)) ; over the batch: (4 + 1) / (36 + 1)
    assert float(per_image.detach()) == pytest.approx(1 - (1 + 1 / 33) / 2, abs=1e-6)
    batch = L.soft_iou_loss(logits, mask, over="batch")
    assert float(batch.detach()) == pytest.approx(1 - 5 / 37, abs=1e-6)
    # the gradient on a blob pixel with p = 1/2 (the other entries saturated): per image it is
    # s / (sum p + s)^2 / 2 / 4, over the batch (I + s) / (U + s)^2 / 4
    with torch.no_grad():
        logits[1, 0, 4, 0] = 0.0
    g_img = torch.autograd.grad(L.soft_iou_loss(logits, mask), logits)[0][1, 0, 4, 0]
    g_bat = torch.autograd.grad(L.soft_iou_loss(logits, mask, over="batch"), logits)[0][1, 0, 4, 0]
    assert float(g_img) == pytest.approx(1 / 32.5 ** 2 / 2 / 4, rel=1e-3)
    assert float(g_bat) == pytest.approx(5 / 36.5 ** 2 / 4, rel=1e-3)
    assert float(g_bat) > 5 * float(g_img)
    with pytest.raises(BenchError, match="iou_over"):
        L.soft_iou_loss(logits, mask, over="pixels")


def test_poly_schedule_and_unknown_recipe_keys(data_root):
    job = L.IstdTrainingJob("l_rpcanet", "cpu", None, None, {"stages": 1, "val_limit": 2}, "cpu", data_root)
    st = job.schedule()[0]
    assert job.lr_factor(st, 0) == 1.0
    assert job.lr_factor(st, st.max_steps // 2) == pytest.approx(0.5 ** 0.9)
    with pytest.raises(BenchError, match="unknown recipe key"):
        L.IstdTrainingJob("l_rpcanet", "cpu", None, None, {"stepz": 3}, "cpu", data_root)
    with pytest.raises(BenchError, match="iou_over"):
        L.IstdTrainingJob("l_rpcanet", "cpu", None, None, {"iou_over": "pixel"}, "cpu", data_root)
    assert job.recipe["iou_over"] == "image" and L.RECIPES["paper"]["iou_over"] == "image"
    assert L.IstdTrainingJob("l_rpcanet", "cpu", None, None, {"stages": 1, "val_limit": 2, "iou_over": "batch"},
                             "cpu", data_root).recipe["iou_over"] == "batch"


def test_shipped_checkpoints_match_the_command_that_remakes_them(data_root):
    """Each shipped `cpu` checkpoint stores the recipe (with the keys added since it was
    written, at the value it was trained with) and the command that `bench train` builds
    today, on the same train and val splits; its stored state validated like the trained
    one; each file is under the project's 5 MiB."""
    from bench.checkpoints import CHECKPOINT_MAX_BYTES, read_checkpoint_meta
    for method in ("rpcanet", "l_rpcanet"):
        job = L.IstdTrainingJob(method, "cpu", None, None, {}, "cpu", data_root)
        path = job.default_path()
        assert path == os.path.join(L.CHECKPOINT_DIR, f"{method}_sirst.npz") and os.path.exists(path)
        meta = read_checkpoint_meta(path)
        assert L.checkpoint_recipe(meta) == json.loads(json.dumps(job.recipe)), f"{path} was made by another recipe"
        assert meta["how_to_reproduce"] == job.command() == W.train_command("istd", method)
        assert (meta["train_hash"], meta["val_hash"]) == (job.train_data.problem_id, job.val_data.problem_id)
        assert meta["config"] == L.config_dict(L.CONFIGS[method]) and meta["seed"] == 0
        assert abs(meta["validation"]["val_iou"] - meta["validation_as_stored"]["val_iou"]) < 0.5
        assert os.path.getsize(path) < CHECKPOINT_MAX_BYTES
    # the fill-in never overrides what a checkpoint says
    assert L.checkpoint_recipe({"recipe": {"iou_over": "batch"}})["iou_over"] == "batch"
    assert L.checkpoint_recipe({"recipe": {}}) == L.RECIPE_KEYS_ADDED


def test_tiny_training_writes_a_checkpoint_the_method_loads(tmp_path, data_root):
    from bench.checkpoints import read_checkpoint_meta
    from bench.train import train
    over = {"stages": 1, "steps": 3, "eval_every": 3, "val_limit": 2, "crop": 32, "batch_size": 2}
    job = L.IstdTrainingJob("l_rpcanet", "cpu", None, 1, over, "cpu", data_root)
    path = str(tmp_path / "tiny.npz")
    res = train(job, path, progress=False)
    assert res.steps == 3 and os.path.exists(path)
    meta = read_checkpoint_meta(path)
    assert meta["method"] == "l_rpcanet" and meta["config"]["stages"] == 1
    assert meta["parameter_count"] == 475_188 // 6
    assert len(meta["train_hash"]) > 8 and "--set stages=1" in meta["how_to_reproduce"]
    assert "<data_root>" in meta["recipe"]["train_split"]
    assert [h["step"] for h in meta["training"]["history"]] == [3]
    assert meta["validation_as_stored"]["val_iou"] == pytest.approx(meta["validation"]["val_iou"], abs=1.0)
    # the method loads it and returns probability maps of the image sizes
    m = R.METHODS["l_rpcanet"](checkpoint=path)
    m.setup(R.MethodContext(device="cpu", seed=0))
    imgs = (torch.rand(40, 50) * 255, torch.rand(33, 47) * 255)
    out = m.run(IstdInput(imgs))
    assert out.segmentation == "prob"
    assert [tuple(x.shape) for x in out.maps] == [(40, 50), (33, 47)]
    assert all(float(x.min()) >= 0 and float(x.max()) <= 1 for x in out.maps)
    assert m.parameter_count() == 475_188 // 6
    # the loaded network is the trained one, not the initialisation
    sd = m._net.state_dict()
    init = L.build(L.config_from_dict(meta["config"]), seed=1).state_dict()
    assert any(not torch.allclose(sd[k], init[k]) for k in sd if sd[k].is_floating_point())
    # refusals: another method's checkpoint, a truncated file
    other = R.METHODS["rpcanet"](checkpoint=path)
    with pytest.raises(CheckpointError, match="belongs to method"):
        other.setup(R.MethodContext(device="cpu", seed=0))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(open(path, "rb").read()[:500])
    with pytest.raises(CheckpointError):
        R.METHODS["l_rpcanet"](checkpoint=str(bad)).setup(R.MethodContext(device="cpu", seed=0))
    with pytest.raises(CheckpointError, match="make it with"):
        R.METHODS["l_rpcanet"](checkpoint=str(tmp_path / "missing.npz")).setup(R.MethodContext(device="cpu", seed=0))


def test_ablation_checkpoint_names():
    assert L.ablation_name("l_rpcanet", {"stages": 3}) == "l_rpcanet_ablation_stages3"
    assert L.ablation_name("l_rpcanet", {"se": ["background", "target"]}) == \
        "l_rpcanet_ablation_se-background+target"
    assert L.ablation_name("l_rpcanet", {"se": "none"}) == "l_rpcanet_ablation_se-none"
    from bench.weights import resolve
    assert resolve("istd", "l_rpcanet", "l_rpcanet_ablation_stages3").path.endswith(
        os.path.join("checkpoints", "l_rpcanet_ablation_stages3.npz"))
    assert resolve("istd", "l_rpcanet", "auto").path.endswith("l_rpcanet_sirst.npz")


def test_an_ablation_trained_from_scratch_on_another_set_is_named_after_it(data_root):
    assert L.ablation_name("l_rpcanet", {"stages": 7}, "nudt_sirst") == "l_rpcanet_nudt_sirst_ablation_stages7"
    assert L.ablation_name("l_rpcanet", {"stages": 7}) == "l_rpcanet_ablation_stages7"
    made = R.METHODS["l_rpcanet"].make_command("l_rpcanet_nudt_sirst_ablation_stages7")
    assert "--dataset nudt_sirst --recipe ablation --set stages=7" in made and "--init" not in made
    if not os.path.isdir(os.path.join(data_root, "istd", "NUDT-SIRST")):
        pytest.skip(f"NUDT-SIRST not found under {data_root}")
    job = L.IstdTrainingJob("l_rpcanet", "ablation", "nudt_sirst", None, {"stages": 7}, "cpu", data_root)
    assert job.default_path() == os.path.join(L.CHECKPOINT_DIR, "l_rpcanet_nudt_sirst_ablation_stages7.npz")
    assert job.command() == made and job.net_cfg.stages == 7
    # another seed or a limited set is not the shipped file
    assert os.path.join("results", "checkpoints") in L.IstdTrainingJob(
        "l_rpcanet", "ablation", "nudt_sirst[limit=20]", None, {"stages": 7}, "cpu", data_root).default_path()


@pytest.mark.parametrize("overrides, read_back", [
    ({"stages": 3}, {"stages": 3}),
    ({"se": ["background", "target"]}, {"se": "background+target"}),
    ({"se": "none"}, {"se": "none"}),
    ({"stages": 2, "se": ["noise"]}, {"stages": 2, "se": "noise"}),
    ({}, {}),
])
def test_ablation_file_names_read_back_to_their_overrides(overrides, read_back):
    knob = L.ablation_name("l_rpcanet", overrides)[len("l_rpcanet_ablation_"):]
    assert L.ablation_overrides(knob) == read_back


@pytest.mark.parametrize("knob", ["stagesX", "se-", "depth4", "stages3_other"])
def test_an_ablation_file_name_that_says_no_knob_is_refused(knob):
    with pytest.raises(CheckpointError, match="neither stages<K> nor se-<blocks>"):
        L.ablation_overrides(knob)


def test_every_shipped_checkpoints_name_gives_the_command_it_was_trained_with():
    """The command a missing shipped file's message names (read from its file name) is,
    word for word as the shell splits it, the one stored in the file by `bench train`."""
    import glob
    import shlex
    from bench.checkpoints import read_checkpoint_meta
    paths = sorted(glob.glob(os.path.join(L.CHECKPOINT_DIR, "*.npz")))
    assert len(paths) >= 13
    for path in paths:
        meta = read_checkpoint_meta(path)
        stem = os.path.basename(path)[:-len(".npz")]
        made = R.METHODS[meta["method"]].make_command(stem)
        assert shlex.split(made) == shlex.split(meta["how_to_reproduce"]), stem


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_forward_matches_cpu():
    net = L.build(L.net_config("l_rpcanet", stages=2), seed=0).eval()
    x = torch.rand(1, 1, 40, 40)
    with torch.no_grad():
        a = net(x)[1]
        b = net.cuda()(x.cuda())[1].cpu()
    torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


def test_set_se_none_means_no_se_blocks(data_root):
    # the selector parser reads `none` as None; it must not fall back to the default (all)
    job = L.IstdTrainingJob("l_rpcanet", "ablation", None, None, {"se": None}, "cpu", data_root)
    assert job.net_cfg.se_modules() == ()
    assert job.default_path().endswith("l_rpcanet_ablation_se-none.npz")
    job = L.IstdTrainingJob("l_rpcanet", "ablation", None, None, {"se": "background,target"},
                            "cpu", data_root)
    assert job.net_cfg.se_modules() == ("background", "target")
    assert job.default_path().endswith("l_rpcanet_ablation_se-background+target.npz")


def test_image_batch_norm_uses_each_images_statistics_and_keeps_the_stored_ones():
    net = L.build(L.net_config("rpcanet", stages=1), seed=0).eval()
    # running statistics far from any image's: the two modes must then differ
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(3.0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(2, 1, 24, 24)
    with torch.no_grad():
        _, t_run = net(x[:1])
        with L.image_batch_norm(net):
            _, t_img = net(x[:1])
            _, t_pair = net(x)
        _, t_run2 = net(x[:1])
    assert not torch.allclose(t_run, t_img, atol=1e-3)
    # batch statistics: the same image alone or beside another gives another map
    assert not torch.allclose(t_img[0], t_pair[0], atol=1e-4)
    # leaving the block restores eval mode, and nothing stored changed (counters included)
    assert torch.equal(t_run, t_run2) and not any(m.training for m in net.modules())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_bn_parameter_is_validated_and_image_mode_runs_one_image_at_a_time(tmp_path, data_root):
    from bench.train import train
    over = {"stages": 1, "steps": 1, "eval_every": 1, "val_limit": 1, "crop": 32, "batch_size": 2}
    path = str(tmp_path / "tiny.npz")
    train(L.IstdTrainingJob("rpcanet", "cpu", None, 1, over, "cpu", data_root), path, progress=False)
    with pytest.raises(BenchError, match="bn='batch'"):
        R.METHODS["rpcanet"](checkpoint=path, bn="batch").setup(R.MethodContext(device="cpu", seed=0))
    m = R.METHODS["rpcanet"](checkpoint=path, bn="image")
    m.setup(R.MethodContext(device="cpu", seed=0))
    a, b = torch.rand(30, 30) * 255, torch.rand(30, 30) * 255
    # same-shape images are not stacked: each map is what the image alone gives
    both, alone = m.run(IstdInput((a, b))), m.run(IstdInput((a,)))
    assert torch.allclose(both.maps[0], alone.maps[0], atol=1e-6)


def test_row_extras_measure_the_convolution_roof_ratio(tmp_path, data_root):
    """After a run, the row records the network's forward pass against its convolutions alone
    on one image of that run: the same FLOP count, both rates positive, the ratio their time
    ratio (the network does the convolutions and more, so it cannot beat them by much)."""
    from bench.flops import conv_flops, conv_layers
    from bench.train import train
    over = {"stages": 1, "steps": 1, "eval_every": 1, "val_limit": 1, "crop": 32, "batch_size": 2}
    path = str(tmp_path / "tiny.npz")
    train(L.IstdTrainingJob("rpcanet", "cpu", None, 1, over, "cpu", data_root), path, progress=False)
    m = R.METHODS["rpcanet"](checkpoint=path)
    m.setup(R.MethodContext(device="cpu", seed=0))
    assert "roof" not in m.row_extras()          # nothing run yet: nothing measured
    m.run(IstdInput((torch.rand(40, 48) * 255,)))
    roof = m.row_extras()["roof"]
    assert roof["image"] == [40, 48]
    assert roof["conv_flops"] == conv_flops(conv_layers(m._net, torch.zeros(1, 1, 40, 48)))
    assert roof["net_gflops"] > 0 and roof["roof_gflops"] > 0
    assert roof["ratio"] == pytest.approx(roof["net_gflops"] / roof["roof_gflops"], rel=1e-9)
    assert 0 < roof["ratio"] < 1.5
