"""The pipeline around the unrolled network (:mod:`bench.methods.hsi.network`) of SMDS-Net,
STAR-Net and STAR-Net-S, per overlapping 56x56 spatial block of a cube (the authors' test
protocol): the spectral subspace of each block (NLM prefilter, HySime), the 9x9x9 cubes of
the projected block, and the blocks merged back (:func:`denoise_cube`, the whole of it). The
steps are described in :mod:`bench.methods.hsi.learned`. A process keeps the subspace bases
of the noisy cubes it has seen (:class:`SubspaceCache`): the learned rows of a cell share them.
"""
from __future__ import annotations

import hashlib
import time

import numpy as np
import torch
import torch.nn.functional as F

from bench.methods.hsi.network import ATOMS, CUBE, CubeNet

BLOCK = 56               # the authors' block edge (--patch_size 56)
BLOCK_STRIDE = 12        # the authors' block stride (--stride_test 12)


# =========================================================================== subspace (HySime)
def hysime(cubes: np.ndarray) -> list[np.ndarray]:
    """HySime (Bioucas-Dias and Nascimento 2008) as pysptools' ``HySime().count`` computes
    it, batched over blocks: ``cubes`` (n, H, W, B) -> per block E_k (B x k), the signal
    subspace's eigenvectors ordered by HySime's cost. Noise by regressing each band on the
    others (pinv of R + 1e-6 I), then the eigenvectors of the signal correlation kept where
    -P_y + 2 P_n < 0. Products of the data with itself in the data's dtype (float32 in the
    networks, as in pysptools), the rest in float64."""
    n, h, w, b = cubes.shape
    r = cubes.reshape(n, h * w, b).transpose(0, 2, 1)                 # (n, B, N) as pysptools' y.T
    npx = h * w
    rr = (r @ r.transpose(0, 2, 1)).astype(np.float64)                # R (n, B, B)
    rri = np.linalg.pinv(rr + 1e-6 * np.eye(b))
    z = rr.copy()
    z[:, np.arange(b), np.arange(b)] = 0.0                            # column i with its i-th entry zeroed
    g = rri @ z                                                       # column i: R^-1 z_i
    diag_g = g[:, np.arange(b), np.arange(b)]
    diag_i = rri[:, np.arange(b), np.arange(b)]
    beta = (g - rri * (diag_g / diag_i)[:, None, :]).transpose(0, 2, 1)  # row i: regression of band i
    beta[:, np.arange(b), np.arange(b)] = 0.0
    r64 = r.astype(np.float64)
    noise = r64 - beta @ r64                                          # (n, B, N)
    rn = np.einsum("nbp,nbp->nb", noise, noise) / npx                 # diag of the noise correlation
    x = r64 - noise
    ry = (r @ r.transpose(0, 2, 1)).astype(np.float64) / npx
    rx = x @ x.transpose(0, 2, 1) / npx
    e, _, _ = np.linalg.svd(rx)
    rn_mat = np.zeros_like(rx)
    rn_mat[:, np.arange(b), np.arange(b)] = rn
    rn_mat += (np.trace(rx, axis1=1, axis2=2) / b / 1e5)[:, None, None] * np.eye(b)
    py = np.einsum("nbi,nbc,nci->ni", e, ry, e)
    pn = np.einsum("nbi,nbc,nci->ni", e, rn_mat, e)
    cost = -py + 2 * pn
    out = []
    for j in range(n):
        kf = int((cost[j] < 0).sum())
        out.append(e[j][:, np.argsort(cost[j])[:kf]])
    return out


def nlm_prefilter(blocks: np.ndarray) -> np.ndarray:
    """The authors' NLM prefilter of each block (float32 in, float32 out): scikit-image
    ``denoise_nl_means`` (patch 7, distance 9, h 0.08, fast mode) with the block's own
    ``estimate_sigma`` (averaged over bands). scikit-image filters one image per call and
    releases the GIL while it does, so with more than one torch thread (the cell's thread
    budget) the blocks are filtered by that many Python threads (2.3x on 2 idle cores; the
    same output, a test checks)."""
    from skimage.restoration import denoise_nl_means, estimate_sigma

    def one(blk):
        s = estimate_sigma(blk, channel_axis=-1, average_sigmas=True)
        return denoise_nl_means(blk, patch_size=7, patch_distance=9, h=0.08, channel_axis=-1,
                                fast_mode=True, sigma=s)

    workers = min(torch.get_num_threads(), len(blocks))
    if workers <= 1:
        return np.stack([one(b) for b in blocks]).astype(blocks.dtype, copy=False)
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(workers) as pool:
        return np.stack(list(pool.map(one, blocks))).astype(blocks.dtype, copy=False)


def subspace_bases(blocks: torch.Tensor, max_rank: int = 0) -> list[torch.Tensor]:
    """Per block (n, H, W, B), its E_k (B x max(k, 9)): HySime on the NLM-prefiltered block,
    zero columns appended up to 9, float32 on the blocks' device. ``max_rank`` > 0 keeps at
    most that many columns (HySime's order: lowest cost first); 0, the authors' code, keeps
    all k, and every extra dimension beyond 9 adds a cube position per pixel."""
    arr = blocks.detach().cpu().numpy().astype(np.float32)
    bases = hysime(nlm_prefilter(arr))
    out = []
    for e in bases:
        if max_rank > 0:
            e = e[:, :max_rank]
        if e.shape[1] < CUBE:
            e = np.concatenate([e, np.zeros((e.shape[0], CUBE - e.shape[1]))], axis=1)
        out.append(torch.from_numpy(np.ascontiguousarray(e)).to(blocks.device, torch.float32))
    return out


# =========================================================================== blocks
def block_padding(size: int, block: int, stride: int) -> tuple[int, int]:
    """Padding before and after one axis: block - 1, and block - 1 plus the authors' "pad
    even" margin, stride - (padded - block) % stride (a full stride when it already fits)."""
    before = block - 1
    padded = size + 2 * before
    return before, before + stride - (padded - block) % stride


def make_blocks(cube: torch.Tensor, block: int, stride: int):
    """(H, W, B) -> blocks (n, block, block, B) of the reflect-padded cube, and what
    :func:`merge_blocks` needs. Reflection as numpy's ``reflect`` (torch's for pads smaller
    than the cube; defined for larger ones too)."""
    h, w, b = cube.shape
    ph, pw = block_padding(h, block, stride), block_padding(w, block, stride)
    padded = np.pad(cube.detach().cpu().numpy(), (ph, pw, (0, 0)), mode="reflect")
    padded = torch.from_numpy(padded).to(cube.device, cube.dtype)
    x = padded.permute(2, 0, 1).unsqueeze(0)                                  # (1, B, Hp, Wp)
    cols = F.unfold(x, block, stride=stride)                                  # (1, B*block*block, n)
    blocks = cols[0].T.reshape(-1, b, block, block).permute(0, 2, 3, 1)       # (n, block, block, B)
    return blocks.contiguous(), (tuple(padded.shape[:2]), ph, pw)


def block_weights(block: int, device, dtype) -> torch.Tensor:
    """The authors' weight of each pixel of a block: the number of 9x9 patches inside the
    block that cover it."""
    inner = torch.ones(1, 1, block - CUBE + 1, block - CUBE + 1, dtype=dtype, device=device)
    return F.conv_transpose2d(inner, torch.ones(1, 1, CUBE, CUBE, dtype=dtype, device=device))[0, 0]


def merge_blocks(blocks: torch.Tensor, geometry, stride: int) -> torch.Tensor:
    """Weighted average of overlapping blocks (n, block, block, B) back to the (H, W, B) cube."""
    (hp, wp), ph, pw = geometry
    n, block, _, b = blocks.shape
    wts = block_weights(block, blocks.device, blocks.dtype)
    cols = (blocks * wts[:, :, None]).permute(0, 3, 1, 2).reshape(n, -1).T.unsqueeze(0)
    total = F.fold(cols, (hp, wp), block, stride=stride)
    ones = wts.reshape(1, -1, 1).expand(1, block * block, n)
    count = F.fold(ones, (hp, wp), block, stride=stride)
    out = (total / count)[0].permute(1, 2, 0)
    return out[ph[0]:hp - ph[1], pw[0]:wp - pw[1]]


# =========================================================================== cubes of a block
def denoise_subspace(net: CubeNet, g: torch.Tensor) -> torch.Tensor:
    """Blocks in the subspace (n, C, H, W), C >= 9 the same for all: every 9x9x9 cube
    (stride 1 in space and channels), mean removed, through ``net``, back by averaging."""
    n, c, h, w = g.shape
    positions = c - CUBE + 1
    cols = torch.stack([F.unfold(g[:, p:p + CUBE], CUBE) for p in range(positions)], dim=1)  # (n, P, 729, L)
    npos = cols.shape[-1]
    rows = cols.transpose(-1, -2).reshape(-1, ATOMS)                 # (n*P*L, 729), ordered block, position, pixel
    mean = rows.mean(dim=1, keepdim=True)
    out = net(rows - mean, slab=npos) + mean
    out = out.reshape(n, positions, npos, ATOMS).transpose(-1, -2)   # (n, P, 729, L)
    total = torch.zeros_like(g)
    count = torch.zeros(1, c, h, w, dtype=g.dtype, device=g.device)
    ones = torch.ones(1, ATOMS, npos, dtype=g.dtype, device=g.device)
    for p in range(positions):   # the channel positions (1 unless k > 9), not the blocks
        total[:, p:p + CUBE] += F.fold(out[:, p], (h, w), CUBE)
        count[:, p:p + CUBE] += F.fold(ones, (h, w), CUBE)
    return total / count


def denoise_blocks(net: CubeNet, blocks: torch.Tensor, bases: list[torch.Tensor]) -> torch.Tensor:
    """Blocks (n, H, W, B) and their subspace bases -> denoised blocks; blocks of one
    subspace width are batched together."""
    out = torch.empty_like(blocks)
    widths = sorted({e.shape[1] for e in bases})
    for width in widths:
        idx = [i for i, e in enumerate(bases) if e.shape[1] == width]
        e = torch.stack([bases[i] for i in idx])                              # (m, B, C)
        g = torch.einsum("mhwb,mbc->mchw", blocks[idx], e)
        est = denoise_subspace(net, g)
        out[idx] = torch.einsum("mchw,mbc->mhwb", est, e)
    return out


class SubspaceCache:
    """The blocks' subspace bases of the noisy cubes seen last, shared by the learned rows of
    a cell: the NLM prefilter and HySime depend only on the noisy cube, the block geometry,
    ``chunk`` (HySime runs batched per chunk) and ``max_rank``, not on the network, so every
    row of a cell gets the same bases, bit for bit, whether computed or reused. A reuse
    records the seconds the computation took (``reused_s``): the method adds them to its
    timed run (:meth:`bench.methods.hsi.learned._HsiLearned.reused_seconds`), so that a row's time does not depend on
    which row of its cell ran first."""

    def __init__(self, size: int = 32):   # a grid's cell is 1-3 cubes; 4 noise levels x 3 cubes fit
        self.size = size
        self.entries: dict[tuple, tuple[list[torch.Tensor], float]] = {}
        self.reused_s = 0.0

    @staticmethod
    def key(cube: torch.Tensor, block: int, stride: int, chunk: int, max_rank: int) -> tuple:
        arr = cube.detach().cpu().contiguous().numpy()
        return (hashlib.sha256(arr.tobytes()).hexdigest(), arr.shape, str(arr.dtype), str(cube.device),
                block, stride, chunk, max_rank)

    def get(self, key):
        return self.entries.get(key)

    def put(self, key, bases: list[torch.Tensor], seconds: float) -> None:
        if len(self.entries) >= self.size:
            self.entries.pop(next(iter(self.entries)))
        self.entries[key] = (bases, seconds)


#: the cache of this process (a grid worker runs many cells of the same noisy cubes)
SUBSPACES = SubspaceCache()


def denoise_cube(net: CubeNet, cube: torch.Tensor, block: int = BLOCK, stride: int = BLOCK_STRIDE,
                 chunk: int = 2, max_rank: int = 0, cache: SubspaceCache | None = None) -> torch.Tensor:
    """The whole pipeline on one (H, W, B) cube: blocks, subspaces, cubes, stages, merge.
    ``chunk`` blocks go through the network at once (memory: about 7 MB per block and
    tensor held; 2 was the fastest of 1-16 measured on one core). With ``cache`` the blocks'
    subspace bases are reused where the same noisy cube was seen (:class:`SubspaceCache`)."""
    x = cube.to(torch.float32)
    blocks, geometry = make_blocks(x, block, stride)
    out = torch.empty_like(blocks)
    key = cache.key(x, block, stride, chunk, max_rank) if cache is not None else None
    hit = cache.get(key) if cache is not None else None
    computed: list[torch.Tensor] = []
    spent = 0.0
    with torch.no_grad():
        for start in range(0, blocks.shape[0], chunk):
            part = blocks[start:start + chunk]
            if hit is not None:
                bases = hit[0][start:start + chunk]
            else:
                t0 = time.perf_counter()
                bases = subspace_bases(part, max_rank)
                spent += time.perf_counter() - t0
                computed += bases
            out[start:start + chunk] = denoise_blocks(net, part, bases)
    if cache is not None:
        if hit is not None:
            cache.reused_s += hit[1]
        else:
            cache.put(key, computed, spent)
    return merge_blocks(out, geometry, stride).to(cube.dtype)

