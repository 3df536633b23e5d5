"""Infrared small target detection (ISTD) data: SIRST and folders in the layouts met in
the wild (SPECS section 2); the seeded synthetic generator that needs no download is
:mod:`bench.datasets.istd_synthetic`.

Every dataset returns :class:`IstdData`: gray images of varying size (float32, gray levels
0..255 as stored, shape (H, W)) with binary masks of the same size (bool).

Layouts read by :func:`read_folder`:

* ``sirst``: SIRST originals, ``images/Misc_N.png`` with ``masks/Misc_N_pixels0.png`` and
  splits ``splits/<split>/<subset>.txt`` (the layout of ``bench data fetch sirst``) or
  ``<split>/<subset>.txt`` (github YimianDai/sirst), split ``idx_427`` or ``50_50``;
* ``basicirstd``: ``<NAME>/{images,masks}/<id>.png`` with ``img_idx/<subset>_<NAME>.txt``;
* ``dnanet``: ``<NAME>/{images,masks}/<id>.png`` with ``50_50/<subset>.txt`` (or
  ``<split>/<subset>.txt``);
* ``isnet``: IRSTD-1k as its authors distribute it (github RuiZhang97/ISNet),
  ``IRSTD1k_Img/<id>.png`` with ``IRSTD1k_Label/<id>.png`` and ``<subset>.txt`` (``test``,
  ``trainval``) at the top;
* ``sirst_aug``: SIRST-Aug as its authors distribute it (github Tianfang-Zhang/AGPCNet),
  ``<subset>/images/<id>.png`` with ``<subset>/masks/<id>.png`` (``trainval``, ``test``), no
  split file: every image of the subset folder, in name order.

Conversions: RGB and RGBA images become gray with the ITU-R BT.601 weights of the first
three channels, rounded to integers as MATLAB's/Octave's ``rgb2gray`` does on uint8;
palette images are expanded through their palette first; 16-bit images are scaled to
0..255. Masks are binarised at half their range (> 127 for 8-bit masks); a mask with other
values than 0 and its maximum (85 of IRSTD-1k's official masks hold values such as 64) is
named in the notes with the rule (:data:`MASK_RULE`).

Image/mask size mismatch: ``mask_mismatch`` names the policy. ``resize`` (default) resizes
the mask to the image with nearest-neighbour sampling and records a note (SIRST's
``Misc_111``: mask 592x400, image 325x220; the reference README scores it the same way);
``error`` raises :class:`DataError` naming both files; ``skip`` drops the image with a note.

Checksums: when ``<data_root>/SHA256SUMS`` lists a file that is read, its SHA-256 is
verified; a mismatch raises :class:`DataError` naming the file, which fails that dataset's
cells only (the runner turns it into failed rows and the grid goes on).
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from bench.data_identity import fetch_hint, file_sha256
from bench.data_manifest import missing_data
from bench.errors import DataError
from bench.params import Param
from bench.registry import Dataset, register_dataset

IMAGE_EXTENSIONS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")
LAYOUTS = ("sirst", "basicirstd", "dnanet", "isnet", "sirst_aug")
#: how a mask becomes binary (read_mask), in words
MASK_RULE = "target where the mask is > half its range (> 127 for 8-bit masks; 64 is background)"
MISMATCH_POLICIES = ("resize", "error", "skip")


@dataclass(frozen=True)
class IstdData:
    names: tuple[str, ...]
    images: tuple[torch.Tensor, ...]  # (H, W) float32, gray levels 0..255
    masks: tuple[torch.Tensor, ...]   # (H, W) bool, same size as the image
    source: str                       # where the samples come from (path or generator)
    instance_id: str                  # hash of the images and masks
    notes: tuple[str, ...] = field(default_factory=tuple)  # conversions and fixes applied
    reference_times: dict = field(default_factory=dict)     # image -> seconds of the authors' IPI code

    def __len__(self) -> int:
        return len(self.images)


def data_hash(images, masks) -> str:
    h = hashlib.sha256()
    for im, m in zip(images, masks):
        h.update(str(tuple(im.shape)).encode())
        h.update(im.contiguous().numpy().tobytes())
        h.update(m.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- checksums
_SUMS_CACHE: dict[str, dict[str, str]] = {}


class _Manifest(dict):
    """{absolute path: hex digest} of a data root's SHA256SUMS, knowing its root."""

    root: str = ""


def checksum_manifest(data_root: str | None) -> dict[str, str]:
    """``<data_root>/SHA256SUMS`` as {absolute path: hex digest}; empty when absent."""
    if not data_root:
        return {}
    path = os.path.join(data_root, "SHA256SUMS")
    if not os.path.isfile(path):
        return {}
    key = f"{os.path.abspath(path)}:{os.path.getmtime(path)}"
    if key not in _SUMS_CACHE:
        table = _Manifest()
        table.root = os.path.abspath(data_root)
        with open(path) as f:
            for line in f:
                parts = line.strip().split(None, 1)
                if len(parts) != 2:
                    continue
                digest, name = parts
                name = name.lstrip("*")
                table[os.path.normpath(os.path.join(os.path.abspath(data_root), name))] = digest.lower()
        _SUMS_CACHE[key] = table
    return _SUMS_CACHE[key]


def verify_file(path: str, manifest: dict[str, str]) -> None:
    expected = manifest.get(os.path.normpath(os.path.abspath(path)))
    if expected is None:
        return
    digest = file_sha256(path)  # hashed once per (path, size, mtime): the cell key's digest too
    if digest != expected:
        root = getattr(manifest, "root", "")
        rel = os.path.relpath(os.path.abspath(path), root).replace(os.sep, "/") if root else path
        raise DataError(f"checksum mismatch for {path}: SHA-256 {str(digest)[:16]}... but the data root's "
                        f"SHA256SUMS lists {expected[:16]}...; the file is corrupt or truncated: {fetch_hint(rel)}")


# --------------------------------------------------------------------------- image files
def to_gray(arr: np.ndarray, mode: str) -> np.ndarray:
    """Array of a PIL image -> float32 gray levels 0..255 (see the module docstring)."""
    if arr.ndim == 3:
        rgb = arr[..., :3].astype(np.float64)
        gray = 0.298936021293775 * rgb[..., 0] + 0.587043074451121 * rgb[..., 1] + 0.114020904255103 * rgb[..., 2]
        if arr.dtype == np.uint8:
            gray = np.round(gray)
        return gray.astype(np.float32)
    if arr.dtype == np.uint16 or mode.startswith("I;16") or (arr.dtype.kind in "iu" and arr.max() > 255):
        return (arr.astype(np.float64) / 257.0).astype(np.float32)
    if arr.dtype == bool:
        return arr.astype(np.float32) * 255
    return arr.astype(np.float32)


def read_image(path: str, manifest: dict[str, str] | None = None) -> tuple[np.ndarray, str]:
    """Gray float32 image of ``path`` and its PIL mode; DataError naming the file if unreadable."""
    from PIL import Image
    if manifest:
        verify_file(path, manifest)
    try:
        with Image.open(path) as im:
            mode = im.mode
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif mode in ("LA",):
                im = im.convert("L")
            arr = np.array(im)
    except Exception as e:  # noqa: BLE001 - any decoder error is a data error naming the file
        raise DataError(f"cannot read image {path}: {type(e).__name__}: {e}") from e
    gray = to_gray(arr, mode)
    if not np.isfinite(gray).all():
        raise DataError(f"{path}: {int((~np.isfinite(gray)).sum())} non-finite pixel value(s) (NaN or infinity); "
                        f"the image is corrupt: replace it with the right file")
    return gray, mode


def read_mask(path: str, manifest: dict[str, str] | None = None) -> np.ndarray:
    return read_mask_checked(path, manifest)[0]


def read_mask_checked(path: str, manifest: dict[str, str] | None = None) -> tuple[np.ndarray, bool]:
    """The binary mask (:data:`MASK_RULE`) and whether the file was binary already (its
    values 0 and at most one other)."""
    gray, _ = read_image(path, manifest)
    top = 255.0 if gray.max() <= 255 else float(gray.max())
    values = np.unique(gray)
    return gray > top / 2, len(values) <= 2 and float(values[0]) in (0.0, float(values[-1]))


def resize_nearest(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize (pixel centres), as MATLAB's imresize(..., 'nearest')."""
    h, w = mask.shape
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * h / shape[0]).astype(int), h - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * w / shape[1]).astype(int), w - 1)
    return mask[rows][:, cols]


def _find_file(folder: str, stem: str) -> str | None:
    for ext in IMAGE_EXTENSIONS:
        p = os.path.join(folder, stem + ext)
        if os.path.isfile(p):
            return p
    if os.path.isfile(os.path.join(folder, stem)):
        return os.path.join(folder, stem)
    return None


def read_split(path: str, manifest: dict[str, str] | None = None) -> list[str]:
    if manifest:
        verify_file(path, manifest)
    with open(path) as f:
        names = [line.strip() for line in f if line.strip()]
    return [os.path.splitext(n)[0] if n.lower().endswith(IMAGE_EXTENSIONS) else n for n in names]


def detect_layout(root: str) -> str:
    if os.path.isdir(os.path.join(root, "img_idx")):
        return "basicirstd"
    if os.path.isdir(os.path.join(root, "IRSTD1k_Img")):
        return "isnet"
    if any(os.path.isdir(os.path.join(root, sub, "images")) for sub in ("trainval", "test")):
        return "sirst_aug"
    masks = os.path.join(root, "masks")
    if os.path.isdir(masks) and any(f.endswith("_pixels0.png") for f in os.listdir(masks)):
        return "sirst"
    return "dnanet"


def split_file(root: str, layout: str, split: str, subset: str) -> str:
    name = os.path.basename(os.path.normpath(root))
    if layout == "basicirstd":
        candidates = [os.path.join(root, "img_idx", f"{subset}_{name}.txt")]
        idx = os.path.join(root, "img_idx")
        if os.path.isdir(idx):
            candidates += sorted(os.path.join(idx, f) for f in os.listdir(idx) if f.startswith(subset + "_"))
    elif layout == "isnet":
        candidates = [os.path.join(root, f"{subset}.txt"), os.path.join(root, split, f"{subset}.txt")]
    else:
        candidates = [os.path.join(root, "splits", split, f"{subset}.txt"),
                      os.path.join(root, split, f"{subset}.txt")]
    for c in candidates:
        if os.path.isfile(c):
            return c
    raise DataError(f"no split file for layout {layout!r}, split {split!r}, subset {subset!r} under {root} "
                    f"(looked for {', '.join(candidates[:2])})")


def select_samples(root: str, layout: str, split: str, subset: str, limit: int, max_pixels: int,
                   data_root: str | None, manifest: dict[str, str] | None = None
                   ) -> tuple[str, str | None, list[str]]:
    """(layout, split file, names) of the samples :func:`read_folder` reads: the split's
    names (sirst_aug, which has no split file: the subset folder's images), those of at most
    ``max_pixels`` pixels (> 0), the first ``limit`` (> 0).

    A cell's planning (its data identity, :meth:`_Folder.files`) and its load both ask: the
    selection is memoised per folder, split and filters while the split file and the image
    folder are unchanged (size and modification time); ``manifest``, when given, is still
    checked against the split file on every call."""
    if not os.path.isdir(root):
        rel = os.path.relpath(root, data_root) if data_root and os.path.isabs(root) else root
        raise DataError(f"no ISTD data folder at {root}: " + missing_data(rel, data_root))
    layout = detect_layout(root) if layout == "auto" else layout
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}: use {', '.join(LAYOUTS)} or auto")
    image_dir, _ = layout_folders(root, layout, subset)
    split_path = None if layout == "sirst_aug" else split_file(root, layout, split, subset)
    if manifest and split_path:
        verify_file(split_path, manifest)
    memo = (root, layout, split, subset, int(limit or 0), int(max_pixels or 0), _stamp(split_path), _stamp(image_dir))
    if memo not in _SELECTED:
        if len(_SELECTED) >= 64:
            _SELECTED.clear()
        _SELECTED[memo] = _select(root, layout, image_dir, split_path, subset, limit, max_pixels)
    return layout, split_path, list(_SELECTED[memo])


#: :func:`select_samples`'s memo: (folder, filters, split file and image folder stamps) -> names
_SELECTED: dict[tuple, tuple[str, ...]] = {}


def _stamp(path: str | None) -> tuple[int, int] | None:
    """(size, mtime in ns) of a file or folder (None: no path, or absent)."""
    try:
        st = os.stat(path) if path else None
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if st else None


def _select(root: str, layout: str, image_dir: str, split_path: str | None, subset: str, limit: int,
            max_pixels: int) -> tuple[str, ...]:
    """The names :func:`select_samples` returns, read from the files."""
    if layout == "sirst_aug":
        if not os.path.isdir(image_dir):
            raise DataError(f"no {subset}/images folder under {root} (layout sirst_aug: trainval/ and test/, each "
                            f"with images/ and masks/)")
        names = sorted(os.path.splitext(f)[0] for f in os.listdir(image_dir) if f.lower().endswith(IMAGE_EXTENSIONS))
    else:
        names = read_split(split_path)
    if max_pixels and max_pixels > 0:
        from PIL import Image
        small = []
        for n in names:
            ip = _find_file(image_dir, n)
            if ip is None:
                raise DataError(f"{n}: missing image file under {root} (layout {layout})")
            with Image.open(ip) as im:
                if im.size[0] * im.size[1] <= max_pixels:
                    small.append(n)
        names = small
    if limit and limit > 0:
        names = names[: int(limit)]
    return tuple(names)


def sample_files(root: str, layout: str, names, subset: str = "test") -> list[tuple[str, str | None, str | None]]:
    """(name, image file, mask file) of each sample (None: not found)."""
    image_dir, mask_dir = layout_folders(root, layout, subset)
    mask_stem = (lambda n: f"{n}_pixels0") if layout == "sirst" else (lambda n: n)
    return [(n, _find_file(image_dir, n), _find_file(mask_dir, mask_stem(n))) for n in names]


def folder_files(root: str, layout: str = "auto", split: str = "idx_427", subset: str = "test", limit: int = 0,
                 data_root: str | None = None, max_pixels: int = 0) -> list[str]:
    """The files :func:`read_folder` reads (the split file, each sample's image and mask;
    a sample's missing file as the folder it is looked for in), read without checks."""
    layout, split_path, names = select_samples(root, layout, split, subset, limit, max_pixels, data_root)
    image_dir, mask_dir = layout_folders(root, layout, subset)
    out = [split_path] if split_path else []
    for n, ip, mp in sample_files(root, layout, names, subset):
        out += [ip or os.path.join(image_dir, n), mp or os.path.join(mask_dir, n)]
    return out


def read_folder(root: str, layout: str = "auto", split: str = "idx_427", subset: str = "test",
                limit: int = 0, mask_mismatch: str = "resize", data_root: str | None = None,
                max_pixels: int = 0) -> IstdData:
    """Read the images and masks of one split of a folder in one of the known layouts.
    ``max_pixels`` > 0 keeps only images of at most that many pixels (before ``limit``)."""
    if mask_mismatch not in MISMATCH_POLICIES:
        raise DataError(f"mask_mismatch={mask_mismatch!r}: use one of {', '.join(MISMATCH_POLICIES)}")
    manifest = checksum_manifest(data_root)
    layout, _, names = select_samples(root, layout, split, subset, limit, max_pixels, data_root, manifest)
    images, masks, kept, notes = [], [], [], []
    for n, ip, mp in sample_files(root, layout, names, subset):
        if ip is None or mp is None:
            raise DataError(f"{n}: missing {'image' if ip is None else 'mask'} file under {root} "
                            f"(layout {layout})")
        img, mode = read_image(ip, manifest)
        mask, binary = read_mask_checked(mp, manifest)
        if mode not in ("L", "I;16", "I", "1"):
            notes.append(f"{n}: {mode} converted to gray")
        if not binary:
            notes.append(f"{n}: mask not strictly binary, binarised: {MASK_RULE}")
        if mask.shape != img.shape:
            msg = (f"size mismatch: mask {mp} is {mask.shape[1]}x{mask.shape[0]} but image {ip} is "
                   f"{img.shape[1]}x{img.shape[0]}")
            if mask_mismatch == "error":
                raise DataError(msg + " (mask_mismatch=error; use resize or skip)")
            if mask_mismatch == "skip":
                notes.append(msg + ": image skipped")
                warnings.warn(msg + ": image skipped (mask_mismatch=skip)", stacklevel=2)
                continue
            mask = resize_nearest(mask, img.shape)
            notes.append(msg + ": mask resized (nearest)")
            warnings.warn(msg + ": mask resized to the image (nearest neighbour, mask_mismatch=resize)",
                          stacklevel=2)
        images.append(torch.from_numpy(np.ascontiguousarray(img)))
        masks.append(torch.from_numpy(np.ascontiguousarray(mask)))
        kept.append(n)
    if not images:
        raise DataError(f"no images in {root} for split {split}/{subset}")
    return IstdData(tuple(kept), tuple(images), tuple(masks), source=f"{root} ({layout}, {split}/{subset})",
                    instance_id=data_hash(images, masks), notes=tuple(notes))


def layout_folders(root: str, layout: str, subset: str) -> tuple[str, str]:
    """The image and mask folders of a layout (sirst_aug: those of the subset)."""
    if layout == "isnet":
        return os.path.join(root, "IRSTD1k_Img"), os.path.join(root, "IRSTD1k_Label")
    if layout == "sirst_aug":
        return os.path.join(root, subset, "images"), os.path.join(root, subset, "masks")
    return os.path.join(root, "images"), os.path.join(root, "masks")


def _root(data_root: str | None, path: str) -> str:
    if os.path.isabs(path):
        return path
    if not data_root:
        raise DataError(f"{path}: a data root is needed (pass --data-root or set BENCH_DATA)")
    return os.path.join(data_root, path)


class _Folder(Dataset):
    suite = "istd"
    needs_data = True
    parameter_specs = {"path": Param(str, help="relative to the data root, or absolute"),
                       "layout": Param(str, choices=("auto", *LAYOUTS)),
                       "split": Param(str, help="a split folder of the data set, e.g. idx_427 or 50_50"),
                       "subset": Param(str, help="a split file: train, val or test"),
                       "limit": Param(int, min=0, help="0: every image"),
                       "mask_mismatch": Param(str, choices=MISMATCH_POLICIES),
                       "max_pixels": Param(int, min=0, help="0: every image")}

    def files(self, data_root: str | None) -> tuple[str, ...]:
        p = self.params
        out = folder_files(_root(data_root, p["path"]), p["layout"], p["split"], p["subset"], int(p["limit"]),
                           data_root, int(p["max_pixels"]))
        times = reference_times_file(data_root)
        return tuple(out + ([times] if times and os.path.isfile(times) else []))

    def has_subset(self, data_root: str | None, subset: str) -> bool:
        """Whether the folder's split lists ``subset`` (NUDT-SIRST's 50_50 has no ``val``);
        True where the folder is absent, so that loading it says what is missing."""
        p = self.params
        root = _root(data_root, p["path"])
        if not os.path.isdir(root):
            return True
        layout = detect_layout(root) if p["layout"] == "auto" else p["layout"]
        if layout == "sirst_aug":
            return os.path.isdir(layout_folders(root, layout, subset)[0])
        try:
            split_file(root, layout, p["split"], subset)
        except DataError:
            return False
        return True

    def load(self, data_root: str | None) -> IstdData:
        p = self.params
        data = read_folder(_root(data_root, p["path"]), p["layout"], p["split"], p["subset"],
                           int(p["limit"]), p["mask_mismatch"], data_root, int(p["max_pixels"]))
        times = reference_times(data_root, data.names)
        if times:
            import dataclasses
            data = dataclasses.replace(data, reference_times=times)
        return data


#: a split without a val list (NUDT-SIRST's 50_50) trains on its train list less every
#: HOLD_OUT_EVERY-th image, which validate (:func:`hold_out`)
HOLD_OUT_EVERY = 10


def hold_out(data: IstdData, part: str) -> IstdData:
    """``part`` of a train list split for training without a val list: ``val`` its 10th, 20th,
    ... images (list order), ``train`` the others."""
    import dataclasses
    if part not in ("train", "val"):
        raise DataError(f"hold_out: part {part!r}; use train or val")
    keep = [i for i in range(len(data)) if ((i + 1) % HOLD_OUT_EVERY == 0) == (part == "val")]
    images, masks = tuple(data.images[i] for i in keep), tuple(data.masks[i] for i in keep)
    what = (f"every {HOLD_OUT_EVERY}th train image, held out for validation" if part == "val"
            else f"the train list less every {HOLD_OUT_EVERY}th image (held out for validation)")
    return dataclasses.replace(data, names=tuple(data.names[i] for i in keep), images=images, masks=masks,
                               instance_id=data_hash(images, masks), source=f"{data.source}: {what}")


def reference_times_file(data_root: str | None) -> str | None:
    return os.path.join(data_root, "istd", "reference", "ipi_authors_times.csv") if data_root else None


def reference_times(data_root: str | None, names) -> dict[str, float]:
    """Seconds per image of the authors' IPI code (``istd/reference/ipi_authors_times.csv``
    under the data root, SIRST test split) for the images that it lists."""
    path = reference_times_file(data_root)
    if not path or not os.path.isfile(path):
        return {}
    import csv
    with open(path) as f:
        table = {r["image"]: float(r["seconds"]) for r in csv.DictReader(f)}
    return {n: table[n] for n in names if n in table}


@register_dataset
class Sirst(_Folder):
    name = "sirst"
    description = ("SIRST / NUAA-SIRST, 427 real IR images (<data_root>/istd/sirst-v1); split idx_427 "
                   "(test 86) or 50_50 (test 214); limit>0 keeps the first images of the split")
    parameters = {"path": "istd/sirst-v1", "layout": "sirst", "split": "idx_427", "subset": "test",
                  "limit": 0, "mask_mismatch": "resize", "max_pixels": 0}


@register_dataset
class NudtSirst(_Folder):
    """NUDT-SIRST (Li et al., "Dense Nested Attention Network for Infrared Small Target
    Detection", IEEE TIP 2023): 1,327 synthetic-target infrared images of 256x256 in the DNANet
    layout (``images/``, ``masks/``, ``50_50/{train,test}.txt``; ``bench data fetch
    nudt_sirst``). The official 50_50 split has 663 train and 664 test images; the RPCANet and
    L-RPCANet papers quote 662 test images, but no 662-name list is public: the scores here are
    over the 664 of the official list. Two images (``001110``, ``001111``) are stored as RGB
    with unequal channels: they are converted to gray (BT.601 weights, rounded) and the
    conversion is recorded in the row's notes."""

    name = "nudt_sirst"
    description = ("NUDT-SIRST, 1,327 synthetic-target IR images of 256x256 (<data_root>/istd/NUDT-SIRST, "
                   "`bench data fetch nudt_sirst`); the official 50_50 split: train 663, test 664 (the papers "
                   "quote 662; no 662-name list is public, so 664 are scored); limit>0 keeps the first images")
    parameters = {"path": "istd/NUDT-SIRST", "layout": "dnanet", "split": "50_50", "subset": "test",
                  "limit": 0, "mask_mismatch": "resize", "max_pixels": 0}


@register_dataset
class Irstd1k(_Folder):
    """IRSTD-1k (Zhang et al., "ISNet: Shape Matters for Infrared Small Target Detection", CVPR
    2022): 1,001 real infrared images of 512x512, test 201, trainval 800. The images are only on
    the authors' cloud drive (github RuiZhang97/ISNet's README): a manual download, unpacked to
    ``<data_root>/istd/IRSTD-1k`` in the authors' layout (``IRSTD1k_Img/``, ``IRSTD1k_Label/``,
    ``test.txt``, ``trainval.txt``; the BasicIRSTD layout is read too). ``python -m bench data
    verify irstd1k`` checks the test files against the SHA-256 shipped with the project. 85 of
    the official masks are not strictly 0/255: binarised at > 127 (named in the notes)."""

    name = "irstd1k"
    description = ("IRSTD-1k, 1,001 real IR images of 512x512 (manual download to <data_root>/istd/IRSTD-1k, see "
                   "`bench data list irstd1k`; check it with `bench data verify irstd1k`); test 201, trainval 800")
    parameters = {"path": "istd/IRSTD-1k", "layout": "auto", "split": "", "subset": "test",
                  "limit": 0, "mask_mismatch": "resize", "max_pixels": 0}


@register_dataset
class SirstAug(_Folder):
    """SIRST-Aug (the AGPCNet authors' augmented SIRST: Zhang et al., "AGPCNet: Attention-Guided
    Pyramid Context Networks for Infrared Small Target Detection", IEEE TAES 2023): images of
    256x256 in ``trainval/`` and ``test/``, each with ``images/`` and ``masks/``. Only on the
    authors' cloud drive (github Tianfang-Zhang/AGPCNet's README): a manual download, unpacked
    to ``<data_root>/istd/SIRST-Aug``."""

    name = "sirst_aug"
    description = ("SIRST-Aug, the AGPCNet authors' augmented SIRST (manual download to <data_root>/istd/SIRST-Aug, "
                   "see `bench data list sirst_aug`); subsets trainval and test, every image of the folder")
    parameters = {"path": "istd/SIRST-Aug", "layout": "sirst_aug", "split": "", "subset": "test",
                  "limit": 0, "mask_mismatch": "resize", "max_pixels": 0}


@register_dataset
class IstdFolder(_Folder):
    name = "istd_folder"
    description = ("any ISTD set in the BasicIRSTD, DNANet or SIRST layout (e.g. NUDT-SIRST, IRSTD-1k); "
                   "path relative to the data root or absolute")
    parameters = {"path": "istd/NUDT-SIRST", "layout": "auto", "split": "50_50", "subset": "test",
                  "limit": 0, "mask_mismatch": "resize", "max_pixels": 0}
