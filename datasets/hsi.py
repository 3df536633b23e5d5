"""Hyperspectral cubes for the ``hsi`` denoising suite (SPECS section 3).

Every dataset loads to :class:`HsiData`: a tuple of clean cubes, each a float64 tensor
``(H, W, B)`` (bands last) normalised to [0, 1] *as a whole* (one min and one max per
scene, not per band), as the QRNN3D protocol does. Per-file quirks live here, never in
the methods:

===================  ================================  ======================================
dataset              file (under <data_root>/hsi)       quirk handled
===================  ================================  ======================================
``cave``             cave/chart_and_stuffed_toy_256     variable ``NRD``, uint16
``simu_indian``      simulated/simu_indian              variable ``Ori_H``, float64 in [0.05, 0.91]
``pavia``            abu/abu-beach-4-pavia              variable ``data``, float64
``abu``              abu/abu-<scene>                    ``data``, int16 with small negative values
                                                        (clipped to 0 before normalising)
``jasper_ridge``     unmixing/jasperRidge2_R198         ``Y`` is 198 x 10000 (bands x pixels), pixels
                                                        in MATLAB column-major order
``samson``           unmixing/samson_1                  ``V`` is 156 x 9025, column-major pixels
``hsi_mat``          any folder of .mat cubes           MATLAB v5 (scipy) or v7.3 (HDF5, h5py)
``hsi_synthetic``    none (generated from a seed)       -
===================  ================================  ======================================

Crops are dataset parameters: ``size`` is the edge of a square centre crop (0 = the whole
scene), so that the default grid stays affordable for BM4D (minutes per cube).
Files listed in ``<data_root>/SHA256SUMS`` are verified before use; a mismatch or a
missing file raises :class:`bench.errors.DataError` naming the file.
"""
from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass

import numpy as np
import torch

from bench.data_manifest import missing_data
from bench.errors import DataError
from bench.params import Param
from bench.registry import Dataset, register_dataset


@dataclass(frozen=True)
class HsiData:
    cubes: tuple[torch.Tensor, ...]  # each (H, W, B) float64 in [0, 1]
    names: tuple[str, ...]
    rgb_bands: tuple[int, int, int]  # bands shown as R, G, B in false-colour figures
    instance_id: str  # hash of the cubes


def cube_hash(cubes) -> str:
    h = hashlib.sha256()
    for c in cubes:
        h.update(np.ascontiguousarray(c.numpy() if isinstance(c, torch.Tensor) else c).tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- helpers
def normalise_whole(cube: np.ndarray, clip_negative: bool = False) -> np.ndarray:
    """(x - min) / (max - min) over the whole cube (one scale for every band)."""
    x = np.asarray(cube, dtype=np.float64)
    if clip_negative:
        x = np.maximum(x, 0.0)
    lo, hi = float(x.min()), float(x.max())
    if not np.isfinite([lo, hi]).all() or hi <= lo:
        raise ValueError(f"cannot normalise a constant or non-finite cube (min {lo}, max {hi})")
    return (x - lo) / (hi - lo)


#: the crop of a real scene (a crop under the 11-pixel SSIM window leaves that metric undefined)
CROP_SPEC = Param(int, min=0, help="edge of the centre crop; 0 or more than the scene: the whole scene")


def centre_crop(cube: np.ndarray, size: int) -> np.ndarray:
    """Square ``size`` x ``size`` spatial centre crop (0 or larger than the cube = whole)."""
    size = int(size)
    h, w = cube.shape[:2]
    if size <= 0 or (size >= h and size >= w):
        return cube
    sh, sw = min(size, h), min(size, w)
    top, left = (h - sh) // 2, (w - sw) // 2
    return cube[top:top + sh, left:left + sw]


def pixels_to_cube(matrix: np.ndarray, n_rows: int, n_cols: int) -> np.ndarray:
    """A bands x pixels matrix saved by MATLAB (pixel k = row + col * n_rows, column-major)
    to an (H, W, B) cube; checked against a false-colour picture of Jasper Ridge."""
    bands, n = matrix.shape
    if n != n_rows * n_cols:
        raise ValueError(f"{n} pixels is not {n_rows} x {n_cols}")
    return np.asarray(matrix).T.reshape((n_rows, n_cols, bands), order="F")


_SUMS_CACHE: dict[str, dict[str, str]] = {}
_VERIFIED: set[tuple[str, float, int]] = set()


def _read_sums(data_root: str) -> dict[str, str]:
    path = os.path.join(data_root, "SHA256SUMS")
    if path not in _SUMS_CACHE:
        sums = {}
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    parts = line.strip().split(None, 1)
                    if len(parts) == 2:
                        sums[os.path.normpath(parts[1].lstrip("*"))] = parts[0].lower()
        _SUMS_CACHE[path] = sums
    return _SUMS_CACHE[path]


def verify_checksum(data_root: str, relpath: str) -> None:
    """Compare a file with its line in <data_root>/SHA256SUMS, where there is one."""
    path = os.path.join(data_root, relpath)
    expected = _read_sums(data_root).get(os.path.normpath(relpath))
    if expected is None:
        return
    st = os.stat(path)
    token = (os.path.abspath(path), st.st_mtime, st.st_size)
    if token in _VERIFIED:
        return
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != expected:
        raise DataError(f"{path}: SHA-256 {h.hexdigest()[:16]}... does not match SHA256SUMS "
                        f"({expected[:16]}...); the file is corrupt or a different version: download it again")
    _VERIFIED.add(token)


def _data_file(data_root: str | None, relpath: str) -> str:
    if not data_root:
        raise DataError(f"{relpath}: no data root given (pass --data-root or set BENCH_DATA)")
    path = os.path.join(data_root, relpath)
    if not os.path.exists(path):
        raise DataError(missing_data(relpath, data_root))
    verify_checksum(data_root, relpath)
    return path


def load_mat(path: str) -> dict[str, np.ndarray]:
    """Variables of a MATLAB file, v5 (scipy) or v7.3 (HDF5 through h5py).

    HDF5 stores MATLAB's column-major arrays with the axes reversed, so every array read
    from a v7.3 file is transposed back to MATLAB's axis order."""
    import scipy.io

    try:
        d = scipy.io.loadmat(path)
        return {k: v for k, v in d.items() if not k.startswith("__")}
    except NotImplementedError:  # "Please use HDF reader for matlab v7.3 files"
        pass
    except Exception as e:  # noqa: BLE001 - a corrupt file
        if not _is_hdf5(path):
            raise DataError(f"{path}: not a readable MATLAB file ({type(e).__name__}: {e})") from e
    import h5py

    out = {}
    try:
        with h5py.File(path, "r") as f:
            for k, v in f.items():
                if isinstance(v, h5py.Dataset) and not k.startswith("#"):
                    arr = v[()]
                    out[k] = np.transpose(arr) if arr.ndim > 1 else arr
    except OSError as e:
        raise DataError(f"{path}: not a readable MATLAB v7.3 (HDF5) file ({e})") from e
    return out


def _is_hdf5(path: str) -> bool:
    try:
        import h5py
        return h5py.is_hdf5(path)
    except Exception:  # noqa: BLE001
        return False


def pick_variable(variables: dict[str, np.ndarray], name: str | None, path: str) -> np.ndarray:
    if name:
        if name not in variables:
            raise DataError(f"{path}: no variable {name!r} (has {', '.join(sorted(variables)) or 'none'})")
        return variables[name]
    cubes = {k: v for k, v in variables.items() if getattr(v, "ndim", 0) == 3}
    if not cubes:
        raise DataError(f"{path}: no 3-D variable (has {', '.join(sorted(variables)) or 'none'})")
    return max(cubes.values(), key=lambda v: v.size)


def _finish(cubes: list[np.ndarray], names: list[str], rgb: tuple[int, int, int]) -> HsiData:
    tensors = tuple(torch.from_numpy(np.ascontiguousarray(c, dtype=np.float64)) for c in cubes)
    bands = tensors[0].shape[-1]
    rgb = tuple(min(max(int(b), 0), bands - 1) for b in rgb)
    return HsiData(cubes=tensors, names=tuple(names), rgb_bands=rgb, instance_id=cube_hash(tensors))


def default_rgb(bands: int) -> tuple[int, int, int]:
    """Bands at 80 %, 50 % and 20 % of the range as R, G, B (visible range cubes: ~640,
    550, 460 nm)."""
    return (int(round(0.8 * (bands - 1))), int(round(0.5 * (bands - 1))), int(round(0.2 * (bands - 1))))


# --------------------------------------------------------------------------- real cubes
class _MatCube(Dataset):
    """One scene from a .mat file under <data_root>/hsi, centre-cropped."""

    suite = "hsi"
    needs_data = True
    relpath: str = ""
    variable: str = ""
    clip_negative = False
    parameter_specs = {"size": CROP_SPEC}
    rgb: tuple[int, int, int] | None = None

    def raw(self, data_root) -> np.ndarray:
        path = _data_file(data_root, self.relpath)
        return np.asarray(pick_variable(load_mat(path), self.variable, path))

    def load(self, data_root=None) -> HsiData:
        cube = normalise_whole(self.raw(data_root), clip_negative=self.clip_negative)
        cube = centre_crop(cube, self.params["size"])
        return _finish([cube], [self.cube_name()], self.rgb or default_rgb(cube.shape[-1]))

    def cube_name(self) -> str:
        """The cube's name in rows and captions."""
        return self.name

    def scene_ids(self) -> tuple[str, ...]:
        """The scenes the dataset's cubes come from, named as the training split names them
        (checkpoint metas' ``train_scenes``; no file is read): what a trained-here row must
        not be tested on (:meth:`bench.suites.hsi.HsiSuite.skip_reason`)."""
        return (self.cube_name(),)


#: the CAVE scenes under <data_root>/hsi/cave (256x256x31, variable NRD, uint16)
CAVE_SCENES = {"chart_and_stuffed_toy": "hsi/cave/chart_and_stuffed_toy_256.mat",
               "cloth": "hsi/cave/cloth_256.mat",
               "real_and_fake_apples": "hsi/cave/real_and_fake_apples_256.mat"}


@register_dataset
class Cave(_MatCube):
    name = "cave"
    description = ("CAVE scenes, 256x256, 31 bands 400-700 nm (variable NRD, uint16): 'chart and stuffed toy' "
                   "(default), 'cloth', 'real and fake apples'")
    parameters = {"size": 128, "scene": "chart_and_stuffed_toy"}
    parameter_specs = {"size": CROP_SPEC, "scene": Param(str, choices=tuple(CAVE_SCENES))}
    variable = "NRD"
    rgb = (25, 15, 5)  # 650, 550, 450 nm

    @property
    def relpath(self) -> str:  # type: ignore[override]
        return CAVE_SCENES[str(self.params["scene"])]

    def cube_name(self) -> str:
        scene = str(self.params["scene"])
        return self.name if scene == "chart_and_stuffed_toy" else f"{self.name}:{scene}"

    def scene_ids(self) -> tuple[str, ...]:
        return (f"{self.name}:{self.params['scene']}",)


@register_dataset
class SimuIndian(_MatCube):
    name = "simu_indian"
    description = "simulated Indian Pines (LRTDTV/RCTV clean reference), 145x145x224 (variable Ori_H)"
    parameters = {"size": 64}
    relpath = "hsi/simulated/simu_indian.mat"
    variable = "Ori_H"


@register_dataset
class Pavia(_MatCube):
    name = "pavia"
    description = "ROSIS Pavia scene from the ABU set, 100x100x102 float (variable data)"
    parameters = {"size": 64}
    relpath = "hsi/abu/abu-beach-4-pavia.mat"
    variable = "data"
    rgb = (60, 30, 10)


@register_dataset
class PaviaUniversity(_MatCube):
    name = "pavia_university"
    description = ("ROSIS Pavia University, a 50x50x103 subset (hsi_toolkit, variable paviaU_subimg, uint16; "
                   "where in the scene is not recorded)")
    parameters = {"size": 0}
    relpath = "hsi/pavia_university/paviaU_sub50.mat"
    variable = "paviaU_subimg"
    rgb = (60, 30, 10)


ABU_SCENES = tuple([f"airport-{i}" for i in range(1, 5)] + [f"beach-{i}" for i in range(1, 4)]
                   + [f"urban-{i}" for i in range(1, 6)])


@register_dataset
class Abu(Dataset):
    name = "abu"
    suite = "hsi"
    needs_data = True
    description = ("ABU airport/beach/urban scenes (AVIRIS/ROSIS), 100x100 (beach-1 150x150), 188-207 "
                   "bands; int16 files carry small negative values, clipped to 0; scene 'all' = all 12")
    parameters = {"scene": "urban-1", "size": 64}
    parameter_specs = {"scene": Param(str, choices=ABU_SCENES + ("all",)), "size": CROP_SPEC}

    def load(self, data_root=None) -> HsiData:
        scene = str(self.params["scene"])
        scenes = ABU_SCENES if scene == "all" else (scene,)
        cubes, names = [], []
        for s in scenes:
            if s not in ABU_SCENES:
                raise DataError(f"abu: unknown scene {s!r}; valid: {', '.join(ABU_SCENES)}, all")
            rel = f"hsi/abu/abu-{s}.mat"
            path = _data_file(data_root, rel)
            raw = np.asarray(pick_variable(load_mat(path), "data", path))
            cubes.append(centre_crop(normalise_whole(raw, clip_negative=True), self.params["size"]))
            names.append(f"abu-{s}")
        return _finish(cubes, names, default_rgb(cubes[0].shape[-1]))

    def scene_ids(self) -> tuple[str, ...]:
        scene = str(self.params["scene"])
        return tuple(f"abu-{s}" for s in (ABU_SCENES if scene == "all" else (scene,)))


class _PixelMatrix(_MatCube):
    """Unmixing files: a bands x pixels matrix in MATLAB column-major pixel order."""

    n_rows = n_cols = 0

    def raw(self, data_root) -> np.ndarray:
        path = _data_file(data_root, self.relpath)
        variables = load_mat(path)
        matrix = np.asarray(pick_variable(variables, self.variable, path), dtype=np.float64)
        return pixels_to_cube(matrix, self.n_rows, self.n_cols)


@register_dataset
class JasperRidge(_PixelMatrix):
    name = "jasper_ridge"
    description = "Jasper Ridge 100x100x198 (Y: 198 bands x 10000 pixels, MATLAB column-major, uint16)"
    parameters = {"size": 64}
    relpath = "hsi/unmixing/jasperRidge2_R198.mat"
    variable = "Y"
    n_rows = n_cols = 100
    rgb = (60, 30, 10)  # ~ 800, 620, 480 nm of the 380-2500 nm AVIRIS range after band removal


@register_dataset
class Samson(_PixelMatrix):
    name = "samson"
    description = "Samson 95x95x156 (V: 156 bands x 9025 pixels, MATLAB column-major, float in [0,1])"
    parameters = {"size": 64}
    relpath = "hsi/unmixing/samson_1.mat"
    variable = "V"
    n_rows = n_cols = 95
    rgb = (80, 50, 20)


#: the named split of the shipped cubes: no scene in both (a network trained on ``train`` is
#: tested on scenes it never saw; the Pavia cubes are ROSIS, a sensor absent from ``train``)
SPLITS = {
    "train": (("cave", {"scene": "cloth"}), ("cave", {"scene": "real_and_fake_apples"}), ("abu", {"scene": "all"}),
              ("jasper_ridge", {}), ("samson", {}), ("simu_indian", {})),
    "test": (("cave", {"scene": "chart_and_stuffed_toy"}), ("pavia", {}), ("pavia_university", {})),
}


def scene_names(dataset, data: HsiData) -> list[str]:
    """One name per loaded cube of ``dataset`` as the split names its scenes (its
    ``scene_ids``: CAVE scenes as ``cave:<scene>``; the names training checkpoints record)."""
    ids = list(dataset.scene_ids())
    if len(ids) != len(data.names):
        raise DataError(f"{dataset.name}: {len(data.names)} cube(s) loaded but {len(ids)} scene name(s)")
    return ids


@register_dataset
class HsiSplit(Dataset):
    """The named train/test split of the shipped cubes (:data:`SPLITS`): train = CAVE cloth
    and real_and_fake_apples, the 12 ABU scenes, Jasper Ridge, Samson and the simulated
    Indian Pines; test = CAVE chart_and_stuffed_toy, the ROSIS Pavia scene of ABU and the
    Pavia University subset. Every cube is centre-cropped to ``size`` (0: whole scenes; the
    Pavia University subset is 50x50). The cubes' names (in every table caption) say which
    scenes a row covers; a user trains on ICVL as downloaded with ``hsi_mat`` instead."""

    name = "hsi_split"
    suite = "hsi"
    needs_data = True
    description = ("the named split of the shipped cubes: train (CAVE cloth + apples, ABU, Jasper Ridge, Samson, "
                   "simulated Indian Pines) or test (CAVE chart_and_stuffed_toy, Pavia, Pavia University)")
    parameters = {"split": "test", "size": 64}
    parameter_specs = {"split": Param(str, choices=tuple(SPLITS)), "size": CROP_SPEC}

    def load(self, data_root=None) -> HsiData:
        from bench import registry as R

        cubes, names = [], []
        for dataset, params in SPLITS[str(self.params["split"])]:
            member = R.DATASETS[dataset](**params, size=self.params["size"])
            data = member.load(data_root)
            cubes += [c.numpy() for c in data.cubes]
            names += scene_names(member, data)
        return _finish(cubes, names, default_rgb(cubes[0].shape[-1]))

    def scene_ids(self) -> tuple[str, ...]:
        from bench import registry as R
        return tuple(s for dataset, params in SPLITS[str(self.params["split"])]
                     for s in R.DATASETS[dataset](**params).scene_ids())


@register_dataset
class HsiMatFolder(Dataset):
    """Cubes as users download them (ICVL, Washington DC Mall, CAVE .mat): every ``*.mat``
    in ``<data_root>/<folder>``, MATLAB v5 or v7.3 (HDF5), centre-cropped (ICVL test
    protocol: 512x512x31 centre crop)."""

    name = "hsi_mat"
    suite = "hsi"
    needs_data = True
    description = "every *.mat cube of <data_root>/<folder> (v5 or v7.3/HDF5), centre crop `size`"
    parameters = {"folder": "hsi/icvl", "variable": "rad", "size": 512, "band_axis": -1, "max_files": 0}
    parameter_specs = {"folder": Param(str, help="under the data root"),
                       "variable": Param(str, allow=(None,), help="none or '': the largest 3-D variable"),
                       "size": CROP_SPEC, "band_axis": Param(int, choices=(-3, -2, -1, 0, 1, 2)),
                       "max_files": Param(int, min=0, help="0: every file")}

    def scene_ids(self) -> None:
        return None   # the user's files: not known without reading the folder (no check)

    def load(self, data_root=None) -> HsiData:
        if not data_root:
            raise DataError("hsi_mat: no data root given (pass --data-root or set BENCH_DATA)")
        folder = os.path.join(data_root, self.params["folder"])
        files = sorted(glob.glob(os.path.join(folder, "*.mat")))
        if int(self.params["max_files"]) > 0:
            files = files[: int(self.params["max_files"])]
        if not files:
            raise DataError(f"{folder}: no .mat files found")
        cubes, names = [], []
        for path in files:
            rel = os.path.relpath(path, data_root)
            verify_checksum(data_root, rel)
            raw = np.asarray(pick_variable(load_mat(path), self.params["variable"] or None, path))
            if raw.ndim != 3:
                raise DataError(f"{path}: expected a 3-D cube, got shape {raw.shape}")
            raw = np.moveaxis(raw, int(self.params["band_axis"]), -1)
            cubes.append(centre_crop(normalise_whole(raw, clip_negative=True), self.params["size"]))
            names.append(os.path.splitext(os.path.basename(path))[0])
        return _finish(cubes, names, default_rgb(cubes[0].shape[-1]))


# --------------------------------------------------------------------------- synthetic
def smooth_spectra(n: int, bands: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` smooth reflectance-like spectra on ``bands`` samples of [0, 1]: a baseline,
    two or three absorption/reflection bumps and, for some, a red-edge-like step."""
    t = np.linspace(0.0, 1.0, bands)
    out = np.empty((n, bands))
    for i in range(n):
        s = rng.uniform(0.1, 0.4) + rng.uniform(-0.15, 0.15) * t
        for _ in range(rng.integers(2, 4)):
            s += rng.uniform(-0.2, 0.3) * np.exp(-0.5 * ((t - rng.uniform(0, 1)) / rng.uniform(0.05, 0.2)) ** 2)
        if rng.random() < 0.5:
            s += rng.uniform(0.1, 0.4) / (1 + np.exp(-(t - rng.uniform(0.3, 0.7)) / 0.03))
        out[i] = np.clip(s, 0.02, None)
    return out


def structured_abundances(h: int, w: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W, n) abundances summing to one: piecewise regions (Voronoi cells with sharp
    edges) blended with smooth random fields, as in a natural scene."""
    from scipy.ndimage import gaussian_filter

    n_seeds = max(n * 2, 6)
    seeds = rng.uniform(0, 1, size=(n_seeds, 2)) * [h, w]
    label = rng.integers(0, n, size=n_seeds)
    yy, xx = np.mgrid[0:h, 0:w]
    d = (yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2
    region = label[np.argmin(d, axis=-1)]
    logits = 2.5 * np.eye(n)[region]
    for k in range(n):
        logits[..., k] += 6.0 * gaussian_filter(rng.standard_normal((h, w)), sigma=max(h, w) / 10, mode="wrap") \
            * (max(h, w) / 10)
    logits -= logits.max(axis=-1, keepdims=True)
    a = np.exp(logits)
    return a / a.sum(axis=-1, keepdims=True)


def synthetic_cube(height: int, width: int, bands: int, n_endmembers: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    from scipy.ndimage import gaussian_filter

    spectra = smooth_spectra(n_endmembers, bands, rng)
    abund = structured_abundances(height, width, n_endmembers, rng)
    cube = abund @ spectra
    shade = 1.0 + 0.3 * gaussian_filter(rng.standard_normal((height, width)), sigma=max(height, width) / 6,
                                        mode="wrap") * (max(height, width) / 6)
    texture = 1.0 + 0.08 * gaussian_filter(rng.standard_normal((height, width)), sigma=1.0) * 2.0
    cube *= (np.clip(shade, 0.5, 1.5) * texture)[..., None]
    return normalise_whole(cube)


@register_dataset
class HsiSynthetic(Dataset):
    """Seeded synthetic cubes, no download: smooth reflectance-like spectra mixed by
    spatially structured abundances (sharp region edges plus smooth variation) and a
    smooth illumination shading; each cube normalised to [0, 1] as a whole."""

    name = "hsi_synthetic"
    suite = "hsi"
    description = "seeded synthetic cubes: smooth spectra mixed by structured abundances (no download)"
    parameters = {"n_cubes": 2, "size": 64, "bands": 31, "n_endmembers": 5, "instance_seed": 0}
    parameter_specs = {"n_cubes": Param(int, min=1), "size": Param(int, min=2),
                       "bands": Param(int, min=1), "n_endmembers": Param(int, min=1),
                       "instance_seed": Param(int, min=0)}

    def load(self, data_root=None) -> HsiData:
        p = self.params
        cubes = [synthetic_cube(int(p["size"]), int(p["size"]), int(p["bands"]), int(p["n_endmembers"]),
                                int(p["instance_seed"]) * 1000 + i) for i in range(int(p["n_cubes"]))]
        return _finish(cubes, [f"synthetic-{i}" for i in range(len(cubes))], default_rgb(int(p["bands"])))

    def scene_ids(self) -> tuple[str, ...]:
        return ()   # generated: no scene of any split
