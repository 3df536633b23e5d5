"""Tables built from a tiny store match its numbers, with the best value in bold."""
from __future__ import annotations

import json
import math
import os

import pandas as pd

from bench.cli import main
from bench.report import Table, best_mask, to_latex, to_markdown
from bench.store import Store
from tests.helpers import TINY_LASSO


def _row(key, method, snr, curve, time_s, device="cpu"):
    return dict(key=key, suite="sparse", dataset="gaussian_lasso",
                dataset_params={"m": 250, "n": 500, "p": 0.1, "n_test": 1000, "instance_seed": 0},
                sample_set="gaussian_lasso", degradation=f"awgn_snr[snr_db={snr}]",
                degradation_params={"snr_db": snr}, method=method, method_label=method, method_params={},
                family="classical", device=device, seed=0, source_hash="h", status="ok",
                metrics={"nmse_db": curve[-1]}, curves={"nmse_db": curve}, extras={}, n_samples=1000,
                time_s=time_s, times_s=[time_s], provenance={"commit": "abc", "cpu_model": "x", "threads": 2})


def test_sparse_tables_match_the_store(tmp_path):
    store = Store(str(tmp_path / "r.sqlite"))
    c_ista = [0.0] + [-1.0 - 0.01 * k for k in range(1, 1001)]
    c_fista = [0.0] + [-2.0 - 0.02 * k for k in range(1, 1001)]
    store.put(_row("1", "ista", math.inf, c_ista, 3.0))
    store.put(_row("2", "fista", math.inf, c_fista, 3.5))
    store.put(_row("3", "ista", 40.0, c_ista[:101], 2.0))
    store.put(_row("4", "fista", 40.0, c_fista[:101], 2.5, device="cuda"))
    out = str(tmp_path / "rep")
    assert main(["report", "--suite", "sparse", "--results", store.path, "--out", out]) == 0
    md = open(os.path.join(out, "sparse_nmse.md")).read()
    # fista at k=16, SNR inf: -2.32, the best (lowest) of its column -> bold
    assert "**-2.32**" in md and "-1.16" in md and "**-1.16**" not in md
    # k=1000 at 40 dB was run by no method -> the column is left out (k=1000 at inf stays)
    lines = {l.split("|")[1].strip(): l for l in md.splitlines() if l.startswith("| ISTA") or l.startswith("| FISTA")}
    assert lines["ISTA"].count("–") == 0 and md.splitlines()[2].count("k=1000") == 1, md
    tex = open(os.path.join(out, "sparse_nmse.tex")).read()
    assert "\\toprule" in tex and "\\textbf{-2.32}" in tex and "sparse_nmse.json" in tex
    # the protocol's definition moved from the caption to the sidecar
    assert "ratio of totals" in json.load(open(os.path.join(out, "sparse_nmse.json")))["notes"]
    rt = open(os.path.join(out, "sparse_runtime.md")).read()
    assert "**2.500**" in rt  # fista's only time is on the GPU, ista's CPU median (3.0, 2.0) is 2.5
    for ext in ("png", "pdf"):
        assert os.path.getsize(os.path.join(out, f"sparse_nmse_curves.{ext}")) > 1000


def test_bold_marks_the_best_per_direction():
    v = pd.DataFrame({"psnr": [30.0, 31.0, float("nan")], "time": [2.0, 1.0, 0.5]}, index=list("abc"))
    mask = best_mask(v, {"psnr": "max", "time": "min"})
    assert mask.loc["b", "psnr"] and mask.loc["c", "time"] and mask.values.sum() == 2
    t = Table(v, {"psnr": "max", "time": "min"}, "cap", "tab:x")
    assert "**31.00**" in to_markdown(t) and "\\textbf{0.50}" in to_latex(t) and "--" in to_latex(t)


def test_cached_rerun_gives_identical_tables(tmp_path):
    res = str(tmp_path / "r.sqlite")
    args = ["run", "--suite", "sparse", "--dataset", TINY_LASSO,
            "--degradation", "awgn_snr[snr_db=[inf,30]]", "--method", "ista[n_iter=20]",
            "--method", "fista[n_iter=20]", "--results", res, "--no-progress", "--repeat", "1"]
    assert main(args) == 0
    assert main(["report", "--suite", "sparse", "--results", res, "--out", str(tmp_path / "a")]) == 0
    assert main(args) == 0
    assert main(["report", "--suite", "sparse", "--results", res, "--out", str(tmp_path / "b")]) == 0
    for name in os.listdir(tmp_path / "a"):
        if name.endswith((".md", ".tex")):
            assert open(tmp_path / "a" / name).read() == open(tmp_path / "b" / name).read()


def test_provenance_line_keeps_the_dirty_mark():
    import pandas as pd

    from bench.report import provenance_line
    frame = pd.DataFrame({"provenance": [{"commit": "0123456789abcdef" * 2 + "-dirty", "cpu_model": "X"},
                                         {"commit": "fedcba9876543210" * 2, "cpu_model": "X"}]})
    assert provenance_line(frame) == "commit 0123456789ab-dirty, fedcba987654; CPU X"
