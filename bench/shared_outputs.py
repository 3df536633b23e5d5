"""One method output for the cells that differ only in their scoring protocol.

A suite with several scoring protocols (istd: BasicIRSTD at the images' own size, the RPCANet
authors' code at 256x256) builds one task per protocol. Where the protocols hand a method the
same inputs (NUDT-SIRST's images are already 256x256), the method's output is the same too:
its seed does not depend on the protocol (:meth:`bench.grid.Cell.method_seed`), nor may its
output (:attr:`bench.registry.Method.share_output`). The runner then runs the method once
and scores that output under each protocol: the cells of one :func:`share_key` run one after
the other in one process (:func:`group_cells`), the first stores its output here, and a
later one whose inputs, method seed and :meth:`~bench.registry.Method.output_identity` are
equal takes it instead of running the method.

The row of a cell that took another's output records the times of the run that made it
(the same method on the same inputs), with ``extras.output_shared`` naming that cell's key
and protocol, so that every row says what was run where; the run's own summary counts the
seconds actually spent. Inputs are compared by a SHA-256 of every tensor in them (shape,
dtype and bytes), never by name. Cells whose method draws curves (stepped methods) are not
shared: their curves are computed against each protocol's reference.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

import torch


def share_key(cell) -> str:
    """The key of ``cell`` under its suite's default protocol: equal for the cells that
    differ only in their protocol."""
    return dataclasses.replace(cell, protocol="").key


def group_cells(cells: list) -> list[list]:
    """``cells`` in groups of equal :func:`share_key` (several protocols of one method, data
    and noise), each group where its first cell was, its cells in their order."""
    groups: dict[str, list] = {}
    for c in cells:
        groups.setdefault(share_key(c), []).append(c)
    return list(groups.values())


def inputs_digest(inputs: Any) -> str:
    """SHA-256 of every tensor and array in ``inputs`` (a dataclass, tuple, list or dict of
    them, nested), with each one's shape and dtype, in order; other values by their repr."""
    h = hashlib.sha256()

    def feed(x):
        if isinstance(x, torch.Tensor):
            t = x.detach().to("cpu").contiguous()
            h.update(f"T{tuple(t.shape)}{t.dtype};".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):
            h.update(f"D{type(x).__name__};".encode())
            for f in dataclasses.fields(x):
                feed(getattr(x, f.name))
        elif isinstance(x, (tuple, list)):
            h.update(f"L{len(x)};".encode())
            for v in x:
                feed(v)
        elif isinstance(x, dict):
            h.update(f"M{len(x)};".encode())
            for k in sorted(x, key=str):
                h.update(f"{k}=".encode())
                feed(x[k])
        elif hasattr(x, "__array__"):
            feed(torch.as_tensor(x))
        else:
            h.update(f"V{x!r};".encode())
    feed(inputs)
    return h.hexdigest()


@dataclass
class SharedRun:
    """What a cell's method run produced, for the cells of its group that take it."""

    key: str                 # the cell that ran the method
    protocol: str
    output: Any
    times: list[float]
    warmup_s: float | None
    extras: dict[str, Any]   # the method's row extras after that run
    reused: float            # the method's reused seconds (:meth:`Method.reused_seconds`)


class OutputCache:
    """The last shared run of this process, under (share key, method seed, method identity,
    inputs digest). One entry: the cells of a group run one after the other, and a later
    group replaces it (:meth:`clear` ends a group)."""

    def __init__(self) -> None:
        self._entry: tuple[tuple, SharedRun] | None = None
        self.enabled = False

    def lookup(self, ident: tuple) -> SharedRun | None:
        if not self.enabled or self._entry is None:
            return None
        return self._entry[1] if self._entry[0] == ident else None

    def put(self, ident: tuple, run: SharedRun) -> None:
        if self.enabled:
            self._entry = (ident, run)

    def clear(self) -> None:
        self._entry = None
        self.enabled = False


#: this process's cache (the runner's; a worker process has its own)
CACHE = OutputCache()
