"""The one Gaussian noise model (bench.datasets.gaussian) and the four suites' degradations
built on it: each degradation gives bit for bit the noisy data of the formula it had before
(written out here) and leaves the generator where that formula left it."""
from __future__ import annotations

import pytest
import torch

from bench.datasets import cs as CS
from bench.datasets import hsi_noise as H
from bench.datasets.gaussian import Gaussian
from bench.datasets.istd_noise import GaussianNoise
from bench.datasets.noise import AwgnSnr

DTYPES = [torch.float32, torch.float64]


def _same(new, old, g_new, g_old):
    assert new.dtype == old.dtype and torch.equal(new, old)
    assert torch.equal(g_new.get_state(), g_old.get_state())


def _gens(seed=7):
    return torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- the former formulas
def _awgn_before(clean, snr, g):
    std = clean.std(dim=-1, keepdim=True) * 10 ** (-snr / 20)
    noise = torch.randn(clean.shape, generator=g, dtype=clean.dtype)
    return clean + std * noise


def _istd_before(image, sigma, g):
    noise = torch.randn(image.shape, generator=g, dtype=torch.float64)
    return (image.double() + sigma * noise).clamp(0, 255).to(image.dtype)


def _hsi_iid_before(clean, s, g):
    noise = torch.randn(clean.shape, generator=g, dtype=torch.float64)
    return clean + s * noise.to(clean.dtype)


def _cs_before(measurements, sigma, g):
    noise = torch.randn(measurements.shape, generator=g, dtype=torch.float64)
    return measurements + (sigma / 255.0) * noise.to(measurements.dtype)


def _hsi_mixed_before(clean, p, g):
    h, w, bands = clean.shape
    sig = H._uniform(p["sigma_min"], p["sigma_max"], (bands,), g) / 255.0
    noisy = clean.to(torch.float64) + sig * torch.randn(clean.shape, generator=g, dtype=torch.float64)
    n_sel = max(1, int(round(bands * float(p["band_fraction"]))))
    ratios = torch.tensor([float(r) for r in p["impulse_ratios"]], dtype=torch.float64)
    for b in torch.randperm(bands, generator=g)[:n_sel].tolist():
        ratio = float(ratios[torch.randint(len(ratios), (1,), generator=g)])
        hit = torch.rand(h, w, generator=g, dtype=torch.float64) < ratio
        salt = torch.rand(h, w, generator=g, dtype=torch.float64) < 0.5
        band = noisy[..., b]
        band[hit & salt] = 1.0
        band[hit & ~salt] = 0.0
    lo, hi = int(float(p["stripe_min"]) * w), max(int(float(p["stripe_max"]) * w), int(float(p["stripe_min"]) * w) + 1)
    for b in torch.randperm(bands, generator=g)[:n_sel].tolist():
        n_cols = int(torch.randint(lo, hi, (1,), generator=g))
        cols = torch.randperm(w, generator=g)[:n_cols]
        shift = H._uniform(-0.25, 0.25, (n_cols,), g)
        noisy[:, cols, b] -= shift
    return noisy.to(clean.dtype), sig


# --------------------------------------------------------------------------- bit for bit, per suite
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("snr", [10.0, 25.0, float("inf")])
def test_sparse_awgn_is_the_former_formula(dtype, snr):
    clean = torch.randn(6, 50, generator=torch.Generator().manual_seed(1), dtype=dtype)
    g_new, g_old = _gens()
    new = AwgnSnr(snr_db=snr).apply(clean, g_new)
    old = clean.clone() if snr == float("inf") else _awgn_before(clean, snr, g_old)
    _same(new, old, g_new, g_old)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sigma", [0.0, 10.0, 30.0])
def test_istd_gaussian_is_the_former_formula(dtype, sigma):
    image = torch.rand(24, 20, generator=torch.Generator().manual_seed(2), dtype=dtype) * 255
    image[0, :5], image[1, :5] = 0.0, 255.0                     # some pixels to clip
    g_new, g_old = _gens()
    _same(GaussianNoise(sigma=sigma).apply(image, g_new), _istd_before(image, sigma, g_old), g_new, g_old)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sigma", [10.0, 30.0, 70.0])
def test_hsi_gaussian_is_the_former_formula(dtype, sigma):
    clean = torch.rand(12, 10, 5, generator=torch.Generator().manual_seed(3), dtype=dtype)
    g_new, g_old = _gens()
    new, draw = H.HsiGaussian(sigma=sigma).apply(clean, g_new)
    s = sigma / 255.0
    _same(new, _hsi_iid_before(clean, s, g_old), g_new, g_old)
    assert draw.sigma == s and torch.equal(draw.sigma_bands, torch.full((5,), s))


@pytest.mark.parametrize("dtype", DTYPES)
def test_hsi_blind_is_the_former_formula(dtype):
    clean = torch.rand(12, 10, 5, generator=torch.Generator().manual_seed(4), dtype=dtype)
    g_new, g_old = _gens()
    new, draw = H.HsiBlind().apply(clean, g_new)
    s = float(H._uniform(10.0, 70.0, (1,), g_old)) / 255.0
    _same(new, _hsi_iid_before(clean, s, g_old), g_new, g_old)
    assert draw.sigma == s and not draw.known


@pytest.mark.parametrize("dtype", DTYPES)
def test_hsi_mixed_is_the_former_formula_and_draws_on_after_the_gaussian_part(dtype):
    clean = torch.rand(20, 30, 9, generator=torch.Generator().manual_seed(5), dtype=dtype)
    g_new, g_old = _gens()
    deg = H.HsiMixed()
    new, draw = deg.apply(clean, g_new)
    old, sig = _hsi_mixed_before(clean, deg.params, g_old)
    _same(new, old, g_new, g_old)
    assert torch.equal(draw.sigma_bands, sig)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sigma", [0.0, 10.0, 25.0])
def test_cs_measurement_noise_is_the_former_formula(dtype, sigma):
    y = torch.randn(8, 109, generator=torch.Generator().manual_seed(6), dtype=dtype)
    g_new, g_old = _gens()
    old = y.clone() if sigma == 0 else _cs_before(y, sigma, g_old)
    _same(CS.MeasurementNoise(sigma=sigma).apply(y, g_new), old, g_new, g_old)


# --------------------------------------------------------------------------- the model itself
def test_the_scale_divides_sigma_and_the_clip_bounds_the_result():
    g = torch.Generator().manual_seed(0)
    zeros = torch.zeros(200_000, dtype=torch.float64)
    assert float(Gaussian(scale=255.0).add(zeros, 51.0, g).std()) == pytest.approx(0.2, rel=0.01)
    assert float(Gaussian(scale=1.0).add(zeros, 3.0, g).std()) == pytest.approx(3.0, rel=0.01)
    per_row = Gaussian(scale=255.0).add(torch.zeros(2, 100_000), torch.tensor([[25.5], [76.5]]), g)
    torch.testing.assert_close(per_row.std(dim=1), torch.tensor([0.1, 0.3]), rtol=0.01, atol=0)
    near_top = torch.full((100_000,), 250.0)
    clipped = Gaussian(clip=(0.0, 255.0), arithmetic="float64").add(near_top, 10.0, g)
    assert clipped.dtype == torch.float32 and float(clipped.max()) == 255.0 and float(clipped.min()) >= 0.0
    assert 0.25 < float((clipped == 255.0).float().mean()) < 0.40      # P(N(0, 10) > 5) = 0.31
    unclipped = Gaussian(arithmetic="float64").add(near_top, 10.0, g)
    assert float(unclipped.max()) > 255.0


def test_the_degradations_use_their_scale_and_clip():
    g = torch.Generator().manual_seed(0)
    assert float(CS.MeasurementNoise(sigma=25.5).apply(torch.zeros(400, 500, dtype=torch.float64), g).std()) \
        == pytest.approx(0.1, rel=0.01)
    y, _ = H.HsiGaussian(sigma=51.0).apply(torch.zeros(100, 100, 20, dtype=torch.float64), g)
    assert float(y.std()) == pytest.approx(0.2, rel=0.01)
    img = GaussianNoise(sigma=10.0).apply(torch.full((300, 300), 252.0), g)
    assert float(img.max()) == 255.0 and 0.3 < float((img == 255.0).float().mean()) < 0.45


def test_the_draw_dtype_is_part_of_the_stream():
    x = torch.zeros(1000, dtype=torch.float32)
    a = Gaussian(draw=None).add(x, 1.0, torch.Generator().manual_seed(0))
    b = Gaussian(draw=torch.float64).add(x, 1.0, torch.Generator().manual_seed(0))
    assert a.dtype == b.dtype == torch.float32 and not torch.equal(a, b)


def test_a_bad_model_is_refused():
    with pytest.raises(ValueError, match="arithmetic"):
        Gaussian(arithmetic="float32")
    with pytest.raises(ValueError, match="scale"):
        Gaussian(scale=0.0)
