"""How reports name and draw methods: display labels with the marks of where learned
weights come from (parameters as symbols, text escaped for LaTeX), the legend line that
explains the marks, the tables' provenance sidecar, and one colour and line style per method
for every figure of a suite. :mod:`bench.report` builds its tables with these.

Outside every cell's key (:data:`bench.fingerprint.EXCLUDED`): it reads rows back only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

#: where a learned row's weights come from -> (Markdown mark, LaTeX mark)
MARKS = {"published": ("†", r"\textsuperscript{\dag}"), "trained": ("‡", r"\textsuperscript{\ddag}"),
         "finetuned": ("§", r"\textsuperscript{\S}"), "untrained": ("°", r"\textsuperscript{$\circ$}")}
#: parameters left out of a display label (the mark says where weights come from)
HIDDEN = {"checkpoint"}
#: parameters written as symbols (text, LaTeX)
SYMBOLS = {"lam": ("λ", r"$\lambda$"), "sigma": ("σ", r"$\sigma$"), "snr_db": ("SNR", "SNR"), "n_iter": ("K", "$K$")}


_TEX_SPECIAL = (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"),
                ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("^", r"\^{}"), ("~", r"\~{}"),
                ("<=", r"$\leq$"), (">=", r"$\geq$"), ("<", r"$<$"), (">", r"$>$"), ("–", "--"),
                ("×", r"$\times$"), ("λ", r"$\lambda$"), ("σ", r"$\sigma$"), ("†", r"\dag{}"),
                ("‡", r"\ddag{}"), ("§", r"\S{}"), ("°", r"$^\circ$"), ("±", r"$\pm$"))


def latex_escape(s: str) -> str:
    """``s`` as LaTeX text: the special characters escaped, a few symbols as commands."""
    s = str(s)
    # \\ first; its replacement's braces must survive the { } escapes, hence the placeholder
    s = s.replace("\\", "\0")
    for a, b in _TEX_SPECIAL[1:]:
        s = s.replace(a, b)
    return s.replace("\0", _TEX_SPECIAL[0][1])


@dataclass(frozen=True)
class Label:
    selector: str     # the stored method label, e.g. fista[lam=0.1]
    md: str           # FISTA (λ=0.1)
    tex: str          # FISTA ($\lambda$=0.1)
    kind: str | None  # a key of MARKS, None for classical and reference rows


def _extras(row) -> dict:
    e = row.get("extras") if hasattr(row, "get") else None
    return e if isinstance(e, dict) else {}


def weights_kind(row) -> str | None:
    """Where a learned row's weights come from, read from its stored weights record and
    checkpoint metadata: published, finetuned (meta ``init``), untrained, or trained (here)."""
    if row.get("family") != "learned":
        return None
    ex = _extras(row)
    w, tr = ex.get("weights") or {}, ex.get("training") or {}
    recipe = str(tr.get("recipe") or "")
    if w.get("source") == "published" or recipe == "published":
        return "published"
    ck = ex.get("checkpoint")
    if w.get("source") == "none" or recipe.startswith(("none", "untrained")) or (
            isinstance(ck, str) and ck.lower().startswith("none")):
        return "untrained"
    # a fine-tuning records its start (checkpoint meta ``init``); rows stored before that
    # field reached the row name it in the recipe ("finetune from published:<name>")
    if tr.get("init") or ex.get("init") or w.get("init") or " from " in recipe or recipe.startswith("finetune"):
        return "finetuned"
    return "trained"


def _method_names(selector: str) -> tuple[str, str, dict]:
    from bench import registry as R
    from bench.selectors import parse_selector
    try:
        name, params = parse_selector(selector)
    except Exception:
        name, params = selector.split("[")[0], {}
    cls = R.METHODS.get(name)
    md = getattr(cls, "display_name", "") or name
    tex = getattr(cls, "display_name_tex", "") or None
    return md, tex, params


def _param_text(params: dict) -> tuple[str, str]:
    md, tex = [], []
    for k, v in params.items():
        if k in HIDDEN:
            continue
        v = f"{v:g}" if isinstance(v, float) else str(v)
        sym_md, sym_tex = SYMBOLS.get(k, (k.replace("_", " "), latex_escape(k.replace("_", " "))))
        md.append(f"{sym_md}={v.replace('_', ' ')}")
        tex.append(f"{sym_tex}={latex_escape(v.replace('_', ' '))}")
    return ", ".join(md), ", ".join(tex)


def display_labels(frame) -> dict[str, Label]:
    """method_label -> :class:`Label` for the rows of ``frame``: the method's display name,
    the mark of its weights' source, and the parameters its label sets (but the checkpoint),
    e.g. ``fista[lam=0.1]`` -> "FISTA (λ=0.1)", ``smds_net[checkpoint=published:x]`` ->
    "SMDS-Net†". Two labels that would read alike also get their weights' name."""
    out: dict[str, Label] = {}
    if frame is None or not len(frame) or "method_label" not in frame.columns:
        return out
    for sel in dict.fromkeys(frame["method_label"]):
        row = frame[frame["method_label"] == sel].iloc[-1]
        kind = weights_kind(row)
        name_md, name_tex, params = _method_names(sel)
        p_md, p_tex = _param_text(params)
        mark_md, mark_tex = MARKS[kind] if kind else ("", "")
        md = name_md + mark_md + (f" ({p_md})" if p_md else "")
        tex = (name_tex or latex_escape(name_md)) + mark_tex + (f" ({p_tex})" if p_tex else "")
        out[sel] = Label(sel, md, tex, kind)
    seen: dict[str, list[str]] = {}
    for sel, lab in out.items():
        seen.setdefault(lab.md, []).append(sel)
    for md, sels in seen.items():
        if len(sels) < 2:
            continue
        for sel in sels:
            row = frame[frame["method_label"] == sel].iloc[-1]
            w = _extras(row).get("weights") or {}
            given = str(_method_names(sel)[2].get("checkpoint") or "")
            # the bare word: each data set's own file (the istd main table's merged row)
            ck = ("each set's own" if given == "published"
                  else str(w.get("name") or given or "default"))
            ck = ck.split(":")[-1].rsplit("/", 1)[-1].replace(".npz", "").replace("_", " ")
            lab = out[sel]
            out[sel] = Label(sel, f"{lab.md} ({ck})", f"{lab.tex} ({latex_escape(ck)})", lab.kind)
    return out


def _short(text, n: int = 80) -> str:
    text = str(text).split(";")[0].strip().rstrip(",")
    return text if len(text) <= n else text[:n - 1].rstrip() + "…"


def legend_line(labels, frame) -> tuple[str, str]:
    """One line explaining the marks used by ``labels`` (Markdown, LaTeX); empty when none.
    † the authors' published weights (trained on ...), ‡ trained here (device, steps,
    minutes), § fine-tuned here from published weights, ° untrained."""
    kinds = {lab.kind for lab in labels if lab.kind}
    if not kinds or frame is None:
        return "", ""
    used = {lab.selector for lab in labels}
    rows = frame[frame["method_label"].isin(used)]
    on, budget, init, devices = {}, {}, {}, set()
    for _, r in rows.iterrows():
        k = weights_kind(r)
        ex = _extras(r)
        w, tr = ex.get("weights") or {}, ex.get("training") or {}
        if k == "published":
            on[_short(w.get("trained_on") or tr.get("dataset") or "the authors' data")] = None
        elif k in ("trained", "finetuned"):
            devices.add(str(tr.get("device") or "cpu").split(":")[0].upper())
            steps, secs = tr.get("steps"), tr.get("seconds")
            if steps is not None:
                budget.setdefault("steps", set()).add(int(steps))
            if secs:
                budget.setdefault("min", set()).add(float(secs) / 60)
            if k == "finetuned":
                src = (tr.get("init") or ex.get("init") or w.get("init") or {})
                src = src.get("checkpoint") if isinstance(src, dict) else src
                init[str(src or str(tr.get("recipe", "")).partition(" from ")[2] or "published weights")] = None
    parts = []
    if "published" in kinds:
        parts.append(f"† the authors' published weights (trained on {'; '.join(on) or 'their data'})")
    if kinds & {"trained", "finetuned"}:
        b = []
        if budget.get("steps"):
            lo, hi = min(budget["steps"]), max(budget["steps"])
            b.append(f"{lo:,}" + (f"-{hi:,}" if hi != lo else "") + " steps")
        if budget.get("min"):
            lo, hi = min(budget["min"]), max(budget["min"])
            b.append(f"{lo:.0f}" + (f"-{hi:.0f}" if round(hi) != round(lo) else "") + " min")
        where = "/".join(sorted(devices)) or "CPU"
        if "trained" in kinds:
            parts.append(f"‡ trained here on {where}" + (f" ({', '.join(b)})" if b else ""))
        if "finetuned" in kinds:
            parts.append(f"§ fine-tuned here on {where} from the authors' published weights ({', '.join(init)})")
    if "untrained" in kinds:
        parts.append("° untrained (the initialisation)")
    md = "; ".join(parts) + "."
    return md, latex_escape(md)


# --------------------------------------------------------------------------- sidecar
#: provenance keys left out of the sidecar (they differ between machines or runs, not results)
VOLATILE = {"hostname", "created_at"}


def _protocols(rows) -> dict:
    from bench import registry as R
    out = {}
    if rows is None or "protocol" not in rows.columns:
        return out
    for suite, proto in set(zip(rows["suite"], rows["protocol"])):
        if isinstance(proto, str) and proto:
            s = R.SUITES.get(suite)
            out[proto] = s.protocol_description(proto) if s is not None else ""
    return out


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def sidecar(table, stem: str, legend: str) -> dict:
    """The provenance of a table (``<stem>.json``): caption, notes, the marks' legend, the
    commits, CPUs, threads and versions of its rows, and per method row its selector,
    display name, weights, training, checkpoint, command and protocols. No timestamps."""
    rows = table.rows
    out = {"stem": stem, "label": table.label, "caption": table.caption, "notes": table.notes,
           "legend": legend, "files": [f"{stem}.tex", f"{stem}.md", f"{stem}.json"]}
    if rows is None or not len(rows):
        return _clean(out)
    prov = [p for p in rows["provenance"] if isinstance(p, dict)] if "provenance" in rows.columns else []
    out["commits"] = sorted({str(p.get("commit")) for p in prov})
    out["cpus"] = sorted({str(p.get("cpu_model")) for p in prov})
    out["threads"] = sorted({str(p.get("threads")) for p in prov})
    out["devices"] = sorted({str(d) for d in rows["device"]}) if "device" in rows.columns else []
    out["versions"] = sorted({tuple(sorted((p.get("versions") or {}).items())) for p in prov})
    out["versions"] = [dict(v) for v in out["versions"]]
    out["protocols"] = _protocols(rows)
    out["datasets"] = sorted({str(d) for d in rows["dataset"]}) if "dataset" in rows.columns else []
    labels = display_labels(rows)
    per = {}
    for sel, lab in labels.items():
        rr = rows[rows["method_label"] == sel]
        entry = {"selector": sel, "display": lab.md, "weights_kind": lab.kind,
                 "family": str(rr["family"].iloc[0]) if "family" in rr.columns else None}
        for key in ("weights", "training", "checkpoint", "how_to_reproduce"):
            vals = []
            for e in rr["extras"]:
                v = (e or {}).get(key) if isinstance(e, dict) else None
                if v is not None and v not in vals:
                    vals.append(v)
            if vals:
                entry[key] = vals if len(vals) > 1 else vals[0]
        minutes = sorted({round(float(((e or {}).get("training") or {}).get("seconds")) / 60, 1)
                          for e in rr["extras"] if isinstance(e, dict)
                          and ((e.get("training") or {}).get("seconds") is not None)})
        if minutes:
            entry["training_minutes"] = minutes
        per[sel] = entry
    out["rows"] = per
    return _clean(out)


# --------------------------------------------------------------------------- figure styles
#: colours (tab10, then tab20's light ones) and line styles given out in a suite's method order
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94")
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*")


def styles(frame, order) -> dict[str, dict]:
    """method_label -> matplotlib keywords (color, linestyle, marker, label) for every
    method of ``order`` (a suite's methods in table order): one colour per method, solid for
    classical and reference rows, dashed for learned ones; the label is the display name.
    The same mapping for every figure of a report, so a legend never names another line."""
    labels = display_labels(frame)
    fam = dict(zip(frame["method_label"], frame["family"])) if len(frame) else {}
    out = {}
    for i, m in enumerate(order):
        out[m] = {"color": COLOURS[i % len(COLOURS)], "linestyle": "--" if fam.get(m) == "learned" else "-",
                  "marker": MARKERS[i % len(MARKERS)], "label": labels[m].md if m in labels else m}
    return out
