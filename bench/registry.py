"""Registries of suites, datasets, degradations, methods and metrics.

A component is a small class with a ``name``, a ``parameters`` dict of defaults and a
few short methods (the benchopt shape). Registering it makes it visible to the command
line (``bench list``), to the grid and to the generated contract tests::

    @register_method
    class Fista(Method):
        name = "fista"
        suite = "sparse"
        parameters = {"n_iter": 1000, "lam": 0.4}
        def run(self, inputs): ...

Modules under ``bench.methods``, ``bench.datasets``, ``bench.suites`` and
``bench.metrics`` are imported by :func:`load_all`, so a new component is one file.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator

from bench.errors import UnknownNameError


# --------------------------------------------------------------------------- components
class Component:
    """Base of datasets, degradations and methods: a name and default parameters."""

    name: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Any]] = {}
    description: ClassVar[str] = ""

    def __init__(self, **params: Any):
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            raise UnknownNameError(
                f"{self.name}: unknown parameter(s) {', '.join(unknown)}",
                valid=sorted(self.parameters),
                what="parameter",
            )
        self.params: dict[str, Any] = {**self.parameters, **params}

    @classmethod
    def label(cls, params: dict[str, Any]) -> str:
        """``name`` or ``name[k=v,...]`` listing only parameters that differ from defaults."""
        changed = {k: v for k, v in sorted(params.items()) if cls.parameters.get(k, object()) != v}
        if not changed:
            return cls.name
        return f"{cls.name}[{','.join(f'{k}={format_value(v)}' for k, v in changed.items())}]"

    @classmethod
    def source_hash(cls) -> str:
        """Hash of the source of the module that defines the component (and its bases
        defined in the project), so that editing it invalidates cached results."""
        h = hashlib.sha256()
        seen = set()
        for klass in cls.__mro__:
            mod = inspect.getmodule(klass)
            if mod is None or mod.__name__ in seen or not mod.__name__.startswith("bench."):
                continue
            if mod.__name__ == "bench.registry":
                continue
            seen.add(mod.__name__)
            try:
                h.update(inspect.getsource(mod).encode())
            except (OSError, TypeError):
                h.update(mod.__name__.encode())
        for extra in getattr(cls, "source_dependencies", ()):
            mod = importlib.import_module(extra)
            h.update(inspect.getsource(mod).encode())
        return h.hexdigest()[:16]


def format_value(v: Any) -> str:
    if isinstance(v, float):
        if v == float("inf"):
            return "inf"
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "(" + ",".join(format_value(x) for x in v) + ")"
    return str(v)


class Dataset(Component):
    """A set of samples of one suite, loaded from the data root or generated from a seed.

    ``load`` returns whatever the suite's ``make_task`` expects (vectors, images with
    masks, spectral cubes). A dataset never picks a device.
    """

    suite: ClassVar[str] = ""
    needs_data: ClassVar[bool] = False  # True when it reads files under the data root

    def load(self, data_root: str | None) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def sample_set_id(self) -> str:
        """Identifies the samples (which instance, split, crop); part of the cell key."""
        return self.label(self.params)


class Degradation(Component):
    """Turns clean measurements into observed ones, seeded per cell."""

    suites: ClassVar[tuple[str, ...]] = ()


class Method(Component):
    """A solver or a network. ``run`` is timed; ``setup`` (loading a checkpoint, say) is not.

    ``family`` is ``classical`` or ``learned``; ``devices`` lists where it can run.
    Methods that can be stepped implement ``iterates`` (a generator of estimates after
    each iteration, the initial estimate first) so that the suite can draw curves.
    """

    suite: ClassVar[str] = ""
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    source_dependencies: ClassVar[tuple[str, ...]] = ()

    def setup(self, context: "MethodContext") -> None:
        """Called once per cell before timing: device, seed, problem-level information."""
        self.context = context

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

    def row_extras(self) -> dict[str, Any]:
        """Stored in the row's ``extras`` after a run (checkpoint, training cost, ...)."""
        return {}


@dataclass(frozen=True)
class MethodContext:
    device: str
    seed: int
    data_root: str | None = None
    problem_id: str = ""  # hash of the problem instance (checkpoints belong to one)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    """A scalar quality measure.

    ``direction`` is ``min`` or ``max`` (which is better); ``tolerance`` is the absolute
    drift that ``bench check`` accepts against the committed baselines.
    """

    name: str
    suite: str
    direction: str
    unit: str
    definition: str
    tolerance: float
    fn: Callable[..., float] | None = None
    scope: str = "sample"  # "sample": mean over samples; "dataset": accumulated over the set

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
