"""HSI loaders (MATLAB v5 and v7.3, pixel order, checksums), the synthetic generator and
the noise models."""
from __future__ import annotations

import hashlib
import os

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from bench import registry as R
from bench.datasets import hsi as H
from bench.datasets import hsi_noise as N
from bench.errors import DataError

R.load_all()


def _cube(h=16, w=14, b=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1000, (h, w, b))


def _write_v73(path, name, array):
    """A MATLAB v7.3 file as MATLAB writes it: HDF5, axes reversed (column-major)."""
    with h5py.File(path, "w", userblock_size=512) as f:
        d = f.create_dataset(name, data=np.ascontiguousarray(np.transpose(array)))
        d.attrs["MATLAB_class"] = np.bytes_("double")


def test_v73_loader_reads_matlab_axis_order(tmp_path):
    cube = _cube()
    folder = tmp_path / "hsi" / "icvl"
    folder.mkdir(parents=True)
    _write_v73(folder / "scene.mat", "rad", cube)
    loaded = H.load_mat(str(folder / "scene.mat"))
    np.testing.assert_array_equal(loaded["rad"], cube)
    data = R.DATASETS["hsi_mat"](folder="hsi/icvl", variable="rad", size=12).load(str(tmp_path))
    (x,) = data.cubes
    assert x.shape == (12, 12, 5) and x.dtype == torch.float64
    full = H.normalise_whole(cube)
    np.testing.assert_allclose(x.numpy(), full[2:14, 1:13])  # centre crop of the whole-normalised cube


def test_v5_loader_and_variable_autodetect(tmp_path):
    cube = _cube(seed=1)
    (tmp_path / "c").mkdir()
    scipy.io.savemat(tmp_path / "c" / "a.mat", {"cube": cube, "other": np.zeros((3, 3))})
    data = R.DATASETS["hsi_mat"](folder="c", variable="", size=0).load(str(tmp_path))
    np.testing.assert_allclose(data.cubes[0].numpy(), H.normalise_whole(cube))
    with pytest.raises(DataError, match="no variable 'rad'"):
        R.DATASETS["hsi_mat"](folder="c", variable="rad").load(str(tmp_path))


def test_checksum_mismatch_names_the_file(tmp_path):
    (tmp_path / "c").mkdir()
    scipy.io.savemat(tmp_path / "c" / "a.mat", {"cube": _cube()})
    (tmp_path / "SHA256SUMS").write_text("0" * 64 + "  ./c/a.mat\n")
    with pytest.raises(DataError, match="a.mat.*SHA256SUMS"):
        R.DATASETS["hsi_mat"](folder="c", variable="cube").load(str(tmp_path))


def test_checksum_match_passes(tmp_path):
    (tmp_path / "c").mkdir()
    scipy.io.savemat(tmp_path / "c" / "a.mat", {"cube": _cube()})
    digest = hashlib.sha256((tmp_path / "c" / "a.mat").read_bytes()).hexdigest()
    (tmp_path / "SHA256SUMS").write_text(f"{digest}  ./c/a.mat\n")
    assert R.DATASETS["hsi_mat"](folder="c", variable="cube").load(str(tmp_path)).cubes[0].shape == (16, 14, 5)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="chart_and_stuffed_toy_256.mat"):
        R.DATASETS["cave"]().load(str(tmp_path))


def test_pixel_matrix_is_matlab_column_major():
    cube = _cube(4, 3, 2)
    matrix = cube.reshape((12, 2), order="F").T  # MATLAB: reshape(cube, H*W, B)'
    np.testing.assert_array_equal(H.pixels_to_cube(matrix, 4, 3), cube)


def test_normalise_clips_negative_values_when_asked():
    x = np.array([[[-5.0, 10.0]], [[0.0, 20.0]]])
    y = H.normalise_whole(x, clip_negative=True)
    assert y.min() == 0.0 and y.max() == 1.0 and y[0, 0, 0] == 0.0


def test_synthetic_is_seeded_and_in_range():
    a = R.DATASETS["hsi_synthetic"](n_cubes=2, size=24, bands=10).load(None)
    b = R.DATASETS["hsi_synthetic"](n_cubes=2, size=24, bands=10).load(None)
    c = R.DATASETS["hsi_synthetic"](n_cubes=2, size=24, bands=10, instance_seed=1).load(None)
    assert a.instance_id == b.instance_id != c.instance_id
    for x in a.cubes:
        assert x.shape == (24, 24, 10) and float(x.min()) == 0.0 and float(x.max()) == 1.0
    # spectra are smooth: neighbouring bands are strongly correlated
    x = a.cubes[0].reshape(-1, 10).numpy()
    assert np.corrcoef(x[:, 4], x[:, 5])[0, 1] > 0.9
    assert not torch.equal(a.cubes[0], a.cubes[1])


# --------------------------------------------------------------------------- noise
def test_gaussian_noise_level_and_seed():
    clean = torch.full((64, 64, 8), 0.5, dtype=torch.float64)
    y1, d = R.DEGRADATIONS["hsi_gaussian"](sigma=50.0).apply(clean, torch.Generator().manual_seed(3))
    y2, _ = R.DEGRADATIONS["hsi_gaussian"](sigma=50.0).apply(clean, torch.Generator().manual_seed(3))
    assert torch.equal(y1, y2) and d.known and d.sigma == pytest.approx(50 / 255)
    assert float((y1 - clean).std()) == pytest.approx(50 / 255, rel=0.03)
    est, _ = N.estimate_sigma(y1)
    assert est == pytest.approx(50 / 255, rel=0.05)


def test_blind_draws_sigma_per_cube_and_hides_it():
    clean = torch.full((32, 32, 4), 0.5, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    sig = [R.DEGRADATIONS["hsi_blind"]().apply(clean, g)[1] for _ in range(5)]
    assert all(10 / 255 <= s.sigma <= 70 / 255 and not s.known for s in sig)
    assert len({s.sigma for s in sig}) == 5


def test_mixed_noise_has_impulses_stripes_and_non_iid_bands():
    clean = torch.full((60, 60, 30), 0.5, dtype=torch.float64)
    y, d = R.DEGRADATIONS["hsi_mixed"]().apply(clean, torch.Generator().manual_seed(1))
    assert not d.known and d.sigma_bands.shape == (30,) and float(d.sigma_bands.std()) > 0
    impulse_bands = [b for b in range(30) if int(((y[..., b] == 0) | (y[..., b] == 1)).sum()) > 100]
    assert len(impulse_bands) == 10
    # a stripe shifts a whole column: column means of some band move far from 0.5
    col_dev = (y.mean(dim=0) - 0.5).abs()
    assert int((col_dev > 0.05).any(dim=0).sum()) >= 5
    # the MAD estimate stays within a factor of two of the rms sigma despite the outliers
    est, _ = N.estimate_sigma(y)
    assert d.sigma / 2 < est < d.sigma * 2


# --------------------------------------------------------------------------- real files
REAL = ["cave", "simu_indian", "pavia", "abu", "jasper_ridge", "samson"]


@pytest.mark.parametrize("name", REAL)
def test_real_cube_loads_bands_last_in_unit_range(name, data_root):
    data = R.DATASETS[name](size=32).load(data_root)
    for x in data.cubes:
        assert x.dtype == torch.float64 and x.shape[:2] == (32, 32) and x.shape[2] >= 31
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    full = R.DATASETS[name](size=0).load(data_root).cubes[0]
    assert float(full.min()) == 0.0 and float(full.max()) == 1.0


def test_jasper_ridge_pixel_order_matches_its_abundance_maps(data_root):
    """The water abundance map (jasperRidge2_end4.mat, same pixel order) must line up with
    the dark near-infrared region of the cube; the C-order reading transposes it."""
    cube = R.DATASETS["jasper_ridge"](size=0).load(data_root).cubes[0].numpy()
    ab = scipy.io.loadmat(os.path.join(data_root, "hsi/unmixing/jasperRidge2_end4.mat"))["A"]
    nir = cube[..., 120]
    corr = [abs(np.corrcoef(nir.ravel(), H.pixels_to_cube(ab, 100, 100)[..., k].ravel())[0, 1]) for k in range(4)]
    wrong = [abs(np.corrcoef(nir.T.ravel(), H.pixels_to_cube(ab, 100, 100)[..., k].ravel())[0, 1]) for k in range(4)]
    assert max(corr) > 0.8 and max(corr) > max(wrong) + 0.2


def test_scene_names_are_the_datasets_scene_ids_one_per_cube():
    """The split (and the training job) name each loaded cube by its dataset's ``scene_ids``
    (CAVE as cave:<scene>); a dataset whose cubes and scene names do not pair up is refused."""
    cubes = (torch.zeros(4, 4, 3), torch.zeros(4, 4, 3))
    two = H.HsiData(cubes=cubes, names=("abu-urban-1", "abu-urban-2"), rgb_bands=(2, 1, 0), instance_id="x")
    assert H.scene_names(R.DATASETS["abu"](scene="urban-1"), H.HsiData(
        cubes=cubes[:1], names=("abu-urban-1",), rgb_bands=(2, 1, 0), instance_id="x")) == ["abu-urban-1"]
    assert H.scene_names(R.DATASETS["cave"](scene="cloth"), H.HsiData(
        cubes=cubes[:1], names=("cave:cloth",), rgb_bands=(2, 1, 0), instance_id="x")) == ["cave:cloth"]
    with pytest.raises(DataError, match="2 cube"):
        H.scene_names(R.DATASETS["abu"](scene="urban-1"), two)


# --------------------------------------------------------------------------- input validation
def test_a_cube_with_a_nan_or_under_the_ssim_window_is_refused_naming_the_file(tmp_path):
    """Checked when loaded, before any method runs: a NaN in the cube, or a cube smaller
    than the 11x11 window of the SSIM metric, is a DataError naming the file."""
    (tmp_path / "c").mkdir()
    cube = _cube()
    cube[3, 4, 1] = np.nan
    scipy.io.savemat(tmp_path / "c" / "a.mat", {"cube": cube})
    with pytest.raises(DataError, match=r"a\.mat: 1 non-finite value"):
        R.DATASETS["hsi_mat"](folder="c", variable="cube").load(str(tmp_path))
    scipy.io.savemat(tmp_path / "c" / "a.mat", {"cube": _cube(12, 10)})
    with pytest.raises(DataError, match=r"a\.mat: the cube is 12x10 pixels, smaller than the 11x11 window"):
        R.DATASETS["hsi_mat"](folder="c", variable="cube").load(str(tmp_path))


def test_the_dataset_lists_the_files_it_reads(tmp_path):
    (tmp_path / "c").mkdir()
    for n in ("b.mat", "a.mat"):
        scipy.io.savemat(tmp_path / "c" / n, {"cube": _cube()})
    ds = R.DATASETS["hsi_mat"](folder="c", variable="cube", max_files=1)
    assert ds.files(str(tmp_path)) == (str(tmp_path / "c" / "a.mat"),)
    split = R.DATASETS["hsi_split"](split="test").files("/root")
    assert split == ("/root/hsi/cave/chart_and_stuffed_toy_256.mat", "/root/hsi/abu/abu-beach-4-pavia.mat",
                     "/root/hsi/pavia_university/paviaU_sub50.mat")
