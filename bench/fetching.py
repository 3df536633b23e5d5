"""Fetch on first use: before ``bench run`` starts its cells, the data sets and published
weights files they need (:mod:`bench.data`'s manifest items) that are absent are downloaded
with the same checked path as ``bench data fetch`` (pooch; SHA-256 verified, a file moved
into place only when it matches; a progress bar on a terminal; one line per item saying what
was fetched and where).

``--offline`` or ``$BENCH_OFFLINE=1`` forbids fetching: the cells that need an absent file
are left out, and the run prints one line naming the ``bench data fetch`` command that gets
them all. An item that cannot be fetched (the server unreachable, a hash that does not match,
no direct download) fails only the cells that need it, each with the reason; the run goes on.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from bench import registry as R

OFFLINE_ENV = "BENCH_OFFLINE"


def offline_requested() -> bool:
    """``$BENCH_OFFLINE`` set to 1 / true / yes / on."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class FetchOutcome:
    reasons: dict[str, str] = field(default_factory=dict)   # cell key -> why it is left out
    failed: list = field(default_factory=list)              # (cell, reason): a fetch that failed
    fetched: list[str] = field(default_factory=list)        # the items downloaded


def _dataset_names(name: str, params: dict) -> list[str]:
    """A registered data set and the data sets it reads (a split made of other data sets)."""
    if name == "hsi_split":      # the named split of the shipped cubes reads its members' files
        from bench.datasets.hsi import SPLITS
        split = str({**R.DATASETS[name].parameters, **params}["split"])
        return [n for member in dict.fromkeys(d for d, _ in SPLITS[split]) for n in _dataset_names(member, {})]
    return [name]


def needed_items(cell, every: dict | None = None):
    """The manifest items (:func:`bench.data.items`, or ``every``: those by name) a cell
    reads: the data sets whose ``uses`` names its data set (or a member of it), and its
    published weights file."""
    from bench import data
    every = every if every is not None else {i.name: i for i in data.items()}
    from bench.data_manifest import DATASETS
    names = set(_dataset_names(cell.dataset, cell.dparams)) if R.DATASETS[cell.dataset].needs_data else set()
    out = [every[d.name] for d in DATASETS if d.uses and d.uses.split()[0] in names]
    ckpt = str(cell.mparams.get("checkpoint", ""))
    if ckpt.startswith("published:"):
        from bench import weights as W
        try:
            entry = W.resolve(cell.suite, cell.method, ckpt).entry
        except Exception:  # noqa: BLE001 - an unknown name is the method's own error, in its cell
            entry = None
        if entry is not None and f"{entry.method}:{entry.name}" in every:
            out.append(every[f"{entry.method}:{entry.name}"])
    return out


def _absent(item, data_root, weights_root) -> bool:
    from bench.data import root_of
    root = root_of(item, data_root, weights_root)
    return any(not os.path.isfile(os.path.join(root, p)) for p, _, _, _ in item.files)


def fetch_for_cells(cells, data_root: str | None, weights_root: str | None, offline: bool,
                    mirror: str | None = None, echo=None) -> FetchOutcome:
    """Fetch what ``cells`` need and lack (see the module's docstring); what to leave out
    or fail."""
    from bench import data
    echo = echo or (lambda m: print(m, file=sys.stderr))
    out = FetchOutcome()
    every = {i.name: i for i in data.items()}
    absent = {}
    need = {}
    for c in cells:
        items = needed_items(c, every)
        for i in items:
            if i.name not in absent:
                absent[i.name] = _absent(i, data_root, weights_root)
        need[c.key] = [i for i in items if absent[i.name]]
    missing = {i.name: i for items in need.values() for i in items}
    if not missing:
        return out
    if offline:
        names = " ".join(sorted(missing))
        for c in cells:
            if need[c.key]:
                out.reasons[c.key] = (c.method_label() + ": data or weights not present and fetching is off "
                                      f"(--offline / ${OFFLINE_ENV}=1); get them with `{data.FETCH} {names}`")
        return out
    errors: dict[str, str] = {}
    for name, item in sorted(missing.items()):
        if item.manual and not (mirror or os.environ.get("BENCH_MIRROR")):
            errors[name] = f"{name} cannot be fetched: no direct download. {item.manual}"
            continue
        root = data.root_of(item, data_root, weights_root)
        echo(f"fetching {name} ({data._mib(item.size)}, {len(item.files)} file(s)) into {root}")
        lines: list[str] = []
        bad = data.fetch([name], data_root, weights_root, mirror, echo=lambda m: (lines.append(m), echo(m)),
                         progress=sys.stderr.isatty())
        if bad:
            first = lines[1].strip() if len(lines) > 1 else lines[-1]
            more = sum(1 for s in lines[2:] if s.startswith("    ") and not s.strip().startswith("..."))
            errors[name] = f"fetching {name} failed: {first[:300]}" + (f" (and {more} more file(s))" if more else "")
        else:
            out.fetched.append(name)
    for c in cells:
        why = [errors[i.name] for i in need[c.key] if i.name in errors]
        if why:
            out.failed.append((c, "; ".join(why)))
    return out
