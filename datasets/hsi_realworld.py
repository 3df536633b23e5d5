"""Real noisy hyperspectral cubes without a clean reference, for the ``hsi`` suite.

``indian_pines``: the AVIRIS Indian Pines scene (Purdue agronomy farm, 12 June 1992), the
corrected 200-band version (water absorption bands removed), 145 x 145 x 200, with its
16-class ground truth. Read from the copy that ships inside tensorly
(``tensorly/datasets/data/Indian_pines_corrected.npy`` and ``Indian_pines_gt.npy``): no
download, works offline. Licence CC BY 3.0; cite Baumgardner, M. F., Biehl, L. L.,
Landgrebe, D. A. (2015), 220 Band AVIRIS Hyperspectral Image Data Set: June 12, 1992 Indian
Pine Test Site 3, Purdue University Research Repository, doi:10.4231/R7RX991C.
It is not ``simu_indian`` (a simulated clean cube, 224 bands, with synthetic noise added).

Normalisation as the STAR-Net code treats its inputs: the cube divided by its maximum
(radiance counts 955-9604, so the cube lies in [0.099, 1]). The cube is the *noisy*
input: :class:`RealHsiData` says so (``has_reference = False``) and carries the labels;
the ``hsi_real`` degradation adds nothing and leaves the noise level to the estimate.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from bench.datasets.hsi import CROP_SPEC, HsiData, centre_crop, cube_hash
from bench.datasets.hsi_noise import NoiseDraw, estimate_sigma
from bench.errors import DataError
from bench.registry import Dataset, Degradation, register_dataset, register_degradation


@dataclass(frozen=True)
class RealHsiData(HsiData):
    """Real noisy cubes: no clean reference; per cube its ground-truth class map (H, W;
    0 = unlabelled) or None."""

    labels: tuple = ()
    has_reference: bool = False


def tensorly_data_dir() -> str:
    try:
        import tensorly.datasets
    except ImportError as e:  # pragma: no cover - tensorly is a dependency
        raise DataError("indian_pines is read from tensorly's bundled copy: pip install tensorly") from e
    return os.path.join(os.path.dirname(tensorly.datasets.__file__), "data")


#: 0-based indices of the 200-band corrected cube shown as R, G, B: bands 89, 33 and 1 (1-based)
#: are among those with the highest ratio of wavelet-MAD noise std to band mean (band 1 the
#: highest, ~0.1); the figure shows the noise and what each method leaves of it
INDIAN_PINES_RGB = (88, 32, 0)


@register_dataset
class IndianPines(Dataset):
    name = "indian_pines"
    suite = "hsi"
    needs_data = False
    has_reference = False
    description = ("the real AVIRIS Indian Pines cube, 145x145x200 (corrected), real noise, no clean reference, "
                   "16-class ground truth; tensorly's bundled copy (no download), divided by its max")
    parameters = {"size": 0}
    parameter_specs = {"size": CROP_SPEC}

    def load(self, data_root=None) -> RealHsiData:
        folder = tensorly_data_dir()
        paths = [os.path.join(folder, f) for f in ("Indian_pines_corrected.npy", "Indian_pines_gt.npy")]
        for p in paths:
            if not os.path.exists(p):
                raise DataError(f"{p}: missing; indian_pines needs tensorly's bundled Indian Pines files "
                                "(reinstall tensorly >= 0.8)")
        cube, gt = np.load(paths[0]).astype(np.float64), np.load(paths[1])
        if cube.shape != (145, 145, 200) or gt.shape != (145, 145):
            raise DataError(f"{paths[0]}: expected a 145x145x200 cube and a 145x145 ground truth, got {cube.shape} "
                            f"and {gt.shape}")
        cube = centre_crop(cube / cube.max(), self.params["size"])
        gt = centre_crop(gt.astype(np.int64), self.params["size"])
        tensors = (torch.from_numpy(np.ascontiguousarray(cube)),)
        return RealHsiData(cubes=tensors, names=(self.name,), rgb_bands=INDIAN_PINES_RGB,
                           instance_id=cube_hash(tensors), labels=(np.ascontiguousarray(gt),))

    def scene_ids(self) -> tuple[str, ...]:
        # the simulated Indian Pines of the training split (simu_indian) is built from this
        # same AVIRIS scene: a network trained on it is not scored here
        return (self.name, "simu_indian")


@register_degradation
class HsiReal(Degradation):
    """The cube as recorded: no noise is added; a method gets the noise level the suite
    estimates from the cube (wavelet MAD per band, :func:`~bench.datasets.hsi_noise.estimate_sigma`).
    Only for datasets without a clean reference (``indian_pines``)."""

    name = "hsi_real"
    suites = ("hsi",)
    description = "real noise as recorded (nothing added); sigma estimated by the wavelet MAD (real cubes only)"
    parameters = {}

    def apply(self, clean: torch.Tensor, g: torch.Generator):
        s, bands = estimate_sigma(clean)
        return clean.clone(), NoiseDraw("real", s, bands, False)
