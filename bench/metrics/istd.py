"""Metrics and segmentation rules of the ISTD suite (SPECS section 2).

Default protocol: BasicIRSTD (XinyiYing/BasicIRSTD, metrics.py) at each image's own
resolution, accumulated over the whole test set:

* ``iou`` (papers' "mIoU"): total intersection / total union over the set, in %;
* ``niou``: mean over images of intersection_i / (union_i + eps), in % (BasicIRSTD's code:
  an image with an empty union, no target and no prediction, counts as 0);
* ``precision``, ``recall``, ``f1``: from the set's total TP, FP and FN pixels, in %;
* ``pd``: 8-connected components; a true target is detected when a predicted component's
  centroid lies at distance < 3 pixels from its centroid; greedy: targets in label order
  (raster order of their first pixel), each takes the first still unused prediction within
  reach; Pd = detected targets / all targets, in %;
* ``fa``: pixels of predicted components that matched no target / all pixels, x 1e-6;
* ``pd_fa_auc``: area under the threshold-free Pd-Fa curve (below), Fa from 0 to 100e-6,
  as % of that box. The curve thresholds each map, normalised as by ``max_norm``
  (negatives to 0, divided by the max), at ``CURVE_THRESHOLDS``; the area is taken under
  its upper envelope, the best Pd reachable at a false-alarm rate <= Fa (a step function,
  0 below the smallest Fa reached).

Segmentation rules (turn a target map into a mask; named, stored with every row as the
method parameter ``segmentation``):

* ``max_norm`` (default for classical maps): negatives to 0, divided by the max, > 0.5;
* ``minmax``: per-image min-max normalisation, > 0.5 (collapses on maps with negative values);
* ``mean_std3`` / ``mean_std5`` / ``mean_std10``: > mean + k std of the map;
* ``mean_range0.5``: > mean + 0.5 (max - mean), MPCM's adaptive threshold (a public port);
* ``prob``: > 0.5 on a probability map (learned networks: sigmoid output).

Protocols (:data:`PROTOCOLS`; a cell runs under one, ``bench run --protocol NAME``):

* ``basicirstd`` (default): the above, at each image's own resolution;
* ``rpcanet``: the RPCANet authors' test code (fengyiwu98/RPCANet @ 25da080:
  ``t_models_istd.py``, ``cal_metric_istd.py``, ``evaluation/my_pd_fa.py`` and
  ``evaluation/TPFNFP.py``; ../shared/weights/README.md, "Authors' protocols"). Images (after
  the degradation) resized to 256x256 bilinear and rounded to 8-bit levels
  (:func:`resize_image`), which the methods get (networks divide by 255 as ever); maps not
  of that size resized bilinear (:func:`resize_map`); masks resized nearest
  (:func:`resize_mask`); a probability map's pixel is positive when it exceeds 0.5 x the
  map's own maximum (rule ``max_norm``: ``pred / max(pred) > 0.5``), and classical maps keep
  the cell's rule (default ``max_norm`` too, which marks the same pixels as the authors' rule
  whenever the map's maximum is positive); IoU, precision, recall, F1 pooled over the set
  (total TP / (TP + FP + FN)), as above; Pd by any overlap and Fa over background pixels
  (:func:`match_any_overlap`), both over the images that have a target only, pooled (the
  authors' code sums false pixels and background pixels over those images, then divides).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from bench.registry import Metric, register_metric

EPS = float(np.spacing(1))
PD_DISTANCE = 3.0
FA_MAX = 100e-6
CURVE_THRESHOLDS = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6,
                    0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98)


def _max_norm(m: torch.Tensor) -> torch.Tensor:
    m = m.clamp(min=0)
    top = m.max()
    return m / top if float(top) > 0 else torch.zeros_like(m)


def _minmax(m: torch.Tensor) -> torch.Tensor:
    lo, hi = m.min(), m.max()
    return (m - lo) / (hi - lo) if float(hi - lo) > 0 else torch.zeros_like(m)


def _mean_std(k: float) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda m: m > m.mean() + k * m.std(unbiased=False)


def _mean_range(k: float) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda m: m > m.mean() + k * (m.max() - m.mean())


SEGMENTATION_RULES: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], str]] = {
    "max_norm": (lambda m: _max_norm(m) > 0.5, "negatives set to 0, divided by the max, > 0.5"),
    "minmax": (lambda m: _minmax(m) > 0.5, "per-image min-max normalisation, > 0.5"),
    "mean_std3": (_mean_std(3.0), "> mean + 3 std"),
    "mean_std5": (_mean_std(5.0), "> mean + 5 std"),
    "mean_std10": (_mean_std(10.0), "> mean + 10 std"),
    "mean_range0.5": (_mean_range(0.5), "> mean + 0.5 (max - mean) (MPCM's adaptive threshold)"),
    "prob": (lambda m: m > 0.5, "probability map > 0.5 (learned networks)"),
}


def segment(target_map: torch.Tensor, rule: str) -> torch.Tensor:
    """Mask (bool) of one target map under a named rule."""
    if rule not in SEGMENTATION_RULES:
        raise ValueError(f"unknown segmentation rule {rule!r}; valid: {', '.join(SEGMENTATION_RULES)}")
    return SEGMENTATION_RULES[rule][0](target_map.to(torch.float64))


def describe_rule(rule: str) -> str:
    return f"{rule} ({SEGMENTATION_RULES[rule][1]})" if rule in SEGMENTATION_RULES else rule


# --------------------------------------------------------------------------- Pd / Fa
def components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    from scipy import ndimage
    return ndimage.label(mask, structure=np.ones((3, 3), dtype=int))


def _centroids_and_areas(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    if n == 0:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    flat = labels.ravel()
    rows, cols = np.divmod(np.arange(flat.size), labels.shape[1])
    area = np.bincount(flat, minlength=n + 1)[1:]
    cy = np.bincount(flat, weights=rows, minlength=n + 1)[1:] / area
    cx = np.bincount(flat, weights=cols, minlength=n + 1)[1:] / area
    return np.stack([cy, cx], 1), area


def match_targets(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int, int]:
    """BasicIRSTD's PD_FA for one image: (targets, detected, unmatched predicted pixels,
    all pixels); the last two are Fa's numerator and denominator."""
    pl, pn = components(pred)
    gl, gn = components(gt)
    pc, parea = _centroids_and_areas(pl, pn)
    gc, _ = _centroids_and_areas(gl, gn)
    used = np.zeros(pn, dtype=bool)
    detected = 0
    for t in range(gn):
        for m in range(pn):
            if used[m]:
                continue
            if float(np.linalg.norm(pc[m] - gc[t])) < PD_DISTANCE:
                used[m] = True
                detected += 1
                break
    false_pixels = int(parea[~used].sum()) if pn else 0
    return gn, detected, false_pixels, int(pred.size)


def match_any_overlap(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int, int]:
    """The RPCANet authors' Pd and Fa for one image (``evaluation/my_pd_fa.py``): (targets,
    detected, false pixels, background pixels). A target is an 8-connected component of the
    mask, detected when any predicted pixel lies on it; false pixels are the predicted pixels
    of the background (the mask's zeros), whatever component they belong to. An image without
    a target counts nothing, (0, 0, 0, 0): it is skipped for Pd and Fa."""
    gl, gn = components(gt)
    if gn == 0:
        return 0, 0, 0, 0
    background = gl == 0
    hit = np.unique(gl[pred & ~background])
    return gn, int(len(hit)), int((pred & background).sum()), int(background.sum())


# --------------------------------------------------------------------------- scores
def score_masks(preds: Sequence, gts: Sequence, match: Callable = match_targets) -> dict[str, float]:
    """All metrics of predicted masks against true masks (whole set): BasicIRSTD's, or with
    ``match`` another protocol's Pd and Fa (:func:`match_any_overlap`); IoU, nIoU, precision,
    recall and F1 are defined alike in both."""
    inter = union = tp = fp = fn = 0
    per_image_iou = []
    n_targets = n_detected = false_pixels = all_pixels = 0
    for p, g in zip(preds, gts):
        p = np.asarray(p.cpu() if isinstance(p, torch.Tensor) else p, dtype=bool)
        g = np.asarray(g.cpu() if isinstance(g, torch.Tensor) else g, dtype=bool)
        if p.shape != g.shape:
            raise ValueError(f"mask shape {p.shape} != reference {g.shape}")
        i = int((p & g).sum()); u = int((p | g).sum())
        inter += i; union += u
        tp += i; fp += int((p & ~g).sum()); fn += int((~p & g).sum())
        per_image_iou.append(i / (u + EPS))
        nt, nd, fpix, npix = match(p, g)
        n_targets += nt; n_detected += nd; false_pixels += fpix; all_pixels += npix
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "iou": 100.0 * inter / union if union else 0.0,
        "niou": 100.0 * float(np.mean(per_image_iou)) if per_image_iou else 0.0,
        "precision": 100.0 * precision,
        "recall": 100.0 * recall,
        "f1": 100.0 * f1,
        "pd": 100.0 * n_detected / n_targets if n_targets else 0.0,
        "fa": 1e6 * false_pixels / all_pixels if all_pixels else 0.0,
    }


def pd_fa_curve(maps: Sequence[torch.Tensor], gts: Sequence, thresholds=CURVE_THRESHOLDS,
                normalise: bool = True, match: Callable = match_targets) -> tuple[list[float], list[float]]:
    """(Pd in %, Fa x 1e-6) at each threshold of the maps over the set: of the max-normalised
    maps (``normalise``, classical maps), or of the maps as they are (probability maps); Pd
    and Fa by ``match`` (BasicIRSTD's by default)."""
    norm = [(_max_norm(m.to(torch.float64)) if normalise else m.to(torch.float64)).cpu().numpy() for m in maps]
    gts = [np.asarray(g.cpu() if isinstance(g, torch.Tensor) else g, dtype=bool) for g in gts]
    pds, fas = [], []
    for t in thresholds:
        nt = nd = fpix = npix = 0
        for m, g in zip(norm, gts):
            a, b, c, d = match(m > t, g)
            nt += a; nd += b; fpix += c; npix += d
        pds.append(100.0 * nd / nt if nt else 0.0)
        fas.append(1e6 * fpix / npix if npix else 0.0)
    return pds, fas


def pd_fa_auc(pds: Sequence[float], fas: Sequence[float], fa_max: float = FA_MAX * 1e6) -> float:
    """Area under the best Pd reachable at a false-alarm rate <= Fa, for Fa in [0, fa_max]
    (x 1e-6 units), as % of the box: Pd_best(x) = max{Pd_t : Fa_t <= x} (0 where no
    threshold reaches that low), a step function. The envelope makes the area independent
    of the order of the points: Pd is not monotone in the threshold under centroid matching
    (a low threshold merges a target with its surroundings and moves the centroid)."""
    pts = sorted((float(fa), float(pd)) for fa, pd in zip(fas, pds))
    area, best, x_prev = 0.0, 0.0, 0.0
    for fa, pd in pts:
        if fa >= fa_max:
            break
        area += best * (fa - x_prev)
        x_prev = fa
        best = max(best, pd)
    area += best * (fa_max - x_prev)
    return area / fa_max  # Pd is already in %, so this is a percentage


# --------------------------------------------------------------------------- protocols
#: the RPCANet authors' test resolution
RPCANET_SIZE = 256


def resize_image(image: torch.Tensor, size: int) -> torch.Tensor:
    """An image (gray levels 0..255) resized to size x size as the RPCANet authors' test code
    does on its 8-bit images (``cv2.resize(img, [256, 256], interpolation=cv2.INTER_LINEAR)``):
    bilinear with half-pixel centres and no antialiasing (``align_corners=False``), then
    clipped to 0..255 and rounded to 8-bit levels, an exact half up (cv2 computes in fixed
    point with 11-bit weights and rounds half up: a level may differ by 1 where a value lies
    within about 1/2000 of a half). float32, like the loaders' images."""
    x = torch.nn.functional.interpolate(image.to(torch.float64)[None, None], size=(size, size), mode="bilinear",
                                        align_corners=False, antialias=False)[0, 0]
    return torch.floor(x.clamp(0, 255) + 0.5).to(torch.float32)


def resize_map(target_map: torch.Tensor, size: int) -> torch.Tensor:
    """A target map at size x size: as it is when it already has that size (the authors'
    ``cv2.resize`` of a 256x256 map copies it), else resized bilinear (half-pixel centres,
    no antialiasing, no rounding) as ``cal_metric_istd.py`` resizes its maps."""
    if tuple(target_map.shape[-2:]) == (size, size):
        return target_map
    return torch.nn.functional.interpolate(target_map.to(torch.float64)[None, None], size=(size, size),
                                           mode="bilinear", align_corners=False, antialias=False)[0, 0]


def resize_mask(mask: torch.Tensor, size: int) -> torch.Tensor:
    """A mask (bool) resized to size x size by nearest neighbour as ``cv2.INTER_NEAREST``
    does (source index floor(i * in / out), torch's ``nearest``)."""
    if tuple(mask.shape[-2:]) == (size, size):
        return mask.to(torch.bool)
    x = torch.nn.functional.interpolate(mask.to(torch.float32)[None, None], size=(size, size), mode="nearest")
    return x[0, 0] > 0.5


@dataclass(frozen=True)
class IstdProtocol:
    """A named scoring protocol of the istd suite (see the module docstring)."""

    name: str
    #: images, maps and masks at size x size (None: each image's own resolution)
    size: int | None
    #: the rule that turns a probability map (a method's rule ``prob``) into a mask; the
    #: other rules (classical maps) are the cell's own
    prob_rule: str
    #: per image: (targets, detected, false pixels, Fa's denominator) of a mask and its truth
    match: Callable[[np.ndarray, np.ndarray], tuple[int, int, int, int]]
    #: what it is, for captions and ``bench list``
    description: str

    def rule(self, method_rule: str) -> str:
        """The segmentation rule of a cell's maps under this protocol."""
        return self.prob_rule if method_rule == "prob" else method_rule


PROTOCOLS: dict[str, IstdProtocol] = {
    "basicirstd": IstdProtocol(
        "basicirstd", None, "prob", match_targets,
        "Protocol basicirstd (BasicIRSTD metrics at native resolution): IoU = total intersection/total union over "
        "the test set (mIoU), F1 from set-level pixels, Pd with 8-connected components and centroid distance < 3 "
        "(greedy), Fa = unmatched predicted pixels/all pixels (x1e-6)"),
    "rpcanet": IstdProtocol(
        "rpcanet", RPCANET_SIZE, "max_norm", match_any_overlap,
        "Protocol rpcanet (the RPCANet authors' test code): images resized to 256x256 bilinear and rounded to 8 bits "
        "before the method, masks resized nearest, metrics at 256x256; learned maps positive above 0.5 x their own "
        "per-image maximum (classical maps: the cell's rule); IoU = total TP/(TP+FP+FN) over the test set, F1 from "
        "set-level pixels; Pd: a target (8-connected component) is detected when any predicted pixel touches it; "
        "Fa = false-positive pixels/background pixels (x1e-6), pooled; images without targets skipped for Pd and Fa"),
}
DEFAULT_PROTOCOL = "basicirstd"


_DEFS = [
    ("iou", "max", "%", "dataset-level IoU (papers' mIoU): total intersection / total union over the test set", 0.5),
    ("niou", "max", "%", "mean over images of intersection_i / (union_i + eps) (BasicIRSTD)", 0.5),
    ("precision", "max", "%", "TP / (TP + FP), pixels summed over the test set", 0.5),
    ("recall", "max", "%", "TP / (TP + FN), pixels summed over the test set", 0.5),
    ("f1", "max", "%", "2 P R / (P + R) of the set-level precision and recall", 0.5),
    ("pd", "max", "%", "detected / all targets; 8-connected components, centroid distance < 3, greedy "
                       "(protocol rpcanet: any overlap, images with targets)", 0.5),
    ("fa", "min", "x1e-6", "unmatched predicted pixels / all pixels of the test set (protocol rpcanet: false "
                           "pixels / background pixels of the images with targets)", 1.0),
    ("pd_fa_auc", "max", "%", "area under the upper envelope of the Pd-Fa curve (thresholds 0.01..0.98 of max-normalised maps), Fa in [0, 100e-6], % of the box", 0.5),
]
#: the tables' column names (the papers' names: the set-level IoU is their "mIoU")
_LABELS = {"iou": "mIoU", "niou": "nIoU", "precision": "Precision", "recall": "Recall", "f1": "F1", "pd": "Pd",
           "fa": "Fa", "pd_fa_auc": "AUC"}
for _name, _dir, _unit, _def, _tol in _DEFS:
    register_metric(Metric(name=_name, suite="istd", direction=_dir, unit=_unit, definition=_def,
                           tolerance=_tol, scope="dataset", label=_LABELS[_name], fmt="{:.2f}"))
