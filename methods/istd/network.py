"""The unfolding network of ISTD's learned methods (SPECS section 2): RPCANet and L-RPCANet.

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

The methods are :mod:`bench.methods.istd.learned`; the authors' released weights are read
by :mod:`bench.methods.istd.published`, the training is :mod:`bench.methods.istd.training`.

L-RPCANet's noise across stages: the public code restarts N at zero in every stage (its
outer loop carries D and T only). ``noise_carry=False`` (default) follows the code;
``noise_carry=True`` carries N like B and T (the slides' algorithm as written).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.errors import BenchError

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


#: the configuration of each method (its default network)
CONFIGS = {"rpcanet": RPCANET, "l_rpcanet": L_RPCANET}
#: the recipe keys that change the network (``--set stages=3``, ``se=...``, ``noise_carry=...``)
NET_KEYS = ("stages", "se", "noise_carry")


def net_config(method: str, stages: int | None = None, se: Any = None, noise_carry: bool | None = None) -> NetConfig:
    """The configuration of ``method`` with the ablation knobs applied: number of stages,
    modules with SE (a list of module names, ``all`` or ``none``), N carried or restarted."""
    return derive_config(CONFIGS[method], method, stages, se, noise_carry)


def derive_config(cfg: NetConfig, method: str, stages: int | None = None, se: Any = None,
                  noise_carry: bool | None = None) -> NetConfig:
    """``cfg`` with the ablation knobs applied (see :func:`net_config`)."""
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


def shared_state(state: dict[str, torch.Tensor], cfg: NetConfig, what: str) -> dict[str, torch.Tensor]:
    """The tensors of ``state`` (a larger network's: more stages, more SE blocks) that a network
    of configuration ``cfg`` has: its first ``cfg.stages`` stages, without the SE blocks it
    drops. Raises :class:`BenchError` naming a tensor ``cfg`` has and ``state`` lacks (or
    has in another shape): that configuration does not share these weights."""
    target = UnfoldingNet(cfg).state_dict()
    bad = [k for k, v in target.items() if k not in state or tuple(state[k].shape) != tuple(v.shape)]
    if bad:
        raise BenchError(f"{what} has no tensor {bad[0]} of shape {tuple(target[bad[0]].shape)} "
                         f"({len(bad)} such): this configuration does not share its weights")
    return {k: state[k] for k in target}


def config_dict(cfg: NetConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def config_from_dict(d: dict[str, Any]) -> NetConfig:
    specs = {k: (ModuleSpec(**d[k]) if d.get(k) is not None else None) for k in MODULES}
    return NetConfig(stages=int(d["stages"]), noise_carry=bool(d.get("noise_carry", False)),
                     se_reduction=int(d.get("se_reduction", 16)), **specs)
