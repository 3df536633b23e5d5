"""The documentation's "Adding a suite" example (docs/extending.md), run exactly as written: it registers a suite, a
dataset, a degradation, a metric and a method; a grid runs and is stored; the report writes
its table with the metric's direction; the generated contracts pass on its method and catch
a broken one. The registries are copies for this test only (the real ones are untouched)."""
from __future__ import annotations

import os
import re
import sys
import types

import pytest
import torch

from bench import contracts
from bench import registry as R
from bench.grid import build_cells
from bench.runner import RunOptions, run_grid
from bench.store import Store

README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs",
                      "extending.md")


def readme_example() -> str:
    text = open(README, encoding="utf-8").read()
    m = re.search(r"<!-- adding-a-suite: begin -->\s*```python\n(.*?)```\s*<!-- adding-a-suite: end -->", text, re.S)
    assert m, "docs/extending.md lost its 'Adding a suite' example (the markers around the code block)"
    return m.group(1)


@pytest.fixture
def example(monkeypatch):
    R.load_all()
    for name in ("SUITES", "DATASETS", "DEGRADATIONS", "METHODS", "METRICS"):
        original = getattr(R, name)
        copy = R.Registry(original.kind)
        copy.update(original)
        monkeypatch.setattr(R, name, copy)
    module = types.ModuleType("readme_smooth1d")  # a module of its own (dataclasses look it up)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(readme_example(), "docs/extending.md:adding-a-suite", "exec"), module.__dict__)
    return module


def test_the_readme_suite_runs_stores_and_reports(example, tmp_path):
    assert "smooth1d" in R.SUITES and R.METHODS["moving_average"].belongs_to("smooth1d")
    suite = R.SUITES["smooth1d"]
    cells = build_cells("smooth1d", suite.grid.datasets, suite.grid.degradations, suite.grid.methods, ["cpu"], 0)
    assert len(cells) == 4  # two noise levels x two widths
    store = Store(str(tmp_path / "r.sqlite"))
    summary = run_grid(cells, store, RunOptions(repeat=1, threads=1), progress=False)
    assert summary.failed == 0, summary.failures
    frame = store.frame()
    assert set(frame["status"]) == {"ok"} and len(frame) == 4
    psnr = {(r["degradation"], r["method_label"]): r["metrics"]["psnr_1d"] for _, r in frame.iterrows()}
    # less noise gives a higher PSNR for either width
    for w in ("moving_average[width=3]", "moving_average[width=9]"):
        assert psnr[("white_noise[sigma=0.05]", w)] > psnr[("white_noise[sigma=0.2]", w)]
    paths = suite.report(frame, str(tmp_path / "reports"), {})
    md = open([p for p in paths if p.endswith(".md")][0]).read()
    body = [line for line in md.splitlines() if line.startswith("| moving average (width")]
    assert "PSNR" in md and len(body) == 2
    assert sum(line.count("**") for line in body) == 4  # the best of each of the two columns in bold
    # a cached rerun reuses every cell
    again = run_grid(build_cells("smooth1d", suite.grid.datasets, suite.grid.degradations, suite.grid.methods,
                                 ["cpu"], 0), store, RunOptions(repeat=1, threads=1), progress=False)
    assert again.reused == 4


def test_the_readme_method_passes_its_contracts_and_a_bad_width_is_refused(example):
    cls = R.METHODS["moving_average"]
    contracts.check_declared(cls)
    contracts.check_run(cls, "cpu")
    contracts.check_deterministic(cls, "cpu")
    from bench.errors import BadParameterError
    with pytest.raises(BadParameterError, match="width=4 is not allowed; width must be an integer >= 1, odd"):
        cls(width=4)

    class Shifted(cls):  # a mutant: one sample longer than its input
        name = "moving_average_shifted"

        def run(self, noisy):
            return torch.cat([super().run(noisy), noisy[:, :1]], dim=1)

    R.METHODS["moving_average_shifted"] = Shifted
    with pytest.raises(AssertionError):
        contracts.check_run(Shifted, "cpu")
