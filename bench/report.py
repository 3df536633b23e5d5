"""The report layer shared by the suites: rows -> tables (LaTeX with booktabs and
Markdown twins) and figures.

Reports read the stored rows only; they never rerun a method or compute a metric.
A table is given as a DataFrame of numbers (NaN = not measured, printed "–") and, per
column, which direction is better; the best value of each column is set in bold.

What every suite's report does the same way lives here: the newest row per cell
(:func:`newest`), accuracy read from the CPU row where there is one (:func:`prefer_cpu`),
a pivot of rows into a table (:func:`pivot`), tables whose columns (or rows) are metrics
taking each metric's own direction, label and format from the registry
(:func:`metric_table`), per-device times and parameter counts (:func:`device_times`,
:func:`parameter_counts`), captions from a template (:func:`caption`) and figures' arrays
read from a row's artifact file (:func:`row_arrays`). A suite's report declares its tables
and figures with these.

Files a report folder holds (:func:`report_files` lists them; an HTML page can read them):

- per table stem: ``<stem>.tex`` (a ``table`` float that compiles with booktabs and graphicx
  alone; its ``%`` header names the sidecar), ``<stem>.md`` (the same table in Markdown) and
  ``<stem>.json``, the sidecar: caption, notes, legend of the marks, the commits, CPUs and
  threads of the rows, and per method row its selector, weights (source, SHA-256), training
  (recipe, steps, minutes, command) and protocol definitions. Deterministic (sorted keys, no
  timestamps), so that a rebuild from the same rows is byte-identical;
- per figure stem: ``<stem>.png`` and ``<stem>.pdf`` (no creation date or software version
  in their metadata: rebuilds are byte-identical).

Rows are named as the papers write them (:func:`bench.report_style.display_labels`: the
method's ``display_name``, a compact parameter such as "FISTA (λ=0.1)", and a mark for where
learned weights come from, explained in one legend line under the table). Figures give a
method one colour and line style in every figure of a suite (:func:`bench.report_style.styles`).
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import pandas as pd

from bench.report_style import SYMBOLS, display_labels, latex_escape, legend_line, sidecar

DASH = "–"


@dataclass
class Table:
    values: pd.DataFrame              # numbers; NaN where not measured
    directions: dict                  # column -> "min" / "max" / None (no bold)
    caption: str
    label: str
    fmt: Callable[[float], str] | str = "{:.2f}"
    index_name: str = ""
    #: "column" (default): best per column, ``directions`` keyed by column; "row": best per
    #: row, ``directions`` keyed by row label (tables whose rows are metrics)
    bold_axis: str = "column"
    #: row label -> format, overriding ``fmt`` (rows holding different metrics)
    row_fmt: dict | None = None
    #: what the caption leaves out (protocol details, budgets, provenance): the sidecar's "notes"
    notes: str = ""
    #: the stored rows behind the table: rows labelled with a ``method_label`` get their
    #: display name and mark, and the sidecar their provenance (None: plain labels)
    rows: pd.DataFrame | None = None
    #: header or index text -> its LaTeX form (units, symbols); others are escaped
    tex: dict | None = None


def _format(fmt, v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return DASH
    if callable(fmt):
        return fmt(v)
    return fmt.format(v)


def best_mask(values: pd.DataFrame, directions: dict, axis: str = "column") -> pd.DataFrame:
    """True where a cell holds the best value of its column (of its row with
    ``axis="row"``; ties all bold)."""
    if axis == "row":
        return best_mask(values.T, directions).T
    mask = pd.DataFrame(False, index=values.index, columns=values.columns)
    for col in values.columns:
        d = directions.get(col)
        s = pd.to_numeric(values[col], errors="coerce")
        if d not in ("min", "max") or s.notna().sum() < 2:
            continue
        best = s.min() if d == "min" else s.max()
        mask[col] = s.map(lambda v: bool(v == best) if pd.notna(v) else False)
    return mask


def formatted(table: Table, bold: Callable[[str], str]) -> pd.DataFrame:
    fmt_cols = {}
    mask = best_mask(table.values, table.directions, table.bold_axis)
    row_fmt = table.row_fmt or {}
    for col in table.values.columns:
        fmt = table.fmt.get(col, "{:.2f}") if isinstance(table.fmt, dict) else table.fmt
        fmt_cols[col] = [bold(_format(row_fmt.get(idx, fmt), v)) if mask.at[idx, col]
                         else _format(row_fmt.get(idx, fmt), v)
                         for idx, v in zip(table.values.index, table.values[col])]
    out = pd.DataFrame(fmt_cols, index=table.values.index)
    out.columns = table.values.columns
    out.index.name = table.index_name or table.values.index.name
    return out


_latex_escape = latex_escape

#: header and index text shown as the papers write it (the rest: ``_`` as a space)
WORDS = {"sirst": "SIRST", "nudt_sirst": "NUDT-SIRST", "irstd_1k": "IRSTD-1k", "sirst_aug": "SIRST-Aug",
         "cave": "CAVE", "icvl": "ICVL", "set11": "Set11", "pavia": "Pavia", "pavia_university": "Pavia University",
         "simu_indian": "Indian Pines (simulated)", "hsi_split": "HSI split", "gaussian_noise": "Gaussian",
         "salt_pepper": "salt & pepper", "awgn_snr": "SNR", "measurement_noise": "noise", "hsi_gaussian": "Gaussian",
         "hsi_blind": "blind", "hsi_mixed": "mixed", "istd_synthetic": "synthetic", "cs_synthetic": "synthetic",
         "hsi_synthetic": "synthetic", "gaussian_lasso": "Gaussian LASSO"}


def header_text(s) -> str:
    """A header or index entry readable as text: a selector ``name[k=v,...]`` becomes
    ``Name (k v, ...)`` (names from :data:`WORDS`), and no ``_`` or ``[`` is left."""
    s = str(s)

    def one(sel: str) -> str:
        m = re.fullmatch(r"([a-z][a-z0-9_]*)\[(.*)\]", sel.strip())
        if not m:
            return WORDS.get(sel.strip(), sel)
        name, params = m.group(1), [p for p in re.split(r",(?![^\[]*\])", m.group(2)) if p]
        shown = []
        for p in params:
            k, _, v = p.partition("=")
            sym = SYMBOLS.get(k, (k.replace("_", " "),))[0]
            shown.append(f"{sym}={v}" if k in SYMBOLS else f"{sym} {v}")
        return f"{WORDS.get(name, name)} ({', '.join(shown)})"

    out = ", ".join(one(part) for part in s.split(", "))
    return out.replace("[", "(").replace("]", ")").replace("_", " ")


def _cell_tex(s: str, bolded: bool) -> str:
    body = latex_escape(s.replace("–", "-")) if s != DASH else "--"
    return "\\textbf{" + body + "}" if bolded and s != DASH else body


def _labelled(table: Table):
    """(Markdown index, LaTeX index, legend (md, tex)) of a table: method rows by
    :func:`display_labels`, other entries by :func:`header_text`."""
    idx = [str(i) for i in table.values.index]
    labels = display_labels(table.rows) if table.rows is not None and len(table.rows) else {}
    md, tex, used = [], [], []
    for i in idx:
        hit = labels.get(i) or next((labels[k] for k in sorted(labels, key=len, reverse=True)
                                     if i.startswith(k + " (")), None)
        if hit is not None:
            rest = i[len(hit.selector):]
            if rest.startswith(" (") and rest.endswith(")"):   # "label (dataset)"
                rest = f" ({header_text(rest[2:-1])})"
            md.append(hit.md + header_text(rest))
            tex.append(hit.tex + latex_escape(header_text(rest)))
            used.append(hit)
        else:
            md.append(header_text(i))
            tex.append((table.tex or {}).get(i, latex_escape(header_text(i))))
    for c in _columns(table):
        for x in c:
            if str(x) in labels:
                used.append(labels[str(x)])
    return md, tex, legend_line(used, table.rows)


def _head(x, table: Table) -> tuple[str, str]:
    """A header cell as (Markdown, LaTeX): a method label by its display name, else text."""
    labels = display_labels(table.rows) if table.rows is not None and len(table.rows) else {}
    if str(x) in labels:
        return labels[str(x)].md, labels[str(x)].tex
    return header_text(x), (table.tex or {}).get(x, latex_escape(header_text(x)))


def _columns(table: Table) -> list[tuple]:
    cols = table.values.columns
    return [c if isinstance(c, tuple) else (c,) for c in cols]


def _keep_columns(table: Table) -> Table:
    """The table without its columns that hold no value (e.g. GPU time where nothing ran
    on a GPU)."""
    v = table.values
    keep = [c for c in v.columns if v[c].map(lambda x: not (x is None or (isinstance(x, float) and math.isnan(x)))).any()]
    if len(keep) == len(v.columns) or not keep:
        return table
    from dataclasses import replace
    return replace(table, values=v[keep])


#: a table wider than this (characters of its widest row) is scaled to the text width
WIDE = 75


def to_latex(table: Table) -> str:
    """A ``table`` float with booktabs rules (caption above, the marks' legend below); wide
    tables in ``\\resizebox{\\linewidth}{!}{...}`` (graphicx). Every text is escaped."""
    table = _keep_columns(table)
    mask = best_mask(table.values, table.directions, table.bold_axis)
    plain = formatted(table, bold=lambda s: s)
    md_idx, tex_idx, legend = _labelled(table)
    cols = _columns(table)
    levels = max((len(c) for c in cols), default=1)
    n = len(cols)
    text_cols = [all(not re.fullmatch(r"[-+0-9.,x%–\s]*", str(x)) for x in plain[c] if x != DASH) and
                 any(x != DASH for x in plain[c]) for c in table.values.columns]
    spec = "l" + "".join("l" if t else "r" for t in text_cols)
    lines = []
    if levels > 1:
        tops, j = [], 0
        while j < n:
            k = j
            while k + 1 < n and cols[k + 1][0] == cols[j][0]:
                k += 1
            tops.append((cols[j][0], j, k))
            j = k + 1
        head = [" "]
        rules = []
        for top, j, k in tops:
            t = _head(top, table)[1]
            head.append(t if j == k else f"\\multicolumn{{{k - j + 1}}}{{c}}{{{t}}}")
            if str(top):
                rules.append(f"\\cmidrule(lr){{{j + 2}-{k + 2}}}")
        lines.append(" & ".join(head) + r" \\")
        if rules:
            lines.append(" ".join(rules))
    sub = [_head(c[-1], table)[1] for c in cols]
    name = table.index_name or table.values.index.name or ""
    lines.append(" & ".join([latex_escape(header_text(name))] + sub) + r" \\")
    body = []
    for r, idx in enumerate(table.values.index):
        cells = [_cell_tex(str(plain.iat[r, j]), bool(mask.iat[r, j])) for j in range(n)]
        body.append(" & ".join([tex_idx[r]] + cells) + r" \\")
    width = max([len(header_text(name))] + [len(m) for m in md_idx]) + sum(
        max([len(str(header_text(c[-1])))] + [len(str(x)) for x in plain.iloc[:, j]]) + 3 for j, c in enumerate(cols))
    tabular = ["\\begin{tabular}{" + spec + "}", "\\toprule", *lines, "\\midrule", *body, "\\bottomrule",
               "\\end{tabular}"]
    if width > WIDE:
        tabular = ["\\resizebox{\\linewidth}{!}{%"] + tabular + ["}"]
    out = ["\\begin{table}[htbp]", "\\centering", "\\caption{" + latex_escape(table.caption) + "}",
           "\\label{" + re.sub(r"[^A-Za-z0-9:_-]", "_", table.label) + "}", *tabular]
    if legend[1]:
        out += ["\\par\\smallskip{\\footnotesize " + legend[1] + "\\par}"]
    out.append("\\end{table}")
    return "\n".join(out) + "\n"


def tex_header(stem: str) -> str:
    return ("% generated by `python -m bench report`; do not edit\n"
            f"% provenance (commits, CPU, weights and their SHA-256, training, protocols): {stem}.json\n"
            "% packages: booktabs, graphicx\n")


def to_markdown(table: Table) -> str:
    table = _keep_columns(table)
    df = formatted(table, bold=lambda s: f"**{s}**")
    md_idx, _, legend = _labelled(table)
    if isinstance(df.columns, pd.MultiIndex):
        df.columns = [" ".join(_head(x, table)[0] for x in c if str(x)) for c in df.columns]
    else:
        df.columns = [_head(c, table)[0] for c in df.columns]
    df.index = md_idx
    df.index.name = header_text(table.index_name) if table.index_name else None
    # disable_numparse: keep the formatted strings as written (tabulate would reparse
    # "18.60" into 18.6 and drop the trailing zero)
    out = f"**{table.label}**: {table.caption}\n\n" + df.to_markdown(disable_numparse=True) + "\n"
    return out + (f"\n{legend[0]}\n" if legend[0] else "")


def write_table(table: Table, outdir: str, stem: str) -> list[str]:
    """``<stem>.tex``, ``<stem>.md`` and the sidecar ``<stem>.json`` (see the module docstring)."""
    from bench.outputs import atomic
    paths = []
    _, _, legend = _labelled(table)
    side = json.dumps(sidecar(table, stem, legend[0]), sort_keys=True, indent=1, ensure_ascii=False,
                      default=_json_default) + "\n"
    for ext, text in (("tex", tex_header(stem) + to_latex(table)), ("md", to_markdown(table)), ("json", side)):
        p = os.path.join(outdir, f"{stem}.{ext}")
        with atomic(p) as tmp, open(tmp, "w") as f:  # never half a file (bench.outputs)
            f.write(text)
        paths.append(p)
    return paths


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


#: the figures' metadata, so that a rebuild writes the same bytes: matplotlib's volatile or
#: version-dependent fields are left out (PNG "Software"; PDF "CreationDate", which is the
#: time of writing, and "Producer"/"Creator", which name the matplotlib version). What
#: remains that can change the bytes is the rendering itself: another matplotlib or
#: FreeType version may draw a pixel or a glyph differently.
FIGURE_METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None, "Creator": None}}


def save_figure(fig, outdir: str, stem: str) -> list[str]:
    from bench.outputs import atomic

    paths = []
    for ext in ("png", "pdf"):
        p = os.path.join(outdir, f"{stem}.{ext}")
        with atomic(p) as tmp:
            fig.savefig(tmp, dpi=150, bbox_inches="tight", format=ext, metadata=FIGURE_METADATA[ext])
        paths.append(p)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return paths


def report_files(outdir: str) -> dict[str, list[str]]:
    """The stems of a report folder: ``{"tables": [...], "figures": [...]}``, sorted; a
    table stem has its ``.tex``, ``.md`` and ``.json``, a figure stem its ``.png`` and ``.pdf``."""
    names = set(os.listdir(outdir)) if os.path.isdir(outdir) else set()
    stems = {n.rsplit(".", 1)[0] for n in names if "." in n}
    return {"tables": sorted(s for s in stems if {f"{s}.tex", f"{s}.md"} <= names),
            "figures": sorted(s for s in stems if f"{s}.png" in names)}


def provenance_line(frame: pd.DataFrame) -> str:
    """Commits and devices behind a set of rows, for captions."""
    # a row computed from a tree with uncommitted changes keeps its "-dirty" mark
    commits = sorted({str(p.get("commit", "?"))[:12] + ("-dirty" if str(p.get("commit", "")).endswith("-dirty") else "")
                      for p in frame["provenance"] if isinstance(p, dict)})
    cpus = sorted({str(p.get("cpu_model", "?")) for p in frame["provenance"] if isinstance(p, dict)})
    return f"commit {', '.join(commits) or '?'}; CPU {'; '.join(cpus) or '?'}"


def latest(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Keep the newest row of each group (a rerun after a code change supersedes); a
    missing value (a suite without protocols) is a group of its own, not dropped."""
    return frame.sort_values("created_at").groupby(list(by), as_index=False, sort=False, dropna=False).tail(1)


def slug(s: str) -> str:
    """A file-name-safe form of a label: ``sirst[limit=20]`` -> ``sirst_limit_20``."""
    return "".join(c if c.isalnum() else "_" for c in s).strip("_")


def method_order(frame: pd.DataFrame) -> list[str]:
    """Method labels in table order: reference rows (e.g. the noisy input) first, then
    classical, then learned methods, each in registration order."""
    from bench import registry as R
    names = list(R.METHODS)
    fam_rank = {"reference": 0, "classical": 1, "learned": 2}

    def key(label):
        fam = frame.loc[frame["method_label"] == label, "family"].iloc[0]
        base = label.split("[")[0]
        return (fam_rank.get(fam, 3), names.index(base) if base in names else 99, label)
    return sorted(frame["method_label"].unique(), key=key)


def legend_from_all_axes(fig, axes, **kwargs) -> None:
    """One legend for the whole figure with every line of every panel (a method that
    appears only in some panels, e.g. a learned net trained at some SNRs, is still named)."""
    handles, labels = {}, []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
    if labels:
        if fig.get_layout_engine() is not None:   # constrained layout: room made beside the panels
            fig.legend([handles[lab] for lab in labels], labels, loc="outside right center", **kwargs)
        else:
            fig.legend([handles[lab] for lab in labels], labels, loc="center left",
                       bbox_to_anchor=(1.0, 0.5), **kwargs)


# --------------------------------------------------------------------------- the shared layer
#: what identifies a cell in a report: a rerun of one of these supersedes the older row
#: (rows of two protocols are two cells; a frame without the column, built by hand, has none)
CELL = ("dataset", "degradation", "method_label", "device", "protocol")


def newest(frame: pd.DataFrame) -> pd.DataFrame:
    """The newest row of each cell (dataset, degradation, method label, device, protocol)."""
    return latest(frame, [c for c in CELL if c in frame.columns])


def prefer_cpu(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """One row per group of ``by``: the CPU row where there is one, else the first other
    (accuracy does not depend on the device; times do, and are read per device)."""
    rows = frame.sort_values("device", key=lambda s: s.map(lambda d: 0 if d == "cpu" else 1))
    return rows.groupby(list(by), as_index=False, sort=False).head(1)


def pivot(rows: pd.DataFrame, index: str | Callable, cells: Callable, order: Sequence,
          columns: Sequence) -> pd.DataFrame:
    """A table of numbers: one row per label in ``order``, the ``columns`` given (tuples
    make a two-level header), NaN where no row gives a value. ``index`` names the row's
    label (a column of ``rows`` or a function of a row); ``cells(row)`` yields
    (column, value) pairs. A later row overwrites an earlier one's cell."""
    cols = pd.MultiIndex.from_tuples(list(columns)) if columns and isinstance(columns[0], tuple) else list(columns)
    values = pd.DataFrame(math.nan, index=list(order), columns=cols)
    for _, r in rows.iterrows():
        label = index(r) if callable(index) else r[index]
        for col, v in cells(r):
            values.at[label, col] = v
    return values


def metric_lookup(suite: str) -> dict:
    """Table label (and name) -> :class:`~bench.registry.Metric` for a suite's metrics."""
    from bench import registry as R
    R.load_all()
    out = {}
    for m in R.METRICS.values():
        if m.suite == suite:
            out.setdefault(m.display, m)
            out.setdefault(m.name, m)
    return out


def metric_cells(row, labels: dict, group=None, source: Callable | None = None):
    """(column, value) pairs of the metrics ``labels`` (table label -> metric name) of one
    row, from its ``metrics`` (or from ``source(row)``); columns ``(group, label)`` when a
    group is given. A metric the row lacks is NaN."""
    got = row["metrics"] if source is None else source(row)
    for label, name in labels.items():
        yield ((group, label) if group is not None else label), (got or {}).get(name, math.nan)


def metric_table(values: pd.DataFrame, suite: str, caption: str, label: str, *, metrics: dict | None = None,
                 fmt: dict | None = None, directions: dict | None = None, bold: bool = True,
                 axis: str = "column", key: Callable | None = None, index_name: str = "method",
                 notes: str = "", rows: pd.DataFrame | None = None, tex: dict | None = None) -> Table:
    """A :class:`Table` whose columns (``axis="row"``: rows) hold metrics: each takes its
    metric's direction (the bold best) and format from the registry. A column is matched by
    its key (the last level of a two-level header; ``key`` may derive it otherwise) against
    ``metrics`` (key -> metric name) and then the suite's metric labels; ``fmt`` and
    ``directions`` (key -> value) set the columns that are not metrics (times, counts) or
    override; ``bold=False`` bolds nothing (e.g. rules that are not methods); ``notes``,
    ``rows`` and ``tex`` as in :class:`Table` (the caption stays short, the rest goes to notes)."""
    known = metric_lookup(suite)
    metrics, fmt, directions = metrics or {}, fmt or {}, directions or {}
    labels = values.columns if axis == "column" else values.index
    key = key or (lambda c: c[-1] if isinstance(c, tuple) else c)
    fmts, dirs = {}, {}
    for c in labels:
        k = key(c)
        m = known.get(metrics.get(k, k))
        fmts[c] = fmt.get(k, m.fmt if m else "{:.2f}")
        dirs[c] = directions.get(k, m.direction if m else None) if bold else None
    extra = dict(notes=notes, rows=rows, tex=tex)
    if axis == "row":
        return Table(values, dirs, caption, label, index_name=index_name, bold_axis="row", row_fmt=fmts, **extra)
    return Table(values, dirs, caption, label, fmt=fmts, index_name=index_name, **extra)


def threads(frame: pd.DataFrame) -> str:
    """The torch threads the rows ran with, for captions."""
    return ", ".join(sorted({str(p.get("threads")) for p in frame["provenance"] if isinstance(p, dict)}))


def caption(template: str, frame: pd.DataFrame, **fields) -> str:
    """A caption from a template: ``{prov}`` (commits and CPUs of ``frame``'s rows) and
    ``{threads}`` are filled in, the other fields from ``fields``."""
    return template.format(prov=provenance_line(frame), threads=threads(frame), **fields)


def device_times(rows: pd.DataFrame, by: Sequence[str], value: str = "time_s", agg: str = "median") -> dict:
    """(*by, "cpu" | "cuda") -> ``agg`` of the column ``value`` over the rows of each group
    and device ("cuda:1" counts as "cuda")."""
    dev = rows["device"].map(lambda d: "cuda" if str(d).startswith("cuda") else str(d))
    grouped = rows.assign(_dev=dev).groupby(list(by) + ["_dev"])[value].agg(agg)
    return {k: float(v) for k, v in grouped.items()}


def parameter_counts(frame: pd.DataFrame) -> dict:
    """method label -> learned parameters (the first row that has a count)."""
    out = {}
    for m, pc in zip(frame["method_label"], frame["parameter_count"]):
        if m not in out and pc is not None and pc == pc:
            out[m] = float(pc)
    return out


# --------------------------------------------------------------------------- figures' arrays
def row_arrays(row) -> dict:
    """The arrays of a row's artifact file (``extras["artifact"]``; see
    :mod:`bench.artifacts`), {} when the row has none or the file is gone."""
    from bench.artifacts import load
    return load(row)
