"""Errors the command line turns into readable messages and exit codes."""
from __future__ import annotations


class BenchError(Exception):
    """A user-facing error; ``exit_code`` is what the command line exits with."""

    exit_code = 1


class UnknownNameError(BenchError):
    """An unknown suite, dataset, degradation, method, metric or parameter (exit 2)."""

    exit_code = 2

    def __init__(self, message: str, valid=(), what: str = "name"):
        self.valid = list(valid)
        self.what = what
        listing = ", ".join(self.valid) if self.valid else "(none)"
        super().__init__(f"{message}; valid {what}s: {listing}")


class BadParameterError(BenchError):
    """A parameter value outside what the component declares, e.g. ``fista[n_iter=-5]``
    (exit 2): names the component, the parameter, the value and what is allowed."""

    exit_code = 2

    def __init__(self, component: str, parameter: str, value, allowed: str, shown: str | None = None):
        self.component, self.parameter, self.value, self.allowed = component, parameter, value, allowed
        who = f"{component}: " if component else ""
        text = shown if shown is not None else repr(value)
        super().__init__(f"{who}parameter {parameter}={text} is not allowed; {parameter} must be {allowed}")


class SelectorError(BenchError):
    """A malformed selector such as ``fista[n_iter=]`` (exit 2)."""

    exit_code = 2


class DataError(BenchError):
    """A missing, corrupt or malformed data file; names the file and how to fix it."""

    exit_code = 1


class CheckpointError(BenchError):
    """A checkpoint that is missing, truncated, or belongs to another method/instance."""

    exit_code = 1


class StoreError(BenchError):
    """A result store that cannot be used as asked: not a SQLite file, a folder, on a
    read-only file or folder, or locked by another process for too long (exit 1; a
    ``--results`` value that is no file path at all exits 2). Names the path and what to do."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None):
        if exit_code is not None:
            self.exit_code = exit_code
        super().__init__(message)


class OutputError(BenchError):
    """An output path (``--out`` of ``report`` or ``export``) that cannot be written, or that
    would overwrite the result store or its artifacts (exit 2)."""

    exit_code = 2
