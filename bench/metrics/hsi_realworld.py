"""Scores of the ``hsi`` suite for a real noisy cube without a clean reference (Indian Pines).

With no clean cube, PSNR/SSIM/SAM/ERGAS cannot be computed. A denoised real cube is scored by:

- ``nr_sigma`` (no-reference index, lower is less residual noise): the mean over bands of
  the noise standard deviation that the median absolute deviation of the finest diagonal
  Haar wavelet coefficients estimates (Donoho and Johnstone, "Ideal spatial adaptation by
  wavelet shrinkage", Biometrika 1994; :func:`bench.datasets.hsi_noise.estimate_sigma_bands`),
  on the [0, 255] scale of the [0, 1] cube. A blurring filter lowers it as much as a
  denoiser does: read it beside the classification and the smoothing reference row.
- ``nr_removed``: the root mean square of what the method removed (input - output), on the
  [0, 255] scale; near the input's ``nr_sigma`` for a denoiser that removes noise only,
  well above it for one that also removes signal.
- ``svm_oa`` / ``svm_aa`` / ``svm_kappa``: the classification protocol of the real-data
  sections of hyperspectral denoising papers (the STAR-Net paper's real-world section):
  an RBF support vector machine (scikit-learn ``SVC``, C = 100, gamma 'scale') on the
  pixels' spectra, standardised per band with the training pixels' mean and std; trained
  on a fixed fraction (10 %) of the labelled pixels of each class, drawn at random (at
  least one per class), and tested on the rest; overall accuracy (%), average of the
  per-class accuracies (%) and Cohen's kappa (x 100), each the mean over the seeds
  :data:`SEEDS` (the same splits for every method, so that rows compare on equal splits).
  The per-seed values are kept in the row's extras (their spread is reported).
"""
from __future__ import annotations

import numpy as np
import torch

from bench.datasets.hsi_noise import estimate_sigma_bands
from bench.errors import BenchError
from bench.registry import Metric, register_metric

#: fraction of each class's labelled pixels used for training (the rest is the test set)
TRAIN_FRACTION = 0.10
#: the splits' seeds (fixed: every method is classified on the same five splits)
SEEDS = (0, 1, 2, 3, 4)
#: the RBF SVM's cost (gamma: scikit-learn's 'scale', 1 / (n_features x var(X)))
SVM_C = 100.0
CLASSIFICATION = ("svm_oa", "svm_aa", "svm_kappa")
NOREF = ("nr_sigma", "nr_removed")
REALWORLD_METRICS = NOREF + CLASSIFICATION

PROTOCOL = (f"RBF SVM (scikit-learn SVC, C={SVM_C:g}, gamma 'scale', bands standardised on the training "
            f"pixels), {TRAIN_FRACTION:.0%} of the labelled pixels of each class for training, the rest for "
            f"testing, mean ± std over {len(SEEDS)} random splits (seeds {SEEDS[0]}-{SEEDS[-1]}, the same for "
            f"every row)")


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def noise_sigma_index(cube) -> float:
    """``nr_sigma``: mean over bands of the wavelet-MAD noise std of an (H, W, B) cube, x 255."""
    x = torch.as_tensor(_np(cube))
    if x.ndim != 3:
        raise ValueError(f"expected an (H, W, B) cube, got shape {tuple(x.shape)}")
    return float(estimate_sigma_bands(x).mean()) * 255.0


def removed_rms(noisy, output) -> float:
    """``nr_removed``: root mean square of ``noisy - output``, x 255."""
    a, b = _np(noisy), _np(output)
    if a.shape != b.shape:
        raise ValueError(f"expected two cubes of one shape, got {a.shape} and {b.shape}")
    return float(np.sqrt(np.mean((a - b) ** 2))) * 255.0


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices (train, test) of the labelled pixels (label > 0): per class, a random
    ``fraction`` (rounded, at least one pixel; a class of one pixel trains only) for training."""
    rng = np.random.default_rng(seed)
    flat = np.asarray(labels).ravel()
    train, test = [], []
    for c in np.unique(flat[flat > 0]):
        idx = np.flatnonzero(flat == c)
        rng.shuffle(idx)
        n = max(1, int(round(fraction * len(idx))))
        train.append(idx[:n])
        test.append(idx[n:])
    if not train:
        raise ValueError("no labelled pixel (every label is 0)")
    return np.concatenate(train), np.concatenate(test)


def accuracies(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """(overall accuracy %, average per-class accuracy %, Cohen's kappa x 100) of a prediction."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    classes = np.unique(truth)
    oa = float(np.mean(truth == pred))
    aa = float(np.mean([np.mean(pred[truth == c] == c) for c in classes]))
    # chance agreement from the confusion matrix's marginals
    pe = sum(float(np.mean(truth == c)) * float(np.mean(pred == c)) for c in np.union1d(classes, np.unique(pred)))
    kappa = (oa - pe) / (1.0 - pe) if pe < 1.0 else 1.0
    return 100.0 * oa, 100.0 * aa, 100.0 * kappa


def _svc():
    try:
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC
    except ImportError as e:  # pragma: no cover - scikit-learn is a dependency
        raise BenchError("the hsi real-data classification needs scikit-learn: pip install scikit-learn") from e
    return SVC, StandardScaler


def classify(cube, labels, seeds=SEEDS, fraction: float = TRAIN_FRACTION, c: float = SVM_C) -> dict[str, list[float]]:
    """Per seed: the RBF SVM's OA, AA and kappa on ``cube`` (H, W, B) with the ground truth
    ``labels`` (H, W; 0 = unlabelled). Returns ``{"svm_oa": [...], "svm_aa": [...], "svm_kappa": [...]}``."""
    SVC, StandardScaler = _svc()
    x = _np(cube)
    gt = np.asarray(labels)
    if x.ndim != 3 or gt.shape != x.shape[:2]:
        raise ValueError(f"labels {gt.shape} do not match the cube's pixels {x.shape[:2]}")
    features, flat = x.reshape(-1, x.shape[-1]), gt.ravel()
    out: dict[str, list[float]] = {m: [] for m in CLASSIFICATION}
    for seed in seeds:
        train, test = stratified_split(gt, fraction, seed)
        if len(test) == 0:
            raise ValueError("no test pixel left: every class has a single labelled pixel")
        scaler = StandardScaler().fit(features[train])
        model = SVC(C=c, kernel="rbf", gamma="scale").fit(scaler.transform(features[train]), flat[train])
        pred = model.predict(scaler.transform(features[test]))
        for m, v in zip(CLASSIFICATION, accuracies(flat[test], pred)):
            out[m].append(v)
    return out


def score_real(noisy, output, labels) -> tuple[dict[str, float], dict[str, list[float]]]:
    """(metrics, per-seed classification values) of one denoised real cube."""
    per_seed = classify(output, labels) if labels is not None else {}
    metrics = {"nr_sigma": noise_sigma_index(output), "nr_removed": removed_rms(noisy, output)}
    metrics.update({m: float(np.mean(v)) for m, v in per_seed.items()})
    return metrics, per_seed


for _name, _dir, _unit, _tol, _fmt, _label, _def in (
    ("nr_sigma", "min", "/255", 0.05, "{:.2f}", "noise σ (MAD)",
     "mean over bands of the wavelet-MAD noise std of the output (Donoho & Johnstone 1994), x255"),
    ("nr_removed", "min", "/255", 0.05, "{:.2f}", "removed RMS",
     "root mean square of input - output, x255 (what the method took away)"),
    ("svm_oa", "max", "%", 0.5, "{:.1f}", "OA", "RBF SVM overall accuracy, mean over the splits"),
    ("svm_aa", "max", "%", 0.5, "{:.1f}", "AA", "RBF SVM average per-class accuracy, mean over the splits"),
    ("svm_kappa", "max", "x100", 0.5, "{:.1f}", "κ", "RBF SVM Cohen's kappa x100, mean over the splits"),
):
    register_metric(Metric(name=_name, suite="hsi", direction=_dir, unit=_unit, definition=_def, tolerance=_tol,
                           fn=None, scope="sample", label=_label, fmt=_fmt))
