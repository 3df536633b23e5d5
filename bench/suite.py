"""What a suite is: a task protocol (how a dataset sample and a degradation become a
method's input and a reference), its metrics, its grids and its report.

Data flows one way: grid -> cells -> (dataset, degradation, method) -> metrics -> store
-> report. A method never reads files, a dataset never picks a device, a report never
computes a metric.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Generic, Mapping, TypeVar, Union

import torch

from bench.results import Extras


@dataclass(frozen=True)
class Problem:
    """Base of a suite's problem: what a task is about besides its inputs and reference
    (the noise level, the operator, the sample names, ...). Each suite declares a frozen
    subclass whose fields are documented (sparse: :class:`~bench.suites.sparse.LassoProblem`,
    istd: :class:`~bench.suites.istd.IstdProblem`, hsi: :class:`~bench.suites.hsi.HsiProblem`).
    The task carries it (:attr:`Task.problem`) and the runner hands it to the method
    (:attr:`bench.registry.MethodContext.problem`). Scores and methods read attributes: a
    field the suite's problem does not have raises AttributeError, never a silent default.
    What of it goes into a stored row, the suite's ``score`` says (its typed extras)."""

    def to_device(self, device: str) -> "Problem":
        """A copy with every tensor field on ``device`` (other fields as they are)."""
        return to_device(self, device)


P = TypeVar("P", bound=Problem)


@dataclass(frozen=True)
class Task(Generic[P]):
    """What one cell evaluates: the method's ``inputs`` and the ``reference`` to score
    against, for a whole sample set, and the suite's typed ``problem``."""

    inputs: Any
    reference: Any
    n_samples: int
    problem_id: str = ""  # hash of the problem instance (learned methods check it)
    #: the suite's :class:`Problem` (None only for a task no suite scores: a training job's
    #: validation samples, say; reading a field of it then raises AttributeError too)
    problem: P | None = None

    def to_device(self, device: str) -> "Task[P]":
        """A copy with the inputs, the reference and the problem's tensors on ``device``."""
        return to_device(self, device)


@dataclass(frozen=True)
class GridSpec:
    """Selectors for each axis of a grid, and the scoring protocols its cells run under
    (names of :attr:`Suite.protocols`; empty: the suite's default protocol, or none for a
    suite without protocols)."""

    datasets: tuple[str, ...]
    degradations: tuple[str, ...]
    methods: tuple[str, ...]
    protocols: tuple[str, ...] = ()


#: a grid: one :class:`GridSpec` (one cross product), or a tuple of them, its parts, run together,
#: when a table pairs some data sets with some noise cases only (hsi's default grid: the test
#: split under Gaussian noise, and the real Indian Pines cube under its own noise)
Grid = Union[GridSpec, "tuple[GridSpec, ...]"]


def grid_parts(grid: Grid) -> tuple[GridSpec, ...]:
    """The cross products a grid is made of: ``(grid,)`` for one :class:`GridSpec`."""
    return tuple(grid) if isinstance(grid, (tuple, list)) else (grid,)


@dataclass(frozen=True)
class TrainingData:
    """One split of a dataset as a suite hands it to a training job
    (:meth:`Suite.training_data`); the job draws batches and validation samples from it
    through the suite (:meth:`Suite.training_batch`, :meth:`Suite.validation_task`)."""

    dataset: str               # the dataset selector (the suite's default when none was given)
    split: str                 # "train" or "val"
    params: dict[str, Any]     # every parameter of the dataset
    problem_id: str            # the problem instance or the split's samples (a checkpoint records it)
    samples: Any               # suite-specific: the split's samples, or the problem a generator draws from
    source: str = ""           # where the samples were read from ("" when generated)


class Suite:
    """A task protocol, its metrics, its grids and its report (see the module docstring).

    Besides the abstract methods below, a suite may set these hooks (the defaults do nothing
    special): ``extra_grids`` (named grids ``bench run --grid NAME`` runs), ``check_threads``
    (torch threads of ``bench check``'s smoke run), ``protocols`` and ``default_protocol``
    (named scoring protocols, ``bench run --protocol NAME``), ``smoke_extra`` (more cells
    ``bench check`` runs), :meth:`check_values` (what ``bench check`` compares),
    :meth:`skip_reason`, :meth:`curve_point` and, for suites with learned methods,
    :meth:`training_data`, :meth:`training_batch` and :meth:`validation_task`.

    Protocols: a suite whose papers score the same outputs in several ways (resolution,
    thresholds, metric definitions) names them in ``protocols``; every cell runs under one
    of them (:attr:`bench.grid.Cell.protocol`, stored with its row, part of its key when it
    is not ``default_protocol``), and the runner hands it to :meth:`make_task` as the
    keyword ``protocol`` (only to a suite that has protocols). A suite without protocols
    refuses ``--protocol``.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    metrics: ClassVar[tuple[str, ...]] = ()
    grid: ClassVar[Grid]       # the default grid: the paper's main table (one spec or several parts)
    quick: ClassVar[GridSpec]
    smoke: ClassVar[GridSpec]
    #: curve name -> metric evaluated on every iterate of a method that can be stepped
    curve_metrics: ClassVar[tuple[str, ...]] = ()
    #: named grids besides grid/quick/smoke (an ablation, a diagnostic), run with
    #: ``bench run --grid NAME`` and listed by ``bench list``
    extra_grids: ClassVar[Mapping[str, Grid]] = MappingProxyType({})
    #: the named scoring protocols of the suite (``bench run --protocol NAME``); () : none
    protocols: ClassVar[tuple[str, ...]] = ()
    #: the protocol of a cell that names none (one of ``protocols``; None without protocols)
    default_protocol: ClassVar[str | None] = None
    #: more smoke specs that ``bench check`` (and ``bench run --smoke``) run beside ``smoke``,
    #: e.g. a non-default protocol's cells on a few images
    smoke_extra: ClassVar[tuple[GridSpec, ...]] = ()
    #: torch threads of ``bench check``'s smoke run (None: leave torch's setting); the values
    #: only are compared, and small problems run faster on one thread of a busy machine
    check_threads: ClassVar[int | None] = None
    #: modules (dotted names) whose source also goes into every cell key of the suite, besides
    #: the suite's module and what it imports (as :attr:`bench.registry.Component.source_dependencies`)
    source_dependencies: ClassVar[tuple[str, ...]] = ()
    #: the typed extras of the suite's rows (a subclass of :class:`bench.results.Extras`
    #: with its own documented fields): what :meth:`score` returns besides the metrics and
    #: what :meth:`bench.store.Store.results` reads a stored row's extras into
    extras_type: ClassVar[type[Extras]] = Extras

    def make_task(self, data: Any, degradation: Any, seed: int, device: str) -> Task:
        """The task of one cell. A suite with ``protocols`` takes a further keyword
        ``protocol`` (the cell's protocol name) and records it in its problem, so that
        :meth:`score` scores under it."""
        raise NotImplementedError

    def validate_output(self, task: Task, output: Any) -> None:
        """Raise ValueError when the output has the wrong shape or is not finite."""
        check_finite_tensor(output, expected_shape=getattr(task.reference, "shape", None))

    def score(self, task: Task, output: Any) -> tuple[dict[str, float], Extras]:
        """Metrics (name -> value) and extras (per-sample values, ...; an instance of
        :attr:`extras_type`) for a whole set."""
        raise NotImplementedError

    def curve_point(self, task: Task, estimate: Any) -> dict[str, float]:
        """Curve metrics for one iterate (NMSE per iteration, ...)."""
        return {}

    def protocol_description(self, name: str) -> str:
        """One line on what protocol ``name`` (of :attr:`protocols`) does (``bench list``)."""
        return ""

    def skip_reason(self, cell) -> str | None:
        """Why a cell of a grid cannot run here and is left out (shown as '-'), or None: by
        default :meth:`missing_weights` (a suite with more reasons adds them)."""
        return self.missing_weights(cell)

    # -- weights (learned methods' ``checkpoint``: bench.weights)
    #: the dataset a ``bench train`` command of the suite names (None: the command names none)
    train_dataset: ClassVar[str | None] = None
    #: the suite's own ``bench train`` options, name -> help (``--snr`` for sparse): given on
    #: the command line, they reach :meth:`bench.registry.Method.training_job` as ``options``;
    #: a suite that declares none refuses them
    training_options: ClassVar[Mapping[str, str]] = MappingProxyType({})

    def checkpoint_problem(self, cell) -> dict[str, Any]:
        """The facts of a cell's problem known before it runs that a method's
        :meth:`~bench.registry.Method.default_checkpoint` reads (sparse: ``snr_db``; cs:
        ``ratio``); {} by default."""
        return {}

    def missing_weights(self, cell) -> str | None:
        """One line when the weights a learned cell's ``checkpoint`` names are not here (None
        when they are, or when the cell reads none): published weights not downloaded (where
        to get them and where to put them), a project checkpoint not made (the ``bench train``
        command that makes it). A corrupt published file is not missing: its cells run and
        fail naming it. A bare ``shipped``/``published`` that names no file before the cell
        runs is left to the cell (its setup says why)."""
        from bench import registry as R
        from bench import weights
        from bench.errors import CheckpointError
        cls = R.METHODS[cell.method]
        if cls.family != "learned" or "checkpoint" not in cls.parameters:
            return None
        value = weights.canonical(cell.mparams.get("checkpoint"))
        if value is None:
            return None
        try:
            source = weights.resolve(self.name, cell.method, value, problem=self.checkpoint_problem(cell))
        except CheckpointError:
            return None
        return weights.missing_reason(source)

    def check_values(self, row) -> dict[str, float]:
        """The values of a stored smoke row that ``bench check`` compares with the committed
        baselines (name -> value, each with its metric's tolerance); by default its metrics."""
        return dict(row["metrics"])

    # -- training data (suites with learned methods; a training job asks, never parses)
    def training_data(self, dataset: str | None, split: str, data_root: str | None = None) -> TrainingData:
        """The ``split`` ("train" or "val") of the dataset that the selector ``dataset``
        names (None: the suite's default training dataset), for a training job. A dataset
        of another suite, or one that has no such split, raises :class:`BenchError`. The
        test samples the grid evaluates on are never part of it."""
        from bench.errors import BenchError
        raise BenchError(f"suite {self.name} has no training data (no learned method trains on it)")

    def training_batch(self, data: TrainingData, size: int, generator: torch.Generator, **options: Any) -> Any:
        """A fresh batch of ``size`` training samples drawn from ``data`` (a train split)
        with ``generator`` only, so that a resumed training draws the same batches.
        ``options`` are the suite's (documented on its implementation)."""
        raise NotImplementedError(f"suite {self.name} draws no training batches")

    def validation_task(self, data: TrainingData, seed: int, **options: Any) -> Task:
        """The fixed validation problem of a training (a :class:`Task` like :meth:`make_task`
        builds: the inputs a network gets and the reference it is scored against), drawn
        from ``data`` (a val split) and ``seed``."""
        raise NotImplementedError(f"suite {self.name} has no validation task")

    def tiny_task(self, method_name: str, device: str, seed: int) -> tuple[Task, dict[str, Any]]:
        """A tiny problem and the parameters to run a method on it (contract tests)."""
        raise NotImplementedError

    def report(self, frame, outdir: str, options: dict[str, Any]) -> list[str]:
        """Write tables and figures from stored rows; return the paths written."""
        raise NotImplementedError


def check_finite_tensor(output: Any, expected_shape=None) -> None:
    if not isinstance(output, torch.Tensor):
        raise ValueError(f"expected a tensor, got {type(output).__name__}")
    if expected_shape is not None and tuple(output.shape) != tuple(expected_shape):
        raise ValueError(f"output shape {tuple(output.shape)} != expected {tuple(expected_shape)}")
    if not torch.isfinite(output).all():
        n_bad = int((~torch.isfinite(output)).sum())
        raise ValueError(f"output has {n_bad} non-finite value(s) (NaN/Inf): the method diverged")


def check_finite_tensors(output: Any, references, noun: str = "sample") -> None:
    """A tuple (or list) of tensors, one per reference, each of its reference's shape and
    finite (:func:`check_finite_tensor` per element, the element named in the error)."""
    if not isinstance(output, (tuple, list)) or len(output) != len(references):
        raise ValueError(f"expected a tuple of {len(references)} {noun}(s), got {type(output).__name__}"
                         + (f" of {len(output)}" if isinstance(output, (tuple, list)) else ""))
    for i, (out, ref) in enumerate(zip(output, references)):
        try:
            check_finite_tensor(out, expected_shape=tuple(ref.shape))
        except ValueError as e:
            raise ValueError(f"{noun} {i}: {e}") from None


def to_device(obj: Any, device: str) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(to_device(v, device) for v in obj)
    if hasattr(obj, "__dataclass_fields__") and not isinstance(obj, type):
        import dataclasses
        return dataclasses.replace(obj, **{f.name: to_device(getattr(obj, f.name), device)
                                           for f in dataclasses.fields(obj) if f.init})
    return obj
