"""Classical hyperspectral denoisers (SPECS section 3) and the ``noisy`` reference.

- ``noisy``: returns the noisy input (family ``reference``): the "Noisy" column of the
  tables and the noisy panel of the false-colour figure.
- ``bm4d``: in :mod:`bench.methods.hsi.bm4d` (its own module, so that editing these
  methods does not invalidate its minutes-long cached cells).
- ``lrtdtv``: Wang et al. 2017, Tucker low rank + spatial-spectral TV + l1 sparse noise,
  ADMM, 50 iterations (details in :func:`lrtdtv`).
- ``subspace_tv``: a fast spectral-subspace baseline: noise-whitened SVD of the band
  matrix, rank from the noise singular-value edge, TV denoising of the eigen-images
  (FastHyDe's structure with TV in place of BM3D), back-projection.
"""
from __future__ import annotations

import math

import torch

from bench.methods.hsi.common import HsiMethod
from bench.methods.prox import soft_threshold
from bench.operators import FiniteDifference
from bench.params import Param, iterations
from bench.registry import register_method


@register_method
class Noisy(HsiMethod):
    name = "noisy"
    display_name = "Noisy"
    family = "reference"
    description = "the noisy input itself (the tables' 'Noisy' column; not a method)"
    parameters = {}

    def denoise(self, noisy, sigma, sigma_bands):
        return noisy.clone()


# --------------------------------------------------------------------------- LRTDTV
def hosvd_project(x: torch.Tensor, rank) -> torch.Tensor:
    """Tucker approximation of rank ``rank`` by truncated HOSVD (tensorly unfoldings and
    mode products; each factor from the eigenvectors of the mode-n Gram matrix)."""
    import tensorly as tl

    with tl.backend_context("pytorch"):
        factors = []
        for mode, r in enumerate(rank):
            u = tl.unfold(x, mode)
            _, vecs = torch.linalg.eigh(u @ u.T)
            factors.append(vecs[:, -int(r):])
        core = tl.tenalg.multi_mode_dot(x, factors, transpose=True)
        return tl.tucker_to_tensor((core, factors))


def lrtdtv_rank(shape, rule: str = "auto") -> tuple[int, int, int]:
    """Tucker rank of LRTDTV.

    ``specs``: the paper's settings as SPECS gives them: [ceil(0.1 H), ceil(0.1 W), 3]
    (ICVL, 512x512 crops), more than 100 bands [0.8 H, 0.8 W, 10].
    ``auto`` (default): spatial ranks ceil(0.8 H), ceil(0.8 W) for every cube, spectral
    rank 3 (<= 100 bands) or 10. On the suite's small crops the ICVL spatial rank 0.1 H
    (7 for a 64-pixel crop) blurs the cube away: CAVE 64x64x31 at sigma 30 gives 25.7 dB
    with it against 32.2 dB with 0.8 H (measured; the ICVL rank 52 of a 512 crop is
    itself 0.8 x 64)."""
    h, w, b = shape
    spectral = 10 if b > 100 else 3
    if rule == "specs" and b <= 100:
        return (math.ceil(0.1 * h), math.ceil(0.1 * w), spectral)
    return (math.ceil(0.8 * h), math.ceil(0.8 * w), spectral)


def lrtdtv(y: torch.Tensor, sigma: float, rank, n_iter: int = 50, tv_weight: float = 0.15,
           sparse_weight: float = 2.0, mu: float = 0.05, rho: float = 1.2, mu_max: float = 1e6,
           tv_band_weights=(1.0, 1.0, 0.5)) -> torch.Tensor:
    """LRTDTV (Wang, Peng, Zhao, Leung, Zhao, Meng, IEEE JSTARS 2017):

        min  tau ||D_w X||_1 + lambda ||S||_1 + 1/2 ||Y - X - S||_F^2
        s.t. X = C x1 U1 x2 U2 x3 U3 (Tucker rank r),

    D_w the spatial-spectral differences weighted (1, 1, 0.5) (SSTV). ADMM with the
    splittings Z = X (Tucker part, updated by truncated HOSVD) and F = D_w X (soft
    thresholding); D_w is :class:`bench.operators.FiniteDifference` with periodic boundaries
    along H, W and B, so the X step is solved exactly by FFT; S by soft
    thresholding; mu grows by ``rho`` per iteration. The weights scale with the noise
    level: tau = tv_weight * sigma and lambda = sparse_weight * sigma (the paper tunes
    them per case; tying them to sigma keeps one setting across sigma 10-70; 0.15 and 2
    were chosen on CAVE and Samson 64x64 crops at sigma 10/30/70 and the mixed case)."""
    h, w, b = y.shape
    tau, lam = tv_weight * sigma, sparse_weight * sigma
    D = FiniteDifference((h, w, b), weights=tv_band_weights, boundary="periodic", dtype=y.dtype, device=y.device)
    # eigenvalues of D_w^T D_w (periodic): sum_d w_d^2 (2 - 2 cos(2 pi k / n_d))
    eig = D.gram_eigenvalues()
    x = y.clone()
    s = torch.zeros_like(y)
    z = x.clone()
    f = D.differences(x)
    m1 = torch.zeros_like(y)
    m2 = [torch.zeros_like(y) for _ in range(3)]
    for _ in range(n_iter):
        # X: (1 + mu + mu D^T D) X = (Y - S) + mu Z - M1 + D^T(mu F - M2)
        rhs = (y - s) + mu * z - m1 + D.differences_adjoint([mu * fi - mi for fi, mi in zip(f, m2)])
        x = torch.fft.ifftn(torch.fft.fftn(rhs) / (1 + mu + mu * eig)).real
        # Z: Tucker projection of X + M1/mu
        z = hosvd_project(x + m1 / mu, rank)
        # F: soft thresholding of D X + M2/mu
        dx = D.differences(x)
        f = [soft_threshold(g + mi / mu, tau / mu) for g, mi in zip(dx, m2)]
        # S: soft thresholding of the residual
        s = soft_threshold(y - x, lam)
        m1 = m1 + mu * (x - z)
        m2 = [mi + mu * (g - fi) for mi, g, fi in zip(m2, dx, f)]
        mu = min(mu * rho, mu_max)
    return z


@register_method
class Lrtdtv(HsiMethod):
    name = "lrtdtv"
    display_name = "LRTDTV"
    description = ("LRTDTV: Tucker low rank (tensorly, HOSVD) + SSTV (FFT) + l1 sparse term, ADMM, 50 iterations; "
                   "rank 'auto' (0.8 H, 0.8 W, 3 or 10) or 'specs' (ICVL rule) or a tuple")
    parameters = {"n_iter": 50, "rank": "auto", "tv_weight": 0.15, "sparse_weight": 2.0}
    parameter_specs = {"n_iter": iterations(),
                       "rank": Param(tuple, allow=("auto", "specs"), length=3, items=Param(int, min=1),
                                     help="Tucker rank (H, W, bands), capped at the cube's shape"),
                       "tv_weight": Param(float, min=0, help="times sigma"),
                       "sparse_weight": Param(float, min=0, help="times sigma")}
    warmup = False   # seconds per cube; the first run is not slower (no compilation)
    max_repeat = 1
    source_dependencies = ("bench.operators",)   # its difference operator D_w

    def denoise(self, noisy, sigma, sigma_bands):
        p = self.params
        rank = (lrtdtv_rank(noisy.shape, p["rank"]) if p["rank"] in ("auto", "specs")
                else tuple(int(r) for r in p["rank"]))
        rank = tuple(min(int(r), n) for r, n in zip(rank, noisy.shape))
        return lrtdtv(noisy, float(sigma), rank, n_iter=int(p["n_iter"]), tv_weight=float(p["tv_weight"]),
                      sparse_weight=float(p["sparse_weight"]))


# --------------------------------------------------------------------------- subspace + TV
def tv_chambolle(f: torch.Tensor, weight: torch.Tensor, n_iter: int = 40) -> torch.Tensor:
    """Isotropic TV denoising (Chambolle 2004) of a batch of images f (K, H, W), one
    weight per image (K,): argmin_u 1/2 ||u - f||^2 + weight TV(u). The gradient is
    :class:`bench.operators.FiniteDifference` along W then H with Neumann boundaries (the last
    difference 0), the divergence its negative adjoint."""
    wgt = weight.reshape(-1, 1, 1).clamp_min(1e-12)
    D = FiniteDifference(f.shape[-2:], dims=(-1, -2), boundary="neumann", dtype=f.dtype, device=f.device)
    px = torch.zeros_like(f)
    py = torch.zeros_like(f)
    step = 0.125
    for _ in range(n_iter):
        v = D.divergence([px, py]) - f / wgt
        gx, gy = D.differences(v)
        norm = torch.sqrt(gx * gx + gy * gy)
        px = (px + step * gx) / (1 + step * norm)
        py = (py + step * gy) / (1 + step * norm)
    return f - wgt * D.divergence([px, py])


def subspace_tv(y: torch.Tensor, sigma_bands: torch.Tensor, tv_weight: float = 1.0, max_rank: int = 16,
                edge_margin: float = 1.05, n_iter_tv: int = 40) -> torch.Tensor:
    h, w, b = y.shape
    sb = sigma_bands.to(y.device, y.dtype).clamp_min(1e-6)
    yw = (y / sb).reshape(h * w, b)
    mean = yw.mean(dim=0, keepdim=True)
    u, s, vt = torch.linalg.svd(yw - mean, full_matrices=False)
    # unit-variance white noise: singular values up to ~ sqrt(HW) + sqrt(B) (Marchenko-Pastur edge)
    edge = edge_margin * (math.sqrt(h * w) + math.sqrt(b))
    k = int((s > edge).sum().clamp(1, max_rank))
    eig = (u[:, :k] * s[:k]).T.reshape(k, h, w)  # eigen-images, noise std 1 each
    if tv_weight > 0:
        eig = tv_chambolle(eig, torch.full((k,), float(tv_weight), device=y.device, dtype=y.dtype), n_iter_tv)
    xw = eig.reshape(k, h * w).T @ vt[:k] + mean
    return xw.reshape(h, w, b) * sb


@register_method
class SubspaceTv(HsiMethod):
    name = "subspace_tv"
    display_name = "Subspace-TV"
    description = ("fast low-rank baseline: noise-whitened SVD spectral subspace (rank from the noise "
                   "singular-value edge, at most max_rank), TV-denoised eigen-images")
    parameters = {"tv_weight": 1.0, "max_rank": 16}
    parameter_specs = {"tv_weight": Param(float, min=0, help="0: no TV step"), "max_rank": Param(int, min=1)}
    source_dependencies = ("bench.operators",)   # the gradient of its TV step

    def denoise(self, noisy, sigma, sigma_bands):
        return subspace_tv(noisy, sigma_bands, float(self.params["tv_weight"]), int(self.params["max_rank"]))
