"""Clean hyperspectral cubes that users download themselves (they cannot be fetched here):
ICVL with the QRNN3D test protocol, the full ROSIS Pavia University scene and the HYDICE
Washington DC Mall cube. Each loads to :class:`~bench.datasets.hsi.HsiData` ([0, 1] as a
whole) and takes the suite's simulated noise like every clean dataset.

=================  ==========================================  =========================================
dataset            file(s) under <data_root>                   protocol
=================  ==========================================  =========================================
``icvl``           hsi/icvl/<name>.mat, MATLAB v7.3 (HDF5),     QRNN3D (Wei, Fu, Huang, TNNLS 2021;
                   variable ``rad`` (1392 x 1300 x 31)         github Vandermode/QRNN3D): the 50 test
                                                               names of ICVL_test_gauss.txt; the cube
                                                               as h5py reads it (bands, W, H) rotated by
                                                               -90 degrees in its last two axes
                                                               (numpy ``rot90(k=-1, axes=(1, 2))``),
                                                               centre 512 x 512 crop, then min-max
                                                               normalised as a whole (utility/mat_data.py)
``pavia_u``        hsi/pavia_university/PaviaU.mat, MATLAB v5,  min-max as a whole, centre crop ``size``
                   variable ``paviaU`` (610 x 340 x 103)
``dc_mall``        hsi/dc_mall/dc.tif (Purdue MultiSpec's       min-max as a whole, centre crop ``size``
                   HYDICE file: 191 bands x 1280 x 307 as       (256: the 256 x 256 x 191 sub-image of
                   tifffile reads it) or a .mat of the cube    the denoising papers)
=================  ==========================================  =========================================

Sources: ICVL, Arad and Ben-Shahar, ECCV 2016 (icvl.cs.bgu.ac.il/hyperspectral); Pavia
University and the corrected Indian Pines: the Grupo de Inteligencia Computacional (EHU)
page "Hyperspectral Remote Sensing Scenes"; Washington DC Mall: Landgrebe, "Hyperspectral
image data analysis", IEEE SP Magazine 2002, distributed with Purdue's MultiSpec.
"""
from __future__ import annotations

import os

import numpy as np

from bench.datasets.hsi import (CROP_SPEC, HsiData, _finish, centre_crop, default_rgb, load_mat, normalise_whole,
                                pick_variable, verify_checksum)
from bench.errors import DataError
from bench.params import Param
from bench.registry import Dataset, register_dataset

#: QRNN3D's ICVL Gaussian test set (ICVL_test_gauss.txt, 50 names, in that file's order)
ICVL_TEST = (
    "CC_40D_2_1103-0917", "IDS_COLORCHECK_1020-1215-1", "Labtest_0910-1504", "Labtest_0910-1509",
    "Labtest_0910-1513", "Lehavim_0910-1636", "Lehavim_0910-1716", "Lehavim_0910-1717", "Master5000K_2900K",
    "bulb_0822-0909", "gavyam_0823-0930", "gavyam_0823-0933", "gavyam_0823-0944", "lehavim_0910-1600",
    "lehavim_0910-1602", "lehavim_0910-1610", "nachal_0823-1047", "nachal_0823-1118", "nachal_0823-1121",
    "nachal_0823-1127", "nachal_0823-1144", "nachal_0823-1149", "nachal_0823-1214", "nachal_0823-1217",
    "nachal_0823-1222", "nachal_0823-1223", "negev_0823-1003", "objects_0924-1650", "rmt_0328-1241-1",
    "rmt_0328-1249-1", "selfie_0822-0906", "ulm_0328-1118", "Lehavim_0910-1626", "Lehavim_0910-1635",
    "Master2900k", "Master5000K", "objects_0924-1550", "objects_0924-1623", "objects_0924-1557",
    "objects_0924-1602", "objects_0924-1607", "objects_0924-1611", "objects_0924-1614", "objects_0924-1617",
    "objects_0924-1625", "objects_0924-1628", "objects_0924-1632", "objects_0924-1637", "objects_0924-1641",
    "objects_0924-1648",
)


def _root(data_root, name: str) -> str:
    if not data_root:
        raise DataError(f"{name}: no data root given (pass --data-root or set BENCH_DATA)")
    return data_root


def qrnn3d_icvl(rad_matlab: np.ndarray, size: int = 512) -> np.ndarray:
    """QRNN3D's ICVL test cube from ``rad`` in MATLAB's axis order (H, W, bands), as
    :func:`~bench.datasets.hsi.load_mat` returns it: the array h5py reads is its transpose
    (bands, W, H); that is rotated by ``rot90(k=-1, axes=(1, 2))``, centre-cropped to
    ``size`` x ``size`` in its last two axes (start = n // 2 - size // 2), min-max normalised
    as a whole and transposed back to (H', W', bands) as QRNN3D saves it."""
    a = np.asarray(rad_matlab, dtype=np.float64)
    if a.ndim != 3:
        raise DataError(f"ICVL rad: expected a 3-D cube, got shape {a.shape}")
    a = np.rot90(a.transpose(2, 1, 0), k=-1, axes=(1, 2))
    _, y, x = a.shape
    if size > 0 and (size > y or size > x):
        raise DataError(f"ICVL rad: a {size}x{size} crop does not fit a {y}x{x} cube")
    if size > 0:
        sy, sx = y // 2 - size // 2, x // 2 - size // 2
        a = a[:, sy:sy + size, sx:sx + size]
    return normalise_whole(a).transpose(2, 1, 0)


@register_dataset
class Icvl(Dataset):
    """ICVL test cubes as QRNN3D prepares them (:func:`qrnn3d_icvl`)."""

    name = "icvl"
    suite = "hsi"
    needs_data = True
    description = ("ICVL (user download, MATLAB v7.3 'rad'), QRNN3D test protocol: its 50 test names, rot90, "
                   "centre 512x512 crop, min-max; files under <data_root>/hsi/icvl")
    parameters = {"folder": "hsi/icvl", "size": 512, "max_files": 0}
    parameter_specs = {"folder": Param(str, help="under the data root"),
                       "size": Param(int, min=0, help="edge of QRNN3D's centre crop (512); 0: no crop"),
                       "max_files": Param(int, min=0, help="the first N test names only; 0: all 50")}

    def names(self) -> tuple[str, ...]:
        n = int(self.params["max_files"])
        return ICVL_TEST[:n] if n > 0 else ICVL_TEST

    def scene_ids(self) -> tuple[str, ...]:
        return tuple(f"icvl:{n}" for n in self.names())

    def files(self, data_root=None) -> tuple[str, ...]:
        return tuple(os.path.join(data_root, self.params["folder"], n + ".mat") for n in self.names()) if data_root else ()

    def load(self, data_root=None) -> HsiData:
        root = _root(data_root, self.name)
        folder = os.path.join(root, self.params["folder"])
        missing = [n for n in self.names() if not os.path.exists(os.path.join(folder, n + ".mat"))]
        if missing:
            raise DataError(f"{folder}: {len(missing)} of the {len(self.names())} ICVL test cube(s) missing "
                            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); download them from "
                            "icvl.cs.bgu.ac.il/hyperspectral (.mat, v7.3) into that folder, or pass max_files=N")
        cubes = []
        for n in self.names():
            path = os.path.join(folder, n + ".mat")
            verify_checksum(root, os.path.relpath(path, root))
            cubes.append(qrnn3d_icvl(pick_variable(load_mat(path), "rad", path), int(self.params["size"])))
        return _finish(cubes, list(self.names()), default_rgb(cubes[0].shape[-1]))


def _single_file(data_root, name: str, relpath: str, source: str) -> str:
    root = _root(data_root, name)
    path = os.path.join(root, relpath)
    if not os.path.exists(path):
        raise DataError(f"{path}: missing; {name} is a manual download: {source}")
    verify_checksum(root, relpath)
    return path


@register_dataset
class PaviaU(Dataset):
    """The full ROSIS Pavia University scene (not the 50x50 subset ``pavia_university``)."""

    name = "pavia_u"
    suite = "hsi"
    needs_data = True
    description = ("ROSIS Pavia University, 610x340x103 (user download PaviaU.mat, variable paviaU), min-max, "
                   "centre crop `size`; <data_root>/hsi/pavia_university/PaviaU.mat")
    parameters = {"size": 256}
    parameter_specs = {"size": CROP_SPEC}
    relpath = "hsi/pavia_university/PaviaU.mat"
    source = "PaviaU.mat from the EHU 'Hyperspectral Remote Sensing Scenes' page, put under hsi/pavia_university/"

    def scene_ids(self) -> tuple[str, ...]:
        return ("pavia_u",)

    def files(self, data_root=None) -> tuple[str, ...]:
        return (os.path.join(data_root, self.relpath),) if data_root else ()

    def load(self, data_root=None) -> HsiData:
        path = _single_file(data_root, self.name, self.relpath, self.source)
        raw = np.asarray(pick_variable(load_mat(path), "paviaU", path))
        if raw.ndim != 3:
            raise DataError(f"{path}: paviaU has shape {raw.shape}, expected (rows, columns, bands)")
        cube = centre_crop(normalise_whole(raw), self.params["size"])
        return _finish([cube], ["pavia_u"], (60, 30, 10))


def read_tiff_cube(path: str) -> np.ndarray:
    """A band-sequential multi-band TIFF as (H, W, bands): tifffile reads Purdue's dc.tif (one
    page per band) as (bands, H, W)."""
    try:
        import tifffile
    except ImportError as e:  # pragma: no cover - scikit-image depends on tifffile
        raise DataError(f"{path}: reading a TIFF cube needs tifffile: pip install tifffile") from e
    try:
        a = np.asarray(tifffile.imread(path))
    except Exception as e:  # noqa: BLE001 - a corrupt file
        raise DataError(f"{path}: not a readable TIFF ({type(e).__name__}: {e})") from e
    if a.ndim != 3:
        raise DataError(f"{path}: expected a 3-D multi-band TIFF, got shape {a.shape}")
    return np.moveaxis(a, 0, -1)


@register_dataset
class DcMall(Dataset):
    """The HYDICE Washington DC Mall cube (191 bands after the water absorption bands were
    removed), as Purdue's MultiSpec distributes it (``dc.tif``) or a .mat of the cube."""

    name = "dc_mall"
    suite = "hsi"
    needs_data = True
    description = ("HYDICE Washington DC Mall, 1280x307x191 (user download dc.tif, or a .mat), min-max, centre "
                   "crop `size` (256: the papers' 256x256x191); <data_root>/hsi/dc_mall/")
    parameters = {"file": "hsi/dc_mall/dc.tif", "size": 256}
    parameter_specs = {"file": Param(str, help="under the data root: .tif/.tiff or .mat"), "size": CROP_SPEC}
    source = ("dc.tif from Purdue's MultiSpec site (engineering.purdue.edu/~biehl/MultiSpec/hyperspectral.html), "
              "put under hsi/dc_mall/")

    def scene_ids(self) -> tuple[str, ...]:
        return ("dc_mall",)

    def files(self, data_root=None) -> tuple[str, ...]:
        return (os.path.join(data_root, str(self.params["file"])),) if data_root else ()

    def load(self, data_root=None) -> HsiData:
        rel = str(self.params["file"])
        path = _single_file(data_root, self.name, rel, self.source)
        if rel.lower().endswith((".tif", ".tiff")):
            raw = read_tiff_cube(path)
        elif rel.lower().endswith(".mat"):
            raw = np.asarray(pick_variable(load_mat(path), None, path))
        else:
            raise DataError(f"{path}: dc_mall reads .tif/.tiff or .mat files, not {os.path.splitext(rel)[1]!r}")
        cube = centre_crop(normalise_whole(raw.astype(np.float64)), self.params["size"])
        return _finish([cube], ["dc_mall"], default_rgb(cube.shape[-1]))

