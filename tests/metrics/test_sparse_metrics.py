import math

import torch

from bench.metrics.sparse import nmse_db, nmse_db_fast


def test_nmse_is_a_ratio_of_totals_not_a_mean_of_ratios():
    x = torch.tensor([[1.0, 0.0], [10.0, 0.0]])
    xh = torch.tensor([[0.0, 0.0], [10.0, 0.0]])  # sample 1 entirely wrong, sample 2 exact
    # ratio of totals: 1 / 101; a mean of ratios would give (1 + 0) / 2
    assert math.isclose(nmse_db(xh, x), 10 * math.log10(1 / 101), rel_tol=1e-12)


def test_nmse_of_zero_estimate_is_zero_db():
    x = torch.randn(7, 11)
    assert abs(nmse_db(torch.zeros_like(x), x)) < 1e-12


def test_fast_curve_variant_agrees_with_the_exact_one():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 500, generator=g)
    xh = x + 0.01 * torch.randn(1000, 500, generator=g)
    exact = nmse_db(xh, x)
    assert abs(nmse_db_fast(xh, x, float(x.double().pow(2).sum())) - exact) < 1e-3
