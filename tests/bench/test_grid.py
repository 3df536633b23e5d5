import pytest

from bench.errors import UnknownNameError
from bench.grid import build_cells, derive_seed


def test_grid_is_the_cross_product():
    cells = build_cells("sparse", ["gaussian_lasso[n_test=10]"], ["awgn_snr[snr_db=[inf,40]]"],
                        ["ista[n_iter=3]", "fista[n_iter=3]"], ["cpu"], seed=0)
    assert len(cells) == 4
    assert len({c.key for c in cells}) == 4


def test_key_depends_on_parameters_seed_and_source():
    a = build_cells("sparse", ["gaussian_lasso"], ["awgn_snr"], ["ista"], ["cpu"], seed=0)[0]
    b = build_cells("sparse", ["gaussian_lasso"], ["awgn_snr"], ["ista[lam=0.1]"], ["cpu"], seed=0)[0]
    c = build_cells("sparse", ["gaussian_lasso"], ["awgn_snr"], ["ista"], ["cpu"], seed=1)[0]
    d = build_cells("sparse", ["gaussian_lasso"], ["awgn_snr"], ["ista[lam=0.4]"], ["cpu"], seed=0)[0]
    assert len({a.key, b.key, c.key}) == 3
    assert a.key == d.key  # default given explicitly is the same cell
    import dataclasses
    assert dataclasses.replace(a, source_hash="edited").key != a.key


def test_noise_seed_is_shared_by_methods_of_a_cell_row():
    cells = build_cells("sparse", ["gaussian_lasso"], ["awgn_snr[snr_db=40]"], ["ista", "fista"], ["cpu"], 0)
    assert cells[0].degradation_seed() == cells[1].degradation_seed()
    assert cells[0].method_seed() != cells[1].method_seed()
    assert derive_seed(0, "a") == derive_seed(0, "a") != derive_seed(1, "a")


@pytest.mark.parametrize("axis, bad", [("dataset", "nope"), ("method", "lasso_magic"), ("degradation", "blur")])
def test_unknown_names_list_valid_ones(axis, bad):
    kw = dict(datasets=["gaussian_lasso"], degradations=["awgn_snr"], methods=["ista"])
    kw[axis + "s"] = [bad]
    with pytest.raises(UnknownNameError) as e:
        build_cells("sparse", kw["datasets"], kw["degradations"], kw["methods"], ["cpu"], 0)
    assert bad in str(e.value) and "valid" in str(e.value)


def test_unknown_parameter_is_reported():
    with pytest.raises(UnknownNameError, match="n_iterations"):
        build_cells("sparse", ["gaussian_lasso"], ["awgn_snr"], ["ista[n_iterations=3]"], ["cpu"], 0)
