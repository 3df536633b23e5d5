"""The benchmarks' timing helpers, one version of each: a median time, code timed in
interleaved rounds (so that load on the machine hits every side alike), the median of
per-round ratios, and the machine a benchmark ran on (CPU model, load, threads), recorded
with every result since only ratios measured in one run are compared."""
from __future__ import annotations

import os
import statistics
import time


def median_time(fn, repeats=3, warmup=True, clock=time.perf_counter) -> float:
    """The median of ``repeats`` timings of ``fn()`` on ``clock`` (after one untimed call
    when ``warmup``)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times)


def interleaved(fns, rounds=3, repeats=1, warmup=False, clock=time.perf_counter) -> list[list[float]]:
    """Time each of ``fns`` in turn, ``rounds`` times: per function, its :func:`median_time`
    of each round."""
    times = [[] for _ in fns]
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            times[i].append(median_time(fn, repeats, warmup, clock))
    return times


def median_ratio(numerators, denominators) -> float:
    """The median over rounds of numerator / denominator (times of one :func:`interleaved` run)."""
    return statistics.median(a / b for a, b in zip(numerators, denominators))


def machine_info() -> dict:
    """What a timing depends on besides the code: the CPU model, the load average (1 min) and
    torch's threads; for a benchmark's ``extra_info``."""
    import torch

    from bench.provenance import cpu_model
    return {"cpu_model": cpu_model(), "load_1min": os.getloadavg()[0], "threads": torch.get_num_threads()}
