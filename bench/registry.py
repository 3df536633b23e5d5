"""Registries of suites, datasets, degradations, methods and metrics.

A component is a small class with a ``name``, a ``parameters`` dict of defaults, a
``parameter_specs`` dict saying what values each takes (:mod:`bench.params`) and a
few short methods (the benchopt shape). Registering it makes it visible to the command
line (``bench list``), to the grid and to the generated contract tests::

    @register_method
    class Fista(Method):
        name = "fista"
        suite = "sparse"
        parameters = {"n_iter": 1000, "lam": 0.4}
        parameter_specs = {"n_iter": Param(int, min=1), "lam": Param(float, min=0)}
        def run(self, inputs): ...

Modules under ``bench.methods``, ``bench.datasets``, ``bench.suites`` and
``bench.metrics`` are imported by :func:`load_all`, so a new component is one file.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator

from bench.errors import UnknownNameError
from bench.params import Param, check_parameters, check_rules, format_value  # noqa: F401 (format_value: also read from here)


# --------------------------------------------------------------------------- components
class Component:
    """Base of datasets, degradations and methods: a name and default parameters."""

    name: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Any]] = {}
    #: what values each parameter takes (type, range or choices; :class:`bench.params.Param`),
    #: checked by ``__init__``; the contract tests require one for every parameter
    parameter_specs: ClassVar[dict[str, Param]] = {}
    #: rules between parameters (:class:`bench.params.Ordered`: the two ends of a range),
    #: checked by ``__init__`` after each value passed its own spec
    parameter_rules: ClassVar[tuple] = ()
    description: ClassVar[str] = ""
    #: modules (dotted names) whose source also goes into :meth:`source_hash`: a helper module
    #: the component's results depend on, so that editing it invalidates stored cells
    source_dependencies: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def belongs_to(cls, suite: str) -> bool:
        """Whether the component can be part of ``suite``'s grids (its selectors are valid there)."""
        return False

    def __init__(self, **params: Any):
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            raise UnknownNameError(
                f"{self.name}: unknown parameter(s) {', '.join(unknown)}",
                valid=sorted(self.parameters),
                what="parameter",
            )
        # a bad value raises BadParameterError (exit 2) naming the parameter, the value and
        # what is allowed; integral floats of int parameters become ints (n_iter=1e3 -> 1000)
        params = check_parameters(self.name, self.parameter_specs, params)
        self.params: dict[str, Any] = {**self.parameters, **params}
        check_rules(self.name, self.parameter_rules, self.params)

    @classmethod
    def parameter_help(cls) -> str:
        """``n_iter: an integer >= 1; lam: a number >= 0`` (what ``bench list`` prints)."""
        return "; ".join(f"{k}: {cls.parameter_specs[k].describe()}" if k in cls.parameter_specs
                         else f"{k}: (undeclared)" for k in cls.parameters)

    @classmethod
    def label(cls, params: dict[str, Any]) -> str:
        """``name`` or ``name[k=v,...]`` listing only parameters that differ from defaults."""
        changed = {k: v for k, v in sorted(params.items()) if cls.parameters.get(k, object()) != v}
        if not changed:
            return cls.name
        return f"{cls.name}[{','.join(f'{k}={format_value(v)}' for k, v in changed.items())}]"

    @classmethod
    def source_hash(cls) -> str:
        """Hash (16 hex digits) of the code of the component: the modules of its class and of
        its project base classes, its ``source_dependencies`` and every ``bench.`` module
        those import, transitively (see :mod:`bench.fingerprint`, which also says which
        harness modules, this one included, are deliberately left out). A cell's key adds
        the suite's, the dataset's, the degradation's and the metrics' code and the weights."""
        from bench import fingerprint
        return fingerprint.modules_digest(fingerprint.class_modules(cls))[:16]


class Dataset(Component):
    """A set of samples of one suite, loaded from the data root or generated from a seed.

    ``load`` returns whatever the suite's ``make_task`` expects (vectors, images with
    masks, spectral cubes). A dataset never picks a device.
    """

    suite: ClassVar[str] = ""
    needs_data: ClassVar[bool] = False  # True when it reads files under the data root

    @classmethod
    def belongs_to(cls, suite: str) -> bool:
        return cls.suite == suite

    def load(self, data_root: str | None) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def files(self, data_root: str | None) -> tuple[str, ...]:
        """The data files :meth:`load` reads under ``data_root`` (paths; one that does not
        exist is listed too), found without reading them (a split file may be read): their
        bytes identify the cell's data in its key (:mod:`bench.data_identity`). A generated
        dataset reads none (the default) and is identified by its parameters; a dataset
        with ``needs_data`` must list every file it reads (the contract tests check it)."""
        return ()

    def sample_set_id(self) -> str:
        """Identifies the samples (which instance, split, crop); part of the cell key."""
        return self.label(self.params)

    def validate(self, data: Any) -> None:
        """Checks the loaded ``data`` before any method runs (the runner calls it after
        :meth:`load`): by default every floating-point tensor or array in it (the fields of
        its dataclass, tuples of them, nested dataclasses) must be finite, else
        :class:`bench.errors.DataError` naming the dataset, the sample (by its name where
        the data has ``names``) and the fix. Loaders check their files (hash, size) and name
        them; this catches what a generator or a loader let through."""
        import dataclasses

        import numpy as np
        import torch

        from bench.errors import DataError

        names = tuple(getattr(data, "names", ()) or ())

        def bad(x) -> tuple[int, tuple]:
            """(number of non-finite values, index of the first) of a float tensor/array."""
            if isinstance(x, torch.Tensor) and x.is_floating_point():
                x = x.detach().cpu().numpy()
            if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating):
                wrong = ~np.isfinite(x)
                if wrong.any():
                    return int(wrong.sum()), tuple(int(i) for i in np.argwhere(wrong)[0])
            return 0, ()

        def walk(obj, where: str) -> None:
            if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
                for f in dataclasses.fields(obj):
                    walk(getattr(obj, f.name), f"{where}.{f.name}" if where else f.name)
            elif isinstance(obj, (tuple, list)):
                for i, item in enumerate(obj):
                    sample = names[i] if len(names) == len(obj) else str(i)
                    walk(item, f"{where}[{sample}]")
            else:
                n, first = bad(obj)
                if n:
                    at = f" (the first at index {first})" if len(first) > 0 else ""
                    raise DataError(f"{self.label(self.params)}: {where} holds {n} non-finite value(s) (NaN or "
                                    f"infinity){at}; the data is corrupt: if it was read from a file, replace that "
                                    f"file (`python -m bench data list` checks the known data sets)")

        walk(data, "")


class Degradation(Component):
    """Turns clean measurements into observed ones, seeded per cell."""

    suites: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def belongs_to(cls, suite: str) -> bool:
        return suite in cls.suites


class Method(Component):
    """A solver or a network. ``run`` is timed; ``setup`` (loading a checkpoint, say) is not.

    ``family`` is ``classical`` or ``learned``; ``devices`` lists where it can run.
    Methods that can be stepped implement ``iterates`` (a generator of estimates after
    each iteration, the initial estimate first) so that the suite can draw curves.
    Learned methods that ``bench train`` can train implement :meth:`training_job`.

    Timing hooks the runner reads: ``warmup`` (False: no untimed warm-up run), ``warm_up``
    (what the warm-up runs) and ``max_repeat`` (a cap on the timed repeats).
    """

    suite: ClassVar[str] = ""
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    #: False: the runner does no untimed warm-up run before timing (a method whose first run
    #: is not slower, or one that takes minutes, where a warm-up would double the cost)
    warmup: ClassVar[bool] = True
    #: at most this many timed repeats whatever ``--repeat`` asks (None: no cap); a method
    #: that takes minutes per cell sets 1
    max_repeat: ClassVar[int | None] = None
    #: True: the method loads the authors' released weights with ``checkpoint=published:<name>``
    #: (:mod:`bench.weights`; ``bench weights`` says so beside each weight set it lists)
    loads_published: ClassVar[bool] = False
    #: ``training_job`` takes ``init="published:<name>"`` (``bench train --init``: fine-tuning)
    fine_tunes: ClassVar[bool] = False
    #: the method's name as the papers write it, in report tables and legends ("" : the
    #: registry name); ``display_name_tex`` its LaTeX form where that differs ("ISTA-Net$^+$")
    display_name: ClassVar[str] = ""
    display_name_tex: ClassVar[str] = ""
    #: what :meth:`setup` was given (None before it is called)
    context: "MethodContext | None" = None
    #: True: the method's output depends only on its parameters, its seed, its inputs and
    #: :meth:`output_identity`, never on the suite's scoring protocol, so that the runner may
    #: run it once for the cells that differ only in their protocol and have equal inputs
    #: (:mod:`bench.shared_outputs`); a method that reads the protocol sets it False
    share_output: ClassVar[bool] = True

    @classmethod
    def belongs_to(cls, suite: str) -> bool:
        return cls.suite == suite

    def setup(self, context: "MethodContext") -> None:
        """Called once per cell before timing: device, seed, problem-level information."""
        self.context = context

    def warm_up(self, inputs: Any) -> None:
        """The untimed warm-up run before the timed repeats (when ``warmup`` is True): by
        default one full :meth:`run`; a method may warm up on less (one image of a set)."""
        self.run(inputs)

    def run(self, inputs: Any) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def iterates(self, inputs: Any) -> Iterator[Any]:
        raise NotImplementedError(f"{self.name} cannot be stepped")

    @property
    def can_step(self) -> bool:
        return type(self).iterates is not Method.iterates

    def parameter_count(self) -> int | None:
        """Number of learned parameters (None for classical methods)."""
        return None

    def reused_seconds(self) -> float:
        """Seconds of work the last :meth:`run` reused from an earlier cell instead of doing
        it (work shared between the rows of a cell); the runner adds them to the run's time,
        so that a row's time does not depend on the order the rows ran in. 0 by default."""
        return 0.0

    def row_extras(self) -> dict[str, Any]:
        """Stored in the row's ``extras`` after a run (checkpoint, training cost, ...)."""
        return {}

    def output_identity(self) -> str:
        """After :meth:`setup`: what, besides the parameters, seed and inputs, the output
        depends on that setup chose from the cell's problem (learned methods: the weights
        they loaded), so that two cells share an output only where it is equal
        (:mod:`bench.shared_outputs`). "" (the default): nothing."""
        return ""

    @classmethod
    def weights_digest(cls, params: dict[str, Any]) -> str:
        """Digest of the weight/checkpoint files the method reads when run with ``params``
        (its full parameters), part of every cell's key, so that a retrained or replaced
        checkpoint invalidates the stored cells; "" (the default) for methods that read
        none. Learned methods override it, e.g. with
        :func:`bench.fingerprint.files_digest` of the files ``checkpoint=...`` names."""
        return ""

    @classmethod
    def default_checkpoint(cls, problem: Any, kind: str = "shipped") -> str | None:
        """What the bare ``checkpoint=shipped`` / ``checkpoint=published`` (``kind``) name for
        a cell's ``problem``: ``shipped:<name>`` or ``published:<name>`` (:mod:`bench.weights`'s
        grammar), or None where the method has no such weights for it. ``problem`` is the
        typed problem a cell's setup is given, or the facts a suite knows before the cell runs
        (:meth:`bench.suite.Suite.checkpoint_problem`); read it with
        :func:`bench.weights.fact`. Learned methods with per-problem weights override it."""
        return None

    @classmethod
    def make_command(cls, stem: str) -> str | None:
        """The ``bench train`` command that makes the shipped checkpoint ``<stem>.npz`` (the
        skip line of a missing one). None: the default recipe's command, which
        :func:`bench.weights.make_command` writes; methods whose file names carry an option,
        an ablation knob or a fine-tuning's start override it."""
        return None

    @classmethod
    def training_job(cls, recipe: str = "cpu", dataset: str | None = None,
                     seed: int | None = None, overrides: dict[str, Any] | None = None,
                     device: str = "cpu", data_root: str | None = None,
                     options: dict[str, Any] | None = None) -> tuple[Any, str]:
        """The :class:`bench.train.TrainingJob` that ``bench train`` runs for this method, and
        the checkpoint path it writes by default (where ``checkpoint=shipped`` finds it).

        ``recipe`` names a configuration, ``overrides`` replace some of its values (``--set``),
        ``dataset`` a dataset selector (None: the suite's default), ``options`` the suite's
        training options (:attr:`bench.suite.Suite.training_options`: sparse's ``snr``; only
        those the command line was given). A job draws its training batches and validation
        samples from its suite (:meth:`bench.suite.Suite.training_data`). Only learned methods
        implement it (see :meth:`can_train`)."""
        raise NotImplementedError(f"{cls.name} cannot be trained")

    @classmethod
    def can_train(cls) -> bool:
        """Whether the method implements :meth:`training_job` (``bench train`` accepts it)."""
        return cls.training_job.__func__ is not Method.training_job.__func__


@dataclass(frozen=True)
class MethodContext:
    """What :meth:`Method.setup` is given: where and how the cell runs, and its problem."""

    device: str
    seed: int
    data_root: str | None = None
    problem_id: str = ""  # hash of the problem instance (checkpoints belong to one)
    #: the task's typed problem (:class:`bench.suite.Problem`, the suite's subclass: e.g.
    #: :class:`bench.suites.sparse.LassoProblem`, whose ``snr_db`` LISTA's checkpoint=shipped
    #: reads); None where the caller has none (a contract test, a bare setup)
    problem: Any = None


@dataclass(frozen=True)
class Metric:
    """A scalar quality measure.

    ``direction`` is ``min`` or ``max`` (which is better); ``tolerance`` is the absolute
    drift that ``bench check`` accepts against the committed baselines. ``label`` is the
    name a report's tables print (the metric's name when empty) and ``fmt`` how they print
    a value (a :meth:`str.format` pattern).
    """

    name: str
    suite: str
    direction: str
    unit: str
    definition: str
    tolerance: float
    fn: Callable[..., float] | None = None
    scope: str = "sample"  # "sample": mean over samples; "dataset": accumulated over the set
    label: str = ""
    fmt: str = "{:.2f}"

    @property
    def display(self) -> str:
        """The column/row name of the metric in report tables."""
        return self.label or self.name

    def better(self, a: float, b: float) -> bool:
        return a < b if self.direction == "min" else a > b


# --------------------------------------------------------------------------- registries
class Registry(dict):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def add(self, name: str, obj: Any) -> Any:
        if not name:
            raise ValueError(f"a {self.kind} needs a name")
        if name in self and self[name] is not obj:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self[name] = obj
        return obj

    def get_or_fail(self, name: str) -> Any:
        load_all()
        if name not in self:
            raise UnknownNameError(f"unknown {self.kind} {name!r}", valid=sorted(self), what=self.kind)
        return self[name]


SUITES = Registry("suite")
DATASETS = Registry("dataset")
DEGRADATIONS = Registry("degradation")
METHODS = Registry("method")
METRICS = Registry("metric")


def register_method(cls):
    METHODS.add(cls.name, cls)
    return cls


def register_dataset(cls):
    DATASETS.add(cls.name, cls)
    return cls


def register_degradation(cls):
    DEGRADATIONS.add(cls.name, cls)
    return cls


def register_metric(metric: Metric) -> Metric:
    METRICS.add(metric.name, metric)
    return metric


def register_suite(suite):
    SUITES.add(suite.name, suite)
    return suite


_LOADED = False
#: modules that failed to import: name -> error (their components are unavailable)
LOAD_ERRORS: dict[str, str] = {}


def load_all() -> None:
    """Import every module of the component packages (so registration happens).

    A module that fails to import is reported on stderr and skipped, so one broken
    component does not take the whole harness down; the contract tests fail on it.
    """
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import sys
    for pkg_name in ("bench.metrics", "bench.datasets", "bench.methods", "bench.suites"):
        pkg = importlib.import_module(pkg_name)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=pkg_name + ".",
                                          onerror=lambda name: LOAD_ERRORS.setdefault(name, "import failed")):
            if info.name in LOAD_ERRORS:
                continue
            try:
                importlib.import_module(info.name)
            except Exception as e:  # noqa: BLE001 - reported, and fatal in the tests
                LOAD_ERRORS[info.name] = f"{type(e).__name__}: {e}"
                print(f"warning: {info.name} failed to import ({LOAD_ERRORS[info.name]}); "
                      f"its components are unavailable", file=sys.stderr)


def methods_of(suite: str) -> list[type[Method]]:
    load_all()
    return [m for m in METHODS.values() if m.suite == suite]


def datasets_of(suite: str) -> list[type[Dataset]]:
    load_all()
    return [d for d in DATASETS.values() if d.suite == suite]
