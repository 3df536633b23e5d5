"""Reports a researcher can paste: every `.tex` compiles with pdflatex in a minimal document
(booktabs and graphicx), headers carry no selector syntax, captions are short, methods are
named as the papers write them with marks for where weights come from, provenance sits in a
deterministic sidecar, and figures give a method one colour in every panel."""
from __future__ import annotations

import glob
import json
import math
import os
import shutil
import subprocess

import pandas as pd
import pytest

from bench import registry as R
from bench.cli import main
from bench.report import Table, to_latex, to_markdown, write_table
from tests.helpers import TINY_LASSO

R.load_all()
PDFLATEX = shutil.which("pdflatex")
DOC = "\\documentclass{article}\\usepackage{booktabs}\\usepackage{graphicx}\\begin{document}\\input{T}\\end{document}\n"


def compile_tex(path: str, workdir) -> str | None:
    """None when ``path`` compiles in the minimal document, else pdflatex's first error."""
    d = os.path.join(str(workdir), os.path.basename(path)[:-4])
    os.makedirs(d, exist_ok=True)
    shutil.copyfile(path, os.path.join(d, "T.tex"))
    with open(os.path.join(d, "doc.tex"), "w") as f:
        f.write(DOC)
    proc = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=d,
                          capture_output=True, text=True, timeout=120)
    if proc.returncode == 0 and os.path.exists(os.path.join(d, "doc.pdf")):
        return None
    err = [ln for ln in proc.stdout.splitlines() if ln.startswith("!")]
    return f"{path}: {err[:3] or proc.stdout[-500:]}"


def check_folder(folder: str, workdir) -> int:
    """Every table of a report folder: compiles (where pdflatex is), no header with ``[`` or
    ``_``, a caption of at most 60 words, a sidecar named in the .tex header. Returns the count."""
    texs = sorted(glob.glob(os.path.join(folder, "*.tex")))
    for tex in texs:
        stem = tex[:-4]
        text = open(tex).read()
        assert f"% provenance" in text and os.path.basename(stem) + ".json" in text.splitlines()[1]
        side = json.load(open(stem + ".json"))
        assert side["caption"] and "notes" in side
        head = text.split("\\toprule", 1)[1].split("\\midrule", 1)[0]
        assert "[" not in head and "\\_" not in head, (tex, head)
        md = open(stem + ".md").read().splitlines()
        caption = md[0].split("**: ", 1)[1]
        assert len(caption.split()) <= 60, (tex, caption)
        assert "[" not in md[2] and "_" not in md[2], (tex, md[2])
        if PDFLATEX:
            assert compile_tex(tex, workdir) is None, compile_tex(tex, workdir)
    return len(texs)


# --------------------------------------------------------------------------- the writer
def test_captions_headers_and_index_are_escaped(tmp_path):
    v = pd.DataFrame({"psnr_db [a_b]": [30.0, 31.5], "50 %": [1.0, 2.0], "x^2 & #": [0.5, float("nan")]},
                     index=["fista[lam=0.1]", "a_b {c} ~ $d$"])
    t = Table(v, {"psnr_db [a_b]": "max"}, "A caption with_underscore, 100 % & #1 {braces} x^2 ~ < 3 – done",
              "tab:x_y", notes="long text")
    tex = to_latex(t)
    assert "with\\_underscore" in tex and "100 \\%" in tex and "\\&" in tex and "\\#1" in tex
    assert "\\{braces\\}" in tex and "\\^{}" in tex and "\\textbf{31.50}" in tex
    path = tmp_path / "t.tex"
    path.write_text(tex)
    if PDFLATEX:
        assert compile_tex(str(path), tmp_path) is None


def test_wide_tables_fit_the_text_width_and_empty_columns_are_left_out():
    cols = pd.MultiIndex.from_tuples([(f"set {k}", m) for k in range(4) for m in ("mIoU", "F1", "Pd", "Fa")]
                                     + [("", "GPU ms/img")])
    v = pd.DataFrame(1.0, index=["a", "b"], columns=cols)
    v[("", "GPU ms/img")] = float("nan")
    tex, md = to_latex(Table(v, {}, "cap", "tab:w")), to_markdown(Table(v, {}, "cap", "tab:w"))
    assert "\\resizebox{\\linewidth}{!}{%" in tex and "\\multicolumn{4}{c}{set 0}" in tex
    assert "GPU" not in tex and "GPU" not in md


def _row(method, label, family="classical", weights=None, training=None, value=1.0):
    return dict(suite="sparse", dataset="gaussian_lasso", degradation="awgn_snr[snr_db=inf]", method=method,
                method_label=label, family=family, device="cpu", protocol=None, n_samples=10,
                extras={"weights": weights, "training": training}, metrics={"nmse_db": value},
                provenance={"commit": "c0ffee", "cpu_model": "CPU X", "threads": 1, "hostname": "h"})


def test_methods_are_named_as_in_the_papers_with_marks_and_one_legend_line(tmp_path):
    rows = pd.DataFrame([
        _row("fista", "fista[lam=0.1]"),
        _row("lista_cp", "lista_cp", "learned", training={"recipe": "cpu", "steps": 500, "seconds": 600.0}),
        _row("alista", "alista[checkpoint=published:x]", "learned",
             weights={"source": "published", "trained_on": "ICVL", "file_sha256": "ab" * 32}),
        _row("alista", "alista[checkpoint=tuned.npz]", "learned",
             training={"recipe": "finetune", "init": {"checkpoint": "published:x"}, "steps": 20, "seconds": 60.0}),
    ])
    v = pd.DataFrame({"NMSE": [-1.0, -2.0, -3.0, -4.0]}, index=list(rows["method_label"]))
    t = Table(v, {"NMSE": "min"}, "cap", "tab:m", rows=rows)
    md, tex = to_markdown(t), to_latex(t)
    for name in ("FISTA (λ=0.1)", "LISTA-CP‡", "ALISTA†", "ALISTA§"):
        assert f"| {name}" in md, md
    assert "FISTA ($\\lambda$=0.1)" in tex and "ALISTA\\textsuperscript{\\dag}" in tex
    legend = [ln for ln in md.splitlines() if ln.startswith("†")]
    assert len(legend) == 1 and "trained on ICVL" in legend[0] and "‡ trained here on CPU" in legend[0]
    assert "§ fine-tuned here" in legend[0] and "published:x" in legend[0]
    assert "\\dag{} the authors' published weights" in tex
    paths = write_table(t, str(tmp_path), "m")
    side = json.load(open(paths[2]))
    assert side["commits"] == ["c0ffee"] and side["cpus"] == ["CPU X"] and "hostname" not in json.dumps(side)
    assert side["rows"]["alista[checkpoint=published:x]"]["weights"]["file_sha256"] == "ab" * 32
    assert side["rows"]["lista_cp"]["training_minutes"] == [10.0]
    assert "m.json" in open(paths[0]).read().splitlines()[1]
    if PDFLATEX:
        assert compile_tex(paths[0], tmp_path) is None


def test_every_registered_method_has_a_display_name():
    named = {n: (c.display_name or "") for n, c in R.METHODS.items()}
    assert not [n for n, d in named.items() if not d], named
    assert named["ista_net_plus"] == "ISTA-Net+" and R.METHODS["ista_net_plus"].display_name_tex == r"ISTA-Net$^+$"
    assert named["l_rpcanet"] == "L-RPCANet" and named["star_net_s"] == "STAR-Net-S"


def test_fa_is_printed_in_units_of_1e_5():
    from bench.suites.istd_tables import FA, _fa_units
    v = pd.DataFrame({("NUDT-SIRST", "Fa"): [17.91], ("SIRST", "Fa"): [74.56], ("SIRST", "Pd"): [90.0]}, index=["m"])
    out = _fa_units(v)
    assert round(out[("NUDT-SIRST", FA)].iloc[0], 2) == 1.79 and round(out[("SIRST", FA)].iloc[0], 2) == 7.46
    assert out[("SIRST", "Pd")].iloc[0] == 90.0


# --------------------------------------------------------------------------- a whole report
SPARSE_RUN = ["run", "--suite", "sparse", "--dataset", TINY_LASSO,
              "--degradation", "awgn_snr[snr_db=[inf,30]]", "--method", "ista[n_iter=20]",
              "--method", "fista[n_iter=20,lam=0.2]", "--method", "admm[n_iter=20]", "--no-progress", "--repeat", "1"]


def test_sparse_report_compiles_and_rebuilds_byte_identically(tmp_path):
    res = str(tmp_path / "r.sqlite")
    assert main(SPARSE_RUN + ["--results", res]) == 0
    for out in ("a", "b"):
        assert main(["report", "--suite", "sparse", "--results", res, "--out", str(tmp_path / out)]) == 0
    assert check_folder(str(tmp_path / "a"), tmp_path / "latex") == 3
    names = sorted(os.listdir(tmp_path / "a"))
    assert any(n.endswith(".json") for n in names) and any(n.endswith(".pdf") for n in names)
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    from bench.report import report_files
    files = report_files(str(tmp_path / "a"))
    assert [t.split("_gaussian")[0] for t in files["tables"]] == ["sparse_layers", "sparse_nmse", "sparse_runtime"]
    assert [f.split("_gaussian")[0] for f in files["figures"]] == ["sparse_nmse_curves", "sparse_nmse_layers"]


def test_sparse_curves_give_a_method_one_colour_in_every_panel(monkeypatch):
    """A method missing from one panel must not shift the others' colours (the legend would
    name the wrong lines)."""
    import bench.report as report
    from bench.report_style import styles
    from bench.suites import sparse_report as S

    def row(label, snr, family="classical"):
        return dict(method_label=label, family=family, snr=snr, device="cpu", curves={"nmse_db": [0.0, -1.0, -2.0]},
                    extras={}, dataset_params={"n_test": 4}, method=label.split("[")[0])
    frame = pd.DataFrame([row("ista[n_iter=100]", "inf"), row("alista", "inf", "learned"), row("fista", "inf"),
                          row("admm", "30"), row("fista[lam=0.1]", "30"), row("fista", "30")])
    order = ["ista[n_iter=100]", "fista", "fista[lam=0.1]", "admm", "alista"]
    view = S._View("gaussian_lasso", frame, order, styles(frame, order))
    figs = []
    monkeypatch.setattr(report, "save_figure", lambda fig, outdir, stem: figs.append(fig) or [])
    S._curves_figure(view, "unused")
    S._layers_figure(view, "unused")
    seen: dict[str, set] = {}
    for fig in figs:
        for ax in fig.axes:
            for line in ax.get_lines():
                seen.setdefault(line.get_label(), set()).add(line.get_color())
        for leg in fig.legends:
            for h, t in zip(leg.legend_handles, leg.get_texts()):
                seen.setdefault(t.get_text(), set()).add(h.get_color())
    assert seen and all(len(c) == 1 for c in seen.values()), seen
    assert len({next(iter(c)) for c in seen.values()}) == len(seen)  # ALISTA and ISTA no longer share one
    assert "FISTA (λ=0.1)" in seen and "ISTA (K=100)" in seen


def test_report_modules_are_outside_the_cell_keys():
    from bench import fingerprint
    root = os.path.join(os.path.dirname(bench_file()), "suites")
    for path in glob.glob(os.path.join(root, "*.py")):
        assert sum(1 for _ in open(path)) <= 600, path
        if path.endswith("_report.py"):
            assert "bench.suites." + os.path.basename(path)[:-3] in fingerprint.EXCLUDED


def bench_file():
    import bench
    return bench.__file__


@pytest.mark.slow
@pytest.mark.parametrize("suite", ["sparse", "cs", "hsi", "istd"])
def test_every_suites_smoke_report_compiles(suite, tmp_path, data_root):
    """Each suite's report from its smoke store (`bench run --smoke`): every table compiles
    with pdflatex in the minimal document and keeps to the header and caption rules."""
    if not PDFLATEX:
        pytest.skip("pdflatex not found: install texlive-latex-base and texlive-latex-recommended to compile the tables")
    res = str(tmp_path / "r.sqlite")
    assert main(["run", "--suite", suite, "--smoke", "--results", res, "--no-progress", "--threads", "1",
                 "--data-root", data_root]) == 0
    out = str(tmp_path / "report")
    assert main(["report", "--suite", suite, "--results", res, "--out", out]) == 0
    assert check_folder(out, tmp_path / "latex") >= 1
