"""The training pipeline: checkpoint round trip and refusals, a tiny training that learns,
resumption after an interruption, and the method loading what the trainer wrote."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from bench import registry as R
from bench import train as T
from bench.errors import BenchError, CheckpointError
from bench.checkpoints import load_checkpoint, read_checkpoint_meta, save_checkpoint
from bench.train import train

TINY = "gaussian_lasso[m=20,n=40,n_test=50]"
TINY_RECIPE = {"n_layers": 3, "steps_new": 40, "steps_all": 20, "eval_every": 10, "patience": 1000,
               "n_val": 200, "batch_size": 32}


# tiny problems: one torch thread (the shared fixture in tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


def _state():
    g = torch.Generator().manual_seed(0)
    return {"big": torch.randn(100, 80, generator=g), "small": torch.randn(3, generator=g),
            "count": torch.arange(5)}


def test_checkpoint_round_trip(tmp_path):
    state = _state()
    ref = {"big": state["big"] + 0.01 * torch.randn(100, 80)}
    p = save_checkpoint(str(tmp_path / "c.npz"), state, {"method": "m", "instance": "abc", "note": [1, 2]},
                        reference=ref)
    meta = read_checkpoint_meta(p)
    assert meta["encoding"] == {"big": "float16-delta", "small": "float32", "count": "int64"}
    back, meta2 = load_checkpoint(p, reference=ref, expect={"method": "m", "instance": "abc"})
    assert meta2["note"] == [1, 2]
    assert torch.equal(back["small"], state["small"]) and torch.equal(back["count"], state["count"])
    # float16 deltas: the error is relative to the change, not to the weight
    err = (back["big"] - state["big"]).abs().max() / (state["big"] - ref["big"]).abs().max()
    assert err < 1e-3
    # without a reference the float32 path is exact
    p2 = save_checkpoint(str(tmp_path / "d.npz"), state, {})
    back2, _ = load_checkpoint(p2)
    assert all(torch.equal(back2[k], state[k]) for k in state)


@pytest.mark.parametrize("encoding, levels", [("int8", 127), ("int7", 63)])
def test_integer_deltas_are_smaller_than_float16_and_within_half_a_level_of_each_rows_change(
        tmp_path, encoding, levels):
    g = torch.Generator().manual_seed(1)
    ref = {"big": torch.randn(200, 300, generator=g), "vec": torch.randn(5000, generator=g)}
    # rows whose changes differ by orders of magnitude: a per-row scale keeps the small ones
    change = torch.randn(200, 300, generator=g) * torch.logspace(-4, 0, 200)[:, None]
    state = {"big": ref["big"] + change, "vec": ref["vec"] + 1e-3 * torch.randn(5000, generator=g),
             "small": torch.randn(3, generator=g)}
    p8 = save_checkpoint(str(tmp_path / "i8.npz"), state, {}, reference=ref, delta_encoding=encoding)
    p16 = save_checkpoint(str(tmp_path / "f16.npz"), state, {}, reference=ref)
    assert read_checkpoint_meta(p8)["encoding"] == {"big": "int8-delta", "vec": "int8-delta", "small": "float32"}
    back, _ = load_checkpoint(p8, reference=ref)
    assert torch.equal(back["small"], state["small"])
    # rounding to `levels` steps either side of zero of each row's largest change (plus float32's rounding of the weight;
    # one scale for the whole tensor would miss this bound by 1000x on the smallest rows)
    row_err = (back["big"] - state["big"]).abs().amax(1)
    assert (row_err <= 0.5 / levels * change.abs().amax(1) + 1e-6).all()
    assert (back["vec"] - state["vec"]).abs().max() <= 0.5 / levels * (state["vec"] - ref["vec"]).abs().max() + 1e-6
    assert np.abs(np.load(p8)["t/big"]).max() == levels
    assert os.path.getsize(p8) < 0.6 * os.path.getsize(p16)
    with pytest.raises(ValueError, match="delta_encoding"):
        save_checkpoint(str(tmp_path / "x.npz"), state, {}, reference=ref, delta_encoding="int4")
    # int8 deltas without the initialisation, or with row scales that do not fit: refused
    with pytest.raises(CheckpointError, match="initialisation"):
        load_checkpoint(p8)
    z = dict(np.load(p8))
    z["s/big"] = z["s/big"][:10]
    np.savez(tmp_path / "bad.npz", **z)
    with pytest.raises(CheckpointError, match="row scales"):
        load_checkpoint(str(tmp_path / "bad.npz"), reference=ref)


def test_the_finest_encoding_that_fits_the_size_limit_is_chosen():
    from bench.checkpoints import META_SLACK_BYTES, checkpoint_nbytes, encode_checkpoint, encode_within
    g = torch.Generator().manual_seed(2)
    ref = {"big": torch.randn(200, 300, generator=g)}
    state = {"big": ref["big"] + 1e-2 * torch.randn(200, 300, generator=g), "small": torch.randn(3, generator=g)}
    order = ("float16", "int8", "int7")
    size = {e: checkpoint_nbytes(encode_checkpoint(state, {}, ref, delta_encoding=e)[0]) for e in order}
    assert size["float16"] > size["int8"] > size["int7"]
    arrays, meta, choice = encode_within(state, {}, ref, order, size["int8"] + META_SLACK_BYTES)
    assert choice == {"chosen": "int8", "max_bytes": size["int8"] + META_SLACK_BYTES, "fits": True,
                      "bytes": {"float16": size["float16"], "int8": size["int8"]}}
    assert meta["encoding"]["big"] == "int8-delta" and arrays["t/big"].dtype == np.int8
    assert encode_within(state, {}, ref, order, size["int8"] + META_SLACK_BYTES - 1)[2]["chosen"] == "int7"
    assert encode_within(state, {}, ref, order, None)[2]["chosen"] == "float16"
    _, _, none_fits = encode_within(state, {}, ref, order, 100)
    assert none_fits["chosen"] == "int7" and none_fits["fits"] is False and list(none_fits["bytes"]) == list(order)
    # without an initialisation there are no deltas and nothing to choose; the size is still checked
    _, _, no_ref = encode_within(state, {}, None, order, 100)
    assert no_ref["chosen"] == "float16" and no_ref["fits"] is False and list(no_ref["bytes"]) == ["float16"]


def test_training_writes_its_checkpoint_once_and_keeps_one_that_fits_no_limit(tmp_path, monkeypatch, capsys):
    """The stored state is validated from the encoded arrays in memory, then the file is
    written once; a checkpoint over the size limit even at the coarsest encoding is written
    anyway, and said."""
    import bench.train as T
    writes = []
    real_write = T.write_checkpoint
    monkeypatch.setattr(T, "write_checkpoint", lambda path, arrays: writes.append(path) or real_write(path, arrays))
    R.load_all()
    # W is 64 x 128 = 8192 entries: large enough to be stored as deltas
    job, _ = R.METHODS["lista_cp"].training_job(recipe="cpu", options={"snr": 40}, dataset="gaussian_lasso[m=64,n=128,n_test=50]",
                                                seed=1, overrides=dict(TINY_RECIPE))
    job.max_checkpoint_bytes = 1
    job.delta_encodings = ("float16", "int7")
    out = str(tmp_path / "big.npz")
    train(job, out, progress=False)
    assert writes == [out]
    assert "written anyway" in capsys.readouterr().err
    meta = read_checkpoint_meta(out)
    choice = meta["delta_encoding"]
    assert choice["chosen"] == "int7" and choice["fits"] is False and set(choice["bytes"]) == {"float16", "int7"}
    assert meta["encoding"]["layer.0.W"] == "int8-delta"
    # what the trainer validated in memory is what the file holds
    state, _ = load_checkpoint(out, reference=job.reference_state())
    job.model.load_state_dict({**job.model.state_dict(), **state})
    with torch.no_grad():
        again = job.validate(None)["val_nmse_db"]
    assert again == pytest.approx(meta["validation_as_stored"]["val_nmse_db"], abs=1e-9)
    assert meta["validation_as_stored"]["val_nmse_db"] != meta["validation"]["val_nmse_db"]


def test_checkpoint_refusals(tmp_path):
    p = save_checkpoint(str(tmp_path / "c.npz"), _state(), {"method": "lista", "instance": "abc"})
    with pytest.raises(CheckpointError, match="method='lista'"):
        load_checkpoint(p, expect={"method": "alista"})
    with pytest.raises(CheckpointError, match="instance='abc'"):
        load_checkpoint(p, expect={"instance": "def"})
    data = open(p, "rb").read()
    trunc = tmp_path / "t.npz"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(str(trunc))
    junk = tmp_path / "j.npz"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=str(junk)):
        load_checkpoint(str(junk))
    pickled = tmp_path / "p.npz"
    np.savez(pickled, __meta__=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(CheckpointError):
        load_checkpoint(str(pickled))  # object arrays need pickle: refused
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(str(tmp_path / "missing.npz"))


def _job(method="lista_cp", **over):
    R.load_all()
    job, _ = R.METHODS[method].training_job(recipe="cpu", options={"snr": 40}, dataset=TINY, seed=1,
                                             overrides={**TINY_RECIPE, **over})
    return job


def _tiny_task():
    from bench.datasets.noise import AwgnSnr
    R.load_all()
    data = R.DATASETS["gaussian_lasso"](m=20, n=40, n_test=50).load()
    return R.SUITES["sparse"].make_task(data, AwgnSnr(snr_db=40.0), 0, "cpu")


def test_tiny_training_improves_validation_and_the_method_loads_it(tmp_path):
    job = _job()
    with torch.no_grad():
        before = job.validate(None)["val_nmse_db"]
    out = str(tmp_path / "lista_cp.npz")
    res = train(job, out, progress=False)
    after = res.validation["val_nmse_db"]
    assert after < before - 0.5, (before, after)
    assert res.steps > 0 and res.seconds > 0 and not os.path.exists(out + ".resume.pt")
    meta = read_checkpoint_meta(out)
    assert meta["method"] == "lista_cp" and meta["seed"] == 1 and meta["recipe"]["steps_new"] == 40
    assert meta["training"]["steps"] == res.steps and "python -m bench train" in meta["how_to_reproduce"]
    hist = meta["training"]["history"]  # every validation with its step, seconds and scores
    assert hist and all("val_nmse_db" in h and h["step"] > 0 for h in hist)
    assert [h["step"] for h in hist] == sorted(h["step"] for h in hist)

    task = _tiny_task()
    assert meta["instance"] == task.problem_id
    m = R.METHODS["lista_cp"](checkpoint=out, n_layers=3)
    m.setup(R.MethodContext(device="cpu", seed=0, problem_id=task.problem_id, problem=task.problem))
    x = m.run(task.inputs)
    assert m.parameter_count() == 3 * (20 * 40 + 1)
    assert m.row_extras()["training"]["steps"] == res.steps
    # the loaded network is the trained one (to the float16 deltas' precision)
    with torch.no_grad():
        torch.testing.assert_close(x, job.model(task.inputs.y), rtol=1e-3, atol=1e-4)

    # refusals: another method, another instance
    with pytest.raises(CheckpointError, match="belongs to method 'lista_cp'"):
        R.METHODS["lista_cpss"](checkpoint=out, n_layers=3).setup(
            R.MethodContext(device="cpu", seed=0, problem_id=task.problem_id))
    with pytest.raises(CheckpointError, match="problem instance"):
        R.METHODS["lista_cp"](checkpoint=out, n_layers=3).setup(
            R.MethodContext(device="cpu", seed=0, problem_id="0123456789abcdef"))
    with pytest.raises(CheckpointError, match="3 layers"):
        R.METHODS["lista_cp"](checkpoint=out, n_layers=16).setup(
            R.MethodContext(device="cpu", seed=0, problem_id=task.problem_id))


class _Interrupt(Exception):
    pass


def test_training_resumes_after_an_interruption(tmp_path):
    out = str(tmp_path / "alista.npz")
    ref = train(_job("alista"), str(tmp_path / "ref.npz"), progress=False)

    job = _job("alista")
    real_batch, calls = job.batch, {"n": 0}

    def flaky(gen):
        calls["n"] += 1
        if calls["n"] == 75:
            raise _Interrupt
        return real_batch(gen)

    job.batch = flaky
    with pytest.raises(_Interrupt):
        train(job, out, progress=False, save_every_s=0.0)
    assert os.path.exists(out + ".resume.pt") and not os.path.exists(out)
    res = train(_job("alista"), out, progress=False)
    assert res.steps == ref.steps
    assert res.validation["val_nmse_db"] == pytest.approx(ref.validation["val_nmse_db"], abs=1e-3)


def test_training_into_a_folder_that_does_not_exist_creates_it(tmp_path):
    """A suite's first shipped checkpoint goes to a folder nothing made yet (the resume file
    is written there first, within the first minute): the trainer creates it."""
    out = tmp_path / "new" / "folder" / "alista.npz"
    train(_job("alista"), str(out), progress=False, save_every_s=0.0)
    assert out.exists()


def test_cli_train_command_parses(tmp_path):
    from bench.cli import build_parser
    args = build_parser().parse_args(["train", "--suite", "sparse", "--method", "alista", "--snr", "40",
                                      "--set", "steps_new=5", "--out", str(tmp_path / "x.npz")])
    assert args.command == "train" and args.method == "alista" and args.set == ["steps_new=5"]
    assert T.training_options("sparse", args) == {"snr": "40"}


@pytest.mark.parametrize("suite", ["cs", "hsi", "istd"])
def test_a_training_option_of_another_suite_is_refused_in_one_line(suite):
    """Training options are the suite's own (Suite.training_options): sparse declares --snr,
    the other suites none, and a method never sees an option its suite does not declare."""
    from bench.cli import build_parser
    args = build_parser().parse_args(["train", "--suite", suite, "--method", "x", "--snr", "40"])
    with pytest.raises(BenchError, match=f"--snr does not apply to suite '{suite}'.*none"):
        T.training_options(suite, args)
    assert R.SUITES["sparse"].training_options == {"snr": "training SNR in dB or inf (default inf)"}



class _BnJob(T.TrainingJob):
    """A BatchNorm network whose validation can never improve (lr 0, a constant score):
    the state kept is the step-0 one."""

    score_name = "val_score"

    def __init__(self):
        torch.manual_seed(0)
        self.model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
        self.recipe, self.seed = {"name": "bn-test"}, 0
        self.seen_training = []

    def schedule(self):
        return [T.Stage("s", 2, 0.0, eval_every=1)]

    def batch(self, generator):
        return torch.randn(2, 1, 8, 8, generator=generator) * 5 + 3

    def loss(self, batch, stage):
        return self.model(batch).mean()

    def validate(self, stage):
        self.seen_training.append(self.model.training)
        with torch.no_grad():
            self.model(torch.full((4, 1, 8, 8), 50.0))
        return {"val_score": 0.0}


def test_validation_runs_in_eval_mode_from_step_0_and_keeps_the_state_it_scored(tmp_path):
    """Every validation, the step-0 one included, sees the model in eval mode, so that
    BatchNorm neither scores with the val batch's own statistics nor folds them into its
    averages: a state kept at step 0 is the starting state, running statistics and all."""
    job = _BnJob()
    start = {k: v.clone() for k, v in job.model.state_dict().items()}
    train(job, str(tmp_path / "bn.npz"), progress=False)
    assert job.seen_training and not any(job.seen_training)
    kept = job.model.state_dict()
    assert all(torch.equal(kept[k], v) for k, v in start.items()), "the kept step-0 state moved"
    assert read_checkpoint_meta(str(tmp_path / "bn.npz"))["training"]["log"][-1]["best_step"] == 0
