"""The sparse suite's report (``python -m bench report --suite sparse``): NMSE after k
iterations per SNR, the runtime table, the NMSE curves, the layer figure and its table, from
stored rows only (nothing is rerun).

Outside every cell's key (:data:`bench.fingerprint.EXCLUDED`): it reads rows back and shapes
no stored number, so a caption or layout fix here does not invalidate stored cells.
"""
from __future__ import annotations

import math

TABLE_ITERATIONS = (16, 100, 1000)
LAYER_TABLE = 16  # the layer / iteration of the LISTA figure's table


def write_report(frame, outdir: str, options) -> list[str]:
    """Per dataset, the tables and figures declared in ``REPORT`` (NMSE after k
    iterations, runtime, NMSE curves, the layer figure and its table), from the newest
    row of each cell."""
    from bench.report import method_order, newest
    from bench.report_style import styles

    paths: list[str] = []
    frame = newest(frame)
    frame = frame.assign(snr=frame["degradation_params"].map(lambda p: _snr_label(p.get("snr_db"))))
    order = method_order(frame)
    style = styles(frame, order)  # one colour and line style per method in every figure
    for dataset, df in frame.groupby("dataset", sort=False):
        view = _View(dataset, df, order, style)
        for part in REPORT:
            paths += part(view, outdir)
    return paths


# --------------------------------------------------------------------------- report parts
class _View:
    """One dataset's rows as the report parts read them: the SNRs in table order, one
    accuracy row per (SNR, method) (NMSE is device independent: the CPU row where there is
    one) and the methods present, in table order."""

    def __init__(self, dataset: str, df, order, style):
        from bench.report import prefer_cpu, slug

        self.dataset, self.df, self.style = dataset, df, style
        self.sfx = "" if dataset == "gaussian_lasso" else "_" + slug(dataset)
        self.dp = df["dataset_params"].iloc[0]
        self.n_test = int(self.dp.get("n_test", 0))
        self.snrs = _snr_order(df["snr"].unique())
        self.acc = prefer_cpu(df, ["snr", "method_label"])
        self.methods = [m for m in order if m in set(self.acc["method_label"])]

    def curve(self, snr, method) -> tuple[list, str | None]:
        """The NMSE curve of a method at an SNR ([] when none) and its family."""
        r = self.acc[(self.acc["snr"] == snr) & (self.acc["method_label"] == method)]
        if r.empty:
            return [], None
        return (r["curves"].iloc[0] or {}).get("nmse_db") or [], r["family"].iloc[0]


#: the tables' captions (task, data, protocol, what bold marks); the long CAPTIONS go to the sidecar's notes
SHORT = {
    "nmse": ("NMSE (dB) of LASSO sparse coding on {ds} ({n_test} test samples) after k iterations or layers, "
             "per SNR (dB). Lower is better; best per column in bold."),
    "runtime": ("Seconds to solve the {n_test} test samples of {ds}, median of timed repeats and over SNRs. "
                "Best per column in bold."),
    "layers": ("NMSE (dB) on {ds} after k = {K} layers (learned) or iterations (classical) per SNR (dB), with "
               "parameters, training cost and seconds per 1000 samples. Best NMSE and time per column in bold."),
}
CAPTIONS = {
    "nmse": ("NMSE (dB) after k iterations/layers, per SNR. Protocol: LASSO sparse coding, A {m}x{n} Gaussian with "
             "unit-norm columns, Bernoulli({p})-Gaussian codes, {n_test} test samples (instance seed {seed}); "
             "NMSE = 10 log10(sum ||x_hat - x||^2 / sum ||x||^2) over the test set (ratio of totals); lower is "
             "better, best per column in bold; - where a method ran fewer iterations. {prov}."),
    "runtime": ("Time to solve all {n_test} test samples (s), median of timed repeats after a warm-up, median over "
                "SNRs; - where not measured. Threads: {threads}. {prov}."),
    "layers": ("NMSE (dB) after k = {K} layers (learned) or iterations (classical), per SNR; learned networks' "
               "parameter count and training cost (steps, seconds, from the checkpoint; - for classical methods); "
               "time to process 1000 test samples through {K} layers or iterations (classical: the measured time "
               "of n_iter iterations scaled by {K}/n_iter), median of timed repeats after a warm-up and over SNRs; "
               "threads {threads}. Best NMSE per column in bold. {prov}."),
}


def _nmse_table(v: _View, outdir: str) -> list[str]:
    """NMSE after k = TABLE_ITERATIONS iterations/layers, per SNR."""
    from bench.report import caption, header_text, metric_table, pivot, write_table

    def cells(r):
        curve = (r["curves"] or {}).get("nmse_db") or []
        yield from (((r["snr"], f"k={k}"), curve[k]) for k in TABLE_ITERATIONS if len(curve) > k)

    values = pivot(v.acc, "method_label", cells, v.methods, [(s, f"k={k}") for s in v.snrs for k in TABLE_ITERATIONS])
    dp = v.dp
    cap = caption(CAPTIONS["nmse"], v.df, m=dp.get("m"), n=dp.get("n"), p=dp.get("p"), n_test=v.n_test,
                  seed=dp.get("instance_seed"))
    table = metric_table(values, "sparse", SHORT["nmse"].format(ds=header_text(v.dataset), n_test=v.n_test),
                         "tab:sparse_nmse" + v.sfx, metrics={f"k={k}": "nmse_db" for k in TABLE_ITERATIONS},
                         notes=cap, rows=v.df)
    return write_table(table, outdir, "sparse_nmse" + v.sfx)


def _runtime_table(v: _View, outdir: str) -> list[str]:
    """Seconds for the whole test set, median over SNRs, CPU and GPU side by side; parameters."""
    import pandas as pd

    from bench.report import caption, device_times, header_text, metric_table, parameter_counts, write_table

    times, params = device_times(v.df, ["method_label"]), parameter_counts(v.df)
    values = pd.DataFrame(math.nan, index=v.methods, columns=["CPU (s)", "GPU (s)", "params"])
    for m in v.methods:
        for dev, col in (("cpu", "CPU (s)"), ("cuda", "GPU (s)")):
            values.at[m, col] = times.get((m, dev), math.nan)
        values.at[m, "params"] = params.get(m, math.nan)
    table = metric_table(values, "sparse", SHORT["runtime"].format(ds=header_text(v.dataset), n_test=v.n_test),
                         "tab:sparse_runtime" + v.sfx, notes=caption(CAPTIONS["runtime"], v.df, n_test=v.n_test),
                         rows=v.df, directions={"CPU (s)": "min", "GPU (s)": "min"},
                         fmt={"CPU (s)": "{:.3f}", "GPU (s)": "{:.3f}", "params": "{:,.0f}"})
    return write_table(table, outdir, "sparse_runtime" + v.sfx)


def _curves_figure(v: _View, outdir: str) -> list[str]:
    """NMSE against iteration, one panel per SNR, log-scale x."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.report import header_text, legend_from_all_axes, save_figure

    fig, axes = plt.subplots(1, len(v.snrs), figsize=(4.2 * len(v.snrs), 3.6), squeeze=False, layout="constrained")
    for ax, snr in zip(axes[0], v.snrs):
        for m in v.methods:
            curve, family = v.curve(snr, m)
            if len(curve) >= 2:
                ax.plot(range(1, len(curve)), curve[1:], **{**v.style[m], "marker": None})
        ax.set_xscale("log")
        ax.set_title(f"SNR = {snr}" + ("" if snr == "inf" else " dB"))
        ax.set_xlabel("iteration / layer k")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("NMSE (dB)")
    legend_from_all_axes(fig, axes[0], fontsize=8)
    fig.suptitle(f"{header_text(v.dataset)}: NMSE against iteration ({v.n_test} test samples)")
    return save_figure(fig, outdir, "sparse_nmse_curves" + v.sfx)


def _layers_figure(v: _View, outdir: str) -> list[str]:
    """The LISTA-CP / ALISTA figure: NMSE against layer/iteration 0..LAYER_TABLE, classical
    and learned on the same axes, one panel per SNR."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.report import header_text, legend_from_all_axes, save_figure

    K = LAYER_TABLE
    fig, axes = plt.subplots(1, len(v.snrs), figsize=(4.2 * len(v.snrs), 3.6), squeeze=False, sharey=True,
                             layout="constrained")
    for ax, snr in zip(axes[0], v.snrs):
        for m in v.methods:
            curve, family = v.curve(snr, m)
            if len(curve) >= 2:
                ax.plot(range(min(len(curve), K + 1)), curve[:K + 1], markersize=2.5,
                        **{**v.style[m], "marker": "o" if family == "learned" else None})
        ax.set_title(f"SNR = {snr}" + ("" if snr == "inf" else " dB"))
        ax.set_xlabel("iteration / layer k")
        ax.set_xlim(0, K)
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("NMSE (dB)")
    legend_from_all_axes(fig, axes[0], fontsize=7)
    fig.suptitle(f"{header_text(v.dataset)}: NMSE against layer (learned, dashed) and iteration (classical), "
                 f"{v.n_test} test samples")
    return save_figure(fig, outdir, "sparse_nmse_layers" + v.sfx)


def _per_1000(rows, K: int) -> float:
    """Seconds per 1000 samples for K iterations/layers (classical: scaled from n_iter),
    median over the rows (SNRs)."""
    n_iter = rows["method_params"].map(lambda p: float(p.get("n_iter", p.get("n_layers", K))))
    return float((rows["time_s"] * (1000.0 / rows["n_samples"]) * (K / n_iter)).median())


def _layers_table(v: _View, outdir: str) -> list[str]:
    """NMSE at layer LAYER_TABLE, parameters, training cost, inference time per 1000 samples."""
    from bench.report import caption, header_text, metric_table, parameter_counts, pivot, write_table

    K = LAYER_TABLE

    def cells(r):
        curve = (r["curves"] or {}).get("nmse_db") or []
        if len(curve) > K:
            yield (r["snr"], f"NMSE k={K}"), curve[K]
        tr = (r["extras"] or {}).get("training") or {}
        yield from (((r["snr"], col), float(tr[key])) for key, col in (("steps", "train steps"), ("seconds", "train s"))
                    if tr.get(key) is not None)

    cols = ([(s, f"NMSE k={K}") for s in v.snrs] + [(s, "train steps") for s in v.snrs]
            + [(s, "train s") for s in v.snrs] + [("", "params"), ("", "CPU s/1000"), ("", "GPU s/1000")])
    values, params = pivot(v.acc, "method_label", cells, v.methods, cols), parameter_counts(v.df)
    for m in v.methods:
        rows = v.df[v.df["method_label"] == m]
        if m in params:
            values.at[m, ("", "params")] = params[m]
        for dev, col in (("cpu", "CPU s/1000"), ("cuda", "GPU s/1000")):
            if (rows["device"] == dev).any():
                values.at[m, ("", col)] = _per_1000(rows[rows["device"] == dev], K)
    values = values[[c for c in values.columns if values[c].notna().any()]]
    table = metric_table(values, "sparse", SHORT["layers"].format(ds=header_text(v.dataset), K=K),
                         "tab:sparse_layers" + v.sfx, notes=caption(CAPTIONS["layers"], v.df, K=K), rows=v.df,
                         metrics={f"NMSE k={K}": "nmse_db"}, directions={"CPU s/1000": "min", "GPU s/1000": "min"},
                         fmt={"train steps": "{:,.0f}", "params": "{:,.0f}", "train s": "{:,.0f}",
                              "CPU s/1000": "{:.4f}", "GPU s/1000": "{:.4f}"})
    return write_table(table, outdir, "sparse_layers" + v.sfx)


#: the report's tables and figures per dataset, in the order written
REPORT = (_nmse_table, _runtime_table, _curves_figure, _layers_figure, _layers_table)


def _snr_label(v) -> str:
    if v is None:
        return "?"
    v = float(v)
    return "inf" if math.isinf(v) else f"{v:g}"


def _snr_order(labels):
    return sorted(labels, key=lambda s: -math.inf if s == "inf" else -float(s))
