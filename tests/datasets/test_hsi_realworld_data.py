"""The real Indian Pines cube (tensorly's bundled copy) and the hsi_real degradation."""
from __future__ import annotations

import numpy as np
import torch

from bench import registry as R

R.load_all()


def test_indian_pines_is_the_real_cube_with_its_ground_truth():
    data = R.DATASETS["indian_pines"]().load(None)     # no data root: it ships with tensorly
    cube, labels = data.cubes[0], data.labels[0]
    assert tuple(cube.shape) == (145, 145, 200) and labels.shape == (145, 145)
    assert data.has_reference is False
    assert float(cube.max()) == 1.0 and 0.09 < float(cube.min()) < 0.11     # divided by its max (955..9604)
    counts = np.bincount(labels.ravel())
    assert len(counts) == 17 and counts[1:].sum() == 10249 and counts[0] == 145 * 145 - 10249
    crop = R.DATASETS["indian_pines"](size=32).load(None)
    assert tuple(crop.cubes[0].shape) == (32, 32, 200)
    assert np.array_equal(crop.labels[0], labels[56:88, 56:88])
    assert torch.equal(crop.cubes[0], cube[56:88, 56:88])


def test_hsi_real_adds_nothing_and_hides_sigma():
    x = torch.rand(16, 16, 4, dtype=torch.float64)
    y, draw = R.DEGRADATIONS["hsi_real"]().apply(x, torch.Generator().manual_seed(0))
    assert torch.equal(x, y) and y is not x
    assert draw.known is False and draw.kind == "real" and draw.sigma_bands.shape == (4,)
