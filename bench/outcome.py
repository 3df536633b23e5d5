"""What the runner and its executors share, in a module that imports neither.

:func:`bench.runner.run_grid` runs the cells itself (this process, or a pool of worker
processes) or hands them to an :class:`Executor` that the caller chose (``bench run
--executor dask`` passes :class:`bench.dask_executor.DaskExecutor`): the runner never
imports an executor, and an executor reads the runner's cell execution from
:mod:`bench.runner` without the runner reading it back.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol


@dataclass
class CellOutcome:
    key: str
    label: str
    status: str  # ok / failed / skipped
    error: str = ""
    method_time_s: float = 0.0  # time spent inside the method (warm-up, curves, repeats)
    wall_s: float = 0.0


class Executor(Protocol):
    """Runs ``todo`` (cells not yet in ``store``) somewhere, stores each result as it comes
    back (:func:`bench.runner.store_result`) and hands its :class:`CellOutcome` to
    ``account`` (progress and summary); ``bar`` is the progress bar (``bar.write`` prints
    above it), ``timings`` (a list or None) collects worker-side times."""

    def __call__(self, todo: list, store: Any, opts: Any, jobs: int, account: Callable[[CellOutcome], None],
                 bar: Any, timings: list | None) -> None: ...
