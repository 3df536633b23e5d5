"""``bench publish`` and ``bench report --all``: a report folder rebuilt from committed tidy
data, byte for byte, with the same tables as a report written from the store itself."""
from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import sqlite3

import numpy as np
import pandas as pd
import pytest

from bench.artifacts import load
from bench.cli import main
from bench.export import COLUMNS
from bench.publish import import_published, read_index
from bench.store import Store
from tests.helpers import TINY_LASSO


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("publish") / "r.sqlite")
    rc = main(["run", "--suite", "sparse", "--dataset", TINY_LASSO, "--degradation", "awgn_snr[snr_db=[inf,40]]",
               "--method", "ista[n_iter=16]", "--method", "fista[n_iter=16]", "--method", "admm[n_iter=16]",
               "--repeat", "1", "--no-progress", "--threads", "1", "--results", path])
    assert rc == 0
    return path


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A working directory with the repository's layout (reports/, results/published/)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _files(folder) -> dict[str, bytes]:
    out = {}
    for d, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, folder)] = fh.read()
    return out


def test_publish_writes_tidy_data_and_the_folder(store, repo, capsys):
    assert main(["publish", "--suite", "sparse", "--folder", "reports/sparse", "--results", store]) == 0
    out = capsys.readouterr().out
    assert "results/published/sparse.csv.gz" in out and "reports/index.html" in out
    assert "6 cell(s) from 1 commit(s)" in out
    index = read_index()
    entry = index["reports/sparse"]
    assert entry["suite"] == "sparse" and entry["options"] == {} and entry["arrays"] is None
    tidy = pd.read_csv(entry["data"])
    assert list(tidy.columns) == list(COLUMNS)  # bench export's format
    assert len(tidy) == 6 and set(tidy["method_label"]) == {"ista[n_iter=16]", "fista[n_iter=16]", "admm[n_iter=16]"}
    with gzip.open(entry["cells"], "rt") as f:
        cells = json.load(f)
    assert set(cells) == set(tidy["key"])
    assert sorted(p.name for p in (repo / "reports" / "sparse").iterdir() if p.suffix == ".md")  # the report
    assert (repo / "reports" / "index.html").exists()


def test_report_all_is_byte_identical_and_matches_the_stores_report(store, repo, tmp_path_factory):
    assert main(["publish", "--suite", "sparse", "--folder", "reports/sparse", "--results", store,
                 "--no-report"]) == 0
    assert not (repo / "reports" / "sparse").exists()
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    assert main(["report", "--all", "--out-root", str(a)]) == 0
    assert main(["report", "--all", "--out-root", str(b)]) == 0
    fa, fb = _files(a), _files(b)
    assert any(k.endswith(".png") for k in fa) and any(k.endswith(".pdf") for k in fa)
    assert "index.html" in fa
    assert fa == fb  # every byte, figures and the page included
    # store -> report gives the same tables and figures as store -> tidy -> report
    direct = tmp_path_factory.mktemp("direct")
    assert main(["report", "--suite", "sparse", "--results", store, "--out", str(direct)]) == 0
    fd = _files(direct)
    written = {k for k in fd if k != "index.html"}
    assert written and {os.path.join("sparse", k) for k in written} == {k for k in fa if k.startswith("sparse")}
    for k in written:
        assert fd[k] == fa[os.path.join("sparse", k)], k


def test_report_all_rewrites_the_committed_folder_and_removes_stale_files(store, repo, capsys):
    assert main(["publish", "--suite", "sparse", "--folder", "reports", "--results", store]) == 0
    before = _files(repo / "reports")
    (repo / "reports" / "sparse_old_table.md").write_text("stale")
    (runtime,) = (repo / "reports").glob("sparse_runtime*.md")
    runtime.with_suffix(".json").write_text("{}")  # a table's sidecar, rewritten by the rebuild
    (repo / "reports" / "sparse_nmse_curves.png").write_bytes(b"changed")
    (repo / "reports" / "hsi").mkdir()
    (repo / "reports" / "hsi" / "keep.md").write_text("another folder's file")
    capsys.readouterr()
    assert main(["report", "--all"]) == 0
    assert "removed (no longer written): reports/sparse_old_table.md" in capsys.readouterr().out
    after = _files(repo / "reports")
    assert after[runtime.with_suffix(".json").name] != b"{}"
    assert after.pop(os.path.join("hsi", "keep.md")) == b"another folder's file"  # sub-folders stay
    assert {k: v for k, v in after.items() if k != "index.html"} == \
        {k: v for k, v in before.items() if k != "index.html"}
    assert read_index()["reports"]["data"] == os.path.join("results", "published", "sparse.csv.gz")


@pytest.mark.parametrize("folder", ["artifacts", "r.sqlite.artifacts"])
def test_figure_arrays_travel_with_the_published_data(store, repo, tmp_path, monkeypatch, folder):
    """The arrays a report reads from a row's artifact file (bench.artifacts) are published
    in the .npz, those it does not read are left out, and they come back beside the
    temporary store the rebuild reads, where the report reads the same values: from the
    older shared ``artifacts/`` folder and from a store's own ``<store>.artifacts/``."""
    from bench import registry as R
    from bench.report import row_arrays, write_table
    from bench.report import Table

    src = tmp_path / "src" / "r.sqlite"
    src.parent.mkdir()
    with sqlite3.connect(store) as a, sqlite3.connect(src) as b:  # the WAL's rows too
        a.backup(b)
    key = Store(str(src)).frame("sparse")["key"].iloc[0]
    arrays = {"image": np.arange(12, dtype=np.uint8).reshape(3, 4), "mask": np.eye(3, dtype=np.uint8)}
    (src.parent / folder).mkdir()
    np.savez_compressed(src.parent / folder / f"{key}.npz", **arrays)
    with sqlite3.connect(src) as conn:
        (extras,) = conn.execute("SELECT extras FROM results WHERE key=?", (key,)).fetchone()
        e = json.loads(extras) if extras else {}
        e["artifact"] = f"{folder}/{key}.npz"
        conn.execute("UPDATE results SET extras=? WHERE key=?", (json.dumps(e), key))

    suite = R.SUITES["sparse"]
    original = suite.report

    def report(frame, outdir, options):  # the sparse report plus a table of one array's sum
        paths = original(frame, outdir, options)
        sums = {r["key"][:8]: float(row_arrays(r)["image"].sum()) for _, r in frame.iterrows() if row_arrays(r)}
        t = Table(pd.DataFrame({"sum": sums}), {}, "sums", "tab:sums")
        return paths + write_table(t, outdir, "sparse_sums")

    monkeypatch.setattr(suite, "report", report)
    assert main(["publish", "--suite", "sparse", "--folder", "reports", "--results", str(src)]) == 0
    assert "| 66 " in (repo / "reports" / "sparse_sums.md").read_text().replace("66.00", "66 ")
    entry = read_index()["reports"]
    assert entry["arrays"] == os.path.join("results", "published", "sparse.npz")
    with np.load(entry["arrays"]) as f:
        assert f.files == [f"{key}/image"]  # the mask, which no report reads, is not published
    rebuilt = tmp_path / "rebuilt" / "r.sqlite"
    rebuilt.parent.mkdir()
    assert import_published(entry, str(rebuilt)) == 6
    frame = Store(str(rebuilt)).frame("sparse")
    row = frame[frame["key"] == key].iloc[0]
    got = load(row, str(rebuilt))
    assert set(got) == {"image"} and np.array_equal(got["image"], arrays["image"])
    # the other rows are the store's, column for column
    orig = Store(str(src)).frame("sparse").set_index("key").sort_index()
    back = frame.set_index("key").sort_index()
    for c in ("method_label", "dataset_params", "degradation_params", "metrics", "curves", "extras", "provenance",
              "created_at", "time_s", "times_s", "threads", "seed", "n_samples"):
        if c == "extras":  # the artifact's path is the rebuilt store's
            assert [{**(e or {}), "artifact": None} for e in back[c]] == \
                [{**(e or {}), "artifact": None} for e in orig[c]]
            continue
        assert back[c].tolist() == orig[c].tolist(), c


def test_report_errors(repo, capsys):
    assert main(["report", "--all"]) == 1
    assert "no published report data" in capsys.readouterr().err
    assert main(["report"]) == 2
    assert "--suite SUITE" in capsys.readouterr().err
    assert main(["report", "--all", "--suite", "sparse"]) == 2
    assert main(["report", "--suite", "sparse", "--out-root", "x"]) == 2
    assert main(["publish", "--suite", "sparse", "--folder", "reports", "--results", "none.sqlite"]) == 1
    assert "no result store" in capsys.readouterr().err
    Store("s.sqlite")
    assert main(["publish", "--suite", "sparse", "--folder", "elsewhere", "--results", "s.sqlite"]) == 1
    assert "lives under reports/" in capsys.readouterr().err
    assert not (repo / "results" / "published").exists()


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_readme_headline_tables_are_the_generated_ones():
    """The README's headline tables are the report files' tables as written (`report --all`
    refreshes them), and the README stays a short product page."""
    from bench.publish import _README_BLOCK, table_section
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    blocks = list(_README_BLOCK.finditer(text))
    assert len(blocks) >= 4  # one per suite
    for m in blocks:
        with open(os.path.join(REPO, m.group("path")), encoding="utf-8") as f:
            assert m.group("body") == table_section(f.read()), \
                f"README's table from {m.group('path')} is stale: run `python -m bench report --all`"
    assert len(text.splitlines()) <= 220
    assert "SPECS" not in text and "../shared" not in text and not re.search(r"\bissue \d", text)


def test_refresh_readme(tmp_path):
    from bench.publish import refresh_readme
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "t.md").write_text("**tab:t**: a caption.\n\n| m | a |\n|:--|--:|\n| x | 1 |\n\n† legend\n")
    readme = tmp_path / "README.md"
    readme.write_text("# t\n<!-- table: reports/t.md -->\nold\n<!-- end table -->\n"
                      "<!-- table: reports/missing.md -->\nkept\n<!-- end table -->\n")
    assert refresh_readme(str(readme)) == ["reports/t.md"]
    assert readme.read_text() == ("# t\n<!-- table: reports/t.md -->\n\n| m | a |\n|:--|--:|\n| x | 1 |\n\n† legend\n\n"
                                  "<!-- end table -->\n<!-- table: reports/missing.md -->\nkept\n<!-- end table -->\n")
    assert refresh_readme(str(readme)) == []  # nothing to change the second time
