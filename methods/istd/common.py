"""Shared pieces of the ISTD methods: the input and output types and patch tools.

A method gets :class:`IstdInput` (a tuple of gray images of varying size, gray levels
0..255, on the cell's device) and returns :class:`TargetMaps`: one target map per image,
of the image's size, and the name of the segmentation rule that turns a map into a mask
(see ``bench.metrics.istd.SEGMENTATION_RULES``). The rule travels with the output so that
the suite scores with the rule the cell names, and it is stored with the row as a method
parameter.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class IstdInput:
    images: tuple[torch.Tensor, ...]  # (H, W) each, gray levels 0..255


@dataclass(frozen=True)
class TargetMaps:
    maps: tuple[torch.Tensor, ...]  # (H, W) each, larger = more target-like
    segmentation: str = "max_norm"


def groups_by_shape(images) -> dict[tuple[int, int], list[int]]:
    """Indices of the images of each size (methods batch images of one size)."""
    out: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, im in enumerate(images):
        out[tuple(im.shape[-2:])].append(i)
    return out


#: the most pixels one batched pass holds: a set of many same-size images (NUDT-SIRST's 664
#: test images of 256x256) runs in passes of at most this many pixels (32 such images), so
#: that a network's activations stay near 1 GB instead of growing with the set (one pass of
#: all 664 went past 18 GB). No SIRST group comes near it (the largest: 9 images of 320x240)
MAX_BATCH_PIXELS = 1 << 21


def shape_batches(images, max_pixels: int = MAX_BATCH_PIXELS) -> list[list[int]]:
    """The images' indices in batches of one size each (in :func:`groups_by_shape` order),
    each of at most ``max_pixels`` pixels (at least one image)."""
    out = []
    for (h, w), idx in groups_by_shape(images).items():
        per = max(1, int(max_pixels) // max(1, h * w))
        out.extend(idx[k:k + per] for k in range(0, len(idx), per))
    return out


def sliding_positions(length: int, patch: int, step: int) -> list[int]:
    """0-based starts ``0, step, ...`` of the patches that fit (IPI's winRPCA_median)."""
    return list(range(0, length - patch + 1, step))


def covering_positions(length: int, patch: int, step: int) -> list[int]:
    """Starts that cover the whole axis, the last one aligned to the end (PSTNN's
    gen_patch_ten: ceil((L - patch)/step) + 1 patches)."""
    if length <= patch:
        return [0]
    n = -(-(length - patch) // step) + 1
    return [k * step for k in range(n - 1)] + [length - patch]


def extract_patches(images: torch.Tensor, rows: list[int], cols: list[int], patch: int) -> torch.Tensor:
    """(B, H, W) -> (B, nR, nC, patch, patch), patch (i, j) starting at (rows[i], cols[j])."""
    dev = images.device
    r = torch.tensor(rows, device=dev).view(-1, 1) + torch.arange(patch, device=dev).view(1, -1)  # (nR, p)
    c = torch.tensor(cols, device=dev).view(-1, 1) + torch.arange(patch, device=dev).view(1, -1)  # (nC, p)
    out = images[:, r[:, None, :, None], c[None, :, None, :]]  # (B, nR, nC, p, p)
    return out


def _axis_slots(length: int, starts: list[int], patch: int):
    """For each (patch index, offset): the pixel and its slot among the patches covering it."""
    first = [None] * length
    count = [0] * length
    for i, s in enumerate(starts):
        for u in range(patch):
            if first[s + u] is None:
                first[s + u] = i
            count[s + u] += 1
    pix = [[s + u for u in range(patch)] for s in starts]
    slot = [[i - first[s + u] for u in range(patch)] for i, s in enumerate(starts)]
    return pix, slot, max(count)


def reassemble(patches: torch.Tensor, height: int, width: int, rows: list[int], cols: list[int],
               reduce: str = "median") -> torch.Tensor:
    """(B, nR, nC, p, p) -> (B, H, W): the median (MATLAB's: mean of the two middle values
    for an even count) or the mean of the values of the patches that cover each pixel, or
    ``last``: the value of the last patch written in column-major order (PSTNN's code);
    0 where no patch covers a pixel (as the authors' codes leave it)."""
    B, nR, nC, p, _ = patches.shape
    dev = patches.device
    if reduce == "last":  # patches written in column-major order, the last one wins
        out = torch.zeros(B, height, width, dtype=patches.dtype, device=dev)
        for j, c in enumerate(cols):
            for i, r in enumerate(rows):
                out[:, r:r + p, c:c + p] = patches[:, i, j]
        return out
    pr, sr, kr = _axis_slots(height, rows, p)
    pc, sc, kc = _axis_slots(width, cols, p)
    pr, sr = torch.tensor(pr, device=dev), torch.tensor(sr, device=dev)  # (nR, p)
    pc, sc = torch.tensor(pc, device=dev), torch.tensor(sc, device=dev)  # (nC, p)
    slot = sr[:, None, :, None] * kc + sc[None, :, None, :]             # (nR, nC, p, p)
    flat = (slot * height + pr[:, None, :, None]) * width + pc[None, :, None, :]
    K = kr * kc
    nan = torch.full((B, K * height * width), float("nan"), dtype=patches.dtype, device=dev)
    nan.scatter_(1, flat.reshape(1, -1).expand(B, -1), patches.reshape(B, -1))
    values = nan.view(B, K, height, width)
    valid = ~torch.isnan(values)
    n = valid.sum(1)
    if reduce == "mean":
        out = torch.where(valid, values, torch.zeros_like(values)).sum(1) / n.clamp(min=1)
    else:
        srt = torch.where(valid, values, torch.full_like(values, float("inf"))).sort(dim=1).values
        lo = torch.gather(srt, 1, ((n - 1).clamp(min=0) // 2)[:, None]).squeeze(1)
        hi = torch.gather(srt, 1, (n // 2).clamp(max=K - 1)[:, None]).squeeze(1)
        out = 0.5 * (lo + hi)
    return torch.where(n > 0, out, torch.zeros_like(out))


def mat2gray(x: torch.Tensor, dims=(-2, -1)) -> torch.Tensor:
    """(x - min) / (max - min) over ``dims`` (MATLAB's mat2gray); 0 where max == min."""
    lo = x.amin(dim=dims, keepdim=True)
    hi = x.amax(dim=dims, keepdim=True)
    span = hi - lo
    return torch.where(span > 0, (x - lo) / torch.where(span > 0, span, torch.ones_like(span)),
                       torch.zeros_like(x))
