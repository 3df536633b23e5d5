"""This IPI port against the target maps of the authors' own code (Octave 7.3) on SIRST
test images (../shared/data/istd/reference, see its README).

Tolerance: the port performs the same arithmetic in float64 (the SVT through the Gram
matrix's eigen-decomposition instead of an SVD), so the iterates agree to rounding and both
stop at the same iteration; the reference maps are stored as float32. We ask for a relative
error ||mine - ref||_F / ||ref||_F below 1e-4 (float32 storage alone gives ~1e-7; an
iteration more or less, or a different lambda, gives 1e-2 and more) and identical masks
under the default rule. PSTNN has no reference maps (the authors' code does not run
cleanly on these images, see the README), so it is only tested on synthetic scenes.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from bench.datasets.istd import read_folder
from bench.methods.istd.classical import Ipi
from bench.methods.istd.common import IstdInput
from bench.metrics.istd import segment

FAST = ["Misc_23"]                                   # 200x150, the smallest test image
SLOW = ["Misc_274", "Misc_270", "Misc_214", "Misc_316", "Misc_258", "Misc_96", "Misc_111"]


def _compare(data_root, names):
    ref_dir = os.path.join(data_root, "istd", "reference", "ipi_authors")
    if not os.path.isdir(ref_dir):
        pytest.skip("no reference maps")
    data = read_folder(os.path.join(data_root, "istd", "sirst-v1"), subset="test", data_root=data_root)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name in names:
            img = data.images[data.names.index(name)]
            mine = Ipi().run(IstdInput((img,))).maps[0].numpy().astype(np.float64)
            ref = np.load(os.path.join(ref_dir, f"{name}.npz"))["target"].astype(np.float64)
            assert mine.shape == ref.shape, name
            rel = np.linalg.norm(mine - ref) / np.linalg.norm(ref)
            assert rel < 1e-4, f"{name}: relative error {rel:.2e}"
            assert torch.equal(segment(torch.from_numpy(mine), "max_norm"),
                               segment(torch.from_numpy(ref), "max_norm")), name
    finally:
        torch.set_num_threads(n)


def test_ipi_matches_authors_code_on_smallest_image(data_root):
    _compare(data_root, FAST)


@pytest.mark.slow
def test_ipi_matches_authors_code_on_more_images(data_root):
    _compare(data_root, SLOW)


def test_ipi_first_iteration_tie_is_counted_out_as_the_authors_do(data_root, monkeypatch):
    """At IPI's first APG iteration the second singular value of G_A = D / 2 equals the
    threshold s_2(D) / 2 in exact arithmetic; the authors' SVD counts it out, the Gram
    route lands on either side by rounding. Simulate the rounding that counts it in (the
    threshold lowered by 1e-9 relative): on Misc_413 the stable-rank counter then stopped the
    APG at iteration 12 with an all-zero map (the authors': 44 iterations, max 0.13), unless
    the port resolves the tie as the authors' arithmetic does."""
    from bench.methods.istd import classical
    exact = classical.svt_top
    monkeypatch.setattr(classical, "svt_top", lambda Y, t: exact(Y, t * (1 - 1e-9)))
    _compare(data_root, ["Misc_413"])
