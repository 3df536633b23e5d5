"""What a suite is: a task protocol (how a dataset sample and a degradation become a
method's input and a reference), its metrics, its grids and its report.

Data flows one way: grid -> cells -> (dataset, degradation, method) -> metrics -> store
-> report. A method never reads files, a dataset never picks a device, a report never
computes a metric.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch


@dataclass(frozen=True)
class Task:
    """What one cell evaluates: the method's ``inputs`` and the ``reference`` to score
    against, for a whole sample set."""

    inputs: Any
    reference: Any
    n_samples: int
    problem_id: str = ""  # hash of the problem instance (learned methods check it)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GridSpec:
    """Selectors for each axis of a grid."""

    datasets: tuple[str, ...]
    degradations: tuple[str, ...]
    methods: tuple[str, ...]


class Suite:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    metrics: ClassVar[tuple[str, ...]] = ()
    grid: ClassVar[GridSpec]
    quick: ClassVar[GridSpec]
    smoke: ClassVar[GridSpec]
    #: curve name -> metric evaluated on every iterate of a method that can be stepped
    curve_metrics: ClassVar[tuple[str, ...]] = ()

    def make_task(self, data: Any, degradation: Any, seed: int, device: str) -> Task:
        raise NotImplementedError

    def validate_output(self, task: Task, output: Any) -> None:
        """Raise ValueError when the output has the wrong shape or is not finite."""
        check_finite_tensor(output, expected_shape=getattr(task.reference, "shape", None))

    def score(self, task: Task, output: Any) -> tuple[dict[str, float], dict[str, Any]]:
        """Metrics (name -> value) and extras (per-sample values, ...) for a whole set."""
        raise NotImplementedError

    def curve_point(self, task: Task, estimate: Any) -> dict[str, float]:
        """Curve metrics for one iterate (NMSE per iteration, ...)."""
        return {}

    def skip_reason(self, cell) -> str | None:
        """Why a cell of a grid cannot run here and is left out (shown as '-'), or None."""
        return None

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


def to_device(obj: Any, device: str) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(to_device(v, device) for v in obj)
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses
        return dataclasses.replace(obj, **{f: to_device(getattr(obj, f), device) for f in obj.__dataclass_fields__})
    return obj
