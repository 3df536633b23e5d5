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


class SelectorError(BenchError):
    """A malformed selector such as ``fista[n_iter=]`` (exit 2)."""

    exit_code = 2


class DataError(BenchError):
    """A missing, corrupt or malformed data file; names the file and how to fix it."""

    exit_code = 1


class CheckpointError(BenchError):
    """A checkpoint that is missing, truncated, or belongs to another method/instance."""

    exit_code = 1
