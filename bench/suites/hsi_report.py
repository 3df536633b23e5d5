"""The hsi suite's report (``python -m bench report --suite hsi``): one table per metric set
and dataset, the runtime and parameter tables, PSNR against sigma, accuracy against time and
the false-colour grid, from stored rows only (nothing is rerun).

Outside every cell's key (:data:`bench.fingerprint.EXCLUDED`): it reads rows back and shapes
no stored number, so a caption or layout fix here does not invalidate hours of stored cells.
"""
from __future__ import annotations

import math
import textwrap

import numpy as np

from bench import registry as R
from bench.metrics.hsi import METRIC_SET_CAPTIONS, METRIC_SETS
from bench.suites.hsi_constants import SIGMAS
from bench.suites.hsi_realworld import split_real, write_real_report  # real cubes: their own module
from bench.suites.hsi_report_common import classical_first_as_listed, decode_preview, training_note


def write_report(frame, outdir: str, options) -> list[str]:
    """One table per metric set (``options["metric_sets"]``, default standard and starnet)
    and dataset, then the parts declared in ``REPORT`` (runtime and parameter tables,
    figures), from the newest row of each cell."""
    from bench.errors import UnknownNameError
    from bench.report import newest

    options = options or {}
    sets = options.get("metric_sets") or ("standard", "starnet")
    if isinstance(sets, str):
        sets = tuple(s.strip() for s in sets.split(","))
    for s in sets:
        if s not in METRIC_SETS:
            raise UnknownNameError(f"unknown metric set {s!r}", valid=sorted(METRIC_SETS), what="metric set")
    frame, real = split_real(frame)
    real_paths = write_real_report(real, outdir, options)
    if frame.empty:
        return real_paths
    view = _View(newest(frame), options)
    paths: list[str] = []
    per_cube = str(options.get("per_cube", "1")).lower() not in ("0", "false", "no")
    for mset in sets:
        for ds in view.datasets:
            paths += _result_table(view, ds, mset, outdir)
            if per_cube:
                for i, name in enumerate(_cube_names(view, ds)):
                    paths += _result_table(view, ds, mset, outdir, cube=(i, name))
    for part in REPORT:
        paths += part(view, outdir)
    return paths + real_paths


# --------------------------------------------------------------------------- report parts
class _View:
    """The rows as the report parts read them: each with its noise case and seconds per
    cube; methods and datasets in table order; one accuracy row per (dataset, case,
    method), the CPU row where there is one (accuracy does not depend on the device)."""

    def __init__(self, frame, options: dict):
        from bench.report import method_order, prefer_cpu, provenance_line
        from bench.report_style import styles

        self.frame = frame.assign(case=frame.apply(_case_label, axis=1),
                                  per_cube_s=frame["time_s"] / frame["n_samples"].clip(lower=1))
        self.options = options
        self.methods = classical_first_as_listed(method_order(self.frame))
        self.datasets = list(dict.fromkeys(self.frame["dataset"]))
        self.acc = prefer_cpu(self.frame, ["dataset", "case", "method_label"])
        self.prov = provenance_line(self.frame)
        self.style = styles(self.frame, self.methods)  # one colour and line style per method in every figure
        self.colour = {m: st["color"] for m, st in self.style.items()}


#: the tables' captions (task, data, protocol, what bold marks); the long CAPTIONS go to the sidecar's notes
SHORT = {
    "table": ("Hyperspectral denoising on {ds} ({n} cube(s)): indices per noise case (sigma on the [0, 255] scale; "
              "avg: mean over the Gaussian sigmas). Best per column in bold."),
    "runtime": "Seconds per cube of each method, per data set and device, median over the noise cases.",
    "parameters": "Learned parameters per method (classical methods have none).",
}
CAPTIONS = {
    "table": ("{ds}: HSI denoising, {n} cube(s) ({names}), rows are noise case x metric, 'avg' the mean over the "
              "Gaussian sigmas present; Noisy = the noisy input; best per row in bold. Sigma on the [0,255] scale "
              "for [0,1] cubes; blind: sigma ~ U(10,70) per cube; mixed: non-iid Gaussian + impulse + stripes "
              "(QRNN3D). Methods get the true sigma in the Gaussian cases and a MAD wavelet estimate otherwise. "
              "{metric_set}. Learned rows' weights: {training}. {prov}."),
    "runtime": ("Seconds per cube (time of the method only, whole cell divided by its cubes), median over the noise "
                "cases; BM4D, LRTDTV, NGMeet and the learned networks: one timed run without warm-up (minutes-long), others: median of timed "
                "repeats after a warm-up; - where not measured (BM4D has no GPU path). Threads per worker: "
                "{threads}; torch methods run CPU cubes under 2^20 voxels on one thread and BM4D uses one thread "
                "(deterministic output). {prov}."),
    "parameters": "Learned parameters per method (- for classical methods, which have none). {prov}.",
}


def _cube_names(v: _View, ds: str) -> list[str]:
    """The cubes of a dataset of several cubes whose rows all stored per-cube values (the
    per-cube tables: the slides' table per test scene for ``hsi_split``), else []."""
    d = v.acc[v.acc["dataset"] == ds]
    names = [tuple((e.get("names") or ())) if isinstance(e, dict) and e.get("per_cube") else None
             for e in d["extras"]]
    first = names[0] if names else None
    return list(first) if first and len(first) > 1 and all(n == first for n in names) else []


def _result_table(v: _View, ds: str, mset: str, outdir: str, cube: tuple[int, str] | None = None) -> list[str]:
    """The STAR-Net paper's shape: methods as rows, noise-case blocks (sigma, 'avg' over the
    Gaussian sigmas, blind, mixed) with the set's indices under them; each column's best in
    bold by its metric's direction, in its metric's format. ``cube`` (index, name): that
    cube's values only (the rows' per-cube extras)."""
    from bench.report import caption, header_text, metric_table, pivot, slug, write_table

    d, names = v.acc[v.acc["dataset"] == ds], METRIC_SETS[mset]
    cases = _case_order(list(dict.fromkeys(d["case"])))
    gauss = [c for c in cases if c.startswith("sigma=")]
    blocks = gauss + (["avg"] if len(gauss) >= 2 else []) + [c for c in cases if not c.startswith("sigma=")]
    methods = [m for m in v.methods if m in set(d["method_label"])]

    def cells(r):
        if cube is None:
            got = r["metrics"] or {}
        else:
            got = {n: vals[cube[0]] for n, vals in (r["extras"].get("per_cube") or {}).items()}
        yield from (((_block(r["case"]), _short(n)), got[n]) for n in names if got.get(n) is not None)

    values = pivot(d, "method_label", cells, methods, [(_block(b), _short(n)) for b in blocks for n in names])
    if "avg" in blocks:
        for n in names:
            values[("avg", _short(n))] = values[[(_block(g), _short(n)) for g in gauss]].mean(axis=1, skipna=False)
    if values.empty:
        return []
    first = d["extras"].iloc[0]
    cubes = [cube[1]] if cube else (first.get("names") if isinstance(first, dict) else None) or []
    cap = caption(CAPTIONS["table"], v.frame, ds=ds if cube is None else f"{ds}, cube {cube[1]} alone",
                  n=1 if cube else int(d["n_samples"].iloc[0]), names=", ".join(cubes),
                  metric_set=METRIC_SET_CAPTIONS[mset], training=training_note(d))
    short = SHORT["table"].format(ds=header_text(ds) + (f", cube {cube[1]}" if cube else ""),
                                  n=1 if cube else int(d["n_samples"].iloc[0]))
    stem = slug(ds) + (f"_{slug(cube[1])}" if cube else "")
    table = metric_table(values, "hsi", short, f"tab:hsi_{stem}_{mset}", notes=cap, rows=d)
    return write_table(table, outdir, f"hsi_table_{stem}_{mset}")


def _block(case: str) -> str:
    """A noise case as the tables' block header: "sigma=30" -> "σ=30"."""
    return "σ=" + case.split("=", 1)[1] if case.startswith("sigma=") else case


def _runtime_tables(v: _View, outdir: str) -> list[str]:
    """Seconds per cube per dataset, method and device; learned parameters per method."""
    import pandas as pd

    from bench.report import Table, caption, device_times, parameter_counts, write_table

    real = [m for m in v.methods if m != "noisy"]
    if not real:  # only the noisy input's rows: no method to time or count
        return []
    times = device_times(v.frame, ["dataset", "method_label"], value="per_cube_s")
    rt = pd.DataFrame(math.nan, index=v.datasets, columns=pd.MultiIndex.from_tuples(
        [(m, dev) for m in real for dev in ("CPU", "GPU")]))
    for (ds, m, dev), t in times.items():
        if m in real:
            rt.at[ds, (m, "GPU" if dev == "cuda" else "CPU")] = t
    paths = write_table(Table(rt, {}, SHORT["runtime"], "tab:hsi_runtime", fmt="{:.2f}", index_name="dataset",
                              notes=caption(CAPTIONS["runtime"], v.frame), rows=v.frame), outdir, "hsi_runtime")
    params = parameter_counts(v.frame)
    pc = pd.DataFrame(index=real, columns=["family", "parameters"], dtype=object)
    for m in real:
        pc.at[m, "family"] = v.frame.loc[v.frame["method_label"] == m, "family"].iloc[0]
        pc.at[m, "parameters"] = params.get(m, math.nan)
    paths += write_table(Table(pc, {}, SHORT["parameters"], "tab:hsi_parameters",
                               fmt={"family": str, "parameters": lambda x: f"{x:,.0f}"}, index_name="method",
                               notes=caption(CAPTIONS["parameters"], v.frame), rows=v.frame),
                         outdir, "hsi_parameters")
    return paths


def _psnr_figure(v: _View, outdir: str) -> list[str]:
    """PSNR (metric set 'standard') against sigma, one panel per dataset."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.report import header_text, legend_from_all_axes, save_figure

    gauss = v.acc[v.acc["case"].str.startswith("sigma=")]
    if gauss.empty:
        return []
    dsets = [d for d in v.datasets if d in set(gauss["dataset"])]
    ncol = min(4, len(dsets))
    nrow = math.ceil(len(dsets) / ncol)
    # the legend goes beside the panels (constrained layout takes its width from the
    # figure): 3.2 inches more, so that a single panel is not squeezed behind it
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.8 * ncol + 3.2, 3.4 * nrow), squeeze=False,
                             constrained_layout=True)
    for ax, ds in zip(axes.flat, dsets):
        for m in v.methods:
            r = gauss[(gauss["dataset"] == ds) & (gauss["method_label"] == m)]
            if r.empty:
                continue
            sig = r["case"].map(lambda c: float(c.split("=")[1]))
            order = np.argsort(sig.values)
            ax.plot(sig.values[order], r["metrics"].map(lambda x: x["psnr"]).values[order],
                    **{**v.style[m], "linestyle": ":" if m == "noisy" else v.style[m]["linestyle"]})
        ax.set_title(header_text(ds), fontsize=9)
        ax.set_xticks(SIGMAS)
        ax.set_xlim(0, 80)
        ax.set_xlabel("sigma ([0,255] scale)")
        ax.grid(True, alpha=0.3)
    for ax in axes.flat[len(dsets):]:
        ax.axis("off")
    axes[0][0].set_ylabel("PSNR (dB)")
    legend_from_all_axes(fig, axes.flat, fontsize=7)
    fig.suptitle("PSNR (metric set 'standard') against the noise level")
    return save_figure(fig, outdir, "hsi_psnr_vs_sigma")


def _accuracy_time_figure(v: _View, outdir: str) -> list[str]:
    """Mean PSNR over the Gaussian sigmas against seconds per cube, one point per dataset."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.report import header_text, save_figure

    if not v.acc["case"].str.startswith("sigma=").any():
        return []
    fig, ax = plt.subplots(figsize=(6, 4.2), layout="constrained")
    gaussian_sets = set(v.frame.loc[v.frame["case"].str.startswith("sigma="), "dataset"])
    for m in [m for m in v.methods if m != "noisy"]:
        for dev, marker in (("cpu", "o"), ("cuda", "s")):
            sub = v.frame[(v.frame["method_label"] == m) & (v.frame["device"] == dev)
                          & v.frame["case"].str.startswith("sigma=")]
            if sub.empty:
                continue
            pts = sub.groupby("dataset").agg(t=("per_cube_s", "median"),
                                             p=("metrics", lambda s: float(np.mean([x["psnr"] for x in s]))))
            ax.scatter(pts["t"], pts["p"], marker=marker, color=v.colour[m],
                       label=f"{v.style[m]['label']} ({'GPU' if dev == 'cuda' else 'CPU'})")
            for ds_name, pt in (pts.iterrows() if len(gaussian_sets) > 1 else ()):  # one set: the title names it
                ax.annotate(ds_name.split("[")[0], (pt["t"], pt["p"]), fontsize=5, alpha=0.7,
                            xytext=(3, 2), textcoords="offset points")
    if not ax.collections:  # only the Noisy row: no method to place
        plt.close(fig)
        return []
    ax.set_xscale("log")
    ax.set_xlabel("seconds per cube (log)")
    ax.set_ylabel("PSNR (dB), mean over Gaussian sigmas")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Accuracy against time (one point per dataset)" if len(gaussian_sets) > 1 else
                 f"Accuracy against time on {header_text(next(iter(gaussian_sets)))}" if gaussian_sets else
                 "Accuracy against time")
    return save_figure(fig, outdir, "hsi_accuracy_vs_time")


def _false_colour_figure(v: _View, outdir: str) -> list[str]:
    """False-colour comparison of the first cube (and one band) at one noise case
    (``options``: figure_dataset, figure_case), from the rows' previews."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.report import header_text, row_arrays, save_figure

    ds = v.options.get("figure_dataset") or next(
        (d for base in ("cave", "hsi_synthetic") for d in v.datasets if d.split("[")[0] == base),
        v.datasets[0] if v.datasets else None)
    d = v.acc[v.acc["dataset"] == ds]
    cases = list(dict.fromkeys(d["case"]))
    case = v.options.get("figure_case") or ("sigma=50" if "sigma=50" in cases else (cases[0] if cases else None))
    rows, panels = d[d["case"] == case], []
    for m in v.methods:
        r = rows[rows["method_label"] == m]
        if r.empty or not isinstance(r["extras"].iloc[0], dict):
            continue
        arrays = row_arrays(r.iloc[0])
        if not panels and (img := decode_preview(r["extras"].iloc[0].get("reference_preview"), arrays,
                                                 "reference_preview")) is not None:
            panels.append(("clean", img, None))
        if panels and (img := decode_preview(r["extras"].iloc[0].get("preview"), arrays, "preview")) is not None:
            # the shown cube's own PSNR (the row's metric is the mean over its cubes)
            per_cube = (r["extras"].iloc[0].get("per_cube") or {}).get("psnr")
            panels.append((v.style[m]["label"], img, per_cube[0] if per_cube else r["metrics"].iloc[0]["psnr"]))
    if not panels:
        return []
    fig, axes = plt.subplots(2, len(panels), figsize=(2.4 * len(panels), 6.0), squeeze=False, layout="constrained")
    for j, (title, img, p) in enumerate(panels):
        axes[0][j].imshow(img)
        axes[1][j].imshow(img[..., 1], cmap="gray", vmin=0, vmax=1)
        # long labels (checkpoint, weights tag) wrapped so that neighbouring titles do not overlap
        axes[0][j].set_title("\n".join(textwrap.wrap(title, 24)) + ("" if p is None else f"\n{p:.2f} dB"),
                             fontsize=7)
        for a in axes[:, j]:
            a.set_xticks([])
            a.set_yticks([])
    rgb = (rows["extras"].iloc[0].get("preview") or {}).get("bands")
    axes[0][0].set_ylabel(f"false colour, bands {rgb}", fontsize=7)
    axes[1][0].set_ylabel(f"band {rgb[1] if rgb else '?'}", fontsize=7)
    fig.suptitle(f"{header_text(ds)}, {_block(case)}: first cube (PSNR, metric set 'standard')", fontsize=9)
    return save_figure(fig, outdir, "hsi_false_colour")


#: the report's parts after the result tables, in the order written
REPORT = (_runtime_tables, _psnr_figure, _accuracy_time_figure, _false_colour_figure)


def _case_label(row) -> str:
    p = row["degradation_params"] or {}
    name = row["degradation"].split("[")[0]
    if name == "hsi_gaussian":
        return f"sigma={float(p.get('sigma')):g}"
    if name == "hsi_blind":
        return "blind"
    if name == "hsi_mixed":
        return "mixed"
    return row["degradation"]


def _case_order(cases) -> list[str]:
    def key(c):
        if c.startswith("sigma="):
            return (0, float(c.split("=")[1]))
        return (1 if c == "blind" else 2 if c == "mixed" else 3, c)
    return sorted(cases, key=key)


def _short(metric: str) -> str:
    """A metric's name in the tables' rows (its registered label: both ERGAS variants print "ERGAS")."""
    return R.METRICS[metric].display
