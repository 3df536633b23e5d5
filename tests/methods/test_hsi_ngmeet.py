"""NGMeet (methods/hsi/ngmeet.py): it denoises, and its pieces on closed-form cases: block
matching, the WNNM shrinkage, the ParSetH table, the parameter checks."""
from __future__ import annotations

import math

import pytest
import torch

from bench import registry as R
from bench.datasets.hsi import HsiData, default_rgb, synthetic_cube
from bench.errors import BadParameterError
from bench.methods.hsi.ngmeet import (block_matching, key_positions, ngmeet, ngmeet_defaults, wnnm_groups,
                                      wnnm_shrink)

R.load_all()


def _task(size=32, bands=31, sigma=30.0, device="cpu"):
    clean = torch.from_numpy(synthetic_cube(size, size, bands, 4, seed=5))
    data = HsiData(cubes=(clean,), names=("t",), rgb_bands=default_rgb(bands), instance_id="t")
    suite = R.SUITES["hsi"]
    return suite, suite.make_task(data, R.DEGRADATIONS["hsi_gaussian"](sigma=sigma), 7, device)


@pytest.mark.parametrize("sigma", [10.0, 50.0])
def test_ngmeet_denoises_with_a_clear_margin(sigma):
    suite, task = _task(size=32, bands=31, sigma=sigma)
    noisy = suite.score(task, task.inputs.noisy)[0]["psnr"]
    out = R.METHODS["ngmeet"]().run(task.inputs)
    suite.validate_output(task, out)
    assert out[0].dtype == task.inputs.noisy[0].dtype and out[0].shape == task.inputs.noisy[0].shape
    assert suite.score(task, out)[0]["psnr"] > noisy + 10


def test_ngmeet_beats_subspace_tv_on_the_synthetic_cube():
    suite, task = _task(size=32, bands=31, sigma=30.0)
    ng = suite.score(task, R.METHODS["ngmeet"]().run(task.inputs))[0]["psnr"]
    sub = suite.score(task, R.METHODS["subspace_tv"]().run(task.inputs))[0]["psnr"]
    assert ng > sub


def test_key_positions_cover_the_grid_as_neighborindex():
    # MATLAB: [1:4:12, 10:12] -> 1, 5, 9, 10, 11, 12 (1-based)
    assert key_positions(12, 4).tolist() == [0, 4, 8, 9, 10, 11]
    assert key_positions(9, 4).tolist() == [0, 4, 8]
    assert key_positions(1, 4).tolist() == [0]


def test_block_matching_puts_the_key_patch_first_and_sorts_by_distance():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(20, 23, generator=g, dtype=torch.float64)
    ps, sw, step, n = 5, 6, 4, 30
    keys, matches = block_matching(img, ps, sw, step, n)
    tr, tc = 20 - ps + 1, 23 - ps + 1
    grid_r, grid_c = key_positions(tr, step).tolist(), key_positions(tc, step).tolist()
    assert keys.tolist() == [r * tc + c for r in grid_r for c in grid_c]
    assert matches.shape == (len(keys), n)
    assert torch.equal(matches[:, 0], keys)
    patches = torch.nn.functional.unfold(img[None, None], ps)[0].T
    for i in (0, 5, len(keys) - 1):
        kr, kc = divmod(int(keys[i]), tc)
        d = (patches[matches[i]] - patches[keys[i]]).pow(2).sum(1)
        assert torch.all(d[1:] >= d[:-1])
        # the brute-force n nearest candidates inside the clipped window
        cand = [r * tc + c for r in range(max(kr - sw, 0), min(kr + sw, tr - 1) + 1)
                for c in range(max(kc - sw, 0), min(kc + sw, tc - 1) + 1)]
        dc = (patches[cand] - patches[keys[i]]).pow(2).sum(1)
        want = sorted(dc.tolist())[:n]
        torch.testing.assert_close(d, torch.tensor(want, dtype=d.dtype))
        assert set(matches[i].tolist()) <= set(cand)


def test_block_matching_caps_patnum_at_the_smallest_window():
    img = torch.rand(12, 12, generator=torch.Generator().manual_seed(1))
    _, matches = block_matching(img, 5, 30, 4, 500)
    assert matches.shape[1] == 64            # 8 x 8 patch positions, all in every window


def test_wnnm_shrink_is_the_closed_form():
    s = torch.tensor([10.0, 5.0, 2.0, 1.0], dtype=torch.float64)
    c = torch.tensor(4.0, dtype=torch.float64)
    # root of s_hat^2 - s s_hat + C = 0 (the stationary point of (s - x)^2 / 2 + C / x ...) where real
    want = torch.tensor([(10 + math.sqrt(100 - 16)) / 2, (5 + math.sqrt(25 - 16)) / 2, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(wnnm_shrink(s, c), want)
    assert wnnm_shrink(torch.tensor([4.0]), torch.tensor(4.0)).item() == 0.0   # discriminant 0: not kept


@pytest.mark.parametrize("method", ["gram", "svd"])
@pytest.mark.parametrize("n,d", [(12, 30), (30, 12)])
def test_wnnm_groups_on_a_group_with_a_known_spectrum(method, n, d):
    g = torch.Generator().manual_seed(2)
    # X = U S V^T with U orthogonal to the ones vector: the group's mean patch is zero, so
    # that S is the spectrum WNNM sees once the mean patch below is removed again
    r = min(n - 1, d)
    ones = torch.ones(n, 1, dtype=torch.float64)
    u = torch.linalg.qr(torch.cat([ones, torch.randn(n, r, generator=g, dtype=torch.float64)], 1))[0][:, 1:r + 1]
    v = torch.linalg.qr(torch.randn(d, r, generator=g, dtype=torch.float64))[0]
    spectrum = torch.linspace(40, 1, r, dtype=torch.float64)
    x = (u * spectrum) @ v.T
    mean = torch.randn(1, d, generator=g, dtype=torch.float64)
    sigma = torch.tensor([1.3], dtype=torch.float64)
    c1 = 5 * math.sqrt(2)
    out = wnnm_groups((x + mean)[None], c1, sigma, method)[0]
    c = c1 * math.sqrt(n) * 2 * 1.3 ** 2
    shrunk = torch.where(spectrum ** 2 > 4 * c, (spectrum + torch.sqrt((spectrum ** 2 - 4 * c).clamp_min(0))) / 2, 0)
    want = (u * shrunk) @ v.T + mean
    torch.testing.assert_close(out, want, atol=1e-8, rtol=1e-8)
    assert 0 < int((shrunk > 0).sum()) < r          # the case keeps some and drops some


def test_wnnm_gram_and_svd_agree_in_float32():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(7, 40, 75, generator=g) * 10
    sigma = torch.full((7,), 2.0)
    torch.testing.assert_close(wnnm_groups(x, 7.07, sigma, "gram"), wnnm_groups(x, 7.07, sigma, "svd"),
                               atol=2e-3, rtol=1e-4)


@pytest.mark.parametrize("sigma,bands,want", [
    (10, 31, (150, 0.54, 8, 5)), (10.1, 31, (150, 0.54, 8, 5)), (30, 31, (150, 0.56, 6, 5)),
    (50, 31, (150, 0.56, 5, 5)), (70, 31, (200, 0.58, 4, 5)),
    (10, 80, (150, 0.54, 6, 5)), (50, 80, (150, 0.58, 5, 5)), (100, 100, (200, 0.58, 4, 5)),
    (10, 191, (150, 0.54, 5, 8)), (30, 224, (150, 0.56, 6, 8)), (50, 224, (150, 0.58, 5, 8)),
    (70, 250, (200, 0.58, 4, 8)), (30, 400, (150, 0.56, 6, 8)),
])
def test_defaults_follow_parseth(sigma, bands, want):
    p = ngmeet_defaults(sigma, bands)
    assert (p["patnum"], p["lam"], p["k0"]) == want[:3]
    assert p["c1"] == pytest.approx(want[3] * math.sqrt(2))


def test_method_parameters_resolve_auto_and_overrides():
    m = R.METHODS["ngmeet"]()
    assert m.params["k0"] == "auto" and m.params["n_iter"] == 5 and m.params["search_win"] == 30
    assert R.METHODS["ngmeet"](k0=3, lam=0.5).params["k0"] == 3


@pytest.mark.parametrize("params", [{"n_iter": 0}, {"k0": 0}, {"k0": "big"}, {"patnum": 1}, {"lam": -0.1},
                                    {"c1": "x"}, {"step": 0}, {"search_win": 0}])
def test_bad_parameters_are_refused_by_name(params):
    with pytest.raises(BadParameterError, match=next(iter(params))):
        R.METHODS["ngmeet"](**params)


def test_patnum_too_small_for_the_passes_is_a_clear_error():
    suite, task = _task(size=16, bands=8)
    with pytest.raises(BadParameterError, match="patnum"):
        R.METHODS["ngmeet"](patnum=30).run(task.inputs)      # 3 block matchings need > 30
    with pytest.raises(ValueError, match="patnum"):
        ngmeet(task.inputs.noisy[0], 30.0, k0=4, patnum=20, lam=0.5, c1=7.0, n_iter=5)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="sigma"):
        ngmeet_defaults(-1.0, 31)
    with pytest.raises(ValueError, match="sigma"):
        ngmeet_defaults(float("nan"), 31)
    with pytest.raises(ValueError, match="cube"):
        ngmeet(torch.zeros(8, 8), 10.0, k0=4, patnum=150, lam=0.5, c1=7.0)
    with pytest.raises(ValueError, match="patch"):
        ngmeet(torch.zeros(3, 8, 4), 10.0, k0=4, patnum=150, lam=0.5, c1=7.0)
    with pytest.raises(ValueError, match="wnnm"):
        ngmeet(torch.rand(8, 8, 4), 10.0, k0=2, patnum=150, lam=0.5, c1=7.0, wnnm="qr")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_agrees_with_cpu():
    suite, task = _task(size=32, bands=31, sigma=30.0)
    _, task_gpu = _task(size=32, bands=31, sigma=30.0, device="cuda")
    cpu = R.METHODS["ngmeet"]().run(task.inputs)[0]
    gpu = R.METHODS["ngmeet"]().run(task_gpu.inputs)[0]
    assert gpu.device.type == "cuda"
    assert abs(suite.score(task, (gpu.cpu(),))[0]["psnr"] - suite.score(task, (cpu,))[0]["psnr"]) < 0.05


def test_the_suite_runs_ngmeet_and_its_report_puts_it_after_lrtdtv():
    from bench.suites.hsi import CLASSICAL, METHODS
    from bench.suites.hsi_report_common import classical_first_as_listed

    assert "ngmeet" in METHODS and CLASSICAL.index("ngmeet") == CLASSICAL.index("lrtdtv") + 1
    suite = R.SUITES["hsi"]
    assert all("ngmeet" in p.methods for p in suite.grid) and "ngmeet" in suite.quick.methods and "ngmeet" in suite.smoke.methods
    registered = ["noisy", "bm4d", "lrtdtv", "subspace_tv", "ngmeet[k0=3]", "ngmeet", "smds_net[max_rank=9]"]
    assert classical_first_as_listed(registered) == ["noisy", "bm4d", "lrtdtv", "ngmeet[k0=3]", "ngmeet",
                                                      "subspace_tv", "smds_net[max_rank=9]"]
