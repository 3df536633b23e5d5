"""Typed result rows: :class:`CellResult` (one stored cell) and :class:`Extras` (the base
of each suite's typed extras; :class:`Record` for the JSON objects inside them).

Data flows runner -> :class:`CellResult` -> :meth:`bench.store.Store.put` -> SQLite ->
:meth:`bench.store.Store.frame` (the DataFrame the reports read) or
:meth:`bench.store.Store.results` (CellResults again). On disk nothing changed: a
CellResult is written to the same columns as the row dicts of earlier code
(:meth:`CellResult.to_row`), its extras as the same flat JSON object (field name -> value),
so old stores and new rows look alike and old rows read back as CellResults
(:meth:`CellResult.from_row`).

Why a module of its own, not :mod:`bench.store` nor :mod:`bench.suite`: suites declare
their extras type (a subclass of :class:`Extras`) and so import it; importing it from
:mod:`bench.store` would tie every suite module to the SQLite layer, and putting it in
:mod:`bench.suite` would make every edit of a row's shape change every cell key
(:mod:`bench.suite` is hashed into keys). The shape of a row changes no stored number, so
this module, like :mod:`bench.store`, is left out of cell keys
(:data:`bench.fingerprint.EXCLUDED`).

Rules of the JSON form of a :class:`Record` (extras and the objects inside them):

- a field whose value is None is not written (None means "not recorded"; readers use
  ``.get``, which gives None for a missing key either way);
- a key a stored object has that its type does not declare (a row of older or newer code,
  a method's new :meth:`~bench.registry.Method.row_extras` key) is kept in ``other`` and
  written back as it was, so reading and rewriting a row loses nothing;
- a field marked ``stored=False`` (:attr:`Extras.arrays`) is never written.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

#: the columns of the results table, in :data:`bench.store.SCHEMA` order
COLUMNS = ("key", "suite", "dataset", "dataset_params", "sample_set", "degradation", "degradation_params",
           "method", "method_label", "method_params", "family", "device", "seed", "source_hash", "status",
           "error", "metrics", "curves", "extras", "n_samples", "time_s", "times_s", "warmup_s",
           "parameter_count", "provenance", "created_at", "threads", "protocol")
#: the optional numeric columns (NULL in a failed row or an older store)
NUMERIC_COLUMNS = ("n_samples", "time_s", "warmup_s", "parameter_count", "created_at", "threads")


def nested(record_type: type["Record"]) -> Any:
    """A field whose value is a :class:`Record` of ``record_type`` (None when not recorded):
    read back from its JSON object with ``record_type.from_json``."""
    return field(default=None, metadata={"record": record_type})


def transient() -> Any:
    """A field handed from a suite to the runner and never stored (None by default)."""
    return field(default=None, compare=False, repr=False, metadata={"stored": False})


def _decode(f: dataclasses.Field, v: Any) -> Any:
    """A field's value from JSON: a nested record's object read into its type."""
    record = f.metadata.get("record")
    return record.from_json(v) if record is not None and isinstance(v, Mapping) else v


@dataclass(frozen=True, kw_only=True)
class Record:
    """A JSON object with typed fields (see the module docstring for its JSON form)."""

    #: keys of a stored object that the type does not declare, kept as they were
    other: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        clash = set(self.other) & set(self.field_names())
        if clash:
            raise ValueError(f"{type(self).__name__}: {', '.join(sorted(clash))} are fields, not 'other' keys")
        # JSON-shaped, so that a record reads back equal to what was stored: tuples as lists
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.metadata.get("stored", True) and not isinstance(v, Record):
                object.__setattr__(self, f.name, json_shaped(v))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The declared fields that its JSON object may hold (``other`` and transient fields
        left out)."""
        return tuple(f.name for f in dataclasses.fields(cls)
                     if f.name != "other" and f.metadata.get("stored", True))

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | None):
        """The record of a decoded JSON object (None: None); keys it does not declare go to
        ``other``, fields the object lacks stay None (or their default)."""
        if obj is None:
            return None
        if isinstance(obj, cls):
            return obj
        if not isinstance(obj, Mapping):
            raise TypeError(f"{cls.__name__}: expected a JSON object, got {type(obj).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "other"}
        kwargs, other = {}, {}
        for k, v in obj.items():
            f = fields.get(k)
            if f is None:
                other[k] = v
            else:
                kwargs[k] = _decode(f, v)
        return cls(**kwargs, other=other)

    def to_json(self) -> dict[str, Any]:
        """The JSON object (before :func:`bench.store.dumps`): declared fields that are not
        None, then the ``other`` keys."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "other" or not f.metadata.get("stored", True):
                continue
            v = getattr(self, f.name)
            if v is None:
                continue
            out[f.name] = v.to_json() if isinstance(v, Record) else v
        out.update(self.other)
        return out

    def merged(self, values: Mapping[str, Any] | None):
        """A copy with ``values`` laid over it (a declared name replaces its field, any other
        goes to ``other``), as ``{**old, **values}`` did on the row dicts of earlier code."""
        if not values:
            return self
        fields = {f.name: f for f in dataclasses.fields(self) if f.name != "other"}
        known = {k: _decode(fields[k], v) for k, v in values.items() if k in fields}
        other = {**self.other, **{k: v for k, v in values.items() if k not in fields}}
        return dataclasses.replace(self, **known, other=other)


@dataclass(frozen=True, kw_only=True)
class Extras(Record):
    """Base of a suite's typed extras (:attr:`bench.suite.Suite.extras_type`): what a row
    holds besides its metrics and curves. Its fields are those every suite may have; a
    suite subclasses it with its own documented fields. Values are JSON-shaped (lists,
    dicts, numbers, strings) so that a row reads back equal to what was stored."""

    #: the row's artifact file (:mod:`bench.artifacts`), relative to the store's folder;
    #: set by :func:`bench.artifacts.save` when the suite handed arrays
    artifact: str | None = None
    #: a learned method's checkpoint: its path relative to the repository, or
    #: ``"none (untrained)"`` (from :meth:`~bench.registry.Method.row_extras`)
    checkpoint: str | None = None
    #: a learned method's training as its checkpoint records it: recipe, steps, seconds,
    #: threads, ... (the keys depend on the suite's training job)
    training: dict[str, Any] | None = None
    #: the arrays a report's figure needs (name -> uint8 array), handed by ``score`` to the
    #: runner, which moves them to the artifact file (:func:`bench.artifacts.save`); never
    #: stored in the row
    arrays: dict[str, Any] | None = transient()


#: the columns stored as JSON text (:func:`dumps`, :func:`loads`)
JSON_COLUMNS = ("dataset_params", "degradation_params", "method_params", "metrics", "curves",
                "extras", "times_s", "provenance")


def json_default(o: Any):
    """JSON for NumPy/torch scalars and arrays (their value), anything else as its str."""
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def dumps(obj: Any) -> str:
    # NaN/inf are stored as strings so the JSON stays valid
    def fix(v):
        if isinstance(v, float) and not math.isfinite(v):
            return "inf" if v > 0 else ("-inf" if v < 0 else "nan")
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [fix(x) for x in v]
        return v
    return json.dumps(fix(obj), default=json_default, sort_keys=True)


def loads(text: str | None) -> Any:
    if text is None:
        return None
    def fix(v):
        if v in ("inf", "-inf", "nan"):
            return float(v)
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v
    return fix(json.loads(text))



def extras_type(suite: str | None) -> type[Extras]:
    """The extras type the suite ``suite`` declares (:class:`Extras` for a suite that is not
    registered, so that any store reads)."""
    if not suite:
        return Extras
    from bench import registry as R
    R.load_all()
    s = R.SUITES.get(suite)
    return s.extras_type if s is not None else Extras


def default_protocol(suite: str | None) -> str | None:
    """The protocol a row of ``suite`` stored before rows recorded theirs ran under: the
    suite's default protocol (None for a suite without protocols or not registered)."""
    if not suite:
        return None
    from bench import registry as R
    R.load_all()
    s = R.SUITES.get(suite)
    return s.default_protocol if s is not None else None


@dataclass(frozen=True)
class CellResult:
    """One stored cell: a row of the results table (:data:`bench.store.SCHEMA`), typed.

    The runner builds one per cell (:func:`bench.runner.execute`), :meth:`Store.put
    <bench.store.Store.put>` writes it and :meth:`Store.results
    <bench.store.Store.results>` reads it back (equal to what was put). ``extras`` is the
    suite's :class:`Extras` subclass (None for a failed cell)."""

    key: str                            # the cell's hash (bench.grid.Cell.key)
    suite: str
    dataset: str                        # label, e.g. gaussian_lasso or sirst[split=50_50]
    dataset_params: dict[str, Any]      # every parameter of the dataset
    sample_set: str                     # identifies the samples (instance, split, crop)
    degradation: str                    # label
    degradation_params: dict[str, Any]
    method: str                         # name
    method_label: str                   # name[non-default params]
    method_params: dict[str, Any]
    family: str                         # classical / learned / reference
    device: str                         # cpu / cuda
    seed: int
    source_hash: str                    # hash of the code and weights behind the cell
    status: str                         # ok / failed
    error: str | None = None            # why a failed cell failed
    metrics: dict[str, float] | None = None        # metric -> value over the whole set
    curves: dict[str, list[float]] | None = None   # curve metric -> value per iteration
    extras: Extras | None = None        # the suite's typed extras
    n_samples: int | None = None        # samples in the set
    time_s: float | None = None         # median of the timed repeats, whole sample set
    times_s: list[float] | None = None  # every timed repeat
    warmup_s: float | None = None       # the untimed warm-up (or curve pass)
    parameter_count: int | None = None  # learned parameters (None: classical)
    provenance: dict[str, Any] | None = None       # commit, versions, device name, threads, cpu
    created_at: float | None = None     # set by Store.put when None
    threads: int | None = None          # torch threads the cell ran with (None in older stores)
    #: the suite's scoring protocol (None for a suite without protocols); a row stored before
    #: rows recorded it reads as the suite's default protocol
    protocol: str | None = None

    def __post_init__(self):
        # JSON-shaped, so that a result reads back equal to what was put: tuples as lists
        # (a cell's parameters hold tuples: mpcm's scales=(3, 5, 7))
        for name in ("dataset_params", "degradation_params", "method_params", "metrics", "curves",
                     "times_s", "provenance"):
            object.__setattr__(self, name, json_shaped(getattr(self, name)))

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_row(self) -> dict[str, Any]:
        """The row's columns (the extras as their JSON object; JSON columns not yet encoded)."""
        row = {c: getattr(self, c) for c in COLUMNS}
        if isinstance(self.extras, Record):
            row["extras"] = self.extras.to_json()
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any], extras: type[Extras] | None = None) -> "CellResult":
        """A CellResult from a row: a stored one (JSON columns decoded or not; a row of
        :meth:`Store.frame <bench.store.Store.frame>` too) or a row dict of earlier code
        (extras a plain dict: read into the suite's extras type, or ``extras``). A key that
        is not a column raises TypeError."""
        if not isinstance(row, Mapping) and hasattr(row, "to_dict"):  # a frame's row (pandas Series)
            row = row.to_dict()
        unknown = sorted(set(row) - set(COLUMNS))
        if unknown:
            raise TypeError(f"not columns of a result row: {', '.join(unknown)}")
        values = {k: (loads(v) if k in JSON_COLUMNS and isinstance(v, str) else v) for k, v in row.items()}
        for k in NUMERIC_COLUMNS:  # NULL as a pandas row hands it (a frame's row): NaN
            if _is_nan(values.get(k)):
                values[k] = None
        e = values.get("extras")
        if e is not None and not isinstance(e, Extras):
            values["extras"] = (extras or extras_type(values.get("suite"))).from_json(e)
        for k in ("seed", "n_samples", "parameter_count", "threads"):
            if values.get(k) is not None:
                values[k] = int(values[k])  # numpy or pandas integers (a frame's row) as int
        if values.get("protocol") is None or _is_nan(values.get("protocol")):
            values["protocol"] = default_protocol(values.get("suite"))
        return cls(**values)


def json_shaped(v: Any) -> Any:
    """``v`` with every tuple (in lists and dict values too) a list, as it reads back from
    the store's JSON; other values as they are."""
    if isinstance(v, (tuple, list)):
        return [json_shaped(x) for x in v]
    if isinstance(v, dict):
        return {k: json_shaped(x) for k, x in v.items()}
    return v


def _is_nan(v: Any) -> bool:
    """A missing number as pandas hands it (NaN in a numeric column of NULLs)."""
    return isinstance(v, float) and v != v
