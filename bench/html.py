"""The HTML results page: ``reports/index.html``, written by ``bench report`` and ``report --all``.

One static file that opens from disk without a server: relative links only, no external
CSS, script or font. It is made from the files in the report folders (so it shows whatever
the folders hold, whichever command wrote them): per folder (``reports/`` itself and each
sub-folder holding tables or figures), under its suite's name,

* every table (``<stem>.md``, rendered as an HTML table; the lines above and below it as
  the caption and legend), with links to its ``.tex``, ``.md`` and ``.json`` files and its
  provenance (the sidecar ``<stem>.json``) in a collapsible ``<details>`` panel; a table
  without a sidecar says so;
* every figure (``<stem>.png``, linked to its ``.pdf``);
* a link to the tidy data behind the folder when it is published
  (``results/published/index.json``, :mod:`bench.publish`).

The page is a function of those files only (sorted, no time stamp): rebuilding the reports
rewrites it byte for byte. A small inline script marks ``<body>`` with
``data-images-loaded="N/M"`` (and ``data-all-loaded="yes"``) once every image has loaded,
which the browser test reads.
"""
from __future__ import annotations

import html
import json
import os
import re

from bench.publish import PUBLISHED, read_index

TITLE = "imaging-inverse-bench: results"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 0 1.5em 3em; color: #1b1f24; line-height: 1.45; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid #d0d7de; padding: .5em 0; }
nav a { margin-right: 1em; }
h2 { border-bottom: 2px solid #1b1f24; padding-bottom: .2em; margin-top: 2em; }
h3 { margin-bottom: .3em; }
.table { margin: 1.5em 0 2em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .88em; margin: .4em 0; }
th, td { padding: .25em .6em; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { border-top: 2px solid #1b1f24; border-bottom: 1px solid #1b1f24; }
tbody tr:last-child td { border-bottom: 2px solid #1b1f24; }
.caption { margin: .2em 0; }
.legend { font-size: .85em; color: #57606a; }
.links { font-size: .85em; }
.links a { margin-right: .8em; }
details { font-size: .85em; margin: .3em 0; }
details pre { background: #f6f8fa; padding: .6em; overflow-x: auto; max-height: 30em; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { font-size: .85em; }
.muted { color: #57606a; font-size: .85em; }
"""

_SCRIPT = """
function markLoaded() {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++; }
  document.body.setAttribute("data-images-loaded", ok + "/" + imgs.length);
  if (ok === imgs.length) document.body.setAttribute("data-all-loaded", "yes");
}
window.addEventListener("load", markLoaded);
"""

_BOLD = re.compile(r"\*\*(.+?)\*\*")


def _inline(text: str) -> str:
    """Markdown's inline marks that the report tables use (bold, code) as HTML."""
    out = html.escape(text, quote=False)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", out)


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [c.strip() for c in line.split("|")]


def markdown_table(text: str) -> tuple[list[str], list[list[str]], list[str], list[str]]:
    """A report's Markdown table file as (header, rows, lines before, lines after)."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("|")), None)
    if start is None:
        return [], [], [ln for ln in lines if ln.strip()], []
    end = start
    while end < len(lines) and lines[end].lstrip().startswith("|"):
        end += 1
    block = lines[start:end]
    header = _cells(block[0])
    body = [_cells(ln) for ln in block[1:] if not re.fullmatch(r"\|?[\s:|-]+\|?", ln.strip())]
    before = [ln for ln in lines[:start] if ln.strip()]
    after = [ln for ln in lines[end:] if ln.strip()]
    return header, body, before, after


def table_html(text: str) -> str:
    header, body, before, after = markdown_table(text)
    out = [f'<p class="caption">{_inline(" ".join(before))}</p>'] if before else []
    if header:
        out.append('<div class="scroll"><table>')
        out.append("<thead><tr>" + "".join(f"<th>{_inline(h)}</th>" for h in header) + "</tr></thead>")
        out.append("<tbody>")
        for row in body:
            out.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>")
        out.append("</tbody></table></div>")
    out += [f'<p class="legend">{_inline(ln)}</p>' for ln in after]
    return "\n".join(out)


def _href(path: str, root: str) -> str:
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    return html.escape("/".join(rel.split(os.sep)), quote=True)


def _folders(root: str) -> list[str]:
    """The folders under ``root`` (itself first) that hold tables or figures, sorted."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        if any(f.endswith((".md", ".png")) for f in files):
            out.append(d)
    return out


def _suite_of(folder: str, stems: list[str], published: dict | None) -> str:
    if published:
        return published["suite"]
    from bench import registry as R
    R.load_all()
    for stem in stems:
        for name in sorted(R.SUITES, key=len, reverse=True):
            if stem.startswith(name + "_") or stem == name:
                return name
    return os.path.basename(os.path.abspath(folder))


def _published_for(folder: str, root: str, index: dict) -> dict | None:
    """The index entry of ``folder`` (a folder of the page's ``root``), matched by its path
    below the root against the index's paths below ``reports/``."""
    rel = os.path.normpath(os.path.relpath(os.path.abspath(folder), os.path.abspath(root)))
    for key, entry in index.items():
        krel = os.path.normpath(os.path.relpath(os.path.abspath(key), os.path.abspath("reports")))
        if krel == rel:
            return entry
    return None


def _section(folder: str, root: str, index: dict) -> tuple[str, str, str]:
    files = sorted(os.listdir(folder))
    tables = [f[:-3] for f in files if f.endswith(".md") and f.lower() != "readme.md"]
    figures = [f[:-4] for f in files if f.endswith(".png")]
    published = _published_for(folder, root, index)
    suite = _suite_of(folder, tables + figures, published)
    rel = _href(folder, root)
    anchor = "s-" + re.sub(r"[^A-Za-z0-9]+", "-", rel if rel != "." else "top").strip("-")
    where = "reports/" if rel == "." else f"reports/{rel}/"
    out = [f'<section id="{anchor}">', f"<h2>{html.escape(suite)} <span class=\"muted\">{html.escape(where)}</span></h2>"]
    if published:
        links = [f'<a href="{_href(published[k], root)}">{label}</a>'
                 for k, label in (("data", "tidy data (csv.gz)"), ("cells", "cells (json.gz)"),
                                  ("arrays", "figure arrays (npz)")) if published.get(k)]
        opts = published.get("options") or {}
        opt = (" · report options: " + ", ".join(f"{k}={v}" for k, v in sorted(opts.items()))) if opts else ""
        out.append(f'<p class="links">Data behind these reports: {" ".join(links)}'
                   f'{html.escape(opt)}</p>')
    else:
        out.append('<p class="muted">The data behind this folder is not published '
                   '(see <code>python -m bench publish --help</code>).</p>')
    for stem in tables:
        with open(os.path.join(folder, stem + ".md"), encoding="utf-8") as f:
            md = f.read()
        out.append(f'<div class="table" id="{anchor}-{html.escape(stem, quote=True)}">')
        out.append(f"<h3>{html.escape(stem)}</h3>")
        out.append(table_html(md))
        links = [f'<a href="{_href(os.path.join(folder, stem + ext), root)}">{ext[1:]}</a>'
                 for ext in (".tex", ".md", ".json") if os.path.exists(os.path.join(folder, stem + ext))]
        out.append(f'<p class="links">{" ".join(links)}</p>')
        side = os.path.join(folder, stem + ".json")
        if os.path.exists(side):
            with open(side, encoding="utf-8") as f:
                try:
                    prov = json.dumps(json.load(f), indent=1, sort_keys=True, ensure_ascii=False)
                except ValueError:
                    f.seek(0)
                    prov = f.read()
            out.append(f"<details><summary>provenance</summary><pre>{html.escape(prov)}</pre></details>")
        else:
            out.append('<p class="muted">no provenance file beside this table</p>')
        out.append("</div>")
    for stem in figures:
        png = os.path.join(folder, stem + ".png")
        pdf = os.path.join(folder, stem + ".pdf")
        cap = html.escape(stem) + (f' (<a href="{_href(pdf, root)}">pdf</a>)' if os.path.exists(pdf) else "")
        out.append(f'<figure><img src="{_href(png, root)}" alt="{html.escape(stem, quote=True)}">'
                   f"<figcaption>{cap}</figcaption></figure>")
    out.append("</section>")
    return anchor, f"{suite} ({where})", "\n".join(out)


def render(root: str, published_root: str = PUBLISHED) -> str:
    """The page for the report folders under ``root``."""
    index = read_index(published_root)
    sections = [_section(d, root, index) for d in _folders(root)]
    nav = " ".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t, _ in sections)
    body = "\n".join(s for _, _, s in sections) or '<p>No reports yet: run <code>python -m bench run</code>.</p>'
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{TITLE}</title>\n<style>{_CSS}</style>\n<script>{_SCRIPT}</script>\n</head>\n<body>\n"
            f"<h1>{TITLE}</h1>\n<p>Tables and figures written by <code>python -m bench report</code>; each table "
            f"links to its LaTeX, Markdown and provenance files.</p>\n<nav>{nav}</nav>\n{body}\n</body>\n</html>\n")


def write_index(root: str, published_root: str = PUBLISHED) -> str:
    """Write ``root/index.html``; its path."""
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, "index.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(root, published_root))
    return path
