"""The istd report's figures (``python -m bench report --suite istd``): the Pd-Fa curves
and the visual grid of images, ground truth, maps and masks, from stored rows and their
artifact files only. ``v`` is the report's view of the rows
(:class:`bench.suites.istd_report._View`: datasets, methods, their styles, the accuracy rows).

Outside every cell's key (:data:`bench.fingerprint.EXCLUDED`), as the rest of the report.
"""
from __future__ import annotations

import base64
import io
import math
import textwrap

import numpy as np

from bench.metrics.istd import FA_MAX, PROTOCOLS


def decode_png(text: str) -> np.ndarray:
    """A base64 PNG of a row stored before figures' arrays moved to artifact files."""
    from PIL import Image
    return np.array(Image.open(io.BytesIO(base64.b64decode(text))))


def visual_panel(row, i: int, part: str, arrays: dict):
    """Panel ``part`` (image, truth, map, mask) of image ``i`` of a row's visual grid: from
    its artifact file, or the base64 PNG of an older row; None when neither is there."""
    item = ((row["extras"] or {}).get("visual") or [{}] * (i + 1))[i]
    if item.get(part):
        return decode_png(item[part])
    return arrays.get(f"visual{i}_{part}")


def curve_label(method: str, auc: float, fas) -> str:
    """The Pd-Fa figure's legend entry. When no threshold brings the false alarms into the
    AUC's box (Fa <= 100e-6), the area is 0 by definition: the label says so, with the
    lowest Fa reached, so that it does not read as a scoring failure."""
    if len(fas) and min(fas) >= FA_MAX * 1e6:
        return f"{method} (AUC 0: Fa >= {min(fas):.0f} at every threshold)"
    return f"{method} (AUC {auc:.1f})"


def pd_fa_figure(v, outdir: str) -> list[str]:
    """Pd-Fa curves (threshold-free), one panel per dataset, clean images."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.report import header_text, save_figure

    fig, axes = plt.subplots(1, len(v.datasets), figsize=(4.6 * len(v.datasets), 4.2), squeeze=False,
                             layout="constrained")
    for ax, ds in zip(axes[0], v.datasets):
        for m in v.methods:
            r = v.acc[(v.acc["dataset"] == ds) & (v.acc["method_label"] == m)]
            c = (r["extras"].iloc[0] or {}).get("pd_fa_curve") if len(r) else None
            if not c:
                continue
            pts = list(zip(c["fa"], c["pd"]))  # in threshold order (Pd is not monotone in Fa)
            auc = r["metrics"].iloc[0].get("pd_fa_auc", math.nan)
            st = v.style[m]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=st["color"], linestyle=st["linestyle"],
                    marker=".", label=curve_label(st["label"], auc, c["fa"]))
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("Fa (x1e-6)")
        ax.set_title(textwrap.fill(f"{header_text(ds)} ({v.n_images(ds)} images, clean)", 50), fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("Pd (%)")
    pd_fa = {"basicirstd": "centroid matching, Fa over all pixels", "rpcanet": "any overlap, Fa over background"}
    fig.suptitle(textwrap.fill(
        "Pd-Fa curves: classical maps normalised (negatives to 0, / max), learned nets' sigmoid "
        "maps as they are (dashed; normalised too under protocol rpcanet); thresholds 0.01..0.98 joined in "
        "order; Pd/Fa of each panel's protocol ("
        + ", ".join(f"{p}: {pd_fa[p]}" for p in PROTOCOLS if (v.frame["protocol"] == p).any())
        + "); AUC under the best-Pd envelope, Fa <= 100e-6", int(24 * 4.6 * len(v.datasets))), fontsize=8)
    return save_figure(fig, outdir, "istd_pd_fa")


def visual_figure(v, outdir: str) -> list[str]:
    """Images, ground truth, each method's map and mask (from the rows' artifact files, or
    the base64 PNGs of older rows), on the first SIRST selection."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.report import header_text, row_arrays, save_figure

    vis_ds = next((ds for ds in v.datasets if ds.startswith("sirst")), v.datasets[0])
    vis = {}
    for _, r in v.acc[v.acc["dataset"] == vis_ds].iterrows():
        n, arrays = len((r["extras"] or {}).get("visual") or []), row_arrays(r)
        if n and visual_panel(r, 0, "map", arrays) is not None:
            vis[r["method_label"]] = (r, n, arrays)
    if not vis:
        return []
    order = [m for m in v.methods if m in vis]
    first, n_rows, first_arrays = vis[order[0]]
    n_cols = 2 + 2 * len(order)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.9 * n_cols, 1.7 * n_rows + 0.4), squeeze=False,
                             layout="constrained")
    for i in range(n_rows):
        panels = [(visual_panel(first, i, "image", first_arrays), first["extras"]["visual"][i]["name"]),
                  (visual_panel(first, i, "truth", first_arrays), "ground truth")]
        for m in order:
            r, n, arrays = vis[m]
            if i < n:
                panels += [(visual_panel(r, i, "map", arrays), f"{v.style[m]['label']} map"),
                           (visual_panel(r, i, "mask", arrays), f"{v.style[m]['label']} mask")]
        for j, (img, title) in enumerate(panels):
            axes[i][j].imshow(img, cmap="gray")
            axes[i][j].set_xticks([]); axes[i][j].set_yticks([])
            if i == 0 or j == 0:
                axes[i][j].set_title(title, fontsize=7)
    fig.suptitle(textwrap.fill(f"{header_text(vis_ds)}, clean: maps shown with negatives at 0 and divided by the "
                               f"max; masks by rule {v.rules}", int(13 * 1.9 * n_cols)), fontsize=8)
    return save_figure(fig, outdir, "istd_visual")
