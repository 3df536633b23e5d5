"""ISTD loaders: each layout read from small files the test writes; conversions, size
mismatch policies, checksum failures; the synthetic generator and the degradations."""
from __future__ import annotations

import hashlib
import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from bench.datasets.istd import Sirst, read_folder, resize_nearest
from bench.datasets.istd_synthetic import IstdSynthetic
from bench.datasets.istd_noise import Clean, GaussianNoise, SaltPepper
from bench.errors import DataError


def _save(path, arr, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path) if mode else Image.fromarray(arr).save(path)


def _scene(i, h=20, w=24):
    img = np.full((h, w), 40 + i, np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[5 + i, 6:8] = 255
    img[mask > 0] = 200
    return img, mask


def _write_basicirstd(root, name="TOY"):
    base = os.path.join(root, name)
    for i in range(3):
        img, mask = _scene(i)
        _save(os.path.join(base, "images", f"{i:06d}.png"), img)
        _save(os.path.join(base, "masks", f"{i:06d}.png"), mask)
    os.makedirs(os.path.join(base, "img_idx"))
    open(os.path.join(base, "img_idx", f"train_{name}.txt"), "w").write("000000\n000001\n")
    open(os.path.join(base, "img_idx", f"test_{name}.txt"), "w").write("000002\n")
    return base


def _write_dnanet(root, name="TOY"):
    base = os.path.join(root, name)
    for i in range(3):
        img, mask = _scene(i)
        _save(os.path.join(base, "images", f"{i:06d}.png"), img)
        _save(os.path.join(base, "masks", f"{i:06d}.png"), mask)
    os.makedirs(os.path.join(base, "50_50"))
    open(os.path.join(base, "50_50", "train.txt"), "w").write("000000\n")
    open(os.path.join(base, "50_50", "test.txt"), "w").write("000001\n000002\n")
    return base


def _write_sirst(root):
    base = os.path.join(root, "sirst-v1")
    img, mask = _scene(0)
    rgb = np.stack([img, img // 2, np.full_like(img, 10)], -1)
    _save(os.path.join(base, "images", "Misc_1.png"), rgb)                       # RGB
    rgba = np.concatenate([rgb, np.full(img.shape + (1,), 255, np.uint8)], -1)
    _save(os.path.join(base, "images", "Misc_2.png"), rgba)                      # RGBA
    _save(os.path.join(base, "masks", "Misc_1_pixels0.png"), mask)
    _save(os.path.join(base, "masks", "Misc_2_pixels0.png"), mask)
    os.makedirs(os.path.join(base, "splits", "idx_427"))
    open(os.path.join(base, "splits", "idx_427", "test.txt"), "w").write("Misc_1\nMisc_2\n")
    return base, img, mask


def test_basicirstd_layout(tmp_path):
    base = _write_basicirstd(str(tmp_path))
    data = read_folder(base, layout="auto", subset="test")
    assert data.names == ("000002",)
    img, mask = _scene(2)
    assert torch.equal(data.images[0], torch.from_numpy(img.astype(np.float32)))
    assert torch.equal(data.masks[0], torch.from_numpy(mask > 0))
    assert read_folder(base, layout="basicirstd", subset="train").names == ("000000", "000001")


def test_dnanet_layout(tmp_path):
    base = _write_dnanet(str(tmp_path))
    data = read_folder(base, layout="auto", split="50_50", subset="test")
    assert data.names == ("000001", "000002")
    assert all(m.dtype == torch.bool for m in data.masks)


def test_sirst_layout_and_gray_conversion(tmp_path):
    base, img, mask = _write_sirst(str(tmp_path))
    data = Sirst(path=base).load(str(tmp_path))
    assert data.names == ("Misc_1", "Misc_2")
    expected = np.round(0.298936021293775 * img + 0.587043074451121 * (img // 2) + 0.114020904255103 * 10)
    np.testing.assert_array_equal(data.images[0].numpy(), expected.astype(np.float32))
    torch.testing.assert_close(data.images[1], data.images[0])   # alpha ignored
    assert any("RGB converted to gray" in n for n in data.notes)
    assert torch.equal(data.masks[0], torch.from_numpy(mask > 0))


def test_size_mismatch_policies(tmp_path):
    base, img, mask = _write_sirst(str(tmp_path))
    big = np.kron(mask, np.ones((2, 2), np.uint8))                # mask twice the image size
    _save(os.path.join(base, "masks", "Misc_2_pixels0.png"), big)
    with pytest.raises(DataError, match=r"Misc_2_pixels0\.png is 48x40 but image .*Misc_2\.png is 24x20"):
        read_folder(base, mask_mismatch="error")
    with pytest.warns(UserWarning, match="mask resized"):
        data = read_folder(base, mask_mismatch="resize")
    assert torch.equal(data.masks[1], torch.from_numpy(mask > 0))  # nearest resize undoes the kron
    with pytest.warns(UserWarning, match="skipped"):
        data = read_folder(base, mask_mismatch="skip")
    assert data.names == ("Misc_1",)
    np.testing.assert_array_equal(resize_nearest(big > 0, mask.shape), mask > 0)


def test_checksum_failure_names_the_file(tmp_path):
    base, _, _ = _write_sirst(str(tmp_path))
    lines = []
    for dirpath, _, files in os.walk(base):
        for f in files:
            p = os.path.join(dirpath, f)
            lines.append(f"{hashlib.sha256(open(p, 'rb').read()).hexdigest()}  ./{os.path.relpath(p, tmp_path)}")
    (tmp_path / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    assert len(Sirst(path="sirst-v1").load(str(tmp_path))) == 2   # all good
    victim = os.path.join(base, "images", "Misc_2.png")
    data = open(victim, "rb").read()
    open(victim, "wb").write(data[: len(data) // 2])                 # truncated
    with pytest.raises(DataError, match=r"checksum mismatch for .*Misc_2\.png"):
        Sirst(path="sirst-v1").load(str(tmp_path))


def test_missing_folder_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no ISTD data folder"):
        Sirst().load(str(tmp_path))


def test_max_pixels_and_limit(tmp_path):
    base = _write_dnanet(str(tmp_path))
    assert read_folder(base, split="50_50", subset="test", limit=1).names == ("000001",)
    assert len(read_folder(base, split="50_50", subset="test", max_pixels=20 * 24)) == 2
    with pytest.raises(DataError, match="no images"):
        read_folder(base, split="50_50", subset="test", max_pixels=100)


def test_the_sample_selection_is_read_once_per_folder_and_again_when_it_changes(tmp_path, monkeypatch):
    from bench.datasets import istd
    base = _write_dnanet(str(tmp_path))
    reads = []
    real = istd.read_split
    monkeypatch.setattr(istd, "read_split", lambda path, manifest=None: reads.append(path) or real(path, manifest))
    first = istd.select_samples(base, "auto", "50_50", "test", 0, 20 * 24, None)
    assert istd.select_samples(base, "auto", "50_50", "test", 0, 20 * 24, None) == first
    assert len(reads) == 1                                   # planning and load: one read
    split = os.path.join(base, "50_50", "test.txt")
    open(split, "w").write("000002\n")
    os.utime(split, ns=(1, 1))                               # a new stamp, even on a coarse clock
    assert istd.select_samples(base, "auto", "50_50", "test", 0, 20 * 24, None)[2] == ["000002"]
    assert len(reads) == 2
    # a memoised selection still checks the split file against the checksums it is given
    with pytest.raises(DataError, match="checksum mismatch"):
        istd.select_samples(base, "auto", "50_50", "test", 0, 20 * 24, None,
                            {os.path.normpath(os.path.abspath(split)): "0" * 64})


def test_real_sirst_split_sizes_and_misc_111(data_root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test = Sirst().load(data_root)
    assert len(test) == 86
    i = test.names.index("Misc_111")
    assert tuple(test.masks[i].shape) == tuple(test.images[i].shape) == (220, 325)
    assert any("Misc_111" in n and "resized" in n for n in test.notes)
    assert len(Sirst(split="50_50").load(data_root)) == 214
    assert test.reference_times and set(test.reference_times) == set(test.names)


def test_synthetic_is_seeded_with_exact_masks_and_disjoint_splits():
    a = IstdSynthetic(n_images=6).load(None)
    b = IstdSynthetic(n_images=6).load(None)
    assert a.instance_id == b.instance_id
    assert all(torch.equal(x, y) for x, y in zip(a.images, b.images))
    train = IstdSynthetic(n_images=6, subset="train").load(None)
    assert train.instance_id != a.instance_id
    areas = []
    for img, m in zip(a.images + train.images, a.masks + train.masks):
        assert img.shape == m.shape and m.dtype == torch.bool
        assert float(img.min()) >= 0 and float(img.max()) <= 255
        from scipy import ndimage
        lab, n = ndimage.label(m.numpy(), structure=np.ones((3, 3)))
        areas += [int((lab == k).sum()) for k in range(1, n + 1)]
    assert areas and min(areas) >= 1 and max(areas) <= 100


def test_degradations_are_seeded():
    img = torch.full((30, 30), 100.0)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    assert torch.equal(Clean().apply(img, g()), img)
    n1, n2 = GaussianNoise(sigma=10.0).apply(img, g()), GaussianNoise(sigma=10.0).apply(img, g())
    assert torch.equal(n1, n2) and 5 < float((n1 - img).std()) < 15
    sp = SaltPepper(density=0.1).apply(img, g())
    changed = sp != img
    assert 0.03 < float(changed.float().mean()) < 0.2
    assert set(sp[changed].unique().tolist()) <= {0.0, 255.0}


# --------------------------------------------------------------------------- data identity and checks
def test_the_dataset_lists_the_files_it_reads(tmp_path):
    base, _, _ = _write_sirst(str(tmp_path))
    assert Sirst(path="sirst-v1", limit=1).files(str(tmp_path)) == (
        os.path.join(base, "splits", "idx_427", "test.txt"), os.path.join(base, "images", "Misc_1.png"),
        os.path.join(base, "masks", "Misc_1_pixels0.png"))


def test_a_cell_scored_with_a_bad_mask_is_never_reused_on_the_real_data(tmp_path):
    """Two data roots without SHA256SUMS, the same dataset selector, one with a wrong mask:
    the cells have different keys, so the row scored on the bad mask is not reused."""
    from bench.grid import build_cells
    from bench.runner import RunOptions, run_grid
    from bench.store import Store

    roots = {}
    for kind in ("bad", "good"):
        root = tmp_path / kind
        base, _, mask = _write_sirst(str(root / "istd"))
        if kind == "bad":
            _save(os.path.join(base, "masks", "Misc_2_pixels0.png"), np.zeros_like(mask))
        roots[kind] = str(root)
    store = Store(str(tmp_path / "r.sqlite"))
    keys = {}
    for kind, root in roots.items():
        cells = build_cells("istd", ["sirst"], ["clean"], ["mpcm"], ["cpu"], 0, data_root=root)
        keys[kind] = cells[0].key
        summary = run_grid(cells, store, RunOptions(data_root=root, repeat=1, warmup=False, threads=1),
                           progress=False)
        assert summary.reused == 0 and summary.done == 1, summary.text()
    assert keys["bad"] != keys["good"]
    assert len(store.frame("istd")) == 2
    store.close()


def test_a_nan_in_an_image_is_refused_naming_the_file(tmp_path):
    """Checked when loaded, before any method runs (ipi used to score it, mpcm to blame itself)."""
    base, img, _ = _write_sirst(str(tmp_path))
    os.remove(os.path.join(base, "images", "Misc_1.png"))
    bad = img.astype(np.float32)
    bad[2, 3] = np.nan
    _save(os.path.join(base, "images", "Misc_1.tif"), bad, mode="F")
    with pytest.raises(DataError, match=r"Misc_1\.tif: 1 non-finite pixel value"):
        read_folder(base)


def test_inverted_size_range_of_the_synthetic_set_is_refused():
    from bench.errors import BadParameterError
    with pytest.raises(BadParameterError, match="min_size=100 is not allowed; min_size must be at most max_size=50"):
        IstdSynthetic(min_size=100, max_size=50)


# --------------------------------------------------------------------------- the papers' sets
def _write_isnet(root):
    """IRSTD-1k as its authors distribute it: IRSTD1k_Img/, IRSTD1k_Label/, test.txt, trainval.txt;
    the second test mask holds 64 beside 255 (as 85 official masks do)."""
    base = os.path.join(root, "IRSTD-1k")
    for i in range(3):
        img, mask = _scene(i)
        if i == 2:
            mask[0, 0] = 64  # background under the > 127 rule
        _save(os.path.join(base, "IRSTD1k_Img", f"XDU{i}.png"), img)
        _save(os.path.join(base, "IRSTD1k_Label", f"XDU{i}.png"), mask)
    open(os.path.join(base, "trainval.txt"), "w").write("XDU0\n")
    open(os.path.join(base, "test.txt"), "w").write("XDU1\nXDU2\n")
    return base


def _write_sirst_aug(root):
    base = os.path.join(root, "SIRST-Aug")
    for sub, ids in (("trainval", (0,)), ("test", (2, 1))):
        for i in ids:
            img, mask = _scene(i)
            _save(os.path.join(base, sub, "images", f"{i:06d}.png"), img)
            _save(os.path.join(base, sub, "masks", f"{i:06d}.png"), mask)
    return base


def test_irstd1k_in_the_authors_layout_binarises_and_names_odd_masks(tmp_path):
    from bench.datasets.istd import MASK_RULE, Irstd1k
    base = _write_isnet(str(tmp_path))
    data = Irstd1k(path=base).load(str(tmp_path))
    assert data.names == ("XDU1", "XDU2") and "(isnet," in data.source
    _, mask = _scene(2)
    assert torch.equal(data.masks[1], torch.from_numpy(mask == 255))  # 64 -> background
    assert data.notes == (f"XDU2: mask not strictly binary, binarised: {MASK_RULE}",)
    assert Irstd1k(path=base, subset="trainval").load(str(tmp_path)).names == ("XDU0",)


def test_sirst_aug_layout_reads_the_subset_folder_in_name_order(tmp_path):
    from bench.datasets.istd import SirstAug
    base = _write_sirst_aug(str(tmp_path))
    data = SirstAug(path=base).load(str(tmp_path))
    assert data.names == ("000001", "000002")
    img, mask = _scene(1)
    assert torch.equal(data.images[0], torch.from_numpy(img.astype(np.float32)))
    assert torch.equal(data.masks[0], torch.from_numpy(mask > 0))
    assert read_folder(base, layout="auto", subset="trainval").names == ("000000",)
    with pytest.raises(DataError, match="no val/images folder"):
        SirstAug(path=base, subset="val").load(str(tmp_path))


def test_manual_downloads_say_how_to_get_them(tmp_path):
    from bench.datasets.istd import Irstd1k, SirstAug
    for cls, words in ((Irstd1k, "RuiZhang97/ISNet"), (SirstAug, "Tianfang-Zhang/AGPCNet")):
        with pytest.raises(DataError) as e:
            cls().load(str(tmp_path))
        assert "manual download" in str(e.value) and words in str(e.value), str(e.value)


def test_nudt_sirst_official_split(data_root):
    from bench.datasets.istd import NudtSirst
    for subset, n in (("test", 664), ("train", 663)):
        with open(os.path.join(data_root, "istd", "NUDT-SIRST", "50_50", f"{subset}.txt")) as f:
            assert len([x for x in f if x.strip()]) == n
    data = NudtSirst(limit=4).load(data_root)
    assert data.names == ("000541", "000832", "000710", "000316")  # the official list's order
    assert all(tuple(im.shape) == (256, 256) for im in data.images)
    assert all(m.any() for m in data.masks)  # none empty
    assert "664" in NudtSirst.description and "662" in NudtSirst.description


def test_a_split_without_a_val_list_trains_and_validates_on_parts_of_its_train_list(tmp_path):
    """NUDT-SIRST's 50_50 split lists train and test only: a training job validates on every
    10th image of the train list and trains on the others (disjoint, together the list); a
    split with a val list keeps it."""
    from bench import registry as R
    from tests.helpers import write_istd_folder

    R.load_all()
    suite = R.SUITES["istd"]
    selector = write_istd_folder(tmp_path, n=25, size=32)
    split = tmp_path / "istd" / "toy" / "50_50"
    (split / "train.txt").write_text((split / "test.txt").read_text())
    train = suite.training_data(selector, "train", str(tmp_path))
    val = suite.training_data(selector, "val", str(tmp_path))
    assert val.samples.names == ("9", "19") and len(train.samples.names) == 23
    assert set(train.samples.names) | set(val.samples.names) == {str(i) for i in range(25)}
    assert train.problem_id != val.problem_id and "held out for validation" in val.source
    (split / "val.txt").write_text("3\n4\n")
    assert suite.training_data(selector, "val", str(tmp_path)).samples.names == ("3", "4")
    assert len(suite.training_data(selector, "train", str(tmp_path)).samples.names) == 25
