"""The data manifest as data: the registry files are pooch's own format, read at import,
and list exactly the shared data's SHA256SUMS; ``bench data verify irstd1k`` checks a copy
file by file against the shipped hashes and names the mask rule."""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
from PIL import Image

from bench import data_manifest as M
from bench.cli import main

pooch = pytest.importorskip("pooch")


def _pooch_registry(name):
    p = pooch.create(path="unused", base_url="https://example.invalid/")
    p.load_registry(os.path.join(M.REGISTRY_DIR, name))
    return p.registry


def test_the_registries_are_pooch_registry_files_read_at_import():
    assert {p: f"{s}" for p, _, s in M.ALL_FILES} == _pooch_registry("data.txt")
    assert {p: s for p, _, s in M.ALL_WEIGHT_FILES} == _pooch_registry("weights.txt")
    assert len(_pooch_registry("irstd1k_test.txt")) == 402
    assert all(size > 0 for _, size, _ in M.ALL_FILES + M.ALL_WEIGHT_FILES)
    # every data file belongs to one data set; the by-hand sets have none
    claimed = [f[0] for d in M.DATASETS for f in d.files]
    assert sorted(claimed) == sorted(p for p, _, _ in M.ALL_FILES)
    assert all(not d.files and d.manual for d in M.DATASETS if d.by_hand)


def test_the_registry_matches_the_shared_sha256sums_and_sizes(data_root):
    sums = {}
    with open(os.path.join(data_root, "SHA256SUMS")) as f:
        for line in f:
            sha, path = line.split()
            sums[path[2:] if path.startswith("./") else path] = sha
    assert {p: s for p, _, s in M.ALL_FILES} == sums
    for path, size, _ in M.ALL_FILES[::97]:
        assert os.path.getsize(os.path.join(data_root, path)) == size, path


def test_a_broken_registry_line_is_named(tmp_path, monkeypatch):
    (tmp_path / "x.txt").write_text("# comment\na/b.png " + "0" * 64 + "\nc/d.png nothex\n")
    (tmp_path / "x_sizes.txt").write_text("a/b.png 3\nc/d.png 4\n")
    monkeypatch.setattr(M, "REGISTRY_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=r"x.txt:3: c/d.png: not a SHA-256"):
        M.read_registry("x")
    (tmp_path / "x.txt").write_text("a/b.png " + "0" * 64 + "\n")
    with pytest.raises(ValueError, match="x_sizes.txt lists 1 file"):  # a size without its registry line
        M.read_registry("x")
    (tmp_path / "x_sizes.txt").write_text("a/b.png 3\n")
    assert M.read_registry("x") == (("a/b.png", 3, "0" * 64),)


def test_nudt_sirst_is_in_the_manifest_with_its_public_sources():
    from bench.data import select
    (it,) = select(["nudt_sirst"])
    assert len(it.files) == 2 * 1327 + 2 and "664" in it.title and "662" in it.title
    urls = {p: u for p, _, _, u in it.files}
    assert urls["istd/NUDT-SIRST/images/000001.png"] == (
        "https://github.com/15730845297/Infrared-Small-Target-Detection/raw/0d42d23/dataset/NUDT-SIRST/images/000001.png")
    assert urls["istd/NUDT-SIRST/50_50/test.txt"] == (
        "https://github.com/YeRen123455/Infrared-Small-Target-Detection/raw/21584be/dataset/NUDT-SIRST/50_50/test.txt")
    assert it.crlf_paths == {"istd/NUDT-SIRST/50_50/test.txt", "istd/NUDT-SIRST/50_50/train.txt"}


def test_the_shipped_irstd1k_hashes_are_the_reference_folders(data_root):
    ref = os.path.join(data_root, "istd", "IRSTD-1k-reference")
    rows = [line.rstrip("\n").split("\t") for line in open(os.path.join(ref, "expected_test_sha256.tsv"))
            if line.strip() and not line.startswith("#")]
    reg = _pooch_registry("irstd1k_test.txt")
    assert {f"IRSTD1k_Img/{n}.png": i for n, i, _, _ in rows} | {f"IRSTD1k_Label/{n}.png": m for n, _, m, _ in rows} == reg
    names = [x.strip() for x in open(os.path.join(ref, "test.txt")) if x.strip()]
    assert [n for n, *_ in rows] == names and len(names) == 201


# --------------------------------------------------------------------------- verify
def _copy(tmp_path, layout="isnet"):
    """A small IRSTD-1k-like copy (3 test names) and a registry of its hashes; the mask of
    XDU2 holds 64 (as 85 official masks do)."""
    img_dir, mask_dir = ("IRSTD1k_Img", "IRSTD1k_Label") if layout == "isnet" else ("images", "masks")
    base = tmp_path / "IRSTD-1k"
    lines = []
    for i in range(3):
        img = np.full((8, 8), 30 + i, np.uint8)
        mask = np.zeros((8, 8), np.uint8)
        mask[2, 2:4] = 255
        if i == 2:
            mask[5, 5] = 64
        for d, arr in ((img_dir, img), (mask_dir, mask)):
            (base / d).mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(base / d / f"XDU{i}.png")
    for d, reg in ((img_dir, "IRSTD1k_Img"), (mask_dir, "IRSTD1k_Label")):
        for i in range(3):
            lines.append(f"{reg}/XDU{i}.png {hashlib.sha256((base / d / f'XDU{i}.png').read_bytes()).hexdigest()}")
    (tmp_path / "reg").mkdir()
    (tmp_path / "reg" / "irstd1k_test.txt").write_text("# test registry\n" + "\n".join(lines) + "\n")
    (base / "test.txt").write_text("XDU0\nXDU1\nXDU2\n")
    return base


@pytest.mark.parametrize("layout", ["isnet", "basicirstd"])
def test_verify_checks_each_file_and_names_the_mask_rule(tmp_path, monkeypatch, capsys, layout):
    import bench.data_verify as V
    base = _copy(tmp_path, layout)
    monkeypatch.setattr(V, "REGISTRY_DIR", str(tmp_path / "reg"))
    assert main(["data", "verify", "irstd1k", "--path", str(base)]) == 0
    out = capsys.readouterr().out
    assert "6 of 6 match the shipped SHA-256, 0 differ, 0 missing" in out
    assert "test list test.txt: 3 names, the official 3" in out
    assert "masks: 1 of 3" in out and "64 (1 masks)" in out
    assert "> 127" in out and "it makes 1 pixel(s) background" in out
    assert "verified: every test file matches" in out
    # a changed image and a missing mask: exit 1, both named
    img = "IRSTD1k_Img" if layout == "isnet" else "images"
    mask = "IRSTD1k_Label" if layout == "isnet" else "masks"
    (base / img / "XDU1.png").write_bytes(b"not a png")
    os.remove(base / mask / "XDU0.png")
    assert main(["data", "verify", "irstd1k", "--path", str(base)]) == 1
    out = capsys.readouterr().out
    assert "4 of 6 match the shipped SHA-256, 1 differ, 1 missing" in out
    assert f"differ: {img}/XDU1.png" in out and "missing: IRSTD1k_Label/XDU0.png" in out
    assert "NOT verified: 2 test file(s)" in out


def test_verify_without_a_copy_or_of_an_unknown_set(tmp_path, capsys):
    assert main(["data", "verify", "irstd1k", "--data-root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no copy at" in err and "download it by hand" in err
    assert main(["data", "verify", "set11", "--data-root", str(tmp_path)]) == 2
    assert "valid data sets: irstd1k" in capsys.readouterr().err
