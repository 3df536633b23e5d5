"""The ``sparse`` suite: LASSO sparse coding (SPECS section 1).

Task: y = A x* + noise for the whole test set at once; a method gets ``LassoInput(A, y)``
and returns x_hat (one row per sample). Metric: NMSE in dB, ratio of totals. Methods that
can be stepped also give NMSE after every iteration (the curve the report plots and the
table reads at iterations 16, 100 and 1000).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from bench import registry as R
from bench.metrics.sparse import nmse_db, nmse_db_fast
from bench.results import Extras
from bench.suite import GridSpec, Problem, Suite, Task, TrainingData
from bench.datasets.sparse import LassoData, instance_hash, make_matrix, sample_codes
from bench.methods.sparse.classical import LassoInput

TABLE_ITERATIONS = (16, 100, 1000)
SNRS = ("inf", "40", "30", "20")
LEARNED = ("lista", "lista_cp", "lista_cpss", "tilista", "alista")
LAYER_TABLE = 16  # the layer / iteration of the LISTA figure's table
TRAINING_DATASET = "gaussian_lasso"  # what `bench train` trains on without --dataset
#: the validation codes' seed stream (its own: the test set uses instance_seed + 1_000_003)
VALIDATION_SEED = 10_000_019


@dataclass(frozen=True)
class LassoProblem(Problem):
    """A LASSO problem instance, what training draws from (:meth:`SparseSuite.training_data`'s
    samples): the operator and the codes' sparsity."""

    A: torch.Tensor  # the operator, float64, m x n, unit-norm columns
    p: float         # probability that an entry of a code is non-zero (Bernoulli-Gaussian codes)

    @property
    def operator_shape(self) -> tuple[int, int]:
        """(m, n): measurements by code length (what a network's parameter count depends on)."""
        return tuple(self.A.shape)


@dataclass(frozen=True)
class MeasuredLassoProblem(LassoProblem):
    """The sparse suite's task problem (:attr:`Task.problem`, :attr:`MethodContext.problem`):
    the instance measured at an SNR, with the energy of the codes a task is scored against
    (the test set, or a training job's validation codes)."""

    snr_db: float        # the measurements' SNR in dB (inf: noiseless); checkpoint=shipped picks by it
    truth_energy: float  # sum of ||x||^2 over the reference codes (the NMSE's denominator, once)


@dataclass(frozen=True, kw_only=True)
class SparseExtras(Extras):
    """A sparse row's extras: the learned methods' (the base class's checkpoint and
    training: recipe, steps, seconds, snr_db, val_nmse_db) and ALISTA's weight. The
    suite's own values are the metrics and the NMSE curve (the row's ``curves``)."""

    #: what ALISTA's fixed analytic weight was computed from (source, iterations, ...);
    #: None for networks that learn their weights
    analytic_weight: dict[str, Any] | None = None


class SparseSuite(Suite):
    name = "sparse"
    description = "LASSO sparse coding: classical solvers against the LISTA family (NMSE per iteration)"
    metrics = ("nmse_db",)
    curve_metrics = ("nmse_db",)
    extras_type = SparseExtras
    #: `bench train --suite sparse --snr 40`: the training SNR (dB, or inf), also in the
    #: shipped checkpoints' names (``<method>_snr40``)
    training_options = {"snr": "training SNR in dB or inf (default inf)"}
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
        # every learned network with its shipped noiseless checkpoint (none is trained at 30 dB:
        # those cells are skipped)
        methods=("ista[n_iter=100]", "fista[n_iter=100]", "admm[n_iter=100]") + LEARNED,
    )
    dtype = torch.float32

    def make_task(self, data: LassoData, degradation, seed: int, device: str) -> Task:
        g = torch.Generator().manual_seed(seed)
        clean = data.x @ data.A.T
        y = degradation.apply(clean, g)
        inputs = LassoInput(A=data.A.to(device, self.dtype), y=y.to(device, self.dtype))
        return Task(inputs=inputs, reference=data.x.to(device, self.dtype), n_samples=data.x.shape[0],
                    problem_id=data.instance_id,
                    problem=MeasuredLassoProblem(A=data.A, p=data.p, snr_db=float(degradation.params["snr_db"]),
                                                 truth_energy=float(data.x.pow(2).sum())))

    def score(self, task: Task[MeasuredLassoProblem], output):
        return {"nmse_db": nmse_db(output, task.reference)}, SparseExtras()

    def curve_point(self, task: Task[MeasuredLassoProblem], estimate):
        return {"nmse_db": nmse_db_fast(estimate, task.reference, task.problem.truth_energy)}

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
                    problem=MeasuredLassoProblem(A=A, p=0.1, snr_db=40.0, truth_energy=float(x.pow(2).sum())))
        params = R.METHODS[method_name].parameters
        if "n_iter" in params:
            return task, {"n_iter": 5}
        if "checkpoint" in params:  # learned: the untrained network (no checkpoint for this instance)
            extra = {"analytic_weight": "closed_form"} if "analytic_weight" in params else {}
            return task, {"n_layers": 4, "checkpoint": "none", **extra}
        return task, {}

    def checkpoint_problem(self, cell) -> dict[str, Any]:
        """The cell's SNR (``checkpoint=shipped`` reads the file trained at it; a learned
        cell at an SNR without one is left out with the command that makes it)."""
        return {"snr_db": cell.gparams.get("snr_db")}

    # ------------------------------------------------------------------ training data
    def training_data(self, dataset: str | None, split: str, data_root: str | None = None) -> TrainingData:
        """The problem instance (the operator A and the sparsity p) of a ``gaussian_lasso``
        selector; training and validation codes are drawn from it by seeded generators,
        never from the test set, so both splits are the same problem."""
        from bench.errors import BenchError, UnknownNameError
        from bench.selectors import parse_selector

        if split not in ("train", "val"):
            raise BenchError(f"split {split!r}: the sparse suite has train and val")
        selector = dataset or TRAINING_DATASET
        name, dparams = parse_selector(selector)
        dcls = R.DATASETS.get_or_fail(name)
        if not dcls.belongs_to(self.name):
            raise UnknownNameError(f"--dataset {name}: not a dataset of the sparse suite",
                                   valid=sorted(d.name for d in R.datasets_of(self.name)), what="dataset")
        ds = dcls(**dparams)
        A = make_matrix(int(ds.params["m"]), int(ds.params["n"]), int(ds.params["instance_seed"]))
        return TrainingData(dataset=selector, split=split, params=ds.params, problem_id=instance_hash(A),
                            samples=LassoProblem(A=A, p=float(ds.params["p"])))

    def training_batch(self, data: TrainingData, size: int, generator: torch.Generator,
                       degradation=None, **options):
        """Fresh Bernoulli-Gaussian codes x (``size`` rows) and their measurements
        y = degradation(A x), both float32; ``degradation`` is the training noise (an
        ``awgn_snr``; None: noiseless). The clean measurements use A rounded to float32,
        the operator the networks compute with."""
        prob: LassoProblem = data.samples
        x = sample_codes(size, prob.A.shape[1], prob.p, generator)
        clean = x @ prob.A.to(torch.float32).T.double()
        y = clean if degradation is None else degradation.apply(clean, generator)
        return x.to(torch.float32), y.to(torch.float32)

    def validation_task(self, data: TrainingData, seed: int, size: int = 1000, degradation=None,
                        **options) -> Task:
        """``size`` validation codes and their measurements y = degradation(A x) (float64,
        then float32), from the stream ``VALIDATION_SEED + 7919 * seed``: fixed for a
        training seed, disjoint from the test set's."""
        prob: LassoProblem = data.samples
        g = torch.Generator().manual_seed(VALIDATION_SEED + 7919 * int(seed))
        x = sample_codes(int(size), prob.A.shape[1], prob.p, g)
        clean = x @ prob.A.T
        y = clean if degradation is None else degradation.apply(clean, g)
        return Task(inputs=LassoInput(A=prob.A.to(self.dtype), y=y.to(self.dtype)), reference=x.to(self.dtype),
                    n_samples=int(size), problem_id=data.problem_id,
                    problem=MeasuredLassoProblem(
                        A=prob.A, p=prob.p, truth_energy=float(x.pow(2).sum()),
                        snr_db=math.inf if degradation is None else float(degradation.params["snr_db"])))

    # ------------------------------------------------------------------ report
    def report(self, frame, outdir: str, options) -> list[str]:
        """Per dataset, the tables and figures declared in ``REPORT`` (NMSE after k
        iterations, runtime, NMSE curves, the layer figure and its table), from the newest
        row of each cell."""
        from bench.report import method_order, newest

        paths: list[str] = []
        frame = newest(frame)
        frame = frame.assign(snr=frame["degradation_params"].map(lambda p: _snr_label(p.get("snr_db"))))
        order = method_order(frame)
        for dataset, df in frame.groupby("dataset", sort=False):
            view = _View(dataset, df, order)
            for part in REPORT:
                paths += part(view, outdir)
        return paths


# --------------------------------------------------------------------------- report parts
class _View:
    """One dataset's rows as the report parts read them: the SNRs in table order, one
    accuracy row per (SNR, method) (NMSE is device independent: the CPU row where there is
    one) and the methods present, in table order."""

    def __init__(self, dataset: str, df, order):
        from bench.report import prefer_cpu, slug

        self.dataset, self.df = dataset, df
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
    from bench.report import caption, metric_table, pivot, write_table

    def cells(r):
        curve = (r["curves"] or {}).get("nmse_db") or []
        yield from (((r["snr"], f"k={k}"), curve[k]) for k in TABLE_ITERATIONS if len(curve) > k)

    values = pivot(v.acc, "method_label", cells, v.methods, [(s, f"k={k}") for s in v.snrs for k in TABLE_ITERATIONS])
    dp = v.dp
    cap = caption(CAPTIONS["nmse"], v.df, m=dp.get("m"), n=dp.get("n"), p=dp.get("p"), n_test=v.n_test,
                  seed=dp.get("instance_seed"))
    table = metric_table(values, "sparse", cap, "tab:sparse_nmse" + v.sfx,
                         metrics={f"k={k}": "nmse_db" for k in TABLE_ITERATIONS})
    return write_table(table, outdir, "sparse_nmse" + v.sfx)


def _runtime_table(v: _View, outdir: str) -> list[str]:
    """Seconds for the whole test set, median over SNRs, CPU and GPU side by side; parameters."""
    import pandas as pd

    from bench.report import caption, device_times, metric_table, parameter_counts, write_table

    times, params = device_times(v.df, ["method_label"]), parameter_counts(v.df)
    values = pd.DataFrame(math.nan, index=v.methods, columns=["CPU (s)", "GPU (s)", "params"])
    for m in v.methods:
        for dev, col in (("cpu", "CPU (s)"), ("cuda", "GPU (s)")):
            values.at[m, col] = times.get((m, dev), math.nan)
        values.at[m, "params"] = params.get(m, math.nan)
    table = metric_table(values, "sparse", caption(CAPTIONS["runtime"], v.df, n_test=v.n_test),
                         "tab:sparse_runtime" + v.sfx, directions={"CPU (s)": "min", "GPU (s)": "min"},
                         fmt={"CPU (s)": "{:.3f}", "GPU (s)": "{:.3f}", "params": "{:,.0f}"})
    return write_table(table, outdir, "sparse_runtime" + v.sfx)


def _curves_figure(v: _View, outdir: str) -> list[str]:
    """NMSE against iteration, one panel per SNR, log-scale x."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.report import legend_from_all_axes, save_figure

    fig, axes = plt.subplots(1, len(v.snrs), figsize=(4.2 * len(v.snrs), 3.6), squeeze=False)
    for ax, snr in zip(axes[0], v.snrs):
        for m in v.methods:
            curve, family = v.curve(snr, m)
            if len(curve) >= 2:
                ax.plot(range(1, len(curve)), curve[1:], "-" if family == "classical" else "--", label=m)
        ax.set_xscale("log")
        ax.set_title(f"SNR = {snr}" + ("" if snr == "inf" else " dB"))
        ax.set_xlabel("iteration / layer k")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("NMSE (dB)")
    legend_from_all_axes(fig, axes[0], fontsize=8)
    fig.suptitle(f"{v.dataset}: NMSE against iteration ({v.n_test} test samples)")
    return save_figure(fig, outdir, "sparse_nmse_curves" + v.sfx)


def _layers_figure(v: _View, outdir: str) -> list[str]:
    """The LISTA-CP / ALISTA figure: NMSE against layer/iteration 0..LAYER_TABLE, classical
    and learned on the same axes, one panel per SNR."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.report import legend_from_all_axes, save_figure

    K = LAYER_TABLE
    fig, axes = plt.subplots(1, len(v.snrs), figsize=(4.2 * len(v.snrs), 3.6), squeeze=False, sharey=True)
    for ax, snr in zip(axes[0], v.snrs):
        for m in v.methods:
            curve, family = v.curve(snr, m)
            if len(curve) >= 2:
                ax.plot(range(min(len(curve), K + 1)), curve[:K + 1], "--o" if family == "learned" else "-",
                        markersize=2.5, label=m)
        ax.set_title(f"SNR = {snr}" + ("" if snr == "inf" else " dB"))
        ax.set_xlabel("iteration / layer k")
        ax.set_xlim(0, K)
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("NMSE (dB)")
    legend_from_all_axes(fig, axes[0], fontsize=7)
    fig.suptitle(f"{v.dataset}: NMSE against layer (learned, dashed) and iteration (classical), "
                 f"{v.n_test} test samples", y=1.03)
    return save_figure(fig, outdir, "sparse_nmse_layers" + v.sfx)


def _per_1000(rows, K: int) -> float:
    """Seconds per 1000 samples for K iterations/layers (classical: scaled from n_iter),
    median over the rows (SNRs)."""
    n_iter = rows["method_params"].map(lambda p: float(p.get("n_iter", p.get("n_layers", K))))
    return float((rows["time_s"] * (1000.0 / rows["n_samples"]) * (K / n_iter)).median())


def _layers_table(v: _View, outdir: str) -> list[str]:
    """NMSE at layer LAYER_TABLE, parameters, training cost, inference time per 1000 samples."""
    from bench.report import caption, metric_table, parameter_counts, pivot, write_table

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
    table = metric_table(values, "sparse", caption(CAPTIONS["layers"], v.df, K=K), "tab:sparse_layers" + v.sfx,
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





R.register_suite(SparseSuite())
