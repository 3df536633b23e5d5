"""What an ``hsi`` method receives, shared by classical and learned methods.

A method gets :class:`HsiInput` for a whole sample set and returns a tuple of denoised
cubes, one (H, W, B) tensor per noisy cube, on the inputs' device and dtype.

``sigma`` is the noise std on the [0, 1] data scale that the method may use: the true
sigma in the non-blind Gaussian cases (``sigma_source == "true"``), otherwise the
estimate of :func:`bench.datasets.hsi_noise.estimate_sigma` (median absolute deviation of
the finest diagonal Haar wavelet coefficients / 0.6745, per band; the scalar is their root
mean square) made by the suite before timing (``sigma_source == "estimated"``). Methods
that need no sigma ignore it.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from bench.registry import Method


@dataclass(frozen=True)
class HsiInput:
    noisy: tuple[torch.Tensor, ...]        # each (H, W, B)
    sigma: tuple[float, ...]               # per cube, [0, 1] scale
    sigma_bands: tuple[torch.Tensor, ...]  # per cube, (B,)
    sigma_source: str = "true"             # "true" (non-blind) or "estimated" (blind, mixed)


#: CPU cubes with fewer voxels than this run single-threaded: on a loaded 2-core machine
#: torch's OpenMP fork/join made LRTDTV on a 32x32x31 cube 40x slower with 2 threads
#: (31 s against 0.76 s, measured), and small cubes gain nothing from threads.
SINGLE_THREAD_VOXELS = 1 << 20


@contextmanager
def cpu_threads_for(cube: torch.Tensor):
    """Use one torch thread for a small CPU cube, restore the setting afterwards."""
    old = torch.get_num_threads()
    limit = cube.device.type == "cpu" and cube.numel() < SINGLE_THREAD_VOXELS and old > 1
    if limit:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if limit:
            torch.set_num_threads(old)


class HsiMethod(Method):
    """Base of the ``hsi`` methods: ``run`` denoises cube by cube with ``denoise`` (small CPU
    cubes single-threaded, see :func:`cpu_threads_for`)."""

    suite = "hsi"
    family = "classical"
    devices = ("cpu", "cuda")

    def run(self, inputs: HsiInput) -> tuple[torch.Tensor, ...]:
        out = []
        for y, s, sb in zip(inputs.noisy, inputs.sigma, inputs.sigma_bands):
            with cpu_threads_for(y):
                out.append(self.denoise(y, s, sb))
        return tuple(out)

    def denoise(self, noisy: torch.Tensor, sigma: float, sigma_bands: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
