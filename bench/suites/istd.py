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

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench import registry as R
from bench.results import Extras, Record, nested
from bench.datasets.istd import IstdData
from bench.datasets.istd_synthetic import synthetic_istd
from bench.methods.istd.common import IstdInput, TargetMaps
from bench.metrics.istd import (CURVE_THRESHOLDS, DEFAULT_PROTOCOL, PROTOCOLS, SEGMENTATION_RULES,
                                describe_rule, pd_fa_auc, pd_fa_curve, resize_image, resize_map, resize_mask,
                                score_masks, segment)
from bench.suite import GridSpec, Problem, Suite, Task, TrainingData
from bench.suites.istd_constants import CROSS_WEIGHTS, RULE_TABLE, SHIPPED_TRAINED_ON

N_VISUAL = 4
DEGRADATIONS = ("clean", "gaussian_noise[sigma=10]", "gaussian_noise[sigma=20]",
                "salt_pepper[density=0.01]", "salt_pepper[density=0.05]")
ABLATION_STAGES = tuple(range(1, 8))
ABLATION_SE = ((), ("background",), ("background", "target"), ("background", "target", "noise"))
ABLATION_CHECKPOINTS = tuple([f"l_rpcanet_ablation_stages{k}" for k in ABLATION_STAGES]
                             + ["l_rpcanet_ablation_se-" + ("+".join(m) or "none") for m in ABLATION_SE])
#: the ablations on NUDT-SIRST, each fine-tuned here from the authors' NUDT-SIRST file (the
#: paper's K = 6 with all four SE modules) with the ``ablation_finetune`` recipe: its first K
#: stages, and its blocks less the dropped SE ones; ``stages6`` is that file's network itself,
#: fine-tuned with the same recipe (the control of both tables)
NUDT_ABLATION_CHECKPOINTS = tuple(
    [f"l_rpcanet_nudt_sirst_ablation_stages{k}_from_nudt_sirst" for k in range(1, 7)]
    + [f"l_rpcanet_nudt_sirst_ablation_se-{'+'.join(m) or 'none'}_from_nudt_sirst" for m in ABLATION_SE])
#: the learned rows beside the CPU-trained networks in the default, quick and authors grids:
#: the RPCANet authors' SIRST weights, and L-RPCANet fine-tuned here on SIRST from the authors'
#: NUDT-SIRST weights (`bench train ... --recipe finetune --init published:nudt_sirst`; stored as
#: a delta from that file); both skipped, with the download line, without the weights root
PUBLISHED_ROWS = ("rpcanet[checkpoint=published:sirst]", "l_rpcanet[checkpoint=shipped:l_rpcanet_sirst_from_nudt_sirst]")
#: the NUDT-SIRST rows of both networks: the authors' own NUDT-SIRST files (the L-RPCANet one is
#: the paper's K=6 configuration with all four SE modules)
NUDT_PUBLISHED_ROWS = ("rpcanet[checkpoint=published:nudt_sirst]", "l_rpcanet[checkpoint=published:nudt_sirst]")
#: the NUDT-SIRST images of the ``nudt_robust`` grid: the first quarter of the official test list
NUDT_ROBUST_SET = "nudt_sirst[limit=166]"
#: ``--grid sirst``, the default grid's first part: SIRST's test split, clean, every row, both
#: protocols. The learned rows: the CPU-budget checkpoints trained here, the RPCANet authors'
#: SIRST weights and L-RPCANet fine-tuned here from its authors' NUDT-SIRST weights (the
#: published files under the weights root, fetched on first use)
SIRST_MAIN = GridSpec(datasets=("sirst",), degradations=("clean",),
                      methods=("ipi", "mpcm", "pstnn", "rpcanet", "l_rpcanet", *PUBLISHED_ROWS),
                      protocols=("basicirstd", "rpcanet"))
#: ``--grid nudt``, the default grid's second part: the 664 NUDT-SIRST test images, clean, both
#: protocols: IPI, MPCM, PSTNN and the authors' NUDT-SIRST files of RPCANet and L-RPCANet (the
#: L-RPCANet file is the paper's K=6 with all four SE modules). The networks trained here on
#: SIRST are cross-dataset rows on it (``--grid nudt_cross``)
NUDT_MAIN = GridSpec(datasets=("nudt_sirst",), degradations=("clean",),
                     methods=("ipi", "mpcm", "pstnn", *NUDT_PUBLISHED_ROWS), protocols=("basicirstd", "rpcanet"))


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


def _to_u8(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().clamp(0, 255).round().to(torch.uint8).numpy()


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
    train_dataset = SHIPPED_TRAINED_ON   # `bench train --dataset sirst`: the shipped checkpoints' training set
    #: the default grid, the papers' main table on the data sets at hand, clean, under both
    #: scoring protocols: SIRST and NUDT-SIRST (the report reads each set's columns with the
    #: authors' weights trained on that set: one "RPCANet†" row)
    grid = (SIRST_MAIN, NUDT_MAIN)
    #: ``--grid full``: SIRST and the synthetic set under every degradation (default protocol)
    full = GridSpec(
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
            methods=("l_rpcanet[checkpoint=[" + ",".join("shipped:" + c for c in ABLATION_CHECKPOINTS) + "]]",),
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
        "sirst": SIRST_MAIN,
        "nudt": NUDT_MAIN,
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
        # 1 % and 5 % (and clean), the classical rows and the authors' NUDT-SIRST weights, on
        # the first 166 of the 664 test images (a quarter: the official test list is in no
        # order of scene or size, so its head is a sample of the set). All 664 under the five
        # cases cost about 5 h of one CPU thread; `--dataset nudt_sirst` runs them
        "nudt_robust": GridSpec(
            datasets=(NUDT_ROBUST_SET,),
            degradations=DEGRADATIONS,
            methods=("ipi", "mpcm", "pstnn", *NUDT_PUBLISHED_ROWS),
        ),
        # the ablations on NUDT-SIRST (K = 1..6, SE none / B / B+T / B+T+N, each fine-tuned here
        # from the authors' NUDT-SIRST file) beside that file as released, on the robustness
        # grid's 166 images, both protocols (one run per network: the inputs are equal)
        "nudt_ablation": GridSpec(
            datasets=(NUDT_ROBUST_SET,),
            degradations=("clean",),
            methods=("l_rpcanet[checkpoint=[" + ",".join("shipped:" + c for c in NUDT_ABLATION_CHECKPOINTS) + "]]",
                     "l_rpcanet[checkpoint=published:nudt_sirst]"),
            protocols=("basicirstd", "rpcanet"),
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
        idx_427 split's 341 train and 84 val images; a split without a val list, such as
        NUDT-SIRST's 50_50, validates on every 10th image of its train list and trains on the
        rest: :func:`bench.datasets.istd.hold_out`); the ``test`` subset, which the grids
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
        # a split without a val list (NUDT-SIRST's): train and validate on parts of its train list
        held_out = hasattr(dcls, "has_subset") and not dcls(**dparams).has_subset(data_root, "val")
        ds = dcls(**{**dparams, "subset": "train" if held_out else split})
        data: IstdData = ds.load(data_root)
        if held_out:
            from bench.datasets.istd import hold_out
            data = hold_out(data, split)
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
        from bench.suites.istd_report import write_report
        return write_report(frame, outdir, options)


R.register_suite(IstdSuite())
