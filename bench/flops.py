"""FLOP counts and the convolution roof of a network (issue 19).

:func:`conv_layers` records, for one forward pass, every ``nn.Conv2d`` with its input as
seen: :func:`conv_flops` their multiply-adds x 2 (the FLOPs a network of convolutions
does; the elementwise work between them is not counted), and :func:`roof_pass` runs the
same convolutions, with the same shapes, weights, precision and memory layout, as plain
``F.conv2d`` calls one after the other: the rate the convolutions alone reach on this
machine, the roof a network's achieved FLOP rate is measured against (as the sparse
solvers are measured against a matrix product).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_layers(net: nn.Module, x: torch.Tensor, context=None) -> list[tuple[nn.Conv2d, torch.Tensor]]:
    """(layer, a copy of its input) for every convolution of one forward pass of ``net`` on
    ``x`` (under ``context``, e.g. an autocast, so that the inputs have the pass's dtype)."""
    seen: list = []
    hooks = [m.register_forward_pre_hook(lambda m, inp: seen.append((m, inp[0].detach().clone())))
             for m in net.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            if context is not None:
                with context:
                    net(x)
            else:
                net(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def conv_flops(layers) -> int:
    """2 x multiply-adds of the convolutions recorded by :func:`conv_layers`."""
    total = 0
    for m, x in layers:
        h, w = x.shape[-2:]
        kh, kw = m.kernel_size
        ph, pw = m.padding if isinstance(m.padding, tuple) else (m.padding, m.padding)
        oh = (h + 2 * ph - kh) // m.stride[0] + 1
        ow = (w + 2 * pw - kw) // m.stride[1] + 1
        total += 2 * x.shape[0] * m.out_channels * oh * ow * (m.in_channels // m.groups) * kh * kw
    return total


def roof_pass(layers, context=None) -> None:
    """The convolutions of :func:`conv_layers` alone, as plain ``F.conv2d`` calls."""
    with torch.no_grad():
        if context is not None:
            with context:
                for m, x in layers:
                    F.conv2d(x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)
        else:
            for m, x in layers:
                F.conv2d(x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)
