"""Cells of a grid: (dataset, degradation, method, device, seed, protocol), each with a
stable key."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from bench import fingerprint
from bench import registry as R
from bench.errors import UnknownNameError
from bench.selectors import expand, parse_selector
from bench.store import dumps


def derive_seed(*parts: Any) -> int:
    """A seed from hashing its parts (never global state): sha256(base, names...)."""
    h = hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()
    return int(h[:8], 16)


@dataclass(frozen=True)
class Cell:
    suite: str
    dataset: str
    dataset_params: tuple
    degradation: str
    degradation_params: tuple
    method: str
    method_params: tuple
    device: str
    seed: int  # base seed of the run
    #: fingerprint of the code and weights that shape the cell's numbers (the method's,
    #: dataset's, degradation's, suite's and metrics' modules with their project imports, and
    #: the checkpoints read): :func:`bench.fingerprint.cell_fingerprint`; part of the key
    source_hash: str = field(default="", compare=False)
    #: the suite's scoring protocol the cell runs under (a name of ``Suite.protocols``; ""
    #: for a suite without protocols). Part of the key only when it is not the suite's
    #: default protocol, so that the keys of default-protocol cells are those of the code
    #: before protocols existed (same payload)
    protocol: str = ""
    #: the identity of the data files the dataset reads (:func:`bench.data_identity.dataset_identity`:
    #: a digest of their paths under the data root and their bytes); "" for a generated
    #: dataset, whose key is then that of the code before data identities existed
    data_hash: str = field(default="", compare=False)

    @property
    def dparams(self) -> dict[str, Any]:
        return dict(self.dataset_params)

    @property
    def gparams(self) -> dict[str, Any]:
        return dict(self.degradation_params)

    @property
    def mparams(self) -> dict[str, Any]:
        return dict(self.method_params)

    def dataset_label(self) -> str:
        return R.DATASETS[self.dataset].label(self.dparams)

    def degradation_label(self) -> str:
        return R.DEGRADATIONS[self.degradation].label(self.gparams)

    def method_label(self) -> str:
        return R.METHODS[self.method].label(self.mparams)

    def sample_set(self) -> str:
        return R.DATASETS[self.dataset](**self.dparams).sample_set_id()

    def degradation_seed(self) -> int:
        # the same noisy observations for every method of a (dataset, degradation)
        return derive_seed(self.seed, self.suite, self.sample_set(), self.degradation_label())

    def method_seed(self) -> int:
        return derive_seed(self.seed, self.suite, self.sample_set(), self.degradation_label(),
                           self.method_label(), self.device)

    @property
    def key(self) -> str:
        payload = {
            "suite": self.suite,
            "dataset": [self.dataset, self.dparams],
            "sample_set": self.sample_set(),
            "degradation": [self.degradation, self.gparams],
            "method": [self.method, self.mparams],
            "device": self.device,
            "seed": self.seed,
            "source": self.source_hash,
        }
        if protocol_mark(self.suite, self.protocol):
            payload["protocol"] = self.protocol
        if self.data_hash:
            payload["data"] = self.data_hash
        return hashlib.sha256(dumps(payload).encode()).hexdigest()[:32]

    def describe(self) -> str:
        mark = protocol_mark(self.suite, self.protocol)
        return (f"{self.dataset_label()} | {self.degradation_label()} | {self.method_label()} | {self.device}"
                + (f" | {mark}" if mark else ""))


def protocol_mark(suite: str, protocol: str | None) -> str:
    """``protocol=NAME`` for a protocol that is not the suite's default (what a cell's key,
    description and ``bench check`` label add), else "" (the default, or no protocol)."""
    if not protocol:
        return ""
    s = R.SUITES.get(suite)
    return "" if s is not None and protocol == s.default_protocol else f"protocol={protocol}"


def resolve_protocols(suite: str, protocols) -> list[str]:
    """The protocols a grid runs under: ``protocols`` (names, checked against the suite's) or,
    when none are given, the suite's default ("" for a suite without protocols). A suite
    without protocols refuses any name, and an unknown name lists the valid ones (exit 2)."""
    s = R.SUITES.get_or_fail(suite)
    names = list(dict.fromkeys(protocols or ()))
    if not names:
        return [s.default_protocol or ""]
    if not s.protocols:
        with_protocols = sorted(n for n, x in R.SUITES.items() if x.protocols)
        raise UnknownNameError(f"suite {suite!r} has no scoring protocols, so --protocol does not apply to it "
                               f"(suites with protocols: {', '.join(with_protocols) or 'none'})",
                               valid=(), what="protocol")
    for n in names:
        if n not in s.protocols:
            raise UnknownNameError(f"unknown protocol {n!r} for suite {suite!r}", valid=s.protocols, what="protocol")
    return names


def _full(cls, params: dict[str, Any]) -> tuple:
    obj = cls(**params)  # validates parameter names
    return tuple(sorted(obj.params.items(), key=lambda kv: kv[0]))


def _freeze(params: tuple) -> tuple:
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in params)


def resolve(selectors, registry: R.Registry, suite: str, kind: str) -> list[tuple[str, tuple]]:
    """Selectors -> [(name, full params)], checking names against the suite's components."""
    out = []
    valid = sorted(n for n, c in registry.items() if c.belongs_to(suite))
    for sel in selectors:
        name, params = parse_selector(sel)
        if name not in valid:
            raise UnknownNameError(f"unknown {kind} {name!r} for suite {suite!r}", valid=valid, what=kind)
        cls = registry[name]
        for p in expand(params):
            out.append((name, _freeze(_full(cls, p))))
    return out


def build_cells(suite: str, datasets, degradations, methods, devices, seed: int, protocols=None,
                data_root: str | None = None) -> list[Cell]:
    """The cells of a grid: datasets x degradations x methods x devices x ``protocols``
    (names of the suite's protocols; None or empty: its default protocol). Each cell's key
    holds the identity of the files its dataset reads under ``data_root`` (None: the
    default data root, :func:`bench.paths.data_root`), so that a row stored from other data
    is never reused (:mod:`bench.data_identity`)."""
    from bench import data_identity, paths

    R.load_all()
    data_root = paths.data_root(data_root)
    protos = resolve_protocols(suite, protocols)
    ds = resolve(datasets, R.DATASETS, suite, "dataset")
    dg = resolve(degradations, R.DEGRADATIONS, suite, "degradation")
    ms = resolve(methods, R.METHODS, suite, "method")
    cells = []
    hashes = {}
    data_ids = {(dn, dp): data_identity.dataset_identity(R.DATASETS[dn](**dict(dp)), data_root) for dn, dp in ds}
    suite_mods = fingerprint.suite_modules(R.SUITES.get_or_fail(suite),
                                           [m for m in R.METRICS.values() if m.suite == suite])
    for (dn, dp) in ds:
        for (gn, gp) in dg:
            for (mn, mp) in ms:
                if (dn, gn, mn, mp) not in hashes:
                    hashes[dn, gn, mn, mp] = fingerprint.cell_fingerprint(
                        suite_mods, R.DATASETS[dn], R.DEGRADATIONS[gn], R.METHODS[mn], dict(mp))
                for proto in protos:
                    for dev in devices:
                        cells.append(Cell(suite, dn, dp, gn, gp, mn, mp, dev, seed, hashes[dn, gn, mn, mp],
                                          protocol=proto, data_hash=data_ids[dn, dp]))
    # de-duplicate (a selector repeated) keeping order
    seen, unique = set(), []
    for c in cells:
        if c.key not in seen:
            seen.add(c.key)
            unique.append(c)
    return unique

