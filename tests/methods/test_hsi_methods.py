"""HSI methods: each improves PSNR over the noisy input on a small synthetic cube; the
building blocks (HOSVD projection, TV, rank rule) on closed-form cases."""
from __future__ import annotations

import math

import pytest
import torch

from bench import registry as R
from bench.datasets.hsi import HsiData, default_rgb, synthetic_cube
from bench.methods.hsi.classical import hosvd_project, lrtdtv_rank, tv_chambolle

R.load_all()


def _task(size=32, bands=31, sigma=30.0, degradation="hsi_gaussian"):
    clean = torch.from_numpy(synthetic_cube(size, size, bands, 4, seed=5))
    data = HsiData(cubes=(clean,), names=("t",), rgb_bands=default_rgb(bands), instance_id="t")
    params = {"sigma": sigma} if degradation == "hsi_gaussian" else {}
    suite = R.SUITES["hsi"]
    return suite, suite.make_task(data, R.DEGRADATIONS[degradation](**params), 7, "cpu")


@pytest.mark.parametrize("name,params,gain_db", [
    ("lrtdtv", {}, 8.0),
    ("subspace_tv", {}, 8.0),
    pytest.param("bm4d", {}, 8.0, marks=pytest.mark.slow),  # seconds to tens of seconds
])
def test_method_improves_psnr_over_noisy_input(name, params, gain_db):
    suite, task = _task(size=24, bands=16)
    noisy = suite.score(task, task.inputs.noisy)[0]["psnr"]
    out = R.METHODS[name](**params).run(task.inputs)
    suite.validate_output(task, out)
    assert suite.score(task, out)[0]["psnr"] > noisy + gain_db


@pytest.mark.parametrize("name", ["lrtdtv", "subspace_tv"])
def test_method_copes_with_mixed_noise_given_an_estimated_sigma(name):
    suite, task = _task(size=24, bands=16, degradation="hsi_mixed")
    assert task.inputs.sigma_source == "estimated"
    noisy = suite.score(task, task.inputs.noisy)[0]["psnr"]
    assert suite.score(task, R.METHODS[name]().run(task.inputs))[0]["psnr"] > noisy + 5


def test_noisy_reference_returns_the_input():
    suite, task = _task()
    out = R.METHODS["noisy"]().run(task.inputs)
    assert torch.equal(out[0], task.inputs.noisy[0]) and out[0] is not task.inputs.noisy[0]
    assert R.METHODS["noisy"].family == "reference"


def test_bm4d_is_cpu_only_and_skips_the_warm_up():
    cls = R.METHODS["bm4d"]
    assert cls.devices == ("cpu",) and cls.warmup is False and cls.max_repeat == 1


def test_hosvd_projection_keeps_an_exact_tucker_tensor():
    g = torch.Generator().manual_seed(0)
    core = torch.randn(3, 4, 2, generator=g, dtype=torch.float64)
    factors = [torch.linalg.qr(torch.randn(n, r, generator=g, dtype=torch.float64))[0]
               for n, r in ((10, 3), (9, 4), (7, 2))]
    x = torch.einsum("abc,ia,jb,kc->ijk", core, *factors)
    torch.testing.assert_close(hosvd_project(x, (3, 4, 2)), x)
    assert torch.linalg.norm(hosvd_project(x, (1, 1, 1)) - x) > 1e-3


def test_tv_chambolle_smooths_and_zero_weight_is_identity():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(2, 16, 16, generator=g, dtype=torch.float64)
    torch.testing.assert_close(tv_chambolle(f, torch.zeros(2)), f)
    u = tv_chambolle(f, torch.full((2,), 0.5))
    tv = lambda x: (x[:, 1:] - x[:, :-1]).abs().sum() + (x[:, :, 1:] - x[:, :, :-1]).abs().sum()  # noqa: E731
    assert tv(u) < 0.5 * tv(f)


def test_lrtdtv_rank_rules():
    assert lrtdtv_rank((512, 512, 31), "specs") == (52, 52, 3)
    assert lrtdtv_rank((64, 64, 224), "specs") == (52, 52, 10)
    assert lrtdtv_rank((64, 64, 31)) == (math.ceil(0.8 * 64),) * 2 + (3,)


def test_suite_gives_true_sigma_only_in_non_blind_cases():
    suite, task = _task(sigma=50.0)
    assert task.inputs.sigma_source == "true" and task.inputs.sigma[0] == pytest.approx(50 / 255)
    suite, task = _task(degradation="hsi_blind")
    assert task.inputs.sigma_source == "estimated"
    assert task.inputs.sigma[0] == pytest.approx(task.problem.sigma_true[0], rel=0.1)
