"""The authors' released RPCANet and L-RPCANet weights (``checkpoint=published:<name>``,
:mod:`bench.weights`) on this project's network (:mod:`bench.methods.istd.network`): the
configuration is read from the file's shapes (:func:`infer_published_config`), the
authors' key names are mapped onto these modules (:func:`authors_key`) and the file is
loaded strictly (:func:`published_network`).
"""
from __future__ import annotations

import torch

from bench import weights as W
from bench.errors import CheckpointError
from bench.methods.istd.network import CONFIGS, ModuleSpec, NetConfig, UnfoldingNet

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
