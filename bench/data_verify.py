"""``python -m bench data verify irstd1k [--path DIR]``: check a user's copy of a data set that
is a manual download against the hashes shipped with the project, file by file.

IRSTD-1k (the only such set with shipped hashes): its images are only on the authors' cloud
drive, so the project cannot fetch them; ``bench/data_registry/irstd1k_test.txt`` (pooch's
registry format) holds the SHA-256 of each of the 201 official test images and masks as
distributed. The copy is read in the authors' layout (``IRSTD1k_Img/``, ``IRSTD1k_Label/``,
``test.txt``) or the BasicIRSTD/DNANet one (``images/``, ``masks/``). The command reports, for
the test files, how many match, differ or are missing (naming the first of each), whether the
copy's test list is the official one, and the mask binarisation rule the loader applies with
what it does to this copy: how many masks are not strictly 0/255 (85 of the official 1,001
are not) and how many of their pixels the rule makes background that a "> 0" rule would make
target. Exit 0 when every test file matches, 1 otherwise (or when there is no copy).
"""
from __future__ import annotations

import os

from bench import paths
from bench.data import sha256_of
from bench.data_manifest import REGISTRY_DIR
from bench.errors import DataError, UnknownNameError

#: data sets with shipped hashes of a manual download: name -> (registry file, folder under the data root)
VERIFIABLE = {"irstd1k": ("irstd1k_test.txt", "istd/IRSTD-1k")}
#: the registry's folders (the authors' layout) -> the BasicIRSTD/DNANet layout's
ALT_FOLDERS = {"IRSTD1k_Img": "images", "IRSTD1k_Label": "masks"}


def read_pooch_registry(path: str) -> list[tuple[str, str]]:
    """(path, sha256) per line of a registry file in pooch's format."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                rel, sha = line.split()[:2]
                out.append((rel, sha.lower().removeprefix("sha256:")))
    return out


def _locate(folder: str, rel: str) -> str:
    """The user's file for a registry path: as given, else in the other layout's folder."""
    direct = os.path.join(folder, rel)
    if os.path.isfile(direct):
        return direct
    top, _, rest = rel.partition("/")
    return os.path.join(folder, ALT_FOLDERS.get(top, top), rest)


def _test_list(folder: str) -> str | None:
    for cand in ("test.txt", os.path.join("50_50", "test.txt")):
        if os.path.isfile(os.path.join(folder, cand)):
            return os.path.join(folder, cand)
    idx = os.path.join(folder, "img_idx")
    if os.path.isdir(idx):
        hits = sorted(f for f in os.listdir(idx) if f.startswith("test"))
        if hits:
            return os.path.join(idx, hits[0])
    return None


def mask_report(mask_dir: str) -> tuple[int, int, int, dict[int, int]]:
    """Over every mask of ``mask_dir``: (masks read, masks not strictly {0, 255}, pixels of
    those in 1..127 (background under the > 127 rule, target under > 0), {value: masks})
    for the values other than 0 and 255."""
    import numpy as np
    from PIL import Image

    n = bad = low = 0
    values: dict[int, int] = {}
    for f in sorted(os.listdir(mask_dir)):
        if not f.lower().endswith((".png", ".bmp", ".tif", ".tiff")):
            continue
        with Image.open(os.path.join(mask_dir, f)) as im:
            arr = np.array(im.convert("L") if im.mode not in ("L", "1") else im).astype(np.int64)
        n += 1
        u = np.unique(arr)
        odd = [int(v) for v in u if v not in (0, 255)]
        if odd:
            bad += 1
            low += int(((arr > 0) & (arr <= 127)).sum())
            for v in odd:
                values[v] = values.get(v, 0) + 1
    return n, bad, low, values


def verify(name: str, path: str | None = None, data_root: str | None = None, echo=print) -> int:
    """``bench data verify NAME``: the exit status (see the module docstring)."""
    from bench.datasets.istd import MASK_RULE

    if name not in VERIFIABLE:
        raise UnknownNameError(f"no shipped hashes to verify {name!r} against", valid=sorted(VERIFIABLE),
                               what="data set")
    registry, under = VERIFIABLE[name]
    folder = path or os.path.join(paths.data_root(data_root), under)
    if not os.path.isdir(folder):
        raise DataError(f"{name}: no copy at {folder}: download it by hand (`python -m bench data list {name}` says "
                        f"how and where) or pass --path to the folder that holds it")
    entries = read_pooch_registry(os.path.join(REGISTRY_DIR, registry))
    ok, differ, missing = [], [], []
    for rel, sha in entries:
        f = _locate(folder, rel)
        if not os.path.isfile(f):
            missing.append(rel)
        elif sha256_of(f) != sha:
            differ.append(os.path.relpath(f, folder))
        else:
            ok.append(rel)
    echo(f"{name}: {folder}")
    echo(f"  test files (images and masks): {len(ok)} of {len(entries)} match the shipped SHA-256, "
         f"{len(differ)} differ, {len(missing)} missing")
    for label, items in (("differ", differ), ("missing", missing)):
        if items:
            echo(f"    {label}: {', '.join(items[:5])}" + (f" and {len(items) - 5} more" if len(items) > 5 else ""))
    official = [os.path.basename(r).rsplit(".", 1)[0] for r, _ in entries if r.startswith("IRSTD1k_Img/")]
    lst = _test_list(folder)
    if lst is None:
        echo("  test list: none found (test.txt); the loader needs it")
    else:
        with open(lst) as f:
            names = [os.path.splitext(x.strip())[0] for x in f if x.strip()]
        same = sorted(names) == sorted(official)
        echo(f"  test list {os.path.relpath(lst, folder)}: {len(names)} names, "
             + (f"the official {len(official)}" if same else f"NOT the official {len(official)} "
                f"({len(set(official) - set(names))} official names absent, {len(set(names) - set(official))} extra)"))
    mask_dir = next((os.path.join(folder, d) for d in ("IRSTD1k_Label", "masks")
                     if os.path.isdir(os.path.join(folder, d))), None)
    if mask_dir is not None:
        n, bad, low, values = mask_report(mask_dir)
        shown = ", ".join(f"{v} ({c} masks)" for v, c in sorted(values.items())[:6])
        echo(f"  masks: {bad} of {n} in {os.path.relpath(mask_dir, folder)}/ are not strictly 0/255"
             + (f" (other values: {shown}{', ...' if len(values) > 6 else ''})" if bad else ""))
        echo(f"  binarisation rule applied by the loader: {MASK_RULE}; in this copy it makes {low} pixel(s) "
             f"background that a '> 0' rule would make target")
    bad_files = len(differ) + len(missing)
    echo(f"{name}: " + ("verified: every test file matches" if not bad_files else
                        f"NOT verified: {bad_files} test file(s) differ or are missing"))
    return 0 if not bad_files else 1
