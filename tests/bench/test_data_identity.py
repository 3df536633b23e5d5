"""The identity of the data files a cell reads (bench.data_identity): digests hashed once
and cached by path, size and mtime; the check against the data root's SHA256SUMS; every
dataset that reads files lists them."""
import hashlib
import json
import os

import pytest

from bench import data_identity as D
from bench import registry as R
from bench.errors import DataError


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "CACHE_FILE", str(tmp_path / "cache" / "data_sha256.json"))
    D.clear_memo()
    yield
    D.clear_memo()


def test_a_file_is_hashed_once_and_the_digest_cached(tmp_path, monkeypatch):
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    assert D.file_sha256(str(f)) == hashlib.sha256(b"abc").hexdigest()
    D.flush()
    table = json.load(open(D.CACHE_FILE))
    assert table[str(f)][2] == hashlib.sha256(b"abc").hexdigest()
    # a new process (memo cleared) reads the cache file instead of hashing again
    expected = hashlib.sha256(b"abc").hexdigest()
    D.clear_memo()
    monkeypatch.setattr(D.hashlib, "sha256", lambda *a: (_ for _ in ()).throw(AssertionError("hashed again")))
    assert D.file_sha256(str(f)) == expected


def test_a_changed_file_is_hashed_again(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    first = D.file_sha256(str(f))
    f.write_bytes(b"abd")
    os.utime(f, ns=(1, 1))  # another mtime, same size
    assert D.file_sha256(str(f)) == hashlib.sha256(b"abd").hexdigest() != first
    assert D.file_sha256(str(tmp_path / "missing")) is None


def test_verify_names_the_file_and_the_fetch_command(tmp_path):
    f = tmp_path / "cs" / "Set11" / "Monarch.tif"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"zeros")
    (tmp_path / "SHA256SUMS").write_text("0" * 64 + "  ./cs/Set11/Monarch.tif\n")
    with pytest.raises(DataError, match=r"Monarch\.tif.*SHA256SUMS.*bench data fetch set11"):
        D.verify(str(f), str(tmp_path))
    (tmp_path / "SHA256SUMS").write_text(hashlib.sha256(b"zeros").hexdigest() + "  ./cs/Set11/Monarch.tif\n")
    D.verify(str(f), str(tmp_path))  # listed with its hash: passes
    D.verify(str(tmp_path / "other.tif"), str(tmp_path))  # not listed: passes


def test_identity_is_the_paths_under_the_root_and_the_bytes(tmp_path):
    for root in ("a", "b"):
        (tmp_path / root).mkdir()
        (tmp_path / root / "f").write_bytes(b"same")
    ids = [D.files_identity([str(tmp_path / r / "f")], str(tmp_path / r)) for r in ("a", "b")]
    assert ids[0] == ids[1] != ""
    assert D.files_identity([], str(tmp_path)) == ""
    assert D.files_identity([str(tmp_path / "a" / "gone")], str(tmp_path / "a")) not in ("", ids[0])


def test_every_dataset_that_reads_files_lists_them(data_root):
    """Each registered dataset with ``needs_data`` lists the files it reads under the real
    data root (those of the shipped data sets exist); generated ones list none."""
    R.load_all()
    for name, cls in R.DATASETS.items():
        ds = cls()
        if not cls.needs_data:
            assert tuple(ds.files(data_root)) == (), name
            continue
        if name in ("hsi_mat", "istd_folder", "icvl", "pavia_u", "dc_mall", "irstd1k", "sirst_aug"):  # users' copies
            continue
        files = ds.files(data_root)
        assert files, name
        missing = [f for f in files if not os.path.isfile(f)]
        assert not missing, (name, missing[:3])


def test_every_dataset_that_reads_files_overrides_the_listing():
    """A dataset with ``needs_data`` that kept the default listing (no file) would leave its
    files out of its cells' keys."""
    R.load_all()
    forgot = [n for n, cls in R.DATASETS.items() if cls.needs_data and cls.files is R.Dataset.files]
    assert not forgot, forgot


def test_a_listing_that_fails_gives_a_marker_not_an_error(tmp_path):
    """A missing folder: the key gets a marker (the load then fails the cell by name)."""
    R.load_all()
    ident = D.dataset_identity(R.DATASETS["sirst"](), str(tmp_path))
    assert ident.startswith("unlisted:")
