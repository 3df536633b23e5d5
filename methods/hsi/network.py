"""The unrolled network of SMDS-Net, STAR-Net and STAR-Net-S (SPECS section 3): one
implementation, :class:`CubeNet`, with the three networks as configurations
(:class:`NetConfig`); it maps 729-vectors (9x9 pixels x 9 subspace channels, mean removed) to
729-vectors. The pipeline around it (blocks, spectral subspace, cubes) is
:mod:`bench.methods.hsi.blocks`; the registered methods are :mod:`bench.methods.hsi.learned`.

Three 9x9 dictionaries per role act on a cube through their Kronecker product, applied as
mode products (:func:`tucker`): analysis A (init D^T), synthesis D and output W (init D), D
the 9x9 DCT of SPECS divided by the square root of the largest eigenvalue of D^T D. With Y
the cubes:

* codes B_0 = soft(Y pinv(kron DCT)^T, t_0): t_0 = 0.001 (SMDS-Net) or a learned 729-vector
  ``init_threshold`` (STAR-Net's ``l``);
* stage k: B = soft(Z - (Z D^T - Y) A^T, theta_k), Z the previous stage's code; theta_k =
  lambda_k (SMDS-Net) or gamma1_k * lambda_k (STAR-Net), 729 values per stage. Computed as
  soft(Z - Z (A D)^T + Y A^T, theta_k), Y A^T once for all stages (the same product by
  associativity; A D = kron(A_i D_i)): one mode product per stage;
* STAR-Net's L update (``low_rank``): L = t-SVT(B - P/beta_k) (:func:`tsvt`), then the
  multiplier step and Z = L; ``l_update`` (:data:`L_UPDATES`) chooses the slides' step, the
  public code's line as written, or the released behaviour (no L update), as
  :mod:`bench.methods.hsi.learned` describes;
* STAR-Net-S (``sparse``): a sparse-noise term S = soft(Y - Z D^T, mu) with a learned
  729-vector mu, and the data term of the B update uses Y - S.

soft: the authors' soft threshold, which keeps the effect of a negative learned threshold
(:func:`bench.methods.prox.soft_threshold_smds_net`). Output: B_K W^T. Parameter counts:
SMDS-Net (6 stages) 5,103; STAR-Net (9 stages) 27,702; STAR-Net-S 28,431.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from bench.methods.prox import soft_threshold_smds_net, soft_threshold_smds_net_

CUBE = 9                 # cube edge: 9x9 pixels x 9 subspace channels
ATOMS = CUBE ** 3        # 729 coefficients per cube
FIXED_INIT_THRESHOLD = 0.001  # SMDS-Net's threshold of the initial codes
BETA_FLOOR = 1e-3          # STAR-Net's ADMM penalty beta is used as max(|beta|, this) (see CubeNet.codes)


# =========================================================================== configurations
@dataclass(frozen=True)
class NetConfig:
    """What distinguishes the three networks (everything else is shared)."""

    stages: int
    learned_init: bool = False   # a learned initial threshold (STAR-Net's ``l``) instead of 0.001
    star: bool = False           # per-stage gamma_1, gamma_2, beta (threshold gamma_1 * lambda)
    low_rank: bool = False       # the L (t-SVT) update and multiplier P run (the slides' model)
    dual_sign: int = 1           # P <- P + dual_sign * beta (L - B): +1 consistent with L = SVT(B - P/beta)
    sparse: bool = False         # STAR-Net-S: the sparse-noise term S with its threshold mu
    threshold_init: float = 0.02  # lambda, gamma_1, gamma_2 at initialisation (the authors' 0.02)
    beta_init: float = 0.02
    init_threshold_init: float = 0.02
    sparse_threshold_init: float = 1.0


SMDS_NET = NetConfig(stages=6)
STAR_NET = NetConfig(stages=9, learned_init=True, star=True, low_rank=True)
STAR_NET_S = dataclasses.replace(STAR_NET, sparse=True)
#: ``l_update``: "slides" (default: the L update runs, multiplier step P <- P + beta (L - B)),
#: "code" (the L update runs with the public code's never-executed multiplier line as written,
#: P <- P - beta (L - B)) or "released" (the public code's behaviour: the L update never runs)
L_UPDATES = ("slides", "code", "released")


def dct_dictionary(n: int = CUBE) -> torch.Tensor:
    """The n x n DCT of SPECS (float64): column k = cos(pi k i / n), mean removed for k > 0,
    unit norm (before the division by sqrt(max eig(D^T D)) that the networks apply)."""
    i = torch.arange(n, dtype=torch.float64)
    cols = []
    for k in range(n):
        v = torch.cos(i * k * math.pi / n)
        if k > 0:
            v = v - v.mean()
        cols.append(v / v.norm())
    return torch.stack(cols, dim=1)


def tucker(x: torch.Tensor, m0: torch.Tensor, m1: torch.Tensor, m2: torch.Tensor) -> torch.Tensor:
    """Rows of 729 values (a 9x9x9 cube, index c*81 + i*9 + j) times kron(m0, m1, m2)^T,
    i.e. the cube's mode products (m0 on the channels, m1 on the rows, m2 on the columns),
    without forming the 729x729 matrix: one GEMM with kron(m1, m2) (81x81), one batched
    product with m0."""
    n = x.shape[0]
    y = x.reshape(n * CUBE, CUBE * CUBE) @ torch.kron(m1, m2).T
    return torch.matmul(m0, y.reshape(n, CUBE, CUBE * CUBE)).reshape(n, ATOMS)


def kron3(m0, m1, m2) -> torch.Tensor:
    """The dense 729x729 Kronecker product (tests; the networks use :func:`tucker`)."""
    return torch.kron(torch.kron(m0, m1), m2)


# =========================================================================== the network
class CubeNet(nn.Module):
    """The unrolled stages on cubes: ``forward(rows, slab)`` maps (N, 729) mean-free cubes
    to (N, 729) denoised ones. ``slab`` (rows per block channel-position, 48*48 for a 56
    block) is what the L update's t-SVT groups rows by; rows are ordered (block, channel
    position, row, column)."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        dct = dct_dictionary(CUBE)
        scaled = dct / torch.sqrt(torch.linalg.eigvalsh(dct.T @ dct).max())
        # the initial analysis: pinv of the (unscaled) Kronecker DCT = kron of the pinvs
        self.register_buffer("init_analysis", torch.linalg.pinv(dct).to(torch.float32), persistent=False)
        f32 = scaled.to(torch.float32)
        self.analysis = nn.ParameterList(nn.Parameter(f32.T.clone()) for _ in range(3))   # A (authors' apply_A)
        self.synthesis = nn.ParameterList(nn.Parameter(f32.clone()) for _ in range(3))    # D (apply_D)
        self.output = nn.ParameterList(nn.Parameter(f32.clone()) for _ in range(3))       # W (apply_W)

        def per_stage(value):
            return nn.ParameterList(nn.Parameter(torch.full((ATOMS,), float(value))) for _ in range(cfg.stages))

        self.threshold = per_stage(cfg.threshold_init)                      # lambda_k (lmbda)
        if cfg.star:
            self.gamma_sparse = per_stage(cfg.threshold_init)               # gamma_1
            self.gamma_low_rank = per_stage(cfg.threshold_init)             # gamma_2
            self.penalty = per_stage(cfg.beta_init)                         # beta
        if cfg.learned_init:
            self.init_threshold = nn.Parameter(torch.full((ATOMS,), float(cfg.init_threshold_init)))  # l
        if cfg.sparse:
            self.sparse_threshold = nn.Parameter(torch.full((ATOMS,), float(cfg.sparse_threshold_init)))  # mu

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def stage_threshold(self, k: int) -> torch.Tensor:
        t = self.threshold[k]
        return self.gamma_sparse[k] * t if self.cfg.star else t

    def initial_codes(self, y: torch.Tensor) -> torch.Tensor:
        t = self.init_threshold if self.cfg.learned_init else FIXED_INIT_THRESHOLD
        p = self.init_analysis
        soft = soft_threshold_smds_net if torch.is_grad_enabled() else soft_threshold_smds_net_
        return soft(tucker(y, p, p, p), t)

    def forward(self, y: torch.Tensor, slab: int, stages: int | None = None) -> torch.Tensor:
        """Denoised mean-free cubes; ``stages`` < K stops early and returns the codes' output
        after that many stages (tests)."""
        return tucker(self.codes(y, slab, stages), *self.output)

    def codes(self, y: torch.Tensor, slab: int, stages: int | None = None) -> torch.Tensor:
        cfg = self.cfg
        A, D = list(self.analysis), list(self.synthesis)
        AD = [a @ d for a, d in zip(A, D)]
        ya = tucker(y, *A)                      # Y A^T, the same in every stage
        z = self.initial_codes(y)
        p = torch.zeros_like(z) if (cfg.low_rank and cfg.star) else None
        for k in range(cfg.stages if stages is None else stages):
            if cfg.sparse:
                s = soft_threshold_smds_net(y - tucker(z, *D), self.sparse_threshold)
                b = soft_threshold_smds_net(z - tucker(z, *AD) + ya - tucker(s, *A), self.stage_threshold(k))
            elif torch.is_grad_enabled():               # training: out of place (autograd)
                b = soft_threshold_smds_net(z - tucker(z, *AD) + ya, self.stage_threshold(k))
            else:                                       # inference: in place, fewer passes
                b = tucker(z, *AD).sub_(z)              # Z (A D)^T - Z
                b = soft_threshold_smds_net_(torch.sub(ya, b, out=b), self.stage_threshold(k))
            if p is not None:
                # the ADMM penalty must stay positive: free, it went negative within 50 steps of
                # training here (min -0.007; the held-out PSNR fell from 28.3 to 21.4 dB), which
                # turns the t-SVT threshold gamma_2 lambda / beta negative and P / beta unbounded.
                # |beta| floored at BETA_FLOOR; the released file's betas (0.02) are unchanged
                beta = self.penalty[k].abs().clamp_min(BETA_FLOOR)
                l_ = tsvt(b - p / beta, self.gamma_low_rank[k] * self.threshold[k] / beta, slab)
                p = p + cfg.dual_sign * beta * (l_ - b)
                z = l_
            else:
                z = b
        return z


def tsvt(x: torch.Tensor, tau: torch.Tensor, slab: int) -> torch.Tensor:
    """Tensor singular value thresholding of every slab of ``x`` (rows grouped by ``slab`` =
    h*w consecutive rows: an (h, w, 729) tensor, h = w = sqrt(slab)): orthonormal FFT along
    the 729 axis, soft threshold of the singular values of each h x w frequency slice by
    ``tau`` (729; frequencies f and 729 - f share their mean so the result stays real),
    inverse FFT. The SVT of a slice A is A V diag(max(1 - tau/s, 0)) V^H from the eigen-
    decomposition of A^H A (w x w), cheaper than an SVD and exact up to rounding."""
    n = x.shape[0]
    h = int(round(math.sqrt(slab)))
    if h * h != slab or n % slab:
        raise ValueError(f"tsvt: {n} rows are not whole {h}x{h} slabs")
    xf = torch.fft.rfft(x.reshape(n // slab, h, h, ATOMS), dim=-1, norm="ortho")   # (S, h, h, F)
    nf = xf.shape[-1]
    t = (tau + torch.roll(tau.flip(0), 1)) / 2          # tau[f] and tau[-f] averaged
    a = xf.permute(0, 3, 1, 2)                          # (S, F, h, h)
    evals, vecs = torch.linalg.eigh(a.mH @ a)
    s = evals.clamp(min=0).sqrt()
    scale = torch.where(s > 0, torch.clamp(1 - t[:nf, None] / s.clamp(min=1e-30), min=0), torch.zeros_like(s))
    shrink = (vecs * scale.to(vecs.dtype).unsqueeze(-2)) @ vecs.mH
    out = (a @ shrink).permute(0, 2, 3, 1)
    return torch.fft.irfft(out, n=ATOMS, dim=-1, norm="ortho").reshape(n, ATOMS)

