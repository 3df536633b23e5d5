"""What a ``cs`` method receives, and the pieces classical and learned methods share.

A method gets :class:`CsInput` for a whole image set: per image its block measurements
(n_blocks, m) in the raster block order of ISTA-Net (:func:`bench.operators.image_to_blocks`)
and its size, the sampling matrix Phi (m, 1089, orthonormal rows) and the initial map Qinit
(1089, m). It returns one image (H, W) per input, on the inputs' device and dtype, not
clipped (the suite's protocol clips to [0, 1] before scoring).

Methods reconstruct the zero-padded image (a multiple of 33 on each side) and crop it, as
the authors' test script does: on the padded image the operator A (every block measured by
Phi) satisfies A A^T = I, which the closed-form data steps below use.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.operators import blocks_to_image, crop, image_to_blocks, padded_size

BLOCK = 33


@dataclass(frozen=True)
class CsInput:
    measurements: tuple[torch.Tensor, ...]   # per image (n_blocks, m)
    shapes: tuple[tuple[int, int], ...]      # per image (H, W) before padding
    phi: torch.Tensor                        # (m, 1089)
    qinit: torch.Tensor                      # (1089, m)
    sigma: float = 0.0                       # measurement noise std ([0, 1] units; 0: none)

    @property
    def padded_shapes(self) -> tuple[tuple[int, int], ...]:
        return tuple((padded_size(h, BLOCK), padded_size(w, BLOCK)) for h, w in self.shapes)

    def stacked(self) -> torch.Tensor:
        """Every image's measurements in one batch of blocks (N, m): methods that work per
        block run on all blocks of the set at once."""
        return torch.cat(self.measurements)

    def split(self, blocks: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The inverse of :meth:`stacked` for reconstructed blocks (N, 1089): one cropped
        image (H, W) per input."""
        sizes = [int(y.shape[0]) for y in self.measurements]
        return tuple(crop(blocks_to_image(b, p, BLOCK), s)
                     for b, p, s in zip(torch.split(blocks, sizes), self.padded_shapes, self.shapes))

    def subset(self, index: list[int]) -> "CsInput":
        return CsInput(tuple(self.measurements[i] for i in index), tuple(self.shapes[i] for i in index),
                       self.phi, self.qinit, self.sigma)


def initial_blocks(inputs: CsInput) -> torch.Tensor:
    """x0 = Qinit y for every block (N, 1089): the authors' initialisation, which every
    method here starts from."""
    return inputs.stacked() @ inputs.qinit.T


def gradient_step(x: torch.Tensor, phi_t_phi: torch.Tensor, phi_t_y: torch.Tensor, step) -> torch.Tensor:
    """One gradient step on 0.5 ||Phi x - y||^2 for blocks in rows, written as ISTA-Net
    writes it: x - step x Phi^T Phi + step Phi^T y (``step`` a number or a 0-dim/1-element
    tensor). ISTA, FISTA and ISTA-Net share it."""
    return x - step * (x @ phi_t_phi) + step * phi_t_y


# --------------------------------------------------------------------------- images
def padded_images(inputs: CsInput, blocks: torch.Tensor) -> list[torch.Tensor]:
    """Blocks (N, 1089) as the padded images (Hp, Wp) they tile, one per input."""
    sizes = [int(y.shape[0]) for y in inputs.measurements]
    return [blocks_to_image(b, p, BLOCK) for b, p in zip(torch.split(blocks, sizes), inputs.padded_shapes)]


def data_prox(v: torch.Tensor, phi: torch.Tensor, phi_t_y: torch.Tensor, rho: float) -> torch.Tensor:
    """argmin_x 0.5 ||A x - y||^2 + rho/2 ||x - v||^2 for a padded image v (Hp, Wp) whose
    blocks are measured by Phi with orthonormal rows: per block
    x = (Phi^T Phi + rho I)^-1 (Phi^T y + rho v) = (b - Phi^T Phi b / (1 + rho)) / rho with
    b = Phi^T y + rho v (Woodbury with Phi Phi^T = I). ``phi_t_y`` is (n_blocks, 1089)."""
    shape = tuple(v.shape[-2:])
    b = phi_t_y + rho * image_to_blocks(v, BLOCK)
    x = (b - (b @ phi.T) @ phi / (1.0 + rho)) / rho
    return blocks_to_image(x, shape, BLOCK)


def group_by_shape(shapes) -> dict[tuple[int, int], list[int]]:
    """Image indices grouped by padded shape (images of one shape run as one batch)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, s in enumerate(shapes):
        groups.setdefault(tuple(s), []).append(i)
    return groups
