"""Classical ISTD methods of SPECS section 2, in torch (cpu and cuda): IPI, MPCM, PSTNN.

Each returns :class:`TargetMaps` (one target map per image, the image's size) with the
name of the segmentation rule of the cell (``segmentation`` parameter, default
``max_norm``: negatives to 0, divided by the max, > 0.5; the rules are defined in
``bench.metrics.istd``). Images of the same size are processed as one batch.

* IPI (Gao et al., TIP 2013; code gaocq/IPI-for-small-target-detection, winRPCA_median +
  APG_IR): 50x50 patches with step 10 as columns of D, D min-max normalised (mat2gray),
  lambda = 1/sqrt(max(M, N)) with M x N the image size, RPCA by accelerated proximal
  gradient (tau = 2, mu_0 = sigma_2(D), mu <- max(0.9 mu, 0.005 sigma_4(D)), stop when
  ||S||_F / (tau max(1, ||X||_F)) <= 1e-6, after 1000 iterations, or when the rank of A has
  not changed for more than 10 iterations and the support of E changed by fewer than 20
  entries, or as soon as rank(A) > 0.3 min(m, n): the authors' truncation); target image = median of the overlapping patch values of E.
  The singular value thresholding uses the eigen-decomposition of the Gram matrix
  Y^T Y (n_patches x n_patches, float64) instead of an SVD of the 2500 x n_patches
  matrix, and on the CPU only the eigenpairs above the threshold (LAPACK syevr through
  scipy, :func:`svt_top`): the same operator, several times faster. Each image runs its own
  loop over preallocated buffers (:func:`_apg_one`; issue 19: 1.6-1.8x the per-iteration
  code it replaced, maps equal to rounding). ``precision=fp32`` (not the default) runs the
  iterates in float32: about 2x faster again, but the maps move by up to ~3e-3 relative
  from the authors' (measured on SIRST test images; masks equal on those checked).
* PSTNN (Zhang and Peng, Remote Sensing 2019; code Lanneeee/...PSTNN): 40x40 patches,
  step 40 (last patch aligned to the border) as frontal slices; lambda =
  0.7/sqrt(max(n1, n2) n3); structure-tensor prior (Gaussian 3x3, sigma 2 on the image, sigma
  9 on the tensor; corner strength l1 l2/(l1 + l2) times max(l1, l2), min-max normalised);
  ADMM (mu_0 = 2e-3, rho = 1.05, tol 1e-3, at most 500 iterations, stop also when the number
  of positive target entries is nonzero and unchanged); target tensor kept >= 0 (the
  authors' prox_l1); patches are the frontal slices in MATLAB's column-major order; partial sum of the tensor nuclear norm in the
  Fourier domain (keep the top N singular values of each slice, N = number of singular
  values of the mode-1 unfolding with sigma_i/sigma_1 >= 0.1, at least 1); reweighted l1
  with weight N/(|T| + 0.01)/W_prior; target image: patches written back in order, so an
  overlapped pixel takes the value of the last patch (the authors' res_patch_ten_mean, whose
  "mean" divides by a weight image that is overwritten with ones, not accumulated).
  Divide-by-zero guards (the authors' code gives NaN/Inf on real images):
  ``CORNER_STRENGTH_GUARD``: l1 l2/(l1 + l2) := 0 where l1 + l2 <= CORNER_STRENGTH_EPS (flat
  regions, 0/0 in the original); ``PRIOR_WEIGHT_FLOOR``: W_prior := max(W_prior, 1e-6) before
  dividing (W_prior = 0 after min-max on flat regions; the floor keeps those pixels out of
  the target, which is what an infinite weight means, without Inf * 0 = NaN).
* MPCM (Wei et al., Pattern Recognition 2016): per scale l in (3, 5, 7), cell means by an
  l x l mean filter, d_i = m_centre - m_neighbour_i for the 8 neighbour cells at distance l,
  products of opposite pairs clipped at 0, minimum over the 4 pairs, maximum over scales.
  ``polarity=bright`` (default) counts a product only when both differences are positive
  (the paper's bright-target case); ``polarity=any`` is SPECS's literal rule (a product of
  two negatives, i.e. a dark spot, also responds).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from bench.metrics.istd import SEGMENTATION_RULES
from bench.params import Param, iterations
from bench.methods.prox import soft_threshold
from bench.methods.istd.common import (IstdInput, TargetMaps, covering_positions, extract_patches,
                                       mat2gray, reassemble, shape_batches, sliding_positions)
from bench.registry import Method, register_method

CORNER_STRENGTH_EPS = 1e-12
#: IPI's ``precision`` parameter: the dtype of its iterates
PRECISIONS = {"fp64": torch.float64, "fp32": torch.float32}
PRIOR_WEIGHT_FLOOR = 1e-6

#: the parameters IPI and PSTNN share (patch size, step, weight, iterations, stop, rule)
_RPCA_SPECS = {"patch": Param(int, min=1, help="patch edge in pixels"),
               "step": Param(int, min=1, help="pixels between patches"),
               "lambda_scale": Param(float, min=0, help="multiplies the sparse weight lambda"),
               "max_iter": iterations(), "tol": Param(float, min=0),
               "segmentation": Param(str, choices=tuple(SEGMENTATION_RULES))}


class _IstdClassical(Method):
    suite = "istd"
    family = "classical"
    devices = ("cpu", "cuda")
    dtype = torch.float64
    source_dependencies = ("bench.methods.istd.common",)

    def run(self, inputs: IstdInput) -> TargetMaps:
        rule = self.params["segmentation"]
        if rule not in SEGMENTATION_RULES:
            raise ValueError(f"{self.name}: unknown segmentation rule {rule!r}; valid: "
                             f"{', '.join(SEGMENTATION_RULES)}")
        maps: list = [None] * len(inputs.images)
        for idx in shape_batches(inputs.images):
            batch = torch.stack([inputs.images[i] for i in idx]).to(self.compute_dtype())
            out = self.detect(batch)
            for k, i in enumerate(idx):
                maps[i] = out[k].to(torch.float32)
        return TargetMaps(tuple(maps), rule)

    def compute_dtype(self) -> torch.dtype:
        """The dtype the images are processed in: the class's, or the ``precision`` parameter
        of a method that declares one."""
        return PRECISIONS[self.params["precision"]] if "precision" in self.params else self.dtype

    def detect(self, images: torch.Tensor) -> torch.Tensor:  # (B, H, W) -> (B, H, W)
        raise NotImplementedError


# --------------------------------------------------------------------------- IPI
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


def blas_threads_like_torch():
    """Limit the BLAS that scipy calls (``syrk``, ``syevr`` in :func:`svt_top`) to torch's
    thread count for the duration (threadpoolctl): scipy's OpenBLAS otherwise starts a thread
    per core whatever torch was told, and on a busy 2-core machine its spinning threads made
    IPI slower than the code before issue 19 (CPU time ratio 0.73 in a CI run without
    OMP_NUM_THREADS)."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=torch.get_num_threads(), user_api="blas")


def svt_top(Y: torch.Tensor, threshold: float) -> tuple[torch.Tensor, int]:
    """Singular value thresholding of one (m, n) matrix Y, m >= n, computing only the
    singular pairs above ``threshold``: the Gram matrix Y^T Y (n x n; on the CPU its upper
    triangle by BLAS ``syrk``) and, on the CPU, LAPACK's ``syevr`` restricted to the eigenvalues above threshold^2 (scipy's ``subset_by_value``:
    the same tridiagonal reduction as a full ``syevd`` without the eigenvectors that the
    threshold discards); on other devices a full ``eigh``. The same operator as
    :func:`svt_gram` (equal to rounding; tests compare both with a full SVD). Returns (X, rank)."""
    t2 = float(threshold) ** 2
    if Y.device.type == "cpu" and Y.dtype in (torch.float64, torch.float32):
        import numpy as np
        import scipy.linalg
        from scipy.linalg import blas
        syrk = blas.dsyrk if Y.dtype == torch.float64 else blas.ssyrk
        # the upper triangle of Y^T Y by BLAS syrk (half a matrix product's work); Y's
        # row-major buffer read as Y^T in column-major order, so nothing is copied
        G = syrk(1.0, Y.contiguous().numpy().T, trans=0)
        w, V = scipy.linalg.eigh(G, lower=False, subset_by_value=(t2, np.inf), driver="evr",
                                 check_finite=False, overwrite_a=True)
        if w.size == 0:
            return torch.zeros_like(Y), 0
        evals, V = torch.from_numpy(w).to(Y.dtype), torch.from_numpy(V).to(Y.dtype)
    else:
        evals, V = torch.linalg.eigh(Y.T @ Y)
        keep = evals > t2
        if not bool(keep.any()):
            return torch.zeros_like(Y), 0
        evals, V = evals[keep], V[:, keep]
    s = evals.sqrt()
    f = (s - threshold) / s
    X = (Y @ V) @ (f.unsqueeze(-1) * V.T)
    return X, int(s.numel())


def _apg_one(D: torch.Tensor, lam: float, max_iter: int, tol: float, tau: float):
    """APG_IR on one (m, n) matrix, m >= n (see :func:`apg_rpca`). The time of this loop is
    the SVT and memory traffic over the m x n iterates: they live in buffers allocated once
    (a fresh 12 MB tensor per operation costs more in page faults than the operation) and
    are formed in as few passes as the updates allow; the arithmetic is the authors'."""
    D = D.contiguous()
    m, n = D.shape
    s = singular_values(D[None])[0]
    mu = float(s[1] if n > 1 else s[0])
    mu_bar = 0.005 * float(s[3] if n > 3 else s[-1])
    t_k = t_km1 = 1.0
    z = lambda: torch.zeros_like(D)  # noqa: E731
    A_prev, A, A_new = z(), z(), z()
    E_prev, E, E_new = z(), z(), z()
    YA, YE, S, R, T1, T2 = z(), z(), z(), z(), z(), z()
    no_change = pre_rank = pre_card = 0
    it = 0
    for it in range(1, max_iter + 1):
        a = (t_km1 - 1) / t_k
        if a != 0:
            torch.lerp(A, A_prev, -a, out=YA)               # A + a (A - A_prev)
            torch.lerp(E, E_prev, -a, out=YE)
            ya, ye = YA, YE
        else:
            ya, ye = A, E
        torch.add(ya, ye, out=S)
        torch.sub(S, D, out=R).div_(tau)
        torch.sub(ya, R, out=T1)                            # G_A
        torch.sub(ye, R, out=T2)                            # G_E
        thr = mu / tau
        X, rank = svt_top(T1, thr)
        if it == 1:
            # a tie in exact arithmetic: with A = E = 0, G_A = D / tau and the threshold is
            # mu / tau = s_2(D) / tau, so the second singular value sits on it. The authors'
            # SVD of D / 2 halves the bits of svd(D) exactly and counts it out (strict >); the
            # Gram route lands on either side by rounding. Its weight (s - thr) / s is ~1e-13,
            # but the count starts the stable-rank counter: counted in, the early stop comes
            # an iteration sooner (Misc_413 stopped at iteration 12 with an all-zero map
            # instead of 44). The count is taken from D's own singular values, ties out (for a
            # tau other than a power of two the authors' count is itself rounding's choice).
            rank = int((s > mu).sum())
        A_new.copy_(X)
        t_lam = lam * thr
        soft_threshold(T2, t_lam, out=E_new)                # of G_E
        card = int(torch.count_nonzero(E_new))
        t_kp1 = 0.5 * (1 + math.sqrt(1 + 4 * t_k * t_k))
        torch.add(A_new, E_new, out=T1).sub_(S)             # A_new + E_new - YA - YE
        torch.sub(ya, A_new, out=T2)
        torch.add(T1, T2, alpha=tau, out=T2)                # S_A
        sa = float(torch.dot(T2.view(-1), T2.view(-1)))
        torch.sub(ye, E_new, out=T2)
        torch.add(T1, T2, alpha=tau, out=T2)                # S_E
        se = float(torch.dot(T2.view(-1), T2.view(-1)))
        na = float(torch.dot(A_new.view(-1), A_new.view(-1)))
        ne = float(torch.dot(E_new.view(-1), E_new.view(-1)))
        done = math.sqrt(sa + se) / (tau * max(math.sqrt(na + ne), 1.0)) <= tol
        mu = max(0.9 * mu, mu_bar)
        t_km1, t_k = t_k, t_kp1
        A_prev, A, A_new = A, A_new, A_prev
        E_prev, E, E_new = E, E_new, E_prev
        # early stop on a stable rank (the authors' NOChange_counter)
        same = rank == pre_rank
        no_change = no_change + 1 if same else 0
        done = done or (same and no_change > 10 and abs(card - pre_card) < 20)
        # the authors' truncation: stop once rank(A) exceeds 0.3 min(m, n)
        done = done or rank > 0.3 * min(m, n)
        if not same:
            pre_card = card
        pre_rank = rank
        if done:
            break
    return A, E, it


def apg_rpca(D: torch.Tensor, lam: float, max_iter: int = 1000, tol: float = 1e-6,
             tau: float = 2.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """IPI's APG_IR on each matrix of D (B, m, n), m >= n: min mu ||A||_* + lam mu ||E||_1 +
    0.5 ||A + E - D||^2 with continuation. Returns (A, E, iterations per item). Each item
    runs its own loop (its own thresholds and stopping iteration; the SVT is per matrix
    anyway), so a batch gives exactly the per-image results."""
    with blas_threads_like_torch():
        outs = [_apg_one(D[b], lam, max_iter, tol, tau) for b in range(D.shape[0])]
    A = torch.stack([o[0] for o in outs]); E = torch.stack([o[1] for o in outs])
    return A, E, torch.tensor([o[2] for o in outs], dtype=torch.long, device=D.device)


@register_method
class Ipi(_IstdClassical):
    name = "ipi"
    display_name = "IPI"
    description = "infrared patch-image model: RPCA (APG) on 50x50 patches, step 10, median reassembly"
    parameters = {"patch": 50, "step": 10, "lambda_scale": 1.0, "max_iter": 1000, "tol": 1e-6,
                  "segmentation": "max_norm", "precision": "fp64"}
    parameter_specs = {**_RPCA_SPECS,
                       "precision": Param(str, choices=tuple(PRECISIONS),
                                          help="dtype of the iterates: fp64 (default; the authors' "
                                               "arithmetic) or fp32 (about twice as fast; maps differ "
                                               "from the authors' by more, see docs/suite_istd.md)")}
    # seconds per image: a warm-up pass over the set would double a cell's cost for nothing
    # (no lazy initialisation to amortise on the CPU; on a GPU the first image pays it)
    warmup = False
    # and one timed run: a SIRST cell is ~4 minutes of one core (86 images x 2.7 s), so its
    # time is already a mean over 86 images; three repeats tripled the default grid's cost
    # (issue 19: 20 of its ~57 minutes of IPI went to each repeat)
    max_repeat = 1

    def detect(self, images: torch.Tensor) -> torch.Tensor:
        B, H, W = images.shape
        p, st = int(self.params["patch"]), int(self.params["step"])
        p = min(p, H, W)
        rows, cols = sliding_positions(H, p, st), sliding_positions(W, p, st)
        patches = extract_patches(images, rows, cols, p)                 # (B, nR, nC, p, p)
        D = patches.reshape(B, len(rows) * len(cols), p * p).transpose(1, 2)  # columns = patches
        D = mat2gray(D)
        lam = float(self.params["lambda_scale"]) / math.sqrt(max(H, W))
        if D.shape[-2] >= D.shape[-1]:
            _, E, iters = apg_rpca(D, lam, int(self.params["max_iter"]), float(self.params["tol"]))
        else:  # fewer pixels per patch than patches: solve the transposed problem (same model)
            _, E, iters = apg_rpca(D.transpose(1, 2).contiguous(), lam, int(self.params["max_iter"]),
                                   float(self.params["tol"]))
            E = E.transpose(1, 2)
        self.last_iterations = iters.tolist()
        E = E.transpose(1, 2).reshape(B, len(rows), len(cols), p, p)
        return reassemble(E, H, W, rows, cols, "median")


# --------------------------------------------------------------------------- PSTNN
def _gauss3(sigma: float, dtype, device) -> torch.Tensor:
    x = torch.tensor([-1.0, 0.0, 1.0], dtype=dtype, device=device)
    k = torch.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma * sigma))
    return (k / k.sum()).view(1, 1, 3, 3)


def _filter_symmetric(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """imfilter(x, k, 'symmetric') for a 3x3 kernel (x: (B, H, W))."""
    xp = F.pad(x[:, None], (1, 1, 1, 1), mode="replicate")  # 1-pixel mirror = edge copy
    return F.conv2d(xp, kernel)[:, 0]


def structure_tensor_prior(images: torch.Tensor) -> torch.Tensor:
    """PSTNN's prior weight map (B, H, W) in [0, 1] with both guards (module docstring)."""
    u = _filter_symmetric(images, _gauss3(2.0, images.dtype, images.device))
    gy, gx = torch.gradient(u, dim=(1, 2))
    K = _gauss3(9.0, images.dtype, images.device)
    j11 = _filter_symmetric(gx * gx, K)
    j12 = _filter_symmetric(gx * gy, K)
    j22 = _filter_symmetric(gy * gy, K)
    delta = torch.sqrt((j11 - j22) ** 2 + 4 * j12 ** 2)
    l1 = 0.5 * (j11 + j22 + delta)
    l2 = 0.5 * (j11 + j22 - delta)
    total = l1 + l2
    # CORNER_STRENGTH_GUARD: 0/0 on flat regions -> 0
    corner = torch.where(total > CORNER_STRENGTH_EPS, l1 * l2 / torch.where(total > CORNER_STRENGTH_EPS,
                         total, torch.ones_like(total)), torch.zeros_like(total))
    return mat2gray(corner * torch.maximum(l1, l2))


def rank_n(X: torch.Tensor, ratio: float = 0.1) -> int:
    """N of PSTNN: how many singular values of the mode-1 unfolding (n1 x n2 n3) reach
    ratio * sigma_1 (at least 1). X: (n3, n1, n2)."""
    n3, n1, n2 = X.shape
    unfold = X.permute(1, 2, 0).reshape(n1, n2 * n3)
    s = singular_values(unfold[None])[0]
    below = (s / s[0] < ratio).nonzero()
    first = int(below[0]) if len(below) else len(s)
    return max(1, first)


def prox_pstnn(Y: torch.Tensor, N: int, mu: float) -> torch.Tensor:
    """Partial sum of the tensor nuclear norm prox: slices in the Fourier domain along n3,
    top N singular values kept, the others soft-thresholded by 1/mu. Y: (n3, n1, n2)."""
    n3 = Y.shape[0]
    Yf = torch.fft.rfft(Y, dim=0)
    U, S, Vh = torch.linalg.svd(Yf, full_matrices=False)
    S2 = S.clone()
    S2[:, N:] = (S[:, N:] - 1.0 / mu).clamp(min=0)
    Xf = (U * S2.unsqueeze(-2).to(U.dtype)) @ Vh
    return torch.fft.irfft(Xf, n=n3, dim=0)


def pstnn_admm(X: torch.Tensor, lam: float, W: torch.Tensor, max_iter: int = 500, tol: float = 1e-3,
               mu: float = 2e-3, rho: float = 1.05, max_mu: float = 1e10):
    """trpca_pstnn: X = L + S with L low PSTNN, S sparse (reweighted l1 / prior W)."""
    N = rank_n(X)
    L = torch.zeros_like(X); S = torch.zeros_like(X); Y = torch.zeros_like(X)
    weight = torch.ones_like(X)
    W = W.clamp(min=PRIOR_WEIGHT_FLOOR)  # PRIOR_WEIGHT_FLOOR guard
    normX = torch.linalg.vector_norm(X)
    it = 0
    for it in range(1, max_iter + 1):
        pre_t = int((S > 0).sum())
        L = prox_pstnn(-S + X - Y / mu, N, mu)
        T = -L + X - Y / mu
        S = (T - weight * lam / mu).clamp(min=0)  # the authors' prox_l1 keeps S >= 0
        weight = N / (S.abs() + 0.01) / W
        dY = L + S - X
        err = float(torch.linalg.vector_norm(dY) / normX)
        cur_t = int((S > 0).sum())
        if err < tol or (pre_t > 0 and cur_t > 0 and pre_t == cur_t):
            break
        Y = Y + mu * dY
        mu = min(rho * mu, max_mu)
    return L, S, it


@register_method
class Pstnn(_IstdClassical):
    name = "pstnn"
    display_name = "PSTNN"
    description = "partial sum of tensor nuclear norm with structure-tensor prior (ADMM), 40x40 patches"
    parameters = {"patch": 40, "step": 40, "lambda_scale": 0.7, "max_iter": 500, "tol": 1e-3,
                  "segmentation": "max_norm"}
    parameter_specs = _RPCA_SPECS

    def detect(self, images: torch.Tensor) -> torch.Tensor:
        B, H, W = images.shape
        p, st = int(self.params["patch"]), int(self.params["step"])
        p = min(p, H, W)
        rows, cols = covering_positions(H, p, st), covering_positions(W, p, st)
        prior = structure_tensor_prior(images)
        # slices in MATLAB's column-major order (row index fastest): the FFT along n3 sees it
        tenD = extract_patches(images, rows, cols, p).transpose(1, 2).reshape(B, -1, p, p)  # (B, n3, n1, n2)
        tenW = extract_patches(prior, rows, cols, p).transpose(1, 2).reshape(B, -1, p, p)
        n3 = tenD.shape[1]
        lam = float(self.params["lambda_scale"]) / math.sqrt(max(p, p) * n3)
        out, iters = [], []
        for b in range(B):  # the ADMM stops per image; slices are batched inside
            _, S, it = pstnn_admm(tenD[b], lam, tenW[b], int(self.params["max_iter"]), float(self.params["tol"]))
            out.append(S)
            iters.append(it)
        self.last_iterations = iters
        S = torch.stack(out).reshape(B, len(cols), len(rows), p, p).transpose(1, 2)
        return reassemble(S, H, W, rows, cols, "last")


# --------------------------------------------------------------------------- MPCM
@register_method
class Mpcm(_IstdClassical):
    name = "mpcm"
    display_name = "MPCM"
    description = "multiscale patch-based contrast measure (scales 3, 5, 7), bright targets"
    parameters = {"scales": (3, 5, 7), "polarity": "bright", "segmentation": "max_norm"}
    parameter_specs = {"scales": Param(tuple, min_length=1, items=Param(int, min=1, where=lambda v: v % 2 == 1,
                                                                       where_help="odd"),
                                       help="cell edges in pixels; odd, so that the map keeps the image size"),
                       "polarity": Param(str, choices=("bright", "any")),
                       "segmentation": _RPCA_SPECS["segmentation"]}
    dtype = torch.float32

    def detect(self, images: torch.Tensor) -> torch.Tensor:
        if self.params["polarity"] not in ("bright", "any"):
            raise ValueError(f"mpcm: polarity {self.params['polarity']!r}: use bright or any")
        x = images[:, None]
        out = None
        for l in self.params["scales"]:
            l = int(l)
            m = F.avg_pool2d(F.pad(x, (l // 2,) * 4, mode="replicate"), l, stride=1)
            mp = F.pad(m, (l,) * 4, mode="replicate")
            H, W = m.shape[-2:]
            shift = lambda dy, dx: mp[..., l + dy: l + dy + H, l + dx: l + dx + W]  # noqa: E731
            pcm = None
            for dy, dx in ((-l, -l), (-l, 0), (-l, l), (0, -l)):
                d1 = m - shift(dy, dx)
                d2 = m - shift(-dy, -dx)
                if self.params["polarity"] == "bright":
                    d1, d2 = d1.clamp(min=0), d2.clamp(min=0)
                prod = (d1 * d2).clamp(min=0)
                pcm = prod if pcm is None else torch.minimum(pcm, prod)
            out = pcm if out is None else torch.maximum(out, pcm)
        return out[:, 0]
