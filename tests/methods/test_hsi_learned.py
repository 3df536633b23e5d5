"""SMDS-Net, STAR-Net and STAR-Net-S (methods/hsi/learned.py): the published parameter
counts, the pieces of the pipeline against their definitions (Tucker products against the
dense Kronecker matrix, HySime against a band-by-band loop as pysptools writes it, the
subspace basis orthonormal, block and cube aggregation exact on a constant cube), the
untrained network's first stage against its analytic update, and the strict load of the
four published files (skipped without ``../shared/weights``)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from bench import registry as R
from bench import weights as W
from bench.errors import CheckpointError
from bench.methods.hsi import blocks as hb, network as hn, published as hp
from bench.methods.prox import soft_threshold_smds_net

R.load_all()
pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------- sizes
def test_parameter_counts_equal_the_published_ones():
    assert hn.CubeNet(hn.SMDS_NET).parameter_count() == 5_103      # SMDS-Net, the slides' count
    assert hn.CubeNet(hn.STAR_NET).parameter_count() == 27_702     # STAR-Net, the slides' and checkpoint's
    released = dataclasses.replace(hn.STAR_NET, low_rank=False)
    assert hn.CubeNet(released).parameter_count() == 27_702       # the released behaviour has the same tensors
    assert hn.CubeNet(hn.STAR_NET_S).parameter_count() == 27_702 + 729
    # and the methods report them (untrained, no file needed)
    for name, n in (("smds_net", 5_103), ("star_net", 27_702), ("star_net_s", 28_431)):
        m = R.METHODS[name](checkpoint="none")
        m.setup(R.MethodContext(device="cpu", seed=0))
        assert m.parameter_count() == n


# --------------------------------------------------------------------------- linear algebra
def test_tucker_is_the_kronecker_product():
    g = torch.Generator().manual_seed(0)
    m = [torch.randn(9, 9, generator=g, dtype=torch.float64) for _ in range(3)]
    x = torch.randn(50, 729, generator=g, dtype=torch.float64)
    assert torch.allclose(hn.tucker(x, *m), x @ hn.kron3(*m).T, atol=1e-10)


def test_dct_dictionary_and_initial_dictionaries():
    d = hn.dct_dictionary(9)
    assert torch.allclose(d.norm(dim=0), torch.ones(9, dtype=torch.float64))
    assert torch.allclose(d[:, 1:].sum(dim=0), torch.zeros(8, dtype=torch.float64), atol=1e-12)  # mean removed
    net = hn.CubeNet(hn.SMDS_NET)
    scaled = (d / torch.linalg.eigvalsh(d.T @ d).max().sqrt()).float()
    for i in range(3):
        assert torch.allclose(net.synthesis[i], scaled) and torch.allclose(net.output[i], scaled)
        assert torch.allclose(net.analysis[i], scaled.T)
    # largest eigenvalue of each scaled D^T D is 1
    assert math.isclose(float(torch.linalg.eigvalsh(net.synthesis[0].detach().double().T @ net.synthesis[0].detach().double()).max()),
                        1.0, rel_tol=1e-6)


def _hysime_loop(block: np.ndarray):
    """pysptools' HySime (material_count/vd.py), band by band, as the authors' models call it."""
    h, w, b = block.shape
    y = block.reshape(h * w, b).T
    n = y.shape[1]
    rr = y @ y.T
    rri = np.linalg.pinv(rr + 1e-6 * np.eye(b))
    noise = np.zeros((b, n))
    for i in range(b):
        xx = rri - np.outer(rri[:, i], rri[i, :]) / rri[i, i]
        rra = rr[:, i].copy()
        rra[i] = 0
        beta = xx @ rra
        beta[i] = 0
        noise[i] = y[i] - beta @ y
    rw = np.diag(np.diag(noise @ noise.T / n))
    x = y - noise
    ry, rx = y @ y.T / n, x @ x.T / n
    e, _, _ = np.linalg.svd(rx)
    rw = rw + np.trace(rx) / b / 1e5 * np.eye(b)
    cost = -np.diag(e.T @ ry @ e) + 2 * np.diag(e.T @ rw @ e)
    return e[:, np.argsort(cost)[: int((cost < 0).sum())]]


def _cube(seed=0, h=24, w=24, b=20, k=4, sigma=0.05):
    rng = np.random.default_rng(seed)
    clean = np.clip(rng.random((h, w, k)) @ rng.random((k, b)) / k, 0, None)
    return clean, clean + sigma * rng.standard_normal((h, w, b))


def test_hysime_matches_the_band_by_band_code():
    blocks = np.stack([_cube(s)[1] for s in range(3)])
    batched = hb.hysime(blocks)
    for blk, e in zip(blocks, batched):
        ref = _hysime_loop(blk)
        assert e.shape == ref.shape and e.shape[1] >= 1
        assert np.allclose(e, ref, atol=1e-8)


def test_subspace_projection_is_orthonormal():
    """E_k has orthonormal columns (the zero columns appended up to 9 aside), so projecting
    a cube that lies in its span and mapping back returns it."""
    clean, noisy = _cube(1, b=31, k=5, sigma=0.02)
    bases = hb.subspace_bases(torch.from_numpy(noisy[None].astype(np.float32)))
    e = bases[0].double()
    assert e.shape[1] >= 9
    k = int((e.abs().sum(dim=0) > 0).sum())
    assert 1 <= k <= e.shape[1]
    gram = e.T @ e
    expected = torch.zeros_like(gram)
    expected[:k, :k] = torch.eye(k, dtype=gram.dtype)
    assert torch.allclose(gram, expected, atol=1e-5)
    inside = torch.from_numpy(noisy).double() @ e @ e.T       # a cube in the span
    assert torch.allclose(inside @ e @ e.T, inside, atol=1e-5)


def test_max_rank_caps_the_subspace(data_root):
    """max_rank keeps HySime's first columns (the default 0 keeps all: wider than 9 when k > 9,
    as on a Pavia block at sigma 10)."""
    cube = R.DATASETS["pavia"](size=40).load(data_root).cubes[0]
    noisy = cube + 10 / 255 * torch.randn(cube.shape, generator=torch.Generator().manual_seed(0), dtype=cube.dtype)
    block = noisy[None].float()
    full = hb.subspace_bases(block)[0]
    capped = hb.subspace_bases(block, max_rank=3)[0]
    assert full.shape[1] > 9                     # this cube's subspace is wider than one cube
    assert capped.shape[1] == 9 and int((capped.abs().sum(dim=0) > 0).sum()) == 3
    assert torch.equal(capped[:, :3], full[:, :3])


# --------------------------------------------------------------------------- aggregation
@pytest.mark.parametrize("shape", [(40, 33, 5), (16, 16, 3), (96, 96, 2)])
def test_block_aggregation_is_exact_on_a_constant_cube(shape):
    cube = torch.full(shape, 0.375, dtype=torch.float64)
    blocks, geometry = hb.make_blocks(cube, hb.BLOCK, hb.BLOCK_STRIDE)
    assert blocks.shape[1:3] == (hb.BLOCK, hb.BLOCK)
    assert torch.equal(hb.merge_blocks(blocks, geometry, hb.BLOCK_STRIDE), cube)
    # and any cube comes back from its own blocks (weights normalised per pixel)
    rnd = torch.rand(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    b2, g2 = hb.make_blocks(rnd, hb.BLOCK, hb.BLOCK_STRIDE)
    assert torch.allclose(hb.merge_blocks(b2, g2, hb.BLOCK_STRIDE), rnd, atol=1e-12)


def test_block_padding_follows_the_authors_pad_even_rule():
    assert hb.block_padding(96, 56, 12) == (55, 61)    # (206 - 56) % 12 = 6 -> 6 more
    assert hb.block_padding(90, 56, 12) == (55, 67)    # (200 - 56) % 12 = 0: a full stride more


class _Identity(torch.nn.Module):
    def forward(self, rows, slab, stages=None):
        return rows


@pytest.mark.parametrize("channels", [9, 11])
def test_cube_aggregation_is_exact_on_a_constant_cube(channels):
    """Cubes averaged back (also sliding along the channels when k > 9): a constant block
    is returned exactly by an identity network, any block to rounding."""
    g = torch.full((2, channels, 20, 20), 0.625, dtype=torch.float64)
    assert torch.equal(hb.denoise_subspace(_Identity(), g), g)
    r = torch.rand(2, channels, 20, 20, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.allclose(hb.denoise_subspace(_Identity(), r), r, atol=1e-12)


# --------------------------------------------------------------------------- the stages
def _rows(n=2 * 36, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = 0.2 * torch.randn(n, 729, generator=g)
    return y - y.mean(dim=1, keepdim=True)


def _analytic_first_stage(net: hn.CubeNet, y: torch.Tensor, t0) -> torch.Tensor:
    """B_1 = soft(B_0 - (B_0 kron(D)^T - Y) kron(A)^T, theta_1), B_0 = soft(Y pinv(kron DCT)^T, t0),
    with the dense 729x729 matrices in float64."""
    y = y.double()
    dct = hn.dct_dictionary(9)
    b0 = soft_threshold_smds_net(y @ torch.linalg.pinv(hn.kron3(dct, dct, dct)).T, t0)
    kd = hn.kron3(*[m.double() for m in net.synthesis])
    ka = hn.kron3(*[m.double() for m in net.analysis])
    return soft_threshold_smds_net(b0 - (b0 @ kd.T - y) @ ka.T, net.stage_threshold(0).double())


def test_untrained_smds_first_stage_is_the_analytic_update():
    net = hn.CubeNet(hn.SMDS_NET)
    y = _rows()
    with torch.no_grad():
        got = net.codes(y, slab=36, stages=1).double()
    with torch.no_grad():
        ref = _analytic_first_stage(net, y, hn.FIXED_INIT_THRESHOLD)
    assert ref.abs().max() > 0.1 and (ref == 0).any()     # the threshold acts, the update is not trivial
    assert torch.allclose(got, ref, atol=2e-5)


def test_untrained_star_net_first_stage_is_the_analytic_update():
    """Released behaviour: the B update only. Slides' model: then L = t-SVT(B - P/beta) with
    P = 0, per frequency of the orthonormal FFT along the codes, by numpy's SVD."""
    y = _rows(seed=2)
    released = hn.CubeNet(dataclasses.replace(hn.STAR_NET, low_rank=False))
    slides = hn.CubeNet(hn.STAR_NET)
    slides.load_state_dict(released.state_dict())
    with torch.no_grad():
        b = released.codes(y, slab=36, stages=1).double()
        lr = slides.codes(y, slab=36, stages=1).double()
    with torch.no_grad():
        ref_b = _analytic_first_stage(released, y, released.init_threshold.double())
    assert torch.allclose(b, ref_b, atol=2e-5)
    tau = (slides.gamma_low_rank[0] * slides.threshold[0] / slides.penalty[0]).detach().double().numpy()
    tau = (tau + np.roll(tau[::-1], 1)) / 2
    xf = np.fft.fft(ref_b.numpy().reshape(2, 6, 6, 729), axis=-1, norm="ortho")
    out = np.empty_like(xf)
    for s in range(2):
        for f in range(729):
            u, sv, vh = np.linalg.svd(xf[s, :, :, f])
            out[s, :, :, f] = (u * np.maximum(sv - tau[f], 0)) @ vh
    ref_l = np.fft.ifft(out, axis=-1, norm="ortho")
    assert np.abs(ref_l.imag).max() < 1e-10
    assert not np.allclose(ref_l.real, ref_b.numpy().reshape(2, 6, 6, 729), atol=1e-3)  # the SVT changes something
    assert np.allclose(lr.numpy().reshape(2, 6, 6, 729), ref_l.real, atol=2e-5)


@pytest.mark.parametrize("sign", [1, -1])
def test_the_second_stage_carries_the_multiplier(sign):
    """Stage 2 of the slides' model (sign +1) and of the public code's lines (sign -1):
    L_2 = t-SVT(B_2 - P_1 / beta_2), P_1 = sign * beta_1 (L_1 - B_1), B_2 from Z = L_1."""
    y = _rows(seed=5)
    net = hn.CubeNet(dataclasses.replace(hn.STAR_NET, dual_sign=sign))
    with torch.no_grad():
        for k in range(2):   # thresholds that make the SVT act
            net.gamma_low_rank[k].fill_(0.5)
        AD = [a @ d for a, d in zip(net.analysis, net.synthesis)]
        ya = hn.tucker(y, *net.analysis)
        tau = [net.gamma_low_rank[k] * net.threshold[k] / net.penalty[k] for k in range(2)]
        z0 = net.initial_codes(y)
        b1 = soft_threshold_smds_net(z0 - hn.tucker(z0, *AD) + ya, net.stage_threshold(0))
        l1 = hn.tsvt(b1, tau[0], 36)
        p1 = sign * net.penalty[0] * (l1 - b1)
        assert p1.abs().max() > 1e-4
        b2 = soft_threshold_smds_net(l1 - hn.tucker(l1, *AD) + ya, net.stage_threshold(1))
        l2 = hn.tsvt(b2 - p1 / net.penalty[1], tau[1], 36)
        assert torch.allclose(net.codes(y, slab=36, stages=2), l2, atol=1e-5)
        other = hn.CubeNet(dataclasses.replace(hn.STAR_NET, dual_sign=-sign))
        other.load_state_dict(net.state_dict())
        assert not torch.allclose(other.codes(y, slab=36, stages=2), l2, atol=1e-4)


@pytest.mark.parametrize("cfg", [hn.SMDS_NET, hn.STAR_NET, hn.STAR_NET_S], ids=["smds", "star", "star_s"])
def test_the_stages_are_differentiable_and_match_inference(cfg):
    """With gradients on (training) the stages run out of place and give what inference gives;
    every parameter gets a gradient from ||net(Y) - X||^2."""
    y, x = _rows(seed=6), _rows(seed=7)
    net = hn.CubeNet(cfg)
    with torch.no_grad():
        ref = net(y, slab=36)
    out = net(y, slab=36)
    assert torch.allclose(out, ref, atol=1e-5)
    ((out - x) ** 2).sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing


def test_star_net_s_with_a_large_sparse_threshold_is_star_net():
    """mu large: S = 0, so STAR-Net-S's stages are STAR-Net's."""
    y = _rows(seed=3)
    s_net = hn.CubeNet(hn.STAR_NET_S)
    net = hn.CubeNet(hn.STAR_NET)
    net.load_state_dict({k: v for k, v in s_net.state_dict().items() if k != "sparse_threshold"})
    with torch.no_grad():
        assert torch.allclose(s_net(y, slab=36, stages=2), net(y, slab=36, stages=2), atol=1e-6)
        s_net.sparse_threshold.fill_(0.01)   # active: a different result
        assert not torch.allclose(s_net(y, slab=36, stages=2), net(y, slab=36, stages=2), atol=1e-4)


def test_the_untrained_pipeline_denoises_a_small_cube():
    clean, noisy = _cube(4, h=20, w=20, b=12, k=3, sigma=0.1)
    out = hb.denoise_cube(hn.CubeNet(hn.SMDS_NET), torch.from_numpy(noisy.astype(np.float32)), block=16, stride=4)
    assert out.shape == noisy.shape and torch.isfinite(out).all()
    err_out = float(((out.double().numpy() - clean) ** 2).mean())
    assert err_out < 0.5 * float(((noisy - clean) ** 2).mean())


# --------------------------------------------------------------------------- published weights
PUBLISHED = {("smds_net", "icvl_sigma15"): 5_103, ("smds_net", "icvl_sigma55"): 5_103,
             ("smds_net", "icvl_sigma95"): 5_103, ("star_net", "sigma50_bandwise"): 27_702}


@pytest.fixture
def published_root(weights_root, monkeypatch):
    monkeypatch.setenv("BENCH_WEIGHTS", weights_root)
    return weights_root


@pytest.mark.parametrize("method, name", sorted(PUBLISHED))
def test_every_hsi_file_loads_strictly(published_root, method, name):
    entry = W.find_published(method, name)
    state = W.load_published(entry)
    assert len(state) == entry.tensors
    m = R.METHODS[method](checkpoint=f"published:{name}")
    m.setup(R.MethodContext(device="cpu", seed=0))
    assert m.parameter_count() == PUBLISHED[method, name] == entry.parameters
    ours = m._net.state_dict()
    assert len(ours) == len(state)
    for k, v in ours.items():   # every value in its place, bit for bit
        assert torch.equal(v, state[hp.authors_key(k)].reshape(v.shape)), k


def test_a_file_that_does_not_fit_is_refused_naming_the_key(published_root):
    entry = W.find_published("star_net", "sigma50_bandwise")
    state = W.load_published(entry)
    renamed = {("lmbda_x.3" if k == "lmbda.3" else k): v for k, v in state.items()}
    with pytest.raises(CheckpointError, match="lmbda_x.3"):
        hp.published_network(hn.STAR_NET, renamed, "test")
    reshaped = dict(state, **{"apply_D.1": state["apply_D.1"][:8]})
    with pytest.raises(CheckpointError, match=r"apply_D\.1.*\(8, 9\)"):
        hp.published_network(hn.STAR_NET, reshaped, "test")
    # SMDS-Net's file is not STAR-Net's (its per-stage tensors are missing) and vice versa
    smds = W.load_published(W.find_published("smds_net", "icvl_sigma55"))
    with pytest.raises(CheckpointError, match="missing|no place"):
        hp.published_network(hn.STAR_NET, smds, "test")
    with pytest.raises(CheckpointError, match="no place"):
        hp.published_network(hn.SMDS_NET, state, "test")


def test_unknown_checkpoint_values_are_refused():
    from bench.errors import BenchError
    with pytest.raises(BenchError, match="checkpoint"):
        R.METHODS["star_net"](checkpoint="published:nope")
    with pytest.raises(BenchError, match="l_update"):
        R.METHODS["smds_net"](l_update="slides")
    m = R.METHODS["smds_net"](checkpoint="none", block=16, block_stride=20)
    with pytest.raises(BenchError, match="block_stride"):
        m.setup(R.MethodContext(device="cpu", seed=0))


# --------------------------------------------------------------------------- fidelity (slow)
#: the authors' own code on the crop below, run on this project's CPU (SPECS section 3, issue 17):
#: PSNR / SSIM / SAM by their MSIQA (PSNR per band, Gaussian 11x11 SSIM on x255 data, SAM in rad).
#: Targets to come within, never table values.
AUTHORS_CROP = {("star_net", "sigma50_bandwise"): (34.16, 0.940, 0.218),
                ("smds_net", "icvl_sigma55"): (32.75, 0.883, 0.300)}


def authors_crop(data_root):
    """The top-left 96x96 crop of CAVE chart_and_stuffed_toy divided by its maximum, and the
    noisy cube: + rng(0) standard normal x 50/255, float32 (the issue's fidelity input)."""
    import scipy.io
    raw = scipy.io.loadmat(f"{data_root}/hsi/cave/chart_and_stuffed_toy_256.mat")["NRD"][:96, :96]
    gt = raw.astype(np.float64) / raw.max()
    noisy = (gt + np.random.default_rng(0).standard_normal((96, 96, 31)) * 50 / 255).astype(np.float32)
    return gt, noisy


@pytest.mark.slow
@pytest.mark.parametrize("method, name", sorted(AUTHORS_CROP))
def test_ports_reproduce_the_authors_code_on_the_cave_crop(published_root, data_root, method, name):
    """``python -m pytest -m slow -k authors_code``: about 2 minutes per network on one thread."""
    from bench.metrics import hsi as M
    gt, noisy = authors_crop(data_root)
    m = R.METHODS[method](checkpoint=f"published:{name}", **({"l_update": "released"} if method == "star_net" else {}))
    m.setup(R.MethodContext(device="cpu", seed=0))
    out = m.denoise(torch.from_numpy(noisy), 50 / 255, None).double().numpy()
    psnr, ssim, sam = AUTHORS_CROP[method, name]
    assert abs(M.starnet_psnr(out, gt) - psnr) <= 0.1
    assert abs(M.ssim(out, gt) - ssim) <= 0.005
    assert abs(M.starnet_sam(out, gt) - sam) <= 0.005


def test_star_net_penalty_is_used_as_a_positive_value():
    """beta enters the L update as max(|beta|, BETA_FLOOR): a sign flip changes nothing and a
    zero beta gives a finite output (free, beta went negative in training here)."""
    g = torch.Generator().manual_seed(0)
    rows = torch.randn(2 * 16, 729, generator=g) * 0.1
    net = hn.CubeNet(hn.STAR_NET)
    with torch.no_grad():
        ref = net(rows, slab=16)
        for p in net.penalty:
            p.neg_()
        assert torch.allclose(net(rows, slab=16), ref, atol=1e-6)
        for p in net.penalty:
            p.zero_()
        assert torch.isfinite(net(rows, slab=16)).all()


def test_nlm_prefilter_gives_the_same_blocks_with_more_threads():
    """The blocks are filtered by as many Python threads as torch has (scikit-image releases
    the GIL): the output must not depend on it (nor its dtype)."""
    blocks = np.random.default_rng(0).random((3, 20, 20, 5), dtype=np.float32)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = hb.nlm_prefilter(blocks)
        torch.set_num_threads(2)
        two = hb.nlm_prefilter(blocks)
    finally:
        torch.set_num_threads(previous)
    assert one.dtype == np.float32 and one.shape == blocks.shape
    assert np.array_equal(one, two) and not np.array_equal(one, blocks)


def test_subspace_floor_reaches_a_low_rank_cube_and_drops_when_capped_below_its_rank():
    """The pipeline's floor (the clean blocks projected on the noisy blocks' HySime bases):
    a cube of spectral rank 3 with little noise is nearly reached through 9 dimensions, and
    capping the basis at one dimension costs many dB (the measure of docs' "subspace cap")."""
    from bench.datasets.hsi import synthetic_cube
    from bench.metrics import hsi as M
    from bench.methods.hsi.diagnostics import subspace_floor
    clean = torch.from_numpy(synthetic_cube(32, 32, 12, 3, 0)).float()
    noisy = clean + 0.002 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    floors = subspace_floor(clean, noisy, max_ranks=(9, 1), block=16, stride=8)
    ref = clean.double().numpy()
    assert M.psnr(floors[9], ref) > 45.0
    assert M.psnr(floors[1], ref) < M.psnr(floors[9], ref) - 5.0


# --------------------------------------------------------------------------- shared subspaces
def test_subspaces_shared_between_rows_give_the_same_output_bit_for_bit():
    """The learned rows of a cell reuse the blocks' subspace bases of the same noisy cube
    (SubspaceCache): each row's output is exactly what it computes alone, and the reuse is
    counted in seconds (added to the row's time by the runner)."""
    _, noisy = _cube(5, h=20, w=20, b=12, k=3, sigma=0.1)
    y = torch.from_numpy(noisy.astype(np.float32))
    smds, star = hn.CubeNet(hn.SMDS_NET), hn.CubeNet(hn.STAR_NET)
    cache = hb.SubspaceCache()
    a = hb.denoise_cube(smds, y, block=16, stride=4, cache=cache)
    assert cache.reused_s == 0 and len(cache.entries) == 1
    b = hb.denoise_cube(star, y, block=16, stride=4, cache=cache)
    assert cache.reused_s > 0 and len(cache.entries) == 1
    assert torch.equal(a, hb.denoise_cube(smds, y, block=16, stride=4))
    assert torch.equal(b, hb.denoise_cube(star, y, block=16, stride=4))
    # another cube, geometry or rank cap is another entry, computed
    reused = cache.reused_s
    hb.denoise_cube(smds, y + 0.01, block=16, stride=4, cache=cache)
    hb.denoise_cube(smds, y, block=16, stride=8, cache=cache)
    hb.denoise_cube(smds, y, block=16, stride=4, max_rank=2, cache=cache)
    assert cache.reused_s == reused and len(cache.entries) == 4


@pytest.mark.slow   # three learned cells (~1 min on a loaded core)
def test_a_row_that_reuses_the_subspace_is_timed_as_if_alone(tmp_path):
    """Two learned rows of one cell in one process: the second reuses the subspace; its
    metrics are those of a run without reuse and its time includes the reused seconds."""
    from bench.grid import build_cells
    from bench.runner import RunOptions, execute
    cells = build_cells("hsi", ["hsi_synthetic[n_cubes=1,size=24]"], ["hsi_gaussian[sigma=30]"],
                        ["smds_net[checkpoint=none,block=16,block_stride=8]",
                         "star_net[checkpoint=none,block=16,block_stride=8,l_update=released]"], ["cpu"], 0)
    opts = RunOptions(repeat=1, warmup=False)
    hb.SUBSPACES.entries.clear()
    first, _ = execute(cells[0], opts)
    second, _ = execute(cells[1], opts)
    assert first.status == second.status == "ok"
    assert "reused_s" not in first.extras.other and second.extras.other["reused_s"] > 0
    assert second.time_s >= second.extras.other["reused_s"]
    hb.SUBSPACES.entries.clear()
    alone, _ = execute(cells[1], opts)
    assert alone.metrics == second.metrics and "reused_s" not in alone.extras.other
