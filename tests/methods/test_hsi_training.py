"""Training the SMDS-Net family here (methods/hsi/training.py) and loading what it writes:
recipe errors before any data is read, a checkpoint of another method or configuration
refused, a stored network decoded to the trained weights, and (slow, real data) a few
steps of ``bench train`` whose checkpoint a cell loads, with the test scenes never read."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from bench import registry as R
from bench.checkpoints import save_checkpoint
from bench.errors import BenchError, CheckpointError
from bench.methods.hsi import network as hn
from bench.methods.hsi.training import RECIPES, VAL_SCENES, HsiTrainingJob

R.load_all()
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("overrides, match", [
    ({"nope": 1}, "unknown recipe key"),
    ({"sigma_min": 50, "sigma_max": 10}, "sigma_min"),
    ({"crop": 5}, "at least 9"),
    ({"l_update": "sideways"}, "l_update"),
])
def test_bad_recipes_are_refused_before_reading_data(overrides, match):
    with pytest.raises(BenchError, match=match):
        HsiTrainingJob("star_net", "cpu", None, None, overrides, "cpu", data_root="/nonexistent")


def test_unknown_recipe_and_other_datasets_are_refused():
    with pytest.raises(BenchError, match="recipe"):
        HsiTrainingJob("smds_net", "fast", None, None, {}, "cpu", data_root="/nonexistent")
    with pytest.raises(BenchError, match="training split"):
        HsiTrainingJob("smds_net", "cpu", "cave", None, {}, "cpu", data_root="/nonexistent")


def test_validation_scenes_come_from_the_training_split_only():
    from bench.datasets.hsi import SPLITS
    assert all(v in SPLITS["train"] for v in VAL_SCENES)
    assert not any(v in SPLITS["test"] for v in VAL_SCENES)
    assert any(t not in VAL_SCENES for t in SPLITS["train"]), "no training scene left"


def _fake_checkpoint(path, method, cfg, scale=0.01, seed=0):
    """A checkpoint as the trainer writes it: deltas from the initialisation, the meta it reads."""
    g = torch.Generator().manual_seed(seed)
    ref = hn.CubeNet(cfg).state_dict()
    state = {k: v + scale * torch.randn(v.shape, generator=g) for k, v in ref.items()}
    meta = {"method": method, "config": dataclasses.asdict(cfg), "l_update": None, "seed": 0,
            "recipe": {"name": "cpu"}, "training": {"steps": 1}}
    save_checkpoint(str(path), state, meta, reference=ref, delta_min_numel=1)
    return state


def test_a_trained_checkpoint_loads_as_trained(tmp_path):
    path = tmp_path / "smds.npz"
    state = _fake_checkpoint(path, "smds_net", hn.SMDS_NET)
    m = R.METHODS["smds_net"](checkpoint=str(path))
    m.setup(R.MethodContext(device="cpu", seed=0))
    for k, v in m._net.state_dict().items():
        assert torch.allclose(v, state[k], atol=1e-4), k        # float16 deltas of 0.01-sized changes
    assert not torch.equal(m._net.state_dict()["threshold.0"], hn.CubeNet(hn.SMDS_NET).state_dict()["threshold.0"])
    extras = m.row_extras()
    assert extras["weights_tag"].startswith("trained here")
    assert extras["weights"]["source"] == "trained here"


def test_a_checkpoint_of_another_method_or_configuration_is_refused(tmp_path):
    smds = tmp_path / "smds.npz"
    _fake_checkpoint(smds, "smds_net", hn.SMDS_NET)
    m = R.METHODS["star_net"](checkpoint=str(smds))
    with pytest.raises(CheckpointError, match="belongs to method"):
        m.setup(R.MethodContext(device="cpu", seed=0))
    star = tmp_path / "star.npz"
    _fake_checkpoint(star, "star_net", hn.STAR_NET)                # the slides' model (L update runs)
    m = R.METHODS["star_net"](checkpoint=str(star), l_update="released")
    with pytest.raises(CheckpointError, match="l_update"):
        m.setup(R.MethodContext(device="cpu", seed=0))
    m = R.METHODS["star_net"](checkpoint=str(tmp_path / "absent.npz"))
    with pytest.raises(CheckpointError, match="bench train --suite hsi"):
        m.setup(R.MethodContext(device="cpu", seed=0))


@pytest.mark.slow
def test_a_few_training_steps_write_a_checkpoint_a_cell_loads(tmp_path, data_root, monkeypatch):
    """Two steps of the cpu recipe on tiny crops: the loss is finite, the checkpoint holds the
    trained state, records the split and never names a test scene."""
    from bench.datasets.hsi import SPLITS
    from bench.train import train

    read = []
    real = R.DATASETS["cave"].load

    def spy(self, data_root=None):
        read.append(dict(self.params))
        return real(self, data_root)

    monkeypatch.setattr(R.DATASETS["cave"], "load", spy)
    job = HsiTrainingJob("smds_net", "cpu", None, None,
                         {"steps": 2, "eval_every": 1, "crop": 12, "val_crop": 12, "val_crops": 1},
                         "cpu", data_root)
    assert not any(p.get("scene") == "chart_and_stuffed_toy" for p in read)
    batch = job.batch(torch.Generator().manual_seed(0))
    assert torch.isfinite(job.loss(batch, None))
    out = tmp_path / "smds.npz"
    res = train(job, str(out), progress=False)
    assert res.steps == 2
    m = R.METHODS["smds_net"](checkpoint=str(out))
    m.setup(R.MethodContext(device="cpu", seed=0))
    trained = job.model.state_dict()
    for k, v in m._net.state_dict().items():
        assert torch.allclose(v, trained[k], atol=1e-3), k
    meta = m._meta
    assert meta["train_hash"] and meta["val_scenes"] == job.val_names
    test_names = {"cave:chart_and_stuffed_toy", "pavia", "pavia_university"}
    assert not test_names & set(meta["train_scenes"]) and not test_names & set(meta["val_scenes"])
    assert len(SPLITS["train"]) == len(VAL_SCENES) + len(job.groups)


@pytest.mark.parametrize("method", ["smds_net", "star_net", "star_net_s"])
def test_shipped_files_were_trained_with_the_cpu_recipe_as_it_stands(method):
    """`bench train --suite hsi --method <m>` (the cpu recipe with its per-method values) makes
    what the grids load: every recipe value the shipped file records equals the recipe's."""
    from bench import weights
    from bench.checkpoints import read_checkpoint_meta
    from bench.methods.hsi.training import recipe_values
    recorded = read_checkpoint_meta(weights.resolve("hsi", method, f"shipped:{method}_cpu").path)["recipe"]
    expected = recipe_values(method, "cpu")
    assert {k: recorded[k] for k in expected if k != "l_update"} == {k: v for k, v in expected.items() if k != "l_update"}
