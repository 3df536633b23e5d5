"""Linear forward operators: ``forward`` (A x), ``adjoint`` (A^T y) and a norm.

An operator maps tensors whose trailing dimensions are ``in_shape`` to tensors whose trailing
dimensions are ``out_shape``; any leading dimensions are a batch and pass through (one sample
per leading index, as the suites store their samples). ``norm_estimate()`` is the spectral
norm ||A||_2, the largest singular value, *not squared* (the Lipschitz constant of the
gradient of 0.5 ||A x - y||^2 is its square): power iteration on A^T A from a fixed seed,
overridden by an exact value where one is known.

Operators here:

- :class:`MatrixOperator` -- a dense matrix acting on the last dimension (the LASSO matrix
  of the sparse suite).
- :class:`FiniteDifference` -- weighted forward differences along chosen dimensions, with
  periodic or Neumann boundaries (the two conventions of the TV code in
  ``methods/hsi/classical.py``).
- :class:`BlockCSOperator` -- block compressive sensing as ISTA-Net measures an image: zero
  padding to a multiple of the block, non-overlapping blocks, each block flattened and
  multiplied by Phi.

:data:`OPERATORS` names a small example of each; ``tests/bench/test_operators.py`` runs the
adjointness check :func:`assert_adjoint` and the norm checks on every entry, so an operator
added there is tested for free.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

Shape = tuple[int, ...]


class LinearOperator:
    """A linear map from tensors ``(..., *in_shape)`` to tensors ``(..., *out_shape)``.

    Subclasses implement :meth:`forward` and :meth:`adjoint`, and set ``in_shape``,
    ``out_shape``, ``dtype`` and ``device``; they may override :meth:`norm_estimate` with an
    exact value and :meth:`gradient_step` with a fused implementation.
    """

    in_shape: Shape = ()
    out_shape: Shape = ()
    dtype: torch.dtype = torch.float64
    device: torch.device = torch.device("cpu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A x."""
        raise NotImplementedError

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A^T y."""
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    def gradient_step(self, x: torch.Tensor, y: torch.Tensor, step: float) -> torch.Tensor:
        """x - step A^T (A x - y): one gradient step on 0.5 ||A x - y||^2."""
        return x - step * self.adjoint(self.forward(x) - y)

    def norm_estimate(self, n_iter: int = 200, seed: int = 0, rtol: float = 1e-10) -> torch.Tensor:
        """||A||_2, the largest singular value (not squared), as a 0-dim tensor.

        Power iteration on A^T A from a normal vector drawn with ``seed`` (so the estimate is
        reproducible), stopped when the estimate of ||A||_2^2 moves by less than ``rtol``
        relatively, or after ``n_iter`` steps. It approaches the true value from below.
        """
        g = torch.Generator().manual_seed(int(seed))
        v = torch.randn(self.in_shape, generator=g, dtype=torch.float64).to(self.device, self.dtype)
        v = v / torch.linalg.vector_norm(v)
        est = torch.zeros((), dtype=self.dtype, device=self.device)
        for _ in range(int(n_iter)):
            w = self.adjoint(self.forward(v))
            new = torch.linalg.vector_norm(w)  # ||A^T A v|| with ||v|| = 1
            if new == 0:
                return new
            v = w / new
            done = abs(float(new) - float(est)) <= rtol * float(new)
            est = new
            if done:
                break
        return est.sqrt()

    def to_dense(self) -> torch.Tensor:
        """The matrix of the operator, (prod(out_shape), prod(in_shape)), row-major
        flattening of both sides: for tests on small operators."""
        n = math.prod(self.in_shape)
        eye = torch.eye(n, dtype=self.dtype, device=self.device).reshape((n, *self.in_shape))
        return self.forward(eye).reshape(n, -1).T


# --------------------------------------------------------------------------- dense matrix
class MatrixOperator(LinearOperator):
    """x -> A x for a dense (m, n) matrix, acting on the last dimension: samples are rows,
    ``forward(x) = x @ A.T`` for x (..., n), ``adjoint(y) = y @ A`` for y (..., m).
    ``norm_estimate`` is exact: ``torch.linalg.matrix_norm(A, ord=2)``."""

    def __init__(self, A: torch.Tensor):
        if A.dim() != 2:
            raise ValueError(f"MatrixOperator needs a 2-D matrix, got shape {tuple(A.shape)}")
        self.A = A
        m, n = A.shape
        self.in_shape, self.out_shape = (int(n),), (int(m),)
        self.dtype, self.device = A.dtype, A.device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.A.T

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y @ self.A

    def gradient_step(self, x: torch.Tensor, y: torch.Tensor, step: float) -> torch.Tensor:
        """x - step A^T (A x - y) as two fused matrix products when x and y are matrices
        (one sample per row): the sparse solvers' inner loop, at matmul speed."""
        if x.dim() != 2 or y.dim() != 2:
            return super().gradient_step(x, y, step)
        r = torch.addmm(y, x, self.A.T, alpha=1, beta=-1)  # A x - y
        return torch.addmm(x, r, self.A, alpha=-step)

    def norm_estimate(self, n_iter: int = 200, seed: int = 0, rtol: float = 1e-10) -> torch.Tensor:
        return torch.linalg.matrix_norm(self.A, ord=2)

    def to_dense(self) -> torch.Tensor:
        return self.A


def as_operator(A) -> LinearOperator:
    """An operator as it is, a dense matrix as a :class:`MatrixOperator`."""
    if isinstance(A, LinearOperator):
        return A
    if isinstance(A, torch.Tensor):
        return MatrixOperator(A)
    raise TypeError(f"expected a LinearOperator or a 2-D tensor, got {type(A).__name__}")


# --------------------------------------------------------------------------- differences
class FiniteDifference(LinearOperator):
    """Weighted forward differences of tensors ``(..., *in_shape)`` along ``dims``.

    ``forward(x)`` stacks one difference per entry of ``dims``, in that order, in a new
    dimension just before the image dimensions: the output is ``(..., len(dims), *in_shape)``.
    ``dims`` index ``in_shape`` (negative from its end); ``weights`` multiply each difference
    (none: all 1, no multiplication). Boundaries, the two conventions of the TV code in
    ``methods/hsi/classical.py``:

    - ``periodic`` (LRTDTV's SSTV): (D_d x)_i = w_d (x_{i+1} - x_i), indices mod n_d, i.e.
      ``w * (torch.roll(x, -1, d) - x)``; D^T D is diagonalised by the FFT, with eigenvalues
      sum_d w_d^2 (2 - 2 cos(2 pi k_d / n_d)) (:meth:`gram_eigenvalues`).
    - ``neumann`` (Chambolle's TV): (D_d x)_i = w_d (x_{i+1} - x_i) for i < n_d - 1 and 0 at
      the last index. :meth:`divergence` is -D^T in Chambolle's own form,
      p_i - p_{i-1} with p_{-1} = 0 (the last entry of p read as 0).
    """

    BOUNDARIES = ("periodic", "neumann")

    def __init__(self, in_shape: Sequence[int], dims: Sequence[int] | None = None,
                 weights: Sequence[float] | None = None, boundary: str = "periodic",
                 dtype: torch.dtype = torch.float64, device="cpu"):
        if boundary not in self.BOUNDARIES:
            raise ValueError(f"FiniteDifference: boundary {boundary!r}, not one of {', '.join(self.BOUNDARIES)}")
        self.in_shape = tuple(int(n) for n in in_shape)
        nd = len(self.in_shape)
        dims = tuple(range(nd)) if dims is None else tuple(int(d) for d in dims)
        for d in dims:
            if not -nd <= d < nd:
                raise ValueError(f"FiniteDifference: dimension {d} outside in_shape {self.in_shape}")
        if weights is not None and len(weights) != len(dims):
            raise ValueError(f"FiniteDifference: {len(weights)} weights for {len(dims)} dimensions")
        #: the dims as negative indices, so that leading batch dimensions do not shift them
        self.dims = tuple(d - nd if d >= 0 else d for d in dims)
        self.weights = None if weights is None else tuple(weights)
        self.boundary = boundary
        self.out_shape = (len(dims), *self.in_shape)
        self.dtype, self.device = dtype, torch.device(device)

    def _weight(self, k: int):
        return 1.0 if self.weights is None else self.weights[k]

    def differences(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The differences along each of ``dims``, as a list (the stacked ``forward``
        without the copy into one tensor)."""
        out = []
        for k, d in enumerate(self.dims):
            if self.boundary == "periodic":
                g = torch.roll(x, -1, dims=d) - x
            else:
                g = _pad_last(x.narrow(d, 1, x.shape[d] - 1) - x.narrow(d, 0, x.shape[d] - 1), d, end=True)
            out.append(g if self.weights is None else self.weights[k] * g)
        return out

    def differences_adjoint(self, f: Sequence[torch.Tensor]) -> torch.Tensor:
        """D^T applied to a list of differences, one per entry of ``dims``."""
        if self.boundary == "periodic":
            # summed left to right from 0, as LRTDTV's sum(...) did
            return sum(self._weight(k) * (torch.roll(g, 1, dims=d) - g) for k, (d, g) in enumerate(zip(self.dims, f)))
        return -self.divergence(f)

    def divergence(self, f: Sequence[torch.Tensor]) -> torch.Tensor:
        """-D^T f. Neumann: sum_d w_d (p_i - p_{i-1}) with p_{-1} = 0 and the last entry
        of p read as 0, accumulated left to right as Chambolle's update writes it."""
        if self.boundary == "periodic":
            return -self.differences_adjoint(f)
        acc = None
        for k, (d, g) in enumerate(zip(self.dims, f)):
            n = g.shape[d]
            p = _pad_last(g.narrow(d, 0, n - 1), d, end=True)   # the last entry of p read as 0
            p = p if self.weights is None else self.weights[k] * p
            shifted = _pad_last(p.narrow(d, 0, n - 1), d, end=False)  # p_{i-1}, p_{-1} = 0
            acc = (p - shifted) if acc is None else acc + p - shifted
        return acc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.differences(x), dim=-len(self.in_shape) - 1)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.differences_adjoint(y.unbind(dim=-len(self.in_shape) - 1))

    def gram_eigenvalues(self) -> torch.Tensor:
        """Periodic only: the eigenvalues of D^T D on the FFT grid of ``in_shape``,
        sum_d w_d^2 (2 - 2 cos(2 pi k / n_d)), broadcast to ``in_shape`` (the same sum,
        term by term, as LRTDTV's X step divides by)."""
        if self.boundary != "periodic":
            raise ValueError("gram_eigenvalues: only periodic differences are diagonalised by the FFT")
        nd = len(self.in_shape)
        eig = 0
        for k, d in enumerate(self.dims):
            n = self.in_shape[d]
            j = torch.arange(n, device=self.device, dtype=self.dtype)
            e = (2 - 2 * torch.cos(2 * math.pi * j / n)) * self._weight(k) ** 2
            shape = [1] * nd
            shape[d] = n
            eig = eig + e.reshape(shape)
        return eig

    def norm_estimate(self, n_iter: int = 200, seed: int = 0, rtol: float = 1e-10) -> torch.Tensor:
        """Exact: D^T D is a Kronecker sum of one-dimensional Laplacians (a dimension
        listed twice adds its weights squared), whose largest eigenvalues are
        2 - 2 cos(2 pi floor(n/2) / n) (periodic) and 2 - 2 cos(pi (n - 1) / n) (Neumann)."""
        per_dim: dict[int, float] = {}
        for k, d in enumerate(self.dims):
            per_dim[d] = per_dim.get(d, 0.0) + float(self._weight(k)) ** 2
        total = 0.0
        for d, w2 in per_dim.items():
            n = self.in_shape[d]
            top = (2 - 2 * math.cos(2 * math.pi * (n // 2) / n)) if self.boundary == "periodic" \
                else (2 - 2 * math.cos(math.pi * (n - 1) / n))
            total += w2 * top
        return torch.tensor(math.sqrt(total), dtype=self.dtype, device=self.device)


def _pad_last(x: torch.Tensor, dim: int, end: bool) -> torch.Tensor:
    """x with one zero slice appended (``end``) or prepended along the negative ``dim``."""
    spec = [0] * (2 * (-dim))  # torch's pad lists the last dimension first, (before, after) each
    spec[2 * (-dim - 1) + (1 if end else 0)] = 1
    return torch.nn.functional.pad(x, tuple(spec))


# --------------------------------------------------------------------------- block CS
def padded_size(n: int, block: int) -> int:
    """The smallest multiple of ``block`` that is >= n (ISTA-Net's test script pads a side
    that is already a multiple by one more, all-zero, block: its blocks are reconstructed
    independently, so the cropped image is the same)."""
    return -(-int(n) // int(block)) * int(block)


def pad_to_blocks(image: torch.Tensor, block: int = 33) -> torch.Tensor:
    """Zero-pad the last two dimensions (H, W) at the bottom and right to multiples of ``block``."""
    h, w = image.shape[-2:]
    return torch.nn.functional.pad(image, (0, padded_size(w, block) - w, 0, padded_size(h, block) - h))


def crop(image: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """The top-left ``shape`` = (H, W) of the last two dimensions: the adjoint of
    :func:`pad_to_blocks` and its inverse on unpadded images."""
    h, w = (int(s) for s in shape)
    return image[..., :h, :w]


def image_to_blocks(image: torch.Tensor, block: int = 33) -> torch.Tensor:
    """(..., H, W) with H, W multiples of ``block`` -> (..., n_blocks, block * block).

    ISTA-Net's layout (img2col_py of its test script): blocks in raster order (block rows
    top to bottom, left to right within a row), each flattened row-major (C order, numpy's
    ``reshape([-1])`` of the block; its network reads a block back with ``view(-1, 1, 33, 33)``).
    """
    *lead, h, w = image.shape
    if h % block or w % block:
        raise ValueError(f"image_to_blocks: {h}x{w} is not a multiple of the block {block}; pad it first")
    hb, wb = h // block, w // block
    x = image.reshape(*lead, hb, block, wb, block).transpose(-3, -2)
    return x.reshape(*lead, hb * wb, block * block)


def blocks_to_image(blocks: torch.Tensor, padded_shape: Sequence[int], block: int = 33) -> torch.Tensor:
    """Inverse of :func:`image_to_blocks`: (..., n_blocks, block * block) -> (..., H, W)."""
    h, w = (int(s) for s in padded_shape)
    hb, wb = h // block, w // block
    *lead, nb, nn_ = blocks.shape
    if nb != hb * wb or nn_ != block * block:
        raise ValueError(f"blocks_to_image: {nb} blocks of {nn_} do not tile {h}x{w} with block {block}")
    x = blocks.reshape(*lead, hb, wb, block, block).transpose(-3, -2)
    return x.reshape(*lead, h, w)


class BlockCSOperator(LinearOperator):
    """Block compressive sensing of images (..., H, W): zero-pad to multiples of ``block``
    (:func:`pad_to_blocks`), cut into non-overlapping blocks in ISTA-Net's layout (raster
    order, each block flattened row-major: :func:`image_to_blocks`), and measure each block
    with Phi (m, block^2): ``forward(x)`` is (..., n_blocks, m), ``blocks @ Phi.T``.
    The adjoint multiplies by Phi, reassembles the blocks and crops the padding."""

    def __init__(self, Phi: torch.Tensor, image_shape: Sequence[int], block: int = 33):
        if Phi.dim() != 2 or Phi.shape[1] != block * block:
            raise ValueError(f"BlockCSOperator: Phi must be (m, {block * block}) for block {block}, "
                             f"got {tuple(Phi.shape)}")
        self.Phi, self.block = Phi, int(block)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.padded_shape = tuple(padded_size(s, self.block) for s in self.image_shape)
        n_blocks = (self.padded_shape[0] // self.block) * (self.padded_shape[1] // self.block)
        self.in_shape, self.out_shape = self.image_shape, (n_blocks, int(Phi.shape[0]))
        self.dtype, self.device = Phi.dtype, Phi.device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return image_to_blocks(pad_to_blocks(x, self.block), self.block) @ self.Phi.T

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return crop(blocks_to_image(y @ self.Phi, self.padded_shape, self.block), self.image_shape)

    def norm_estimate(self, n_iter: int = 200, seed: int = 0, rtol: float = 1e-10) -> torch.Tensor:
        """||Phi||_2 when the image holds at least one whole block (the top right singular
        vector of Phi fits in it); otherwise power iteration (cropping can only lower it)."""
        if all(s >= self.block for s in self.image_shape):
            return torch.linalg.matrix_norm(self.Phi, ord=2)
        return super().norm_estimate(n_iter, seed, rtol)


# --------------------------------------------------------------------------- checks
def adjointness_error(op: LinearOperator, generator: torch.Generator | None = None,
                      batch: Sequence[int] = (2,)) -> float:
    """| <A x, y> - <x, A^T y> | / (||A x|| ||y|| + ||x|| ||A^T y||) on random x, y with
    leading batch dimensions ``batch`` (float64 rounding: about 1e-16 for a true adjoint)."""
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    batch = tuple(batch)
    x = torch.randn(batch + tuple(op.in_shape), generator=g, dtype=torch.float64).to(op.device, op.dtype)
    y = torch.randn(batch + tuple(op.out_shape), generator=g, dtype=torch.float64).to(op.device, op.dtype)
    Ax, Aty = op.forward(x), op.adjoint(y)
    if tuple(Ax.shape) != tuple(y.shape) or tuple(Aty.shape) != tuple(x.shape):
        raise AssertionError(f"{type(op).__name__}: forward gives {tuple(Ax.shape)} (expected {tuple(y.shape)}), "
                             f"adjoint gives {tuple(Aty.shape)} (expected {tuple(x.shape)})")
    lhs, rhs = float((Ax * y).sum()), float((x * Aty).sum())
    scale = float(Ax.norm() * y.norm() + x.norm() * Aty.norm())
    return abs(lhs - rhs) / scale if scale > 0 else abs(lhs - rhs)


def assert_adjoint(op: LinearOperator, generator: torch.Generator | None = None, tol: float = 1e-12,
                   batch: Sequence[int] = (2,)) -> None:
    """Raise AssertionError unless <A x, y> = <x, A^T y> to ``tol`` (relative, float64)."""
    err = adjointness_error(op, generator, batch)
    if not err <= tol:
        raise AssertionError(f"{type(op).__name__}: <A x, y> and <x, A^T y> differ by {err:.2e} relatively "
                             f"(> {tol:g}): the adjoint is wrong")


# --------------------------------------------------------------------------- examples
def _random(shape, seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


#: named example constructors, small and in float64, one or more per operator class: the
#: operator tests run on every entry (add one here when you add an operator)
OPERATORS: dict[str, Callable[[], LinearOperator]] = {
    "matrix": lambda: MatrixOperator(_random((7, 11), 1)),
    "matrix_tall": lambda: MatrixOperator(_random((9, 4), 2)),
    "difference_periodic_sstv": lambda: FiniteDifference((5, 4, 3), weights=(1.0, 1.0, 0.5), boundary="periodic"),
    "difference_periodic_odd": lambda: FiniteDifference((7, 5), dims=(-1,), boundary="periodic"),
    "difference_neumann_tv": lambda: FiniteDifference((6, 5), dims=(-1, -2), boundary="neumann"),
    "difference_neumann_weighted": lambda: FiniteDifference((4, 3, 5), weights=(0.5, 2.0, 1.0), boundary="neumann"),
    "block_cs": lambda: BlockCSOperator(_random((5, 16), 3), (7, 10), block=4),
    "block_cs_exact_multiple": lambda: BlockCSOperator(_random((6, 9), 4), (6, 9), block=3),
}
