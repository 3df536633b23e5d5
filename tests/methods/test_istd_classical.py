"""IPI, PSTNN and MPCM: planted targets on synthetic backgrounds, patch tools, guards."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.errors import BadParameterError
from bench.methods.istd.classical import (Ipi, Mpcm, Pstnn, apg_rpca, structure_tensor_prior,
                                          svt_gram, svt_top)
from bench.methods.istd.common import (IstdInput, covering_positions, extract_patches, reassemble,
                                       sliding_positions)


# tiny problems: one torch thread (the shared fixture in tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


def low_rank_scene(h=120, w=130, seed=0):
    """A smooth rank-2 background (gray levels ~60..140) with one 3x3 bright target."""
    g = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, h, dtype=torch.float64)
    x = torch.linspace(0, 1, w, dtype=torch.float64)
    a, b = torch.rand(2, generator=g, dtype=torch.float64)
    bg = 100 + 30 * torch.outer(torch.sin(math.pi * (y + a)), torch.ones(w, dtype=torch.float64)) \
        + 10 * torch.outer(torch.ones(h, dtype=torch.float64), torch.cos(2 * math.pi * (x + b)))
    target = torch.zeros(h, w, dtype=torch.float64)
    target[57:60, 71:74] = 60.0
    mask = target > 0
    return bg, target, mask


@pytest.mark.parametrize("cls", [Ipi, Pstnn])
def test_planted_target_is_separated_from_low_rank_background(cls, device):
    bg, target, mask = low_rank_scene()
    img = (bg + target).to(torch.float32)
    out = cls().run(IstdInput((img.to(device),)))
    tmap = out.maps[0].cpu().double()
    assert tmap.shape == img.shape and torch.isfinite(tmap).all()
    # the target is recovered: its pixels carry the map's largest values ...
    assert tmap[mask].min() > 0.5 * tmap.max()
    # ... and the background residual is small: nothing outside a 1-pixel ring of the target
    # reaches 10 % of the map's maximum, and its energy is < 1 % of the map's
    ring = torch.nn.functional.max_pool2d(mask[None, None].double(), 3, 1, 1)[0, 0] > 0
    assert tmap[~ring].abs().max() < 0.1 * tmap.max()
    assert tmap[~ring].pow(2).sum() < 0.01 * tmap.pow(2).sum()
    # the default rule gives exactly the planted target
    from bench.metrics.istd import segment
    assert torch.equal(segment(tmap, "max_norm"), mask)


def test_mpcm_responds_to_bright_spot_not_to_flat_or_dark():
    img = torch.full((60, 60), 100.0)
    img[30:33, 30:33] = 160.0   # bright 3x3
    img[10:13, 10:13] = 40.0    # dark 3x3
    m = Mpcm().run(IstdInput((img,))).maps[0]
    assert m.argmax() // 60 in (30, 31, 32) and m.argmax() % 60 in (30, 31, 32)
    assert float(m[10:13, 10:13].max()) == 0.0   # polarity=bright
    any_ = Mpcm(polarity="any").run(IstdInput((img,))).maps[0]
    assert float(any_[10:13, 10:13].max()) > 0   # SPECS's literal rule also marks dark spots
    assert float(m[45:, 45:].abs().max()) == 0.0  # flat region


def test_svt_gram_matches_svd():
    g = torch.Generator().manual_seed(1)
    Y = torch.randn(1, 200, 30, generator=g, dtype=torch.float64)
    X, rank, _ = svt_gram(Y, 9.0)
    U, s, Vh = torch.linalg.svd(Y[0], full_matrices=False)
    ref = U @ torch.diag((s - 9.0).clamp(min=0)) @ Vh
    torch.testing.assert_close(X[0], ref, rtol=1e-9, atol=1e-9)
    assert int(rank) == int((s > 9.0).sum())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_svt_top_matches_full_svd(dtype):
    """The partial SVT (only the pairs above the threshold, LAPACK syevr) against a full SVD:
    a matrix with a decaying spectrum, thresholds that keep several, one, and no values."""
    g = torch.Generator().manual_seed(3)
    U, _ = torch.linalg.qr(torch.randn(300, 40, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(40, 40, generator=g, dtype=torch.float64))
    s = 100.0 * 0.8 ** torch.arange(40, dtype=torch.float64)
    Y = (U * s) @ V.T
    for thr in (5.0, 90.0, 150.0):
        X, rank = svt_top(Y.to(dtype), thr)
        ref = (U * (s - thr).clamp(min=0)) @ V.T
        assert rank == int((s > thr).sum())
        tol = 1e-9 if dtype == torch.float64 else 1e-4
        assert float(torch.linalg.norm(X.double() - ref)) <= tol * max(float(torch.linalg.norm(ref)), 1.0)
        assert X.dtype == dtype
    # and it is the same operator as the full Gram route it replaced
    X_full, rank_full, _ = svt_gram(Y[None], 5.0)
    X, rank = svt_top(Y, 5.0)
    torch.testing.assert_close(X, X_full[0], rtol=1e-9, atol=1e-9)
    assert rank == int(rank_full)


def test_ipi_precision_parameter():
    bg, target, mask = low_rank_scene()
    img = (bg + target).clamp(0, 255)
    m64 = Ipi().run(IstdInput((img,))).maps[0]
    m32 = Ipi(precision="fp32").run(IstdInput((img,))).maps[0]
    assert m32.dtype == torch.float32
    # fp32 iterates: the same detection, the map within float32 rounding of the fp64 one
    rel = float(torch.linalg.norm(m32 - m64) / torch.linalg.norm(m64))
    assert rel < 1e-2
    assert bool((m32[mask] > 0.5 * m32.max()).all())
    with pytest.raises(BadParameterError, match="precision"):
        Ipi(precision="bf16")


def test_apg_recovers_low_rank_plus_sparse():
    g = torch.Generator().manual_seed(2)
    L = torch.randn(300, 2, generator=g, dtype=torch.float64) @ torch.randn(2, 40, generator=g, dtype=torch.float64)
    S = torch.zeros(300, 40, dtype=torch.float64)
    idx = torch.randperm(300 * 40, generator=g)[:60]
    S.view(-1)[idx] = 5.0
    A, E, iters = apg_rpca((L + S)[None], 1 / math.sqrt(300))
    # IPI's APG stops early (stable rank) and is biased by the l1 shrinkage, so ask for the
    # support: every planted entry of E is larger than every other entry
    planted = torch.zeros(300 * 40, dtype=torch.bool); planted[idx] = True
    e = E[0].abs().view(-1)
    assert float(e[planted].min()) > float(e[~planted].max())
    assert int(iters[0]) >= 1


def test_reassemble_median_and_last_against_loops():
    g = torch.Generator().manual_seed(3)
    H, W, p, st = 37, 45, 10, 4
    img = torch.rand(1, H, W, generator=g, dtype=torch.float64)
    rows, cols = sliding_positions(H, p, st), sliding_positions(W, p, st)
    patches = extract_patches(img, rows, cols, p) + torch.rand(1, len(rows), len(cols), p, p, generator=g,
                                                               dtype=torch.float64)
    med = reassemble(patches, H, W, rows, cols, "median")[0].numpy()
    for (r, c) in [(0, 0), (5, 7), (20, 30), (H - 1, W - 1), (36, 10)]:
        vals = [patches[0, i, j, r - rr, c - cc].item() for i, rr in enumerate(rows) for j, cc in enumerate(cols)
                if rr <= r < rr + p and cc <= c < cc + p]
        assert med[r, c] == pytest.approx(np.median(vals) if vals else 0.0)
    rows2, cols2 = covering_positions(H, p, 8), covering_positions(W, p, 8)
    assert rows2[-1] == H - p and cols2[-1] == W - p
    patches2 = extract_patches(img, rows2, cols2, p)
    last = reassemble(patches2, H, W, rows2, cols2, "last")
    torch.testing.assert_close(last, img)  # patches of the image itself give the image back


def test_pstnn_guards_keep_flat_images_finite():
    flat = torch.full((1, 80, 80), 50.0, dtype=torch.float64)
    w = structure_tensor_prior(flat)
    assert torch.isfinite(w).all() and float(w.abs().max()) == 0.0  # 0/0 guarded to 0
    img = torch.full((80, 80), 50.0); img[40, 40] = 200.0
    out = Pstnn().run(IstdInput((img,)))
    assert torch.isfinite(out.maps[0]).all()


def test_unknown_segmentation_rule_fails_clearly():
    from bench.errors import BadParameterError
    with pytest.raises(BadParameterError, match="segmentation='otsu' is not allowed; segmentation must be one of"):
        Mpcm(segmentation="otsu")
    m = Mpcm()
    m.params["segmentation"] = "otsu"  # set behind the check: run still refuses it
    with pytest.raises(ValueError, match="unknown segmentation rule"):
        m.run(IstdInput((torch.zeros(20, 20),)))


def test_images_of_different_sizes_keep_their_order_and_size():
    a, b, c = torch.rand(64, 70) * 255, torch.rand(80, 66) * 255, torch.rand(64, 70) * 255
    out = Ipi(max_iter=5).run(IstdInput((a, b, c)))
    assert [tuple(m.shape) for m in out.maps] == [(64, 70), (80, 66), (64, 70)]
    single = Ipi(max_iter=5).run(IstdInput((b,)))
    torch.testing.assert_close(out.maps[1], single.maps[0])
    # a and c went through the solver as one batch: each equals its own run
    for k, im in ((0, a), (2, c)):
        torch.testing.assert_close(out.maps[k], Ipi(max_iter=5).run(IstdInput((im,))).maps[0])


def test_batched_ipi_stops_each_image_at_its_own_iteration():
    from bench.datasets.istd_synthetic import synthetic_istd
    _, images, _ = synthetic_istd(3, 5, 100, 100)   # three 100x100 images: one batch
    batch = Ipi()
    out = batch.run(IstdInput(tuple(images)))
    assert len(set(batch.last_iterations)) > 1       # they stop at different iterations
    for k, im in enumerate(images):
        single = Ipi()
        torch.testing.assert_close(out.maps[k], single.run(IstdInput((im,))).maps[0], rtol=0, atol=0)
        assert single.last_iterations == [batch.last_iterations[k]]


def test_ipi_limits_scipys_blas_to_torchs_threads(monkeypatch):
    """The partial SVT calls scipy's BLAS/LAPACK: inside IPI's solver they run on torch's
    thread count, not one thread per core (threadpoolctl), and the limit is lifted after."""
    from threadpoolctl import threadpool_info
    from bench.methods.istd import classical as C

    seen = []
    real = C.svt_top

    def spy(Y, t):
        seen.append([lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"])
        return real(Y, t)

    monkeypatch.setattr(C, "svt_top", spy)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        before = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
        C.apg_rpca(torch.rand(1, 60, 20, dtype=torch.float64), lam=0.2, max_iter=5)
        after = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    finally:
        torch.set_num_threads(n)
    assert seen and all(all(k == 1 for k in threads) for threads in seen), seen
    assert after == before


def test_a_large_set_of_one_size_runs_in_bounded_passes_with_the_same_maps(monkeypatch):
    """Many same-size images (NUDT-SIRST: 664 of 256x256) are run in passes of at most
    MAX_BATCH_PIXELS pixels; the maps are those of one pass (each image is computed alone)."""
    import bench.methods.istd.common as C
    from bench.methods.istd.common import shape_batches
    g = torch.Generator().manual_seed(3)
    images = tuple(torch.rand(24, 20, generator=g) * 255 for _ in range(5)) + (torch.rand(10, 12, generator=g) * 255,)
    assert shape_batches(images, max_pixels=2 * 24 * 20) == [[0, 1], [2, 3], [4], [5]]
    assert shape_batches(images, max_pixels=1) == [[0], [1], [2], [3], [4], [5]]  # at least one image a pass
    assert shape_batches(images) == [[0, 1, 2, 3, 4], [5]]
    whole = Mpcm().run(IstdInput(images))
    monkeypatch.setattr(C, "MAX_BATCH_PIXELS", 2 * 24 * 20)
    monkeypatch.setattr(shape_batches, "__defaults__", (2 * 24 * 20,))
    parts = Mpcm().run(IstdInput(images))
    assert all(torch.equal(a, b) for a, b in zip(whole.maps, parts.maps))
