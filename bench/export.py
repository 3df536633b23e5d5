"""``python -m bench export``: the store as one tidy table, one row per (cell, metric).

For users who draw their own plots: every finished cell of a suite becomes one row per metric
it scored, with what identifies the cell (suite, dataset and its parameters, the samples,
degradation and its parameters, method label, name, family and parameters, device,
protocol, seed, key), the metric (name, unit, direction, value), the timing (median of the
timed repeats, every repeat, warm-up, method parameters) and the provenance (commit, Python
/ torch / NumPy versions, CPU model, device name, CUDA, host, threads, when it was stored),
with where a learned method's weights came from (source, name, what it was trained on,
checkpoint, training recipe and steps). Values are the store's, unrounded: the reports'
tables print the same numbers rounded.

Formats: ``csv`` (parameters as JSON text), ``parquet`` (pyarrow; the ``dist`` extra) and
``json`` (a list of records). Nested values (parameters, versions, every repeat's time) are
JSON text in every format, so that the three hold the same table.

Non-finite values (an NMSE of -inf dB when a method recovers a signal exactly, say) follow
each format's rules: CSV writes ``inf``, ``-inf`` and ``nan`` (pandas and NumPy read them
back), Parquet stores the IEEE values, and JSON, which has no such numbers, writes ``null``
with the value's name in the record's extra column ``value_nonfinite`` (``"inf"``,
``"-inf"`` or ``"nan"``; ``null`` for a finite value); other non-finite floats of a JSON
record are ``null``.

The store is opened read-only; the output is written to a temporary file and renamed over
``--out``, which may be neither the store nor inside its artifact folders (:mod:`bench.outputs`).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
from typing import Any

from bench.errors import BenchError

FORMATS = ("csv", "parquet", "json")

#: the columns, in order
COLUMNS = (
    "suite", "dataset", "dataset_params", "sample_set", "n_samples", "degradation", "degradation_params",
    "method_label", "method", "family", "method_params", "device", "protocol", "seed",
    "weights_source", "weights_name", "weights_trained_on", "checkpoint", "training_recipe", "training_steps",
    "metric", "value", "unit", "direction",
    "time_s", "times_s", "warmup_s", "parameter_count",
    "commit", "python", "torch", "numpy", "versions", "cpu_model", "device_name", "cuda", "hostname", "threads",
    "created_at", "key",
)


def _text(v: Any) -> str | None:
    if v is None:
        return None
    return json.dumps(v, sort_keys=True, default=str)


def tidy_frame(frame, suite: str | None = None):
    """The tidy table of a store's frame (:meth:`bench.store.Store.frame`)."""
    import pandas as pd

    from bench import registry as R
    R.load_all()
    rows = []
    for r in frame.to_dict("records"):
        prov = r.get("provenance") or {}
        versions = prov.get("versions") or {}
        extras = r.get("extras") or {}
        w = extras.get("weights") or {}
        tr = extras.get("training") or {}
        created = r.get("created_at")
        base = {
            "suite": r["suite"], "dataset": r["dataset"], "dataset_params": _text(r.get("dataset_params")),
            "sample_set": r.get("sample_set"), "n_samples": r.get("n_samples"),
            "degradation": r["degradation"], "degradation_params": _text(r.get("degradation_params")),
            "method_label": r["method_label"], "method": r["method"], "family": r.get("family"),
            "method_params": _text(r.get("method_params")), "device": r["device"], "protocol": r.get("protocol"),
            "seed": r.get("seed"),
            "weights_source": w.get("source") if isinstance(w, dict) else None,
            "weights_name": w.get("name") if isinstance(w, dict) else None,
            "weights_trained_on": w.get("trained_on") if isinstance(w, dict) else None,
            "checkpoint": extras.get("checkpoint"),
            "training_recipe": tr.get("recipe") if isinstance(tr, dict) else None,
            "training_steps": tr.get("steps") if isinstance(tr, dict) else None,
            "time_s": r.get("time_s"), "times_s": _text(r.get("times_s")), "warmup_s": r.get("warmup_s"),
            "parameter_count": r.get("parameter_count"),
            "commit": prov.get("commit"), "python": versions.get("python"), "torch": versions.get("torch"),
            "numpy": versions.get("numpy"), "versions": _text(versions) if versions else None,
            "cpu_model": prov.get("cpu_model"), "device_name": prov.get("device_name"), "cuda": prov.get("cuda"),
            "hostname": prov.get("hostname"), "threads": r.get("threads"),
            "created_at": (_dt.datetime.fromtimestamp(created, _dt.timezone.utc).isoformat(timespec="seconds")
                           if created is not None else None),
            "key": r["key"],
        }
        for name, value in sorted((r.get("metrics") or {}).items()):
            mt = R.METRICS.get(name)
            rows.append({**base, "metric": name, "value": None if value is None else float(value),
                         "unit": getattr(mt, "unit", None), "direction": getattr(mt, "direction", None)})
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    for c in ("n_samples", "seed", "parameter_count", "threads", "training_steps"):
        df[c] = df[c].astype("Int64")
    for c in ("value", "time_s", "warmup_s"):
        df[c] = df[c].astype("float64")
    return df


def export(store_path: str, suite: str, fmt: str = "csv", out: str | None = None) -> tuple[str, int]:
    """Write the tidy table of ``suite`` from the store at ``store_path``; (path, rows)."""
    from bench import registry as R
    from bench.outputs import atomic, check_out
    from bench.store import Store, check_store_path

    R.SUITES.get_or_fail(suite)
    if fmt not in FORMATS:
        raise BenchError(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")
    check_store_path(store_path)
    if not os.path.exists(store_path):
        raise BenchError(f"no result store at {store_path}: run `python -m bench run --suite {suite}` first "
                         f"or pass --results")
    out = out or os.path.join("reports", f"{suite}_tidy.{fmt}")
    check_out(out, store_path)
    store = Store(store_path, readonly=True)
    try:
        frame = store.frame(suite)
    finally:
        store.close()
    if frame.empty:
        raise BenchError(f"the store {store_path} has no finished cells of suite {suite!r}")
    df = tidy_frame(frame, suite)
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise BenchError("--format parquet needs pyarrow: pip install -e \".[dist]\" (or pip install pyarrow)"
                             ) from None
    with atomic(out) as tmp:  # a crash never leaves half a file, nor harms an older one
        if fmt == "csv":
            df.to_csv(tmp, index=False)
        elif fmt == "json":
            # not DataFrame.to_json: it keeps 10 significant digits by default, 15 at most; json
            # writes each float's shortest exact repr, so the file reads back to the stored value
            with open(tmp, "w") as f:
                json.dump(json_records(df), f, indent=1, allow_nan=False)
        else:
            df.to_parquet(tmp, index=False)
    return out, len(df)


def _nonfinite(v: Any) -> str | None:
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return None


def json_records(df) -> list[dict]:
    """The tidy table as JSON-safe records: a non-finite ``value`` is ``null`` with its name
    in ``value_nonfinite``; other non-finite floats are ``null``."""
    records = df.astype(object).where(df.notna(), None).to_dict("records")
    for r in records:
        r["value_nonfinite"] = _nonfinite(r.get("value"))
        for k, v in r.items():
            if _nonfinite(v) is not None:
                r[k] = None
    return records
