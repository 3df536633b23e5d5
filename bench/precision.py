"""Precision and memory layout of learned networks, as named options (never silent defaults).

``precision``:
  ``fp32`` (default): weights and activations in float32, as every stored row before this
  option existed.
  ``bf16``: ``torch.autocast`` to bfloat16 around the network's forward pass (convolutions and
  matrix products in bf16, reductions and the loss in float32; weights stay float32, so a
  checkpoint is the same file). Only where the device computes bf16 natively: on the CPU the
  flags ``avx512_bf16`` or ``amx_bf16`` (Intel Cooper Lake / Sapphire Rapids and later, AMD Zen 4
  and later); elsewhere oneDNN emulates bf16 with float32 arithmetic plus conversions, slower
  than fp32, so asking for it is refused with :class:`BenchError` naming the missing flags
  (policy: a clear error, not a silent fallback; run ``precision=fp32`` there). On CUDA:
  ``torch.cuda.is_bf16_supported()``.
``channels_last``: the network and its inputs in ``torch.channels_last`` (NHWC) memory format,
  the layout oneDNN's fastest CPU convolutions use; the values are those of the default layout
  up to the order of floating-point sums.
"""
from __future__ import annotations

import contextlib
import functools
import os

import torch

from bench.errors import BenchError

PRECISIONS = ("fp32", "bf16")
#: CPU flags (``/proc/cpuinfo``) that mean native bf16 arithmetic
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def bf16_support(device: str = "cpu") -> tuple[bool, str]:
    """(whether ``device`` computes bf16 natively, what was found)."""
    if str(device).startswith("cuda"):
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return ok, "torch.cuda.is_bf16_supported() is " + str(ok)
    override = os.environ.get("BENCH_CPU_BF16")  # tests: pretend a CPU with / without bf16
    if override is not None:
        return override == "1", f"BENCH_CPU_BF16={override}"
    found = [f for f in BF16_CPU_FLAGS if f in cpu_flags()]
    if found:
        return True, "CPU flags " + ", ".join(found)
    return False, "the CPU has none of the flags " + ", ".join(BF16_CPU_FLAGS)


def check_precision(precision: str, device: str, who: str) -> None:
    """Raise :class:`BenchError` unless ``precision`` is known and runs natively on ``device``."""
    if precision not in PRECISIONS:
        raise BenchError(f"{who}: precision={precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision == "bf16":
        ok, why = bf16_support(device)
        if not ok:
            raise BenchError(f"{who}: precision=bf16 needs native bf16 arithmetic on {device} ({why}); "
                             f"emulated bf16 is slower than fp32: use precision=fp32")


def autocast(precision: str, device: str):
    """The context the forward pass runs in: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast("cuda" if str(device).startswith("cuda") else "cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format
