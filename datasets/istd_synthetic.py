"""The ``istd_synthetic`` data set: seeded synthetic infrared scenes (clouds, sea, ground
clutter, bright edges) with 0-3 small targets of 1-80 pixels, dim to bright, and exact masks;
no download. Train and test subsets come from separate random streams (never a shared image).
Returned as :class:`bench.datasets.istd.IstdData`, as the real sets are.
"""
from __future__ import annotations

import math

import torch

from bench.datasets.istd import IstdData, data_hash
from bench.errors import DataError
from bench.params import Ordered, Param
from bench.registry import Dataset, register_dataset

BACKGROUNDS = ("clouds", "sea", "ground", "edges")


def _smooth_noise(h: int, w: int, g: torch.Generator, beta: float) -> torch.Tensor:
    """Gaussian noise with a 1/f^beta spectrum, zero mean and unit std (float64)."""
    fy = torch.fft.fftfreq(h, dtype=torch.float64).view(-1, 1)
    fx = torch.fft.rfftfreq(w, dtype=torch.float64).view(1, -1)
    f = torch.sqrt(fx ** 2 + fy ** 2)
    f[0, 0] = 1.0
    spec = torch.complex(torch.randn(h, w // 2 + 1, generator=g, dtype=torch.float64),
                         torch.randn(h, w // 2 + 1, generator=g, dtype=torch.float64)) / f ** beta
    spec[0, 0] = 0
    x = torch.fft.irfft2(spec, s=(h, w))
    return (x - x.mean()) / (x.std() + 1e-12)


def _background(kind: str, h: int, w: int, g: torch.Generator) -> torch.Tensor:
    u = lambda: float(torch.rand((), generator=g, dtype=torch.float64))  # noqa: E731
    yy = torch.arange(h, dtype=torch.float64).view(-1, 1).expand(h, w)
    xx = torch.arange(w, dtype=torch.float64).view(1, -1).expand(h, w)
    base = 60 + 80 * u()
    if kind == "clouds":
        # smooth sky gradient and 1/f^2 cloud texture
        bg = base + 25 * (yy / h - 0.5) + (12 + 18 * u()) * _smooth_noise(h, w, g, 2.0)
    elif kind == "sea":
        # horizon: sky above, waves (anisotropic stripes) and sun glint below
        horizon = int(h * (0.2 + 0.3 * u()))
        waves = torch.sin(2 * math.pi * (yy / (3 + 4 * u()) + 0.3 * _smooth_noise(h, w, g, 2.5)))
        sea = base - 20 + (6 + 6 * u()) * waves + 6 * _smooth_noise(h, w, g, 1.0)
        glint = (torch.rand(h, w, generator=g, dtype=torch.float64) > 0.995) * (30 * u())
        sky = base + 10 + 8 * _smooth_noise(h, w, g, 2.0)
        bg = torch.where(yy < horizon, sky, sea + glint)
    elif kind == "ground":
        # clutter: textured ground with bright and dark blobs of several sizes
        bg = base + 15 * _smooth_noise(h, w, g, 1.5)
        for _ in range(int(5 + 10 * u())):
            cy, cx, r = u() * h, u() * w, 3 + 12 * u()
            amp = 40 * (u() - 0.4)
            bg = bg + amp * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    else:  # edges: bright structures (buildings, ridge lines) over a smooth sky
        bg = base + 10 * _smooth_noise(h, w, g, 2.0)
        for _ in range(int(1 + 3 * u())):
            angle = math.pi * (u() - 0.5) * 0.6
            off = h * (0.3 + 0.6 * u())
            side = (yy - off - torch.tan(torch.tensor(angle, dtype=torch.float64)) * (xx - w / 2)) > 0
            bg = bg + side * (30 + 50 * u()) * (1 if u() > 0.3 else -0.5)
        x0, x1 = sorted((int(u() * w), int(u() * w)))
        y0 = int(h * (0.4 + 0.4 * u()))
        bg[y0:, x0:x1 + 1] += 40 + 40 * u()  # a bright block with sharp edges
    return bg


def _target(h: int, w: int, area: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One small target: an ellipse of about ``area`` pixels (exact mask) and its profile
    (1 at the centre falling to 0.5 at the rim), at a random position away from the border."""
    u = lambda: float(torch.rand((), generator=g, dtype=torch.float64))  # noqa: E731
    ratio = 1 + u()  # axis ratio 1..2
    b = math.sqrt(area / (math.pi * ratio))
    a = b * ratio
    theta = math.pi * u()
    r = int(math.ceil(a)) + 2
    cy = r + u() * (h - 2 * r - 1)
    cx = r + u() * (w - 2 * r - 1)
    yy = torch.arange(h, dtype=torch.float64).view(-1, 1) - cy
    xx = torch.arange(w, dtype=torch.float64).view(1, -1) - cx
    c, s = math.cos(theta), math.sin(theta)
    d2 = ((c * xx + s * yy) / max(a, 0.5)) ** 2 + ((-s * xx + c * yy) / max(b, 0.5)) ** 2
    mask = d2 <= 1.0
    if not mask.any():  # a one-pixel target
        mask = torch.zeros(h, w, dtype=torch.bool)
        mask[int(cy), int(cx)] = True
        d2 = torch.where(mask, torch.zeros_like(d2), d2)
    profile = torch.where(mask, 1.0 - 0.5 * d2.clamp(max=1.0), torch.zeros_like(d2))
    return mask, profile


def synthetic_istd(n_images: int, seed: int, min_size: int = 128, max_size: int = 192,
                   max_targets: int = 3, noise_std: float = 2.0, empty_fraction: float = 0.1):
    """Seeded synthetic ISTD images: structured background + 0..max_targets small targets
    (area 1..80 px, contrast dim to bright), exact masks. Returns (names, images, masks)."""
    g = torch.Generator().manual_seed(int(seed))
    names, images, masks = [], [], []
    for i in range(n_images):
        u = lambda: float(torch.rand((), generator=g, dtype=torch.float64))  # noqa: E731
        h = int(min_size + u() * (max_size - min_size + 1)) // 2 * 2
        w = int(min_size + u() * (max_size - min_size + 1)) // 2 * 2
        kind = BACKGROUNDS[i % len(BACKGROUNDS)]
        bg = _background(kind, h, w, g)
        mask = torch.zeros(h, w, dtype=torch.bool)
        img = bg.clone()
        n_t = 0 if u() < empty_fraction else 1 + int(u() * max_targets)
        local_std = float(bg.std()) if float(bg.std()) > 0 else 1.0
        for _ in range(n_t):
            area = int(round(math.exp(u() * math.log(80))))  # 1..80 px, log-uniform
            for _attempt in range(10):
                m, profile = _target(h, w, area, g)
                grown = torch.nn.functional.max_pool2d(m[None, None].double(), 9, 1, 4)[0, 0] > 0
                if not (grown & mask).any():  # targets never touch each other
                    break
            else:
                continue
            contrast = (0.5 + 4.5 * u()) * max(local_std, 8.0)  # dim (SCR ~0.5) to bright (~5)
            img = img + contrast * profile
            mask |= m
        img = img + noise_std * torch.randn(h, w, generator=g, dtype=torch.float64)
        names.append(f"synthetic_{i:04d}_{kind}")
        images.append(img.clamp(0, 255).round().to(torch.float32))
        masks.append(mask)
    return names, images, masks


@register_dataset
class IstdSynthetic(Dataset):
    name = "istd_synthetic"
    suite = "istd"
    description = ("seeded synthetic IR scenes (clouds, sea, ground clutter, bright edges) with 0-3 small "
                   "targets of 1-80 px, dim to bright, exact masks; no download")
    parameters = {"subset": "test", "n_images": 24, "min_size": 128, "max_size": 192, "instance_seed": 0}
    parameter_specs = {"subset": Param(str, choices=("train", "test")), "n_images": Param(int, min=1),
                       "min_size": Param(int, min=8, help="image edges are drawn in [min_size, max_size]"),
                       "max_size": Param(int, min=8), "instance_seed": Param(int, min=0)}
    parameter_rules = (Ordered("min_size", "max_size"),)

    def load(self, data_root=None) -> IstdData:
        p = self.params
        if p["subset"] not in ("train", "test"):
            raise DataError(f"istd_synthetic: subset {p['subset']!r}: use train or test")
        # train and test come from separate streams, so they never share an image
        seed = int(p["instance_seed"]) * 2 + (0 if p["subset"] == "test" else 1) + 7_000_001
        names, images, masks = synthetic_istd(int(p["n_images"]), seed, int(p["min_size"]), int(p["max_size"]))
        return IstdData(tuple(names), tuple(images), tuple(masks), source=f"synthetic (seed {seed})",
                        instance_id=data_hash(images, masks))
