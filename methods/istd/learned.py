"""Learned unfolding networks for ISTD (SPECS section 2): RPCANet and L-RPCANet.

Both unfold the RPCA model D = B + T (+ N) into K stages; each stage updates the
background B, the target T, for L-RPCANet the noise N, and the image D, with a small CNN
per update. One network class, :class:`UnfoldingNet`, builds both from a
:class:`NetConfig` (what each module looks like), so that the ablations (number of stages
K, squeeze-and-excitation per module) are configurations, not copies.

Per stage, with ``cnn_X`` the module of update X (SPECS; x the update's input):

* background  x = D - T (- N);  B = x + cnn_B(x)
* target      x = T + D - B (- N);  T = x - eps * cnn_T(x), eps learnable (init 0.01)
* noise       x = N + D - B - T;  N = x - sigma * cnn_N(x), sigma learnable (init 0.01)
* image       D = cnn_D(B + T (+ N))

A module is ``first conv (1 -> c, k x k) [BN] ReLU``, ``n x (conv c -> c 3x3 [BN] ReLU)``,
then (L-RPCANet) ``conv c -> 32 3x3`` and a squeeze-and-excitation block (reduction 16),
then ``conv -> 1 3x3``. RPCANet: c = 32, 3x3 first convs, BN in B and D, 3/6/3 hidden
layers for B/T/D: 679,896 parameters for 6 stages (the public code's count; pinned in a
test). L-RPCANet: the public code's configuration (xianchaoxiu/L-RPCANet,
models/LRPCANet.py): 1x1 bottleneck to c = 16 in B and T, 3x3 to 16 in N, D at 32 channels
without bottleneck, SE in every module: 475,188 parameters for 6 stages (pinned in a test).
The slides report 0.216M: that is the configuration of the authors' SIRST-Aug file, with
bottleneck 4 instead of 16 (215,916 parameters; ``checkpoint=published:sirst_aug``).

``checkpoint=published:<name>`` loads the authors' released weights (:mod:`bench.weights`):
the configuration is read from the file's shapes (:func:`infer_published_config`), the
authors' key names are mapped onto these modules (:func:`authors_key`) and the file is
loaded strictly (:func:`published_network`).

L-RPCANet's noise across stages: the public code restarts N at zero in every stage (its
outer loop carries D and T only). ``noise_carry=False`` (default) follows the code;
``noise_carry=True`` carries N like B and T (the slides' algorithm as written).

The map a method returns is sigmoid(T_K); segmentation rule ``prob`` (> 0.5), as SPECS
says for learned networks. Inputs are gray levels / 255 at the image's native resolution
(the networks are fully convolutional; the public code resizes to 256x256 first, which
the BasicIRSTD protocol at native resolution does not).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from bench import weights as W
from bench.errors import BenchError, CheckpointError
from bench.methods.istd.common import IstdInput, TargetMaps, shape_batches
from bench.params import Param
from bench.precision import PRECISIONS, autocast, check_precision, memory_format
from bench.registry import Method, register_method
from bench.train import Stage as TrainStage
from bench.train import TrainingJob

MODULES = ("background", "target", "noise", "image")


@dataclass(frozen=True)
class ModuleSpec:
    first_kernel: int      # 1: a 1x1 bottleneck; 3: a 3x3 conv
    width: int             # channels of the hidden layers
    hidden: int            # number of hidden conv layers (c -> c, 3x3)
    batchnorm: bool
    widen_to: int = 0      # > 0: conv width -> widen_to (3x3) before the SE block
    se: bool = False       # squeeze-and-excitation on the last feature map


@dataclass(frozen=True)
class NetConfig:
    stages: int
    background: ModuleSpec
    target: ModuleSpec
    image: ModuleSpec
    noise: ModuleSpec | None = None   # None: no noise module (RPCANet)
    noise_carry: bool = False
    se_reduction: int = 16

    def with_se(self, modules: tuple[str, ...]) -> "NetConfig":
        """The same network with SE blocks in exactly ``modules``."""
        out = self
        for m in MODULES:
            spec = getattr(self, m)
            if spec is not None:
                out = dataclasses.replace(out, **{m: dataclasses.replace(spec, se=m in modules)})
        return out

    def se_modules(self) -> tuple[str, ...]:
        return tuple(m for m in MODULES if getattr(self, m) is not None and getattr(self, m).se)


RPCANET = NetConfig(
    stages=6,
    background=ModuleSpec(3, 32, 3, True),
    target=ModuleSpec(3, 32, 6, False),
    image=ModuleSpec(3, 32, 3, True),
)

L_RPCANET = NetConfig(
    stages=6,
    background=ModuleSpec(1, 16, 3, True, widen_to=32, se=True),
    target=ModuleSpec(1, 16, 6, False, widen_to=32, se=True),
    noise=ModuleSpec(3, 16, 6, False, widen_to=32, se=True),
    image=ModuleSpec(3, 32, 3, True, se=True),
)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int):
        super().__init__()
        mid = max(1, channels // reduction)
        self.fc = nn.Sequential(nn.Conv2d(channels, mid, 1), nn.ReLU(), nn.Conv2d(mid, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(dim=(-2, -1), keepdim=True))


class ConvModule(nn.Module):
    """1 channel in, 1 channel out: the CNN of one update (see the module docstring)."""

    def __init__(self, spec: ModuleSpec, se_reduction: int = 16):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for i in range(spec.hidden + 1):
            k = spec.first_kernel if i == 0 else 3
            layers.append(nn.Conv2d(c_in, spec.width, k, padding=k // 2))
            if spec.batchnorm:
                layers.append(nn.BatchNorm2d(spec.width))
            layers.append(nn.ReLU(inplace=True))
            c_in = spec.width
        if spec.widen_to:
            layers.append(nn.Conv2d(c_in, spec.widen_to, 3, padding=1))
            c_in = spec.widen_to
        self.features = nn.Sequential(*layers)
        self.se = SqueezeExcite(c_in, se_reduction) if spec.se else nn.Identity()
        self.out = nn.Conv2d(c_in, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.se(self.features(x)))


class Stage(nn.Module):
    def __init__(self, cfg: NetConfig):
        super().__init__()
        r = cfg.se_reduction
        self.background = ConvModule(cfg.background, r)
        self.target = ConvModule(cfg.target, r)
        self.eps = nn.Parameter(torch.tensor([0.01]))
        self.noise = ConvModule(cfg.noise, r) if cfg.noise is not None else None
        self.sigma = nn.Parameter(torch.tensor([0.01])) if cfg.noise is not None else None
        self.image = ConvModule(cfg.image, r)

    def forward(self, D, T, N):
        if self.noise is None:
            x = D - T
            B = x + self.background(x)
            x = T + D - B
            T = x - self.eps * self.target(x)
            return self.image(B + T), T, N
        x = D - T - N
        B = x + self.background(x)
        x = T + D - B - N
        T = x - self.eps * self.target(x)
        x = N + D - B - T
        N = x - self.sigma * self.noise(x)
        return self.image(B + T + N), T, N


class UnfoldingNet(nn.Module):
    """K stages; ``forward(D)`` returns (D_K, T_K) for images (batch, 1, H, W) in [0, 1]."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        self.stages = nn.ModuleList(Stage(cfg) for _ in range(cfg.stages))

    def reset_parameters(self, seed: int) -> "UnfoldingNet":
        """Deterministic initialisation from ``seed`` (Xavier-normal convs, zero biases left
        as torch's default uniform, BN weight 1 bias 0, as the public code): the loader
        rebuilds it to decode float16-delta checkpoints."""
        g = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                    fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
                    std = (2.0 / (fan_in + fan_out)) ** 0.5
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g) * std)
                    bound = 1.0 / fan_in ** 0.5
                    m.bias.copy_((torch.rand(m.bias.shape, generator=g) * 2 - 1) * bound)
                elif isinstance(m, nn.BatchNorm2d):
                    m.weight.fill_(1.0)
                    m.bias.zero_()
                    m.running_mean.zero_()
                    m.running_var.fill_(1.0)
                    m.num_batches_tracked.zero_()
            for s in self.stages:
                s.eps.fill_(0.01)
                if s.sigma is not None:
                    s.sigma.fill_(0.01)
        return self

    def forward(self, D: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        T = torch.zeros_like(D)
        N = torch.zeros_like(D)
        for s in self.stages:
            D, T, N_new = s(D, T, N)
            N = N_new if self.cfg.noise_carry else N  # the public code restarts N at zero
        return D, T

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build(cfg: NetConfig, seed: int = 0) -> UnfoldingNet:
    return UnfoldingNet(cfg).reset_parameters(seed)


# =========================================================================== methods
CHECKPOINT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoints")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = {"rpcanet": RPCANET, "l_rpcanet": L_RPCANET}

# Named training recipes. ``cpu``: what the shipped checkpoints were trained with on a 2-core
# machine (random 64x64 crops of the native-resolution SIRST train images, half of them
# centred near a target, flips; poly decay); ``paper``: the public code's protocol for a GPU
# (whole images resized to 256x256, batch 8, 400 epochs of 32 steps, poly decay 0.9);
# ``ablation``: the reduced budget every ablation row gets (same for every row).
# ``val_limit``: the first images of the val split used for model selection (0: all 84); the
# CPU recipes validate on part of it because one pass over all 84 images at native
# resolution costs about 3 minutes on one core.
# ``precision`` / ``channels_last``: the forward pass in bf16 autocast and the NHWC layout
# (bench/precision.py; the loss is computed in float32); every recipe names fp32, the default
# layout: ``--set precision=bf16 --set channels_last=true`` where the CPU has native bf16.
# ``iou_over``: the SoftIoU per image (``image``, the public codes', every recipe's) or over
# the whole batch (``batch``, a named variant: target-free crops, which the paper recipe
# never has, keep a gradient on their false blobs; see :func:`soft_iou_loss`). Tried as the
# ``cpu`` recipe's and not kept: better validation, worse test (docs/suite_istd.md).
RECIPES: dict[str, dict[str, Any]] = {
    "cpu": {"steps": 800, "batch_size": 8, "crop": 64, "resize": 0, "positive_fraction": 0.5, "lr": 5e-4,
            "poly_power": 0.9, "eval_every": 200, "seed": 0, "val_limit": 42, "iou_over": "image",
            "precision": "fp32", "channels_last": False},
    "ablation": {"steps": 300, "batch_size": 8, "crop": 64, "resize": 0, "positive_fraction": 0.5, "lr": 5e-4,
                 "poly_power": 0.9, "eval_every": 300, "seed": 0, "val_limit": 10, "iou_over": "image",
                 "precision": "fp32", "channels_last": False},
    # fine-tuning published weights (``bench train --init published:<name>``): larger crops
    # (128, a quarter placed on a target: about the share of target pixels of whole images)
    # at a tenth of the cpu recipe's learning rate, validated from step 0 on (the published
    # state is the first candidate: the kept state is never worse on val than the start).
    # The cpu recipe's 64-pixel crops, half on a target, at 2e-4 were tried first and made
    # the NUDT-SIRST weights over-detect: val IoU 49.2 -> 28.5 (Fa 1134e-6) in 250 steps
    "finetune": {"steps": 600, "batch_size": 4, "crop": 128, "resize": 0, "positive_fraction": 0.25, "lr": 5e-5,
                 "poly_power": 0.9, "eval_every": 100, "seed": 0, "val_limit": 42, "iou_over": "image",
                 "precision": "fp32", "channels_last": False},
    "paper": {"steps": 12800, "batch_size": 8, "crop": 256, "resize": 256, "positive_fraction": 0.0,
              "lr": 5e-4, "poly_power": 0.9, "eval_every": 32, "seed": 42, "val_limit": 0,
              "iou_over": "image", "precision": "fp32", "channels_last": False},
}
#: recipe keys added after checkpoints were shipped, with the value those checkpoints were
#: trained with: before the key existed its value was the only behaviour (``iou_over`` came
#: with commit fb950a3; the shipped ``cpu`` checkpoints predate it and used the per-image loss)
#: (``precision`` and ``channels_last``, bench/precision.py, came with issue 19; every earlier
#: checkpoint was trained in fp32 in the default layout)
RECIPE_KEYS_ADDED: dict[str, Any] = {"iou_over": "image", "precision": "fp32", "channels_last": False}


def checkpoint_recipe(meta: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's recipe with the keys added since it was written (``RECIPE_KEYS_ADDED``)
    filled in, so that it compares with the recipe ``bench train`` builds today."""
    recipe = dict(meta.get("recipe") or {})
    for key, value in RECIPE_KEYS_ADDED.items():
        recipe.setdefault(key, value)
    return recipe


# per-network differences (the public codes): MSE weight 0.01 (RPCANet) / 0.1 (L-RPCANet);
# the paper recipe's learning rate 1e-4 for L-RPCANet
LOSS_GAMMA = {"rpcanet": 0.01, "l_rpcanet": 0.1}
PAPER_LR = {"rpcanet": 5e-4, "l_rpcanet": 1e-4}
NET_KEYS = ("stages", "se", "noise_carry")


def net_config(method: str, stages: int | None = None, se: Any = None, noise_carry: bool | None = None) -> NetConfig:
    """The configuration of ``method`` with the ablation knobs applied: number of stages,
    modules with SE (a list of module names, ``all`` or ``none``), N carried or restarted."""
    cfg = CONFIGS[method]
    if stages is not None:
        if int(stages) < 1:
            raise BenchError(f"stages={stages}: need at least 1")
        cfg = dataclasses.replace(cfg, stages=int(stages))
    if se is not None:
        mods = _se_list(se, cfg)
        cfg = cfg.with_se(mods)
    if noise_carry is not None:
        if cfg.noise is None and noise_carry:
            raise BenchError(f"{method} has no noise module: noise_carry does not apply")
        cfg = dataclasses.replace(cfg, noise_carry=bool(noise_carry))
    return cfg


def _se_list(se: Any, cfg: NetConfig) -> tuple[str, ...]:
    present = tuple(m for m in MODULES if getattr(cfg, m) is not None)
    if isinstance(se, str):
        if se in ("all", "none", ""):
            return present if se == "all" else ()
        se = [s for s in se.replace("+", ",").split(",") if s]
    mods = tuple(se)
    bad = [m for m in mods if m not in present]
    if bad:
        raise BenchError(f"se: unknown module(s) {', '.join(bad)}; this network's modules: {', '.join(present)}")
    return tuple(m for m in present if m in mods)


def config_dict(cfg: NetConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def config_from_dict(d: dict[str, Any]) -> NetConfig:
    specs = {k: (ModuleSpec(**d[k]) if d.get(k) is not None else None) for k in MODULES}
    return NetConfig(stages=int(d["stages"]), noise_carry=bool(d.get("noise_carry", False)),
                     se_reduction=int(d.get("se_reduction", 16)), **specs)


def train_command(method: str, recipe: str = "cpu", overrides: dict[str, Any] | None = None,
                  out: str | None = None) -> str:
    """``python -m bench train --suite istd --method <method> --dataset sirst --recipe <recipe>``
    with a ``--set`` per override (:func:`bench.weights.train_command`)."""
    return W.train_command("istd", method, recipe, overrides, out)


def ablation_name(method: str, overrides: dict[str, Any]) -> str:
    """File stem of an ablation checkpoint: ``l_rpcanet_ablation_stages3``,
    ``l_rpcanet_ablation_se-background+target`` (pass it as ``checkpoint=<stem>``)."""
    parts = [f"{k}{_fmt(v)}" if k == "stages" else f"{k.replace('_', '')}-{_fmt(v) or 'none'}"
             for k, v in sorted(overrides.items())]
    return f"{method}_ablation_" + ("_".join(parts) or "base")


# =========================================================================== published weights
# The authors' state_dicts (fengyiwu98/RPCANet models/RPCANet.py, xianchaoxiu/L-RPCANet
# models/LRPCANet.py) name the modules of stage i ``decos.<i>.{lowrank, sparse, residual,
# merge}``; each holds its layers in a Sequential (``convs``; ``mapping`` for merge) whose
# indices are this project's ``features`` indices (ReLUs take an index in both). RPCANet ends
# the Sequential with the output conv; L-RPCANet's modules end with an SE block
# (``channel_attention.excitation``) and a ``final_conv``. The learnable steps are
# ``sparse.epsilon`` and ``residual.sigma``. Both public codes' forward passes are this
# project's Stage.forward (N restarted at zero in every stage), so the weights load as they are.
AUTHORS_MODULES = {"background": "lowrank", "target": "sparse", "noise": "residual", "image": "merge"}
AUTHORS_STEPS = {"eps": "sparse.epsilon", "sigma": "residual.sigma"}


def _authors_sequential(module: str) -> str:
    return "mapping" if module == "image" else "convs"


def _ends_with_final_conv(spec: ModuleSpec) -> bool:
    """L-RPCANet's layout (SE block and ``final_conv``) rather than RPCANet's (the output
    conv last in the Sequential): a module with an SE block or a widening conv."""
    return spec.se or bool(spec.widen_to)


def _n_features(spec: ModuleSpec) -> int:
    """Entries of a module's ``features`` Sequential (conv, [BN], ReLU per layer; the widening conv)."""
    return (spec.hidden + 1) * (3 if spec.batchnorm else 2) + (1 if spec.widen_to else 0)


def authors_key(key: str, cfg: NetConfig) -> str:
    """The authors' name of this project's state_dict key ``key`` of a network ``cfg``."""
    parts = key.split(".")
    stage, name, rest = parts[1], parts[2], parts[3:]
    if name in AUTHORS_STEPS:
        return f"decos.{stage}.{AUTHORS_STEPS[name]}"
    spec = getattr(cfg, name)
    pre = f"decos.{stage}.{AUTHORS_MODULES[name]}."
    seq = _authors_sequential(name)
    if rest[0] == "features":
        return pre + seq + "." + ".".join(rest[1:])
    if rest[0] == "se":  # se.fc.<j>.<param>
        return pre + "channel_attention.excitation." + ".".join(rest[2:])
    if rest[0] == "out":
        if _ends_with_final_conv(spec):
            return pre + "final_conv." + rest[1]
        return pre + f"{seq}.{_n_features(spec)}.{rest[1]}"
    raise ValueError(f"no authors' name for {key!r}")


def infer_published_config(state: dict[str, torch.Tensor], what: str) -> NetConfig:
    """The network configuration of an authors' RPCANet-family state_dict, read from the
    shapes of its first stage: the number of stages, and per module the first kernel, the
    width, the hidden layers, BatchNorm, a widening conv (an output width that differs from
    the module's width) and an SE block (and its reduction). Every stage and every key is then
    checked against it (:func:`published_network`)."""
    import re

    stages = {int(m.group(1)) for k in state if (m := re.match(r"decos\.(\d+)\.", k))}
    if not stages:
        first = next(iter(state), None)
        raise CheckpointError(f"{what}: not an RPCANet-family state_dict (no key decos.<stage>.*; first key {first!r})")
    specs: dict[str, ModuleSpec | None] = {}
    reduction = 16
    for module, authors in AUTHORS_MODULES.items():
        pre = f"decos.0.{authors}."
        if not any(k.startswith(pre) for k in state):
            if module != "noise":
                raise CheckpointError(f"{what}: no {authors} module (keys {pre}*) in stage 0")
            specs[module] = None
            continue
        seq = re.escape(pre + _authors_sequential(module))
        convs = sorted((int(m.group(1)), v) for k, v in state.items()
                       if (m := re.fullmatch(seq + r"\.(\d+)\.weight", k)) and v.ndim == 4)
        weights = [v for _, v in convs]
        if pre + "final_conv.weight" not in state:
            weights = weights[:-1]  # RPCANet: the last conv of the Sequential is the output
        if not weights:
            raise CheckpointError(f"{what}: the {authors} module of stage 0 has no convolution")
        width, kernel = int(weights[0].shape[0]), int(weights[0].shape[-1])
        widen = 0
        if len(weights) > 1 and int(weights[-1].shape[0]) != width:
            widen = int(weights[-1].shape[0])
            weights = weights[:-1]
        bn = any(re.fullmatch(seq + r"\.\d+\.running_mean", k) for k in state)
        se = pre + "channel_attention.excitation.0.weight" in state
        if se:
            mid = int(state[pre + "channel_attention.excitation.0.weight"].shape[0])
            reduction = max(1, int(state[pre + "channel_attention.excitation.0.weight"].shape[1]) // max(1, mid))
        specs[module] = ModuleSpec(kernel, width, len(weights) - 1, bn, widen_to=widen, se=se)
    return NetConfig(stages=max(stages) + 1, se_reduction=reduction, **specs)


def published_network(method: str, state: dict[str, torch.Tensor], what: str,
                      parameters: int | None = None) -> UnfoldingNet:
    """``method``'s network holding an authors' state_dict: the configuration inferred from
    its shapes (:func:`infer_published_config`), every key mapped onto this project's modules
    (:func:`authors_key`) and loaded strictly. A state whose keys or shapes do not fit that
    network, one of the other method (a noise module or not), or whose parameter count is
    not ``parameters`` is refused with :class:`CheckpointError` naming the first mismatch."""
    cfg = infer_published_config(state, what)
    if (cfg.noise is not None) != (CONFIGS[method].noise is not None):
        kind = "has a noise module (L-RPCANet)" if cfg.noise is not None else "has no noise module (RPCANet)"
        raise CheckpointError(f"{what}: the state_dict {kind}: it is not {method}'s")
    net = UnfoldingNet(cfg)
    ours = net.state_dict()
    names = {authors_key(k, cfg): k for k in ours}
    W.strict_match({a: tuple(ours[k].shape) for a, k in names.items()}, state, what)
    net.load_state_dict({names[a]: v for a, v in state.items()}, strict=True)
    if parameters is not None and net.parameter_count() != parameters:
        raise CheckpointError(f"{what}: {net.parameter_count():,} parameters, the manifest says {parameters:,}")
    return net


BN_MODES = ("running", "image")


def _parameter_specs(method: str) -> dict[str, Param]:
    """The parameter specs of ``method``: its ``checkpoint`` accepts ``published:<name>``
    only for the names of its manifest entries (a typo stops ``bench run`` with exit 2 and
    the valid names)."""
    names = W.published_names(method)
    where_help = ("published:<name> only for " + ", ".join(W.PUBLISHED_PREFIX + n for n in names)
                  if names else "no published:<name>")
    return {"checkpoint": Param(str, where=lambda v, m=method: W.valid_published(m, v), where_help=where_help,
                                help=W.checkpoint_help(method, "auto: the shipped one; a name under "
                                                               "methods/istd/checkpoints; or a .npz path")),
            "bn": Param(str, choices=BN_MODES),
            "precision": Param(str, choices=PRECISIONS,
                               help="fp32 (default) or bf16: autocast to bfloat16 around the network, only "
                                    "where the device computes bf16 natively (bench/precision.py)"),
            "channels_last": Param(bool, help="network and inputs in channels_last (NHWC) memory format")}


class _IstdLearned(Method):
    """A trained RPCANet-family network: loads its checkpoint in ``setup`` (not timed): a
    project checkpoint (shipped or trained here) or the authors' published weights."""

    suite = "istd"
    family = "learned"
    devices = ("cpu", "cuda")
    # bn: which statistics the BatchNorm layers normalise with at inference.
    #   "running" (default; the papers' and public codes' eval mode): the running averages
    #     stored in the checkpoint;
    #   "image": prediction-time BN (Nado et al., 2020, arXiv:2006.10963): the statistics of
    #     the image being segmented, one image per forward pass; the stored averages are
    #     neither used nor changed. A diagnostic of how much a short training's running
    #     statistics cost, not the published protocol (docs/suite_istd.md).
    # checkpoint: where the weights come from (:func:`bench.weights.resolve`): auto, a shipped
    #   name, a .npz path, or published:<name>, the authors' weights (bench.weights.MANIFEST)
    # precision / channels_last: bench/precision.py (fp32 and the default layout by default)
    parameters = {"checkpoint": "auto", "bn": "running", "precision": "fp32", "channels_last": False}
    BN_MODES: ClassVar[tuple[str, ...]] = BN_MODES
    parameter_specs = _parameter_specs("")
    source_dependencies = ("bench.methods.istd.common",)
    # one timed repeat after the warm-up: a whole test set takes about a minute on a 2-core CPU
    max_repeat: ClassVar[int] = 1
    #: accepts ``checkpoint=published:<name>`` (``bench weights`` lists the selector)
    loads_published: ClassVar[bool] = True
    fine_tunes: ClassVar[bool] = True

    def setup(self, context) -> None:
        super().setup(context)
        if self.params["bn"] not in self.BN_MODES:
            raise BenchError(f"{self.name}: bn={self.params['bn']!r}; valid: {', '.join(self.BN_MODES)}")
        check_precision(self.params["precision"], context.device, self.name)
        ckpt = self.params["checkpoint"]
        if ckpt is None or str(ckpt).lower() == "none":
            raise CheckpointError(f"{self.name}: an untrained network detects nothing; pass checkpoint=auto or a path")
        source = W.resolve("istd", self.name, str(ckpt))
        self._source = source
        if source.entry is not None:
            e = source.entry
            state = W.load_published(e)  # its sha256 checked first: a corrupt file fails here, named
            net = published_network(self.name, state, f"{e.selector} ({source.path})", e.parameters)
            self._net = net.to(context.device).eval()
            self._place(context.device)
            self._path, self._meta = source.path, {"method": self.name, "config": config_dict(net.cfg)}
            return
        path = source.path
        if not os.path.exists(path):
            raise CheckpointError(f"{self.name}: no checkpoint at {path}; train it with "
                                  f"`{train_command(self.name, out=None if ckpt == 'auto' else path)}`")
        from bench.checkpoints import load_checkpoint, read_checkpoint_meta
        meta = read_checkpoint_meta(path)
        if meta.get("method") != self.name:
            raise CheckpointError(f"checkpoint {path} belongs to method {meta.get('method')!r}, not {self.name!r}: "
                                  f"pass {self.name}'s checkpoint (`{train_command(self.name)}`)")
        try:
            cfg = config_from_dict(meta["config"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"checkpoint {path} has no readable network configuration ({e}); "
                                  f"retrain it (`{meta.get('how_to_reproduce') or train_command(self.name)}`)") from None
        net = UnfoldingNet(cfg)
        reference = _reference_of(self.name, meta, path)
        state, _ = load_checkpoint(path, reference=reference)
        try:
            net.load_state_dict(state)
        except RuntimeError as e:
            raise CheckpointError(f"checkpoint {path} does not fit {self.name} ({str(e).splitlines()[0]}); "
                                  f"retrain it (`{meta.get('how_to_reproduce')}`)") from None
        self._net = net.to(context.device).eval()
        self._place(context.device)
        self._path, self._meta = path, meta

    def _place(self, device: str) -> None:
        self._device = str(device)
        self._format = memory_format(bool(self.params["channels_last"]))
        self._net = self._net.to(memory_format=self._format)
        # the convolutions' FLOPs per pixel (every convolution keeps the image's size): the
        # runtime table's achieved GFLOP/s (bench/flops.py)
        from bench.flops import conv_flops, conv_layers
        probe = torch.zeros(1, 1, 16, 16, device=device)
        self._flops_per_pixel = conv_flops(conv_layers(self._net, probe)) / 256.0
        self._conv_flops = 0.0

    def run(self, inputs: IstdInput) -> TargetMaps:
        maps: list = [None] * len(inputs.images)
        if self.params["bn"] == "image":
            # one image per pass: a stacked batch would share its statistics across images
            groups = [[i] for i in range(len(inputs.images))]
        else:
            groups = shape_batches(inputs.images)
        self._conv_flops = self._flops_per_pixel * sum(int(im.shape[-1]) * int(im.shape[-2]) for im in inputs.images)
        with torch.no_grad(), image_batch_norm(self._net, self.params["bn"] == "image"):
            for idx in groups:
                x = torch.stack([inputs.images[i] for i in idx]).to(torch.float32).unsqueeze(1) / 255.0
                x = x.contiguous(memory_format=self._format)
                self._roof_probe = x[:1]
                with autocast(self.params["precision"], self._device):
                    _, T = self._net(x)
                prob = torch.sigmoid(T[:, 0].float()).contiguous()
                for k, i in enumerate(idx):
                    maps[i] = prob[k]
        return TargetMaps(tuple(maps), "prob")

    def warm_up(self, inputs: IstdInput) -> None:
        """The runner's untimed warm-up: the network on the first image only (a whole test set
        takes a minute on a 2-core CPU; one image allocates the buffers and loads the kernels)."""
        self.run(IstdInput(inputs.images[:1]))

    def parameter_count(self) -> int | None:
        net = getattr(self, "_net", None)
        return net.parameter_count() if net is not None else build(CONFIGS[self.name]).parameter_count()

    def weights_record(self) -> dict[str, Any]:
        """What the row records of the loaded weights: where they come from, the file's
        SHA-256 and the digest of the decoded weights (:func:`bench.checkpoints.decoded_digest`);
        for published weights also the manifest's provenance (repository, commit, licence,
        training data, the published figure and its protocol: targets, never table values)."""
        from bench.checkpoints import decoded_digest
        src = self._source
        rec = {"source": src.kind, "checkpoint": src.label, "file_sha256": W.sha256_of(self._path),
               "decoded_sha256": decoded_digest(self._net.state_dict())}
        e = src.entry
        if e is not None:
            rec.update({"name": e.name, "file": e.path, "repo": e.repo, "commit": e.commit,
                        "source_path": e.source_path, "licence": e.licence, "trained_on": e.trained_on,
                        "published_figure": dict(e.figure), "published_protocol": e.protocol})
        return rec

    def row_extras(self) -> dict[str, Any]:
        return {**self._row_extras(), "conv_flops_per_run": self._conv_flops,
                "precision": self.params["precision"], "channels_last": bool(self.params["channels_last"]),
                **self._roof_record()}

    def _roof_record(self, repeats: int = 3) -> dict[str, Any]:
        """The network's convolution FLOP rate against the roof, measured in the same run after
        the timed pass (not timed with it): on the last batch's first image, the network's
        forward pass and its convolutions alone (:func:`bench.flops.roof_pass`, the same
        shapes, weights, precision and layout), interleaved, median of ``repeats`` each."""
        import statistics
        import time

        from bench.flops import conv_flops, conv_layers, roof_pass
        x = getattr(self, "_roof_probe", None)
        if x is None or self._device != "cpu":
            return {}
        ctx = lambda: autocast(self.params["precision"], self._device)  # noqa: E731
        layers = conv_layers(self._net, x, ctx())
        flops = conv_flops(layers)
        net_t, roof_t = [], []
        with torch.no_grad():
            for _ in range(repeats):
                t0 = time.perf_counter()
                with ctx():
                    self._net(x)
                net_t.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                roof_pass(layers, ctx())
                roof_t.append(time.perf_counter() - t0)
        net_s, roof_s = statistics.median(net_t), statistics.median(roof_t)
        return {"roof": {"image": list(x.shape[-2:]), "conv_flops": flops, "net_gflops": flops / net_s / 1e9,
                         "roof_gflops": flops / roof_s / 1e9, "ratio": roof_s / net_s, "repeats": repeats,
                         "threads": torch.get_num_threads()}}

    def _row_extras(self) -> dict[str, Any]:
        m = self._meta
        if self._source.entry is not None:
            e = self._source.entry
            cfg = self._net.cfg
            return {"checkpoint": self._source.label, "config": m.get("config"),
                    "se_modules": list(cfg.se_modules()), "stages": cfg.stages,
                    "training": {"recipe": "published", "dataset": e.trained_on, "source": e.source},
                    "weights": self.weights_record()}
        tr = m.get("training", {})
        return {"checkpoint": os.path.relpath(self._path, REPO_ROOT), "config": m.get("config"),
                "se_modules": list(config_from_dict(m["config"]).se_modules()),
                "stages": m["config"]["stages"],
                "training": {"recipe": m.get("recipe", {}).get("name"), "steps": tr.get("steps"),
                             "seconds": tr.get("seconds"), "threads": tr.get("torch_threads"),
                             "device": m.get("device"), "train_split_hash": m.get("train_hash"),
                             "validation": m.get("validation")},
                "how_to_reproduce": m.get("how_to_reproduce"), "weights": self.weights_record()}

    @classmethod
    def training_job(cls, recipe: str = "cpu", snr=None, dataset: str | None = None, seed: int | None = None,
                     overrides: dict[str, Any] | None = None, device: str = "cpu",
                     data_root: str | None = None, init: str | None = None):
        if snr is not None:
            raise BenchError("--snr does not apply to the istd suite (train on clean images)")
        job = IstdTrainingJob(cls.name, recipe, dataset, seed, overrides or {}, device, data_root, init)
        return job, job.default_path()

    @classmethod
    def weights_digest(cls, params) -> str:
        """The file the cell reads, shipped, trained or published (part of its key; resolved by
        :func:`bench.weights.resolve`, as the loading and the suite's skip are)."""
        ckpt = params.get("checkpoint", "auto")
        if ckpt is None or str(ckpt).lower() == "none":
            return ""
        return W.weights_digest(W.resolve("istd", cls.name, str(ckpt)))


@register_method
class RpcaNet(_IstdLearned):
    name = "rpcanet"
    parameter_specs = _parameter_specs("rpcanet")
    description = ("RPCANet (Wu et al., WACV 2024): 6 unfolded stages of background, target and image CNNs, "
                   "679,896 parameters; trained on SIRST (checkpoint=auto: the shipped CPU-budget one)")


@register_method
class LRpcaNet(_IstdLearned):
    name = "l_rpcanet"
    parameter_specs = _parameter_specs("l_rpcanet")
    description = ("L-RPCANet (Liu, Han, Xiu): RPCANet plus a noise module, 1x1 bottlenecks and SE blocks; the "
                   "public code's configuration, 475,188 parameters; trained on SIRST")


def _reference_of(method: str, meta: dict[str, Any], path: str) -> dict[str, torch.Tensor]:
    """The state a checkpoint's deltas are stored against: the seeded initialisation, or for
    a fine-tuned one (``meta["init"]``) the published weights it started from, which must be
    under the weights root with the SHA-256 the checkpoint recorded."""
    init = meta.get("init")
    if not init:
        return build(config_from_dict(meta["config"]), int(meta.get("seed", 0))).state_dict()
    source = W.resolve("istd", method, init["checkpoint"])
    reason = W.missing_reason(source)
    if reason is not None:
        raise CheckpointError(f"checkpoint {path} is stored as a delta from {init['checkpoint']}: {reason}")
    if source.entry.sha256 != init.get("sha256"):
        raise CheckpointError(f"checkpoint {path} was fine-tuned from {init['checkpoint']} with SHA-256 "
                              f"{init.get('sha256')}; the manifest now names {source.entry.sha256}")
    e = source.entry
    return published_network(method, W.load_published(e), f"{e.selector} ({source.path})").state_dict()


@contextlib.contextmanager
def image_batch_norm(net: torch.nn.Module, enabled: bool = True):
    """Inside the block the BatchNorm layers of ``net`` normalise with the statistics of the
    batch they are given and leave their running averages (and counters) untouched."""
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)] if enabled else []
    saved = [(m.training, m.track_running_stats) for m in bns]
    try:
        for m in bns:
            m.training, m.track_running_stats = True, False
        yield net
    finally:
        for m, (tr, track) in zip(bns, saved):
            m.training, m.track_running_stats = tr, track


# =========================================================================== training
IOU_OVER = ("image", "batch")


def _check_iou_over(over: str) -> None:
    if over not in IOU_OVER:
        raise BenchError(f"iou_over={over!r}; valid: {', '.join(IOU_OVER)}")


def soft_iou_loss(logits: torch.Tensor, mask: torch.Tensor, smooth: float = 1.0,
                  over: str = "image") -> torch.Tensor:
    """SoftIoU loss, p = sigmoid(logits).

    ``over="image"`` (the public RPCANet/L-RPCANet codes): 1 - mean over the batch of
    (sum p m + s) / (sum p + sum m - sum p m + s), sums over each image. On a crop without
    a target this is 1 - s / (sum p + s): once a false blob is there its gradient,
    s / (sum p + s)^2, all but vanishes. ``over="batch"``: one ratio with the sums over the
    whole batch, so a false pixel of a target-free crop costs as much as one beside a target.
    """
    _check_iou_over(over)
    p = torch.sigmoid(logits)
    dims = (1, 2, 3) if over == "image" else (0, 1, 2, 3)
    inter = (p * mask).sum(dim=dims)
    union = p.sum(dim=dims) + mask.sum(dim=dims) - inter
    return 1.0 - ((inter + smooth) / (union + smooth)).mean()


class IstdTrainingJob(TrainingJob):
    """SoftIoU(sigmoid(T_K), mask) + gamma MSE(D_K, input) on the SIRST ``train`` split;
    the best state by IoU on the ``val`` split is kept (the ``test`` split is never seen).
    Adam, poly decay of the learning rate, seeded crops and flips (resumable: the crops come
    from the trainer's generator)."""

    score_name = "val_iou"
    score_direction = "max"

    def __init__(self, method: str, recipe: str, dataset: str | None, seed: int | None,
                 overrides: dict[str, Any], device: str = "cpu", data_root: str | None = None,
                 init: str | None = None):
        from bench import registry as R
        from bench.errors import UnknownNameError

        if recipe not in RECIPES:
            raise UnknownNameError(f"unknown recipe {recipe!r}", valid=sorted(RECIPES), what="recipe")
        cfg = dict(RECIPES[recipe])
        if recipe == "paper":
            cfg["lr"] = PAPER_LR[method]
        unknown = sorted(set(overrides) - set(cfg) - set(NET_KEYS))
        if unknown:
            raise UnknownNameError(f"unknown recipe key(s) {', '.join(unknown)}",
                                   valid=sorted(set(cfg) | set(NET_KEYS)), what="recipe key")
        # `--set se=none` reads as None: keep the word (None would mean "the default, all")
        # and name the modules in one canonical form (background+target), whatever was typed
        overrides = {k: ("+".join(_se_list("none" if v is None else v, CONFIGS[method])) or "none"
                         if k == "se" else v) for k, v in overrides.items()}
        cfg.update({k: v for k, v in overrides.items() if k not in NET_KEYS})
        if seed is not None:
            cfg["seed"] = int(seed)
        _check_iou_over(cfg["iou_over"])  # at once, not at the first step
        check_precision(str(cfg["precision"]), device, f"{method} training")
        if not isinstance(cfg["channels_last"], bool):
            raise BenchError(f"{method} training: channels_last={cfg['channels_last']!r}; use true or false")
        self.method, self.device, self.overrides = method, device, dict(overrides)
        self.seed = int(cfg["seed"])
        # --init published:<name>: start from the authors' weights (their configuration, read
        # from the file); the stored checkpoint is the delta from them
        self.init, self.init_state = None, None
        if init is not None:
            init_net = _init_network(method, init, overrides)
            self.init, self.init_state = str(init), init_net.state_dict()
            self.net_cfg = init_net.cfg
        else:
            self.net_cfg = net_config(method, overrides.get("stages"), overrides.get("se"),
                                      overrides.get("noise_carry"))
        self.gamma = LOSS_GAMMA[method]
        # the train and val subsets, the batches and the validation images come from the suite
        self.suite = R.SUITES.get_or_fail("istd")
        self.train_data = self.suite.training_data(dataset, "train", data_root)
        self.val_data = self.suite.training_data(dataset, "val", data_root)
        self.dataset_selector = self.train_data.dataset
        self.val_task = self.suite.validation_task(self.val_data, self.seed, limit=int(cfg["val_limit"]))
        torch.manual_seed(self.seed)
        self.model = build(self.net_cfg, self.seed).to(device)
        if self.init_state is not None:
            self.model.load_state_dict(self.init_state)
        self.memory_format = memory_format(cfg["channels_last"])
        self.model = self.model.to(memory_format=self.memory_format)
        name_ = recipe if not overrides else recipe + "+" + ",".join(
            f"{k}={_fmt(v)}" for k, v in sorted(overrides.items()))
        if self.init is not None:
            name_ += f" from {self.init}"
        self.recipe = {"name": name_, "base": recipe, **cfg, "loss_gamma": self.gamma,
                       **({"init": self.init} if self.init is not None else {}),
                       "train_split": _rel(self.train_data.source, data_root),
                       "val_split": _rel(self.val_data.source, data_root)}

    # what the trainer calls
    def schedule(self):
        c = self.recipe
        return [TrainStage("train", int(c["steps"]), float(c["lr"]), {}, None, int(c["eval_every"]))]

    def lr_factor(self, stage, step):
        return (1.0 - step / stage.max_steps) ** float(self.recipe["poly_power"])

    def batch(self, generator):
        c = self.recipe
        x, m = self.suite.training_batch(self.train_data, int(c["batch_size"]), generator, crop=int(c["crop"]),
                                         positive_fraction=float(c["positive_fraction"]), resize=int(c["resize"]))
        return x.to(self.device).contiguous(memory_format=self.memory_format), m.to(self.device)

    def forward(self, x):
        with autocast(self.recipe["precision"], self.device):
            D, T = self.model(x)
        return D.float(), T.float()

    def loss(self, batch, stage):
        x, m = batch
        D, T = self.forward(x)
        return soft_iou_loss(T, m, over=self.recipe["iou_over"]) + self.gamma * torch.mean((D - x) ** 2)

    def validate(self, stage):
        from bench.metrics.istd import score_masks
        preds = []
        for img in self.val_task.inputs.images:
            _, T = self.forward((img / 255.0)[None, None].to(self.device).contiguous(memory_format=self.memory_format))
            preds.append((T[0, 0] > 0).cpu())
        s = score_masks(preds, list(self.val_task.reference))
        return {"val_iou": float(s["iou"]), "val_niou": float(s["niou"]), "val_f1": float(s["f1"]),
                "val_pd": float(s["pd"]), "val_fa": float(s["fa"])}

    def checkpoint_meta(self):
        meta = {"method": self.method, "config": config_dict(self.net_cfg), "device": self.device,
                "parameter_count": self.model.parameter_count(), "train_hash": self.train_data.problem_id,
                "val_hash": self.val_data.problem_id, "dataset": self.dataset_selector,
                "how_to_reproduce": self.command()}
        if self.init is not None:
            e = W.find_published(self.method, self.init)
            meta["init"] = {"checkpoint": self.init, "file": e.path, "sha256": e.sha256, "source": e.source,
                            "trained_on": e.trained_on}
        return meta

    def reference_state(self):
        if self.init_state is not None:
            return {k: v.clone() for k, v in self.init_state.items()}
        return build(self.net_cfg, self.seed).state_dict()

    def command(self) -> str:
        cmd = train_command(self.method, self.recipe["base"], self.overrides)
        if self.init is not None:
            cmd += f" --init {self.init}"
        if self.dataset_selector != "sirst":
            cmd = cmd.replace("--dataset sirst", f"--dataset '{self.dataset_selector}'")
        if self.seed != RECIPES[self.recipe["base"]]["seed"]:
            cmd += f" --seed {self.seed}"
        return cmd

    def default_path(self) -> str:
        if self.init is not None:
            if (self.dataset_selector == "sirst" and self.seed == RECIPES[self.recipe["base"]]["seed"]
                    and self.recipe["base"] == "finetune" and not self.overrides):
                return os.path.join(CHECKPOINT_DIR, finetuned_name(self.method, self.init) + ".npz")
        elif self.dataset_selector == "sirst" and self.seed == RECIPES[self.recipe["base"]]["seed"]:
            if self.recipe["base"] == "cpu" and not self.overrides:
                return os.path.join(CHECKPOINT_DIR, f"{self.method}_sirst.npz")
            if self.recipe["base"] == "ablation" and set(self.overrides) <= set(NET_KEYS):
                return os.path.join(CHECKPOINT_DIR, ablation_name(self.method, self.overrides) + ".npz")
        tag = hashlib.sha256(json.dumps(self.recipe, sort_keys=True, default=str).encode()).hexdigest()[:8]
        return os.path.join(REPO_ROOT, "results", "checkpoints", "istd", f"{self.method}_{self.recipe['base']}_{tag}.npz")


def finetuned_name(method: str, init: str) -> str:
    """The shipped name of ``method`` fine-tuned on SIRST from ``init`` (``published:<name>``)
    with the ``finetune`` recipe: ``<method>_sirst_from_<name>``."""
    return f"{method}_sirst_from_{str(init)[len(W.PUBLISHED_PREFIX):]}"


def _init_network(method: str, init: str, overrides: dict[str, Any]) -> UnfoldingNet:
    """The published network a fine-tuning starts from (``--init published:<name>``): loaded
    strictly through the weights layer; its configuration is the file's, so the network
    knobs (stages, se, noise_carry) cannot be changed with it."""
    from bench.errors import BadParameterError
    if not W.is_published(init):
        raise BadParameterError("bench train", "--init", init, "published weights of " + method + ", one of "
                                + ", ".join(W.PUBLISHED_PREFIX + n for n in W.published_names(method)))
    knobs = sorted(set(overrides) & set(NET_KEYS))
    if knobs:
        raise BadParameterError("bench train", "--set", ",".join(knobs), "no network knob with --init "
                                f"{init}: the network is the published one, which those would change")
    source = W.resolve("istd", method, init)
    reason = W.missing_reason(source)
    if reason is not None:
        raise CheckpointError(reason)
    e = source.entry
    return published_network(method, W.load_published(e), f"{e.selector} ({source.path})", e.parameters)


def _rel(source: str, root: str | None) -> str:
    """A data source named relative to the data root (the same on every machine)."""
    if root and source.startswith(os.path.abspath(root)):
        return "<data_root>" + source[len(os.path.abspath(root)):]
    if root and source.startswith(root):
        return "<data_root>" + source[len(root):]
    return source


def _fmt(v: Any) -> str:
    return "+".join(v) if isinstance(v, (list, tuple)) else str(v)
