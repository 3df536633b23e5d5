"""The linear operators (bench/operators.py): adjointness and norms of every entry of
``OPERATORS`` (generated: a new operator gets these tests for free), the check's power to
catch a wrong adjoint, the conventions the solvers rely on, and block padding/cropping."""
from __future__ import annotations

import math

import pytest
import torch

from bench.operators import (OPERATORS, BlockCSOperator, FiniteDifference, LinearOperator, MatrixOperator,
                             adjointness_error, as_operator, assert_adjoint, blocks_to_image, crop,
                             image_to_blocks, pad_to_blocks, padded_size)


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(params=sorted(OPERATORS), ids=sorted(OPERATORS))
def op(request) -> LinearOperator:
    return OPERATORS[request.param]()


# --------------------------------------------------------------------------- every operator
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adjointness(op, seed):
    assert_adjoint(op, _seeded(seed), tol=1e-12)
    assert_adjoint(op, _seeded(seed), tol=1e-12, batch=())           # no batch dimension
    assert_adjoint(op, _seeded(seed), tol=1e-12, batch=(2, 3))       # two of them


def test_forward_and_adjoint_treat_batch_entries_independently(op):
    x = torch.randn((3, *op.in_shape), generator=_seeded(4), dtype=torch.float64)
    y = torch.randn((3, *op.out_shape), generator=_seeded(5), dtype=torch.float64)
    Ax, Aty = op.forward(x), op.adjoint(y)
    assert Ax.shape == (3, *op.out_shape) and Aty.shape == (3, *op.in_shape)
    for i in range(3):
        torch.testing.assert_close(Ax[i], op.forward(x[i]), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(Aty[i], op.adjoint(y[i]), rtol=1e-12, atol=1e-12)


def test_norm_estimate_is_the_spectral_norm_of_the_dense_matrix(op):
    dense = op.to_dense()
    assert dense.shape == (math.prod(op.out_shape), math.prod(op.in_shape))
    exact = float(torch.linalg.matrix_norm(dense, ord=2))
    assert float(op.norm_estimate()) == pytest.approx(exact, rel=1e-12)
    # the generic power iteration (what an operator without an exact value uses): from
    # below, close, and the same from the same seed
    power = float(LinearOperator.norm_estimate(op, n_iter=2000))
    assert power <= exact * (1 + 1e-12)
    assert power == pytest.approx(exact, rel=1e-6)
    assert float(LinearOperator.norm_estimate(op, seed=3)) == float(LinearOperator.norm_estimate(op, seed=3))


def test_gradient_step_is_x_minus_step_adjoint_of_residual(op):
    x = torch.randn((4, *op.in_shape), generator=_seeded(6), dtype=torch.float64)
    y = torch.randn((4, *op.out_shape), generator=_seeded(7), dtype=torch.float64)
    torch.testing.assert_close(op.gradient_step(x, y, 0.3), x - 0.3 * op.adjoint(op.forward(x) - y),
                               rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- the check itself
class _TransposedWrongly(MatrixOperator):
    """A mutant: its adjoint applies A instead of A^T (square A, so the shapes still fit)."""

    def adjoint(self, y):
        return y @ self.A.T


class _RolledWrongly(FiniteDifference):
    """A mutant of the periodic differences: the adjoint rolls the wrong way."""

    def differences_adjoint(self, f):
        return sum(torch.roll(g, -1, dims=d) - g for d, g in zip(self.dims, f))


class _MissingBoundary(FiniteDifference):
    """A mutant of the Neumann differences: the adjoint forgets that the last difference is 0
    (Chambolle's divergence without the last entry read as 0)."""

    def differences_adjoint(self, f):
        acc = 0
        for d, p in zip(self.dims, f):
            shifted = torch.nn.functional.pad(p.narrow(d, 0, p.shape[d] - 1), (1, 0) if d == -1 else (0, 0, 1, 0))
            acc = acc + shifted - p
        return acc


@pytest.mark.parametrize("mutant", [
    lambda: _TransposedWrongly(torch.randn(6, 6, generator=_seeded(8), dtype=torch.float64)),
    lambda: _RolledWrongly((5, 4), boundary="periodic"),
    lambda: _MissingBoundary((5, 4), dims=(-1, -2), boundary="neumann"),
], ids=["transposed_wrongly", "rolled_wrongly", "missing_boundary"])
def test_the_adjointness_check_catches_a_wrong_adjoint(mutant):
    op = mutant()
    assert adjointness_error(op, _seeded(0)) > 1e-3
    with pytest.raises(AssertionError, match="the adjoint is wrong"):
        assert_adjoint(op, _seeded(0))


def test_the_check_refuses_wrong_shapes():
    class _Shapes(MatrixOperator):
        def adjoint(self, y):
            return y

    with pytest.raises(AssertionError, match="adjoint gives"):
        assert_adjoint(_Shapes(torch.randn(3, 5, dtype=torch.float64)))


# --------------------------------------------------------------------------- conventions
def test_matrix_operator_is_rows_times_A_transpose_with_the_exact_norm():
    A = torch.randn(4, 6, generator=_seeded(9), dtype=torch.float64)
    op = MatrixOperator(A)
    x = torch.randn(3, 6, generator=_seeded(10), dtype=torch.float64)
    assert torch.equal(op.forward(x), x @ A.T) and torch.equal(op.adjoint(x @ A.T), x @ A.T @ A)
    assert torch.equal(op.norm_estimate(), torch.linalg.matrix_norm(A, ord=2))
    assert as_operator(A).A is A and as_operator(op) is op
    with pytest.raises(ValueError, match="2-D"):
        MatrixOperator(torch.zeros(2, 3, 4))
    with pytest.raises(TypeError):
        as_operator([[1.0]])


def test_fused_gradient_step_equals_the_two_products_bitwise():
    """The sparse solvers' inner loop: addmm(y, x, A^T, beta=-1), then addmm(x, r, A, alpha=-step)."""
    A = torch.randn(5, 8, generator=_seeded(11), dtype=torch.float64)
    x = torch.randn(3, 8, generator=_seeded(12), dtype=torch.float64)
    y = torch.randn(3, 5, generator=_seeded(13), dtype=torch.float64)
    r = torch.addmm(y, x, A.T, alpha=1, beta=-1)
    assert torch.equal(MatrixOperator(A).gradient_step(x, y, 0.25), torch.addmm(x, r, A, alpha=-0.25))


def test_periodic_differences_are_rolls_and_the_gram_is_diagonal_in_fourier():
    x = torch.randn(5, 4, 3, generator=_seeded(14), dtype=torch.float64)
    D = FiniteDifference(x.shape, weights=(1.0, 1.0, 0.5))
    for d, (g, w) in enumerate(zip(D.differences(x), (1.0, 1.0, 0.5))):
        assert torch.equal(g, w * (torch.roll(x, -1, dims=d) - x))
    # D^T D x = ifft(eig * fft(x))
    DtDx = D.adjoint(D.forward(x))
    torch.testing.assert_close(torch.fft.ifftn(D.gram_eigenvalues() * torch.fft.fftn(x)).real, DtDx,
                               rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="periodic"):
        FiniteDifference((3, 3), boundary="neumann").gram_eigenvalues()


def test_neumann_differences_are_chambolles_gradient_and_divergence():
    v = torch.randn(2, 6, 5, generator=_seeded(15), dtype=torch.float64)
    D = FiniteDifference((6, 5), dims=(-1, -2), boundary="neumann")
    gx = torch.nn.functional.pad(v[:, :, 1:] - v[:, :, :-1], (0, 1))
    gy = torch.nn.functional.pad(v[:, 1:] - v[:, :-1], (0, 0, 0, 1))
    g = D.forward(v)
    assert g.shape == (2, 2, 6, 5)
    assert torch.equal(g[:, 0], gx) and torch.equal(g[:, 1], gy)
    # with the last entries zero (as Chambolle's dual variables stay), its divergence
    px, py = torch.randn(2, 2, 6, 5, generator=_seeded(16), dtype=torch.float64).unbind(1)
    px[:, :, -1] = 0
    py[:, -1] = 0
    div = px - torch.nn.functional.pad(px[:, :, :-1], (1, 0)) + py - torch.nn.functional.pad(py[:, :-1], (0, 0, 1, 0))
    assert torch.equal(D.divergence([px, py]), div)
    assert torch.equal(D.adjoint(torch.stack([px, py], 1)), -div)


def test_finite_difference_refuses_bad_arguments():
    with pytest.raises(ValueError, match="boundary"):
        FiniteDifference((3, 3), boundary="reflect")
    with pytest.raises(ValueError, match="outside"):
        FiniteDifference((3, 3), dims=(2,))
    with pytest.raises(ValueError, match="weights"):
        FiniteDifference((3, 3), weights=(1.0,))


# --------------------------------------------------------------------------- block CS
@pytest.mark.parametrize("shape, block, padded", [((7, 10), 4, (8, 12)), ((6, 9), 3, (6, 9)),
                                                  ((256, 256), 33, (264, 264)), ((33, 1), 33, (33, 33))])
def test_block_padding_and_cropping_round_trip(shape, block, padded):
    img = torch.randn(2, *shape, generator=_seeded(17), dtype=torch.float64)
    p = pad_to_blocks(img, block)
    assert p.shape == (2, *padded) and tuple(padded_size(s, block) for s in shape) == padded
    assert torch.equal(crop(p, shape), img)
    assert torch.count_nonzero(p).item() == torch.count_nonzero(img).item()  # only zeros were added
    blocks = image_to_blocks(p, block)
    assert blocks.shape == (2, (padded[0] // block) * (padded[1] // block), block * block)
    assert torch.equal(blocks_to_image(blocks, padded, block), p)


def test_blocks_are_in_raster_order_and_flattened_row_major_as_ista_net():
    """ISTA-Net's img2col_py: for x in block rows, for y in block columns, block.reshape(-1)."""
    import numpy as np

    img = torch.arange(6 * 9, dtype=torch.float64).reshape(6, 9)
    blocks = image_to_blocks(img, 3)
    ref = [img.numpy()[x:x + 3, y:y + 3].reshape([-1]) for x in range(0, 6, 3) for y in range(0, 9, 3)]
    assert torch.equal(blocks, torch.from_numpy(np.stack(ref)))
    assert blocks[0].tolist() == [0, 1, 2, 9, 10, 11, 18, 19, 20]   # row-major, not column-major
    with pytest.raises(ValueError, match="multiple"):
        image_to_blocks(torch.zeros(5, 6), 3)


def test_block_cs_operator_measures_each_block_with_phi():
    Phi = torch.randn(5, 16, generator=_seeded(18), dtype=torch.float64)
    op = BlockCSOperator(Phi, (7, 10), block=4)
    x = torch.randn(7, 10, generator=_seeded(19), dtype=torch.float64)
    y = op.forward(x)
    assert y.shape == op.out_shape == (6, 5)
    top_left = torch.zeros(4, 4, dtype=torch.float64)
    top_left[:, :] = x[:4, :4]
    torch.testing.assert_close(y[0], Phi @ top_left.reshape(-1))
    corner = torch.zeros(4, 4, dtype=torch.float64)
    corner[:3, :2] = x[4:, 8:]                      # the last block: 3 x 2 pixels and padding
    torch.testing.assert_close(y[-1], Phi @ corner.reshape(-1))
    with pytest.raises(ValueError, match="Phi"):
        BlockCSOperator(Phi, (7, 10), block=5)


def test_block_cs_norm_falls_back_to_power_iteration_on_a_partial_block():
    Phi = torch.randn(3, 16, generator=_seeded(20), dtype=torch.float64)
    op = BlockCSOperator(Phi, (3, 2), block=4)      # no whole block: cropping lowers the norm
    exact = float(torch.linalg.matrix_norm(op.to_dense(), ord=2))
    assert exact < float(torch.linalg.matrix_norm(Phi, ord=2))
    assert float(op.norm_estimate(n_iter=2000)) == pytest.approx(exact, rel=1e-6)
