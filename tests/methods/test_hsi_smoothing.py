"""box_filter: the real-data study's 3x3 mean reference row."""
from __future__ import annotations

import pytest
import torch

from bench import registry as R

R.load_all()


def test_box_filter_is_a_per_band_mean_with_reflected_borders():
    x = torch.rand(7, 6, 3, dtype=torch.float64)
    out = R.METHODS["box_filter"](size=3).denoise(x, 0.0, None)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.allclose(out[3, 2], x[2:5, 1:4].mean(dim=(0, 1)))
    # corner: rows/cols reflected (-1 -> 1)
    rows, cols = [1, 0, 1], [1, 0, 1]
    want = torch.stack([x[r, c] for r in rows for c in cols]).mean(dim=0)
    assert torch.allclose(out[0, 0], want)
    assert torch.equal(R.METHODS["box_filter"](size=1).denoise(x, 0.0, None), x)
    with pytest.raises(ValueError, match="odd"):
        R.METHODS["box_filter"](size=4).denoise(x, 0.0, None)
