"""What the istd report's tables share (a leaf module: the main report and the ablation
tables both import it): the protocol words of a caption, the SE module letters, the Fa column
in units of 1e-5 as the papers print it, and whose published weights a row holds."""
from __future__ import annotations

from bench.methods.istd.network import MODULES
from bench.metrics.istd import DEFAULT_PROTOCOL, PROTOCOLS

#: the default protocol's caption text (the others': PROTOCOLS[name].description; :func:`protocol_text`)
PROTOCOL = PROTOCOLS[DEFAULT_PROTOCOL].description
#: the network's modules, in its order, and their letters in the tables
MODULE_NAMES = MODULES
SHORT = dict(zip(MODULES, "BTND"))
ABLATION_METRICS = {"mIoU": "iou", "nIoU": "niou", "F1": "f1", "Pd": "pd", "Fa": "fa"}
#: Fa as the papers print it: in units of 1e-5 (the rows store it in units of 1e-6)
FA = "Fa (×1e-5)"
TEX = {FA: r"Fa ($\times 10^{-5}$)"}
FA_METRIC = {FA: "fa"}  # the renamed column keeps its metric (direction, format)


def protocol_text(frame) -> str:
    """The protocols of ``frame``'s rows in words, for a caption (the default one's text when
    the rows are all of it, as the captions read before protocols existed)."""
    present = [p for p in PROTOCOLS if "protocol" in frame.columns and (frame["protocol"] == p).any()]
    if not present or present == [DEFAULT_PROTOCOL]:
        return PROTOCOL
    if len(present) == 1:
        return PROTOCOLS[present[0]].description
    return "Protocols, never mixed in one column: " + "; ".join(
        (f"sets marked '{p} protocol': " if p != DEFAULT_PROTOCOL else "unmarked sets: ") + PROTOCOLS[p].description
        for p in present)


def _published_name(row) -> str | None:
    """The ``published:<name>`` a row's weights are (None: not published weights)."""
    w = (row["extras"] or {}).get("weights") or {}
    return w.get("name") if w.get("source") == "published" else None


def _fa_units(values):
    """``values`` with its Fa columns (stored in units of 1e-6) in units of 1e-5, as the papers
    print them, under the header :data:`FA`."""
    def key(c):
        return c[-1] if isinstance(c, tuple) else c
    fa = [c for c in values.columns if key(c) == "Fa"]
    if not fa:
        return values
    out = values.copy()
    for c in fa:
        out[c] = [x / 10 if isinstance(x, (int, float)) else x for x in out[c]]
    ren = {c: (c[:-1] + (FA,) if isinstance(c, tuple) else FA) for c in fa}
    out.columns = [ren.get(c, c) for c in out.columns]
    if any(isinstance(c, tuple) for c in out.columns):
        import pandas as pd
        out.columns = pd.MultiIndex.from_tuples(list(out.columns))
    return out
