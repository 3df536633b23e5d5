"""The ``hsi`` suite: hyperspectral image denoising (SPECS section 3, QRNN3D protocol).

Task: every clean cube of a dataset (bands last, [0, 1] as a whole) gets the cell's noise
(seeded per cell); a method receives :class:`~bench.methods.hsi.common.HsiInput` (the noisy
cubes and the sigma it may use: the true sigma in the Gaussian cases, the MAD estimate of
:func:`~bench.datasets.hsi_noise.estimate_sigma` in the blind and mixed cases) and returns
one denoised cube per noisy cube. Metrics: both named metric sets (``standard``: PSNR,
SSIM, SAM, ERGAS and ERGAS-MSIQA; ``starnet``: the STAR-Net code's conventions) are
computed for every cell, per cube, and averaged over the cubes; the report writes one
table per dataset and metric set and names the set in the caption. The seconds per cube
are the cell's time divided by its number of cubes. ``noisy`` (family ``reference``) is the
tables' "Noisy" column.

Real noisy cubes without a clean reference (``indian_pines``, :mod:`bench.datasets.hsi_realworld`)
run under the ``hsi_real`` degradation only (nothing added, sigma estimated): their rows hold
the no-reference index and the RBF SVM classification scores of
:mod:`bench.metrics.hsi_realworld` instead of the reference metrics.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from bench import registry as R
from bench.results import Extras, Record, nested
from bench.datasets.hsi import HsiData, synthetic_cube
from bench.datasets.hsi_noise import HsiGaussian, estimate_sigma
from bench.metrics.hsi import HSI_METRICS
from bench.metrics.hsi_realworld import REALWORLD_METRICS, score_real
from bench.methods.hsi.common import HsiInput
from bench.suite import GridSpec, Problem, Suite, Task, check_finite_tensors
from bench.suites.hsi_constants import CLASSICAL

#: the learned rows of the default grid: the authors' published weights (trained on ICVL /
#: unnamed data, not ours), STAR-Net with the behaviour those weights were trained with (the
#: L update never runs); skipped with a download line where the weights root lacks a file.
#: Budget: the subspace capped at 9 dimensions (max_rank=9, one cube position per pixel). The
#: authors' pipeline (max_rank=0, the methods' default) slides the cubes along every HySime
#: dimension beyond 9: on the 100-224-band cubes at sigma 10 HySime finds 33-38, which makes
#: one 64x64 cube take ~9 minutes (measured on Pavia) instead of ~30 s
PUBLISHED = ("smds_net[checkpoint=published:icvl_sigma55,max_rank=9]",
             "star_net[checkpoint=published:sigma50_bandwise,l_update=released,max_rank=9]")
#: the networks trained here (``bench train --suite hsi --method <m>``, the ``cpu`` recipe, on the
#: training split: methods/hsi/training.py), shipped as methods/hsi/checkpoints/<m>_cpu.npz;
#: the slides' STAR-Net (the L update runs) and STAR-Net-S; skipped with the command that makes
#: the file where it is absent
TRAINED = ("smds_net[checkpoint=shipped:smds_net_cpu,max_rank=9]", "star_net[checkpoint=shipped:star_net_cpu,max_rank=9]",
           "star_net_s[checkpoint=shipped:star_net_s_cpu,max_rank=9]")
METHODS = CLASSICAL + PUBLISHED + TRAINED
#: every learned variant (``--grid learned``): the published weights with the subspace capped
#: and as the authors run them, STAR-Net under both behaviours (the slides' model with the L
#: update running is the method's default) and the untrained networks (initialisation: DCT
#: dictionaries, initial thresholds), on the test split
LEARNED = ("noisy", "bm4d", "ngmeet", *PUBLISHED, *TRAINED, "smds_net[checkpoint=published:icvl_sigma55]",
           "star_net[checkpoint=published:sigma50_bandwise,l_update=released]",
           "star_net[checkpoint=published:sigma50_bandwise,max_rank=9]",
           "smds_net[checkpoint=none,max_rank=9]", "star_net[checkpoint=none,max_rank=9]",
           "star_net_s[checkpoint=none,max_rank=9]")
#: the real-data reference row: a 3x3 mean per band (smoothing alone lifts the classification)
REFERENCE_SMOOTHING = "box_filter[size=3]"
#: ``--grid test_split``: every row on the test split's cubes (CAVE chart_and_stuffed_toy,
#: Pavia, Pavia University), no scene of which any row was trained on, at the four sigmas
TEST_SPLIT = GridSpec(datasets=("hsi_split[split=test]",), degradations=("hsi_gaussian[sigma=[10,30,50,70]]",),
                      methods=METHODS)
#: ``--grid real``: the paper's real-world study: every row and the 3x3 mean on the real
#: Indian Pines cube under its own noise (no clean reference: the no-reference index and
#: the RBF SVM classification, docs/suite_hsi.md, "Real data: Indian Pines")
REAL = GridSpec(datasets=("indian_pines",), degradations=("hsi_real",), methods=(*METHODS, REFERENCE_SMOOTHING))
PREVIEW_MAX = 128  # edge of the stored false-colour previews (pixels)


@dataclass(frozen=True)
class HsiProblem(Problem):
    """The hsi suite's task problem (:attr:`Task.problem`): the cubes and the noise drawn."""

    names: tuple[str, ...]                  # the cubes' names, in the order of the inputs
    rgb_bands: tuple[int, int, int]         # bands shown as R, G, B in false-colour figures
    sigma_true: tuple[float, ...]           # per cube: the noise sigma drawn ([0, 1] scale)
    sigma_used: tuple[float, ...]           # per cube: the sigma the method gets (true or estimated)
    sigma_source: str                       # "true" (Gaussian cases) or "estimated" (MAD; blind, mixed)
    shapes: tuple[tuple[int, ...], ...]     # per cube: (H, W, B)
    has_reference: bool = True              # False: real noisy cubes, no clean cube (scored without one)
    labels: tuple = ()                      # real cubes: per cube its ground-truth class map (H, W) or None


@dataclass(frozen=True, kw_only=True)
class Preview(Record):
    """A false-colour preview of a row (the array is in the artifact file)."""

    shape: list[int] | None = None          # (h, w, 3) of the uint8 preview
    bands: list[int] | None = None          # the cube's bands shown as R, G, B
    b64: str | None = None                  # the uint8 bytes, base64 (rows stored before the artifact files)


@dataclass(frozen=True, kw_only=True)
class HsiExtras(Extras):
    """An hsi row's extras: per-cube values and the noise the cubes got (from the problem),
    and the false-colour previews' descriptions."""

    per_cube: dict[str, list[float]] | None = None  # metric -> value per cube (the metric is their mean)
    names: list[str] | None = None          # the cubes' names
    sigma_true: list[float] | None = None   # per cube: the noise sigma drawn ([0, 1] scale)
    sigma_used: list[float] | None = None   # per cube: the sigma the method got
    sigma_source: str | None = None         # "true" or "estimated"
    preview: Preview | None = nested(Preview)            # the first output cube's
    reference_preview: Preview | None = nested(Preview)  # the first clean cube's (real cubes: the noisy input's)
    per_seed: dict[str, list[float]] | None = None  # real cubes: classification metric -> value per split seed


class HsiSuite(Suite):
    name = "hsi"
    description = ("hyperspectral denoising: BM4D, LRTDTV, a subspace baseline and the learned SMDS-Net, STAR-Net, "
                   "STAR-Net-S on real cubes")
    metrics = HSI_METRICS
    extras_type = HsiExtras
    #: the default grid, the paper's main table (the slides' table) and its real-world study:
    #: two parts, so that no data set is paired with a noise case it cannot take
    grid = (TEST_SPLIT, REAL)
    #: ``--grid full``: every shipped scene and noise case. The test split's scenes (cave, pavia,
    #: pavia_university) and the synthetic set get every row; on the training split's
    #: (simu_indian, jasper_ridge, samson, abu) the trained-here rows are left out (skip_reason)
    full = (
        GridSpec(datasets=("hsi_synthetic", "cave", "simu_indian", "pavia", "pavia_university", "jasper_ridge",
                           "samson", "abu"),
                 degradations=("hsi_gaussian[sigma=[10,30,50,70]]", "hsi_blind", "hsi_mixed"), methods=METHODS),
        REAL,
    )
    quick = GridSpec(
        datasets=("hsi_synthetic[n_cubes=1]", "cave[size=64]"),
        degradations=("hsi_gaussian[sigma=[10,50]]", "hsi_mixed"),
        methods=CLASSICAL,
    )
    smoke = GridSpec(
        datasets=("hsi_synthetic[n_cubes=1,size=32]", "cave[size=32]"),
        degradations=("hsi_gaussian[sigma=30]", "hsi_mixed"),
        methods=CLASSICAL,
    )
    # learned cells for `bench check`: small blocks (16 pixels, stride 8) keep them to seconds;
    # the published STAR-Net (skipped where the weights root lacks it) and the untrained
    # SMDS-Net (no file needed, so a learned cell always runs)
    smoke_extra = (
        GridSpec(datasets=("cave[size=32]",), degradations=("hsi_gaussian[sigma=50]",),
                 methods=("star_net[checkpoint=published:sigma50_bandwise,l_update=released,block=16,block_stride=8]",
                          "smds_net[checkpoint=none,block=16,block_stride=8]")),
        # the real-data study: a 32x32 crop of Indian Pines, scored without a reference
        GridSpec(datasets=("indian_pines[size=32]",), degradations=("hsi_real",),
                 methods=("noisy", REFERENCE_SMOOTHING, "subspace_tv")),
    )
    # every learned variant on the test split of the shipped cubes (hsi_split, see
    # datasets/hsi.py) at the four sigmas: `bench run --suite hsi --grid learned`
    # `--grid test_split` and `--grid real`: the default grid's two parts (TEST_SPLIT, REAL above)
    extra_grids = {
        "real": REAL,
        # `--grid icvl`: the slides' headline table (ICVL, mean over sigma 10/30/50/70) on a user's
        # copy of the 50 QRNN3D test cubes under <data_root>/hsi/icvl (datasets/hsi_downloads.py)
        "icvl": GridSpec(datasets=("icvl",), degradations=("hsi_gaussian[sigma=[10,30,50,70]]",), methods=METHODS),
        "test_split": TEST_SPLIT,
        "learned": GridSpec(datasets=("hsi_split[split=test]",), degradations=("hsi_gaussian[sigma=[10,30,50,70]]",),
                            methods=LEARNED),
    }
    dtype = torch.float32

    # ------------------------------------------------------------------ task
    def make_task(self, data: HsiData, degradation, seed: int, device: str) -> Task:
        g = torch.Generator().manual_seed(seed)
        noisy, sigma, sigma_bands, sigma_true, known = [], [], [], [], []
        for cube in data.cubes:
            y, draw = degradation.apply(cube, g)
            noisy.append(y)
            sigma_true.append(draw.sigma)
            known.append(draw.known)
            if draw.known:
                sigma.append(draw.sigma)
                sigma_bands.append(draw.sigma_bands)
            else:
                s, sb = estimate_sigma(y)
                sigma.append(s)
                sigma_bands.append(sb)
        source = "true" if all(known) else "estimated"
        has_reference = getattr(data, "has_reference", True)
        inputs = HsiInput(noisy=tuple(y.to(device, self.dtype) for y in noisy), sigma=tuple(sigma),
                          sigma_bands=tuple(sb.to(device, self.dtype) for sb in sigma_bands),
                          sigma_source=source)
        problem = HsiProblem(names=tuple(data.names), rgb_bands=tuple(data.rgb_bands), sigma_true=tuple(sigma_true),
                             sigma_used=tuple(sigma), sigma_source=source,
                             shapes=tuple(tuple(c.shape) for c in data.cubes), has_reference=has_reference,
                             labels=tuple(getattr(data, "labels", ()) or ()))
        return Task(inputs=inputs, reference=tuple(data.cubes), n_samples=len(data.cubes),
                    problem_id=data.instance_id, problem=problem)

    def validate_output(self, task: Task, output) -> None:
        check_finite_tensors(output, task.reference, "cube")

    def score(self, task: Task, output):
        if not task.problem.has_reference:
            return self._score_real(task, output)
        per_cube = {m: [] for m in HSI_METRICS}
        for out, ref in zip(output, task.reference):
            est = out.detach().cpu().to(torch.float64)
            for m in HSI_METRICS:
                per_cube[m].append(R.METRICS[m].fn(est, ref))
        metrics = {m: float(np.mean(v)) for m, v in per_cube.items()}
        rgb = list(task.problem.rgb_bands)
        ref0 = task.reference[0]
        scale = float(np.percentile(ref0[..., rgb].numpy(), 99.5)) or 1.0
        prev, ref_prev = preview(output[0].detach().cpu(), rgb, scale), preview(ref0, rgb, scale)
        p = task.problem
        extras = HsiExtras(
            per_cube=per_cube, names=list(p.names), sigma_true=list(p.sigma_true), sigma_used=list(p.sigma_used),
            sigma_source=p.sigma_source,
            # the false-colour figure's previews go to the row's artifact file; the row keeps their shape
            preview=Preview(shape=list(prev.shape), bands=[int(b) for b in rgb]),
            reference_preview=Preview(shape=list(ref_prev.shape), bands=[int(b) for b in rgb]),
            arrays={"preview": prev, "reference_preview": ref_prev},
        )
        return metrics, extras

    def _score_real(self, task: Task, output):
        """A real noisy cube (no clean one): the no-reference index and the classification
        (:func:`bench.metrics.hsi_realworld.score_real`), averaged over the cubes; the previews
        are the output's and the noisy input's, each band stretched to the input's 99.5th
        percentile."""
        p = task.problem
        per_cube, per_seed = {m: [] for m in REALWORLD_METRICS}, {}
        for i, (out, y) in enumerate(zip(output, task.inputs.noisy)):
            labels = p.labels[i] if i < len(p.labels) else None
            m, seeds = score_real(y.detach().cpu().to(torch.float64), out.detach().cpu().to(torch.float64), labels)
            for k, v in m.items():
                per_cube[k].append(v)
            for k, v in seeds.items():
                per_seed.setdefault(k, []).extend(v)
        per_cube = {k: v for k, v in per_cube.items() if v}
        metrics = {k: float(np.mean(v)) for k, v in per_cube.items()}
        rgb = list(p.rgb_bands)
        noisy0 = task.inputs.noisy[0].detach().cpu()
        scale = np.percentile(noisy0[..., rgb].to(torch.float64).numpy().reshape(-1, 3), 99.5, axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        prev, in_prev = preview(output[0].detach().cpu(), rgb, scale), preview(noisy0, rgb, scale)
        extras = HsiExtras(
            per_cube=per_cube, names=list(p.names), sigma_true=list(p.sigma_true), sigma_used=list(p.sigma_used),
            sigma_source=p.sigma_source, per_seed=per_seed or None,
            preview=Preview(shape=list(prev.shape), bands=[int(b) for b in rgb]),
            reference_preview=Preview(shape=list(in_prev.shape), bands=[int(b) for b in rgb]),
            arrays={"preview": prev, "reference_preview": in_prev},
        )
        return metrics, extras

    def skip_reason(self, cell) -> str | None:
        """A real cube without a clean reference runs under ``hsi_real`` only, and ``hsi_real``
        (nothing added) only on such a cube; the smoothing reference row runs on real cubes only.
        A learned cell whose weights are not here is left out with one line
        (:meth:`~bench.suite.Suite.missing_weights`: where to download a published file, the
        command that makes a project checkpoint; a corrupt file is not skipped: its cells fail
        naming it), and a network trained here on a cell's scene is not scored on it."""
        real = not getattr(R.DATASETS[cell.dataset], "has_reference", True)
        if real and cell.degradation != "hsi_real":
            return (f"{cell.dataset} is a real noisy cube without a clean reference: it runs under hsi_real only "
                    "(its own noise, sigma estimated)")
        if not real and cell.degradation == "hsi_real":
            return "hsi_real adds no noise: it runs only on real noisy cubes (indian_pines), not on clean ones"
        if not real and cell.method == "box_filter":
            return "box_filter is the real-data study's reference row: it runs on real cubes (indian_pines) only"
        missing = self.missing_weights(cell)
        if missing or R.METHODS[cell.method].family != "learned":
            return missing
        from bench import weights
        ckpt = weights.canonical(cell.mparams.get("checkpoint"))
        if ckpt is None:
            return None
        return _seen_in_training(cell, weights.resolve(self.name, cell.method, ckpt))

    def check_values(self, row) -> dict[str, float]:
        return {k: v for k, v in row["metrics"].items() if k in HSI_METRICS or k in REALWORLD_METRICS}

    def tiny_task(self, method_name: str, device: str, seed: int):
        clean = torch.from_numpy(synthetic_cube(16, 16, 8, 3, seed))
        data = HsiData(cubes=(clean,), names=("tiny",), rgb_bands=(6, 4, 1), instance_id="tiny")
        task = self.make_task(data, HsiGaussian(sigma=30.0), seed, device)
        defaults = R.METHODS[method_name].parameters
        params = {"n_iter": 5} if "n_iter" in defaults else {}
        if "checkpoint" in defaults:   # learned: the untrained network (no file), blocks of the tiny cube's size
            params.update(checkpoint="none", block=12, block_stride=4)
        return task, params

    # ------------------------------------------------------------------ report
    def report(self, frame, outdir: str, options) -> list[str]:
        """One table per metric set (``options["metric_sets"]``, default standard and starnet)
        and dataset, then the runtime and parameter tables and the figures, from the newest row
        of each cell (:mod:`bench.suites.hsi_report`, outside the cells' keys)."""
        from bench.suites.hsi_report import write_report
        return write_report(frame, outdir, options)


# --------------------------------------------------------------------------- helpers
def _seen_in_training(cell, source) -> str | None:
    """A network trained here is not scored on a scene it trained or was validated on: the
    line that leaves such a cell out (the default grid's datasets include the training
    split's scenes, where only the classical and published rows are measured), else None.
    The scenes come from the checkpoint's meta and the dataset's ``scene_ids`` (None for a
    dataset that cannot name its scenes without reading files: no check)."""
    if source.entry is not None:     # published: trained on the authors' data, none of ours
        return None
    from bench.weights import planning_meta
    meta = planning_meta(source.path) or {}
    seen = set(meta.get("train_scenes") or ()) | set(meta.get("val_scenes") or ())
    scene_ids = getattr(R.DATASETS[cell.dataset](**cell.dparams), "scene_ids", None)
    scenes = scene_ids() if scene_ids else None
    both = sorted(seen & set(scenes or ()))
    if not both:
        return None
    return (f"{cell.method}[checkpoint={source.value}] trained on {', '.join(both)} (its training split): "
            "trained-here rows are scored on test scenes only (hsi_split[split=test]: cave, pavia, "
            "pavia_university)")


def preview(cube: torch.Tensor, bands, scale) -> np.ndarray:
    """Three bands of a cube as uint8 (stride-subsampled to at most PREVIEW_MAX pixels): what
    the report's false-colour figure shows (reports never rerun methods); the row's
    artifact file holds it (:mod:`bench.artifacts`). ``scale``: one value, or one per band."""
    x = cube.to(torch.float64).numpy()[..., list(bands)]
    step = max(1, math.ceil(max(x.shape[:2]) / PREVIEW_MAX))
    x = x[::step, ::step]
    return np.clip(np.round(x / scale * 255), 0, 255).astype(np.uint8)



R.register_suite(HsiSuite())
