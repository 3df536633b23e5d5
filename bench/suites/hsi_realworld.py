"""The hsi report's real-data part: the rows of real noisy cubes without a clean reference
(``indian_pines`` under ``hsi_real``), from stored rows only (nothing is rerun).

- ``hsi_real_<dataset>`` table: one row per method, the no-reference index (``nr_sigma``), what
  the method removed (``nr_removed``), the RBF SVM classification (OA, AA, kappa: mean ± std
  over the stored per-split values, the protocol named in the caption) and the seconds per cube;
- ``hsi_real_<dataset>_false_colour`` figure: the noisy input and every method's output in
  false colour (three of the noisiest bands) and the noisiest band alone in grey.

Called from :func:`bench.suites.hsi_report.write_report`; outside every cell's key
(:data:`bench.fingerprint.EXCLUDED`).
"""
from __future__ import annotations

import math
import textwrap

import numpy as np

from bench.metrics.hsi_realworld import CLASSIFICATION, PROTOCOL
from bench.suites.hsi_report_common import classical_first_as_listed, decode_preview, training_note

#: the table's caption (task, data, protocol, what bold marks); the long CAPTION goes to the sidecar's notes
SHORT = ("Real-noise hyperspectral denoising on {ds} (no clean reference), then {protocol_short}: residual noise "
         "index, removed RMS, OA / AA / kappa mean and std over the splits. Lowest noise index and best accuracies "
         "in bold.")
CAPTION = ("{ds}: real noisy cube, no clean reference ({n} cube(s): {names}; {shape}); methods get the noise level "
           "estimated by the wavelet MAD per band ({sigma:.2f} on the [0,255] scale, root mean square over bands). Noise σ (MAD): the "
           "no-reference index, the mean over bands of the wavelet-MAD noise std of the output (Donoho & Johnstone "
           "1994), x255, lower = less residual noise (a blurring filter lowers it too); removed RMS: the root mean "
           "square of input - output, x255. OA / AA / κ (%): {protocol}; ± columns: the std over the splits. The 3x3 mean "
           "(box_filter) is the reference row: smoothing alone lifts the classification, so a denoiser is read "
           "against it. Learned rows' weights: {training}. Seconds per cube: one run, {threads} thread(s). {prov}.")


def split_real(frame):
    """(the rows of clean-reference cells, the rows of real-noise cells: ``hsi_real``)."""
    real = frame["degradation"].map(lambda d: str(d).split("[")[0] == "hsi_real")
    return frame[~real], frame[real]


def write_real_report(frame, outdir: str, options) -> list[str]:
    """The table and the false-colour figure of each real dataset (see the module docstring)."""
    if frame is None or frame.empty:
        return []
    from bench.report import newest, prefer_cpu

    rows = prefer_cpu(newest(frame), ["dataset", "method_label"])
    paths: list[str] = []
    for ds in dict.fromkeys(rows["dataset"]):
        d = rows[rows["dataset"] == ds]
        paths += _table(d, ds, frame, outdir)
        paths += _figure(d, ds, outdir)
    return paths


def _order(d) -> list[str]:
    """Noisy first, then the 3x3 mean reference, then the rest in the report's method order."""
    from bench.report import method_order

    methods = classical_first_as_listed(method_order(d))
    first = [m for m in methods if m == "noisy"] + [m for m in methods if m.startswith("box_filter")]
    return first + [m for m in methods if m not in first]


def _mean_std(extras, metric, fallback) -> tuple[float, float]:
    vals = ((extras or {}).get("per_seed") or {}).get(metric)
    if vals:
        return float(np.mean(vals)), float(np.std(vals))
    return (float(fallback) if fallback is not None else math.nan), math.nan


def _table(d, ds: str, frame, outdir: str) -> list[str]:
    import pandas as pd

    from bench.report import Table, caption, header_text, slug, write_table

    methods = _order(d)
    acc = [("OA (%)", "svm_oa"), ("AA (%)", "svm_aa"), ("κ (%)", "svm_kappa")]
    cols = ["noise σ (MAD)", "removed RMS"] + [c for name, _ in acc for c in (name, "± " + name.split()[0])] + ["s / cube"]
    values = pd.DataFrame(math.nan, index=list(methods), columns=cols)   # method labels: the table names them
    for m in methods:
        r = d[d["method_label"] == m].iloc[0]
        met, ex = r["metrics"] or {}, r["extras"] if isinstance(r["extras"], dict) else {}
        label = m
        values.at[label, "noise σ (MAD)"] = met.get("nr_sigma", math.nan)
        values.at[label, "removed RMS"] = met.get("nr_removed", math.nan)
        for name, metric in acc:
            values.at[label, name], values.at[label, "± " + name.split()[0]] = _mean_std(ex, metric, met.get(metric))
        values.at[label, "s / cube"] = float(r["time_s"]) / max(1, int(r["n_samples"]))
    fmt = {c: "{:.1f}" for c in cols}
    fmt.update({"noise σ (MAD)": "{:.2f}", "removed RMS": "{:.2f}"})
    # bold: the lowest residual noise and the best mean accuracies
    directions = {"noise σ (MAD)": "min", **{name: "max" for name, _ in acc}}
    first = d["extras"].iloc[0] if isinstance(d["extras"].iloc[0], dict) else {}
    sigma = (first.get("sigma_used") or [math.nan])[0] * 255.0
    size = int((d["dataset_params"].iloc[0] or {}).get("size", 0) or 0)
    shape = f"centre crop {size}x{size}" if size else "the whole scene"
    cap = caption(CAPTION, d, ds=ds, n=int(d["n_samples"].iloc[0]), names=", ".join(first.get("names") or []),
                  shape=shape, sigma=sigma, protocol=PROTOCOL,
                  training=training_note(d))
    short = SHORT.format(ds=header_text(ds), protocol_short="an RBF SVM on 10 % of each class's labelled pixels")
    table = Table(values, directions, short, f"tab:hsi_real_{slug(ds)}", fmt=fmt, index_name="method", notes=cap,
                  rows=d, tex={"noise σ (MAD)": r"noise $\sigma$ (MAD)", "κ (%)": r"$\kappa$ (\%)",
                               "± κ": r"$\pm$ $\kappa$", "± OA": r"$\pm$ OA", "± AA": r"$\pm$ AA",
                               "OA (%)": r"OA (\%)", "AA (%)": r"AA (\%)"})
    return write_table(table, outdir, f"hsi_real_{slug(ds)}")


def _figure(d, ds: str, outdir: str) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.report import row_arrays, save_figure, slug
    from bench.report_style import display_labels

    labels = display_labels(d)
    panels = []
    for m in _order(d):
        r = d[d["method_label"] == m].iloc[0]
        ex = r["extras"] if isinstance(r["extras"], dict) else {}
        arrays = row_arrays(r)
        if not panels and (img := decode_preview(ex.get("reference_preview"), arrays, "reference_preview")) is not None:
            panels.append(("noisy input (as recorded)", img, None))
        if m == "noisy":
            continue
        img = decode_preview(ex.get("preview"), arrays, "preview")
        if img is not None:
            oa = _mean_std(ex, "svm_oa", (r["metrics"] or {}).get("svm_oa"))[0]
            panels.append((labels[m].md if m in labels else m, img, oa))
    if not panels:
        return []
    ncol = min(8, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(2 * nrow, ncol, figsize=(2.3 * ncol, 4.8 * nrow), squeeze=False)
    for k, (title, img, oa) in enumerate(panels):
        i, j = divmod(k, ncol)
        axes[2 * i][j].imshow(np.clip(img, 0, 1))
        axes[2 * i + 1][j].imshow(img[..., 2], cmap="gray", vmin=0, vmax=1)
        axes[2 * i][j].set_title("\n".join(textwrap.wrap(title, 24)) + ("" if oa is None else f"\nOA {oa:.1f} %"),
                                 fontsize=7)
    for a in axes.flat:
        a.set_xticks([])
        a.set_yticks([])
    for k in range(len(panels), nrow * ncol):
        i, j = divmod(k, ncol)
        axes[2 * i][j].axis("off")
        axes[2 * i + 1][j].axis("off")
    ex0 = d["extras"].iloc[0] if isinstance(d["extras"].iloc[0], dict) else {}
    bands = (ex0.get("preview") or {}).get("bands") or ["?", "?", "?"]
    one = [b + 1 if isinstance(b, int) else b for b in bands]
    axes[0][0].set_ylabel(f"bands {one} (1-based) as RGB", fontsize=7)
    axes[1][0].set_ylabel(f"band {one[2]} alone", fontsize=7)
    fig.suptitle(f"{ds}: real noise, before and after denoising (each band stretched to the input's 99.5th "
                 "percentile; OA: RBF SVM)", fontsize=9, y=1.0 + 0.04 / nrow)
    return save_figure(fig, outdir, f"hsi_real_{slug(ds)}_false_colour")
