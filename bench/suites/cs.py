"""The ``cs`` suite: image compressive sensing (SPECS section 4, the ISTA-Net protocol).

Task: every image of a dataset (luminance / 255, :mod:`bench.datasets.cs`) is zero-padded
to a multiple of 33, cut into 33x33 blocks and measured block by block, y = Phi x, in
float32 as the authors' test script does (:class:`bench.operators.BlockCSOperator`); the
degradation adds measurement noise (``measurement_noise[sigma=...]``, gray levels). The CS
ratio and the matrix are the dataset's parameters (``set11[ratio=10]``): the authors'
matrices and Qinit for 1-40 %, a generated matrix (their recipe, seeded) for 50 % with
Qinit fitted on train400 blocks. A method gets :class:`~bench.methods.cs.common.CsInput`
and returns one image per input.

Scoring: protocol ``ista_net`` (:data:`bench.weights.PROTOCOLS`; :mod:`bench.metrics.cs`):
output clipped to [0, 1], PSNR (peak 255) and scikit-image SSIM (data_range 255) per
unpadded image, the set's value the mean over the images. The rows keep per-image values,
the matrix (kind, source, digest) and, for the visual grid, the reconstructions of Monarch
and Parrots (or the first two images) in the row's artifact file.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench import registry as R
from bench.datasets.cs import (AUTHORS_RATIOS, MEASUREMENTS, CsData, MeasurementNoise, data_hash,
                               generated_matrix, synthetic_image)
from bench.methods.cs.common import CsInput
from bench.metrics.cs import psnr, ssim
from bench.operators import BlockCSOperator
from bench.results import Extras
from bench.suite import GridSpec, Problem, Suite, Task, TrainingData, check_finite_tensors

RATIOS_ALL = "[1,4,10,25,30,40,50]"
VISUAL_NAMES = ("Monarch", "Parrots")
#: the classical methods of the main grid, with the parameters used in the tables
CLASSICAL = ("qinit", "block_fista", "tv_admm", "pnp_hqs")
#: the published weights (the cell's ratio's file) and the networks trained here (the shipped
#: file for the cell's ratio; skipped with the command that makes it where there is none)
LEARNED = ("ista_net", "ista_net_plus", "ista_net[checkpoint=shipped]", "ista_net_plus[checkpoint=shipped]")


@dataclass(frozen=True)
class CsProblem(Problem):
    """The cs suite's task problem (:attr:`Task.problem`)."""

    names: tuple[str, ...]                   # the images' names, in the order of the inputs
    shapes: tuple[tuple[int, int], ...]      # per image (H, W) before padding
    ratio: int                               # CS ratio, percent
    matrix_kind: str                         # "authors" or "generated" (a published network needs "authors")
    matrix_label: str                        # "authors" or "generated(seed=S)"
    matrix_source: str                       # where the matrix and Qinit come from, in words
    matrix_digest: str                       # SHA-256 (16 hex) of Phi and Qinit
    sigma: float                             # measurement noise std, gray levels (0: none)


@dataclass(frozen=True, kw_only=True)
class CsExtras(Extras):
    """A cs row's extras: per-image values, the matrix and the noise, and the learned
    methods' weights (besides the base class's checkpoint and training)."""

    names: list[str] | None = None            # the images' names
    per_image: dict[str, list[float]] | None = None   # metric -> value per image (the metric is their mean)
    ratio: int | None = None                   # CS ratio, percent
    measurements: int | None = None            # m per block
    matrix: str | None = None                  # "authors" or "generated(seed=S)"
    matrix_source: str | None = None           # in words
    matrix_digest: str | None = None           # SHA-256 (16 hex) of Phi and Qinit
    sigma: float | None = None                 # measurement noise, gray levels
    protocol: str | None = None                # the scoring protocol ("ista_net")
    visual: list[str] | None = None            # images whose reconstructions are in the artifact file
    weights: dict | None = None                # learned: where the weights come from (bench.weights)


class CsSuite(Suite):
    name = "cs"
    description = "block compressive sensing of images (ISTA-Net protocol): ISTA-Net(+) against FISTA, TV and PnP-BM3D"
    metrics = ("psnr_cs", "ssim_cs")
    extras_type = CsExtras
    dtype = torch.float32
    grid = GridSpec(
        datasets=(f"set11[ratio={RATIOS_ALL}]",),
        degradations=("measurement_noise",),
        methods=LEARNED + CLASSICAL,
    )
    quick = GridSpec(
        datasets=("set11[ratio=[10,25],names=Monarch+Parrots+cameraman]",),
        degradations=("measurement_noise",),
        methods=LEARNED + ("qinit", "block_fista", "tv_admm", "pnp_hqs"),
    )
    # the smoke grid needs no download: synthetic images and a generated matrix (the
    # untrained networks, from the authors' initialisation and the cell's seed)
    check_threads = 1
    smoke = GridSpec(
        datasets=("cs_synthetic[ratio=25,n_images=2,size=64]",),
        degradations=("measurement_noise", "measurement_noise[sigma=5]"),
        methods=("qinit", "block_ista[n_iter=30]", "block_fista[n_iter=30]", "tv_admm[n_iter=30]", "pnp_hqs[n_iter=2]",
                 "ista_net[checkpoint=none]", "ista_net_plus[checkpoint=none]"),
    )
    # `bench check` also runs the authors' published ISTA-Net+ on one Set11 image at 10 %
    # (skipped, with the download line, where the weights root lacks the file)
    smoke_extra = (GridSpec(datasets=("set11[ratio=10,names=Monarch]",), degradations=("measurement_noise",),
                            methods=("ista_net_plus",)),)
    extra_grids = {
        # robustness: measurement noise at 10 and 25 %
        "noise": GridSpec(datasets=("set11[ratio=[10,25]]",),
                          degradations=("measurement_noise[sigma=[0,2,5,10]]",),
                          methods=LEARNED + CLASSICAL),
    }

    def checkpoint_problem(self, cell) -> dict[str, Any]:
        """The cell's ratio (what the bare ``published``/``shipped`` pick a file by)."""
        return {"ratio": int({**R.DATASETS[cell.dataset].parameters, **cell.dparams}.get("ratio", 0))}

    def skip_reason(self, cell) -> str | None:
        """A learned cell with published weights is left out where they cannot apply: a
        dataset whose matrix is not the authors' (cs_synthetic, matrix=generated, ratio 50);
        one with the networks trained here (``shipped``) off Set11; then, as every suite, one
        whose file is not here (:meth:`~bench.suite.Suite.missing_weights`: where to get a
        published file, the `bench train` command for a checkpoint trained here)."""
        cls = R.METHODS[cell.method]
        if cls.family != "learned":
            return None
        from bench import weights as W
        ckpt = W.canonical(cell.mparams.get("checkpoint"))
        if ckpt is None or W.is_path(ckpt) or ckpt.startswith(W.SHIPPED_PREFIX):
            return self.missing_weights(cell)   # a file trained here: its matrix is checked when it loads
        dparams = {**R.DATASETS[cell.dataset].parameters, **cell.dparams}
        ratio, matrix = int(dparams.get("ratio", 0)), dparams.get("matrix")
        if ckpt == "shipped":            # the shipped network trained here for the cell's ratio
            if cell.dataset != "set11":
                return (f"{cls.name}[checkpoint=shipped]: the networks trained here are for Set11's matrices; "
                        f"not applicable to {cell.dataset_label()}")
            return self.missing_weights(cell)
        if cell.dataset != "set11" or matrix == "generated" or ratio not in AUTHORS_RATIOS:
            return (f"{cls.name}[checkpoint={ckpt}]: the published weights were trained with the authors' matrices "
                    f"(1-40 %); not applicable to {cell.dataset_label()} (generated matrix)")
        if W.is_published(ckpt) and ckpt != f"{W.PUBLISHED_PREFIX}ratio_{ratio}":
            return (f"{cls.name}[checkpoint={ckpt}] applies to the authors' {ckpt.split('_')[-1]} % matrix only; "
                    f"left out at {ratio} %")
        return self.missing_weights(cell)

    # ------------------------------------------------------------------ task
    def make_task(self, data: CsData, degradation, seed: int, device: str) -> Task:
        g = torch.Generator().manual_seed(seed)
        phi = data.matrix.phi.to(self.dtype)
        ys = []
        for im in data.images:
            y = BlockCSOperator(phi, tuple(im.shape)).forward(im.to(self.dtype))
            ys.append(degradation.apply(y, g))
        sigma = float(degradation.params.get("sigma", 0.0))
        shapes = tuple((int(im.shape[0]), int(im.shape[1])) for im in data.images)
        inputs = CsInput(measurements=tuple(y.to(device) for y in ys), shapes=shapes, phi=phi.to(device),
                         qinit=data.matrix.qinit.to(self.dtype).to(device), sigma=sigma / 255.0)
        m = data.matrix
        problem = CsProblem(names=tuple(data.names), shapes=shapes, ratio=m.ratio, matrix_kind=m.kind,
                            matrix_label=m.label, matrix_source=m.source, matrix_digest=m.digest, sigma=sigma)
        return Task(inputs=inputs, reference=tuple(data.images), n_samples=len(data.images),
                    problem_id=data.instance_id, problem=problem)

    def validate_output(self, task: Task, output) -> None:
        check_finite_tensors(output, task.reference, "image")

    def score(self, task: Task, output):
        p = task.problem
        outs = [o.detach().cpu().to(torch.float64) for o in output]
        per = {"psnr_cs": [psnr(o, r) for o, r in zip(outs, task.reference)],
               "ssim_cs": [ssim(o, r) for o, r in zip(outs, task.reference)]}
        metrics = {k: float(np.mean(v)) for k, v in per.items()}
        names = list(p.names)
        shown = [n for n in VISUAL_NAMES if n in names] or names[:2]
        arrays = {f"visual_{n}": _to_u8(outs[names.index(n)]) for n in shown}
        arrays.update({f"reference_{n}": _to_u8(task.reference[names.index(n)]) for n in shown})
        extras = CsExtras(names=names, per_image=per, ratio=p.ratio, measurements=MEASUREMENTS.get(p.ratio),
                          matrix=p.matrix_label, matrix_source=p.matrix_source, matrix_digest=p.matrix_digest,
                          sigma=p.sigma, protocol="ista_net", visual=shown, arrays=arrays)
        return metrics, extras

    def tiny_task(self, method_name: str, device: str, seed: int):
        """Two synthetic 40x40 images (padded to 66x66) at 25 % with a generated matrix."""
        g = torch.Generator().manual_seed(1234)
        images = [synthetic_image(40, 40, g) for _ in range(2)]
        matrix = generated_matrix(25, 0, "synthetic")
        data = CsData(names=("tiny_0", "tiny_1"), images=tuple(images), matrix=matrix, source="tiny",
                      instance_id=data_hash(images, matrix))
        task = self.make_task(data, MeasurementNoise(), seed, device)
        cls = R.METHODS[method_name]
        params = {}
        if cls.family == "learned":
            params["checkpoint"] = "none"
        if "n_iter" in cls.parameters:
            params["n_iter"] = 2 if method_name == "pnp_hqs" else 5
        return task, params

    # ------------------------------------------------------------------ training data
    #: train400's split for training here (it has none of its own): images 1-360 train, 361-400 val
    TRAIN_SPLIT = 360

    def training_data(self, dataset: str | None, split: str, data_root: str | None = None) -> TrainingData:
        """``train400`` (the default; the only training set: ISTA-Net's own 91-image blocks
        are not available) split by image: ``train`` = images 1-360, ``val`` = 361-400.
        ``samples`` is the list of images (luminance / 255); Set11 is never handed out."""
        from bench.datasets.cs import train400_images
        from bench.errors import BenchError

        if dataset not in (None, "train400"):
            raise BenchError(f"--dataset {dataset}: the cs suite trains on train400 only (Set11 is the test set)")
        if split not in ("train", "val"):
            raise BenchError(f"split {split!r}: a training job reads the train and val splits only")
        images, digest = train400_images(data_root)
        chosen = images[:self.TRAIN_SPLIT] if split == "train" else images[self.TRAIN_SPLIT:]
        h = hashlib.sha256(f"{digest}:{split}".encode()).hexdigest()[:16]
        return TrainingData(dataset="train400", split=split, params={"split_at": self.TRAIN_SPLIT}, problem_id=h,
                            samples=chosen, source=f"<data_root>/cs/train400 images {'1-360' if split == 'train' else '361-400'}")

    def training_batch(self, data: TrainingData, size: int, generator: torch.Generator, **options) -> torch.Tensor:
        """``size`` random 33x33 crops (a random image, a random position; then a random
        flip left-right) flattened row-major: (size, 1089) float64 in [0, 1]."""
        out = []
        for _ in range(int(size)):
            im = data.samples[int(torch.randint(len(data.samples), (1,), generator=generator))]
            top = int(torch.randint(im.shape[0] - 32, (1,), generator=generator))
            left = int(torch.randint(im.shape[1] - 32, (1,), generator=generator))
            b = im[top:top + 33, left:left + 33]
            if float(torch.rand((), generator=generator)) < 0.5:
                b = b.flip(-1)
            out.append(b.reshape(-1))
        return torch.stack(out)

    def validation_task(self, data: TrainingData, seed: int, **options) -> Task:
        """The non-overlapping 33x33 blocks of the val images (reference, (N, 1089)); the
        job measures them with its matrix (``seed`` is unused: the blocks are fixed)."""
        from bench.datasets.cs import training_blocks
        blocks = training_blocks(data.samples)
        return Task(inputs=None, reference=blocks, n_samples=int(blocks.shape[0]), problem_id=data.problem_id)

    # ------------------------------------------------------------------ report
    def report(self, frame, outdir: str, options) -> list[str]:
        """The CS-ratio table (PSNR/SSIM per ratio and method, parameters, seconds per image),
        per-image tables at 10 and 25 %, the robustness table (where noisy rows exist), PSNR
        against the ratio, and the visual grid, per dataset, from the newest row of each cell."""
        from bench.suites.cs_report import write_report
        return write_report(frame, outdir, options)


def _to_u8(x: torch.Tensor) -> np.ndarray:
    return np.round(np.clip(x.detach().cpu().to(torch.float64).numpy(), 0, 1) * 255).astype(np.uint8)


R.register_suite(CsSuite())
