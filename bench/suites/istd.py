"""The ``istd`` suite: infrared small target detection (SPECS section 2).

Task: a set of gray images of varying size (a tuple of (H, W) tensors, gray levels 0..255)
after a degradation (clean, Gaussian noise, salt-and-pepper; seeded per cell); a method
returns one target map per image and names its segmentation rule (the method parameter
``segmentation``, stored with the row). Metrics: under the cell's protocol
(``bench.metrics.istd.PROTOCOLS``; ``bench run --protocol NAME``): ``basicirstd`` (default),
the BasicIRSTD protocol at each image's own resolution, or ``rpcanet``, the RPCANet authors'
test code (images, maps and masks at 256x256, threshold at 0.5 x each map's maximum,
any-overlap Pd, Fa over background pixels), accumulated over the whole test set, plus the
threshold-free Pd-Fa curve and its area; the extras of each row hold the curve, the
scores under every named rule; a few images, maps and masks for the report's visual grid go
to the row's artifact file (:mod:`bench.artifacts`), not into the row.
"""
from __future__ import annotations

import base64
import io
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench import registry as R
from bench.results import Extras, Record, nested
from bench.datasets.istd import IstdData, synthetic_istd
from bench.methods.istd.common import IstdInput, TargetMaps
from bench.metrics.istd import (CURVE_THRESHOLDS, DEFAULT_PROTOCOL, FA_MAX, PROTOCOLS, SEGMENTATION_RULES,
                                describe_rule, pd_fa_auc, pd_fa_curve, resize_image, resize_map, resize_mask,
                                score_masks, segment)
from bench.suite import GridSpec, Problem, Suite, Task, TrainingData

N_VISUAL = 4
#: the default protocol's caption text (the others': PROTOCOLS[name].description; :func:`protocol_text`)
PROTOCOL = PROTOCOLS[DEFAULT_PROTOCOL].description
DEGRADATIONS = ("clean", "gaussian_noise[sigma=10]", "gaussian_noise[sigma=20]",
                "salt_pepper[density=0.01]", "salt_pepper[density=0.05]")
ABLATION_STAGES = tuple(range(1, 8))
ABLATION_SE = ((), ("background",), ("background", "target"), ("background", "target", "noise"))
ABLATION_CHECKPOINTS = tuple([f"l_rpcanet_ablation_stages{k}" for k in ABLATION_STAGES]
                             + ["l_rpcanet_ablation_se-" + ("+".join(m) or "none") for m in ABLATION_SE])
LEARNED_NOTE = ("Learned rows: the weights column names each row's source. Rows rpcanet and l_rpcanet without a "
                "named checkpoint: the shipped checkpoints of the CPU-budget recipe `cpu` (64x64 crops of "
                "the SIRST train split, model selected on val), far short of the published GPU-trained figures "
                "(RPCANet on SIRST: IoU 70.37); maps sigmoid(T), rule prob (> 0.5; under protocol rpcanet, max_norm: > 0.5 "
                "x each map's maximum); l_rpcanet is the public code's "
                "configuration, 475,188 parameters (the slides' 0.216M is the authors' SIRST-Aug configuration, "
                "bottleneck 4). Rows labelled checkpoint=published:<name>: the authors' released weights, loaded "
                "unchanged (`python -m bench weights`); checkpoint=l_rpcanet_sirst_from_nudt_sirst: L-RPCANet "
                "fine-tuned here on the SIRST train split from the authors' NUDT-SIRST weights (recipe finetune). ")
#: the learned rows beside the CPU-trained networks in the default, quick and authors grids:
#: the RPCANet authors' SIRST weights, and L-RPCANet fine-tuned here on SIRST from the authors'
#: NUDT-SIRST weights (`bench train ... --recipe finetune --init published:nudt_sirst`; stored as
#: a delta from that file); both skipped, with the download line, without the weights root
PUBLISHED_ROWS = ("rpcanet[checkpoint=published:sirst]", "l_rpcanet[checkpoint=l_rpcanet_sirst_from_nudt_sirst]")
#: the NUDT-SIRST rows of both networks: the authors' own NUDT-SIRST files (the L-RPCANet one is
#: the paper's K=6 configuration with all four SE modules)
NUDT_PUBLISHED_ROWS = ("rpcanet[checkpoint=published:nudt_sirst]", "l_rpcanet[checkpoint=published:nudt_sirst]")
#: the published weight sets trained on other data than SIRST (both networks have the three)
CROSS_WEIGHTS = ("nudt_sirst", "irstd_1k", "sirst_aug")
SHORT = {"background": "B", "target": "T", "noise": "N", "image": "D"}
RULE_TABLE = ("max_norm", "minmax", "mean_std3", "mean_std5", "mean_std10", "mean_range0.5")


@dataclass(frozen=True)
class IstdProblem(Problem):
    """The istd suite's task problem (:attr:`Task.problem`): what the images are."""

    names: tuple[str, ...]                  # the images' names, in the order of the inputs
    notes: tuple[str, ...]                  # conversions and fixes the loader applied to the set
    source: str                             # where the samples come from (folder or generator)
    #: mean seconds per image of the authors' IPI code on these images (data/istd/reference);
    #: None when not measured for every one of them, or when the protocol resizes the images
    authors_ipi_s_per_image: float | None
    #: the scoring protocol (a name of bench.metrics.istd.PROTOCOLS): the inputs and
    #: reference are already at its resolution; :meth:`IstdSuite.score` scores under it
    protocol: str = DEFAULT_PROTOCOL


@dataclass(frozen=True, kw_only=True)
class PdFaCurve(Record):
    """The threshold-free Pd-Fa curve of a row: Pd and Fa at each threshold of the
    (normalised, for classical maps) target maps."""

    thresholds: list[float] | None = None   # CURVE_THRESHOLDS, in order
    pd: list[float] | None = None           # Pd (%) at each threshold
    fa: list[float] | None = None           # Fa (x1e-6) at each threshold
    normalised: bool | None = None          # maps normalised first (negatives to 0, / max); False for probabilities


@dataclass(frozen=True, kw_only=True)
class PerImage(Record):
    """Per-image values of a row, one list entry per image in the set's order."""

    names: list[str] | None = None          # the images' names
    iou: list[float] | None = None          # IoU (%) of the image's mask
    n_targets: list[int] | None = None      # ground-truth targets (8-connected components)
    n_detected: list[int] | None = None     # targets matched by a predicted component
    false_pixels: list[int] | None = None   # predicted pixels of no matched component


@dataclass(frozen=True, kw_only=True)
class IstdExtras(Extras):
    """An istd row's extras: the segmentation and the scores besides the metrics, what the
    images are, and the learned methods' network (besides the base class's checkpoint and
    training). The visual grid's images, maps and masks are in the artifact file."""

    segmentation: str | None = None         # the rule that made the masks (a SEGMENTATION_RULES name)
    segmentation_rule: str | None = None    # the rule in words (describe_rule)
    protocol: str | None = None             # the scoring protocol (a PROTOCOLS name: "basicirstd", "rpcanet")
    pd_fa_curve: PdFaCurve | None = nested(PdFaCurve)
    #: the same maps scored under each rule of RULE_TABLE: rule -> {iou, niou, f1, pd, fa}
    by_rule: dict[str, dict[str, float]] | None = None
    per_image: PerImage | None = nested(PerImage)
    #: the visual grid's images, one {"name": ...} each (a row stored before the artifact files
    #: also holds base64 PNGs "image", "truth", "map", "mask": :func:`visual_panel` reads both)
    visual: list[dict[str, Any]] | None = None
    notes: list[str] | None = None          # the problem's notes (conversions and fixes)
    authors_ipi_s_per_image: float | None = None  # the problem's (None: not measured)
    n_targets_source: str | None = None     # the problem's source (where the samples come from)
    config: dict[str, Any] | None = None    # learned: the network's configuration (checkpoint)
    se_modules: list[str] | None = None     # learned: the modules with squeeze-and-excitation blocks
    stages: int | None = None               # learned: the number of unfolded stages K
    how_to_reproduce: str | None = None     # learned: the command that trained the checkpoint
    #: learned: the weights loaded (bench.weights): source (shipped, file, published), file and
    #: decoded-weights SHA-256, and for published ones the manifest's provenance and figure
    weights: dict[str, Any] | None = None


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


def _to_u8(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().clamp(0, 255).round().to(torch.uint8).numpy()


def curve_label(method: str, auc: float, fas) -> str:
    """The Pd-Fa figure's legend entry. When no threshold brings the false alarms into the
    AUC's box (Fa <= 100e-6), the area is 0 by definition: the label says so, with the
    lowest Fa reached, so that it does not read as a scoring failure."""
    if len(fas) and min(fas) >= FA_MAX * 1e6:
        return f"{method} (AUC 0: Fa >= {min(fas):.0f} at every threshold)"
    return f"{method} (AUC {auc:.1f})"


def random_crop(img: torch.Tensor, mask: torch.Tensor, targets: torch.Tensor, size: int,
                positive_fraction: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A size x size crop of an image and its mask; with probability ``positive_fraction``
    (and when ``targets``, the mask's nonzero pixels, is not empty) one that contains a
    random target pixel at a random place. Images smaller than the crop are zero-padded at
    the bottom/right first."""
    H, W = img.shape
    if H < size or W < size:
        ph, pw = max(0, size - H), max(0, size - W)
        img = torch.nn.functional.pad(img, (0, pw, 0, ph))
        mask = torch.nn.functional.pad(mask, (0, pw, 0, ph))
        H, W = img.shape
    if len(targets) and float(torch.rand((), generator=g)) < positive_fraction:
        r, c = targets[int(torch.randint(len(targets), (1,), generator=g))].tolist()
        top_lo, top_hi = max(0, r - size + 1), min(r, H - size)
        left_lo, left_hi = max(0, c - size + 1), min(c, W - size)
        top = int(torch.randint(top_lo, top_hi + 1, (1,), generator=g))
        left = int(torch.randint(left_lo, left_hi + 1, (1,), generator=g))
    else:
        top = int(torch.randint(0, H - size + 1, (1,), generator=g))
        left = int(torch.randint(0, W - size + 1, (1,), generator=g))
    return img[top:top + size, left:left + size], mask[top:top + size, left:left + size]


class IstdSuite(Suite):
    name = "istd"
    description = ("infrared small target detection: IPI, MPCM, PSTNN (and learned unfolding nets) on SIRST and "
                   "NUDT-SIRST (664 official test images; the papers quote 662)")
    metrics = ("iou", "niou", "precision", "recall", "f1", "pd", "fa", "pd_fa_auc")
    extras_type = IstdExtras
    # the learned rows: the CPU-budget checkpoints trained here, and the RPCANet authors'
    # published SIRST weights (under the weights root; skipped with a download line without it)
    grid = GridSpec(
        datasets=("sirst", "istd_synthetic"),
        degradations=DEGRADATIONS,
        methods=("ipi", "mpcm", "pstnn", "rpcanet", "l_rpcanet", *PUBLISHED_ROWS),
    )
    # the two published rows add ~3 min of one core (12 cells; 20 SIRST images at ~1.3 s each)
    quick = GridSpec(
        datasets=("sirst[limit=20]", "istd_synthetic[n_images=12]"),
        degradations=("clean", "gaussian_noise[sigma=10]", "salt_pepper[density=0.01]"),
        methods=("ipi", "mpcm", "pstnn", "rpcanet", "l_rpcanet", *PUBLISHED_ROWS),
    )
    # the scoring protocols (bench.metrics.istd.PROTOCOLS): BasicIRSTD's, and the RPCANet
    # authors' test code (`bench run --protocol rpcanet`)
    protocols = tuple(PROTOCOLS)
    default_protocol = DEFAULT_PROTOCOL
    # `bench check` runs the smoke grid on one torch thread: its problems are small, and on a
    # shared 2-core machine two threads per op stall at every barrier (40x slower measured)
    check_threads = 1
    smoke = GridSpec(
        datasets=("istd_synthetic[n_images=6,min_size=96,max_size=128]", "sirst[max_pixels=30000]"),
        degradations=("clean", "gaussian_noise[sigma=10]"),
        methods=("ipi", "mpcm", "pstnn", "rpcanet", "l_rpcanet"),
    )
    # `bench check` also covers each protocol on the first 3 SIRST test images (the rpcanet
    # protocol's resize, threshold at 0.5 x the maximum, any-overlap Pd): a classical method
    # and the authors' published SIRST weights under both (not compared, with a note, where
    # the weights root lacks the file), and the shipped network under `rpcanet` (the smoke
    # grid has it under the default), so that a learned cell of that protocol always runs
    smoke_extra = (
        GridSpec(datasets=("sirst[limit=3]",), degradations=("clean",),
                 methods=("mpcm", "rpcanet[checkpoint=published:sirst]"), protocols=("basicirstd", "rpcanet")),
        GridSpec(datasets=("sirst[limit=3]",), degradations=("clean",), methods=("rpcanet",), protocols=("rpcanet",)),
        # NUDT-SIRST, the papers' first set: its first 3 test images under the authors' protocol,
        # a classical row and the L-RPCANet authors' NUDT-SIRST weights (not compared, with a
        # note, where the weights root lacks the file)
        GridSpec(datasets=("nudt_sirst[limit=3]",), degradations=("clean",),
                 methods=("mpcm", "l_rpcanet[checkpoint=published:nudt_sirst]"), protocols=("rpcanet",)),
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
        # the cross-dataset table: the authors' weights trained on NUDT-SIRST, IRSTD-1k and
        # SIRST-Aug (RPCANet and L-RPCANet) tested on the SIRST test split, both protocols
        "cross": GridSpec(
            datasets=("sirst",),
            degradations=("clean",),
            methods=tuple(f"{m}[checkpoint=[" + ",".join(f"published:{n}" for n in CROSS_WEIGHTS) + "]]"
                          for m in ("rpcanet", "l_rpcanet")),
            protocols=("basicirstd", "rpcanet"),
        ),
        # NUDT-SIRST's main-table rows (the papers' first set; its 664 official test images):
        # the classical rows and the authors' NUDT-SIRST weights of both networks, both protocols
        "nudt": GridSpec(
            datasets=("nudt_sirst",),
            degradations=("clean",),
            methods=("ipi", "mpcm", "pstnn", *NUDT_PUBLISHED_ROWS),
            protocols=("basicirstd", "rpcanet"),
        ),
        # cross-data-set rows on NUDT-SIRST: networks trained on SIRST (the RPCANet authors'
        # SIRST file, the CPU-budget checkpoints, L-RPCANet fine-tuned on SIRST) and the authors'
        # IRSTD-1k and SIRST-Aug files, tested on NUDT-SIRST (the reverse, NUDT-SIRST weights
        # on SIRST, is the `cross` grid)
        "nudt_cross": GridSpec(
            datasets=("nudt_sirst",),
            degradations=("clean",),
            methods=("rpcanet", "l_rpcanet", *PUBLISHED_ROWS,
                     *(f"{m}[checkpoint=[published:irstd_1k,published:sirst_aug]]" for m in ("rpcanet", "l_rpcanet"))),
            protocols=("basicirstd", "rpcanet"),
        ),
        # the robustness study on NUDT-SIRST: Gaussian noise sigma 10 and 20, salt-and-pepper
        # 1 % and 5 % (and clean), the classical rows and the authors' NUDT-SIRST weights
        "nudt_robust": GridSpec(
            datasets=("nudt_sirst",),
            degradations=DEGRADATIONS,
            methods=("ipi", "mpcm", "pstnn", *NUDT_PUBLISHED_ROWS),
        ),
        # the main table's second protocol: clean SIRST under the RPCANet authors' test code,
        # the default grid's methods (the published weights skipped where their file is missing)
        "authors": GridSpec(
            datasets=("sirst",),
            degradations=("clean",),
            methods=("ipi", "mpcm", "pstnn", "rpcanet", "l_rpcanet", *PUBLISHED_ROWS),
            protocols=("rpcanet",),
        ),
    }

    def protocol_description(self, name: str) -> str:
        return PROTOCOLS[name].description

    def skip_reason(self, cell) -> str | None:
        """A learned cell whose weights file is not there is left out with one line, from the
        resolver the method loads through (:mod:`bench.weights`): a project checkpoint (the
        ablation ones are not shipped) with the `bench train` command that makes it, published
        weights with where to download the file and where to put it. A corrupt published file
        is not skipped: its cells fail naming it."""
        if R.METHODS[cell.method].family != "learned":
            return None
        from bench import weights
        ckpt = cell.mparams.get("checkpoint", "auto")
        if ckpt is None or str(ckpt).lower() == "none":
            return None
        return weights.missing_reason(weights.resolve(self.name, cell.method, str(ckpt)))

    # ------------------------------------------------------------------ task
    def make_task(self, data: IstdData, degradation, seed: int, device: str,
                  protocol: str = DEFAULT_PROTOCOL) -> Task:
        """The degraded images (noise drawn at the images' own resolution) and their masks,
        both resized as ``protocol`` says (``rpcanet``: 256x256, images bilinear and rounded
        to 8 bits, masks nearest; ``basicirstd``: as they are)."""
        proto = PROTOCOLS[protocol]
        g = torch.Generator().manual_seed(seed)
        images = tuple(degradation.apply(im, g) for im in data.images)
        masks = data.masks
        if proto.size:
            images = tuple(resize_image(im, proto.size) for im in images)
            masks = tuple(resize_mask(m, proto.size) for m in masks)
        inputs = IstdInput(tuple(im.to(device) for im in images))
        times = data.reference_times
        # the authors' IPI ran on the images at their own size: no reference for resized ones
        authors = (sum(times[n] for n in data.names) / len(data.names)
                   if times and all(n in times for n in data.names) and not proto.size else None)
        return Task(inputs=inputs, reference=masks, n_samples=len(data.images),
                    problem_id=data.instance_id if protocol == DEFAULT_PROTOCOL else f"{data.instance_id}@{protocol}",
                    problem=IstdProblem(names=tuple(data.names), notes=tuple(data.notes), source=data.source,
                                        authors_ipi_s_per_image=authors, protocol=protocol))

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
                name = task.problem.names[i] if task.problem is not None else "?"  # no problem: a validation task
                raise ValueError(f"map {i} ({name}) has "
                                 f"{int((~torch.isfinite(m)).sum())} non-finite value(s): the method diverged")

    def score(self, task: Task, output: TargetMaps):
        proto = PROTOCOLS[task.problem.protocol]
        maps = [m.detach().cpu() for m in output.maps]
        if proto.size:  # the maps of the protocol's inputs have its size already: as they are
            maps = [resize_map(m, proto.size) for m in maps]
        gts = [g.cpu() for g in task.reference]
        # the protocol's rule for probability maps (rpcanet: 0.5 x the map's maximum); classical
        # maps keep the cell's rule
        rule = proto.rule(output.segmentation)
        masks = [segment(m, rule) for m in maps]
        metrics = score_masks(masks, gts, match=proto.match)
        # learned networks' maps are probabilities: their curve thresholds the probability
        # itself; classical maps (and every map under a rule relative to the maximum) are
        # normalised (negatives to 0, / max) first
        pds, fas = pd_fa_curve(maps, gts, normalise=rule != "prob", match=proto.match)
        metrics["pd_fa_auc"] = pd_fa_auc(pds, fas)
        by_rule = {}
        for r in RULE_TABLE:
            s = masks if r == rule else [segment(m, r) for m in maps]
            sc = score_masks(s, gts, match=proto.match)
            by_rule[r] = {k: sc[k] for k in ("iou", "niou", "f1", "pd", "fa")}
        names = list(task.problem.names)
        per_image = {"names": names, "iou": [], "n_targets": [], "n_detected": [], "false_pixels": []}
        for p, g in zip(masks, gts):
            pn, gn = p.numpy().astype(bool), g.numpy().astype(bool)
            union = int((pn | gn).sum())
            per_image["iou"].append(100.0 * int((pn & gn).sum()) / union if union else 0.0)
            nt, nd, fpix, _ = proto.match(pn, gn)
            per_image["n_targets"].append(nt); per_image["n_detected"].append(nd)
            per_image["false_pixels"].append(fpix)
        visual, arrays = self._visual(task, maps, gts, masks, names)
        extras = IstdExtras(
            segmentation=rule, segmentation_rule=describe_rule(rule), protocol=proto.name,
            pd_fa_curve=PdFaCurve(thresholds=list(CURVE_THRESHOLDS), pd=pds, fa=fas, normalised=rule != "prob"),
            by_rule=by_rule, per_image=PerImage(**per_image), visual=visual, arrays=arrays,
            notes=list(task.problem.notes), authors_ipi_s_per_image=task.problem.authors_ipi_s_per_image,
            n_targets_source=task.problem.source,
        )
        return metrics, extras

    @staticmethod
    def _visual(task: Task, maps, gts, masks, names):
        """The visual grid's first N_VISUAL images, ground truths, maps (negatives at 0, / max)
        and masks as uint8 arrays for the row's artifact file; the row keeps their names."""
        visual, arrays = [], {}
        for i in range(min(N_VISUAL, len(maps))):
            m = maps[i].to(torch.float64).clamp(min=0)
            top = float(m.max())
            visual.append({"name": names[i] if i < len(names) else str(i)})
            arrays[f"visual{i}_image"] = _to_u8(task.inputs.images[i])
            arrays[f"visual{i}_truth"] = gts[i].numpy().astype(np.uint8) * 255
            arrays[f"visual{i}_map"] = _to_u8(m / top * 255 if top > 0 else m)
            arrays[f"visual{i}_mask"] = masks[i].numpy().astype(np.uint8) * 255
        return visual, arrays

    def check_values(self, row) -> dict[str, float]:
        return {k: float(v) for k, v in row["metrics"].items()}

    def tiny_task(self, method_name: str, device: str, seed: int):
        names, images, masks = synthetic_istd(2, seed, 64, 72, max_targets=2)
        task = Task(inputs=IstdInput(tuple(im.to(device) for im in images)), reference=tuple(masks),
                    n_samples=2, problem_id="tiny",
                    problem=IstdProblem(names=tuple(names), notes=(), source="synthetic_istd",
                                        authors_ipi_s_per_image=None))
        params = {}
        mp = R.METHODS[method_name].parameters
        if "max_iter" in mp:
            params["max_iter"] = 5
        return task, params

    # ------------------------------------------------------------------ training data
    #: the dataset a training job reads when it names none
    TRAINING_DATASET = "sirst"

    def training_data(self, dataset: str | None, split: str, data_root: str | None = None) -> TrainingData:
        """The ``train`` or ``val`` subset of a folder dataset with splits (``sirst``: the
        idx_427 split's 341 train and 84 val images); the ``test`` subset, which the grids
        evaluate on, is never handed out. ``samples`` is the loaded :class:`IstdData`
        (gray levels 0..255, boolean masks) and ``problem_id`` its content hash."""
        from bench.errors import BenchError, UnknownNameError
        from bench.selectors import parse_selector

        if split not in ("train", "val"):
            raise BenchError(f"split {split!r}: a training job reads the train and val subsets only "
                             f"(the test subset is what the grids evaluate)")
        selector = dataset or self.TRAINING_DATASET
        name, dparams = parse_selector(selector)
        dcls = R.DATASETS.get_or_fail(name)
        if not dcls.belongs_to(self.name):
            raise UnknownNameError(f"--dataset {name}: not a dataset of the istd suite",
                                   valid=sorted(d.name for d in R.datasets_of(self.name)), what="dataset")
        if "subset" not in dcls.parameters:
            raise BenchError(f"--dataset {name}: has no train and val subsets to train on "
                             f"(use a folder dataset with splits, such as {self.TRAINING_DATASET})")
        ds = dcls(**{**dparams, "subset": split})
        data: IstdData = ds.load(data_root)
        return TrainingData(dataset=selector, split=split, params=ds.params, problem_id=data.instance_id,
                            samples=data, source=data.source)

    def training_batch(self, data: TrainingData, size: int, generator: torch.Generator, crop: int = 64,
                       positive_fraction: float = 0.5, resize: int = 0, **options):
        """``size`` random crops of ``crop`` x ``crop`` pixels, images scaled to 0..1 and their
        masks (float), each a tensor (size, 1, crop, crop). Per crop: a random image (first
        resized to ``resize`` x ``resize`` when non-zero: bilinear image, nearest mask); with
        probability ``positive_fraction`` (when the image has targets) a crop around a random
        target pixel, else anywhere; then random left-right and up-down flips. Every draw is
        from ``generator``, in that order, so that a resumed training draws the same batches."""
        d: IstdData = data.samples
        xs, ms = [], []
        for _ in range(int(size)):
            i = int(torch.randint(len(d.images), (1,), generator=generator))
            img, mask = d.images[i] / 255.0, d.masks[i].to(torch.float32)
            if int(resize):
                s = int(resize)
                img = torch.nn.functional.interpolate(img[None, None], size=(s, s), mode="bilinear",
                                                      align_corners=False)[0, 0]
                mask = torch.nn.functional.interpolate(mask[None, None], size=(s, s), mode="nearest")[0, 0]
            x, m = random_crop(img, mask, torch.nonzero(mask), int(crop), float(positive_fraction), generator)
            if float(torch.rand((), generator=generator)) < 0.5:
                x, m = x.flip(-1), m.flip(-1)
            if float(torch.rand((), generator=generator)) < 0.5:
                x, m = x.flip(-2), m.flip(-2)
            xs.append(x)
            ms.append(m)
        return torch.stack(xs)[:, None], torch.stack(ms)[:, None]

    def validation_task(self, data: TrainingData, seed: int, limit: int = 0, **options) -> Task:
        """The first ``limit`` images of a val subset (0: all), clean, as a :class:`Task`
        like :meth:`make_task` builds (``seed`` is unused: the val images are fixed)."""
        d: IstdData = data.samples
        n = int(limit) or len(d.images)
        return Task(inputs=IstdInput(tuple(d.images[:n])), reference=tuple(d.masks[:n]), n_samples=min(n, len(d)),
                    problem_id=data.problem_id,
                    problem=IstdProblem(names=tuple(d.names[:n]), notes=tuple(d.notes), source=d.source,
                                        authors_ipi_s_per_image=None))

    # ------------------------------------------------------------------ report
    def report(self, frame, outdir: str, options) -> list[str]:
        """The tables (main, robustness per dataset, runtime, rules; the ablation and `bn`
        diagnostic tables when the store has those rows) and figures (Pd-Fa curves, the
        visual grid) declared in ``REPORT``, from the newest row of each cell."""
        from bench.report import newest

        paths: list[str] = []
        frame = protocol_sets(newest(frame))
        is_ablation = frame["method_label"].str.contains("_ablation_", regex=False)
        if is_ablation.any():
            paths += _ablation_tables(frame[is_ablation], outdir)
            frame = frame[~is_ablation]
        is_bn = _bn_image(frame)
        if is_bn.any():
            paths += _bn_tables(frame, outdir)
            frame = frame[~is_bn]
        is_cross = _cross_dataset(frame)
        if is_cross.any():
            paths += _cross_dataset_table(frame[is_cross], outdir)
            frame = frame[~is_cross]
        if frame.empty:
            return paths
        view = _View(frame)
        for part in REPORT:
            paths += part(view, outdir)
        return paths


# --------------------------------------------------------------------------- report parts
def protocol_sets(frame):
    """The rows with their protocol (a row of a frame without the column: the default), and
    the dataset label of a row of another protocol marked ``<dataset>, <protocol> protocol``:
    every table and figure groups by dataset, so rows of two protocols never share a column,
    a table or a panel (the main table shows each protocol's columns side by side)."""
    proto = (frame["protocol"].map(lambda p: p if isinstance(p, str) and p else DEFAULT_PROTOCOL)
             if "protocol" in frame.columns else [DEFAULT_PROTOCOL] * len(frame))
    proto = list(proto)
    return frame.assign(protocol=proto, dataset=[d if p == DEFAULT_PROTOCOL else f"{d}, {p} protocol"
                                                 for d, p in zip(frame["dataset"], proto)])


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


class _View:
    """What every part of the report reads: the rows (with their segmentation rule), the
    methods and datasets in table order, the clean rows and one accuracy row per (dataset,
    method) on clean images (the CPU row where there is one)."""

    def __init__(self, frame):
        from bench.report import method_order, prefer_cpu, provenance_line

        self.frame = frame.assign(rule=frame["extras"].map(lambda e: (e or {}).get("segmentation", "?")))
        self.methods = method_order(self.frame)
        # the default protocol's sets first, then each other protocol's, in PROTOCOLS order
        order = list(PROTOCOLS)
        sets = dict.fromkeys(zip(self.frame["dataset"], self.frame["protocol"]))
        self.datasets = [d for d, _ in sorted(sets, key=lambda dp: order.index(dp[1]) if dp[1] in order else 99)]
        self.rules = ", ".join(sorted({describe_rule(r) for r in self.frame["rule"]}))
        self.prov = provenance_line(self.frame)
        clean = self.frame[self.frame["degradation"] == "clean"]
        self.clean = self.frame if clean.empty else clean
        self.acc = prefer_cpu(self.clean, ["dataset", "method_label"])

    def n_images(self, ds) -> int:
        r = self.frame[self.frame["dataset"] == ds]
        return int(r["n_samples"].iloc[0]) if len(r) else 0


MAIN_METRICS = {"mIoU": "iou", "F1": "f1", "Pd": "pd", "Fa": "fa"}
ROBUSTNESS_METRICS = {"mIoU": "iou", "Pd": "pd", "Fa": "fa"}
RULE_METRICS = {"IoU": "iou", "Pd": "pd", "Fa": "fa"}
ABLATION_METRICS = {"mIoU": "iou", "nIoU": "niou", "F1": "f1", "Pd": "pd", "Fa": "fa"}
TIMES = {"params": "{:,.0f}", "CPU ms/img": "{:.1f}", "GPU ms/img": "{:.1f}"}
CAPTIONS = {
    "main": ("ISTD detection on clean test images. {protocol}; mIoU, F1, Pd in %, Fa x1e-6. Segmentation rule: "
             "{rules}. {datasets}. params: learned parameters (– for classical methods); time: median of timed "
             "repeats of the whole set divided by its number of images, on SIRST where measured (the default "
             "protocol's native-resolution set first, else a protocol's 256x256 set), else the first "
             "dataset (– where not measured). {learned}Best per column in bold. {prov}."),
    "cross": ("Cross-dataset: the authors' released weights trained on other data sets (trained on) tested "
              "unchanged on the SIRST test split ({n} images, clean), what a user gets from a published model on "
              "data it was not trained on. {protocol}; mIoU, F1, Pd in %, Fa x1e-6; maps sigmoid(T) > 0.5 (rpcanet "
              "protocol: > 0.5 x each map's maximum). SIRST-Aug is built from SIRST images: its training set may "
              "hold images of this test split (not checked). The authors' figures on their own test sets (targets "
              "on other data, not comparable with these columns): {figures}. Best per column in bold. {prov}."),
    "robustness": ("Robustness on {ds} ({n} images): mIoU (%), Pd (%) and Fa (x1e-6) against the degradation "
                   "(Gaussian noise sigma in gray levels of 0..255, salt-and-pepper density = fraction of pixels; "
                   "noise seeded per cell, identical for every method). {protocol}. Segmentation rule: {rules}. "
                   "{prov}."),
    "runtime": ("Seconds per image (clean images): median of timed repeats of the whole set / number of images; "
                "CPU threads {threads}. authors' code: the authors' IPI (Octave 7.3, OpenBLAS, 2-core machine; "
                "data/istd/reference) mean seconds per image on the same images; ratio = authors / ours (> 1: "
                "this port is faster). CPU GFLOP/s (learned networks): their convolutions' FLOPs per pass / CPU time; "
                "precision and layout are in the method's label (bf16, channels_last; fp32 by default); roof ratio: "
                "the network's forward pass against its convolutions run alone (same shapes, weights, precision, "
                "layout), on one image after the timed pass, interleaved, median of 3 (bench/flops.py; also "
                "tests/benchmarks/test_perf_istd.py). "
                "– where not measured or no reference. {protocol}. {prov}."),
    "rules": ("The same target maps (clean images) scored under each named segmentation rule: {rules}. "
              "{protocol}. No bold: rules are not methods. {prov}."),
    "stages": ("L-RPCANet ablation over the number of stages K on {ds} ({n} test images, clean): parameters and "
               "detection ({protocol}; sigmoid output > 0.5). {budget}. train s: training seconds (one torch "
               "thread, two trainings sharing a 2-core machine). {prov}."),
    "se": ("L-RPCANet ablation of the squeeze-and-excitation blocks, switched on module by module (B background, "
           "T target, N noise, D image; K = 6) on {ds} ({n} test images, clean). {protocol}. {budget}. {prov}."),
    "bn": ("Diagnostic, not a published protocol: the learned networks on {ds} ({n} test images, clean) with "
           "BatchNorm normalising by the running averages stored in the checkpoint (the papers' eval mode, the "
           "main table's rows) and by the statistics of the image being segmented (bn=image, prediction-time BN, "
           "Nado et al. 2020), one image per pass. {protocol}; mIoU, nIoU, F1, Pd in %, Fa x1e-6. {prov}."),
}


def _main_table(v: _View, outdir: str) -> list[str]:
    """Per dataset mIoU, F1, Pd, Fa (clean); learned parameters; CPU / GPU ms per image."""
    from bench.report import caption, metric_cells, metric_table, parameter_counts, pivot, write_table

    cols = [(ds, m) for ds in v.datasets for m in MAIN_METRICS] + [("", c) for c in TIMES] + [("", "weights")]
    values = pivot(v.acc, "method_label", lambda r: metric_cells(r, MAIN_METRICS, r["dataset"]), v.methods, cols)
    params, ms = parameter_counts(v.frame), _ms_per_image(v.clean)
    values[("", "weights")] = values[("", "weights")].astype(object)
    for m in v.methods:
        values.at[m, ("", "weights")] = weights_provenance(v.frame[v.frame["method_label"] == m])
        if m in params:
            values.at[m, ("", "params")] = params[m]
        for dev, col in (("cpu", "CPU ms/img"), ("cuda", "GPU ms/img")):
            if (m, dev) in ms:
                values.at[m, ("", col)] = ms[(m, dev)]
    cap = caption(CAPTIONS["main"], v.frame, protocol=protocol_text(v.frame), rules=v.rules,
                  learned=_learned_note(v.frame),
                  datasets="; ".join(f"{ds}: {v.n_images(ds)} test images" for ds in v.datasets))
    table = metric_table(values, "istd", cap, "tab:istd_main", metrics=MAIN_METRICS, fmt={**TIMES, "weights": "{}"},
                         directions={"params": None, "CPU ms/img": "min", "GPU ms/img": "min", "weights": None})
    return write_table(table, outdir, "istd_main")


def weights_provenance(rows) -> str:
    """Where a method label's weights come from, for the main table's ``weights`` column:
    ``–`` (classical), ``published (<trained on>)``, or ``trained here (<recipe>, <steps>
    steps)`` (``fine-tuned here from published:<name> ...`` for a fine-tuning), from the
    newest row's extras."""
    if rows.empty or rows["family"].iloc[0] != "learned":
        return "–"
    ex = rows["extras"].iloc[-1] or {}
    w, tr = ex.get("weights") or {}, ex.get("training") or {}
    if w.get("source") == "published":
        return f"published (trained on {w.get('trained_on')})"
    recipe = str(tr.get("recipe") or "?")
    name, _, init = recipe.partition(" from ")
    steps = f", {tr['steps']} steps" if tr.get("steps") is not None else ""
    return (f"fine-tuned here from {init} ({name}{steps})" if init
            else f"trained here ({name}{steps})")


def _cross_dataset(frame):
    """The rows of published weights trained on other data than SIRST tested on SIRST."""
    def other(r):
        w = (r["extras"] or {}).get("weights") or {}
        return (w.get("source") == "published" and w.get("name") in CROSS_WEIGHTS
                and str(r["dataset"]).startswith("sirst") and r["degradation"] == "clean")
    return frame.apply(other, axis=1) if len(frame) else frame["dataset"].astype(bool)


def _cross_dataset_table(frame, outdir: str) -> list[str]:
    """The published weights of other training sets on SIRST (clean): one row per weight
    set, mIoU/F1/Pd/Fa per protocol (a set and its protocol per column group)."""
    from bench.report import caption, metric_cells, metric_table, parameter_counts, pivot, prefer_cpu, write_table

    acc = prefer_cpu(frame, ["dataset", "method_label"])
    order = sorted(acc["method_label"].unique())
    sets = list(dict.fromkeys(acc.sort_values("protocol", key=lambda s: s.map(
        lambda p: list(PROTOCOLS).index(p) if p in PROTOCOLS else 99))["dataset"]))
    cols = [("", "trained on")] + [(ds, m) for ds in sets for m in MAIN_METRICS] + [("", "params")]
    values = pivot(acc, "method_label", lambda r: metric_cells(r, MAIN_METRICS, r["dataset"]), order, cols)
    params = parameter_counts(frame)
    values[("", "trained on")] = values[("", "trained on")].astype(object)
    figures = []
    for m in order:
        w = (acc[acc["method_label"] == m]["extras"].iloc[0] or {}).get("weights") or {}
        values.at[m, ("", "trained on")] = str(w.get("trained_on"))
        values.at[m, ("", "params")] = params.get(m, math.nan)
        fig = w.get("published_figure") or {}
        if fig:
            figures.append(f"{m}: " + ", ".join(f"{k} {v:g}" for k, v in fig.items()))
    n = int(acc["n_samples"].iloc[0]) if len(acc) else 0
    cap = caption(CAPTIONS["cross"], frame, n=n, protocol=protocol_text(frame),
                  figures="; ".join(figures) or "none recorded")
    table = metric_table(values, "istd", cap, "tab:istd_cross_dataset", metrics=MAIN_METRICS,
                         fmt={"trained on": "{}", "params": "{:,.0f}"}, directions={"trained on": None, "params": None})
    return write_table(table, outdir, "istd_cross_dataset")


def _robustness_tables(v: _View, outdir: str) -> list[str]:
    """Per dataset: mIoU, Pd, Fa against the degradation, per method."""
    from bench.report import caption, metric_cells, metric_table, pivot, prefer_cpu, slug, write_table

    paths = []
    for ds in v.datasets:
        df = prefer_cpu(v.frame[v.frame["dataset"] == ds], ["degradation", "method_label"])
        cols = [(d, m) for d in _degradation_order(df["degradation"].unique()) for m in ROBUSTNESS_METRICS]
        values = pivot(df, "method_label", lambda r: metric_cells(r, ROBUSTNESS_METRICS, r["degradation"]),
                       [m for m in v.methods if m in set(df["method_label"])], cols)
        cap = caption(CAPTIONS["robustness"], v.frame, ds=ds, n=v.n_images(ds), protocol=protocol_text(df),
                      rules=v.rules)
        paths += write_table(metric_table(values, "istd", cap, "tab:istd_robustness_" + slug(ds),
                                          metrics=ROBUSTNESS_METRICS), outdir, "istd_robustness_" + slug(ds))
    return paths


def _runtime_entry(rows, method: str) -> dict:
    """Seconds per image on CPU and GPU, and the authors' IPI code beside ours."""
    entry = {}
    for dev, col in (("cpu", "CPU s/img"), ("cuda", "GPU s/img")):
        rr = rows[rows["device"] == dev]
        entry[col] = float(rr["time_s"].iloc[0] / rr["n_samples"].iloc[0]) if len(rr) else math.nan
    authors = rows["extras"].map(lambda e: (e or {}).get("authors_ipi_s_per_image")).dropna()
    entry["authors' code s/img"] = (float(authors.iloc[0]) if len(authors) and method.split("[")[0] == "ipi"
                                    else math.nan)
    cpu = entry["CPU s/img"]
    entry["authors/ours (CPU)"] = entry["authors' code s/img"] / cpu if cpu == cpu and cpu > 0 else math.nan
    # learned networks: the convolutions' FLOPs of one pass over the set (row extras) over the
    # CPU time of that pass; the roof ratio is measured by tests/benchmarks/test_perf_istd.py
    rr = rows[rows["device"] == "cpu"]
    flops = rr["extras"].map(lambda e: (e or {}).get("conv_flops_per_run")).dropna()
    entry["CPU GFLOP/s"] = (float(flops.iloc[0]) / float(rr["time_s"].iloc[0]) / 1e9
                            if len(flops) and float(rr["time_s"].iloc[0]) > 0 else math.nan)
    roof = rr["extras"].map(lambda e: ((e or {}).get("roof") or {}).get("ratio")).dropna()
    entry["roof ratio"] = float(roof.iloc[0]) if len(roof) else math.nan
    return entry


def _runtime_table(v: _View, outdir: str) -> list[str]:
    import pandas as pd

    from bench.report import caption, metric_table, write_table

    entries, index = [], []
    for ds in v.datasets:
        dfc = v.clean[v.clean["dataset"] == ds]
        for m in v.methods:
            rows = dfc[dfc["method_label"] == m]
            if not rows.empty:
                entries.append(_runtime_entry(rows, m))
                index.append(f"{m} ({ds})")
    if not entries:
        return []
    table = metric_table(pd.DataFrame(entries, index=index), "istd",
                         caption(CAPTIONS["runtime"], v.frame, protocol=protocol_text(v.clean)),
                         "tab:istd_runtime", directions={"CPU s/img": "min", "GPU s/img": "min"},
                         fmt={"CPU s/img": "{:.3f}", "GPU s/img": "{:.3f}", "authors' code s/img": "{:.2f}",
                              "authors/ours (CPU)": "{:.1f}x", "CPU GFLOP/s": "{:.1f}",
                              "roof ratio": "{:.2f}"},
                         index_name="method (dataset)")
    return write_table(table, outdir, "istd_runtime")


def _rules_table(v: _View, outdir: str) -> list[str]:
    """The same maps (clean) scored under every named segmentation rule; no bold."""
    from bench.report import caption, metric_table, pivot, write_table

    acc = v.acc[v.acc["extras"].map(lambda e: bool((e or {}).get("by_rule")))]
    if acc.empty:
        return []

    def label(r):
        return f"{r['method_label']} ({r['dataset']})"

    def order(s):
        m = s.split(" (")[0]
        return (s.split(" (")[1], v.methods.index(m) if m in v.methods else 99)

    def cells(r):
        for rl, sc in r["extras"]["by_rule"].items():
            yield from (((rl, lab), sc.get(mk, math.nan)) for lab, mk in RULE_METRICS.items())

    index = sorted({label(r) for _, r in acc.iterrows()}, key=order)
    values = pivot(acc, label, cells, index, [(rl, m) for rl in RULE_TABLE for m in RULE_METRICS])
    cap = caption(CAPTIONS["rules"], v.frame, rules="; ".join(describe_rule(r) for r in RULE_TABLE),
                  protocol=protocol_text(acc))
    return write_table(metric_table(values, "istd", cap, "tab:istd_rules", bold=False,
                                    index_name="method (dataset)"), outdir, "istd_rules")


def _pd_fa_figure(v: _View, outdir: str) -> list[str]:
    """Pd-Fa curves (threshold-free), one panel per dataset, clean images."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.report import save_figure

    fig, axes = plt.subplots(1, len(v.datasets), figsize=(4.6 * len(v.datasets), 3.8), squeeze=False)
    for ax, ds in zip(axes[0], v.datasets):
        for m in v.methods:
            r = v.acc[(v.acc["dataset"] == ds) & (v.acc["method_label"] == m)]
            c = (r["extras"].iloc[0] or {}).get("pd_fa_curve") if len(r) else None
            if not c:
                continue
            pts = list(zip(c["fa"], c["pd"]))  # in threshold order (Pd is not monotone in Fa)
            style = "-" if r["family"].iloc[0] == "classical" else "--"
            auc = r["metrics"].iloc[0].get("pd_fa_auc", math.nan)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker=".", label=curve_label(m, auc, c["fa"]))
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("Fa (x1e-6)")
        ax.set_title(f"{ds} ({v.n_images(ds)} images, clean)", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("Pd (%)")
    pd_fa = {"basicirstd": "centroid matching, Fa over all pixels", "rpcanet": "any overlap, Fa over background"}
    fig.suptitle("Pd-Fa curves: classical maps normalised (negatives to 0, / max), learned nets' sigmoid "
                 "maps as they are (dashed; normalised too under protocol rpcanet); thresholds 0.01..0.98 joined in "
                 "order; Pd/Fa of each panel's protocol ("
                 + ", ".join(f"{p}: {pd_fa[p]}" for p in PROTOCOLS if (v.frame["protocol"] == p).any())
                 + "); AUC under the best-Pd envelope, Fa <= 100e-6", fontsize=8)
    return save_figure(fig, outdir, "istd_pd_fa")


def _visual_figure(v: _View, outdir: str) -> list[str]:
    """Images, ground truth, each method's map and mask (from the rows' artifact files, or
    the base64 PNGs of older rows), on the first SIRST selection."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.report import row_arrays, save_figure

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
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.9 * n_cols, 1.7 * n_rows), squeeze=False)
    for i in range(n_rows):
        panels = [(visual_panel(first, i, "image", first_arrays), first["extras"]["visual"][i]["name"]),
                  (visual_panel(first, i, "truth", first_arrays), "ground truth")]
        for m in order:
            r, n, arrays = vis[m]
            if i < n:
                panels += [(visual_panel(r, i, "map", arrays), f"{m} map"),
                           (visual_panel(r, i, "mask", arrays), f"{m} mask")]
        for j, (img, title) in enumerate(panels):
            axes[i][j].imshow(img, cmap="gray")
            axes[i][j].set_xticks([]); axes[i][j].set_yticks([])
            if i == 0 or j == 0:
                axes[i][j].set_title(title, fontsize=7)
    fig.suptitle(f"{vis_ds}, clean: maps shown with negatives at 0 and divided by the max; masks by rule "
                 f"{v.rules}", fontsize=8)
    return save_figure(fig, outdir, "istd_visual")


#: the report's tables and figures, in the order written
REPORT = (_main_table, _robustness_tables, _runtime_table, _rules_table, _pd_fa_figure, _visual_figure)


def _ablation_budget() -> str:
    from bench.methods.istd.learned import RECIPES
    r = RECIPES["ablation"]
    return (f"Every row trained with the same reduced recipe `ablation`: {r['steps']} Adam steps, batch "
            f"{r['batch_size']} of {r['crop']}x{r['crop']} crops ({int(100 * r['positive_fraction'])}% "
            f"around a target), lr {r['lr']:g} with poly decay, model kept by IoU on the first "
            f"{r['val_limit']} val images, seed {r['seed']}; far below the shipped networks' budget, so "
            f"differences of a few points are within training noise (one seed per row)")


def _ablation_rows(df) -> tuple[dict, dict]:
    """Stages K -> values, and SE modules -> values (K = 6), of one dataset's ablation rows."""
    from bench.report import metric_cells

    k_rows, se_rows = {}, {}
    for _, row in df.iterrows():
        e = row["extras"] or {}
        pc = row["parameter_count"]
        vals = {"params": float(pc) if pc == pc else math.nan, **dict(metric_cells(row, ABLATION_METRICS)),
                "train s": float((e.get("training") or {}).get("seconds") or math.nan)}
        ck, stages = str(e.get("checkpoint", "")), int(e.get("stages", 0) or 0)
        if "_ablation_stages" in ck:
            k_rows[stages] = vals
        if ("_ablation_stages" in ck or "_ablation_se-" in ck) and stages == 6:
            se_rows[tuple(e.get("se_modules") or ())] = vals
    return k_rows, se_rows


def _ablation_tables(frame, outdir: str) -> list[str]:
    """The slides' ablations of L-RPCANet: stages K = 1..7, and SE blocks switched on
    module by module; every row trained with the same reduced recipe (in the caption)."""
    import pandas as pd

    from bench.report import caption, metric_table, prefer_cpu, slug, write_table

    paths: list[str] = []
    frame = prefer_cpu(frame[frame["degradation"] == "clean"], ["dataset", "method_label"])
    fmt = {"params": "{:,.0f}", "train s": "{:.0f}", **{m: "{}" for m in ("background", "target", "noise", "image")}}
    for ds in dict.fromkeys(frame["dataset"]):
        df = frame[frame["dataset"] == ds]
        k_rows, se_rows = _ablation_rows(df)
        fields = dict(ds=ds, n=int(df["n_samples"].iloc[0]), protocol=protocol_text(df), budget=_ablation_budget())
        if k_rows:
            kv = pd.DataFrame([k_rows[k] for k in sorted(k_rows)], index=[str(k) for k in sorted(k_rows)])
            paths += write_table(metric_table(kv, "istd", caption(CAPTIONS["stages"], frame, **fields),
                                              "tab:istd_ablation_stages_" + slug(ds), fmt=fmt, index_name="K"),
                                 outdir, "istd_ablation_stages_" + slug(ds))
        if se_rows:
            order = sorted(se_rows, key=len)
            sv = pd.DataFrame([{**{m: "yes" if m in mods else "-" for m in ("background", "target", "noise", "image")},
                                **se_rows[mods]} for mods in order],
                              index=["+".join(SHORT[m] for m in mods) or "none" for mods in order])
            paths += write_table(metric_table(sv, "istd", caption(CAPTIONS["se"], frame, **fields),
                                              "tab:istd_ablation_se_" + slug(ds), fmt=fmt, index_name="SE in"),
                                 outdir, "istd_ablation_se_" + slug(ds))
    return paths


def _bn_tables(frame, outdir: str) -> list[str]:
    """The `bn` diagnostic: each learned network with its stored BatchNorm statistics
    (the published protocol) and with each test image's own (`bn=image`), clean images."""
    import pandas as pd

    from bench.report import caption, metric_cells, metric_table, slug, write_table

    paths: list[str] = []
    frame = frame[(frame["degradation"] == "clean") & (frame["family"] == "learned") & (frame["device"] == "cpu")]
    for ds in dict.fromkeys(frame["dataset"]):
        df = frame[frame["dataset"] == ds].sort_values("method_label")
        image_bn = _bn_image(df)
        if not image_bn.any():
            continue
        # one row per label (unique here: `newest` kept one per label and device)
        rows = [{"BN statistics": "this image" if image else "running (stored)",
                 "checkpoint": os.path.basename(str((r["extras"] or {}).get("checkpoint", "?"))),
                 **dict(metric_cells(r, ABLATION_METRICS))} for image, (_, r) in zip(image_bn, df.iterrows())]
        cap = caption(CAPTIONS["bn"], df, ds=ds, n=int(df["n_samples"].iloc[0]), protocol=protocol_text(df))
        paths += write_table(metric_table(pd.DataFrame(rows, index=list(df["method_label"])), "istd", cap,
                                          "tab:istd_bn_" + slug(ds), fmt={"BN statistics": "{}", "checkpoint": "{}"}),
                             outdir, "istd_bn_" + slug(ds))
    return paths


def _bn_image(frame):
    """Rows run with prediction-time BatchNorm (`bn=image`), read from the method parameters."""
    return frame["method_params"].map(lambda p: (p or {}).get("bn") == "image")


def _learned_note(frame) -> str:
    """What the learned rows are: checkpoint, training budget, timing rule (or nothing)."""
    learned = frame[frame["family"] == "learned"]
    if learned.empty:
        return ""
    budgets, published = {}, {}
    for _, r in learned.iterrows():
        tr = (r["extras"] or {}).get("training") or {}
        w = (r["extras"] or {}).get("weights") or {}
        if w.get("source") == "published":
            published[r["method_label"]] = (f"{r['method_label']}: github.com/{w.get('repo')} @ {w.get('commit')}, "
                                            f"trained on {w.get('trained_on')}")
        if tr.get("steps") is not None:
            budgets[r["method_label"]] = (f"{r['method_label']} {tr.get('steps')} steps / {float(tr.get('seconds') or 0):.0f} s"
                                          f" on {tr.get('threads')} thread(s)")
    return (LEARNED_NOTE + "Training (steps, seconds, threads): " + "; ".join(budgets.values())
            + (". Published weights: " + "; ".join(published.values()) if published else "")
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
