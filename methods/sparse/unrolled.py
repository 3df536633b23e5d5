"""The LISTA family's network: ISTA with its parameters made trainable (SPECS section 1),
unrolled; the table of variants, ALISTA's analytic weight and the names of the checkpoints.
The registered methods are :mod:`bench.methods.sparse.lista`, their training
:mod:`bench.methods.sparse.training`; both build their networks here.

One iteration serves every variant; the table :data:`VARIANTS` says what each learns::

    LISTA       z = W2_t x + B_t y                        (W2_t, B_t, theta_t per layer)
    LISTA-CP    z = x + W_t^T (y - A x)                   (W_t, theta_t per layer)
    LISTA-CPSS  LISTA-CP with support selection
    TiLISTA     z = x + alpha_t W^T (y - A x), one W      (W shared; alpha_t, theta_t per layer)
    ALISTA      z = x + alpha_t W^T (y - A x), W analytic (alpha_t, theta_t per layer: 2T scalars)
    x_{t+1} = eta_ss(z; theta_t, p_t)

A parameter a variant does not learn takes its fixed value: alpha = 1, W = A/scale, or the
analytic weight for ALISTA. Initialisation (scale = 1.001 ||A||_2^2, lam = 0.4): B = A^T/scale,
W2 = I - B A, W = A/scale, alpha = 1, theta = lam/scale; so an untrained network computes
exactly the iterates of ISTA (step 1/scale, threshold lam/scale), the invariant the tests pin.

Support selection (LISTA-CPSS, TiLISTA, ALISTA): at layer t (1-based) the entries of each
sample with |z| above both theta_t and the (100 - p_t)-th percentile of |z|, p_t =
min(1.2 t, 13) percent, pass unshrunk; the mask carries no gradient.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from bench import paths
from bench import weights
from bench.methods.prox import soft_threshold
from bench.methods.sparse.classical import lipschitz_scale
from bench.operators import MatrixOperator

CACHE_DIR = paths.cache_dir("sparse")


# --------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Variant:
    """What a variant learns: parameter name -> "layer" (one per layer) or "shared" (one
    for all layers). Parameters absent from ``learns`` are fixed. ``weight`` is the fixed
    coupled weight when W is not learned ("step": A/scale, "analytic": ALISTA's)."""

    learns: dict[str, str]
    support_selection: bool
    weight: str = "step"
    title: str = ""


VARIANTS: dict[str, Variant] = {
    "lista": Variant({"W2": "layer", "B": "layer", "theta": "layer"}, False,
                     title="LISTA (Gregor and LeCun 2010), untied per-layer W2, B"),
    "lista_cp": Variant({"W": "layer", "theta": "layer"}, False,
                        title="LISTA-CP (Chen et al. 2018), coupled per-layer weight"),
    "lista_cpss": Variant({"W": "layer", "theta": "layer"}, True,
                          title="LISTA-CPSS (Chen et al. 2018), LISTA-CP with support selection"),
    "tilista": Variant({"W": "shared", "alpha": "layer", "theta": "layer"}, True,
                       title="TiLISTA (Liu et al. 2019), one shared weight, per-layer step and threshold"),
    "alista": Variant({"alpha": "layer", "theta": "layer"}, True, weight="analytic",
                      title="ALISTA (Liu et al. 2019), analytic weight, learns 2T scalars"),
}


def support_percent(t: int, per_layer: float = 1.2, max_percent: float = 13.0) -> float:
    """p_t of support selection at layer t (1-based), in percent."""
    return min(t * per_layer, max_percent)


def shrink_ss(z: torch.Tensor, theta: torch.Tensor, percent: float) -> torch.Tensor:
    """Soft threshold, except that per sample (row) the entries above both theta and the
    (100 - percent)-th percentile of |z| pass unshrunk. percent 0 = plain soft threshold."""
    if percent <= 0:
        return soft_threshold(z, theta)
    a = z.abs()
    with torch.no_grad():
        # the percentile with "nearest" interpolation (as torch.quantile computes it) is one
        # order statistic, the k-th smallest: read it as the (n-k+1)-th largest with topk
        # (a partial selection, several times cheaper than the sort quantile does)
        n = a.shape[-1]
        k = int(round((1.0 - percent / 100.0) * (n - 1))) + 1
        q = torch.topk(a, n - k + 1, dim=-1).values[..., -1:]
        keep = (a > q) & (a > theta)
    return torch.where(keep, z, soft_threshold(z, theta))


# --------------------------------------------------------------------------- the network
class UnrolledIsta(nn.Module):
    """T layers of the shared iteration; ``variant`` picks what is a parameter."""

    def __init__(self, A: torch.Tensor, variant: str, n_layers: int = 16, lam: float = 0.4,
                 weight: torch.Tensor | None = None, support_selection: bool | None = None):
        super().__init__()
        spec = VARIANTS[variant]
        self.variant, self.n_layers = variant, int(n_layers)
        self.support_selection = spec.support_selection if support_selection is None else bool(support_selection)
        A64 = A.detach().to(torch.float64)
        scale = lipschitz_scale(MatrixOperator(A64))
        m, n = A64.shape
        B = A64.T / scale
        init = {"W2": torch.eye(n, dtype=torch.float64) - B @ A64, "B": B, "W": A64 / scale,
                "alpha": torch.tensor(1.0, dtype=torch.float64),
                "theta": torch.tensor(float(lam), dtype=torch.float64) / scale}
        dtype = A.dtype
        self.lam = float(lam)
        # the operator and the fixed weight are rebuilt from the problem, not stored
        self.register_buffer("A", A.detach().clone(), persistent=False)
        fixed_W = init["W"] if spec.weight == "step" or weight is None else weight.to(torch.float64)
        if spec.weight == "analytic" and weight is None:
            raise ValueError("alista needs its analytic weight (see analytic_weight)")
        self.register_buffer("W_fixed", fixed_W.to(dtype), persistent=False)
        self.layer = nn.ModuleList()
        self.shared = nn.ParameterDict()
        for name, tying in spec.learns.items():
            if tying == "shared":
                self.shared[name] = nn.Parameter(init[name].to(dtype).clone())
        for _ in range(self.n_layers):
            self.layer.append(nn.ParameterDict({
                name: nn.Parameter(init[name].to(dtype).clone())
                for name, tying in spec.learns.items() if tying == "layer"}))
        self.free_form = "W2" in spec.learns  # LISTA's z = W2 x + B y; otherwise the coupled form

    @property
    def operator(self) -> MatrixOperator:
        """The problem's A as an operator, on the network's current device and dtype."""
        return MatrixOperator(self.A)

    def value(self, name: str, t: int) -> torch.Tensor | float:
        """Layer t's (0-based) value of a parameter, learned or fixed."""
        if name in self.layer[t]:
            return self.layer[t][name]
        if name in self.shared:
            return self.shared[name]
        return {"W": self.W_fixed, "alpha": 1.0}[name]

    def step(self, x: torch.Tensor, y: torch.Tensor, t: int) -> torch.Tensor:
        """x^{t+1} from x^t (rows are samples), t 0-based."""
        if self.free_form:
            z = x @ self.value("W2", t).T + y @ self.value("B", t).T
        else:
            r = y - self.operator.forward(x)
            z = x + self.value("alpha", t) * (r @ self.value("W", t))
        percent = support_percent(t + 1) if self.support_selection else 0.0
        return shrink_ss(z, self.value("theta", t), percent)

    def iterates(self, y: torch.Tensor, depth: int | None = None) -> Iterator[torch.Tensor]:
        x = y.new_zeros(y.shape[0], *self.operator.in_shape)
        yield x
        for t in range(self.n_layers if depth is None else depth):
            x = self.step(x, y, t)
            yield x

    def forward(self, y: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        x = None
        for x in self.iterates(y, depth):
            pass
        return x

    def layer_parameters(self, t: int) -> list[nn.Parameter]:
        return list(self.layer[t].values())

    def learned_parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


# --------------------------------------------------------------------------- ALISTA's weight
def analytic_weight_closed_form(A: torch.Tensor) -> torch.Tensor:
    """w_i = G^{-1} a_i / (a_i^T G^{-1} a_i), G = A A^T: the solution of
    min ||W^T A||_F^2 s.t. diag(W^T A) = 1 (one Cholesky solve)."""
    A = A.to(torch.float64)
    L = torch.linalg.cholesky(A @ A.T)
    GiA = torch.cholesky_solve(A, L)
    return GiA / (A * GiA).sum(0, keepdim=True)


def analytic_weight_objective(W: torch.Tensor, A: torch.Tensor) -> float:
    return float(((W.to(torch.float64).T @ A.to(torch.float64)) ** 2).sum())


def analytic_weight_qp(A: torch.Tensor, solver: str = "CLARABEL") -> torch.Tensor:
    """The same W from cvxpy, column by column: the problem separates into n QPs
    min_w ||L^T w||^2 s.t. a_i^T w = 1 (G = L L^T), compiled once (a DPP problem with a_i a
    parameter) and re-solved per column."""
    import cvxpy as cp

    A64 = A.to(torch.float64).cpu().numpy()
    m, n = A64.shape
    Lt = np.linalg.cholesky(A64 @ A64.T).T
    w = cp.Variable(m)
    a = cp.Parameter(m)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(Lt @ w)), [a @ w == 1])
    W = np.empty((m, n))
    for i in range(n):
        a.value = A64[:, i]
        prob.solve(solver=solver)
        if prob.status not in ("optimal", "optimal_inaccurate"):
            raise RuntimeError(f"cvxpy ({solver}) returned {prob.status} on column {i}")
        W[:, i] = w.value
    return torch.from_numpy(W)


def analytic_weight_qp_joint(A: torch.Tensor, solver: str | None = None) -> torch.Tensor:
    """The card's formulation in one problem: min ||W^T A||_F^2 s.t. diag(W^T A) = 1
    (slow: about 108 s with cvxpy's default solver on 250 x 500, SPECS)."""
    import cvxpy as cp

    A64 = A.to(torch.float64).cpu().numpy()
    m, n = A64.shape
    W = cp.Variable((m, n))
    prob = cp.Problem(cp.Minimize(cp.sum_squares(W.T @ A64)), [cp.sum(cp.multiply(W, A64), axis=0) == 1])
    prob.solve(solver=solver)
    return torch.from_numpy(W.value)


def instance_key(A: torch.Tensor) -> str:
    return hashlib.sha256(A.detach().cpu().to(torch.float64).contiguous().numpy().tobytes()).hexdigest()[:16]


def analytic_weight(A: torch.Tensor, source: str = "qp", cache_dir: str | None = CACHE_DIR,
                    tol: float = 1e-4) -> tuple[torch.Tensor, dict[str, Any]]:
    """ALISTA's W (float64, m x n) and a report of how it was obtained.

    ``source`` "qp": cvxpy column-separable QP, checked against the closed form (relative
    difference and both objectives), cached per problem instance under ``cache_dir``;
    "closed_form": the closed form only.
    """
    t0 = time.perf_counter()
    Wc = analytic_weight_closed_form(A)
    t_closed = time.perf_counter() - t0
    info: dict[str, Any] = {"source": source, "closed_form_s": t_closed,
                            "objective_closed_form": analytic_weight_objective(Wc, A)}
    if source == "closed_form":
        return Wc, info
    if source != "qp":
        raise ValueError(f"analytic_weight: unknown source {source!r} (qp or closed_form)")
    key = instance_key(A)
    path = os.path.join(cache_dir, f"alista_weight_{key}.npz") if cache_dir else None
    if path and os.path.exists(path):
        try:
            with np.load(path, allow_pickle=False) as z:
                Wq = torch.from_numpy(z["W"])
                cached = json.loads(bytes(z["info"]).decode())
            info.update({k: v for k, v in cached.items() if k not in ("closed_form_s", "objective_closed_form")})
            info["cached"] = path
        except Exception:  # noqa: BLE001 - a broken cache is recomputed
            Wq = None
    else:
        Wq = None
    if Wq is None or tuple(Wq.shape) != tuple(A.shape):
        t0 = time.perf_counter()
        Wq = analytic_weight_qp(A)
        info.update({"solver": "cvxpy/CLARABEL, column-separable DPP", "qp_s": time.perf_counter() - t0,
                     "objective_qp": analytic_weight_objective(Wq, A)})
        if path:
            os.makedirs(cache_dir, exist_ok=True)
            blob = json.dumps({k: v for k, v in info.items()}).encode()
            np.savez(path + ".tmp.npz", W=Wq.numpy(), info=np.frombuffer(blob, dtype=np.uint8))
            os.replace(path + ".tmp.npz", path)
    rel = float((Wq - Wc).norm() / Wc.norm())
    info["relative_difference"] = rel
    if rel > tol:
        raise RuntimeError(f"ALISTA weight: the QP and the closed form differ by {rel:.2e} (> {tol:g})")
    return Wq, info


def build_network(method: str, A: torch.Tensor, n_layers: int, lam: float, weight_source: str = "closed_form",
                  support_selection: bool | None = None) -> UnrolledIsta:
    """The network of ``method`` for operator A (float64 on the CPU), untrained."""
    weight, info = None, None
    if VARIANTS[method].weight == "analytic":
        W, info = analytic_weight(A, weight_source)
        weight = W
    net = UnrolledIsta(A.to(torch.float32), method, n_layers, lam, weight=weight, support_selection=support_selection)
    net.weight_info = info
    return net


def initial_state(net: UnrolledIsta) -> dict[str, torch.Tensor]:
    """The untrained state of a network like ``net`` (checkpoints store deltas from it)."""
    spec = VARIANTS[net.variant]
    fresh = UnrolledIsta(net.A.detach().cpu().to(torch.float64).to(torch.float32), net.variant, net.n_layers,
                         lam=net.lam, weight=net.W_fixed.detach().cpu().double()
                         if spec.weight == "analytic" else None)
    return {k: v for k, v in fresh.state_dict().items()}


def parameter_count(variant: str, shape: tuple[int, int], n_layers: int) -> int:
    m, n = shape
    sizes = {"W2": n * n, "B": n * m, "W": m * n, "alpha": 1, "theta": 1}
    spec = VARIANTS[variant]
    return sum(sizes[k] * (n_layers if tying == "layer" else 1) for k, tying in spec.learns.items())


# --------------------------------------------------------------------------- checkpoint names
def snr_label(snr) -> str:
    v = float(snr)
    return "inf" if math.isinf(v) else f"{v:g}"


def train_command(method: str, snr, recipe: str = "cpu") -> str:
    """The ``bench train`` command of ``method`` at training SNR ``snr`` (:func:`bench.weights.train_command`)."""
    return weights.train_command("sparse", method, recipe, options={"snr": snr_label(snr)})
