"""The ``istd`` suite: infrared small target detection (SPECS section 2).

Task: a set of gray images of varying size (a tuple of (H, W) tensors, gray levels 0..255)
after a degradation (clean, Gaussian noise, salt-and-pepper; seeded per cell); a method
returns one target map per image and names its segmentation rule (the method parameter
``segmentation``, stored with the row). Metrics: the BasicIRSTD protocol at each image's
own resolution, accumulated over the whole test set (``bench.metrics.istd``), plus the
threshold-free Pd-Fa curve and its area; the extras of each row hold the curve, the
scores under every named rule, and a few encoded images, maps and masks for the report's
visual grid.
"""
from __future__ import annotations

import base64
import io
import math
import os

import numpy as np
import torch

from bench import registry as R
from bench.datasets.istd import IstdData, synthetic_istd
from bench.methods.istd.common import IstdInput, TargetMaps
from bench.metrics.istd import (CURVE_THRESHOLDS, FA_MAX, SEGMENTATION_RULES, describe_rule, match_targets,
                                pd_fa_auc, pd_fa_curve, score_masks, segment)
from bench.suite import GridSpec, Suite, Task

N_VISUAL = 4
PROTOCOL = ("BasicIRSTD protocol at native resolution: IoU = total intersection/total union over the test "
            "set (mIoU), F1 from set-level pixels, Pd with 8-connected components and centroid distance < 3 "
            "(greedy), Fa = unmatched predicted pixels/all pixels (x1e-6)")
DEGRADATIONS = ("clean", "gaussian_noise[sigma=10]", "gaussian_noise[sigma=20]",
                "salt_pepper[density=0.01]", "salt_pepper[density=0.05]")
ABLATION_STAGES = tuple(range(1, 8))
ABLATION_SE = ((), ("background",), ("background", "target"), ("background", "target", "noise"))
ABLATION_CHECKPOINTS = tuple([f"l_rpcanet_ablation_stages{k}" for k in ABLATION_STAGES]
                             + ["l_rpcanet_ablation_se-" + ("+".join(m) or "none") for m in ABLATION_SE])
LEARNED_NOTE = ("Learned rows (rpcanet, l_rpcanet): checkpoints of the CPU-budget recipe `cpu` (64x64 crops of "
                "the SIRST train split, model selected on val), far short of the published GPU-trained figures "
                "(RPCANet on SIRST: IoU 70.37); maps sigmoid(T), rule prob (> 0.5); l_rpcanet is the public code's "
                "configuration, 475,188 parameters (the slides report 0.216M). ")
SHORT = {"background": "B", "target": "T", "noise": "N", "image": "D"}
RULE_TABLE = ("max_norm", "minmax", "mean_std3", "mean_std5", "mean_std10", "mean_range0.5")


def _png(arr: np.ndarray) -> str:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode()


def decode_png(text: str) -> np.ndarray:
    from PIL import Image
    return np.array(Image.open(io.BytesIO(base64.b64decode(text))))


def _to_u8(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().clamp(0, 255).round().to(torch.uint8).numpy()


def curve_label(method: str, auc: float, fas) -> str:
    """The Pd-Fa figure's legend entry. When no threshold brings the false alarms into the
    AUC's box (Fa <= 100e-6), the area is 0 by definition: the label says so, with the
    lowest Fa reached, so that it does not read as a scoring failure."""
    if len(fas) and min(fas) >= FA_MAX * 1e6:
        return f"{method} (AUC 0: Fa >= {min(fas):.0f} at every threshold)"
    return f"{method} (AUC {auc:.1f})"


class IstdSuite(Suite):
    name = "istd"
    description = "infrared small target detection: IPI, MPCM, PSTNN (and learned unfolding nets) on SIRST"
    metrics = ("iou", "niou", "precision", "recall", "f1", "pd", "fa", "pd_fa_auc")
    grid = GridSpec(
        datasets=("sirst", "istd_synthetic"),
        degradations=DEGRADATIONS,
        methods=("ipi", "mpcm", "pstnn", "rpcanet", "l_rpcanet"),
    )
    quick = GridSpec(
        datasets=("sirst[limit=20]", "istd_synthetic[n_images=12]"),
        degradations=("clean", "gaussian_noise[sigma=10]", "salt_pepper[density=0.01]"),
        methods=("ipi", "mpcm", "pstnn", "rpcanet", "l_rpcanet"),
    )
    # `bench check` runs the smoke grid on one torch thread: its problems are small, and on a
    # shared 2-core machine two threads per op stall at every barrier (40x slower measured)
    check_threads = 1
    smoke = GridSpec(
        datasets=("istd_synthetic[n_images=6,min_size=96,max_size=128]", "sirst[max_pixels=30000]"),
        degradations=("clean", "gaussian_noise[sigma=10]"),
        methods=("ipi", "mpcm", "pstnn", "rpcanet", "l_rpcanet"),
    )
    # the slides' ablations of L-RPCANet, each row trained with the reduced `ablation` recipe
    # (`python -m bench train --suite istd --method l_rpcanet --recipe ablation --set stages=K`)
    extra_grids = {
        "ablation": GridSpec(
            datasets=("sirst",),
            degradations=("clean",),
            methods=("l_rpcanet[checkpoint=[" + ",".join(ABLATION_CHECKPOINTS) + "]]",),
        ),
        # a diagnostic of the shipped checkpoints: BatchNorm with each test image's own
        # statistics (`bn=image`) against the stored running averages (the default rows)
        "bn": GridSpec(
            datasets=("sirst",),
            degradations=("clean",),
            methods=("rpcanet", "l_rpcanet", "rpcanet[bn=image]", "l_rpcanet[bn=image]"),
        ),
    }

    def skip_reason(self, cell) -> str | None:
        """A learned cell whose checkpoint file is not there (the ablation checkpoints are not
        shipped: `bench train` makes them) is left out with the command that makes it."""
        if R.METHODS[cell.method].family != "learned":
            return None
        from bench.methods.istd.learned import resolve_checkpoint, train_command
        ckpt = str(cell.mparams.get("checkpoint", "auto"))
        path = resolve_checkpoint(cell.method, ckpt)
        if os.path.exists(path):
            return None
        stem = os.path.basename(path)[:-4]
        if "_ablation_" in stem:
            knob = stem.split("_ablation_", 1)[1]
            arg = (f"stages={knob[len('stages'):]}" if knob.startswith("stages")
                   else "se=" + knob.split("-", 1)[1].replace("+", ","))
            cmd = train_command(cell.method, "ablation", {}) + f" --set {arg}"
        else:
            cmd = train_command(cell.method)
        return f"{cell.method}: no checkpoint {os.path.relpath(path)} (make it with `{cmd}`)"

    # ------------------------------------------------------------------ task
    def make_task(self, data: IstdData, degradation, seed: int, device: str) -> Task:
        g = torch.Generator().manual_seed(seed)
        images = tuple(degradation.apply(im, g) for im in data.images)
        inputs = IstdInput(tuple(im.to(device) for im in images))
        times = data.reference_times
        authors = (sum(times[n] for n in data.names) / len(data.names)
                   if times and all(n in times for n in data.names) else None)
        return Task(inputs=inputs, reference=data.masks, n_samples=len(data.images),
                    problem_id=data.instance_id,
                    info={"names": data.names, "notes": data.notes, "source": data.source,
                          "authors_ipi_s_per_image": authors})

    def validate_output(self, task: Task, output) -> None:
        if not isinstance(output, TargetMaps):
            raise ValueError(f"expected TargetMaps, got {type(output).__name__}")
        if len(output.maps) != task.n_samples:
            raise ValueError(f"{len(output.maps)} maps for {task.n_samples} images")
        if output.segmentation not in SEGMENTATION_RULES:
            raise ValueError(f"unknown segmentation rule {output.segmentation!r}")
        for i, (m, ref) in enumerate(zip(output.maps, task.reference)):
            if not isinstance(m, torch.Tensor) or tuple(m.shape) != tuple(ref.shape):
                raise ValueError(f"map {i}: shape {tuple(getattr(m, 'shape', ()))} != image {tuple(ref.shape)}")
            if not torch.isfinite(m).all():
                raise ValueError(f"map {i} ({task.info.get('names', ['?'] * (i + 1))[i]}) has "
                                 f"{int((~torch.isfinite(m)).sum())} non-finite value(s): the method diverged")

    def score(self, task: Task, output: TargetMaps):
        maps = [m.detach().cpu() for m in output.maps]
        gts = [g.cpu() for g in task.reference]
        rule = output.segmentation
        masks = [segment(m, rule) for m in maps]
        metrics = score_masks(masks, gts)
        # learned networks' maps are probabilities: their curve thresholds the probability
        # itself; classical maps are normalised (negatives to 0, / max) first
        pds, fas = pd_fa_curve(maps, gts, normalise=rule != "prob")
        metrics["pd_fa_auc"] = pd_fa_auc(pds, fas)
        by_rule = {}
        for r in RULE_TABLE:
            s = masks if r == rule else [segment(m, r) for m in maps]
            sc = score_masks(s, gts)
            by_rule[r] = {k: sc[k] for k in ("iou", "niou", "f1", "pd", "fa")}
        names = list(task.info.get("names", ()))
        per_image = {"names": names, "iou": [], "n_targets": [], "n_detected": [], "false_pixels": []}
        for p, g in zip(masks, gts):
            pn, gn = p.numpy().astype(bool), g.numpy().astype(bool)
            union = int((pn | gn).sum())
            per_image["iou"].append(100.0 * int((pn & gn).sum()) / union if union else 0.0)
            nt, nd, fpix, _ = match_targets(pn, gn)
            per_image["n_targets"].append(nt); per_image["n_detected"].append(nd)
            per_image["false_pixels"].append(fpix)
        visual = []
        for i in range(min(N_VISUAL, len(maps))):
            m = maps[i].to(torch.float64).clamp(min=0)
            top = float(m.max())
            visual.append({
                "name": names[i] if i < len(names) else str(i),
                "image": _png(_to_u8(task.inputs.images[i])),
                "truth": _png(gts[i].numpy().astype(np.uint8) * 255),
                "map": _png(_to_u8(m / top * 255 if top > 0 else m)),
                "mask": _png(masks[i].numpy().astype(np.uint8) * 255),
            })
        extras = {
            "segmentation": rule, "segmentation_rule": describe_rule(rule), "protocol": "basicirstd",
            "pd_fa_curve": {"thresholds": list(CURVE_THRESHOLDS), "pd": pds, "fa": fas,
                            "normalised": rule != "prob"},
            "by_rule": by_rule, "per_image": per_image, "visual": visual, "notes": list(task.info.get("notes", ())),
            "authors_ipi_s_per_image": task.info.get("authors_ipi_s_per_image"),
            "n_targets_source": task.info.get("source"),
        }
        return metrics, extras

    def check_values(self, row) -> dict[str, float]:
        return {k: float(v) for k, v in row["metrics"].items()}

    def tiny_task(self, method_name: str, device: str, seed: int):
        names, images, masks = synthetic_istd(2, seed, 64, 72, max_targets=2)
        task = Task(inputs=IstdInput(tuple(im.to(device) for im in images)), reference=tuple(masks),
                    n_samples=2, problem_id="tiny", info={"names": tuple(names)})
        params = {}
        mp = R.METHODS[method_name].parameters
        if "max_iter" in mp:
            params["max_iter"] = 5
        return task, params

    # ------------------------------------------------------------------ report
    def report(self, frame, outdir: str, options) -> list[str]:
        import matplotlib
        import pandas as pd

        from bench.report import Table, latest, method_order, provenance_line, save_figure, slug, write_table
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        paths: list[str] = []
        frame = latest(frame, ["dataset", "degradation", "method_label", "device"])
        is_ablation = frame["method_label"].str.contains("_ablation_", regex=False)
        if is_ablation.any():
            paths += self._ablation_report(frame[is_ablation], outdir)
            frame = frame[~is_ablation]
        is_bn = _bn_image(frame)
        if is_bn.any():
            paths += self._bn_report(frame, outdir)
            frame = frame[~is_bn]
        if frame.empty:
            return paths
        frame = frame.assign(rule=frame["extras"].map(lambda e: (e or {}).get("segmentation", "?")))
        methods = method_order(frame)
        datasets = list(dict.fromkeys(frame["dataset"]))
        rules = sorted({describe_rule(r) for r in frame["rule"]})
        prov = provenance_line(frame)
        clean = frame[frame["degradation"] == "clean"]
        if clean.empty:
            clean = frame
        cpu_first = clean.sort_values("device", key=lambda s: s.map(lambda d: 0 if d == "cpu" else 1))
        acc = cpu_first.groupby(["dataset", "method_label"], as_index=False, sort=False).head(1)

        def n_images(ds):
            r = frame[frame["dataset"] == ds]
            return int(r["n_samples"].iloc[0]) if len(r) else 0

        # ---- main table: per dataset mIoU, F1, Pd, Fa; params; CPU / GPU ms per image
        cols = [(ds, m) for ds in datasets for m in ("mIoU", "F1", "Pd", "Fa")]
        cols += [("", "params"), ("", "CPU ms/img"), ("", "GPU ms/img")]
        values = pd.DataFrame(math.nan, index=methods, columns=pd.MultiIndex.from_tuples(cols))
        key = {"mIoU": "iou", "F1": "f1", "Pd": "pd", "Fa": "fa"}
        for _, r in acc.iterrows():
            for label, mk in key.items():
                values.at[r["method_label"], (r["dataset"], label)] = r["metrics"].get(mk, math.nan)
        ms = _ms_per_image(clean)
        for m in methods:
            pc = frame.loc[frame["method_label"] == m, "parameter_count"].dropna()
            if len(pc):
                values.at[m, ("", "params")] = float(pc.iloc[0])
            for dev, col in (("cpu", "CPU ms/img"), ("cuda", "GPU ms/img")):
                v = ms.get((m, dev))
                if v is not None:
                    values.at[m, ("", col)] = v
        dirs = {c: ("min" if c[1] in ("Fa", "CPU ms/img", "GPU ms/img") else "max") for c in cols}
        dirs[("", "params")] = None
        fmt = {c: "{:.2f}" for c in cols}
        fmt[("", "params")] = "{:,.0f}"
        fmt[("", "CPU ms/img")] = fmt[("", "GPU ms/img")] = "{:.1f}"
        ds_desc = "; ".join(f"{ds}: {n_images(ds)} test images" for ds in datasets)
        caption = (f"ISTD detection on clean test images. {PROTOCOL}; mIoU, F1, Pd in %, Fa x1e-6. "
                   f"Segmentation rule: {', '.join(rules)}. {ds_desc}. params: learned parameters "
                   f"(– for classical methods); time: median of timed repeats of the whole set divided "
                   f"by its number of images, on SIRST where measured, else the first dataset (– where not "
                   f"measured). "
                   f"{_learned_note(frame)}"
                   f"Best per column in bold. {prov}.")
        paths += write_table(Table(values, dirs, caption, "tab:istd_main", fmt=fmt, index_name="method"),
                             outdir, "istd_main")

        # ---- robustness: metric against degradation, per method (per dataset)
        for ds in datasets:
            df = frame[frame["dataset"] == ds]
            df = df.sort_values("device", key=lambda s: s.map(lambda d: 0 if d == "cpu" else 1))
            df = df.groupby(["degradation", "method_label"], as_index=False, sort=False).head(1)
            degs = [d for d in _degradation_order(df["degradation"].unique())]
            rcols = pd.MultiIndex.from_tuples([(d, m) for d in degs for m in ("mIoU", "Pd", "Fa")])
            rv = pd.DataFrame(math.nan, index=[m for m in methods if m in set(df["method_label"])], columns=rcols)
            for _, r in df.iterrows():
                for label, mk in (("mIoU", "iou"), ("Pd", "pd"), ("Fa", "fa")):
                    rv.at[r["method_label"], (r["degradation"], label)] = r["metrics"].get(mk, math.nan)
            rcap = (f"Robustness on {ds} ({n_images(ds)} images): mIoU (%), Pd (%) and Fa (x1e-6) against the "
                    f"degradation (Gaussian noise sigma in gray levels of 0..255, salt-and-pepper density = "
                    f"fraction of pixels; noise seeded per cell, identical for every method). {PROTOCOL}. "
                    f"Segmentation rule: {', '.join(rules)}. {prov}.")
            rdirs = {c: ("min" if c[1] == "Fa" else "max") for c in rcols}
            paths += write_table(Table(rv, rdirs, rcap, "tab:istd_robustness_" + slug(ds), fmt="{:.2f}",
                                       index_name="method"), outdir, "istd_robustness_" + slug(ds))

        # ---- runtime: per image on CPU and GPU, and the authors' IPI code beside ours
        rt_rows = []
        for ds in datasets:
            dfc = clean[clean["dataset"] == ds]
            for m in methods:
                rows = dfc[dfc["method_label"] == m]
                if rows.empty:
                    continue
                entry = {"dataset": ds, "method": m}
                for dev, col in (("cpu", "CPU s/img"), ("cuda", "GPU s/img")):
                    rr = rows[rows["device"] == dev]
                    entry[col] = float(rr["time_s"].iloc[0] / rr["n_samples"].iloc[0]) if len(rr) else math.nan
                authors = rows["extras"].map(lambda e: (e or {}).get("authors_ipi_s_per_image")).dropna()
                entry["authors' code s/img"] = (float(authors.iloc[0]) if len(authors)
                                                and m.split("[")[0] == "ipi" else math.nan)
                cpu = entry["CPU s/img"]
                entry["authors/ours (CPU)"] = (entry["authors' code s/img"] / cpu
                                               if cpu == cpu and cpu > 0 else math.nan)
                rt_rows.append(entry)
        if rt_rows:
            rt = pd.DataFrame(rt_rows)
            rt.index = [f"{r['method']} ({r['dataset']})" for _, r in rt.iterrows()]
            rt = rt.drop(columns=["dataset", "method"])
            threads = sorted({str(p.get("threads")) for p in frame["provenance"]})
            rcap = (f"Seconds per image (clean images): median of timed repeats of the whole set / number of "
                    f"images; CPU threads {', '.join(threads)}. authors' code: the authors' IPI (Octave 7.3, "
                    f"OpenBLAS, 2-core machine; data/istd/reference) mean seconds per image on the same images; "
                    f"ratio = authors / ours (> 1: this port is faster). – where not measured or no reference. "
                    f"{prov}.")
            paths += write_table(Table(rt, {"CPU s/img": "min", "GPU s/img": "min"}, rcap, "tab:istd_runtime",
                                       fmt={"CPU s/img": "{:.3f}", "GPU s/img": "{:.3f}",
                                            "authors' code s/img": "{:.2f}", "authors/ours (CPU)": "{:.1f}x"},
                                       index_name="method (dataset)"), outdir, "istd_runtime")

        # ---- scores of the same maps under every named rule (clean)
        rule_rows = {}
        for _, r in acc.iterrows():
            for rl, sc in ((r["extras"] or {}).get("by_rule") or {}).items():
                rule_rows[(f"{r['method_label']} ({r['dataset']})", rl)] = sc
        if rule_rows:
            idx = sorted({k[0] for k in rule_rows}, key=lambda s: (s.split(" (")[1], methods.index(s.split(" (")[0])
                                                                    if s.split(" (")[0] in methods else 99))
            rcols = pd.MultiIndex.from_tuples([(rl, m) for rl in RULE_TABLE for m in ("IoU", "Pd", "Fa")])
            rv = pd.DataFrame(math.nan, index=idx, columns=rcols)
            for (i, rl), sc in rule_rows.items():
                for label, mk in (("IoU", "iou"), ("Pd", "pd"), ("Fa", "fa")):
                    rv.at[i, (rl, label)] = sc.get(mk, math.nan)
            rcap = ("The same target maps (clean images) scored under each named segmentation rule: "
                    + "; ".join(describe_rule(r) for r in RULE_TABLE) + f". {PROTOCOL}. No bold: rules are "
                    f"not methods. {prov}.")
            paths += write_table(Table(rv, {}, rcap, "tab:istd_rules", fmt="{:.2f}", index_name="method (dataset)"),
                                 outdir, "istd_rules")

        # ---- Pd-Fa curves (threshold-free), one panel per dataset
        fig, axes = plt.subplots(1, len(datasets), figsize=(4.6 * len(datasets), 3.8), squeeze=False)
        for ax, ds in zip(axes[0], datasets):
            for m in methods:
                r = acc[(acc["dataset"] == ds) & (acc["method_label"] == m)]
                if r.empty:
                    continue
                c = (r["extras"].iloc[0] or {}).get("pd_fa_curve") or {}
                if not c:
                    continue
                pts = list(zip(c["fa"], c["pd"]))  # in threshold order (Pd is not monotone in Fa)
                style = "-" if r["family"].iloc[0] == "classical" else "--"
                auc = r["metrics"].iloc[0].get("pd_fa_auc", math.nan)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker=".",
                        label=curve_label(m, auc, c["fa"]))
            ax.set_xscale("symlog", linthresh=1.0)
            ax.set_xlabel("Fa (x1e-6)")
            ax.set_title(f"{ds} ({n_images(ds)} images, clean)", fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
        axes[0][0].set_ylabel("Pd (%)")
        fig.suptitle("Pd-Fa curves: classical maps normalised (negatives to 0, / max), learned nets' sigmoid "
                     "maps as they are (dashed); thresholds 0.01..0.98 joined in order; BasicIRSTD Pd/Fa; AUC "
                     "under the best-Pd envelope, Fa <= 100e-6", fontsize=8)
        paths += save_figure(fig, outdir, "istd_pd_fa")

        # ---- visual grid: images, ground truth, each method's map and mask
        vis_ds = next((ds for ds in datasets if ds.startswith("sirst")), datasets[0])
        rows = acc[acc["dataset"] == vis_ds]
        vis = {r["method_label"]: (r["extras"] or {}).get("visual") or [] for _, r in rows.iterrows()}
        vis = {m: v for m, v in vis.items() if v}
        if vis:
            order = [m for m in methods if m in vis]
            first = vis[order[0]]
            n_rows = len(first)
            n_cols = 2 + 2 * len(order)
            fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.9 * n_cols, 1.7 * n_rows), squeeze=False)
            for i, item in enumerate(first):
                panels = [(decode_png(item["image"]), f"{item['name']}"), (decode_png(item["truth"]), "ground truth")]
                for m in order:
                    if i < len(vis[m]):
                        panels.append((decode_png(vis[m][i]["map"]), f"{m} map"))
                        panels.append((decode_png(vis[m][i]["mask"]), f"{m} mask"))
                for j, (img, title) in enumerate(panels):
                    axes[i][j].imshow(img, cmap="gray")
                    axes[i][j].set_xticks([]); axes[i][j].set_yticks([])
                    if i == 0 or j == 0:
                        axes[i][j].set_title(title, fontsize=7)
            fig.suptitle(f"{vis_ds}, clean: maps shown with negatives at 0 and divided by the max; masks by rule "
                         f"{', '.join(rules)}", fontsize=8)
            paths += save_figure(fig, outdir, "istd_visual")
        return paths


    def _ablation_report(self, frame, outdir: str) -> list[str]:
        """The slides' ablations of L-RPCANet: stages K = 1..7, and SE blocks switched on
        module by module; every row trained with the same reduced recipe (in the caption)."""
        import pandas as pd

        from bench.methods.istd.learned import RECIPES
        from bench.report import Table, provenance_line, write_table

        paths: list[str] = []
        frame = frame[frame["degradation"] == "clean"]
        frame = frame.sort_values("device", key=lambda s: s.map(lambda d: 0 if d == "cpu" else 1))
        frame = frame.groupby(["dataset", "method_label"], as_index=False, sort=False).head(1)
        prov = provenance_line(frame)
        r = RECIPES["ablation"]
        budget = (f"Every row trained with the same reduced recipe `ablation`: {r['steps']} Adam steps, batch "
                  f"{r['batch_size']} of {r['crop']}x{r['crop']} crops ({int(100 * r['positive_fraction'])}% "
                  f"around a target), lr {r['lr']:g} with poly decay, model kept by IoU on the first "
                  f"{r['val_limit']} val images, seed {r['seed']}; far below the shipped networks' budget, so "
                  f"differences of a few points are within training noise (one seed per row)")
        metric_cols = [("mIoU", "iou"), ("nIoU", "niou"), ("F1", "f1"), ("Pd", "pd"), ("Fa", "fa")]

        def entry(row):
            e = row["extras"] or {}
            out = {"params": float(row["parameter_count"]) if row["parameter_count"] == row["parameter_count"] else math.nan}
            for label, key in metric_cols:
                out[label] = row["metrics"].get(key, math.nan)
            out["train s"] = float((e.get("training") or {}).get("seconds") or math.nan)
            return out, e

        for ds in dict.fromkeys(frame["dataset"]):
            df = frame[frame["dataset"] == ds]
            n_img = int(df["n_samples"].iloc[0])
            k_rows, se_rows = {}, {}
            for _, row in df.iterrows():
                vals, e = entry(row)
                ck = str(e.get("checkpoint", ""))
                if "_ablation_stages" in ck:
                    k_rows[int(e.get("stages"))] = vals
                    if int(e.get("stages")) == 6:
                        se_rows[tuple(e.get("se_modules") or ())] = vals
                elif "_ablation_se-" in ck and int(e.get("stages", 0)) == 6:
                    se_rows[tuple(e.get("se_modules") or ())] = vals
            fmt = {"params": "{:,.0f}", "train s": "{:.0f}"}
            dirs = {"mIoU": "max", "nIoU": "max", "F1": "max", "Pd": "max", "Fa": "min"}
            if k_rows:
                kv = pd.DataFrame([k_rows[k] for k in sorted(k_rows)], index=[str(k) for k in sorted(k_rows)])
                cap = (f"L-RPCANet ablation over the number of stages K on {ds} ({n_img} test images, clean): "
                       f"parameters and detection ({PROTOCOL}; sigmoid output > 0.5). {budget}. train s: training "
                       f"seconds (one torch thread, two trainings sharing a 2-core machine). {prov}.")
                paths += write_table(Table(kv, dirs, cap, "tab:istd_ablation_stages_" + slug_(ds), fmt=fmt,
                                           index_name="K"), outdir, "istd_ablation_stages_" + slug_(ds))
            if se_rows:
                order = sorted(se_rows, key=len)
                tick = {True: "yes", False: "-"}
                rows = []
                for mods in order:
                    rows.append({**{m: tick[m in mods] for m in ("background", "target", "noise", "image")},
                                 **se_rows[mods]})
                sv = pd.DataFrame(rows, index=["+".join(SHORT[m] for m in mods) or "none" for mods in order])
                cap = (f"L-RPCANet ablation of the squeeze-and-excitation blocks, switched on module by module "
                       f"(B background, T target, N noise, D image; K = 6) on {ds} ({n_img} test images, clean). "
                       f"{PROTOCOL}. {budget}. {prov}.")
                paths += write_table(Table(sv, dirs, cap, "tab:istd_ablation_se_" + slug_(ds),
                                           fmt={**fmt, "background": "{}", "target": "{}", "noise": "{}",
                                                "image": "{}"}, index_name="SE in"),
                                     outdir, "istd_ablation_se_" + slug_(ds))
        return paths

    def _bn_report(self, frame, outdir: str) -> list[str]:
        """The `bn` diagnostic: each learned network with its stored BatchNorm statistics
        (the published protocol) and with each test image's own (`bn=image`), clean images."""
        import pandas as pd

        from bench.report import Table, provenance_line, write_table

        paths: list[str] = []
        frame = frame[(frame["degradation"] == "clean") & (frame["family"] == "learned") & (frame["device"] == "cpu")]
        metric_cols = [("mIoU", "iou"), ("nIoU", "niou"), ("F1", "f1"), ("Pd", "pd"), ("Fa", "fa")]
        for ds in dict.fromkeys(frame["dataset"]):
            df = frame[frame["dataset"] == ds].sort_values("method_label")
            image_bn = _bn_image(df)
            if not image_bn.any():
                continue
            # one row per label (unique here: `latest` kept one per label and device)
            rows = [{"BN statistics": "this image" if image else "running (stored)",
                     "checkpoint": os.path.basename(str((r["extras"] or {}).get("checkpoint", "?"))),
                     **{lab: r["metrics"].get(key, math.nan) for lab, key in metric_cols}}
                    for image, (_, r) in zip(image_bn, df.iterrows())]
            tab = pd.DataFrame(rows, index=list(df["method_label"]))
            cap = (f"Diagnostic, not a published protocol: the learned networks on {ds} "
                   f"({int(df['n_samples'].iloc[0])} test images, clean) with BatchNorm normalising by the "
                   f"running averages stored in the checkpoint (the papers' eval mode, the main table's rows) "
                   f"and by the statistics of the image being segmented (bn=image, prediction-time BN, Nado "
                   f"et al. 2020), one image per pass. {PROTOCOL}; mIoU, nIoU, F1, Pd in %, Fa x1e-6. "
                   f"{provenance_line(df)}.")
            dirs = {"mIoU": "max", "nIoU": "max", "F1": "max", "Pd": "max", "Fa": "min"}
            paths += write_table(Table(tab, dirs, cap, "tab:istd_bn_" + slug_(ds),
                                       fmt={"BN statistics": "{}", "checkpoint": "{}"}, index_name="method"),
                                 outdir, "istd_bn_" + slug_(ds))
        return paths


def _bn_image(frame):
    """Rows run with prediction-time BatchNorm (`bn=image`), read from the method parameters."""
    return frame["method_params"].map(lambda p: (p or {}).get("bn") == "image")


def slug_(s: str) -> str:
    from bench.report import slug
    return slug(s)


def _learned_note(frame) -> str:
    """What the learned rows are: checkpoint, training budget, timing rule (or nothing)."""
    learned = frame[frame["family"] == "learned"]
    if learned.empty:
        return ""
    budgets = {}
    for _, r in learned.iterrows():
        tr = (r["extras"] or {}).get("training") or {}
        if tr.get("steps") is not None:
            budgets[r["method_label"]] = (f"{r['method_label']} {tr.get('steps')} steps / {float(tr.get('seconds') or 0):.0f} s"
                                          f" on {tr.get('threads')} thread(s)")
    return (LEARNED_NOTE + "Training (steps, seconds, threads): " + "; ".join(budgets.values())
            + ". Learned rows are timed once after a warm-up on one image. ")


def _ms_per_image(frame) -> dict:
    """(method_label, device) -> ms per image: on the full SIRST test split (``sirst``) where
    measured, else another SIRST selection (``sirst[limit=20]``), else the first dataset."""
    def preference(d):
        return 0 if d == "sirst" else 1 if d.startswith("sirst") else 2

    out = {}
    frame = frame.sort_values("dataset", key=lambda s: s.map(preference), kind="stable")
    for _, r in frame.iterrows():
        k = (r["method_label"], r["device"])
        if k not in out and r.get("time_s") == r.get("time_s") and r.get("n_samples"):
            out[k] = 1000.0 * float(r["time_s"]) / float(r["n_samples"])
    return out


def _degradation_order(labels):
    def key(lbl):
        base = lbl.split("[")[0]
        order = {"clean": 0, "gaussian_noise": 1, "salt_pepper": 2}.get(base, 9)
        return (order, lbl)
    return sorted(labels, key=key)





R.register_suite(IstdSuite())
