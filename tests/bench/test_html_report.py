"""The HTML results page (reports/index.html): static, relative links only, every table and
figure of every report folder, provenance panels, links to the files and the tidy data; and
rendered in headless Chromium with every image loaded."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from bench.cli import main
from tests.helpers import TINY_LASSO

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A working directory with a published sparse report folder, an unpublished folder and
    a provenance sidecar beside one table; the page written by `report --all`."""
    root = tmp_path_factory.mktemp("site")
    old = os.getcwd()
    os.chdir(root)
    try:
        store = str(root / "store" / "r.sqlite")
        assert main(["run", "--suite", "sparse", "--dataset", TINY_LASSO, "--degradation", "awgn_snr[snr_db=[inf,40]]",
                     "--method", "ista[n_iter=16]", "--method", "fista[n_iter=16]", "--repeat", "1",
                     "--no-progress", "--threads", "1", "--results", store]) == 0
        assert main(["publish", "--suite", "sparse", "--folder", "reports/sparse", "--results", store,
                     "--no-report"]) == 0
        # a folder without published data (an older report), with a table of another layout
        (root / "reports" / "old").mkdir(parents=True)
        (root / "reports" / "old" / "sparse_old.md").write_text(
            "**tab:old**: an old table & <its> caption.\n\n| method | a |\n|:--|--:|\n| ista | **1.00** |\n\n"
            "† a legend line\n")
        assert main(["report", "--all"]) == 0
        sidecar = {"commits": ["abc"], "cpu": "AMD EPYC", "rows": {"ista[n_iter=16]": {"protocol": "x < y"}}}
        (runtime,) = (root / "reports" / "sparse").glob("sparse_runtime*.md")  # named after the instance
        runtime.with_suffix(".json").write_text(json.dumps(sidecar))
        from bench.html import write_index
        write_index("reports")
    finally:
        os.chdir(old)
    return root


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.imgs, self.links, self.details, self.summaries = 0, [], [], 0, 0
        self.body = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables += 1
        elif tag == "img":
            self.imgs.append(a["src"])
        elif tag == "a":
            self.links.append(a["href"])
        elif tag == "details":
            self.details += 1
        elif tag == "body":
            self.body = a


def _parse(text: str) -> _Page:
    p = _Page()
    p.feed(text)
    return p


def _expected(root):
    tables, figures = [], []
    for d, _, files in os.walk(root / "reports"):
        tables += [os.path.join(d, f) for f in files if f.endswith(".md")]
        figures += [os.path.join(d, f) for f in files if f.endswith(".png")]
    return tables, figures


def test_page_has_every_table_figure_and_link(site):
    html = (site / "reports" / "index.html").read_text()
    page = _parse(html)
    tables, figures = _expected(site)
    assert len(tables) >= 4 and len(figures) >= 2
    assert page.tables == len(tables)
    assert sorted(os.path.normpath(site / "reports" / s) for s in page.imgs) == sorted(figures)
    for href in page.links:  # relative links that resolve, nothing external
        if href.startswith("#"):
            continue
        assert "://" not in href and not href.startswith("/"), href
        assert os.path.exists(os.path.normpath(site / "reports" / href)), href
    assert "../results/published/sparse.csv.gz" in page.links  # the tidy data
    for t in tables:
        stem = os.path.splitext(os.path.relpath(t, site / "reports"))[0]
        assert stem + ".tex" in page.links or "old" in stem
        assert stem + ".md" in page.links
    sidecars = sorted(f"sparse/{p.name}" for p in (site / "reports" / "sparse").glob("*.json"))
    assert len(sidecars) == len(tables) - 1  # `bench report` writes one beside each of its tables
    assert sorted(h for h in page.links if h.endswith(".json")) == sidecars
    assert page.details == len(sidecars)  # each table with a sidecar: its provenance in a panel
    assert "x &lt; y" in html and "an old table &amp; &lt;its&gt; caption" in html
    assert "<strong>1.00</strong>" in html and "† a legend line" in html
    assert html.count("no provenance file beside this table") == 1  # the old folder's table
    assert "not published" in html  # the folder without data says so
    assert not re.search(r"<(link|script)[^>]+(src|href)=", html)  # no external CSS/JS/fonts


def test_page_is_rebuilt_byte_identically(site):
    from bench.html import render
    old = os.getcwd()
    os.chdir(site)
    try:
        assert render("reports") == (site / "reports" / "index.html").read_text()
    finally:
        os.chdir(old)


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian package `chromium`)")
def test_page_renders_in_headless_chromium(site, tmp_path):
    url = (site / "reports" / "index.html").as_uri()
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--virtual-time-budget=10000"]
    dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    page = _parse(dom)
    tables, figures = _expected(site)
    assert page.tables == len(tables)
    assert len(page.imgs) == len(figures)
    # set by the page's script once every <img> is complete with a natural width
    assert page.body.get("data-images-loaded") == f"{len(figures)}/{len(figures)}", page.body
    assert page.body.get("data-all-loaded") == "yes"
    shot = tmp_path / "page.png"
    subprocess.run(flags + ["--window-size=1200,2400", f"--screenshot={shot}", url], capture_output=True,
                   timeout=120)
    assert shot.exists()
    import matplotlib.image as mpimg
    img = mpimg.imread(str(shot))
    assert img.shape[0] == 2400 and img.shape[1] == 1200
    dark = (img[..., :3].mean(axis=2) < 0.5).mean()
    assert 0.005 < dark < 0.5  # text and figures drawn, not a blank or black page
    assert np.unique(img[..., :3].reshape(-1, 3), axis=0).shape[0] > 50  # the figures' colours
