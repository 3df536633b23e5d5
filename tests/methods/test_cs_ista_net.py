"""ISTA-Net and ISTA-Net+: the ISTA invariant (identity transforms: ISTA-Net is ISTA on the
pixels with step rho and threshold theta; ISTA-Net+ with G = 0 the plain gradient
iteration), the strict load of every published file with its parameter count, the refusal
of a file on another ratio's (or a generated) matrix, and (slow) the published figure."""
from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bench import registry as R
from bench import weights as W
from bench.errors import CheckpointError
from bench.methods.cs import ista_net as N
from bench.methods.cs.common import CsInput
from bench.operators import BlockCSOperator

R.load_all()
pytestmark = pytest.mark.usefixtures("one_thread")

RATIOS = (1, 4, 10, 25, 30, 40)
COUNTS = {"ista_net": 171_090, "ista_net_plus": 336_978}


def _inputs(ratio=25, seed=0, size=50) -> CsInput:
    from bench.datasets.cs import generate_phi, synthetic_image
    phi = generate_phi(ratio, seed)
    g = torch.Generator().manual_seed(seed)
    images = [synthetic_image(size, size + 7, g) for _ in range(2)]
    ys = tuple(BlockCSOperator(phi, im.shape).forward(im) for im in images)
    # x0 = 0.7 Phi^T y: not measurement-consistent, so that every iteration moves
    return CsInput(ys, tuple(tuple(im.shape) for im in images), phi, 0.7 * phi.T.contiguous())


def _net_method(name, inputs, plus_identity=True, theta=0.01, rho=0.5):
    m = R.METHODS[name](checkpoint="none")
    m.setup(R.MethodContext(device="cpu", seed=0, problem=SimpleNamespace(ratio=25, matrix_kind="generated")))
    m._net.double()        # before setting rho and theta, so that they are the float64 numbers
    N.identity_transforms(m._net)
    with torch.no_grad():
        for ph in m._net.phases:
            ph.soft_thr.fill_(theta)
            ph.lambda_step.fill_(rho)
    return m


def _ista(inputs, lam, step, n_iter=9):
    m = R.METHODS["block_ista"](transform="identity", lam=lam, step=step, n_iter=n_iter)
    m.setup(R.MethodContext(device="cpu", seed=0))
    return m.run(inputs)


def _assert_same(a, b, atol=1e-12):
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, atol=atol, rtol=0)


@pytest.mark.parametrize("theta, rho", [(0.01, 0.5), (0.0, 0.5), (0.03, 0.8)])
def test_ista_net_with_identity_transforms_is_ista_on_the_pixels(theta, rho):
    """9 phases = 9 ISTA iterations with step rho and l1 weight theta / rho (threshold theta)."""
    inputs = _inputs()
    net = _net_method("ista_net", inputs, theta=theta, rho=rho).run(inputs)
    _assert_same(net, _ista(inputs, lam=theta / rho, step=rho))
    # the check can fail: another threshold, or one iteration fewer, gives other images
    with pytest.raises(AssertionError):
        _assert_same(net, _ista(inputs, lam=(theta + 0.02) / rho, step=rho))
    with pytest.raises(AssertionError):
        _assert_same(net, _ista(inputs, lam=theta / rho, step=rho, n_iter=8))


def test_ista_net_plus_with_identity_transforms_and_no_g_is_the_gradient_iteration():
    inputs = _inputs(ratio=10)
    net = _net_method("ista_net_plus", inputs, theta=0.02).run(inputs)
    _assert_same(net, _ista(inputs, lam=0.0, step=0.5))
    # with G = 0 the threshold has no effect; the untrained network (G != 0) is not ISTA
    untrained = R.METHODS["ista_net_plus"](checkpoint="none")
    untrained.setup(R.MethodContext(device="cpu", seed=0, problem=SimpleNamespace(ratio=10, matrix_kind="generated")))
    untrained._net.double()
    with pytest.raises(AssertionError):
        _assert_same(untrained.run(inputs), net)


def test_the_network_starts_from_qinit_y_and_returns_the_symmetry_residual():
    inputs = _inputs()
    net = N.build(plus=True).double()
    y = inputs.stacked()
    with torch.no_grad():
        out, sym = net(y, inputs.phi, inputs.qinit)
    assert out.shape == (y.shape[0], 1089) and len(sym) == 9 and sym[0].shape == (y.shape[0], 32, 33, 33)
    assert net.parameter_count() == COUNTS["ista_net_plus"]
    assert N.build(plus=False).parameter_count() == COUNTS["ista_net"]
    # identity transforms: F~(F(x)) = x exactly, so the symmetry residual is 0
    with torch.no_grad():
        _, sym = N.identity_transforms(N.build(plus=False).double())(y, inputs.phi, inputs.qinit)
    assert all(float(s.abs().max()) == 0 for s in sym)


# --------------------------------------------------------------------------- published weights
@pytest.fixture
def published_root(weights_root, monkeypatch):
    monkeypatch.setenv("BENCH_WEIGHTS", weights_root)
    return weights_root


@pytest.mark.parametrize("method", sorted(COUNTS))
@pytest.mark.parametrize("ratio", RATIOS)
def test_every_published_file_loads_strictly(published_root, method, ratio):
    entry = W.find_published(method, f"published:ratio_{ratio}")
    state = W.load_published(entry)
    assert len(state) == entry.tensors
    m = R.METHODS[method](checkpoint=f"published:ratio_{ratio}")
    m.setup(R.MethodContext(device="cpu", seed=0, problem=SimpleNamespace(ratio=ratio, matrix_kind="authors")))
    assert m.parameter_count() == COUNTS[method] == entry.parameters
    ours = m._net.state_dict()
    assert len(ours) == len(state)
    for k, v in ours.items():
        assert torch.equal(v, state["fcs." + k[len("phases."):]]), k
    # checkpoint=published picks the same file for this ratio
    auto = R.METHODS[method]()
    auto.setup(R.MethodContext(device="cpu", seed=0, problem=SimpleNamespace(ratio=ratio, matrix_kind="authors")))
    assert auto.row_extras()["weights"]["decoded_sha256"] == m.row_extras()["weights"]["decoded_sha256"]


def test_a_file_of_the_other_network_or_a_mangled_one_is_refused(published_root):
    state = W.load_published(W.find_published("ista_net", "published:ratio_10"))
    with pytest.raises(CheckpointError, match=r"fcs\.0\.conv1_forward' has shape \(32, 1, 3, 3\)"):
        N.published_network(True, state, "ista_net file")
    plus = W.load_published(W.find_published("ista_net_plus", "published:ratio_10"))
    bad = dict(plus)
    bad["fcs.3.conv_G"] = bad["fcs.3.conv_G"][:, :16]
    with pytest.raises(CheckpointError, match=r"fcs\.3\.conv_G.*shape"):
        N.published_network(True, bad, "mangled")
    with pytest.raises(CheckpointError, match="not an ISTA-Net state_dict"):
        N.published_network(True, {"decos.0.x": torch.zeros(1)}, "other")


@pytest.mark.parametrize("checkpoint, ratio, kind, words", [
    ("published:ratio_10", 25, "authors", ["authors' 10 % sampling matrix", "authors' 25 % matrix",
                                           "checkpoint=published:ratio_25"]),
    ("published:ratio_25", 25, "generated", ["authors' 25 % sampling matrix", "generated 25 % matrix"]),
    ("published", 50, "generated", ["no published weights for ratio 50"]),
])
def test_a_checkpoint_for_another_matrix_is_refused(published_root, checkpoint, ratio, kind, words):
    m = R.METHODS["ista_net_plus"](checkpoint=checkpoint)
    with pytest.raises(CheckpointError) as e:
        m.setup(R.MethodContext(device="cpu", seed=0, problem=SimpleNamespace(ratio=ratio, matrix_kind=kind)))
    for w in words:
        assert w in str(e.value)


def test_a_bad_checkpoint_value_stops_at_once():
    from bench.errors import BadParameterError
    with pytest.raises(BadParameterError, match="published:ratio_1"):
        R.METHODS["ista_net"](checkpoint="published:ratio_50")
    with pytest.raises(BadParameterError):
        R.METHODS["ista_net"](checkpoint="some where?")
    # the old spellings: a bare stem is shipped:<stem>, trained is shipped (one deprecation line)
    assert R.METHODS["ista_net"](checkpoint="somewhere").params["checkpoint"] == "shipped:somewhere"
    assert R.METHODS["ista_net"](checkpoint="trained").params["checkpoint"] == "shipped"


@pytest.mark.slow
@pytest.mark.parametrize("method, ratio, figure", [("ista_net_plus", 10, 26.49), ("ista_net_plus", 40, 36.02)])
def test_published_ista_net_plus_reproduces_the_authors_script(published_root, data_root, method, ratio, figure):
    """Set11 mean PSNR within 0.05 dB of the figure the authors' test script gives with
    the same files (the weights README); about 30 s per ratio on one core."""
    from bench.datasets.cs import Set11
    from bench.metrics.cs import psnr
    d = Set11(ratio=ratio).load(data_root)
    phi, q = d.matrix.phi.float(), d.matrix.qinit.float()
    inputs = CsInput(tuple(BlockCSOperator(phi, im.shape).forward(im.float()) for im in d.images),
                     tuple(tuple(im.shape) for im in d.images), phi, q)
    m = R.METHODS[method]()
    m.setup(R.MethodContext(device="cpu", seed=0, problem=SimpleNamespace(ratio=ratio, matrix_kind="authors")))
    got = float(np.mean([psnr(o, r) for o, r in zip(m.run(inputs), d.images)]))
    assert abs(got - figure) <= 0.05, got


# --------------------------------------------------------------------------- training here
def test_a_tiny_training_writes_a_checkpoint_the_method_loads_for_its_matrix_only(data_root, tmp_path):
    """`bench train --suite cs` for ISTA-Net+: 3 Adam steps of 4 train400 blocks at 10 %
    (the recipe's MSE + 0.01 x symmetry loss); the checkpoint loads for the authors' 10 %
    matrix and is refused, naming both matrices, at 25 %."""
    from bench.train import train
    from bench.datasets.cs import authors_matrix

    job, default = R.METHODS["ista_net_plus"].training_job(
        overrides={"steps": 3, "batch_size": 4, "eval_every": 3, "ratio": 10, "val_blocks": 16, "lr": 1e-4},
        data_root=data_root)
    assert default.endswith("ista_net_plus_ratio10_cpu_seed0.npz")
    init = {k: v.clone() for k, v in job.model.state_dict().items()}
    batch = job.batch(torch.Generator().manual_seed(0))
    assert batch.shape == (4, 1089) and 0 <= float(batch.min()) and float(batch.max()) <= 1
    with torch.no_grad():
        loss = job.loss(batch, job.schedule()[0])
        out, sym = job.model(batch @ job.phi.T, job.phi, job.qinit)
    assert float(loss) == pytest.approx(float(torch.mean((out - batch) ** 2) + 0.01 * sum(torch.mean(s ** 2) for s in sym)),
                                        rel=1e-5)
    path = str(tmp_path / "n.npz")
    res = train(job, path, progress=False)
    assert res.steps == 3 and os.path.exists(path)
    trained = job.model.state_dict()
    assert any(not torch.equal(trained[k], init[k]) for k in init)
    m10, m25 = authors_matrix(10, data_root), authors_matrix(25, data_root)
    ok = R.METHODS["ista_net_plus"](checkpoint=path)
    ok.setup(R.MethodContext(device="cpu", seed=0, problem=SimpleNamespace(
        ratio=10, matrix_kind="authors", matrix_digest=m10.digest, matrix_label="authors")))
    for k, v in ok._net.state_dict().items():
        torch.testing.assert_close(v, trained[k].float(), atol=2e-3, rtol=0)   # float16 deltas from the init
    assert ok.row_extras()["training"]["steps"] == 3
    bad = R.METHODS["ista_net_plus"](checkpoint=path)
    with pytest.raises(CheckpointError, match="trained with the 10 % matrix.*at 25 %"):
        bad.setup(R.MethodContext(device="cpu", seed=0, problem=SimpleNamespace(
            ratio=25, matrix_kind="authors", matrix_digest=m25.digest, matrix_label="authors")))
