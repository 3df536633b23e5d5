"""NGMeet (He, Yao, Yokoya, Zhang, Gong, Zhang: "Non-local meets global: an integrated
paradigm for hyperspectral denoising", CVPR 2019 / TPAMI 2022), written in torch from the
authors' MATLAB (quanmingyao/NGMeet @ b96626f, ``NGmeet/NGmeet_DeNoising.m`` and its
helpers; SPECS section 3). No Python port existed; this is this project's own code.

The algorithm, on a cube ``y`` (H, W, B) and a noise std ``sigma`` on the data's scale
(the method class feeds the [0, 1] cube times 255 and sigma on the [0, 255] scale, as the
authors' demo does; every step is homogeneous, so the scale only matters for the
parameter table):

for pass t = 1 .. n_iter (5):

1. rank k = k0 + 2 (t - 1) (capped at B); E = the top-k right singular vectors of the
   current estimate as a pixels x bands matrix (plain SVD, no mean removed, no noise
   whitening: the authors' HySime lines are commented out);
2. the estimate and the *noisy* cube are projected on E: k eigen-images each;
3. at passes 1, 3, 5 (t odd) patnum drops by 10 (150 -> 140 -> 130 -> 120 with the
   defaults) and block matching runs on the mean of the estimate's eigen-images: every
   ``patsize`` x ``patsize`` patch position is a candidate; key patches sit on a grid of
   step ``step`` along each axis plus the last ``step - 1`` positions (so that every pixel is
   covered); each key gets the ``patnum`` candidates of smallest squared distance within
   +-``search_win`` positions of it (the window clipped at the border). Passes 2 and 4 reuse
   the previous matches;
4. noise level per group: pass 1: sigma sqrt(k / B) for every group; later passes: the key
   patch's lambda sqrt|sigma^2 - mean((noisy - estimate)^2)|, the mean over the patch's
   k x patsize^2 eigen-image values;
5. each group (patnum patches of k x patsize^2 values) has its mean patch removed and its
   singular values shrunk by the closed-form weighted nuclear norm step (``ClosedWNNM``):
   with C = c1 sqrt(patnum) 2 sigma_g^2, s -> (s - eps + sqrt((s - eps)^2 - 4 (C - eps s))) / 2
   where the root is real, else 0 (eps = MATLAB's 2^-52); the mean is added back;
6. every estimated patch is added back at its place, each pixel divided by the number of
   estimates it got, and the k eigen-images are mapped back with E^T;
7. between passes: estimate = 0.1 noisy + 0.9 estimate (not after the last).

Defaults come from ``ParSetH.m`` (:func:`ngmeet_defaults`).

Choices and differences from the MATLAB, all of them outside the arithmetic of a step:

- Vectorised instead of the authors' per-key loops: block matching gathers every key's
  window of candidate patches (``F.unfold`` of the mean image, one index tensor, squared
  distances, ``topk``), in chunks of keys to bound memory; WNNM runs as one batched
  eigendecomposition per chunk of groups, of the smaller Gram matrix of each mean-removed
  group (patnum x patnum, or (k patsize^2) x (k patsize^2) when that is smaller); with
  G = X X^T = V diag(s^2) V^T, the shrunk group is V diag(s_hat / s) V^T X, equal to
  U diag(s_hat) V^T of the SVD (a test checks it against ``torch.linalg.svd``);
  ``wnnm="svd"`` uses the batched SVD itself.
- Ties in the block matching: the key patch is always its own first match (its distance is
  set below every other; MATLAB's stable sort gives the same unless an identical patch
  precedes it in column-major order); other ties follow ``topk``.
- The sign of each singular vector is fixed (its entries sum to >= 0): the block matching
  runs on the mean of the eigen-images, which depends on the signs, and LAPACK's sign is
  arbitrary (MATLAB's cannot be reproduced; this makes cpu and cuda agree).
- patnum is capped at the number of candidates in the smallest (border-clipped) window, so
  that cubes smaller than about 17x17 pixels run (the MATLAB fails on them).
- More than 250 bands: ParSetH defines nothing (the MATLAB fails); the 101-250 row is used.
- The per-patch noise level uses MATLAB's single-precision patches there; here the input's
  dtype (float32 in the suite).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from bench.methods.hsi.common import HsiMethod
from bench.params import Param, iterations
from bench.registry import register_method

MATLAB_EPS = 2.0 ** -52

#: ParSetH.m: (patnum, lambda, k0) per band range (upper bound) and sigma range (upper
#: bound on the [0, 255] scale; the MATLAB compares with 10.1, 30.1, 50.1)
_SIGMA_EDGES = (10.1, 30.1, 50.1)
_TABLE = {
    50: ((150, 0.54, 8), (150, 0.56, 6), (150, 0.56, 5), (200, 0.58, 4)),
    100: ((150, 0.54, 6), (150, 0.56, 6), (150, 0.58, 5), (200, 0.58, 4)),
    250: ((150, 0.54, 5), (150, 0.56, 6), (150, 0.58, 5), (200, 0.58, 4)),
}


def ngmeet_defaults(sigma255: float, bands: int) -> dict:
    """The parameters of ``ParSetH.m`` for a noise std ``sigma255`` ([0, 255] scale) and a
    number of bands: ``patnum`` (before the first decrement), ``lam``, ``k0``, ``c1``; the
    fixed ones (``n_iter`` 5, ``patsize`` 5, ``search_win`` 30, ``step`` 4) are the method's
    parameter defaults. More than 250 bands: the 101-250 row (the MATLAB has none)."""
    sigma255 = float(sigma255)
    if not math.isfinite(sigma255) or sigma255 < 0:
        raise ValueError(f"ngmeet: sigma must be a finite number >= 0 on the [0, 255] scale, got {sigma255!r}")
    if int(bands) != bands or bands < 1:
        raise ValueError(f"ngmeet: the cube must have at least one band, got {bands!r}")
    row = next((r for r in (50, 100, 250) if bands <= r), 250)
    col = next((i for i, e in enumerate(_SIGMA_EDGES) if sigma255 <= e), 3)
    patnum, lam, k0 = _TABLE[row][col]
    c1 = 8 * math.sqrt(2) if bands > 100 else 5 * math.sqrt(2)
    return {"patnum": patnum, "lam": lam, "k0": k0, "c1": c1}


# --------------------------------------------------------------------------- pieces
def key_positions(n: int, step: int) -> torch.Tensor:
    """0-based key-patch positions along an axis of ``n`` patch positions (NeighborIndex.m):
    0, step, 2 step, ... and then every position after the last of those."""
    grid = list(range(0, n, step))
    grid += list(range(grid[-1] + 1, n))
    return torch.tensor(grid, dtype=torch.long)


def block_matching(image: torch.Tensor, patsize: int, search_win: int, step: int, patnum: int,
                   max_elements: int = 1 << 24) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-local block matching on a 2-D ``image`` (H, W).

    Returns ``keys`` (K,) and ``matches`` (K, patnum): indices of patch positions in the
    row-major (H - patsize + 1) x (W - patsize + 1) grid; ``matches[:, 0] == keys`` and the
    rest by increasing squared distance within +-``search_win`` positions (clipped). patnum
    is capped at the smallest window's number of candidates."""
    h, w = image.shape
    tr, tc = h - patsize + 1, w - patsize + 1
    if tr < 1 or tc < 1:
        raise ValueError(f"ngmeet: a {h}x{w} image is smaller than one {patsize}x{patsize} patch")
    dev = image.device
    patches = F.unfold(image[None, None], patsize)[0].T.contiguous()          # (L, p^2)
    kr, kc = key_positions(tr, step).to(dev), key_positions(tc, step).to(dev)
    keys = (kr[:, None] * tc + kc[None, :]).reshape(-1)
    off = torch.arange(-search_win, search_win + 1, device=dev)
    # the smallest window: a key in a corner (the windows are clipped at the border)
    def _count(pos, n):
        return ((pos[:, None] + off[None, :] >= 0) & (pos[:, None] + off[None, :] < n)).sum(1)
    patnum = int(min(patnum, int(_count(kr, tr).min()) * int(_count(kc, tc).min())))
    rows = (kr[:, None] + off[None, :])                                      # (nR, 2S+1)
    cols = (kc[:, None] + off[None, :])                                      # (nC, 2S+1)
    rows = rows[:, None, :].expand(len(kr), len(kc), -1).reshape(-1, off.numel())
    cols = cols[None, :, :].expand(len(kr), len(kc), -1).reshape(-1, off.numel())
    n_off = off.numel()
    self_slot = search_win * n_off + search_win
    per_key = n_off * n_off * patches.shape[1]
    chunk = max(1, max_elements // per_key)
    out = []
    for s in range(0, len(keys), chunk):
        r, c = rows[s:s + chunk], cols[s:s + chunk]
        valid = ((r >= 0) & (r < tr))[:, :, None] & ((c >= 0) & (c < tc))[:, None, :]
        cand = (r.clamp(0, tr - 1)[:, :, None] * tc + c.clamp(0, tc - 1)[:, None, :]).reshape(len(r), -1)
        d = (patches[cand] - patches[keys[s:s + chunk]][:, None, :]).pow(2).sum(-1)
        d = d.masked_fill(~valid.reshape(len(r), -1), float("inf"))
        d[:, self_slot] = -1.0                      # the key patch itself first
        idx = torch.topk(d, patnum, dim=1, largest=False, sorted=True).indices
        out.append(torch.gather(cand, 1, idx))
    return keys, torch.cat(out)


def wnnm_shrink(s: torch.Tensor, c: torch.Tensor, eps: float = MATLAB_EPS) -> torch.Tensor:
    """ClosedWNNM: singular values ``s`` (..., r) shrunk with weights C / (s + eps),
    ``c`` broadcast against ``s``: (s - eps + sqrt((s - eps)^2 - 4 (C - eps s))) / 2 where
    the discriminant is > 0, else 0."""
    disc = (s - eps) ** 2 - 4 * (c - eps * s)
    return torch.where(disc > 0, ((s - eps + torch.sqrt(disc.clamp_min(0))) / 2).clamp_min(0),
                       torch.zeros_like(s))


def wnnm_groups(groups: torch.Tensor, c1: float, sigma: torch.Tensor, method: str = "gram") -> torch.Tensor:
    """WNNM of a batch of groups (G, n, d): n patches of d values each. Each group's mean
    patch is removed, the singular values shrunk by :func:`wnnm_shrink` with
    C = c1 sqrt(n) 2 sigma^2 (``sigma`` (G,)), and the mean added back."""
    n, d = groups.shape[-2:]
    mean = groups.mean(dim=-2, keepdim=True)
    x = groups - mean
    c = (c1 * math.sqrt(n) * 2 * sigma.to(x.dtype) ** 2)[:, None]
    if method == "svd":
        u, s, vh = torch.linalg.svd(x, full_matrices=False)
        return (u * wnnm_shrink(s, c)[:, None, :]) @ vh + mean
    if method != "gram":
        raise ValueError(f"ngmeet: wnnm must be 'gram' or 'svd', got {method!r}")
    left = n <= d
    gram = x @ x.transpose(-1, -2) if left else x.transpose(-1, -2) @ x
    lam, v = torch.linalg.eigh(gram)
    s = lam.clamp_min(0).sqrt()
    ratio = torch.where(s > 0, wnnm_shrink(s, c) / s.clamp_min(torch.finfo(s.dtype).tiny), torch.zeros_like(s))
    proj = (v * ratio[:, None, :]) @ v.transpose(-1, -2)
    return (proj @ x if left else x @ proj) + mean


def _accumulate(target: torch.Tensor, index: torch.Tensor, values: torch.Tensor) -> None:
    """target[index] += values, repeated indices summed, deterministically: CPU index_add_
    is sequential; on CUDA index_put_ with accumulate sorts (index_add_ there uses atomics)."""
    if target.device.type == "cuda":
        target.index_put_((index,), values, accumulate=True)
    else:
        target.index_add_(0, index, values)


def ngmeet(y: torch.Tensor, sigma: float, *, k0: int, patnum: int, lam: float, c1: float, n_iter: int = 5,
           patsize: int = 5, search_win: int = 30, step: int = 4, blend: float = 0.1, wnnm: str = "gram",
           max_elements: int = 1 << 24) -> torch.Tensor:
    """NGMeet on a cube ``y`` (H, W, B) with noise std ``sigma`` on the cube's scale (see the
    module docstring for the steps). ``patnum`` is ParSetH's value: the passes use
    patnum - 10, - 20, ... (decremented before each block matching). ``max_elements`` bounds
    the size of the chunks (block matching and groups), not the result."""
    if y.dim() != 3:
        raise ValueError(f"ngmeet: expected a cube (H, W, B), got shape {tuple(y.shape)}")
    h, w, b = y.shape
    sigma = float(sigma)
    n_match = (n_iter + 1) // 2
    if patnum - 10 * n_match < 1:
        raise ValueError(f"ngmeet: patnum={patnum} drops by 10 before each of the {n_match} block matchings "
                         f"of {n_iter} passes; it must be > {10 * n_match}")
    if min(h, w) < patsize:
        raise ValueError(f"ngmeet: a {h}x{w} cube is smaller than one {patsize}x{patsize} patch")
    noisy = y.reshape(h * w, b)
    est = noisy
    tr, tc = h - patsize + 1, w - patsize + 1
    keys = matches = None
    for it in range(1, n_iter + 1):
        k = min(k0 + 2 * (it - 1), b)
        # 1. spectral subspace: top-k right singular vectors of the (pixels x bands) estimate
        _, _, vh = torch.linalg.svd(est, full_matrices=False)
        e = vh[:k].T                                                    # (B, k)
        e = e * torch.where(e.sum(0) < 0, -1.0, 1.0).to(e.dtype)
        # 2. eigen-images of the estimate and of the noisy cube
        coef = (est @ e).T.reshape(k, h, w)
        ncoef = (noisy @ e).T.reshape(k, h, w)
        # 3. block matching at passes 1, 3, 5, ... on the mean eigen-image
        if (it - 1) % 2 == 0:
            patnum -= 10
            keys, matches = block_matching(coef.mean(0), patsize, search_win, step, patnum, max_elements)
        # 4. noise level per group (the key patch's)
        if it == 1:
            sig = torch.full((len(keys),), sigma * math.sqrt(k / b), dtype=y.dtype, device=y.device)
        else:
            res = F.avg_pool2d(((ncoef - coef) ** 2).mean(0)[None, None], patsize, stride=1)[0, 0].reshape(-1)
            sig = lam * torch.sqrt((sigma ** 2 - res).abs())[keys]
        # 5-6. WNNM of every group, patches averaged back
        pat = F.unfold(coef[None], patsize)[0].T.contiguous()           # (L, k p^2)
        acc = torch.zeros_like(pat)
        cnt = torch.zeros(pat.shape[0], dtype=y.dtype, device=y.device)
        n = matches.shape[1]
        chunk = max(1, max_elements // (n * pat.shape[1]))
        for s in range(0, len(keys), chunk):
            idx = matches[s:s + chunk]
            out = wnnm_groups(pat[idx], c1, sig[s:s + chunk], wnnm)
            _accumulate(acc, idx.reshape(-1), out.reshape(-1, pat.shape[1]))
            _accumulate(cnt, idx.reshape(-1), torch.ones(idx.numel(), dtype=y.dtype, device=y.device))
        num = F.fold(acc.T[None], (h, w), patsize)[0]                   # (k, H, W)
        den = F.fold(cnt.expand(patsize * patsize, tr * tc)[None], (h, w), patsize)[0]
        coef = num / den
        est = coef.reshape(k, h * w).T @ e.T                            # (HW, B)
        # 7. back towards the noisy cube between passes
        if it < n_iter:
            est = blend * noisy + (1 - blend) * est
    return est.reshape(h, w, b)


# --------------------------------------------------------------------------- the method
_AUTO = "auto"


@register_method
class NGMeet(HsiMethod):
    name = "ngmeet"
    display_name = "NGMeet"
    description = ("NGMeet (He et al. 2019): SVD spectral subspace, non-local WNNM of the eigen-images "
                   "(block matching, closed-form weighted nuclear norm), 5 passes; parameters 'auto' from ParSetH.m")
    parameters = {"n_iter": 5, "k0": _AUTO, "patnum": _AUTO, "lam": _AUTO, "c1": _AUTO,
                  "patsize": 5, "search_win": 30, "step": 4}
    parameter_specs = {
        "n_iter": iterations(help="passes (the MATLAB's Iter)"),
        "k0": Param(int, min=1, allow=(_AUTO,), help="initial subspace rank; pass t uses k0 + 2 (t - 1)"),
        "patnum": Param(int, min=2, allow=(_AUTO,),
                        help="ParSetH's patnum: each block matching first lowers it by 10"),
        "lam": Param(float, min=0, allow=(_AUTO,), help="lambda of the per-patch noise level"),
        "c1": Param(float, min=0, allow=(_AUTO,), help="WNNM constant (weight c1 sqrt(patnum) 2 sigma^2)"),
        "patsize": Param(int, min=1),
        "search_win": Param(int, min=1, help="half width of the search window, in patch positions"),
        "step": Param(int, min=1, help="key-patch step"),
    }
    warmup = False   # seconds to minutes per cube; the first run is not slower (no compilation)
    max_repeat = 1

    def denoise(self, noisy, sigma, sigma_bands):
        p = self.params
        sigma255 = 255.0 * float(sigma)
        chosen = ngmeet_defaults(sigma255, noisy.shape[-1])
        chosen.update({k: p[k] for k in ("k0", "patnum", "lam", "c1") if p[k] != _AUTO})
        n_iter = int(p["n_iter"])
        if int(chosen["patnum"]) - 10 * ((n_iter + 1) // 2) < 1:
            from bench.errors import BadParameterError
            raise BadParameterError(self.name, "patnum", chosen["patnum"],
                                    f"> {10 * ((n_iter + 1) // 2)} (it drops by 10 before each block matching "
                                    f"of {n_iter} passes)")
        out = ngmeet(noisy * 255.0, sigma255, k0=int(chosen["k0"]), patnum=int(chosen["patnum"]),
                     lam=float(chosen["lam"]), c1=float(chosen["c1"]), n_iter=n_iter, patsize=int(p["patsize"]),
                     search_win=int(p["search_win"]), step=int(p["step"]))
        return out / 255.0
