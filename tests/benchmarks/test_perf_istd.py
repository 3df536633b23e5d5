"""Benchmarks of the istd suite (issue 19; pytest-benchmark, skipped in the default run:
`pytest tests/benchmarks --benchmark-only`). Speeds are ratios measured in the same run
(interleaved, medians), on one torch thread, never absolute seconds.

- IPI: the current code against the code before issue 19 (``_ipi_before``, measured in the
  same run, in CPU seconds), and against the authors' Octave code (its per-image times in
  ``istd/reference/ipi_authors_times.csv``, measured once on another session's 2-core machine:
  reported, with a floor asserted, since the two machines differ). The maps must stay within
  1e-4 relative of the authors' reference maps with identical masks.
- RPCANet and L-RPCANet inference: achieved FLOP rate (the convolutions' FLOPs / the network's
  time) against the roof, the same convolutions with the same shapes, weights, precision and
  layout run alone (:mod:`bench.flops`). Goal: >= 0.5.
"""
from __future__ import annotations

import csv
import os
import statistics
import time

import numpy as np
import pytest
import torch

from bench.flops import conv_flops, conv_layers, roof_pass
from bench.methods.istd import classical
from bench.methods.istd.common import IstdInput
from bench.methods.istd.learned import CONFIGS, build
from bench.metrics.istd import segment
from bench.precision import autocast, bf16_support, memory_format

from . import _ipi_before
from .timing import interleaved, machine_info, median_ratio

#: three small SIRST test images (the first is the faithfulness test's): ~2 s of the
#: current code in all, ~4 s before
IPI_IMAGES = ["Misc_23", "Misc_274", "Misc_270"]
#: asserted floors (the measured values are printed and stored in extra_info; see the tests)
IPI_BEFORE_FLOOR = 1.3
IPI_AUTHORS_GOAL, IPI_AUTHORS_FLOOR = 10.0, 6.0
ROOF_GOAL = 0.5


def test_ipi_against_before_and_authors(benchmark, data_root, one_thread, monkeypatch):
    from bench.datasets.istd import read_folder

    ref_dir = os.path.join(data_root, "istd", "reference")
    if not os.path.isdir(os.path.join(ref_dir, "ipi_authors")):
        pytest.skip("no reference maps")
    with open(os.path.join(ref_dir, "ipi_authors_times.csv")) as f:
        authors = {r["image"]: float(r["seconds"]) for r in csv.DictReader(f)}
    data = read_folder(os.path.join(data_root, "istd", "sirst-v1"), subset="test", data_root=data_root)
    images = {n: data.images[data.names.index(n)] for n in IPI_IMAGES}
    current = classical.apg_rpca

    def run(name, apg):
        monkeypatch.setattr(classical, "apg_rpca", apg)
        return classical.Ipi().run(IstdInput((images[name],))).maps[0]

    maps = {n: [] for n in IPI_IMAGES}  # the current code's maps, every round's checked below (untimed)

    def now(n):
        return lambda: maps[n].append(run(n, current))

    def before(n):
        return lambda: run(n, _ipi_before.apg_rpca)

    # interleaved, so that load on the machine hits both alike; CPU seconds, one call a round
    times = interleaved([f(n) for n in IPI_IMAGES for f in (now, before)], rounds=3, clock=time.process_time)
    for n in IPI_IMAGES:
        ref = np.load(os.path.join(ref_dir, "ipi_authors", f"{n}.npz"))["target"].astype(np.float64)
        for m in maps[n]:
            mine = m.numpy().astype(np.float64)
            rel = np.linalg.norm(mine - ref) / np.linalg.norm(ref)
            assert rel < 1e-4, f"{n}: relative error {rel:.2e} against the authors' map"
            assert torch.equal(segment(torch.from_numpy(mine), "max_norm"), segment(torch.from_numpy(ref), "max_norm"))
    t_now = sum(statistics.median(ts) for ts in times[0::2])
    t_before = sum(statistics.median(ts) for ts in times[1::2])
    t_authors = sum(authors[n] for n in IPI_IMAGES)
    vs_before, vs_authors = t_before / t_now, t_authors / t_now
    monkeypatch.setattr(classical, "apg_rpca", current)
    benchmark.extra_info.update({"cpu_s_now": t_now, "cpu_s_before": t_before, "authors_s": t_authors,
                                 "speedup_vs_before": vs_before, "speedup_vs_authors": vs_authors,
                                 "authors_goal": IPI_AUTHORS_GOAL, "images": IPI_IMAGES, **machine_info()})
    benchmark.pedantic(lambda: run(IPI_IMAGES[0], current), rounds=1, warmup_rounds=0)
    print(f"\nIPI on {', '.join(IPI_IMAGES)}: {t_now:.2f} CPU-s now, {t_before:.2f} before ({vs_before:.2f}x); "
          f"authors' Octave {t_authors:.1f} s (other session) -> {vs_authors:.1f}x (goal {IPI_AUTHORS_GOAL:.0f}x: "
          f"{'met' if vs_authors >= IPI_AUTHORS_GOAL else 'NOT met'} here)")
    assert vs_before >= IPI_BEFORE_FLOOR
    # the authors' times come from another machine: a floor catches a regression, the goal is printed
    assert vs_authors >= IPI_AUTHORS_FLOOR


def _configs():
    out = [("fp32", False), ("fp32", True)]
    ok, why = bf16_support("cpu")
    out.append(pytest.param("bf16", True, marks=pytest.mark.skipif(not ok, reason=f"no native bf16: {why}")))
    return out


@pytest.mark.parametrize("precision,channels_last", _configs())
@pytest.mark.parametrize("method", ["rpcanet", "l_rpcanet"])
def test_learned_inference_flop_rate_against_conv_roof(benchmark, one_thread, method, precision, channels_last):
    """At 128x160 (a quarter of a 320x240 image: FLOPs scale with the pixels, the rates barely);
    random weights: the time does not depend on their values."""
    fmt = memory_format(channels_last)
    net = build(CONFIGS[method]).eval().to(memory_format=fmt)
    x = torch.rand(1, 1, 128, 160).contiguous(memory_format=fmt)
    layers = conv_layers(net, x, autocast(precision, "cpu"))
    flops = conv_flops(layers)

    def forward():
        with torch.no_grad(), autocast(precision, "cpu"):
            net(x)

    def roof():
        roof_pass(layers, autocast(precision, "cpu"))

    forward(), roof()  # warm-up (oneDNN primitives)
    t_net, t_roof = interleaved([forward, roof], rounds=3, repeats=3)
    ratio = median_ratio(t_roof, t_net)
    tn, tr = statistics.median(t_net), statistics.median(t_roof)
    benchmark.extra_info.update({"gflop": flops / 1e9, "gflops_net": flops / tn / 1e9, "gflops_roof": flops / tr / 1e9,
                                 "ratio_to_roof": ratio, "goal": ROOF_GOAL, "ms_per_image_128x160": tn * 1e3,
                                 **machine_info()})
    benchmark.pedantic(forward, rounds=1, warmup_rounds=0)
    print(f"\n{method} {precision} channels_last={channels_last}: {flops / tn / 1e9:.1f} GFLOP/s against the "
          f"roof's {flops / tr / 1e9:.1f}: {ratio:.2f} (goal >= {ROOF_GOAL}); {tn * 1e3:.0f} ms at 128x160")
    assert ratio >= ROOF_GOAL, f"{method} {precision} cl={channels_last}: {ratio:.2f} of the conv roof"
