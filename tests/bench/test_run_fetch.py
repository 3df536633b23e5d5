"""`bench run` on a fresh machine: missing data fetched on first use from a loopback mirror
(checked, one line per item), a failed fetch fails only the cells that need it, --offline /
$BENCH_OFFLINE=1 leave those cells out with one grouped line naming the fetch command, and
the run ends by writing the suite's report."""
from __future__ import annotations

import http.server
import os
import shutil
import sqlite3
import threading

import pytest

from bench.cli import main
from bench.commands.run import group_skip_lines
from tests.bench.test_data_fetch import _Handler

pytest.importorskip("pooch")

CELL = ["--suite", "cs", "--dataset", "set11[ratio=10,names=Monarch]", "--method", "qinit", "--no-progress",
        "--repeat", "1", "--threads", "1"]


@pytest.fixture
def cs_mirror(tmp_path, data_root):
    root = tmp_path / "mirror"
    for sub in ("Set11", "sampling_matrix"):
        shutil.copytree(os.path.join(data_root, "cs", sub), root / "data" / "cs" / sub)
    handler = type("H", (_Handler,), {"faults": {}, "hits": {}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def _args(tmp_path):
    return ["--data-root", str(tmp_path / "d"), "--weights-root", str(tmp_path / "w"),
            "--results", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "rep")]


def _rows(tmp_path):
    with sqlite3.connect(tmp_path / "r.sqlite") as db:
        return db.execute("select status, error from results").fetchall()


def test_missing_data_is_fetched_then_the_report_written(tmp_path, cs_mirror, capsys, monkeypatch):
    monkeypatch.delenv("BENCH_OFFLINE", raising=False)
    monkeypatch.delenv("BENCH_NO_REPORT", raising=False)    # conftest turns the report off for other tests
    url, _ = cs_mirror
    assert main(["run", *CELL, *_args(tmp_path), "--mirror", url]) == 0
    out, err = capsys.readouterr()
    assert "set11: 11 downloaded, 0 already present; 11 file(s) verified (sha256)" in err
    assert "cs_sampling_matrix: 12 downloaded" in err
    assert os.path.isfile(tmp_path / "d" / "cs" / "Set11" / "Monarch.tif")
    assert [s for s, _ in _rows(tmp_path)] == ["ok"]
    assert f"report of suite cs written to {tmp_path / 'rep'}" in out and "Markdown" in out
    assert any(f.endswith(".md") for f in os.listdir(tmp_path / "rep"))
    # a second run finds everything there: nothing fetched, the cell reused
    assert main(["run", *CELL, *_args(tmp_path), "--mirror", url, "--no-report"]) == 0
    out, err = capsys.readouterr()
    assert "fetching" not in err and "1 reused" in out and "report of suite" not in out
    monkeypatch.setenv("BENCH_NO_REPORT", "1")
    assert main(["run", *CELL, *_args(tmp_path), "--mirror", url]) == 0
    assert "report of suite" not in capsys.readouterr()[0]


@pytest.mark.slow   # pooch's retries of the missing files (~40 s)
def test_a_failed_fetch_fails_only_its_cells(tmp_path, cs_mirror, capsys, monkeypatch):
    monkeypatch.delenv("BENCH_OFFLINE", raising=False)
    url, root = cs_mirror
    shutil.rmtree(root / "data" / "cs" / "sampling_matrix")        # the mirror lacks the matrices
    # a synthetic cell needs no download and still runs
    rc = main(["run", *CELL, "--dataset", "cs_synthetic[ratio=25,n_images=1,size=32]", *_args(tmp_path),
               "--mirror", url, "--no-report"])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "fetching cs_sampling_matrix failed" in err
    rows = sorted(_rows(tmp_path))
    assert [s for s, _ in rows] == ["failed", "ok"]
    assert "cs_sampling_matrix" in rows[0][1] and "HTTPError" in rows[0][1]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_offline_leaves_cells_out_with_one_line(tmp_path, capsys, monkeypatch, how):
    monkeypatch.delenv("BENCH_OFFLINE", raising=False)
    extra = ["--offline"] if how == "flag" else []
    if how == "env":
        monkeypatch.setenv("BENCH_OFFLINE", "1")
    assert main(["run", *CELL, "--method", "tv_admm[n_iter=5]", *_args(tmp_path), *extra]) == 0
    out, err = capsys.readouterr()
    skips = [line for line in err.splitlines() if line.startswith("skipped")]
    assert len(skips) == 1
    assert "get them with `python -m bench data fetch cs_sampling_matrix set11`" in skips[0]
    assert "2 cell(s)" in skips[0] and "qinit" in skips[0] and "tv_admm" in skips[0]
    assert not os.path.exists(tmp_path / "d")
    assert "2 skipped" in out


def test_skip_lines_are_grouped_by_reason():
    lines = group_skip_lines(["a[x=1]: not trained here", "b: not trained here", "a[x=1]: not trained here",
                              "plain reason", None, ""])
    assert lines == ["skipped 3 cell(s): not trained here [a[x=1]; b]", "skipped 1 cell(s): plain reason"]


def test_what_the_default_grids_need():
    """The items a run fetches for each suite's default grid: the data sets its data sets read
    (the hsi test split's three) and the published weights its rows name."""
    from bench import registry as R
    from bench.fetching import needed_items
    from bench.grid import build_cells
    from bench.suite import grid_parts
    R.load_all()
    want = {"hsi": {"abu_pavia", "cave", "paviau_sub50", "smds_net:icvl_sigma55", "star_net:sigma50_bandwise"},
            "cs": {"set11", "cs_sampling_matrix"}, "istd": {"sirst", "rpcanet:sirst", "nudt_sirst", "rpcanet:nudt_sirst",
                                                           "l_rpcanet:nudt_sirst"}, "sparse": set()}
    for name, items in want.items():
        s = R.SUITES[name]
        cells = [c for p in grid_parts(s.grid)
                 for c in build_cells(name, p.datasets, p.degradations, p.methods, ["cpu"], 0, p.protocols)]
        assert {i.name for c in cells for i in needed_items(c)} == items, name
