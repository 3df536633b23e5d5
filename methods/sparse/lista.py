"""The LISTA family: ISTA with its parameters made trainable (SPECS section 1).

The networks, the table :data:`VARIANTS` of what each variant learns and ALISTA's analytic
weight are :mod:`bench.methods.sparse.unrolled`; this module registers one method per row of
the table.

Checkpoints (``checkpoint`` parameter, :mod:`bench.weights`'s grammar): ``shipped``
(default) reads the shipped checkpoint of this method trained at the cell's SNR,
``methods/sparse/checkpoints/<method>_snr<SNR>.npz``; ``shipped:<name>`` or a path reads that
file; ``none`` evaluates the *untrained* initialisation (its label says so: for tests and
ablations). A missing or foreign checkpoint fails the cell with a message saying how to
train one: an untrained network is never evaluated as if it were trained.
"""
from __future__ import annotations

import os
from typing import Any, ClassVar, Iterator

import torch

from bench import paths
from bench import weights
from bench.errors import CheckpointError
from bench.params import Param
from bench.registry import Method, register_method
from bench.methods.sparse.classical import LassoInput
from bench.methods.sparse.unrolled import (VARIANTS, UnrolledIsta, Variant, build_network, initial_state,
                                           parameter_count, snr_label, train_command)

CHECKPOINT_DIR = paths.shipped_checkpoints("sparse")


# --------------------------------------------------------------------------- checkpoints
def default_checkpoint(method: str, snr) -> str:
    """The shipped checkpoint of ``method`` trained at ``snr`` (:func:`bench.weights.shipped_checkpoint`)."""
    return weights.shipped_checkpoint("sparse", f"{method}_snr{snr_label(snr)}")


# --------------------------------------------------------------------------- the methods
class _Unrolled(Method):
    """A registered LISTA-family network; ``variant`` is its row of :data:`VARIANTS`."""

    suite = "sparse"
    family = "learned"
    devices = ("cpu", "cuda")
    parameters = {"n_layers": 16, "checkpoint": "shipped", "lam": 0.4}
    parameter_specs = {"n_layers": Param(int, min=1),
                       "checkpoint": weights.checkpoint_param(
                           "lista", help="shipped: the one trained at the cell's SNR; none: untrained"),
                       "lam": Param(float, min=0, help="the LASSO weight of the initialisation")}
    variant: ClassVar[str] = ""
    #: the solver module and the operator type the network is built from (ISTA's step and
    #: threshold, A's application): editing them invalidates stored cells too
    source_dependencies = ("bench.methods.sparse.classical", "bench.operators")
    #: what the fixed analytic weight was computed from, once :meth:`network` has built it
    _weight_info: dict[str, Any] | None = None

    def weight_source(self) -> str:
        """How ALISTA's analytic weight is computed (:func:`analytic_weight`'s ``source``):
        ``closed_form`` unless the variant has a parameter that says otherwise."""
        return "closed_form"

    # -- what the runner calls
    def setup(self, context) -> None:
        super().setup(context)
        self._net = None
        self._net_for = None
        self._state = self._meta = None
        ckpt = weights.canonical(self.params["checkpoint"])
        if ckpt is None:  # the selector parser reads none as None
            return
        if ckpt == "shipped":
            # the cell's SNR: its problem's (a MeasuredLassoProblem); none without a problem
            snr = weights.fact(context.problem, "snr_db")
            if snr is None:
                raise CheckpointError(f"{self.name}: checkpoint=shipped needs the cell's SNR; pass "
                                      f"checkpoint=shipped:<name>, a path, or checkpoint=none (untrained)")
            path = weights.resolve("sparse", self.name, ckpt, problem=context.problem).path
            if not os.path.exists(path):
                raise CheckpointError(
                    f"{self.name}: no checkpoint trained at SNR {snr_label(snr)} ({path}); train it with "
                    f"`{train_command(self.name, snr)}` or pass checkpoint=<path>")
        else:
            path = weights.resolve("sparse", self.name, ckpt).path
        from bench.checkpoints import read_checkpoint_meta
        meta = read_checkpoint_meta(path)
        if meta.get("method") != self.name:
            raise CheckpointError(f"checkpoint {path} belongs to method {meta.get('method')!r}, not {self.name!r}: "
                                  f"pass {self.name}'s checkpoint (`{train_command(self.name, meta.get('snr_db', 'inf'))}`)")
        if context.problem_id and meta.get("instance") != context.problem_id:
            raise CheckpointError(
                f"checkpoint {path} was trained on problem instance {meta.get('instance')}, this cell's instance is "
                f"{context.problem_id}: train one for this instance (`{train_command(self.name, meta.get('snr_db', 'inf'))}"
                f" --dataset '<this dataset selector>'`)")
        if int(meta.get("n_layers", 0)) < int(self.params["n_layers"]):
            raise CheckpointError(f"checkpoint {path} has {meta.get('n_layers')} layers, n_layers="
                                  f"{self.params['n_layers']} asked for")
        self._path, self._meta = path, meta

    def run(self, inputs: LassoInput) -> torch.Tensor:
        with torch.no_grad():
            return self.network(inputs.A)(inputs.y, depth=int(self.params["n_layers"]))

    def iterates(self, inputs: LassoInput) -> Iterator[torch.Tensor]:
        net = self.network(inputs.A)
        with torch.no_grad():
            yield from net.iterates(inputs.y, depth=int(self.params["n_layers"]))

    def parameter_count(self) -> int | None:
        if self._meta is not None:
            return int(self._meta["parameter_count_per_layer"] * int(self.params["n_layers"])
                       + self._meta["parameter_count_shared"])
        if self._net is not None:
            return self._net.learned_parameter_count()
        problem = self.context.problem if self.context is not None else None
        shape = problem.operator_shape if problem is not None else None
        return parameter_count(self.variant, tuple(shape), int(self.params["n_layers"])) if shape else None

    def row_extras(self) -> dict[str, Any]:
        out: dict[str, Any] = {"checkpoint": "none (untrained)" if self._meta is None else os.path.relpath(self._path, paths.REPO_ROOT)}
        if self._meta is not None:
            tr = self._meta.get("training", {})
            out["training"] = {"recipe": self._meta.get("recipe", {}).get("name"), "steps": tr.get("steps"),
                               "seconds": tr.get("seconds"), "snr_db": self._meta.get("snr_db"),
                               "val_nmse_db": self._meta.get("validation", {}).get("val_nmse_db")}
        if self._weight_info:
            out["analytic_weight"] = self._weight_info
        return out

    # -- the network for an operator
    def network(self, A: torch.Tensor) -> UnrolledIsta:
        if self._net is not None and self._net_for is A:
            return self._net
        n_ckpt = int(self._meta["n_layers"]) if self._meta is not None else int(self.params["n_layers"])
        net = build_network(self.name, A.detach().cpu().to(torch.float64), n_ckpt, float(self.params["lam"]),
                            self.weight_source())
        self._weight_info = net.weight_info
        if self._meta is not None:
            from bench.checkpoints import load_checkpoint
            state, _ = load_checkpoint(self._path, reference=initial_state(net))
            try:
                net.load_state_dict({**net.state_dict(), **state})
            except RuntimeError as e:
                raise CheckpointError(f"checkpoint {self._path} does not fit {self.name}: {e}") from None
        self._net = net.to(A.device, A.dtype).eval()
        self._net_for = A
        return self._net

    # -- training
    @classmethod
    def training_job(cls, recipe: str = "cpu", dataset: str | None = None, seed: int | None = None,
                     overrides: dict[str, Any] | None = None, device: str = "cpu",
                     data_root: str | None = None, options: dict[str, Any] | None = None):
        snr = (options or {}).get("snr")
        if device != "cpu":
            from bench.errors import BenchError
            raise BenchError(f"{cls.name}: the sparse suite trains on the cpu only (small dense layers; "
                             f"a GPU gains little); drop --device {device}")
        from bench.methods.sparse.training import LassoTrainingJob
        job = LassoTrainingJob(cls.name, recipe, snr if snr is not None else "inf", dataset, seed, overrides or {})
        return job, default_checkpoint(cls.name, job.snr_db) if dataset is None else job.default_path()

    @classmethod
    def weights_digest(cls, params) -> str:
        """The checkpoint files the cell reads (part of its key): ``checkpoint=shipped``, every
        shipped ``<name>_snr*.npz`` (which one is the degradation's SNR); a named file, that
        file; ``none``, nothing."""
        from bench.fingerprint import directory_digest, files_digest
        ckpt = weights.canonical(params.get("checkpoint", "shipped"))
        if ckpt is None:
            return ""
        if ckpt == "shipped":
            return directory_digest(CHECKPOINT_DIR, cls.name + "_snr")
        return files_digest([weights.resolve("sparse", cls.name, ckpt).path])

    @classmethod
    def default_checkpoint(cls, problem, kind: str = "shipped") -> str | None:
        """``shipped``: the file trained at the problem's SNR (``shipped:<method>_snr40``);
        no published weights."""
        snr = weights.fact(problem, "snr_db")
        if kind != "shipped" or snr is None:
            return None
        return f"{weights.SHIPPED_PREFIX}{cls.name}_snr{snr_label(snr)}"

    @classmethod
    def make_command(cls, stem: str) -> str:
        """``<method>_snr<SNR>``: the training at that SNR."""
        snr = stem.rsplit("_snr", 1)[1] if "_snr" in stem else "inf"
        return train_command(cls.name, snr)


class _Alista(_Unrolled):
    """ALISTA's extra parameter: how the analytic weight is computed: "qp" (cvxpy, checked
    against the closed form, cached per instance) or "closed_form"."""

    parameters = {**_Unrolled.parameters, "analytic_weight": "qp"}
    parameter_specs = {**_Unrolled.parameter_specs, "analytic_weight": Param(str, choices=("qp", "closed_form"))}

    def weight_source(self) -> str:
        return str(self.params["analytic_weight"])


#: the base class of a variant's registered method (the variants with extra parameters)
_BASES: dict[str, type[_Unrolled]] = {"alista": _Alista}
#: how the papers write each variant's name (tables and legends)
DISPLAY_NAMES = {"lista": "LISTA", "lista_cp": "LISTA-CP", "lista_cpss": "LISTA-CPSS", "tilista": "TiLISTA",
                 "alista": "ALISTA"}


def _class_name(variant: str) -> str:
    return "".join(part.capitalize() for part in variant.split("_"))


# one registered class per row of VARIANTS: the name is the selector and the variant the row
def _register(variant: str, row: Variant) -> type[_Unrolled]:
    """The registered method of one row of :data:`VARIANTS` (its name is the selector)."""
    attrs = {"name": variant, "variant": variant, "description": row.title, "__module__": __name__,
             "__qualname__": _class_name(variant), "__doc__": row.title}
    if variant in DISPLAY_NAMES:
        attrs["display_name"] = DISPLAY_NAMES[variant]
    return register_method(type(_class_name(variant), (_BASES.get(variant, _Unrolled),), attrs))


for _variant, _row in VARIANTS.items():
    globals()[_class_name(_variant)] = _register(_variant, _row)
del _variant, _row
