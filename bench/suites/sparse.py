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

SNRS = ("inf", "40", "30", "20")
LEARNED = ("lista", "lista_cp", "lista_cpss", "tilista", "alista")
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
        from bench.suites.sparse_report import write_report
        return write_report(frame, outdir, options)


R.register_suite(SparseSuite())
