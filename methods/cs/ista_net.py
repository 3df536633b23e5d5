"""ISTA-Net and ISTA-Net+ (Zhang and Ghanem, CVPR 2018): ISTA unrolled into 9 phases, each
a gradient step with a learned step ``lambda_step`` (rho) followed by a learned transform
F, a soft threshold ``soft_thr`` (theta) and the learned inverse transform F~:

    r = x - rho Phi^T Phi x + rho Phi^T y           (common.gradient_step, shared with ISTA)
    ISTA-Net : x = F~(soft(F(r), theta)),   F = conv(ReLU(conv(.))) 1 -> 32 -> 32, F~ 32 -> 32 -> 1
    ISTA-Net+: x = r + G(F~(soft(F(D(r)), theta))), D: 1 -> 32, F, F~: 32 -> 32 -> 32, G: 32 -> 1

on each 33x33 block (3x3 convolutions, zero padding 1, no biases), from x0 = Qinit y. Both
networks are one implementation (:class:`IstaNet`) with two configurations (``plus``); each
phase also returns the symmetry residual F~(F(.)) - identity that training penalises.
The parameters keep the authors' names within a phase (``phases.<k>.conv1_forward`` is
their ``fcs.<k>.conv1_forward``), so the published files map one to one.

Weights (``checkpoint``):

* ``published`` (default): the authors' released weights for the cell's ratio,
  ``published:ratio_<r>`` (:mod:`bench.weights`; ratios 1-40 %); ``published:ratio_<r>``
  names one file. A published file was trained with the authors' sampling matrix of its
  ratio and is refused, with the reason, on a cell measured with another matrix (another
  ratio, or a generated one);
* ``shipped``: the network trained here for the cell's ratio,
  ``shipped:<method>_ratio<r>_cpu``; ``shipped:<name>`` or a ``.npz`` path names one file
  (its matrix is checked when it loads);
* ``none``: the untrained network, initialised as the authors' code does (Xavier-normal
  convolutions, rho 0.5, theta 0.01) from the cell's seed.

:func:`identity_transforms` sets every transform to the identity (convolutions with one
centre tap): ISTA-Net then *is* ISTA with an l1 prior on the pixels and step rho, threshold
theta, and ISTA-Net+ with G = 0 is the plain gradient (Landweber) iteration; the tests
check both against :mod:`bench.methods.cs.classical`'s ``block_ista``.
"""
from __future__ import annotations

import math
import os
import re
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from bench import weights as W
from bench.errors import CheckpointError
from bench.params import Param
from bench.registry import Method, register_method
from bench.methods.cs.common import BLOCK, CsInput, gradient_step
from bench.methods.prox import soft_threshold_ista_net
from bench.train import Stage, TrainingJob

N_PHASES = 9
CHANNELS = 32
#: blocks per forward pass (memory: a 32-channel activation of 512 blocks is 71 MB in float32)
CHUNK = 512


def _conv(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, w, padding=1)


class Phase(nn.Module):
    """One phase (module docstring); parameters registered in the authors' order."""

    def __init__(self, plus: bool, channels: int = CHANNELS):
        super().__init__()
        c = channels
        self.plus = plus
        self.lambda_step = nn.Parameter(torch.tensor([0.5]))
        self.soft_thr = nn.Parameter(torch.tensor([0.01]))
        if plus:
            self.conv_D = nn.Parameter(torch.empty(c, 1, 3, 3))
        self.conv1_forward = nn.Parameter(torch.empty(c, c if plus else 1, 3, 3))
        self.conv2_forward = nn.Parameter(torch.empty(c, c, 3, 3))
        self.conv1_backward = nn.Parameter(torch.empty(c, c, 3, 3))
        self.conv2_backward = nn.Parameter(torch.empty(c if plus else 1, c, 3, 3))
        if plus:
            self.conv_G = nn.Parameter(torch.empty(1, c, 3, 3))

    def convs(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if n.startswith("conv")]

    def forward(self, x: torch.Tensor, phi_t_phi: torch.Tensor, phi_t_y: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        r = gradient_step(x, phi_t_phi, phi_t_y, self.lambda_step)
        r_img = r.view(-1, 1, BLOCK, BLOCK)
        head = _conv(r_img, self.conv_D) if self.plus else r_img
        forward = _conv(F.relu(_conv(head, self.conv1_forward)), self.conv2_forward)
        z = soft_threshold_ista_net(forward, self.soft_thr)
        back = _conv(F.relu(_conv(z, self.conv1_backward)), self.conv2_backward)
        out = r_img + _conv(back, self.conv_G) if self.plus else back
        sym = _conv(F.relu(_conv(forward, self.conv1_backward)), self.conv2_backward) - head
        return out.reshape(-1, BLOCK * BLOCK), sym


class IstaNet(nn.Module):
    """``n_phases`` phases; ``forward(y, phi, qinit)`` maps measurements (N, m) of N blocks
    to blocks (N, 1089) and the symmetry residual of every phase."""

    def __init__(self, plus: bool, n_phases: int = N_PHASES, channels: int = CHANNELS):
        super().__init__()
        self.plus = plus
        self.phases = nn.ModuleList(Phase(plus, channels) for _ in range(n_phases))

    def reset_parameters(self, seed: int) -> "IstaNet":
        """The authors' initialisation from ``seed``: Xavier-normal convolutions
        (std sqrt(2 / (fan_in + fan_out))), rho 0.5, theta 0.01."""
        g = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for ph in self.phases:
                ph.lambda_step.fill_(0.5)
                ph.soft_thr.fill_(0.01)
                for w in ph.convs():
                    fan_out, fan_in = w.shape[0] * 9, w.shape[1] * 9
                    w.copy_(torch.randn(w.shape, generator=g) * math.sqrt(2.0 / (fan_in + fan_out)))
        return self

    def forward(self, y: torch.Tensor, phi: torch.Tensor, qinit: torch.Tensor
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        phi_t_phi, phi_t_y = phi.T @ phi, y @ phi
        x = y @ qinit.T
        sym = []
        for ph in self.phases:
            x, s = ph(x, phi_t_phi, phi_t_y)
            sym.append(s)
        return x, sym

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build(plus: bool, seed: int = 0) -> IstaNet:
    return IstaNet(plus).reset_parameters(seed)


def identity_transforms(net: IstaNet) -> IstaNet:
    """Every transform of ``net`` set to the identity (in place): ISTA-Net's F maps x to
    (x, -x, 0, ...) through conv1 and back to (relu(x) - relu(-x), 0, ...) = (x, 0, ...)
    through conv2, F~ likewise, so a phase is soft(r, theta) on the pixels; ISTA-Net+'s D
    and F as those and G = 0, so a phase is r. rho and theta are left as they are."""
    with torch.no_grad():
        for ph in net.phases:
            for w in ph.convs():
                w.zero_()
            if net.plus:
                ph.conv_D[0, 0, 1, 1], ph.conv_D[1, 0, 1, 1] = 1.0, -1.0
                ph.conv1_forward[0, 0, 1, 1], ph.conv1_forward[1, 1, 1, 1] = 1.0, 1.0
            else:
                ph.conv1_forward[0, 0, 1, 1], ph.conv1_forward[1, 0, 1, 1] = 1.0, -1.0
            ph.conv2_forward[0, 0, 1, 1], ph.conv2_forward[0, 1, 1, 1] = 1.0, -1.0
            ph.conv1_backward[0, 0, 1, 1], ph.conv1_backward[1, 0, 1, 1] = 1.0, -1.0
            ph.conv2_backward[0, 0, 1, 1], ph.conv2_backward[0, 1, 1, 1] = 1.0, -1.0
            # ISTA-Net+: G stays 0
    return net


# --------------------------------------------------------------------------- published weights
AUTHORS_PREFIX = "fcs."


def published_network(plus: bool, state: dict[str, torch.Tensor], what: str, parameters: int | None = None) -> IstaNet:
    """The network holding an authors' state_dict (``module.`` already stripped): keys
    ``fcs.<k>.<name>`` mapped to ``phases.<k>.<name>``, the number of phases read from the
    keys, loaded strictly (:func:`bench.weights.strict_match` names the first key or shape
    that does not fit: an ISTA-Net file offered to ISTA-Net+ fails on ``conv_D``)."""
    import re

    phases = {int(m.group(1)) for k in state if (m := re.match(r"fcs\.(\d+)\.", k))}
    if not phases:
        first = next(iter(state), None)
        raise CheckpointError(f"{what}: not an ISTA-Net state_dict (no key fcs.<phase>.*; first key {first!r})")
    net = IstaNet(plus, n_phases=max(phases) + 1)
    ours = net.state_dict()
    names = {AUTHORS_PREFIX + k[len("phases."):]: k for k in ours}
    W.strict_match({a: tuple(ours[k].shape) for a, k in names.items()}, state, what)
    net.load_state_dict({names[a]: v.float() for a, v in state.items()}, strict=True)
    if parameters is not None and net.parameter_count() != parameters:
        raise CheckpointError(f"{what}: {net.parameter_count():,} parameters, the manifest says {parameters:,}")
    return net


def published_ratio(entry: W.Published) -> int:
    """The CS ratio (%) a published file was trained for (its name ``ratio_<r>``)."""
    return int(entry.name.split("_", 1)[1])


def trained_file(method: str, ratio: int) -> str:
    """The shipped network trained here for a ratio (``checkpoint=shipped``): what
    ``bench train --suite cs --method <m> --set ratio=<r>`` writes by default,
    ``methods/cs/checkpoints/<m>_ratio<r>_cpu.npz``."""
    return W.shipped_checkpoint("cs", f"{method}_ratio{int(ratio)}_cpu")


def _parameter_specs(method: str) -> dict[str, Param]:
    return {"checkpoint": W.checkpoint_param(
        method, help="published: the authors' weights for the cell's ratio; published:ratio_<r>: one "
                     "file; shipped: the network trained here for the cell's ratio "
                     "(methods/cs/checkpoints/<method>_ratio<r>_cpu.npz); none: untrained (the "
                     "authors' initialisation from the cell's seed); a .npz path: a network trained "
                     "here (`bench train --suite cs`)")}


class _IstaNetMethod(Method):
    """ISTA-Net or ISTA-Net+ (``plus``) on every block of the set, in chunks of CHUNK blocks."""

    suite = "cs"
    family = "learned"
    devices = ("cpu", "cuda")
    parameters = {"checkpoint": "published"}
    loads_published: ClassVar[bool] = True
    # one timed repeat after a warm-up on one image: Set11 takes 25-60 s on one core
    max_repeat: ClassVar[int] = 1
    plus: ClassVar[bool] = False
    source_dependencies = ("bench.methods.cs.common",)

    # ------------------------------------------------------------------ weights
    def source_for(self, problem) -> W.WeightsSource | None:
        """The published weights this cell loads (None for ``none``), checked against the
        cell's matrix: a file trained for another ratio's matrix, or any published file on
        a generated matrix, is refused with :class:`CheckpointError` saying why."""
        ckpt = W.canonical(self.params["checkpoint"])
        if ckpt is None:
            return None
        if ckpt == "shipped" or ckpt.startswith(W.SHIPPED_PREFIX) or W.is_path(ckpt):
            # its matrix is checked when it is read (setup)
            return W.resolve("cs", self.name, ckpt, problem=problem)
        ratio, kind = int(problem.ratio), str(problem.matrix_kind)
        if ckpt == "published":
            names = W.published_names(self.name)
            if f"ratio_{ratio}" not in names:
                raise CheckpointError(f"{self.name}: no published weights for ratio {ratio} % (the authors released "
                                      f"{', '.join(n.split('_')[1] for n in names)} %); use checkpoint=none or a "
                                      f"network trained here")
            ckpt = f"{W.PUBLISHED_PREFIX}ratio_{ratio}"
        source = W.resolve("cs", self.name, ckpt)
        trained_for = published_ratio(source.entry)
        if trained_for != ratio or kind != "authors":
            measured = f"the authors' {ratio} % matrix" if kind == "authors" else f"a {kind} {ratio} % matrix"
            raise CheckpointError(
                f"{self.name}[checkpoint={ckpt}] was trained with the authors' {trained_for} % sampling matrix "
                f"(phi_0_{trained_for}_1089.mat) and applies to it only; this cell measures with {measured}"
                + (f": use checkpoint=published:ratio_{ratio} or checkpoint=published"
                   if kind == "authors" and f"ratio_{ratio}" in W.published_names(self.name) else ""))
        return source

    def setup(self, context) -> None:
        super().setup(context)
        source = self.source_for(context.problem)
        self._source = source
        self._meta = {}
        if source is None:
            net = build(self.plus, context.seed)
        elif source.entry is None:
            net, self._meta = self._trained(source.path, context.problem)
        else:
            net = W.load_network(source, lambda state, what, n: published_network(self.plus, state, what, n))
        self._net = net.to(context.device).eval()

    def _trained(self, path: str, problem) -> tuple[IstaNet, dict]:
        """A network trained here: its metadata must name this method and the cell's matrix
        (by digest); the weights are decoded against the initialisation of its seed."""
        from bench.checkpoints import load_checkpoint
        meta = W.trained_meta("cs", self.name, path)
        if meta.get("matrix_digest") != problem.matrix_digest:
            raise CheckpointError(f"checkpoint {path} was trained with the {meta.get('ratio')} % matrix "
                                  f"{meta.get('matrix')} (digest {meta.get('matrix_digest')}); this cell measures at "
                                  f"{problem.ratio} % with {problem.matrix_label} ({problem.matrix_digest}): train one "
                                  f"for it (`{meta.get('how_to_reproduce')}` with --set ratio={problem.ratio})")
        state, meta = load_checkpoint(path, reference=build(self.plus, int(meta.get("seed", 0))).state_dict(),
                                      expect={"method": self.name})
        net = IstaNet(self.plus)
        net.load_state_dict(state)
        return net, meta

    @classmethod
    def training_job(cls, recipe: str = "cpu", dataset: str | None = None, seed: int | None = None,
                     overrides: dict[str, Any] | None = None, device: str = "cpu", data_root: str | None = None,
                     options: dict[str, Any] | None = None):
        job = CsTrainingJob(cls.name, cls.plus, recipe, dataset, seed, overrides or {}, device, data_root)
        return job, job.default_path()

    @classmethod
    def weights_digest(cls, params) -> str:
        """The files a cell may read: for ``published`` every published file of the method
        (the cell's ratio picks one), for ``published:<name>`` that one."""
        from bench.fingerprint import files_digest
        ckpt = W.canonical(params.get("checkpoint", "published"))
        if ckpt is None:
            return ""
        if ckpt == "published":
            return files_digest([W.file_of(e) for e in W.entries(method=cls.name)])
        if ckpt == "shipped":       # the cell's ratio picks one of the shipped files
            import glob
            return files_digest(sorted(glob.glob(trained_file(cls.name, 0).replace("ratio0", "ratio*"))))
        return W.weights_digest(W.resolve("cs", cls.name, ckpt))

    @classmethod
    def default_checkpoint(cls, problem, kind: str = "published") -> str | None:
        """For the problem's ratio: ``published``, the authors' file ``published:ratio_<r>``
        (None for a ratio they released none for); ``shipped``, the network trained here,
        ``shipped:<method>_ratio<r>_cpu``."""
        ratio = W.fact(problem, "ratio")
        if ratio is None:
            return None
        if kind == "shipped":
            return f"{W.SHIPPED_PREFIX}{cls.name}_ratio{int(ratio)}_cpu"
        name = f"ratio_{int(ratio)}"
        return W.PUBLISHED_PREFIX + name if name in W.published_names(cls.name) else None

    @classmethod
    def make_command(cls, stem: str) -> str:
        """``<method>_ratio<r>_cpu``: the training with the ratio's matrix."""
        m = re.search(r"_ratio(\d+)_", stem)
        return W.train_command("cs", cls.name, overrides={"ratio": int(m.group(1))} if m else None)

    # ------------------------------------------------------------------ running
    def run(self, inputs: CsInput) -> tuple[torch.Tensor, ...]:
        y = inputs.stacked()
        net = self._net.to(y.dtype)
        phi, qinit = inputs.phi.to(y.dtype), inputs.qinit.to(y.dtype)
        with torch.no_grad():
            blocks = torch.cat([net(chunk, phi, qinit)[0] for chunk in torch.split(y, CHUNK)])
        return inputs.split(blocks)

    def warm_up(self, inputs: CsInput) -> None:
        """The runner's untimed warm-up: the first image only."""
        self.run(inputs.subset([0]))

    def parameter_count(self) -> int | None:
        net = getattr(self, "_net", None)
        return (net if net is not None else IstaNet(self.plus)).parameter_count()

    def row_extras(self) -> dict[str, Any]:
        from bench.checkpoints import decoded_digest
        rec: dict[str, Any] = {"decoded_sha256": decoded_digest(self._net.state_dict())}
        src = self._source
        if src is None:
            return {"checkpoint": "none", "training": {"recipe": "none (untrained)"}, "weights": {"source": "none", **rec}}
        if src.entry is None:        # trained here (shipped or a path)
            m = self._meta
            tr = m.get("training", {})
            rec.update({"source": "file", "checkpoint": src.label, "file_sha256": W.sha256_of(src.path)})
            return {"checkpoint": src.label, "weights": rec, "how_to_reproduce": m.get("how_to_reproduce"),
                    "training": {"recipe": (m.get("recipe") or {}).get("name"), "steps": tr.get("steps"),
                                 "seconds": tr.get("seconds"), "threads": tr.get("torch_threads"),
                                 "validation": m.get("validation"), "train_hash": m.get("train_hash")}}
        e = src.entry
        rec.update({"source": "published", "checkpoint": src.label, "file_sha256": W.sha256_of(src.path),
                    "name": e.name, "file": e.path, "repo": e.repo, "commit": e.commit, "source_path": e.source_path,
                    "licence": e.licence, "trained_on": e.trained_on, "published_figure": e.figure_text(),
                    "published_protocol": e.protocol})
        return {"checkpoint": src.label, "training": {"recipe": "published", "dataset": e.trained_on, "source": e.source},
                "weights": rec}


@register_method
class IstaNetMethod(_IstaNetMethod):
    name = "ista_net"
    display_name = "ISTA-Net"
    plus = False
    parameter_specs = _parameter_specs("ista_net")
    description = ("ISTA-Net (Zhang, Ghanem, CVPR 2018): 9 unrolled ISTA phases with learned 2-layer transforms and "
                   "thresholds, 171,090 parameters; checkpoint=published: the authors' weights for the cell's ratio")


@register_method
class IstaNetPlusMethod(_IstaNetMethod):
    name = "ista_net_plus"
    display_name, display_name_tex = "ISTA-Net+", r"ISTA-Net$^+$"
    plus = True
    parameter_specs = _parameter_specs("ista_net_plus")
    description = ("ISTA-Net+ (Zhang, Ghanem, CVPR 2018): ISTA-Net with a residual path (D, G convolutions), "
                   "336,978 parameters; checkpoint=published: the authors' weights for the cell's ratio")


# =========================================================================== training
#: ``cpu``: a short recipe for a 2-core machine (the authors: 200 epochs of their 88,912
#: blocks, batch 64, Adam lr 1e-4, on a GPU). Blocks are random 33x33 crops of the train400
#: train split (images 1-360), validation on the non-overlapping blocks of images 361-400
#: (``val_blocks``: the first N of them, 0: all 1,000). 400 steps of batch 32 took 38 min of
#: one loaded core for ISTA-Net+ at 25 % (Set11 27.45 dB, 5.0 below the published weights:
#: the budget is 1/1,400 of the authors'; docs/suite_cs.md).
RECIPES: dict[str, dict[str, Any]] = {
    "cpu": {"ratio": 25, "steps": 400, "batch_size": 32, "lr": 3e-4, "eval_every": 50, "seed": 0,
            "symmetry_weight": 0.01, "matrix": "auto", "matrix_seed": 0, "val_blocks": 300},
}


class CsTrainingJob(TrainingJob):
    """MSE(x_9, x) + symmetry_weight x sum over phases of mean((F~(F(x)) - x)^2), Adam, on
    training blocks measured with the ratio's matrix (the cell's matrix: a checkpoint is
    tied to it by its digest); the state with the best validation PSNR is kept."""

    score_name = "val_psnr"
    score_direction = "max"

    def __init__(self, method: str, plus: bool, recipe: str, dataset: str | None, seed: int | None,
                 overrides: dict[str, Any], device: str = "cpu", data_root: str | None = None):
        from bench import registry as R
        from bench.datasets.cs import sampling_matrix
        from bench.errors import UnknownNameError

        if recipe not in RECIPES:
            raise UnknownNameError(f"unknown recipe {recipe!r}", valid=sorted(RECIPES), what="recipe")
        cfg = dict(RECIPES[recipe])
        unknown = sorted(set(overrides) - set(cfg))
        if unknown:
            raise UnknownNameError(f"unknown recipe key(s) {', '.join(unknown)}", valid=sorted(cfg), what="recipe key")
        cfg.update(overrides)
        if seed is not None:
            cfg["seed"] = int(seed)
        self.method, self.plus, self.device, self.overrides = method, plus, device, dict(overrides)
        self.seed = int(cfg["seed"])
        self.suite = R.SUITES.get_or_fail("cs")
        self.train_data = self.suite.training_data(dataset, "train", data_root)
        self.val_data = self.suite.training_data(dataset, "val", data_root)
        self.matrix = sampling_matrix(int(cfg["ratio"]), str(cfg["matrix"]), int(cfg["matrix_seed"]), data_root)
        self.phi = self.matrix.phi.float().to(device)
        self.qinit = self.matrix.qinit.float().to(device)
        val = self.suite.validation_task(self.val_data, self.seed).reference
        self.val_blocks = (val[:int(cfg["val_blocks"])] if int(cfg["val_blocks"]) else val).float().to(device)
        torch.manual_seed(self.seed)
        self.model = build(plus, self.seed).to(device)
        self.recipe = {"name": recipe + ("+" + ",".join(f"{k}={v}" for k, v in sorted(overrides.items()))
                                         if overrides else ""), "base": recipe, **cfg,
                       "train_blocks": "random 33x33 crops of " + self.train_data.source,
                       "val_blocks": self.val_data.source}

    # what the trainer calls
    def schedule(self):
        c = self.recipe
        return [Stage("train", int(c["steps"]), float(c["lr"]), {}, None, int(c["eval_every"]))]

    def batch(self, generator):
        return self.suite.training_batch(self.train_data, int(self.recipe["batch_size"]), generator).float().to(self.device)

    def loss(self, x, stage):
        out, sym = self.model(x @ self.phi.T, self.phi, self.qinit)
        constraint = sum(torch.mean(s ** 2) for s in sym)
        return torch.mean((out - x) ** 2) + float(self.recipe["symmetry_weight"]) * constraint

    def validate(self, stage):
        x = self.val_blocks
        out = torch.cat([self.model(c @ self.phi.T, self.phi, self.qinit)[0] for c in torch.split(x, CHUNK)])
        mse = float(torch.mean((out.clamp(0, 1) - x) ** 2))
        return {"val_psnr": 10 * math.log10(1.0 / mse) if mse > 0 else 100.0}

    def checkpoint_meta(self):
        return {"method": self.method, "ratio": self.matrix.ratio, "matrix": self.matrix.label,
                "matrix_digest": self.matrix.digest, "matrix_source": self.matrix.source, "device": self.device,
                "parameter_count": self.model.parameter_count(), "train_hash": self.train_data.problem_id,
                "how_to_reproduce": self.command()}

    def reference_state(self):
        return build(self.plus, self.seed).state_dict()

    def command(self) -> str:
        cmd = W.train_command("cs", self.method, self.recipe["base"], self.overrides)
        return cmd + (f" --seed {self.seed}" if self.seed != RECIPES[self.recipe["base"]]["seed"] else "")

    def default_path(self) -> str:
        """The shipped file ``checkpoint=shipped`` reads for the recipe as it stands (only the
        ratio set); anything else goes under results/."""
        from bench import paths
        if set(self.overrides) <= {"ratio"} and self.seed == RECIPES[self.recipe["base"]]["seed"] \
                and self.recipe["base"] == "cpu":
            return trained_file(self.method, self.matrix.ratio)
        return os.path.join(paths.trained_checkpoints("cs"),
                            f"{self.method}_ratio{self.matrix.ratio}_{self.recipe['base']}_seed{self.seed}.npz")
