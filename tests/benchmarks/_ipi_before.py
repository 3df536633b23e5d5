"""IPI's APG loop as it was before issue 19 (commit f4cb261, methods/istd/classical.py):
batched, one full Gram eigen-decomposition per item and iteration, out-of-place updates.
Kept only as the "before" side of tests/benchmarks/test_perf_istd.py, measured in the same
run as the current code."""
from __future__ import annotations

import math
import torch


def svt_gram(Y: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Singular value thresholding of each (m, n) matrix of Y (B, m, n), m >= n, through the
    eigen-decomposition of Y^T Y. Returns (X, rank per item, singular values ascending)."""
    G = Y.transpose(-1, -2) @ Y
    evals, V = torch.linalg.eigh(G)
    s = evals.clamp(min=0).sqrt()
    shrink = torch.where(s > threshold, (s - threshold) / torch.where(s > 0, s, torch.ones_like(s)),
                         torch.zeros_like(s))
    rank = (s > threshold).sum(-1)
    k = int(rank.max())
    if k == 0:
        return torch.zeros_like(Y), rank, s
    Vk, fk = V[..., -k:], shrink[..., -k:]
    X = (Y @ Vk) @ (fk.unsqueeze(-1) * Vk.transpose(-1, -2))
    return X, rank, s


def singular_values(D: torch.Tensor) -> torch.Tensor:
    """Singular values, descending, of each matrix of D (B, m, n)."""
    m, n = D.shape[-2:]
    G = D.transpose(-1, -2) @ D if m >= n else D @ D.transpose(-1, -2)
    return torch.linalg.eigvalsh(G).clamp(min=0).sqrt().flip(-1)


def apg_rpca(D: torch.Tensor, lam: float, max_iter: int = 1000, tol: float = 1e-6,
             tau: float = 2.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """IPI's APG_IR on each matrix of D (B, m, n), m >= n: min mu ||A||_* + lam mu ||E||_1 +
    0.5 ||A + E - D||^2 with continuation. Returns (A, E, iterations per item)."""
    B, m, n = D.shape
    s = singular_values(D)
    mu = s[:, 1].clone() if n > 1 else s[:, 0].clone()
    mu_bar = 0.005 * (s[:, 3] if n > 3 else s[:, -1])
    t_k = t_km1 = 1.0
    A_prev = torch.zeros_like(D); E_prev = torch.zeros_like(D)
    A = torch.zeros_like(D); E = torch.zeros_like(D)
    active = torch.ones(B, dtype=torch.bool, device=D.device)
    iters = torch.zeros(B, dtype=torch.long, device=D.device)
    no_change = torch.zeros(B, dtype=torch.long, device=D.device)
    pre_rank = torch.zeros(B, dtype=torch.long, device=D.device)
    pre_card = torch.zeros(B, dtype=torch.long, device=D.device)
    for _ in range(max_iter):
        a = (t_km1 - 1) / t_k
        YA = A + a * (A - A_prev)
        YE = E + a * (E - E_prev)
        R = (YA + YE - D) / tau
        GA, GE = YA - R, YE - R
        thr = (mu / tau).view(B, 1, 1)
        # per-item thresholds: SVT item by item when they differ (they do across images)
        if B == 1:
            A_new, rank, _ = svt_gram(GA, float(thr))
        else:
            parts = [svt_gram(GA[b:b + 1], float(thr[b])) for b in range(B)]
            A_new = torch.cat([p[0] for p in parts])
            rank = torch.cat([p[1] for p in parts])
        E_new = torch.sign(GE) * (GE.abs() - lam * thr).clamp(min=0)
        card = (E_new != 0).sum((-1, -2))
        t_kp1 = 0.5 * (1 + math.sqrt(1 + 4 * t_k * t_k))
        common = A_new + E_new - YA - YE
        SA = tau * (YA - A_new) + common
        SE = tau * (YE - E_new) + common
        crit = torch.sqrt((SA ** 2).sum((-1, -2)) + (SE ** 2).sum((-1, -2))) / (
            tau * torch.sqrt((A_new ** 2).sum((-1, -2)) + (E_new ** 2).sum((-1, -2))).clamp(min=1))
        done = crit <= tol
        mu = torch.where(active, torch.maximum(0.9 * mu, mu_bar), mu)
        t_km1, t_k = t_k, t_kp1
        keep = active.view(B, 1, 1)
        A_prev = torch.where(keep, A, A_prev); E_prev = torch.where(keep, E, E_prev)
        A = torch.where(keep, A_new, A); E = torch.where(keep, E_new, E)
        iters = iters + active.long()
        # early stop on a stable rank (the authors' NOChange_counter)
        same = rank == pre_rank
        no_change = torch.where(same, no_change + 1, torch.zeros_like(no_change))
        done = done | (same & (no_change > 10) & ((card - pre_card).abs() < 20))
        # the authors' truncation: stop once rank(A) exceeds 0.3 min(m, n)
        done = done | (rank > 0.3 * min(m, n))
        pre_card = torch.where(same, pre_card, card)
        pre_rank = rank
        active = active & ~done
        if not bool(active.any()):
            break
    return A, E, iters


