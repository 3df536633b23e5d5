"""The ``sparse`` suite: LASSO sparse coding (SPECS section 1).

Task: y = A x* + noise for the whole test set at once; a method gets ``LassoInput(A, y)``
and returns x_hat (one row per sample). Metric: NMSE in dB, ratio of totals. Methods that
can be stepped also give NMSE after every iteration (the curve the report plots and the
table reads at iterations 16, 100 and 1000).
"""
from __future__ import annotations

import math
import os

import torch

from bench import registry as R
from bench.metrics.sparse import nmse_db, nmse_db_fast
from bench.suite import GridSpec, Suite, Task
from bench.datasets.sparse import LassoData, make_matrix, sample_codes
from bench.methods.sparse.classical import LassoInput

TABLE_ITERATIONS = (16, 100, 1000)
SNRS = ("inf", "40", "30", "20")
LEARNED = ("lista", "lista_cp", "lista_cpss", "tilista", "alista")
LAYER_TABLE = 16  # the layer / iteration of the LISTA figure's table


class SparseSuite(Suite):
    name = "sparse"
    description = "LASSO sparse coding: classical solvers against the LISTA family (NMSE per iteration)"
    metrics = ("nmse_db",)
    curve_metrics = ("nmse_db",)
    grid = GridSpec(
        datasets=("gaussian_lasso",),
        degradations=tuple(f"awgn_snr[snr_db={s}]" for s in SNRS),
        # lam = 0.4 is the value behind LISTA's initialisation (SPECS section 1); its LASSO
        # optimum is biased (about -7.4 dB), so FISTA also runs at lam = 0.1 to show the trade-off
        methods=("ista", "fista", "admm", "fista[lam=0.1]") + LEARNED,
    )
    quick = GridSpec(
        datasets=("gaussian_lasso",),
        degradations=("awgn_snr[snr_db=inf]", "awgn_snr[snr_db=40]"),
        methods=("ista[n_iter=100]", "fista[n_iter=100]", "admm[n_iter=100]") + LEARNED,
    )
    smoke = GridSpec(
        datasets=("gaussian_lasso[n_test=200]",),
        degradations=("awgn_snr[snr_db=inf]", "awgn_snr[snr_db=30]"),
        methods=("ista[n_iter=100]", "fista[n_iter=100]", "admm[n_iter=100]", "alista"),
    )
    dtype = torch.float32

    def make_task(self, data: LassoData, degradation, seed: int, device: str) -> Task:
        g = torch.Generator().manual_seed(seed)
        clean = data.x @ data.A.T
        y = degradation.apply(clean, g)
        inputs = LassoInput(A=data.A.to(device, self.dtype), y=y.to(device, self.dtype))
        return Task(inputs=inputs, reference=data.x.to(device, self.dtype), n_samples=data.x.shape[0],
                    problem_id=data.instance_id,
                    info={"p": data.p, "truth_energy": float(data.x.pow(2).sum()),
                          "snr_db": float(degradation.params["snr_db"]),
                          "operator_shape": tuple(data.A.shape)})

    def score(self, task: Task, output):
        return {"nmse_db": nmse_db(output, task.reference)}, {}

    def curve_point(self, task: Task, estimate):
        return {"nmse_db": nmse_db_fast(estimate, task.reference, task.info["truth_energy"])}

    def check_values(self, row) -> dict[str, float]:
        """Values that ``bench check`` compares with the baselines."""
        out = dict(row["metrics"])
        curve = (row.get("curves") or {}).get("nmse_db") or []
        for k in (16, 100):
            if len(curve) > k:
                out[f"nmse_db@{k}"] = curve[k]
        return out

    def tiny_task(self, method_name: str, device: str, seed: int):
        g = torch.Generator().manual_seed(seed)
        A = make_matrix(20, 40, seed)
        x = sample_codes(8, 40, 0.1, g)
        y = x @ A.T + 0.01 * torch.randn(8, 20, generator=g, dtype=torch.float64)
        task = Task(inputs=LassoInput(A.to(device, self.dtype), y.to(device, self.dtype)),
                    reference=x.to(device, self.dtype), n_samples=8, problem_id="tiny",
                    info={"p": 0.1, "truth_energy": float(x.pow(2).sum()), "snr_db": 40.0,
                          "operator_shape": (20, 40)})
        params = R.METHODS[method_name].parameters
        if "n_iter" in params:
            return task, {"n_iter": 5}
        if "checkpoint" in params:  # learned: the untrained network (no checkpoint for this instance)
            extra = {"analytic_weight": "closed_form"} if "analytic_weight" in params else {}
            return task, {"n_layers": 4, "checkpoint": "none", **extra}
        return task, {}

    def skip_reason(self, cell) -> str | None:
        """Learned methods with checkpoint=auto run only at the SNRs they were trained for."""
        params = cell.mparams
        if R.METHODS[cell.method].family != "learned" or params.get("checkpoint") != "auto":
            return None
        from bench.methods.sparse.lista import default_checkpoint, snr_label
        snr = cell.gparams.get("snr_db")
        if os.path.exists(default_checkpoint(cell.method, snr)):
            return None
        return (f"{cell.method} at SNR {snr_label(snr)}: no shipped checkpoint for this SNR (train one with "
                f"`python -m bench train --suite sparse --method {cell.method} --snr {snr_label(snr)}`)")

    # ------------------------------------------------------------------ report
    def report(self, frame, outdir: str, options) -> list[str]:
        import matplotlib
        import pandas as pd

        from bench.report import (Table, latest, legend_from_all_axes, method_order, provenance_line, save_figure,
                                  slug, write_table)
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        paths: list[str] = []
        frame = latest(frame, ["dataset", "degradation", "method_label", "device"])
        frame = frame.assign(snr=frame["degradation_params"].map(lambda p: _snr_label(p.get("snr_db"))))
        order = method_order(frame)
        for dataset, df in frame.groupby("dataset", sort=False):
            stem_sfx = "" if dataset == "gaussian_lasso" else "_" + slug(dataset)
            dp = df["dataset_params"].iloc[0]
            snrs = [s for s in _snr_order(df["snr"].unique())]
            # NMSE is device independent: read it from the CPU row where there is one
            acc = df.sort_values("device", key=lambda s: s.map(lambda d: 0 if d == "cpu" else 1))
            acc = acc.groupby(["snr", "method_label"], as_index=False, sort=False).head(1)
            cols = pd.MultiIndex.from_tuples([(s, f"k={k}") for s in snrs for k in TABLE_ITERATIONS])
            methods = [m for m in order if m in set(acc["method_label"])]
            values = pd.DataFrame(math.nan, index=methods, columns=cols)
            for _, r in acc.iterrows():
                curve = (r["curves"] or {}).get("nmse_db") or []
                for k in TABLE_ITERATIONS:
                    if len(curve) > k:
                        values.at[r["method_label"], (r["snr"], f"k={k}")] = curve[k]
            n_test = int(dp.get("n_test", 0))
            caption = (f"NMSE (dB) after k iterations/layers, per SNR. Protocol: LASSO sparse coding, "
                       f"A {dp.get('m')}x{dp.get('n')} Gaussian with unit-norm columns, "
                       f"Bernoulli({dp.get('p')})-Gaussian codes, {n_test} test samples (instance seed "
                       f"{dp.get('instance_seed')}); NMSE = 10 log10(sum ||x_hat - x||^2 / sum ||x||^2) over "
                       f"the test set (ratio of totals); lower is better, best per column in bold; "
                       f"- where a method ran fewer iterations. {provenance_line(df)}.")
            table = Table(values, {c: "min" for c in cols}, caption, "tab:sparse_nmse" + stem_sfx,
                          fmt="{:.2f}", index_name="method")
            paths += write_table(table, outdir, "sparse_nmse" + stem_sfx)

            # runtime: seconds for the whole test set, median over SNRs, CPU and GPU side by side
            rt = df.groupby(["method_label", "device"])["time_s"].median().unstack("device")
            rvalues = pd.DataFrame(math.nan, index=methods, columns=["CPU (s)", "GPU (s)", "params"])
            for m in methods:
                if "cpu" in rt.columns and m in rt.index:
                    rvalues.at[m, "CPU (s)"] = rt.at[m, "cpu"]
                if "cuda" in rt.columns and m in rt.index:
                    rvalues.at[m, "GPU (s)"] = rt.at[m, "cuda"]
                pc = df.loc[df["method_label"] == m, "parameter_count"].dropna()
                if len(pc):
                    rvalues.at[m, "params"] = float(pc.iloc[0])
            threads = sorted({str(p.get("threads")) for p in df["provenance"]})
            rcaption = (f"Time to solve all {n_test} test samples (s), median of timed repeats after a "
                        f"warm-up, median over SNRs; - where not measured. Threads: {', '.join(threads)}. "
                        f"{provenance_line(df)}.")
            rtable = Table(rvalues, {"CPU (s)": "min", "GPU (s)": "min"}, rcaption,
                           "tab:sparse_runtime" + stem_sfx,
                           fmt={"CPU (s)": "{:.3f}", "GPU (s)": "{:.3f}", "params": "{:,.0f}"},
                           index_name="method")
            paths += write_table(rtable, outdir, "sparse_runtime" + stem_sfx)

            # figure: NMSE against iteration, one panel per SNR, log-scale x
            fig, axes = plt.subplots(1, len(snrs), figsize=(4.2 * len(snrs), 3.6), squeeze=False)
            for ax, snr in zip(axes[0], snrs):
                for m in methods:
                    r = acc[(acc["snr"] == snr) & (acc["method_label"] == m)]
                    if r.empty:
                        continue
                    curve = (r["curves"].iloc[0] or {}).get("nmse_db") or []
                    if len(curve) < 2:
                        continue
                    style = "-" if r["family"].iloc[0] == "classical" else "--"
                    ax.plot(range(1, len(curve)), curve[1:], style, label=m)
                ax.set_xscale("log")
                ax.set_title(f"SNR = {snr}" + ("" if snr == "inf" else " dB"))
                ax.set_xlabel("iteration / layer k")
                ax.grid(True, which="both", alpha=0.3)
            axes[0][0].set_ylabel("NMSE (dB)")
            legend_from_all_axes(fig, axes[0], fontsize=8)
            fig.suptitle(f"{dataset}: NMSE against iteration ({n_test} test samples)")
            paths += save_figure(fig, outdir, "sparse_nmse_curves" + stem_sfx)
            paths += self._report_layers(df, acc, methods, snrs, outdir, stem_sfx, dataset, n_test)
        return paths

    def _report_layers(self, df, acc, methods, snrs, outdir, stem_sfx, dataset, n_test) -> list[str]:
        """The LISTA-CP / ALISTA figure (NMSE against layer/iteration 0..16, classical and
        learned on the same axes, one panel per SNR) and its table (NMSE at layer 16,
        parameters, training cost, inference time per 1000 samples)."""
        import matplotlib.pyplot as plt
        import pandas as pd

        from bench.report import Table, legend_from_all_axes, provenance_line, save_figure, write_table
        K = LAYER_TABLE
        paths: list[str] = []
        fig, axes = plt.subplots(1, len(snrs), figsize=(4.2 * len(snrs), 3.6), squeeze=False, sharey=True)
        for ax, snr in zip(axes[0], snrs):
            for m in methods:
                r = acc[(acc["snr"] == snr) & (acc["method_label"] == m)]
                curve = ((r["curves"].iloc[0] or {}).get("nmse_db") or []) if len(r) else []
                if len(curve) < 2:
                    continue
                learned = r["family"].iloc[0] == "learned"
                ax.plot(range(min(len(curve), K + 1)), curve[:K + 1], "--o" if learned else "-",
                        markersize=2.5, label=m)
            ax.set_title(f"SNR = {snr}" + ("" if snr == "inf" else " dB"))
            ax.set_xlabel("iteration / layer k")
            ax.set_xlim(0, K)
            ax.grid(True, alpha=0.3)
        axes[0][0].set_ylabel("NMSE (dB)")
        legend_from_all_axes(fig, axes[0], fontsize=7)
        fig.suptitle(f"{dataset}: NMSE against layer (learned, dashed) and iteration (classical), "
                     f"{n_test} test samples", y=1.03)
        paths += save_figure(fig, outdir, "sparse_nmse_layers" + stem_sfx)

        cols = ([(s, f"NMSE k={K}") for s in snrs] + [(s, "train steps") for s in snrs]
                + [(s, "train s") for s in snrs] + [("", "params"), ("", "CPU s/1000"), ("", "GPU s/1000")])
        values = pd.DataFrame(math.nan, index=methods, columns=pd.MultiIndex.from_tuples(cols))
        for _, r in acc.iterrows():
            curve = (r["curves"] or {}).get("nmse_db") or []
            if len(curve) > K:
                values.at[r["method_label"], (r["snr"], f"NMSE k={K}")] = curve[K]
            tr = (r["extras"] or {}).get("training") or {}
            for key, col in (("steps", "train steps"), ("seconds", "train s")):
                if tr.get(key) is not None:
                    values.at[r["method_label"], (r["snr"], col)] = float(tr[key])
        for m in methods:
            rows = df[df["method_label"] == m]
            pc = rows["parameter_count"].dropna()
            if len(pc):
                values.at[m, ("", "params")] = float(pc.iloc[0])
            for dev, col in (("cpu", "CPU s/1000"), ("cuda", "GPU s/1000")):
                rd = rows[rows["device"] == dev]
                if rd.empty:
                    continue
                # per 1000 samples, for K iterations/layers (classical: scaled from n_iter)
                n_iter = rd["method_params"].map(lambda p: float(p.get("n_iter", p.get("n_layers", K))))
                per = rd["time_s"] * (1000.0 / rd["n_samples"]) * (K / n_iter)
                values.at[m, ("", col)] = float(per.median())
        keep = [c for c in values.columns if values[c].notna().any()]
        values = values[keep]
        threads = sorted({str(p.get("threads")) for p in df["provenance"]})
        caption = (f"NMSE (dB) after k = {K} layers (learned) or iterations (classical), per SNR; learned "
                   f"networks' parameter count and training cost (steps, seconds, from the checkpoint; "
                   f"- for classical methods); time to process 1000 test samples through {K} layers or "
                   f"iterations (classical: the measured time of n_iter iterations scaled by {K}/n_iter), "
                   f"median of timed repeats after a warm-up and over SNRs; threads {', '.join(threads)}. "
                   f"Best NMSE per column in bold. {provenance_line(df)}.")
        fmt = {c: ("{:.2f}" if c[1].startswith("NMSE") else "{:,.0f}" if c[1] in ("train steps", "params", "train s")
                   else "{:.4f}") for c in values.columns}
        dirs = {c: ("min" if c[1].startswith("NMSE") or c[1].endswith("/1000") else None) for c in values.columns}
        table = Table(values, dirs, caption, "tab:sparse_layers" + stem_sfx, fmt=fmt, index_name="method")
        paths += write_table(table, outdir, "sparse_layers" + stem_sfx)
        return paths


def _snr_label(v) -> str:
    if v is None:
        return "?"
    v = float(v)
    return "inf" if math.isinf(v) else f"{v:g}"


def _snr_order(labels):
    return sorted(labels, key=lambda s: -math.inf if s == "inf" else -float(s))





R.register_suite(SparseSuite())
