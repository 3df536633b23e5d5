"""The istd suite's report (``python -m bench report --suite istd``): the main table, the
robustness, runtime and rules tables, the ablation, cross-dataset and BatchNorm tables where
the store has those rows, the Pd-Fa curves and the visual grid, from stored rows only.

Outside every cell's key (:data:`bench.fingerprint.EXCLUDED`): it reads rows back and shapes
no stored number, so a caption or layout fix here does not invalidate stored cells.
"""
from __future__ import annotations

import json
import math
import os
import re

from bench.metrics.istd import DEFAULT_PROTOCOL, PROTOCOLS, describe_rule
from bench.suites.istd_captions import BRIEF, CAPTIONS
from bench.suites.istd_tables import ABLATION_METRICS, FA_METRIC, TEX, _fa_units, _published_name, protocol_text
from bench.suites.istd_constants import OWN_WEIGHTS, RULE_TABLE, SHIPPED_TRAINED_ON
from bench.suites.istd_figures import pd_fa_figure, visual_figure

LEARNED_NOTE = ("Learned rows: the marks after the names say where the weights come from (legend under the table). Rows rpcanet and l_rpcanet without a "
                "named checkpoint: the shipped checkpoints of the CPU-budget recipe `cpu` (64x64 crops of "
                "the SIRST train split, model selected on val), far short of the published GPU-trained figures "
                "(RPCANet on SIRST: IoU 70.37); maps sigmoid(T), rule prob (> 0.5; under protocol rpcanet, max_norm: > 0.5 "
                "x each map's maximum); l_rpcanet is the public code's "
                "configuration, 475,188 parameters (the slides' 0.216M is the authors' SIRST-Aug configuration, "
                "bottleneck 4). Rows labelled checkpoint=published:<name>: the authors' released weights, loaded "
                "unchanged (`python -m bench weights`); checkpoint=published: on each data set the authors' "
                "weights trained on that set (as the papers' main tables); checkpoint=shipped:l_rpcanet_sirst_from_nudt_sirst: L-RPCANet "
                "fine-tuned here on the SIRST train split from the authors' NUDT-SIRST weights (recipe finetune). ")


def write_report(frame, outdir: str, options) -> list[str]:
    """The tables (main, robustness per dataset, runtime, rules; the ablation and `bn`
    diagnostic tables when the store has those rows) and figures (Pd-Fa curves, the
    visual grid) declared in ``REPORT``, from the newest row of each cell."""
    from bench.report import newest

    paths: list[str] = []
    frame = own_set_published(protocol_sets(newest(frame)))
    is_ablation = frame["method_label"].str.contains("_ablation_", regex=False)
    if is_ablation.any():
        from bench.suites.istd_ablation import ablation_tables
        paths += ablation_tables(frame[is_ablation], outdir, frame[~is_ablation])
        frame = frame[~is_ablation]
    is_bn = _bn_image(frame)
    if is_bn.any():
        paths += _bn_tables(frame, outdir)
        frame = frame[~is_bn]
    is_cross = _cross_dataset(frame)
    if is_cross.any():
        paths += _cross_dataset_tables(frame[is_cross], outdir)
        frame = frame[~is_cross]
    if frame.empty:
        return paths
    view = _View(frame)
    # a subset of a set that is also here in full (the robustness grid's nudt_sirst[limit=166]
    # beside the main table's nudt_sirst) feeds only the robustness tables
    covered = _covered_subset(frame)
    main_view = _View(frame[~covered]) if covered.any() else view
    for part in REPORT:
        paths += part(view if part is _robustness_tables else main_view, outdir)
    return paths


def _without_limit(label: str) -> str:
    """A data set label without its ``limit=N`` ("nudt_sirst[limit=166]" -> "nudt_sirst",
    "istd_folder[limit=2,path=x], rpcanet protocol" -> "istd_folder[path=x], rpcanet protocol")."""
    def strip(m):
        kept = [kv for kv in m.group(1).split(",") if not kv.strip().startswith("limit=")]
        return f"[{','.join(kept)}]" if kept else ""
    return re.sub(r"\[([^\]]*)\]", strip, str(label), count=1)


def _covered_subset(frame):
    """The rows whose data set is the first ``limit`` images ("nudt_sirst[limit=166]") of a
    set also in ``frame`` whole ("nudt_sirst"), under the same protocol."""
    labels = set(frame["dataset"])
    return frame["dataset"].map(lambda d: _without_limit(d) != d and _without_limit(d) in labels).astype(bool)


# --------------------------------------------------------------------------- report parts
def protocol_sets(frame):
    """The rows with their protocol (a row of a frame without the column: the default), and
    the dataset label of a row of another protocol marked ``<dataset>, <protocol> protocol``:
    every table and figure groups by dataset, so rows of two protocols never share a column,
    a table or a panel (the main table shows each protocol's columns side by side)."""
    proto = (frame["protocol"].map(lambda p: p if isinstance(p, str) and p else DEFAULT_PROTOCOL)
             if "protocol" in frame.columns else [DEFAULT_PROTOCOL] * len(frame))
    proto = list(proto)
    return frame.assign(protocol=proto, dataset=[d if p == DEFAULT_PROTOCOL else f"{d}, {p} protocol"
                                                 for d, p in zip(frame["dataset"], proto)])


class _View:
    """What every part of the report reads: the rows (with their segmentation rule), the
    methods and datasets in table order, the clean rows and one accuracy row per (dataset,
    method) on clean images (the CPU row where there is one)."""

    def __init__(self, frame):
        from bench.report import method_order, prefer_cpu, provenance_line
        from bench.report_style import styles

        self.frame = frame.assign(rule=frame["extras"].map(lambda e: (e or {}).get("segmentation", "?")))
        self.methods = method_order(self.frame)
        self.style = styles(self.frame, self.methods)  # one colour and line style per method in every figure
        # the default protocol's sets first, then each other protocol's, in PROTOCOLS order
        order = list(PROTOCOLS)
        sets = dict.fromkeys(zip(self.frame["dataset"], self.frame["protocol"]))
        self.datasets = [d for d, _ in sorted(sets, key=lambda dp: order.index(dp[1]) if dp[1] in order else 99)]
        self.rules = ", ".join(sorted({describe_rule(r) for r in self.frame["rule"]}))
        self.prov = provenance_line(self.frame)
        clean = self.frame[self.frame["degradation"] == "clean"]
        self.clean = self.frame if clean.empty else clean
        self.acc = prefer_cpu(self.clean, ["dataset", "method_label"])

    def n_images(self, ds) -> int:
        r = self.frame[self.frame["dataset"] == ds]
        return int(r["n_samples"].iloc[0]) if len(r) else 0


MAIN_METRICS = {"mIoU": "iou", "F1": "f1", "Pd": "pd", "Fa": "fa"}
ROBUSTNESS_METRICS = {"mIoU": "iou", "Pd": "pd", "Fa": "fa"}
RULE_METRICS = {"IoU": "iou", "Pd": "pd", "Fa": "fa"}
TIMES = {"params": "{:,.0f}", "CPU ms/img": "{:.1f}", "GPU ms/img": "{:.1f}"}


def _main_table(v: _View, outdir: str) -> list[str]:
    """Per dataset mIoU, F1, Pd, Fa (clean); learned parameters; CPU / GPU ms per image."""
    from bench.report import caption, metric_cells, metric_table, parameter_counts, pivot, write_table

    cols = [(ds, m) for ds in v.datasets for m in MAIN_METRICS] + [("", c) for c in TIMES]
    values = pivot(v.acc, "method_label", lambda r: metric_cells(r, MAIN_METRICS, r["dataset"]), v.methods, cols)
    params, ms = parameter_counts(v.frame), _ms_per_image(v.clean)
    for m in v.methods:
        if m in params:
            values.at[m, ("", "params")] = params[m]
        for dev, col in (("cpu", "CPU ms/img"), ("cuda", "GPU ms/img")):
            if (m, dev) in ms:
                values.at[m, ("", col)] = ms[(m, dev)]
    cap = caption(CAPTIONS["main"], v.frame, protocol=protocol_text(v.frame), rules=v.rules,
                  learned=_learned_note(v.frame),
                  datasets="; ".join(f"{ds}: {v.n_images(ds)} test images" for ds in v.datasets))
    table = metric_table(_fa_units(values), "istd", BRIEF["main"].format(protocols=_protocol_names(v.frame)),
                         "tab:istd_main", metrics=MAIN_METRICS, fmt=TIMES, notes=cap, rows=v.frame, tex=TEX,
                         directions={"params": None, "CPU ms/img": "min", "GPU ms/img": "min"})
    return write_table(table, outdir, "istd_main")


def _set_name(dataset) -> str:
    """The data set's registered name in a row's dataset label ("sirst[limit=20]", "sirst,
    rpcanet protocol" -> "sirst")."""
    return re.split(r"[\[,]", str(dataset), maxsplit=1)[0]


def _own_set(row) -> str | None:
    """The published weights trained on the row's data set (``OWN_WEIGHTS``; None: none)."""
    return OWN_WEIGHTS.get(_set_name(row["dataset"]))


def own_set_published(frame):
    """The papers' main-table reading of published weights: on each data set, the authors'
    file trained on that set. The rows of such weights tested on their own set share one
    label, ``<method>[checkpoint=published]``, so that a table has one "RPCANet†" row whose
    SIRST columns come from ``published:sirst`` and NUDT-SIRST columns from
    ``published:nudt_sirst`` (the sidecar lists both files). Published weights tested on
    another set keep their label: the cross-dataset table's rows."""
    if frame.empty:
        return frame
    def label(r):
        name = _published_name(r)
        if name is None or name != _own_set(r):
            return r["method_label"]
        return re.sub(r"checkpoint=published:[\w.-]+", "checkpoint=published", str(r["method_label"]))
    return frame.assign(method_label=frame.apply(label, axis=1))


def _trained_on(row) -> str | None:
    """The registered data set a learned row's weights were trained on: the published
    file's (:data:`OWN_WEIGHTS`), the checkpoint's own record (``extras.training.dataset``),
    else the shipped checkpoints' (:data:`SHIPPED_TRAINED_ON`); None for a classical row."""
    name = _published_name(row)
    if name is not None:
        return next((ds for ds, w in OWN_WEIGHTS.items() if w == name), name)
    extras = row["extras"] or {}
    if row.get("family") != "learned" and not extras.get("weights"):
        return None
    recorded = (extras.get("training") or {}).get("dataset")
    return _set_name(recorded) if recorded else SHIPPED_TRAINED_ON


def _cross_dataset(frame):
    """The learned rows tested (clean) on one of the papers' data sets (:data:`OWN_WEIGHTS`)
    other than the one their weights were trained on: the authors' published files and the
    networks trained here alike (a synthetic or user folder is nobody's training set)."""
    def other(r):
        trained, tested = _trained_on(r), _set_name(r["dataset"])
        return (trained is not None and tested in OWN_WEIGHTS and trained != tested
                and r["degradation"] == "clean")
    return frame.apply(other, axis=1) if len(frame) else frame["dataset"].astype(bool)


def _test_set(label) -> str:
    """A row's data set label without the protocol mark ("sirst, rpcanet protocol" -> "sirst")."""
    return re.sub(r", \w+ protocol$", "", str(label))


def _cross_dataset_tables(frame, outdir: str) -> list[str]:
    """One cross-dataset table per test set (``istd_cross_dataset_<set>``)."""
    from bench.report import slug
    tested = frame["dataset"].map(_test_set)
    return [p for ds in dict.fromkeys(tested)
            for p in _cross_dataset_table(frame[tested == ds], outdir, "istd_cross_dataset_" + slug(ds))]


def _trained_on_text(row) -> str:
    """The "trained on" cell: the published file's training data, or the training set and
    recipe of a network trained here."""
    extras = row["extras"] or {}
    w = extras.get("weights") or {}
    if w.get("trained_on"):
        return str(w["trained_on"])
    from bench.report import header_text
    recipe = (extras.get("training") or {}).get("recipe")
    return f"{header_text(_trained_on(row))}, here" + (f" ({recipe})" if recipe else "")


def _cross_dataset_table(frame, outdir: str, name: str) -> list[str]:
    """The rows trained on other data on one test set (clean): one row per weight set,
    mIoU/F1/Pd/Fa per protocol (the set under each protocol per column group)."""
    from bench.report import caption, metric_cells, metric_table, parameter_counts, pivot, prefer_cpu, write_table

    acc = prefer_cpu(frame, ["dataset", "method_label"])
    order = _learned_order(acc)
    sets = list(dict.fromkeys(acc.sort_values("protocol", key=lambda s: s.map(
        lambda p: list(PROTOCOLS).index(p) if p in PROTOCOLS else 99))["dataset"]))
    cols = [("", "trained on")] + [(ds, m) for ds in sets for m in MAIN_METRICS] + [("", "params")]
    values = pivot(acc, "method_label", lambda r: metric_cells(r, MAIN_METRICS, r["dataset"]), order, cols)
    params = parameter_counts(frame)
    values[("", "trained on")] = values[("", "trained on")].astype(object)
    figures = []
    for m in order:
        row = acc[acc["method_label"] == m].iloc[0]
        w = (row["extras"] or {}).get("weights") or {}
        values.at[m, ("", "trained on")] = _trained_on_text(row)
        values.at[m, ("", "params")] = params.get(m, math.nan)
        fig = w.get("published_figure") or {}
        if fig:
            figures.append(f"{m}: " + ", ".join(f"{k} {v:g}" for k, v in fig.items()))
    from bench.report import header_text
    n = "; ".join(f"{header_text(ds)}: {int(acc[acc['dataset'] == ds]['n_samples'].iloc[0])} images"
                  for ds in dict.fromkeys(acc["dataset"]))
    cap = caption(CAPTIONS["cross"], frame, n=n, protocol=protocol_text(frame),
                  figures="; ".join(figures) or "none recorded")
    table = metric_table(_fa_units(values), "istd", BRIEF["cross"].format(n=n, protocols=_protocol_names(frame)),
                         "tab:" + name, metrics={**MAIN_METRICS, **FA_METRIC}, notes=cap, rows=frame, tex=TEX,
                         fmt={"trained on": "{}", "params": "{:,.0f}"}, directions={"trained on": None, "params": None})
    return write_table(table, outdir, name)


def _learned_order(frame) -> list[str]:
    """The rows of a cross-dataset table: the networks trained here first, then the published
    files, each in label order."""
    labels = sorted(frame["method_label"].unique())
    published = {m for m in labels if "published" in m}
    return [m for m in labels if m not in published] + [m for m in labels if m in published]


def _robustness_tables(v: _View, outdir: str) -> list[str]:
    """Per dataset with a degraded case: mIoU, Pd, Fa against the degradation, per method."""
    from bench.report import header_text, caption, metric_cells, metric_table, pivot, prefer_cpu, slug, write_table

    paths = []
    for ds in v.datasets:
        if set(v.frame[v.frame["dataset"] == ds]["degradation"]) <= {"clean"}:
            continue  # no degradation: the main table has these rows
        df = prefer_cpu(v.frame[v.frame["dataset"] == ds], ["degradation", "method_label"])
        df = df.assign(degradation=[_full_degradation(d, p) for d, p in zip(df["degradation"], df["degradation_params"])])
        cols = [(d, m) for d in _degradation_order(df["degradation"].unique()) for m in ROBUSTNESS_METRICS]
        values = pivot(df, "method_label", lambda r: metric_cells(r, ROBUSTNESS_METRICS, r["degradation"]),
                       [m for m in v.methods if m in set(df["method_label"])], cols)
        cap = caption(CAPTIONS["robustness"], v.frame, ds=ds, n=v.n_images(ds), protocol=protocol_text(df),
                      rules=v.rules)
        short = BRIEF["robustness"].format(ds=header_text(ds), n=v.n_images(ds), protocols=_protocol_names(df))
        paths += write_table(metric_table(_fa_units(values), "istd", short, "tab:istd_robustness_" + slug(ds),
                                          metrics={**ROBUSTNESS_METRICS, **FA_METRIC}, notes=cap, rows=df, tex=TEX),
                             outdir, "istd_robustness_" + slug(ds))
    return paths


def _runtime_entry(rows, method: str) -> dict:
    """Seconds per image on CPU and GPU, and the authors' IPI code beside ours."""
    entry = {}
    for dev, col in (("cpu", "CPU s/img"), ("cuda", "GPU s/img")):
        rr = rows[rows["device"] == dev]
        entry[col] = float(rr["time_s"].iloc[0] / rr["n_samples"].iloc[0]) if len(rr) else math.nan
    authors = rows["extras"].map(lambda e: (e or {}).get("authors_ipi_s_per_image")).dropna()
    entry["authors' code s/img"] = (float(authors.iloc[0]) if len(authors) and method.split("[")[0] == "ipi"
                                    else math.nan)
    cpu = entry["CPU s/img"]
    entry["authors/ours (CPU)"] = entry["authors' code s/img"] / cpu if cpu == cpu and cpu > 0 else math.nan
    # learned networks: the convolutions' FLOPs of one pass over the set (row extras) over the
    # CPU time of that pass; the roof ratio is measured by tests/benchmarks/test_perf_istd.py
    rr = rows[rows["device"] == "cpu"]
    flops = rr["extras"].map(lambda e: (e or {}).get("conv_flops_per_run")).dropna()
    entry["CPU GFLOP/s"] = (float(flops.iloc[0]) / float(rr["time_s"].iloc[0]) / 1e9
                            if len(flops) and float(rr["time_s"].iloc[0]) > 0 else math.nan)
    roof = rr["extras"].map(lambda e: ((e or {}).get("roof") or {}).get("ratio")).dropna()
    entry["roof ratio"] = float(roof.iloc[0]) if len(roof) else math.nan
    return entry


def _runtime_table(v: _View, outdir: str) -> list[str]:
    import pandas as pd

    from bench.report import caption, metric_table, write_table

    entries, index = [], []
    for ds in v.datasets:
        dfc = v.clean[v.clean["dataset"] == ds]
        for m in v.methods:
            rows = dfc[dfc["method_label"] == m]
            if not rows.empty:
                entries.append(_runtime_entry(rows, m))
                index.append(f"{m} ({ds})")
    if not entries:
        return []
    table = metric_table(pd.DataFrame(entries, index=index), "istd", BRIEF["runtime"], "tab:istd_runtime",
                         notes=caption(CAPTIONS["runtime"], v.frame, protocol=protocol_text(v.clean)), rows=v.clean, directions={"CPU s/img": "min", "GPU s/img": "min"},
                         fmt={"CPU s/img": "{:.3f}", "GPU s/img": "{:.3f}", "authors' code s/img": "{:.2f}",
                              "authors/ours (CPU)": "{:.1f}x", "CPU GFLOP/s": "{:.1f}",
                              "roof ratio": "{:.2f}"},
                         index_name="method (dataset)")
    return write_table(table, outdir, "istd_runtime")


def _rules_table(v: _View, outdir: str) -> list[str]:
    """The same maps (clean) scored under every named segmentation rule; no bold."""
    from bench.report import caption, metric_table, pivot, write_table

    acc = v.acc[v.acc["extras"].map(lambda e: bool((e or {}).get("by_rule")))]
    if acc.empty:
        return []

    def label(r):
        return f"{r['method_label']} ({r['dataset']})"

    def order(s):
        m = s.split(" (")[0]
        return (s.split(" (")[1], v.methods.index(m) if m in v.methods else 99)

    def cells(r):
        for rl, sc in r["extras"]["by_rule"].items():
            yield from (((rl, lab), sc.get(mk, math.nan)) for lab, mk in RULE_METRICS.items())

    index = sorted({label(r) for _, r in acc.iterrows()}, key=order)
    values = pivot(acc, label, cells, index, [(rl, m) for rl in RULE_TABLE for m in RULE_METRICS])
    cap = caption(CAPTIONS["rules"], v.frame, rules="; ".join(describe_rule(r) for r in RULE_TABLE),
                  protocol=protocol_text(acc))
    return write_table(metric_table(_fa_units(values), "istd", BRIEF["rules"], "tab:istd_rules", bold=False, metrics=FA_METRIC,
                                    index_name="method (dataset)", notes=cap, rows=acc, tex=TEX),
                       outdir, "istd_rules")


#: the report's tables and figures, in the order written
REPORT = (_main_table, _robustness_tables, _runtime_table, _rules_table, pd_fa_figure, visual_figure)


def _bn_tables(frame, outdir: str) -> list[str]:
    """The `bn` diagnostic: each learned network with its stored BatchNorm statistics
    (the published protocol) and with each test image's own (`bn=image`), clean images."""
    import pandas as pd

    from bench.report import header_text, caption, metric_cells, metric_table, slug, write_table

    paths: list[str] = []
    frame = frame[(frame["degradation"] == "clean") & (frame["family"] == "learned") & (frame["device"] == "cpu")]
    for ds in dict.fromkeys(frame["dataset"]):
        df = frame[frame["dataset"] == ds].sort_values("method_label")
        image_bn = _bn_image(df)
        if not image_bn.any():
            continue
        # one row per label (unique here: `newest` kept one per label and device)
        rows = [{"BN statistics": "this image" if image else "running (stored)",
                 "checkpoint": os.path.basename(str((r["extras"] or {}).get("checkpoint", "?"))),
                 **dict(metric_cells(r, ABLATION_METRICS))} for image, (_, r) in zip(image_bn, df.iterrows())]
        cap = caption(CAPTIONS["bn"], df, ds=ds, n=int(df["n_samples"].iloc[0]), protocol=protocol_text(df))
        short = BRIEF["bn"].format(ds=header_text(ds), n=int(df["n_samples"].iloc[0]))
        paths += write_table(metric_table(_fa_units(pd.DataFrame(rows, index=list(df["method_label"]))), "istd", short,
                                          "tab:istd_bn_" + slug(ds), fmt={"BN statistics": "{}", "checkpoint": "{}"},
                                          metrics=FA_METRIC, notes=cap, rows=df, tex=TEX),
                             outdir, "istd_bn_" + slug(ds))
    return paths


def _bn_image(frame):
    """Rows run with prediction-time BatchNorm (`bn=image`), read from the method parameters."""
    return frame["method_params"].map(lambda p: (p or {}).get("bn") == "image")


def _learned_note(frame) -> str:
    """What the learned rows are: checkpoint, training budget, timing rule (or nothing)."""
    learned = frame[frame["family"] == "learned"]
    if learned.empty:
        return ""
    budgets, published = {}, {}
    for _, r in learned.iterrows():
        tr = (r["extras"] or {}).get("training") or {}
        w = (r["extras"] or {}).get("weights") or {}
        if w.get("source") == "published":
            published[(r["method_label"], w.get("name"))] = (
                f"{r['method_label']}" + (f" on {_set_name(r['dataset'])}" if r["method_label"].endswith("=published]")
                                          else "")
                + f": github.com/{w.get('repo')} @ {w.get('commit')}, trained on {w.get('trained_on')}")
        if tr.get("steps") is not None:
            budgets[r["method_label"]] = (f"{r['method_label']} {tr.get('steps')} steps / {float(tr.get('seconds') or 0):.0f} s"
                                          f" on {tr.get('threads')} thread(s)")
    return (LEARNED_NOTE + "Training (steps, seconds, threads): " + "; ".join(budgets.values())
            + (". Published weights: " + "; ".join(published.values()) if published else "")
            + ". Learned rows are timed once after a warm-up on one image. ")


def _ms_per_image(frame) -> dict:
    """(method_label, device) -> ms per image: on the full SIRST test split (``sirst``) where
    measured, else another SIRST selection (``sirst[limit=20]``), else the first dataset."""
    def preference(d):
        return 0 if d == "sirst" else 1 if d.startswith("sirst") else 2

    out = {}
    frame = frame.sort_values("dataset", key=lambda s: s.map(preference), kind="stable")
    for _, r in frame.iterrows():
        k = (r["method_label"], r["device"])
        if k not in out and r.get("time_s") == r.get("time_s") and r.get("n_samples"):
            out[k] = 1000.0 * float(r["time_s"]) / float(r["n_samples"])
    return out


def _full_degradation(label, params) -> str:
    """A degradation's label with every parameter, defaults included ("gaussian_noise" with
    sigma 10 -> "gaussian_noise[sigma=10]"), so that no column of a robustness table hides
    its noise level."""
    params = json.loads(params) if isinstance(params, str) else (params or {})
    name = str(label).split("[")[0]
    return f"{name}[{','.join(f'{k}={v:g}' if isinstance(v, float) else f'{k}={v}' for k, v in params.items())}]" \
        if params else name


def _degradation_order(labels):
    def key(lbl):
        base = lbl.split("[")[0]
        order = {"clean": 0, "gaussian_noise": 1, "salt_pepper": 2}.get(base, 9)
        return (order, lbl)
    return sorted(labels, key=key)


def _protocol_names(frame) -> str:
    """The protocols of the rows, named for a caption ("BasicIRSTD", "RPCANet authors'")."""
    names = {"basicirstd": "BasicIRSTD", "rpcanet": "the RPCANet authors'"}
    present = [p for p in PROTOCOLS if "protocol" in frame.columns and (frame["protocol"] == p).any()] or [DEFAULT_PROTOCOL]
    return " / ".join(names.get(p, p) for p in present)
