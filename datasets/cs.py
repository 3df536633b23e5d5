"""Image compressive sensing data (SPECS section 4): test images, sampling matrices, noise.

Every dataset returns :class:`CsData`: luminance images as the ISTA-Net authors' test script
reads them (the Y channel of YCrCb, 8-bit, divided by 255: float64 in [0, 1], shape (H, W))
and the :class:`SamplingMatrix` the cell measures them with. The CS ratio and the matrix are
dataset parameters, so a table's ratio columns are datasets of one suite.

Sampling matrices (:func:`sampling_matrix`), named by ``matrix``:

* ``authors``: the ISTA-Net authors' ``phi_0_<r>_1089.mat`` and their least-squares initial
  map ``Initialization_Matrix_<r>.mat`` (``Qinit``, 1089 x m) from
  ``<data root>/cs/sampling_matrix`` (ratios 1, 4, 10, 25, 30, 40 %); the published
  ISTA-Net weights were trained with exactly these;
* ``generated``: the authors' recipe from a seed (:func:`generate_phi`: an m x 1089 Gaussian
  matrix whose rows are orthonormalised) with Qinit fitted by least squares on training
  blocks (:func:`fit_qinit`, the authors' formula Qinit = X Y^T (Y Y^T)^-1). The authors
  fitted on their 88,912 blocks of the 91-image set, which is not available; ``set11``
  fits on the non-overlapping 33x33 blocks of ``cs/train400`` (10,000 blocks of 400 BSD
  images: the train400 substitution every caption names), ``cs_synthetic`` on seeded
  synthetic training images (no download). Fitted maps are cached under
  ``results/cache/cs`` (:func:`bench.paths.cache_dir`; never committed);
* ``auto`` (default): ``authors`` where their file exists for the ratio (1-40 %), else
  ``generated`` (50 %).

The degradation :class:`MeasurementNoise` adds white Gaussian noise to the measurements
(the suite applies it after y = Phi x, per block).
"""
from __future__ import annotations

import glob
import hashlib
import math
import os
from dataclasses import dataclass

import numpy as np
import torch

from bench.datasets.gaussian import Gaussian
from bench.data_identity import verify
from bench.data_manifest import missing_data
from bench.errors import DataError
from bench.params import Param
from bench.registry import Dataset, Degradation, register_dataset, register_degradation

BLOCK = 33
N_PIXELS = BLOCK * BLOCK
#: CS ratio (%) -> measurements per 33x33 block (the authors' ratio_dict)
MEASUREMENTS = {1: 10, 4: 43, 10: 109, 25: 272, 30: 327, 40: 436, 50: 545}
RATIOS = tuple(MEASUREMENTS)
#: ratios whose matrix the authors released (``<data root>/cs/sampling_matrix``)
AUTHORS_RATIOS = (1, 4, 10, 25, 30, 40)
MATRIX_KINDS = ("auto", "authors", "generated")
#: the SSIM metric's window (7x7, bench.metrics.cs): an image must be at least this wide and high
MIN_EDGE = 7
SET11 = ("Monarch", "Parrots", "barbara", "boats", "cameraman", "fingerprint", "flinstones", "foreman",
         "house", "lena256", "peppers256")
TRAIN400_NOTE = ("Qinit fitted on the non-overlapping 33x33 blocks of train400 (400 BSD images, 10,000 blocks) "
                 "in place of the authors' 88,912 blocks of the 91-image set, which is not available")


@dataclass(frozen=True)
class SamplingMatrix:
    """A block sampling matrix and its initial map."""

    ratio: int                 # CS ratio, percent
    phi: torch.Tensor          # (m, 1089) float64, orthonormal rows
    qinit: torch.Tensor        # (1089, m) float64: x0 = Qinit y per block
    kind: str                  # "authors" or "generated"
    source: str                # where it comes from, in words (a caption names it)
    seed: int | None = None    # the generator's seed (generated matrices)

    @property
    def digest(self) -> str:
        """SHA-256 (16 hex digits) of Phi's and Qinit's float64 bytes."""
        h = hashlib.sha256()
        for t in (self.phi, self.qinit):
            h.update(str(tuple(t.shape)).encode())
            h.update(t.to(torch.float64).contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    @property
    def label(self) -> str:
        """``authors`` or ``generated(seed=S)``: how a row names the matrix."""
        return self.kind if self.kind == "authors" else f"{self.kind}(seed={self.seed})"


@dataclass(frozen=True)
class CsData:
    names: tuple[str, ...]
    images: tuple[torch.Tensor, ...]   # (H, W) float64 in [0, 1]: 8-bit luminance / 255
    matrix: SamplingMatrix
    source: str                        # where the images come from (folder or generator)
    instance_id: str                   # hash of the images and the matrix

    def __len__(self) -> int:
        return len(self.images)


def data_hash(images, matrix: SamplingMatrix) -> str:
    h = hashlib.sha256(matrix.digest.encode())
    for im in images:
        h.update(str(tuple(im.shape)).encode())
        h.update(im.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- images
def luminance_u8(rgb: np.ndarray) -> np.ndarray:
    """The Y channel of OpenCV's ``cvtColor(BGR2YCrCb)`` on 8-bit RGB (H, W, 3): the
    fixed-point BT.601 weights (4899, 9617, 1868) / 2^14, rounded half up. The weights sum
    to 2^14, so a gray image (R = G = B) is returned unchanged."""
    x = rgb.astype(np.int64)
    y = (x[..., 0] * 4899 + x[..., 1] * 9617 + x[..., 2] * 1868 + (1 << 13)) >> 14
    return y.astype(np.uint8)


def read_luminance(path: str) -> np.ndarray:
    """An image file as the authors' test script reads it: 8-bit gray kept as it is,
    palette and colour images expanded to RGB and reduced to luminance
    (:func:`luminance_u8`); 16-bit images are refused (the test images are 8-bit)."""
    from PIL import Image

    try:
        im = Image.open(path)
        im.load()
    except Exception as e:  # noqa: BLE001 - any unreadable file is a data error
        raise DataError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    if im.mode == "L":
        return np.array(im, dtype=np.uint8)
    if im.mode in ("P", "RGB", "RGBA", "LA", "PA"):
        return luminance_u8(np.array(im.convert("RGB"), dtype=np.uint8))
    raise DataError(f"{path}: image mode {im.mode} (expected 8-bit gray, palette or RGB)")


def _folder(data_root: str | None, relpath: str) -> str:
    if not data_root:
        raise DataError(f"{relpath}: no data root given (pass --data-root or set BENCH_DATA)")
    path = os.path.join(data_root, relpath)
    if not os.path.isdir(path):
        raise DataError(missing_data(relpath, data_root))
    return path


def synthetic_image(h: int, w: int, generator: torch.Generator) -> torch.Tensor:
    """A seeded piecewise-smooth test image in [0, 1] (float64, quantised to 8 bits like
    the real ones): a smooth gradient, a few rectangles and discs of random levels, and a
    faint texture, so that edges, flat regions and fine detail are all present."""
    g = generator
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h, dtype=torch.float64),
                            torch.linspace(0, 1, w, dtype=torch.float64), indexing="ij")
    a = torch.rand(3, generator=g, dtype=torch.float64)
    img = 0.2 + 0.3 * a[0] * xx + 0.3 * a[1] * yy
    for _ in range(3):
        r = torch.rand(5, generator=g, dtype=torch.float64)
        top, left = sorted((float(r[0]), float(r[1])))
        inside = (yy >= top) & (yy <= top + 0.5 * r[2]) & (xx >= left) & (xx <= left + 0.5 * r[3])
        img = torch.where(inside, 0.15 + 0.7 * r[4], img)
    for _ in range(2):
        r = torch.rand(4, generator=g, dtype=torch.float64)
        inside = (yy - r[0]) ** 2 + (xx - r[1]) ** 2 <= (0.08 + 0.2 * r[2]) ** 2
        img = torch.where(inside, 0.1 + 0.8 * r[3], img)
    f = 4 + 10 * torch.rand(2, generator=g, dtype=torch.float64)
    img = img + 0.04 * torch.sin(2 * math.pi * f[0] * xx) * torch.sin(2 * math.pi * f[1] * yy)
    img = img + 0.01 * torch.randn(h, w, generator=g, dtype=torch.float64)
    return torch.round(img.clamp(0, 1) * 255) / 255


# --------------------------------------------------------------------------- matrices
def generate_phi(ratio: int, seed: int) -> torch.Tensor:
    """The authors' recipe for a sampling matrix, from ``seed``: an m x 1089 matrix of
    i.i.d. N(0, 1) entries (float64, torch's generator) whose rows are orthonormalised by a
    QR decomposition of its transpose (signs fixed so that R has a positive diagonal)."""
    m = MEASUREMENTS[int(ratio)]
    g = torch.Generator().manual_seed(int(seed))
    a = torch.randn(m, N_PIXELS, generator=g, dtype=torch.float64)
    q, r = torch.linalg.qr(a.T)             # (1089, m), orthonormal columns
    q = q * torch.sign(torch.diagonal(r))[None, :]
    return q.T.contiguous()


def fit_qinit(phi: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
    """The authors' initial map: the least-squares linear map from measurements to blocks,
    Qinit = X Y^T (Y Y^T)^-1 with X the training blocks (1089 x N, columns) and Y = Phi X;
    ``blocks`` is (N, 1089), one flattened block per row. Solved as a least-squares problem
    (the same minimiser, better conditioned than forming the inverse)."""
    x = blocks.to(torch.float64)
    y = x @ phi.T                           # (N, m)
    if y.shape[0] < y.shape[1]:
        raise DataError(f"fit_qinit: {y.shape[0]} training blocks for {y.shape[1]} measurements: need at least as many")
    sol = torch.linalg.lstsq(y, x, driver="gelsd").solution   # (m, 1089): y @ sol ~ x
    return sol.T.contiguous()


def training_blocks(images) -> torch.Tensor:
    """The non-overlapping 33x33 blocks of each image (top-left aligned; a remainder
    narrower than a block is dropped), flattened row-major: (N, 1089) float64."""
    out = []
    for im in images:
        h, w = (s - s % BLOCK for s in im.shape)
        if h and w:
            x = im[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).transpose(1, 2)
            out.append(x.reshape(-1, N_PIXELS))
    if not out:
        raise DataError("no training image holds a whole 33x33 block")
    return torch.cat(out).to(torch.float64)


def train400_images(data_root: str | None) -> tuple[list[torch.Tensor], str]:
    """The train400 images (luminance / 255) and a digest of their bytes."""
    folder = _folder(data_root, os.path.join("cs", "train400"))
    files = sorted(glob.glob(os.path.join(folder, "*.png")))
    if not files:
        raise DataError(f"{folder}: no .png training images")
    h = hashlib.sha256()
    images = []
    for f in files:
        verify(f, data_root)
        a = read_luminance(f)
        h.update(os.path.basename(f).encode())
        h.update(a.tobytes())
        images.append(torch.from_numpy(a.astype(np.float64) / 255.0))
    return images, h.hexdigest()[:16]


def synthetic_training_images(seed: int, n: int = 48, size: int = 165) -> list[torch.Tensor]:
    """Seeded synthetic training images for the synthetic set's Qinit (no download)."""
    g = torch.Generator().manual_seed(int(seed) + 7_919)
    return [synthetic_image(size, size, g) for _ in range(n)]


def _cached(name: str, compute) -> torch.Tensor:
    """A fitted map cached as ``results/cache/cs/<name>.npy`` (recomputed when absent or
    unreadable; written atomically)."""
    from bench import paths

    folder = paths.cache_dir("cs")
    path = os.path.join(folder, name + ".npy")
    if os.path.exists(path):
        try:
            return torch.from_numpy(np.load(path, allow_pickle=False))
        except (ValueError, OSError, EOFError):
            pass
    value = compute()
    try:
        os.makedirs(folder, exist_ok=True)
        tmp = path + f".{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            np.save(f, value.numpy())
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only checkout: computed again next time
    return value


def _load_mat(path: str, key: str, data_root: str | None = None) -> torch.Tensor:
    import scipy.io as sio

    if not os.path.isfile(path):
        raise DataError(f"{path}: not found; the authors' sampling matrices belong under "
                        f"<data root>/cs/sampling_matrix (github jianzhangcs/ISTA-Net-PyTorch @ f699040, "
                        f"sampling_matrix/; `python -m bench data fetch cs_sampling_matrix`)")
    try:
        mat = sio.loadmat(path)
    except Exception as e:  # noqa: BLE001
        raise DataError(f"{path}: not a readable MATLAB file ({type(e).__name__}: {e})") from None
    if key not in mat:
        raise DataError(f"{path}: no variable {key!r}")
    out = np.asarray(mat[key], dtype=np.float64)
    if not np.isfinite(out).all():
        raise DataError(f"{path}: {int((~np.isfinite(out)).sum())} non-finite value(s) (NaN or infinity) in {key}; "
                        f"the file is corrupt: `python -m bench data fetch cs_sampling_matrix` downloads it again")
    return torch.from_numpy(out)


def _verified_mat(path: str, key: str, data_root: str | None) -> torch.Tensor:
    if os.path.isfile(path):
        verify(path, data_root)
    return _load_mat(path, key)


def authors_matrix(ratio: int, data_root: str | None) -> SamplingMatrix:
    """The authors' Phi and Qinit for ``ratio`` from ``<data root>/cs/sampling_matrix``."""
    ratio = int(ratio)
    if ratio not in AUTHORS_RATIOS:
        raise DataError(f"the ISTA-Net authors released no sampling matrix for ratio {ratio} % (they did for "
                        f"{', '.join(map(str, AUTHORS_RATIOS))}); use matrix=generated or matrix=auto")
    folder = _folder(data_root, os.path.join("cs", "sampling_matrix"))
    phi = _verified_mat(os.path.join(folder, f"phi_0_{ratio}_1089.mat"), "phi", data_root)
    qinit = _verified_mat(os.path.join(folder, f"Initialization_Matrix_{ratio}.mat"), "Qinit", data_root)
    m = MEASUREMENTS[ratio]
    if tuple(phi.shape) != (m, N_PIXELS) or tuple(qinit.shape) != (N_PIXELS, m):
        raise DataError(f"{folder}: ratio {ratio}: Phi {tuple(phi.shape)} and Qinit {tuple(qinit.shape)}, expected "
                        f"({m}, {N_PIXELS}) and ({N_PIXELS}, {m})")
    return SamplingMatrix(ratio=ratio, phi=phi, qinit=qinit, kind="authors",
                          source=f"the ISTA-Net authors' matrix and Qinit for {ratio} % (cs/sampling_matrix)")


def generated_matrix(ratio: int, seed: int, training: str, data_root: str | None = None) -> SamplingMatrix:
    """A matrix of the authors' recipe (:func:`generate_phi`) with Qinit fitted on
    ``training`` blocks: ``train400`` (the data root's) or ``synthetic`` (seeded, no
    download); the fit is cached (:func:`_cached`)."""
    phi = generate_phi(ratio, seed)
    if training == "train400":
        images, digest = train400_images(data_root)
        qinit = _cached(f"qinit_r{ratio}_seed{seed}_train400-{digest}", lambda: fit_qinit(phi, training_blocks(images)))
        source = (f"generated: Gaussian {MEASUREMENTS[ratio]}x{N_PIXELS}, rows orthonormalised, seed {seed}; "
                  + TRAIN400_NOTE)
    elif training == "synthetic":
        qinit = fit_qinit(phi, training_blocks(synthetic_training_images(seed)))
        source = (f"generated: Gaussian {MEASUREMENTS[ratio]}x{N_PIXELS}, rows orthonormalised, seed {seed}; "
                  f"Qinit fitted on seeded synthetic training images")
    else:
        raise ValueError(f"training {training!r}: expected train400 or synthetic")
    return SamplingMatrix(ratio=int(ratio), phi=phi, qinit=qinit, kind="generated", source=source, seed=int(seed))


def matrix_files(ratio: int, kind: str, data_root: str | None, training: str = "train400") -> list[str]:
    """The data files :func:`sampling_matrix` reads for ``ratio`` and ``kind`` (without
    reading them): the authors' two .mat files, or the train400 images a generated matrix's
    Qinit is fitted on (none for synthetic training)."""
    if not data_root:
        return []
    if kind == "auto":
        kind = "authors" if int(ratio) in AUTHORS_RATIOS else "generated"
    if kind == "authors":
        folder = os.path.join(data_root, "cs", "sampling_matrix")
        return [os.path.join(folder, f"phi_0_{int(ratio)}_1089.mat"),
                os.path.join(folder, f"Initialization_Matrix_{int(ratio)}.mat")]
    if training == "train400":
        folder = os.path.join(data_root, "cs", "train400")
        return sorted(glob.glob(os.path.join(folder, "*.png"))) or [folder]
    return []


def sampling_matrix(ratio: int, kind: str, seed: int, data_root: str | None, training: str = "train400"
                    ) -> SamplingMatrix:
    """The matrix ``kind`` (auto, authors, generated) names for ``ratio`` (module docstring)."""
    if kind == "auto":
        kind = "authors" if int(ratio) in AUTHORS_RATIOS else "generated"
    if kind == "authors":
        return authors_matrix(ratio, data_root)
    return generated_matrix(ratio, seed, training, data_root)


# --------------------------------------------------------------------------- datasets
_MATRIX_SPECS = {
    "ratio": Param(int, choices=RATIOS, help="CS ratio in percent (m = 10, 43, 109, 272, 327, 436, 545)"),
    "matrix": Param(str, choices=MATRIX_KINDS,
                    help="auto: the authors' matrix where released (1-40 %), else generated; authors; generated"),
    "matrix_seed": Param(int, min=0, help="seed of a generated matrix"),
}


def _names(text: str) -> list[str]:
    """``Monarch+Parrots`` -> ["Monarch", "Parrots"] ("" -> [])."""
    return [n for n in str(text).split("+") if n]


@register_dataset
class Set11(Dataset):
    """Set11, the 11 test images of CS papers (9 of 256x256, fingerprint and flinstones
    512x512), from ``<data root>/cs/Set11``, with the matrix of ``ratio``."""

    name = "set11"
    suite = "cs"
    needs_data = True
    description = "Set11 (11 gray test images, luminance / 255) measured at a CS ratio; matrix: the authors' (1-40 %) or generated"
    parameters = {"ratio": 25, "matrix": "auto", "matrix_seed": 0, "limit": 0, "names": ""}
    parameter_specs = {**_MATRIX_SPECS,
                       "limit": Param(int, min=0, help="the first N images in name order (0: all)"),
                       "names": Param(str, where=lambda v: all(n in SET11 for n in _names(v)),
                                      where_help="image names joined by '+', each one of " + ", ".join(SET11),
                                      help="only these images, e.g. Monarch+Parrots (empty: all)")}

    def wanted(self) -> list[str]:
        """The names of the images the dataset reads, in order."""
        wanted = _names(self.params["names"]) or list(SET11)
        if int(self.params["limit"]):
            wanted = wanted[: int(self.params["limit"])]
        return wanted

    def files(self, data_root=None) -> tuple[str, ...]:
        if not data_root:
            return ()
        folder = os.path.join(data_root, "cs", "Set11")
        return tuple([os.path.join(folder, n + ".tif") for n in self.wanted()]
                     + matrix_files(int(self.params["ratio"]), self.params["matrix"], data_root))

    def load(self, data_root=None) -> CsData:
        folder = _folder(data_root, os.path.join("cs", "Set11"))
        wanted = self.wanted()
        images = []
        for n in wanted:
            path = os.path.join(folder, n + ".tif")
            if not os.path.isfile(path):
                raise DataError(f"{path}: not found (Set11 has {', '.join(SET11)}; `python -m bench data fetch "
                                f"set11` gets them)")
            verify(path, data_root)
            lum = read_luminance(path)
            if min(lum.shape) < MIN_EDGE:
                raise DataError(f"{path}: {lum.shape[1]}x{lum.shape[0]} pixels, smaller than the {MIN_EDGE}x{MIN_EDGE} "
                                f"window of the SSIM metric (Set11's images are 256x256 or 512x512; `python -m bench "
                                f"data fetch set11` gets them)")
            images.append(torch.from_numpy(lum.astype(np.float64) / 255.0))
        matrix = sampling_matrix(int(self.params["ratio"]), self.params["matrix"], int(self.params["matrix_seed"]),
                                 data_root, training="train400")
        return CsData(names=tuple(wanted), images=tuple(images), matrix=matrix, source=folder,
                      instance_id=data_hash(images, matrix))


@register_dataset
class CsSynthetic(Dataset):
    """Seeded synthetic images (:func:`synthetic_image`) measured with a generated matrix
    whose Qinit is fitted on seeded synthetic training images: no download needed."""

    name = "cs_synthetic"
    suite = "cs"
    description = "seeded piecewise-smooth images with a generated matrix (Qinit fitted on synthetic images); no download"
    parameters = {"ratio": 25, "n_images": 4, "size": 96, "instance_seed": 0, "matrix_seed": 0}
    parameter_specs = {"ratio": _MATRIX_SPECS["ratio"], "matrix_seed": _MATRIX_SPECS["matrix_seed"],
                       "n_images": Param(int, min=1), "size": Param(int, min=8, help="image side (padded to 33k)"),
                       "instance_seed": Param(int, min=0)}

    def load(self, data_root=None) -> CsData:
        g = torch.Generator().manual_seed(int(self.params["instance_seed"]))
        s = int(self.params["size"])
        images = [synthetic_image(s, s, g) for _ in range(int(self.params["n_images"]))]
        matrix = generated_matrix(int(self.params["ratio"]), int(self.params["matrix_seed"]), "synthetic")
        names = tuple(f"synthetic_{i}" for i in range(len(images)))
        return CsData(names=names, images=tuple(images), matrix=matrix,
                      source=f"synthetic (seed {self.params['instance_seed']})", instance_id=data_hash(images, matrix))


# --------------------------------------------------------------------------- degradation
@register_degradation
class MeasurementNoise(Degradation):
    """White Gaussian noise on the measurements: y = Phi x + (sigma / 255) n per block, n
    ~ N(0, I), x in [0, 1] (sigma in gray levels of 0..255; Phi has orthonormal rows, so
    sigma is also the noise std of the back-projection Phi^T y per pixel of its range)."""

    name = "measurement_noise"
    suites = ("cs",)
    description = "white Gaussian noise on the measurements, std sigma/255 (sigma in gray levels); 0: none"
    parameters = {"sigma": 0.0}
    parameter_specs = {"sigma": Param(float, min=0, help="std in gray levels of 0..255")}

    def apply(self, measurements: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        sigma = float(self.params["sigma"])
        if sigma == 0:
            return measurements.clone()
        return _GRAY_LEVELS_ON_UNIT.add(measurements, sigma, generator)


#: sigma in gray levels of 0..255 on measurements of [0, 1] images; drawn in float64, added in their dtype
_GRAY_LEVELS_ON_UNIT = Gaussian(scale=255.0, draw=torch.float64, arithmetic="data")
