"""The additive white Gaussian noise model every suite's degradations use.

    noisy = clip(data + (sigma / scale) n),   n ~ N(0, I) drawn from the cell's generator

- ``scale``: the scale sigma is given on: 255 when sigma is in gray levels of 0..255 and the
  data lie in [0, 1] (hsi cubes, cs measurements), 1 when sigma is on the data's own scale
  (istd images in gray levels; the sparse suite's per-sample std from the SNR).
- ``sigma``: a number, or a tensor that broadcasts against the data (one std per sample or
  per band).
- ``clip``: ``(lo, hi)`` to clamp the result to (istd: 0..255), or None.
- ``draw``: the dtype n is drawn in: float64, or None for the data's own dtype (the sparse
  suite). The draw decides the random stream, so it is part of the model.
- ``arithmetic``: ``"data"`` (n is cast to the data's dtype and added there) or
  ``"float64"`` (the data are promoted, the sum is clipped there and cast back).

:meth:`Gaussian.add` computes exactly ``data + std * n`` in that order, so a degradation
that moved onto it draws and rounds as it did before (the suites' seeded noisy inputs,
and with them the stored numbers, do not move).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

ARITHMETIC = ("data", "float64")


@dataclass(frozen=True)
class Gaussian:
    scale: float = 1.0
    clip: tuple[float, float] | None = None
    draw: torch.dtype | None = torch.float64
    arithmetic: str = "data"

    def __post_init__(self):
        if self.arithmetic not in ARITHMETIC:
            raise ValueError(f"arithmetic {self.arithmetic!r}: expected one of {', '.join(ARITHMETIC)}")
        if not self.scale > 0:
            raise ValueError(f"scale {self.scale!r}: expected a positive number")

    def std(self, sigma):
        """sigma / scale: the noise std on the data's scale (a number or a tensor, as given)."""
        return sigma if self.scale == 1 else sigma / self.scale

    def add(self, data: torch.Tensor, sigma, generator: torch.Generator) -> torch.Tensor:
        """``data`` plus Gaussian noise of std ``sigma / scale``, clipped; a new tensor of the
        data's dtype. Draws ``data.numel()`` normals from ``generator``."""
        noise = torch.randn(data.shape, generator=generator, dtype=self.draw or data.dtype)
        work = data.to(torch.float64) if self.arithmetic == "float64" else data
        out = work + self.std(sigma) * noise.to(work.dtype)
        if self.clip is not None:
            out = out.clamp(*self.clip)
        return out.to(data.dtype)
