"""Soft thresholding, the proximal operator of t ||x||_1, for every suite's methods.

For a threshold t >= 0 there is one operator, :func:`soft_threshold`:

    eta_t(x) = sign(x) max(|x| - t, 0) = x - clamp(x, -t, t)

(the same values in floating point: where |x| > t both give x -+ t rounded once, elsewhere
zero; the clamp form takes two passes over memory instead of four, and its zeros are +0
where sign(x) max(.) gives -0 for negative x, a sign no result depends on).

A *learned* threshold can come out negative, and the published weights of two papers have
such entries. The two authors' codes then compute different things, and the networks
that load those weights keep their own authors' formula:

- :func:`soft_threshold_ista_net`: ``sign(x) relu(|x| - t)``, as ISTA-Net / ISTA-Net+
  (Zhang and Ghanem, CVPR 2018) write it. For t < 0: sign(x) (|x| + |t|), every entry
  pushed away from zero by |t| (and 0 stays 0).
- :func:`soft_threshold_smds_net` (and the in-place :func:`soft_threshold_smds_net_`):
  ``relu(x - t) - relu(-x - t)``, as SMDS-Net (Xiong et al., 2022) and STAR-Net write it
  (``ops/utils.py``). For t < 0: x + clamp(x, t, -t), i.e. x + x = 2x where |x| <= |t|
  and x + sign(x) |t| beyond.

For t >= 0 both equal :func:`soft_threshold` (up to the sign of zeros). Thresholds broadcast
against x (a number, or a tensor such as one per channel or per coefficient).
"""
from __future__ import annotations

import torch


def soft_threshold(x: torch.Tensor, t, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """sign(x) max(|x| - t, 0) for t >= 0, computed as x - clamp(x, -t, t). A number t is
    rounded to x's dtype by the clamp (the same bits as a 0-dim tensor of x's dtype would
    give, and faster on the CPU). ``out``: a preallocated result (not x itself) for loops
    that reuse their buffers; the clamp is written there first."""
    if not isinstance(t, torch.Tensor):
        t = float(t)
    if out is None:
        return x - torch.clamp(x, -t, t)
    torch.clamp(x, -t, t, out=out)
    return torch.sub(x, out, out=out)


def soft_threshold_ista_net(x: torch.Tensor, t) -> torch.Tensor:
    """ISTA-Net's soft threshold, sign(x) relu(|x| - t): for t < 0 (learned) it is
    sign(x) (|x| + |t|). See the module's docstring."""
    return torch.sign(x) * torch.relu(torch.abs(x) - t)


def soft_threshold_smds_net(x: torch.Tensor, t) -> torch.Tensor:
    """SMDS-Net's / STAR-Net's soft threshold relu(x - t) - relu(-x - t), t broadcast over
    the last axis: sign(x) max(|x| - t, 0) where t >= 0; where a learned t is negative (the
    published SMDS-Net files have some) it is x + clamp(x, t, -t). Computed as
    x - sign(t) clamp(x, -|t|, |t|): two passes over x whatever t's sign. Out of place
    (differentiable); :func:`soft_threshold_smds_net_` is the in-place twin for inference."""
    if not isinstance(t, torch.Tensor):
        t = float(t)
        c = torch.clamp(x, -abs(t), abs(t))
        return x - c if t >= 0 else x + c
    a = t.abs()
    return x - torch.sign(t) * torch.clamp(x, -a, a)


def soft_threshold_smds_net_(x: torch.Tensor, t) -> torch.Tensor:
    """:func:`soft_threshold_smds_net` in place on a temporary ``x``."""
    if not isinstance(t, torch.Tensor):
        t = float(t)
        c = torch.clamp(x, -abs(t), abs(t))
        return x.sub_(c) if t >= 0 else x.add_(c)
    if bool((t >= 0).all()):
        return x.sub_(torch.clamp(x, -t, t))
    a = t.abs()
    return x.addcmul_(torch.clamp(x, -a, a), -torch.sign(t))
