"""Training RPCANet and L-RPCANet (``bench train --suite istd``): the named recipes, the
SoftIoU loss, the training job on the SIRST train split (model selection on its val split),
fine-tuning from the authors' weights (``--init published:<name>``) and where each run's
checkpoint goes (the shipped names: ``<method>_sirst``, ``<method>_ablation_<knob>``,
``<method>_sirst_from_<name>``).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import torch

from bench import weights as W
from bench.errors import BenchError, CheckpointError
from bench.methods.istd.network import (CONFIGS, NET_KEYS, UnfoldingNet, _se_list, build, config_dict, derive_config,
                                        net_config, shared_state)
from bench.methods.istd.published import published_network
from bench.precision import autocast, check_precision, memory_format
from bench.train import Stage as TrainStage
from bench.train import TrainingJob

CHECKPOINT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoints")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
            "precision": "fp32", "channels_last": False, "freeze_bn": False},
    "ablation": {"steps": 300, "batch_size": 8, "crop": 64, "resize": 0, "positive_fraction": 0.5, "lr": 5e-4,
                 "poly_power": 0.9, "eval_every": 300, "seed": 0, "val_limit": 10, "iou_over": "image",
                 "precision": "fp32", "channels_last": False, "freeze_bn": False},
    # fine-tuning published weights (``bench train --init published:<name>``): larger crops
    # (128, a quarter placed on a target: about the share of target pixels of whole images)
    # at a tenth of the cpu recipe's learning rate, validated from step 0 on (the published
    # state is the first candidate: the kept state is never worse on val than the start).
    # The cpu recipe's 64-pixel crops, half on a target, at 2e-4 were tried first and made
    # the NUDT-SIRST weights over-detect: val IoU 49.2 -> 28.5 (Fa 1134e-6) in 250 steps
    "finetune": {"steps": 600, "batch_size": 4, "crop": 128, "resize": 0, "positive_fraction": 0.25, "lr": 5e-5,
                 "poly_power": 0.9, "eval_every": 100, "seed": 0, "val_limit": 42, "iou_over": "image",
                 "precision": "fp32", "channels_last": False, "freeze_bn": False},
    # the ablations fine-tuned from published weights (``--recipe ablation_finetune --init
    # published:<name> --set stages=K`` or ``se=...``), the same for every row (the unchanged
    # network too): 100 steps of 128x128 crops each around a target (every NUDT-SIRST image
    # has one), validated every 20 steps from step 0 on. Chosen on the held-out train images
    # (val IoU, 10 images, 60 probe steps) from two cuts of the NUDT-SIRST file: no SE blocks
    # (38.2 at step 0) and K = 2 (2.3). lr 1e-4 with every crop on a target lifted the first
    # to 59.9 at step 20 (then 36.7, 32.8); with a quarter of the crops on a target, or
    # BatchNorm frozen (``freeze_bn``), or lr 5e-5, it fell below its start, to 0 at lr 5e-4
    # with a quarter (empty crops teach an empty map). K = 2 stayed low under every recipe
    # tried (best 19.3, at lr 5e-4). (The probes' step-0 scores were taken with BatchNorm in
    # train mode, since fixed in bench/train.py; their later ones in eval mode.) Training moves
    # these networks away from their start fast: the state kept by validation is what a row
    # reports, and may be the starting one
    "ablation_finetune": {"steps": 100, "batch_size": 4, "crop": 128, "resize": 0, "positive_fraction": 1.0,
                          "lr": 1e-4, "poly_power": 0.9, "eval_every": 20, "seed": 0, "val_limit": 20,
                          "iou_over": "image", "precision": "fp32", "channels_last": False, "freeze_bn": False},
    "paper": {"steps": 12800, "batch_size": 8, "crop": 256, "resize": 256, "positive_fraction": 0.0,
              "lr": 5e-4, "poly_power": 0.9, "eval_every": 32, "seed": 42, "val_limit": 0,
              "iou_over": "image", "precision": "fp32", "channels_last": False, "freeze_bn": False},
}
#: recipe keys added after checkpoints were shipped, with the value those checkpoints were
#: trained with: before the key existed its value was the only behaviour (``iou_over`` came
#: with commit fb950a3; the shipped ``cpu`` checkpoints predate it and used the per-image loss)
#: (``precision`` and ``channels_last``, bench/precision.py, came with issue 19; every earlier
#: checkpoint was trained in fp32 in the default layout)
RECIPE_KEYS_ADDED: dict[str, Any] = {"iou_over": "image", "precision": "fp32", "channels_last": False, "freeze_bn": False}


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


def ablation_name(method: str, overrides: dict[str, Any], dataset: str = "sirst") -> str:
    """File stem of an ablation checkpoint trained from scratch: ``l_rpcanet_ablation_stages3``,
    ``l_rpcanet_ablation_se-background+target`` on SIRST, ``l_rpcanet_nudt_sirst_ablation_stages7``
    on another set (pass it as ``checkpoint=shipped:<stem>``)."""
    parts = [f"{k}{_fmt(v)}" if k == "stages" else f"{k.replace('_', '')}-{_fmt(v) or 'none'}"
             for k, v in sorted(overrides.items())]
    return (method if dataset == "sirst" else f"{method}_{dataset}") + "_ablation_" + ("_".join(parts) or "base")


def ablation_overrides(knob: str) -> dict[str, Any]:
    """The ``--set`` overrides a knob of :func:`ablation_name` stands for: ``stages3`` ->
    ``{"stages": 3}``, ``se-background+target`` -> ``{"se": "background+target"}``
    (``se-none``: no SE block), parts joined by ``_``; ``base``: none."""
    out: dict[str, Any] = {}
    for part in ([] if knob == "base" else knob.split("_")):
        if part.startswith("stages") and part[len("stages"):].isdigit():
            out["stages"] = int(part[len("stages"):])
        elif part.startswith("se-") and len(part) > len("se-"):
            out["se"] = part[len("se-"):]
        else:
            raise CheckpointError(f"ablation checkpoint name part {part!r} is neither stages<K> nor se-<blocks> "
                                  f"(names are written by `bench train --recipe ablation`)")
    return out


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
        if not isinstance(cfg["freeze_bn"], bool):
            raise BenchError(f"{method} training: freeze_bn={cfg['freeze_bn']!r}; use true or false")
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
        if self.recipe["freeze_bn"]:
            # BatchNorm normalises with the stored running statistics and keeps them: crops
            # have other statistics than whole images, and a few hundred steps of them drag
            # the published averages away (ablation_finetune's notes above)
            for mod in self.model.modules():
                if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                    mod.eval()
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
        cmd = W.train_command("istd", self.method, self.recipe["base"], self.overrides,
                              dataset=None if self.dataset_selector == "sirst" else self.dataset_selector)
        if self.init is not None:
            cmd += f" --init {self.init}"
        if self.seed != RECIPES[self.recipe["base"]]["seed"]:
            cmd += f" --seed {self.seed}"
        return cmd

    def default_path(self) -> str:
        if self.init is not None:
            default_seed = self.seed == RECIPES[self.recipe["base"]]["seed"]
            if (self.dataset_selector == "sirst" and default_seed
                    and self.recipe["base"] == "finetune" and not self.overrides):
                return os.path.join(CHECKPOINT_DIR, finetuned_name(self.method, self.init) + ".npz")
            if (self.recipe["base"] == "ablation_finetune" and default_seed and self.overrides
                    and set(self.overrides) <= set(NET_KEYS) and self.dataset_selector.isidentifier()):
                return os.path.join(CHECKPOINT_DIR, ablation_finetuned_name(
                    self.method, self.dataset_selector, self.overrides, self.init) + ".npz")
        elif self.seed == RECIPES[self.recipe["base"]]["seed"]:
            if self.recipe["base"] == "cpu" and not self.overrides and self.dataset_selector == "sirst":
                return os.path.join(CHECKPOINT_DIR, f"{self.method}_sirst.npz")
            if (self.recipe["base"] == "ablation" and set(self.overrides) <= set(NET_KEYS)
                    and self.dataset_selector.isidentifier()):
                return os.path.join(CHECKPOINT_DIR, ablation_name(self.method, self.overrides,
                                                                  self.dataset_selector) + ".npz")
        tag = hashlib.sha256(json.dumps(self.recipe, sort_keys=True, default=str).encode()).hexdigest()[:8]
        return os.path.join(REPO_ROOT, "results", "checkpoints", "istd", f"{self.method}_{self.recipe['base']}_{tag}.npz")


def finetuned_name(method: str, init: str) -> str:
    """The shipped name of ``method`` fine-tuned on SIRST from ``init`` (``published:<name>``)
    with the ``finetune`` recipe: ``<method>_sirst_from_<name>``."""
    return f"{method}_sirst_from_{str(init)[len(W.PUBLISHED_PREFIX):]}"


def ablation_finetuned_name(method: str, dataset: str, overrides: dict[str, Any], init: str) -> str:
    """The shipped name of an ablation fine-tuned on ``dataset`` from ``init`` with the
    ``ablation_finetune`` recipe: ``l_rpcanet_nudt_sirst_ablation_stages3_from_nudt_sirst``."""
    knob = ablation_name(method, overrides)[len(method) + len("_ablation_"):]
    return f"{method}_{dataset}_ablation_{knob}_from_{str(init)[len(W.PUBLISHED_PREFIX):]}"


def _init_network(method: str, init: str, overrides: dict[str, Any]) -> UnfoldingNet:
    """The published network a fine-tuning starts from (``--init published:<name>``): loaded
    strictly through the weights layer, in the file's configuration. The network knobs may
    only make a network that shares those weights (:func:`shared_state`): fewer stages (the
    first K of the file's), fewer SE blocks, N carried or not; the rest is refused."""
    from bench.errors import BadParameterError
    if not W.is_published(init):
        raise BadParameterError("bench train", "--init", init, "published weights of " + method + ", one of "
                                + ", ".join(W.PUBLISHED_PREFIX + n for n in W.published_names(method)))
    source = W.resolve("istd", method, init)
    reason = W.missing_reason(source)
    if reason is not None:
        raise CheckpointError(reason)
    net = W.load_network(source, lambda state, what, n: published_network(method, state, what, n))
    knobs = {k: v for k, v in overrides.items() if k in NET_KEYS}
    if not knobs:
        return net
    base = net.cfg
    if knobs.get("stages") is not None and int(knobs["stages"]) > base.stages:
        raise BadParameterError("bench train", "--set", f"stages={knobs['stages']}",
                                f"at most {base.stages} with --init {init}: a fine-tuning keeps the first K of "
                                f"the file's {base.stages} stages; more stages train from scratch (drop --init)")
    cfg = derive_config(base, method, knobs.get("stages"), knobs.get("se"), knobs.get("noise_carry"))
    extra = sorted(set(cfg.se_modules()) - set(base.se_modules()))
    if extra:
        raise BadParameterError("bench train", "--set", "se=" + "+".join(cfg.se_modules()),
                                f"SE blocks that {init} lacks ({', '.join(extra)}): a fine-tuning can only drop "
                                f"the file's blocks ({', '.join(base.se_modules()) or 'none'})")
    derived = UnfoldingNet(cfg)
    derived.load_state_dict(shared_state(net.state_dict(), cfg, init))
    return derived


def _rel(source: str, root: str | None) -> str:
    """A data source named relative to the data root (the same on every machine)."""
    if root and source.startswith(os.path.abspath(root)):
        return "<data_root>" + source[len(os.path.abspath(root)):]
    if root and source.startswith(root):
        return "<data_root>" + source[len(root):]
    return source


def _fmt(v: Any) -> str:
    return "+".join(v) if isinstance(v, (list, tuple)) else str(v)
