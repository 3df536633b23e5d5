import pytest

from bench.check import compare, format_drifts


def test_compare_flags_moves_beyond_tolerance_missing_and_new():
    baseline = {"c1": {"nmse_db": -20.0}, "c2": {"nmse_db": -10.0}, "c3": {"nmse_db": -5.0}}
    now = {"c1": {"nmse_db": -20.01}, "c2": {"nmse_db": -9.0}, "c4": {"nmse_db": 1.0}}
    drifts = {(d.cell, d.status) for d in compare("sparse", now, {}, baseline)}
    assert drifts == {("c1", "ok"), ("c2", "moved"), ("c3", "missing"), ("c4", "new")}
    text = format_drifts(compare("sparse", now, {}, baseline))
    assert "moved" in text and "c2" in text and "c1" not in text


def test_failed_smoke_cell_is_reported():
    drifts = compare("sparse", {}, {"c1": "ValueError: diverged"}, {"c1": {"nmse_db": -20.0}})
    assert drifts[0].status.startswith("failed") and "diverged" in drifts[0].status


def test_new_only_update_adds_values_and_keeps_every_committed_one(tmp_path, monkeypatch):
    """`bench check --update --new-only`: cells and metrics the baseline lacks are added; a
    committed value that moved (within tolerance or not) stays byte-identical, as does the
    header saying how the committed values were written; the addition is listed."""
    import json

    from bench import paths
    from bench.check import add_to_baseline, write_baseline

    monkeypatch.setattr(paths, "BASELINES_DIR", str(tmp_path))
    path = write_baseline("sparse", {"c1": {"nmse_db": -64.99572800692664}})
    before = json.loads(open(path).read())
    _, added = add_to_baseline("sparse", {"c1": {"nmse_db": -64.99571459472446, "nmse_db@16": -65.0},
                                          "c2": {"nmse_db": -10.376072802379113}})
    assert added == ["c1: nmse_db@16", "c2: nmse_db"]
    after = json.loads(open(path).read())
    assert after["cells"]["c1"]["nmse_db"] == -64.99572800692664
    assert after["cells"]["c2"] == {"nmse_db": -10.376072802379113}
    assert {k: after[k] for k in before if k != "cells"} == {k: v for k, v in before.items() if k != "cells"}
    assert after["added"][0]["cells"] == ["c1", "c2"] and "--new-only" in after["added"][0]["by"]
    assert add_to_baseline("sparse", {"c2": {"nmse_db": 0.0}})[1] == []  # nothing new: file untouched
    assert json.loads(open(path).read()) == after


def test_a_smoke_cell_left_out_here_is_named_not_compared():
    """A baseline cell the suite skips on this machine (a published weights file not
    downloaded) is one `skipped: <why>` entry, not a missing value."""
    drifts = compare("istd", {"c3": {"iou": 3.0}}, {}, {"c1": {"iou": 1.0}, "c2": {"iou": 2.0}, "c3": {"iou": 3.0}},
                     {"c1": "no weights file", "c3": "not skipped: it ran"})
    status = {d.cell: d.status for d in drifts}
    assert status == {"c1": "skipped: no weights file", "c2": "missing", "c3": "ok"}



def test_a_method_declared_tolerance_replaces_the_metrics_own_for_its_cells_only():
    """The committed cs baseline declares wider tolerances for pnp_hqs (BM3D's library differs
    between CPUs): a move of 4e-4 SSIM passes for its cell and still fails for another
    method's cell; a move beyond the declared tolerance fails for pnp_hqs too."""
    from bench.check import load_method_tolerances, tolerance_of

    tols = load_method_tolerances("cs")
    assert tols["pnp_hqs"]["why"]
    assert tolerance_of("ssim_cs", "pnp_hqs", tols) == tols["pnp_hqs"]["ssim_cs"]
    assert tolerance_of("ssim_cs", "tv_admm", tols) < 4e-4
    baseline = {"p": {"ssim_cs": 0.7055}, "t": {"ssim_cs": 0.7055}, "far": {"ssim_cs": 0.7055}}
    now = {"p": {"ssim_cs": 0.7051}, "t": {"ssim_cs": 0.7051}, "far": {"ssim_cs": 0.69}}
    methods = {"p": "pnp_hqs", "t": "tv_admm", "far": "pnp_hqs"}
    status = {d.cell: d.status for d in compare("cs", now, {}, baseline, methods=methods, method_tolerances=tols)}
    assert status == {"p": "ok", "t": "moved", "far": "moved"}


def test_a_baseline_rewrite_keeps_the_declared_method_tolerances(tmp_path, monkeypatch):
    import json

    from bench import paths
    from bench.check import load_method_tolerances, write_baseline
    from bench.errors import BenchError

    monkeypatch.setattr(paths, "BASELINES_DIR", str(tmp_path))
    (tmp_path / "cs.json").write_text(json.dumps({"cells": {}, "method_tolerances": {"pnp_hqs": {"ssim_cs": 0.002}}}))
    try:
        load_method_tolerances("cs")
        raise AssertionError("a declared tolerance without 'why' must be refused")
    except BenchError as e:   # bench check prints it and exits non-zero
        assert "why" in str(e)
    (tmp_path / "cs.json").write_text(json.dumps({"cells": {}, "method_tolerances": {
        "pnp_hqs": {"ssim_cs": 0.002, "why": "measured"}}}))
    write_baseline("cs", {"c": {"ssim_cs": 0.5}})
    doc = json.loads((tmp_path / "cs.json").read_text())
    assert doc["cells"] == {"c": {"ssim_cs": 0.5}} and doc["method_tolerances"]["pnp_hqs"]["why"] == "measured"


def test_a_malformed_baseline_is_refused_before_the_smoke_grid_runs(tmp_path, monkeypatch, capsys):
    import json

    import bench.check
    from bench import paths
    from bench.cli import main

    monkeypatch.setattr(paths, "BASELINES_DIR", str(tmp_path))
    monkeypatch.setattr(bench.check, "run_smoke", lambda *a, **k: pytest.fail("the smoke grid ran"))
    cases = {'{"cells": {"c": {"nmse_db": -1.0}}': "is not valid JSON (Expecting ',' delimiter at line 1",
             '{"suite": "sparse"}': "has no 'cells' mapping",
             '{"cells": {"c": {"nmse_db": "-1.0"}}}': "must map metric names to numbers",
             '{"cells": {"c": 3}}': "must map metric names to numbers",
             json.dumps({"cells": {}, "method_tolerances": {"m": {"nmse_db": "x", "why": "y"}}}): "must be a number"}
    for text, words in cases.items():
        (tmp_path / "sparse.json").write_text(text)
        for extra in ([], ["--update", "--new-only"]):
            assert main(["check", "--suite", "sparse", "--no-progress", *extra]) == 1
            err = capsys.readouterr().err
            assert words in err and str(tmp_path / "sparse.json") in err and err.count("\n") == 1, err
