"""Loaders of the cubes users download themselves (ICVL, Pavia University, Washington DC Mall),
tested on small files of the same formats written here."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from bench import registry as R

R.load_all()
from bench.datasets.hsi_downloads import ICVL_TEST, qrnn3d_icvl
from bench.errors import DataError

h5py = pytest.importorskip("h5py")


def write_v73(path, name: str, matlab_array: np.ndarray) -> None:
    """A MATLAB v7.3 file as MATLAB writes it: a 512-byte user block with the MATLAB header
    (so scipy recognises v7.3 and defers to HDF5), the array stored with its axes reversed."""
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Sun Dec  6 00:00:00 2026 HDF5 schema 1.00 ."
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset(name, data=np.ascontiguousarray(matlab_array.T))
    with open(path, "r+b") as f:
        block = header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
        f.write(block)


def test_v73_writer_is_read_back_in_matlab_axis_order(tmp_path):
    from bench.datasets.hsi import load_mat
    x = np.arange(4 * 3 * 2, dtype=np.float64).reshape(4, 3, 2)
    write_v73(tmp_path / "a.mat", "rad", x)
    with pytest.raises(NotImplementedError):   # scipy sees a v7.3 header
        scipy.io.loadmat(tmp_path / "a.mat")
    assert np.array_equal(load_mat(str(tmp_path / "a.mat"))["rad"], x)


def test_qrnn3d_icvl_rotation_crop_and_normalisation():
    # MATLAB cube (H=6, W=4, bands=2): a marker at MATLAB's top-left pixel
    x = np.zeros((6, 4, 2))
    x[0, 0, :] = 5.0
    x[5, 3, 1] = -1.0
    out = qrnn3d_icvl(x, size=0)
    # h5py's (bands, W, H) rotated by rot90(k=-1) in (W, H) and transposed back: (W, H, bands)
    assert out.shape == (4, 6, 2)
    assert np.all(out[3, 0, :] == 1.0)           # the marker, at the max after min-max
    assert out[0, 5, 1] == 0.0 and out.min() == 0.0
    # a centre crop of the rotated (bands, H, W) array: start n // 2 - size // 2 in each axis
    y = np.random.default_rng(0).random((10, 8, 3))
    full = np.rot90(y.transpose(2, 1, 0), k=-1, axes=(1, 2))          # (3, 10, 8)
    want = full[:, 5 - 2:5 + 2, 4 - 2:4 + 2]
    want = ((want - want.min()) / (want.max() - want.min())).transpose(2, 1, 0)
    assert np.allclose(qrnn3d_icvl(y, size=4), want)
    with pytest.raises(DataError, match="does not fit"):
        qrnn3d_icvl(y, size=9)


def test_icvl_reads_the_qrnn3d_test_names_from_v73_files(tmp_path):
    assert len(ICVL_TEST) == 50 and len(set(ICVL_TEST)) == 50
    folder = tmp_path / "hsi" / "icvl"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    cubes = {}
    for n in ICVL_TEST[:2]:
        cubes[n] = rng.random((12, 10, 31)) * 4000
        write_v73(folder / f"{n}.mat", "rad", cubes[n])
    data = R.DATASETS["icvl"](size=8, max_files=2).load(str(tmp_path))
    assert data.names == ICVL_TEST[:2]
    assert [tuple(c.shape) for c in data.cubes] == [(8, 8, 31)] * 2
    assert np.allclose(data.cubes[1].numpy(), qrnn3d_icvl(cubes[ICVL_TEST[1]], 8))
    assert float(data.cubes[0].min()) == 0.0 and float(data.cubes[0].max()) == 1.0
    with pytest.raises(DataError, match="48 of the 50 ICVL test cube"):
        R.DATASETS["icvl"](size=8).load(str(tmp_path))


def test_pavia_u_reads_paviaU_from_a_v5_file(tmp_path):
    folder = tmp_path / "hsi" / "pavia_university"
    folder.mkdir(parents=True)
    raw = np.random.default_rng(2).integers(0, 8000, size=(24, 16, 103)).astype(np.uint16)
    scipy.io.savemat(folder / "PaviaU.mat", {"paviaU": raw})
    data = R.DATASETS["pavia_u"](size=12).load(str(tmp_path))   # a crop at least SSIM's 11x11 window
    assert tuple(data.cubes[0].shape) == (12, 12, 103)
    full = (raw - raw.min()) / float(raw.max() - raw.min())
    assert np.allclose(data.cubes[0].numpy(), full[6:18, 2:14])
    scipy.io.savemat(folder / "PaviaU.mat", {"pavia": raw})
    with pytest.raises(DataError, match="no variable 'paviaU'"):
        R.DATASETS["pavia_u"](size=12).load(str(tmp_path))
    with pytest.raises(DataError, match="manual download"):
        R.DATASETS["pavia_u"]().load(str(tmp_path / "elsewhere"))


def test_dc_mall_reads_a_band_first_tiff_and_a_mat(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    folder = tmp_path / "hsi" / "dc_mall"
    folder.mkdir(parents=True)
    raw = np.random.default_rng(3).integers(-200, 12000, size=(191, 40, 30)).astype(np.int16)  # bands, H, W
    tifffile.imwrite(folder / "dc.tif", raw)
    data = R.DATASETS["dc_mall"](size=16).load(str(tmp_path))
    cube = np.moveaxis(raw, 0, -1).astype(np.float64)
    full = (cube - cube.min()) / (cube.max() - cube.min())
    assert tuple(data.cubes[0].shape) == (16, 16, 191)
    assert np.allclose(data.cubes[0].numpy(), full[12:28, 7:23])
    scipy.io.savemat(folder / "dc.mat", {"dc": np.moveaxis(raw, 0, -1)})
    m = R.DATASETS["dc_mall"](file="hsi/dc_mall/dc.mat", size=16).load(str(tmp_path))
    assert np.allclose(m.cubes[0].numpy(), data.cubes[0].numpy())
    (folder / "dc.png").write_bytes(b"x")
    with pytest.raises(DataError, match="reads .tif/.tiff or .mat"):
        R.DATASETS["dc_mall"](file="hsi/dc_mall/dc.png").load(str(tmp_path))
