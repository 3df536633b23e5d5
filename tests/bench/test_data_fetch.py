"""``bench data list`` / ``bench data fetch``: statuses without any root, downloads verified
against the manifest, interrupted and corrupt downloads retried and never used. Against a
real HTTP server on 127.0.0.1 serving a temporary mirror (no external network here)."""
from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import threading

import pytest

from bench.cli import main
from bench.data import items, select
from bench.data_manifest import ALL_FILES, ALL_WEIGHT_FILES, DATASETS
from bench.weights import MANIFEST

pytest.importorskip("pooch")


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the mirror folder; ``faults[path]`` is a list of what to do with the next
    requests of that path: ``truncate`` (promise the whole file, send half, hang up) or
    ``corrupt`` (send the right length of wrong bytes)."""

    faults: dict = {}
    hits: dict = {}

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.lstrip("/")
        type(self).hits[path] = type(self).hits.get(path, 0) + 1
        todo = type(self).faults.get(path)
        if todo:
            mode = todo.pop(0)
            body = open(os.path.join(self.directory, path), "rb").read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if mode == "truncate":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(bytes(b ^ 0xFF for b in body))
            return
        super().do_GET()


@pytest.fixture
def mirror(tmp_path, data_root, weights_root):
    """A mirror of Set11 and one weights file served on 127.0.0.1; yields (url, handler)."""
    root = tmp_path / "mirror"
    shutil.copytree(os.path.join(data_root, "cs", "Set11"), root / "data" / "cs" / "Set11")
    (root / "weights" / "star_net").mkdir(parents=True)
    shutil.copy(os.path.join(weights_root, "star_net", "sigma50_bandwise.ckpt"), root / "weights" / "star_net")
    handler = type("H", (_Handler,), {"faults": {}, "hits": {}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.root = str(root)
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def _roots(tmp_path):
    return ["--data-root", str(tmp_path / "d"), "--weights-root", str(tmp_path / "w")]


def test_fetch_from_a_loopback_mirror(tmp_path, mirror, capsys):
    url, handler = mirror
    rc = main(["data", "fetch", "set11", "star_net", "--mirror", url, *_roots(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "set11: 11 downloaded, 0 already present; 11 file(s) verified" in out
    (ds,) = [d for d in DATASETS if d.name == "set11"]
    for path, size, sha in ds.files:
        got = tmp_path / "d" / path
        assert got.stat().st_size == size and _sha(got) == sha
    assert _sha(tmp_path / "w" / "star_net" / "sigma50_bandwise.ckpt") == MANIFEST_BY_PATH["star_net/sigma50_bandwise.ckpt"]
    # listed as present; a second fetch downloads nothing
    assert main(["data", "list", "set11", "star_net:sigma50_bandwise", *_roots(tmp_path)]) == 0
    assert "2 item(s): 2 present, 0 missing, 0 corrupt" in capsys.readouterr().out
    before = sum(handler.hits.values())
    assert main(["data", "fetch", "set11", "--mirror", url, *_roots(tmp_path)]) == 0
    assert "0 downloaded, 11 already present" in capsys.readouterr().out
    assert sum(handler.hits.values()) == before


MANIFEST_BY_PATH = {e.path: e.sha256 for e in MANIFEST}


def test_an_interrupted_download_is_retried(tmp_path, mirror, capsys):
    url, handler = mirror
    handler.faults["data/cs/Set11/Monarch.tif"] = ["truncate"]
    rc = main(["data", "fetch", "set11", "--mirror", url, *_roots(tmp_path)])
    assert rc == 0, capsys.readouterr().out
    assert handler.hits["data/cs/Set11/Monarch.tif"] == 2
    got = tmp_path / "d" / "cs" / "Set11" / "Monarch.tif"
    assert _sha(got) == dict((p, s) for p, _, s in ALL_FILES)["cs/Set11/Monarch.tif"]


def test_a_corrupt_download_is_retried_then_refused_never_used(tmp_path, mirror, capsys):
    url, handler = mirror
    handler.faults["data/cs/Set11/house.tif"] = ["corrupt"] * 5
    handler.faults["data/cs/Set11/boats.tif"] = ["corrupt"]  # once: the retry gets the right bytes
    rc = main(["data", "fetch", "set11", "--mirror", url, "--retries", "2", *_roots(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "1 FAILED" in out and "house.tif" in out
    assert handler.hits["data/cs/Set11/house.tif"] == 3  # the first try and 2 retries
    folder = tmp_path / "d" / "cs" / "Set11"
    assert not (folder / "house.tif").exists()
    served = os.listdir(os.path.join(handler.root, "data", "cs", "Set11"))
    assert sorted(os.listdir(folder)) == sorted(f for f in served if f != "house.tif")  # no half or temporary file
    assert (folder / "boats.tif").exists()
    assert main(["data", "list", "set11", *_roots(tmp_path)]) == 0
    assert "missing (1/11 files)" in capsys.readouterr().out


def test_a_corrupt_local_file_is_listed_and_fetched_again(tmp_path, mirror, capsys):
    url, _ = mirror
    target = tmp_path / "d" / "cs" / "Set11" / "lena256.tif"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not a tif")
    assert main(["data", "list", "set11", *_roots(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "corrupt (1/11 files)" in out and "cs/Set11/lena256.tif" in out
    assert main(["data", "fetch", "set11", "--mirror", url, *_roots(tmp_path)]) == 0
    assert _sha(target) == dict((p, s) for p, _, s in ALL_FILES)["cs/Set11/lena256.tif"]


def test_list_works_without_any_root(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "nowhere" / "data"))
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path / "nowhere" / "weights"))
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert f"data root: {tmp_path / 'nowhere' / 'data'} ($BENCH_DATA, does not exist yet)" in out
    n, hand = len([d for d in DATASETS if not d.by_hand]) + len(MANIFEST), sum(d.by_hand for d in DATASETS)
    assert f"{n} item(s): 0 present, {n} missing, 0 corrupt; {hand} manual download(s), listed above" in out
    assert "python -m bench data fetch sirst" in out
    assert "Dai, Wu, Zhou, Barnard" in out  # what to cite
    assert not (tmp_path / "nowhere").exists()  # listing creates nothing


def test_list_with_the_shared_roots_says_present(data_root, weights_root, capsys):
    assert main(["data", "list", "--data-root", data_root, "--weights-root", weights_root]) == 0
    n = len([d for d in DATASETS if not d.by_hand]) + len(MANIFEST)
    out = capsys.readouterr().out
    assert f"{n} item(s): {n} present, 0 missing, 0 corrupt" in out
    # the sets users download by hand: how, from where and where to put them
    for name, words in (("irstd1k", "RuiZhang97/ISNet"), ("sirst_aug", "Tianfang-Zhang/AGPCNet"),
                        ("icvl", "icvl.cs.bgu.ac.il"), ("paviau", "PaviaU.mat"), ("dc_mall", "MultiSpec")):
        block = out.split(f"\n{name} ", 1)[1].split("\n    put it", 1)[0]
        assert "manual download" in block and words in block, block


def test_unknown_name_and_manual_sources(tmp_path, capsys):
    assert main(["data", "fetch", "no_such_set", *_roots(tmp_path)]) == 2
    assert "no data set or weights named 'no_such_set'" in capsys.readouterr().err
    assert main(["data", "fetch", "istd_reference", *_roots(tmp_path)]) == 1
    assert "no direct download" in capsys.readouterr().out
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_fetch_all_from_a_mirror_of_the_shared_roots(tmp_path, data_root, weights_root, capsys):
    """`fetch all` against a loopback server serving the shared roots themselves: every file
    of every set arrives and verifies; the set with no direct download is a note, not an error."""
    root = tmp_path / "mirror"
    root.mkdir()
    os.symlink(data_root, root / "data")
    os.symlink(weights_root, root / "weights")
    handler = type("H", (_Handler,), {"faults": {}, "hits": {}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sel = ["data", "weights"]
        # without the mirror, istd_reference is only a note within `data`; the mirror serves it too
        rc = main(["data", "fetch", *sel, "--mirror", f"http://127.0.0.1:{server.server_address[1]}",
                   *_roots(tmp_path)])
    finally:
        server.shutdown()
        server.server_close()
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "FAILED" not in out
    n = len([d for d in DATASETS if not d.by_hand]) + len(MANIFEST)
    assert main(["data", "list", *_roots(tmp_path)]) == 0
    assert f"{n} item(s): {n} present, 0 missing, 0 corrupt" in capsys.readouterr().out
    assert sum(handler.hits.values()) == len(ALL_FILES) + len(ALL_WEIGHT_FILES)


def test_fetch_all_notes_the_set_without_a_download(tmp_path, capsys, monkeypatch):
    import bench.data as D
    monkeypatch.setattr(D, "fetch_file", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    rc = main(["data", "fetch", "istd_reference", "set11", *_roots(tmp_path)])
    assert rc == 1
    out = capsys.readouterr().out
    assert "istd_reference: cannot be fetched" in out and "set11: 0 downloaded, 0 already present, 11 FAILED" in out
    monkeypatch.setattr(D, "select", lambda names: [i for i in D.items() if i.name == "istd_reference"])
    assert main(["data", "fetch", "data", *_roots(tmp_path)]) == 0  # within a group: a note only
    assert "istd_reference: skipped, no direct download" in capsys.readouterr().out


def test_nudt_sirst_from_a_loopback_mirror_with_crlf_split_lists(tmp_path, data_root, capsys, monkeypatch):
    """`fetch nudt_sirst` (a few of its files, to stay quick): images and masks arrive as served;
    the split lists are served with CRLF line ends, as in the official repository, and arrive
    as the LF files the manifest's hashes describe."""
    import dataclasses

    import bench.data as D
    root = tmp_path / "mirror" / "data" / "istd" / "NUDT-SIRST"
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
        for n in ("000001", "000002"):
            shutil.copy(os.path.join(data_root, "istd", "NUDT-SIRST", sub, f"{n}.png"), root / sub)
    (root / "50_50").mkdir()
    for sub in ("test", "train"):
        text = open(os.path.join(data_root, "istd", "NUDT-SIRST", "50_50", f"{sub}.txt"), "rb").read()
        assert b"\r" not in text
        (root / "50_50" / f"{sub}.txt").write_bytes(text.replace(b"\n", b"\r\n"))
    handler = type("H", (_Handler,), {"faults": {}, "hits": {}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(tmp_path / "mirror")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (full,) = select(["nudt_sirst"])
    few = tuple(f for f in full.files if f[0].split("/")[-1] in ("000001.png", "000002.png", "test.txt", "train.txt"))
    monkeypatch.setattr(D, "select", lambda names: [dataclasses.replace(full, files=few)])
    # a corrupt split list is refused, never used
    handler.faults["data/istd/NUDT-SIRST/50_50/test.txt"] = ["corrupt"] * 3
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert main(["data", "fetch", "nudt_sirst", "--mirror", url, *_roots(tmp_path)]) == 1
        out = capsys.readouterr().out
        assert "nudt_sirst: 5 downloaded, 0 already present, 1 FAILED" in out and "50_50/test.txt" in out
        assert not (tmp_path / "d" / "istd" / "NUDT-SIRST" / "50_50" / "test.txt").exists()
        assert os.listdir(tmp_path / "d" / "istd" / "NUDT-SIRST" / "50_50") == ["train.txt"]  # no temporary files
        assert main(["data", "fetch", "nudt_sirst", "--mirror", url, *_roots(tmp_path)]) == 0
        assert "nudt_sirst: 1 downloaded, 5 already present; 6 file(s) verified" in capsys.readouterr().out
    finally:
        server.shutdown()
        server.server_close()
    for path, size, sha, _ in few:
        got = tmp_path / "d" / path
        assert got.stat().st_size == size and _sha(got) == sha, path


def test_manifest_matches_the_checksum_files_and_the_weights_manifest(data_root, weights_root):
    def sums(root):
        out = {}
        for line in open(os.path.join(root, "SHA256SUMS")):
            sha, path = line.split()
            out[path[2:] if path.startswith("./") else path] = sha
        return out
    assert {p: s for p, _, s in ALL_FILES} == sums(data_root)
    assert {p: s for p, _, s in ALL_WEIGHT_FILES} == sums(weights_root) == {e.path: e.sha256 for e in MANIFEST}
    for path, size, _ in ALL_FILES[:50]:
        assert os.path.getsize(os.path.join(data_root, path)) == size


def test_sources_are_the_readmes_github_files():
    (set11,) = select(["set11"])
    assert set11.files[0][3] == "https://github.com/jianzhangcs/ISTA-Net-PyTorch/raw/HEAD/data/Set11/Monarch.tif"
    (cave,) = select(["cave"])
    urls = {p: u for p, _, _, u in cave.files}
    assert urls["hsi/cave/cloth_256.mat"] == ("https://github.com/zhazhiyuan/NRR_HSI_Denoising_Demo/raw/3f91106/"
                                              "Data/cloth_ms_256.mat")
    (w,) = select(["rpcanet:sirst"])
    assert w.files[0][3] == "https://github.com/fengyiwu98/RPCANet/raw/25da080/result/ISTD/SIRST/RPCANet.pkl"
    # every item but the one made for this project has a download address for every file
    assert all(all(f[3] for f in i.files) for i in items() if not i.manual)


def test_missing_data_messages_name_the_set_the_root_and_the_fetch_command(tmp_path):
    from bench import registry as R
    from bench.errors import DataError
    R.load_all()
    root = str(tmp_path / "empty")
    for dataset, name in (("sirst", "sirst"), ("cave", "cave"), ("set11", "set11"), ("simu_indian", "simu_indian")):
        with pytest.raises(DataError) as e:
            R.DATASETS[dataset]().load(root)
        msg = str(e.value)
        assert f"the {name} data set" in msg and f"data root {root}" in msg, msg
        assert f"python -m bench data fetch {name}" in msg and "shared" not in msg, msg
