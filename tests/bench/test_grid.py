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


# --------------------------------------------------------------------------- data identity
def _set11_root(root, monarch: bytes):
    import os
    os.makedirs(root / "cs" / "Set11", exist_ok=True)
    (root / "cs" / "Set11" / "Monarch.tif").write_bytes(monarch)
    return str(root)


def _set11_cell(data_root):
    (cell,) = build_cells("cs", ["set11[names=Monarch]"], ["measurement_noise"], ["qinit"], ["cpu"], seed=0,
                          data_root=data_root)
    return cell


def test_key_holds_the_identity_of_the_data_files(tmp_path, monkeypatch):
    """A real-data cell's key changes with the bytes of the files its dataset reads (another
    data root, a changed file), never with where an identical copy lies."""
    from bench import data_identity
    monkeypatch.setattr(data_identity, "CACHE_FILE", str(tmp_path / "cache.json"))
    a = _set11_cell(_set11_root(tmp_path / "a", b"the real image"))
    b = _set11_cell(_set11_root(tmp_path / "b", b"\0" * 14))
    copy = _set11_cell(_set11_root(tmp_path / "copy", b"the real image"))
    assert a.data_hash and a.data_hash != b.data_hash and a.key != b.key
    assert copy.key == a.key
    # the same file changed in place: a new key
    (tmp_path / "a" / "cs" / "Set11" / "Monarch.tif").write_bytes(b"edited image!!")
    assert _set11_cell(str(tmp_path / "a")).key != a.key


def test_generated_data_keys_do_not_depend_on_the_data_root(tmp_path):
    """A generated dataset reads no file: no data entry in its key, whatever the data root."""
    cells = [build_cells("sparse", ["gaussian_lasso[m=5,n=10,n_test=3]"], ["awgn_snr"], ["ista"], ["cpu"], 0,
                         data_root=root)[0] for root in (str(tmp_path), "/nonexistent")]
    assert cells[0].data_hash == cells[1].data_hash == ""
    assert cells[0].key == cells[1].key
