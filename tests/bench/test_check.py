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
