"""Training the LISTA family (``bench train --suite sparse --method <m> --snr <SNR>``): the
named recipes (``cpu``: the CPU budget the shipped checkpoints were trained with; ``paper``:
the papers' layer-wise protocol) and the layer-wise training job on the suite's generator.
The networks are :mod:`bench.methods.sparse.unrolled`.
"""
from __future__ import annotations

import os
from typing import Any

import torch

from bench import paths
from bench.methods.sparse.unrolled import build_network, initial_state, snr_label, train_command
from bench.train import Stage, TrainingJob

RECIPES: dict[str, dict[str, Any]] = {
    # CPU budget: the layer-wise protocol of SPECS, shortened so that one network trains in
    # minutes on two shared cores: per layer a stage on the new layer, then one on all layers
    # so far at 0.2 x lr, with early stopping on the validation NMSE. With 80 steps per layer
    # instead of thousands, the learning rate is 10x the paper's (5e-3; measured on LISTA-CPSS,
    # 4 layers: -5.9 dB at 5e-4, -9.8 dB at 2e-3, -12.0 dB at 5e-3).
    "cpu": {"schedule": "layerwise", "batch_size": 64, "lr": 5e-3, "lr_decay": [0.2],
            "steps_new": 80, "steps_all": 40, "patience": 75, "eval_every": 25, "damping": 0.3,
            "lr_scalars": 5e-3, "n_val": 1000, "seed": 0},
    # The papers' recipe (LISTA-CPSS / ALISTA code): layer-wise, lr 5e-4 then 1e-4 and 1e-5,
    # each stage stopped when the validation NMSE has not improved for 4000 steps.
    "paper": {"schedule": "layerwise", "batch_size": 64, "lr": 5e-4, "lr_decay": [0.2, 0.02],
              "steps_new": 200000, "steps_all": 200000, "patience": 4000, "eval_every": 10, "damping": 0.3,
              "n_val": 1000, "seed": 0},
}
#: per-method adjustments of the cpu recipe (LISTA's 6M parameters cost 3x a LISTA-CP step;
#: LISTA-CP, without support selection, learns slowest per step and gets 3x the steps).
#: ALISTA's 32 scalars make its steps the cheapest (about 45 a second on one idle core), so
#: it gets 16x the base budget (about 25 minutes a network): the budget measured to reach the
#: noiseless goal; on the test set 1x reached -51.1 dB, 8x -59.5 dB and 16x -63.3 dB
#: (docs/suite_sparse_learned.md).
#: Its ``lr`` (5e-4) has no matrix to act on; the scalars train at ``lr_scalars``.
CPU_ADJUST: dict[str, dict[str, Any]] = {
    "lista": {"steps_new": 100, "steps_all": 50},
    "lista_cp": {"steps_new": 240, "steps_all": 120, "patience": 150},
    "alista": {"lr": 5e-4, "steps_new": 3200, "steps_all": 1280, "patience": 1600},
}


def recipe_config(method: str, recipe: str = "cpu", overrides: dict[str, Any] | None = None,
                  seed: int | None = None) -> dict[str, Any]:
    """The full configuration ``bench train --suite sparse --method <method> --recipe <recipe>``
    builds (with ``--set`` overrides and ``--seed``): what a checkpoint stores as its recipe."""
    from bench.errors import UnknownNameError

    overrides = overrides or {}
    if recipe not in RECIPES:
        raise UnknownNameError(f"unknown recipe {recipe!r}", valid=sorted(RECIPES), what="recipe")
    cfg = {**RECIPES[recipe], **(CPU_ADJUST.get(method, {}) if recipe == "cpu" else {})}
    unknown = sorted(set(overrides) - set(cfg) - {"lr_scalars", "n_layers"})
    if unknown:
        raise UnknownNameError(f"unknown recipe key(s) {', '.join(unknown)}", valid=sorted(cfg), what="recipe key")
    cfg.update(overrides)
    if seed is not None:
        cfg["seed"] = int(seed)
    name = recipe if not overrides else recipe + "+" + ",".join(f"{k}={v}" for k, v in sorted(overrides.items()))
    return {"name": name, "base": recipe, **cfg, "n_layers": int(cfg.get("n_layers", 16))}


class LassoTrainingJob(TrainingJob):
    """Layer-wise training of a LISTA-family network on the suite's generator: fresh
    Bernoulli-Gaussian codes each step, AWGN at the training SNR, a fixed validation set
    (its own seed stream, disjoint from the test set's), loss 0.5 ||x_t - x*||^2."""

    score_name = "val_nmse_db"
    score_direction = "min"

    def __init__(self, method: str, recipe: str, snr, dataset: str | None, seed: int | None,
                 overrides: dict[str, Any]):
        from bench import registry as R
        from bench.datasets.noise import AwgnSnr

        self.recipe = recipe_config(method, recipe, overrides, seed)
        cfg = self.recipe
        self.method, self.snr_db = method, float(snr)
        # the problem instance and every sample come from the suite (bench/suites/sparse.py)
        self.suite = R.SUITES.get_or_fail("sparse")
        self.data = self.suite.training_data(dataset, "train")
        self.dataset_selector = self.data.dataset
        self.dataset_params = self.data.params
        self.instance = self.data.problem_id
        A = self.data.samples.A
        self.model = build_network(method, A, int(cfg["n_layers"]), 0.4, "qp")
        self.noise = AwgnSnr(snr_db=self.snr_db)
        self.seed = int(cfg["seed"])
        # the fixed validation set: the suite's own seed stream, disjoint from the test set
        val = self.suite.validation_task(self.suite.training_data(dataset, "val"), self.seed,
                                         size=int(cfg["n_val"]), degradation=self.noise)
        self.x_val, self.y_val = val.reference, val.inputs.y

    # what the trainer calls
    def schedule(self):
        c, T = self.recipe, self.model.n_layers
        stages = []
        for t in range(1, T + 1):
            stages.append(Stage(f"layer {t}/{T} new", int(c["steps_new"]), float(c["lr"]),
                                {"depth": t, "which": "new"}, int(c["patience"]), int(c["eval_every"])))
            for d in c["lr_decay"]:
                stages.append(Stage(f"layer {t}/{T} all x{d:g}", int(c["steps_all"]), float(c["lr"]) * d,
                                    {"depth": t, "which": "all", "decay": d}, int(c["patience"]),
                                    int(c["eval_every"])))
        return stages

    def param_groups(self, stage):
        t, which = stage.spec["depth"], stage.spec["which"]
        mult_scalars = float(self.recipe.get("lr_scalars", self.recipe["lr"])) / float(self.recipe["lr"])
        damping = float(self.recipe["damping"])
        for p in self.model.parameters():
            p.requires_grad_(False)
        groups = []
        layers = [t - 1] if which == "new" else range(t)
        for l in layers:
            # earlier layers' steps damped by `damping` per layer (Adam normalises gradient
            # scale, so the damping is applied to the learning rate)
            lr = stage.lr * (damping ** (t - 1 - l) if which == "all" else 1.0)
            for name, p in self.model.layer[l].items():
                p.requires_grad_(True)
                groups.append({"params": [p], "lr": lr * (mult_scalars if p.numel() == 1 else 1.0)})
        if which == "all" or t == 1:
            for p in self.model.shared.values():
                p.requires_grad_(True)
                groups.append({"params": [p], "lr": stage.lr})
        return groups

    def batch(self, generator):
        return self.suite.training_batch(self.data, int(self.recipe["batch_size"]), generator,
                                         degradation=self.noise)

    def loss(self, batch, stage):
        x, y = batch
        xt = self.model(y, depth=stage.spec["depth"])
        return 0.5 * ((xt - x) ** 2).sum(-1).mean()

    def validate(self, stage):
        from bench.metrics.sparse import nmse_db
        depth = None if stage is None else stage.spec["depth"]
        return {"val_nmse_db": nmse_db(self.model(self.y_val, depth=depth), self.x_val)}

    def checkpoint_meta(self):
        per_layer = sum(p.numel() for p in self.model.layer[0].parameters())
        shared = sum(p.numel() for p in self.model.shared.parameters())
        return {"method": self.method, "instance": self.instance, "snr_db": self.snr_db,
                "dataset": self.dataset_selector, "dataset_params": self.dataset_params,
                "n_layers": self.model.n_layers, "parameter_count_per_layer": per_layer,
                "parameter_count_shared": shared, "support_selection": self.model.support_selection,
                "analytic_weight": self.model.weight_info,
                "how_to_reproduce": self.command()}

    def reference_state(self):
        return initial_state(self.model)

    # helpers
    def command(self) -> str:
        cmd = train_command(self.method, self.snr_db, self.recipe["base"])
        if self.dataset_selector != "gaussian_lasso":
            cmd += f" --dataset '{self.dataset_selector}'"
        if self.seed != RECIPES[self.recipe["base"]]["seed"]:
            cmd += f" --seed {self.seed}"
        if self.recipe["name"] != self.recipe["base"]:
            cmd += "".join(f" --set {kv}" for kv in self.recipe["name"].split("+", 1)[1].split(","))
        return cmd

    def default_path(self) -> str:
        return os.path.join(paths.trained_checkpoints("sparse"),
                            f"{self.method}_snr{snr_label(self.snr_db)}_{self.instance}.npz")


def _sample(count: int, n: int, p: float, generator: torch.Generator) -> torch.Tensor:
    from bench.datasets.sparse import sample_codes
    return sample_codes(count, n, p, generator)
