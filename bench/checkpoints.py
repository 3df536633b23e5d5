"""Checkpoints: encoding, decoding, saving, loading and sizing trained weights, and the
file hashes that tie stored results to the checkpoints they were computed with.

A checkpoint (:func:`save_checkpoint`, :func:`load_checkpoint`) is a NumPy ``.npz`` archive
of plain arrays plus one JSON metadata entry, read with ``allow_pickle=False``: loading can
never execute code. Large tensors may be stored as float16 differences from a reference
state the loader can rebuild (the initialisation, deterministic from the problem): float16,
which halves the size at a relative error of about 1e-4 of the *change*, not of the weight,
or int8/int7 with a scale per row, about a quarter of the size at 1/254 (int8) or 1/126
(int7) of each row's largest change. :func:`encode_within` picks the finest of several
delta encodings whose file fits a size limit (by default the project's 5 MiB per tracked
file, :data:`CHECKPOINT_MAX_BYTES`); the trainer (:mod:`bench.train`) records that choice.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from typing import Any

import numpy as np
import torch

from bench.errors import CheckpointError
from bench.results import json_default  # meta JSON, encoded as rows encode theirs

CHECKPOINT_FORMAT = "bench-checkpoint/1"

#: delta encodings: float16, or integers stored as int8 with one float32 scale per row and
#: this many levels either side of zero (int8: 127; int7: 63, for half a bit less entropy
#: per entry after compression at twice the rounding step)
DELTA_ENCODINGS = {"float16": None, "int8": 127, "int7": 63}


#: the largest checkpoint file a training writes by default: the project's limit for a
#: tracked file (shipped checkpoints live in the repository)
CHECKPOINT_MAX_BYTES = 5 * 2**20
#: room left in that limit for what the trainer adds to the metadata after choosing the
#: encoding (the validation of the stored state, the choice itself: a few hundred bytes)
META_SLACK_BYTES = 16 * 2**10


def encode_checkpoint(state: dict[str, torch.Tensor], meta: dict[str, Any],
                      reference: dict[str, torch.Tensor] | None = None,
                      delta_min_numel: int = 4096, delta_encoding: str = "float16"
                      ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays of a checkpoint (what :func:`save_checkpoint` writes) and its full metadata.

    Tensors with at least ``delta_min_numel`` entries that have a same-shaped entry in
    ``reference`` are stored as differences ``state - reference``: float16
    (``delta_encoding="float16"``, about 1e-4 of the change) or integers with one float32
    scale per row, stored as int8 (``"int8"``: symmetric rounding to 127 levels either side of
    zero of each row's largest change; ``"int7"``: 63 levels, a smaller compressed file at
    twice the step). Every other tensor is stored as float32 (or its integer dtype).
    """
    if delta_encoding not in DELTA_ENCODINGS:
        raise ValueError(f"delta_encoding {delta_encoding!r}: expected one of {sorted(DELTA_ENCODINGS)}")
    arrays: dict[str, np.ndarray] = {}
    encoding: dict[str, str] = {}
    for name, t in state.items():
        t = t.detach().cpu()
        ref = None if reference is None else reference.get(name)
        if (ref is not None and t.is_floating_point() and t.numel() >= delta_min_numel
                and tuple(ref.shape) == tuple(t.shape)):
            delta = (t.double() - ref.detach().cpu().double()).numpy()
            levels = DELTA_ENCODINGS[delta_encoding]
            if levels:
                rows = delta.reshape(delta.shape[0], -1) if delta.ndim > 1 else delta.reshape(1, -1)
                scale = np.abs(rows).max(axis=1) / levels
                q = np.rint(rows / np.where(scale > 0, scale, 1.0)[:, None])
                arrays["t/" + name] = q.astype(np.int8).reshape(delta.shape)
                arrays["s/" + name] = scale.astype(np.float32)
                encoding[name] = "int8-delta"
            else:
                arrays["t/" + name] = delta.astype(np.float16)
                encoding[name] = "float16-delta"
        elif t.is_floating_point():
            arrays["t/" + name] = t.float().numpy()
            encoding[name] = "float32"
        else:
            arrays["t/" + name] = t.numpy()
            encoding[name] = str(t.dtype).replace("torch.", "")
    meta = {**meta, "format": CHECKPOINT_FORMAT, "encoding": encoding,
            "shapes": {k: list(v.shape) for k, v in state.items()}}
    arrays["__meta__"] = meta_array(meta)
    return arrays, meta


def meta_array(meta: dict[str, Any]) -> np.ndarray:
    """The ``__meta__`` entry of a checkpoint: ``meta`` as JSON bytes."""
    blob = json.dumps(meta, sort_keys=True, default=json_default).encode()
    return np.frombuffer(blob, dtype=np.uint8)


def _savez(f, arrays: dict[str, np.ndarray]) -> None:
    np.savez_compressed(f, **arrays)


def checkpoint_nbytes(arrays: dict[str, np.ndarray]) -> int:
    """The size of the file :func:`write_checkpoint` makes of ``arrays`` (compressed in memory)."""
    buf = io.BytesIO()
    _savez(buf, arrays)
    return buf.tell()


def write_checkpoint(path: str, arrays: dict[str, np.ndarray]) -> str:
    """Write encoded arrays (from :func:`encode_checkpoint`) to ``path``, compressed and atomically."""
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        _savez(f, arrays)
    os.replace(tmp, path)
    return path


def save_checkpoint(path: str, state: dict[str, torch.Tensor], meta: dict[str, Any],
                    reference: dict[str, torch.Tensor] | None = None,
                    delta_min_numel: int = 4096, delta_encoding: str = "float16") -> str:
    """Write ``state`` (name -> tensor) and ``meta`` (JSON-serialisable) to ``path``, encoded
    as :func:`encode_checkpoint` says; the archive is compressed and written atomically."""
    arrays, _ = encode_checkpoint(state, meta, reference, delta_min_numel, delta_encoding)
    return write_checkpoint(path, arrays)


def encode_within(state: dict[str, torch.Tensor], meta: dict[str, Any],
                  reference: dict[str, torch.Tensor] | None, encodings: tuple[str, ...],
                  max_bytes: int | None) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
    """Encode with the first (finest) of ``encodings`` whose file fits ``max_bytes``.

    Returns the arrays, the full metadata and a record of the choice (``chosen``,
    ``max_bytes``, the size of every encoding tried, ``fits``); a file fits when it is at
    least ``META_SLACK_BYTES`` under ``max_bytes``. When none fits, the last
    (coarsest) is returned with ``fits`` False: the caller still writes it and says so, since
    a finished training is never thrown away. Without deltas to encode (no ``reference``)
    there is nothing to choose: the first encoding is used (its size still measured).
    """
    if not encodings:
        raise ValueError("no delta encoding to choose from")
    tried: dict[str, int] = {}
    for enc in encodings:
        arrays, full = encode_checkpoint(state, meta, reference, delta_encoding=enc)
        if max_bytes is None:
            return arrays, full, {"chosen": enc, "max_bytes": None, "bytes": {}, "fits": True}
        tried[enc] = checkpoint_nbytes(arrays)
        if reference is None or tried[enc] + META_SLACK_BYTES <= max_bytes:
            break
    return arrays, full, {"chosen": enc, "max_bytes": max_bytes, "bytes": tried,
                          "fits": tried[enc] + META_SLACK_BYTES <= max_bytes}


def read_checkpoint_meta(path: str) -> dict[str, Any]:
    """The metadata of a checkpoint (no tensors decoded); CheckpointError when unreadable."""
    return _open_checkpoint(path)[1]


def load_checkpoint(path: str, reference: dict[str, torch.Tensor] | None = None,
                    expect: dict[str, Any] | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; weights only, no pickle.

    ``expect`` maps metadata keys to required values (``{"method": "alista",
    "instance": "3f2a..."}``); a mismatch, a truncated or malformed file raises
    :class:`CheckpointError` naming the file and what to do.
    """
    arrays, meta = _open_checkpoint(path)
    for key, want in (expect or {}).items():
        have = meta.get(key)
        if have != want:
            raise CheckpointError(
                f"checkpoint {path} is for {key}={have!r}, not {key}={want!r}: "
                f"{meta.get('how_to_reproduce') and 'retrain it for this ' + key + ' (' + _retrain_hint(meta) + ')' or 'pass the checkpoint that belongs to it'}")
    try:
        state = decode_checkpoint(arrays, meta, reference)
    except (KeyError, ValueError, zipfile.BadZipFile, OSError, EOFError) as e:
        raise CheckpointError(f"checkpoint {path} is malformed ({type(e).__name__}: {e}); "
                              f"delete it and retrain ({_retrain_hint(meta)})") from None
    finally:
        arrays.close()
    return state, meta


def decode_checkpoint(arrays, meta: dict[str, Any],
                      reference: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The state stored in ``arrays`` (an opened archive, or what :func:`encode_checkpoint`
    returned) as its metadata describes it; KeyError/ValueError on anything malformed."""
    state: dict[str, torch.Tensor] = {}
    for name, enc in meta["encoding"].items():
        a = arrays["t/" + name]
        if list(a.shape) != list(meta["shapes"][name]):
            raise ValueError(f"tensor {name} has shape {list(a.shape)}, metadata says {meta['shapes'][name]}")
        t = torch.from_numpy(np.array(a))
        if enc in ("float16-delta", "int8-delta"):
            if reference is None or name not in reference:
                raise ValueError(f"tensor {name} is stored relative to the initialisation, which was not given")
            if enc == "int8-delta":
                if a.dtype != np.int8:
                    raise ValueError(f"tensor {name} is {a.dtype}, its encoding says int8")
                scale = torch.from_numpy(np.array(arrays["s/" + name], dtype=np.float64)).reshape(-1)
                n_rows = a.shape[0] if a.ndim > 1 else 1
                if scale.numel() != n_rows:
                    raise ValueError(f"tensor {name} has {scale.numel()} row scales for {n_rows} rows")
                t = (t.double().reshape(n_rows, -1) * scale[:, None]).reshape(a.shape)
            t = (reference[name].detach().cpu().double() + t.double()).to(reference[name].dtype)
        state[name] = t
    return state


def _retrain_hint(meta: dict) -> str:
    return meta.get("how_to_reproduce") or "python -m bench train ..."


def _open_checkpoint(path: str):
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        arrays = np.load(path, allow_pickle=False)
        meta = json.loads(bytes(arrays["__meta__"]).decode())
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
        # touch every member now so that a truncated archive fails here, not half-way
        for k in arrays.files:
            arrays[k]
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError, UnicodeDecodeError,
            json.JSONDecodeError) as e:
        raise CheckpointError(
            f"checkpoint {path} is truncated or not a checkpoint ({type(e).__name__}: {e}); "
            f"delete it and retrain it (its recipe's command is in the docs), or restore it "
            f"with `git checkout -- {path}`") from None
    return arrays, meta


#: what :func:`decoded_digest` hashes, first (a new layout gets a new tag, not new digests
#: under the old one)
DECODED_DIGEST_FORMAT = b"bench-decoded-state/1\n"


def decoded_digest(state: dict[str, Any]) -> str:
    """SHA-256 of decoded weights (name -> tensor or array): a canonical digest of what a
    network holds after loading a checkpoint, independent of how the file encodes it.

    Entries in name order; each contributes one JSON line ``[name, dtype, shape]`` (the NumPy
    dtype string, little-endian: ``"<f4"``, ``"<i8"``) and then its values as contiguous
    little-endian bytes, in the dtype they were loaded in (never converted: a float32 weight
    is hashed as float32). Equal digests mean bit-identical weights; a changed file, encoding,
    decoder or initialisation (the reference the deltas are added to) each changes it.
    """
    h = hashlib.sha256(DECODED_DIGEST_FORMAT)
    for name in sorted(state):
        v = state[name]
        a = v.detach().cpu().contiguous().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"), copy=False))
        h.update(json.dumps([str(name), a.dtype.str, list(a.shape)]).encode() + b"\n")
        h.update(a.tobytes())
    return h.hexdigest()
