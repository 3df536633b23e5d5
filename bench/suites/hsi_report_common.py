"""What the hsi report's two parts share (:mod:`bench.suites.hsi_report`, the clean-reference
tables and figures, and :mod:`bench.suites.hsi_realworld`, the real-noise ones): the method
order of the tables, the note on where each learned row's weights come from, and the decoding
of a stored preview. From stored rows only.

Outside every cell's key (:data:`bench.fingerprint.EXCLUDED`), as the report parts are.
"""
from __future__ import annotations

import base64

import numpy as np

from bench.suites.hsi_constants import CLASSICAL


def classical_first_as_listed(methods: list[str]) -> list[str]:
    """``methods`` (reference, classical, learned, in registration order) with the methods of
    :data:`CLASSICAL` moved into that tuple's order (NGMeet after LRTDTV, as the slides'
    table); every other method keeps its place after them."""
    rank = {m: i for i, m in enumerate(CLASSICAL)}
    return sorted(methods, key=lambda m: rank.get(m.split("[")[0], len(rank)))


def training_note(rows) -> str:
    """Where each learned row's weights come from, as its extras record them: published (the
    source and the data it was trained on), untrained, or trained here (recipe, steps,
    minutes on how many threads, the training and validation scenes, the command)."""
    notes: dict[str, str] = {}
    splits: dict[tuple, None] = {}
    for _, r in rows[rows["family"] == "learned"].iterrows():
        ex = r["extras"] if isinstance(r["extras"], dict) else {}
        w, tr, label = ex.get("weights") or {}, ex.get("training") or {}, r["method_label"]
        if w.get("source") == "published":
            notes[label] = f"{label}: published ({tr.get('source')}; trained on {tr.get('dataset')})"
        elif w.get("source") == "trained here":
            mins = f", {tr['seconds'] / 60:.0f} min on {tr.get('threads', '?')} thread(s)" if tr.get("seconds") else ""
            notes[label] = (f"{label}: trained here, recipe {tr.get('recipe')} ({tr.get('steps')} Adam steps of "
                            f"{tr.get('batch_size')} {tr.get('crop')}x{tr.get('crop')} crops{mins}; "
                            f"`{tr.get('command')}`)")
            splits[(tuple(tr.get("train_scenes") or ["?"]), tuple(tr.get("val_scenes") or ["?"]))] = None
        elif tr.get("recipe"):
            notes[label] = f"{label}: {tr['recipe']}"
    for train, val in splits:
        notes[f"split {train} {val}"] = (f"trained here on {', '.join(train)}; the state kept is the best "
                                         f"validation PSNR on {', '.join(val)}")
    return "; ".join(notes.values()) or "none"


def decode_preview(p: dict | None, arrays: dict | None = None, name: str = "preview") -> np.ndarray | None:
    """A preview in [0, 1]: the array ``name`` of the row's artifact file, or the base64 bytes
    of a row stored before previews moved there (``p["b64"]``); None when neither is there."""
    if p and p.get("b64"):
        return np.frombuffer(base64.b64decode(p["b64"]), dtype=np.uint8).reshape(p["shape"]) / 255.0
    if p and arrays and name in arrays:
        return arrays[name] / 255.0
    return None
