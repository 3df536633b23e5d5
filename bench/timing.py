"""Timing of the method only: warm-up, then the median of repeats; on CUDA the clock is
read after ``torch.cuda.synchronize``."""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import torch


def synchronize(device: str) -> None:
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize(torch.device(device))


def timed(fn: Callable[[], Any], device: str) -> tuple[Any, float]:
    synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    synchronize(device)
    return out, time.perf_counter() - t0


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
