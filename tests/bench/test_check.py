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
