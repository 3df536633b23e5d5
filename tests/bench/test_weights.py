"""The weights layer (:mod:`bench.weights`): the manifest of published weights, the weights
root, ``python -m bench weights``, and what a grid does with a published file that is
missing (skipped with where to download it), corrupt (its cell fails naming it, the others
run) or unknown (exit 2 with the valid names); the file's bytes are part of the cell key.

The tests that read ``../shared/weights`` skip without it (the ``weights_root`` fixture)."""
from __future__ import annotations

import os
import shutil

import pytest

from bench import paths
from bench import registry as R
from bench import weights as W
from bench.cli import main
from bench.errors import CheckpointError
from bench.grid import build_cells
from bench.runner import RunOptions, run_grid
from bench.store import Store

R.load_all()
SUITE = R.SUITES["istd"]
TINY = "istd_synthetic[n_images=2,min_size=48,max_size=56]"
SIRST = "rpcanet[checkpoint=published:sirst]"
pytestmark = pytest.mark.usefixtures("one_thread")

#: what the weights README lists: every one must be in the manifest
EXPECTED = ({("rpcanet", n) for n in ("sirst", "nudt_sirst", "irstd_1k", "sirst_aug")}
            | {("l_rpcanet", n) for n in ("nudt_sirst", "irstd_1k", "sirst_aug")}
            | {(m, f"ratio_{r}") for m in ("ista_net", "ista_net_plus") for r in (1, 4, 10, 25, 30, 40)}
            | {("star_net", "sigma50_bandwise")}
            | {("smds_net", f"icvl_sigma{s}") for s in (15, 55, 95)})


def _sums(root: str) -> dict[str, str]:
    out = {}
    with open(os.path.join(root, "SHA256SUMS")) as f:
        for line in f:
            if line.strip():
                digest, name = line.split()
                out[name[2:] if name.startswith("./") else name] = digest
    return out


def _copy(weights_root: str, rel: str, dest_root) -> str:
    dest = os.path.join(str(dest_root), *rel.split("/"))
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    shutil.copyfile(os.path.join(weights_root, *rel.split("/")), dest)
    return dest


def _corrupt(path: str) -> None:
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # as a later write would


# --------------------------------------------------------------------------- the manifest
def test_the_manifest_lists_every_published_weight_set_once():
    assert {(e.method, e.name) for e in W.MANIFEST} == EXPECTED
    assert len(W.MANIFEST) == len(EXPECTED)
    for e in W.MANIFEST:
        assert e.repo and e.commit and e.source_path and e.licence and e.trained_on and e.parameters > 0
        assert e.protocol in W.PROTOCOLS
    counts = {(e.method, e.name): e.parameters for e in W.entries(suite="istd")}
    assert counts[("l_rpcanet", "sirst_aug")] == 215_916  # the slides' "0.216M"
    assert W.find_published("rpcanet", "published:sirst").figure["iou"] == 70.37


def test_the_manifest_hashes_are_those_of_sha256sums(weights_root):
    """The project carries its own expected hashes (a user downloads the files): they must be
    the weights folder's SHA256SUMS, file for file."""
    sums = _sums(weights_root)
    assert {e.path: e.sha256 for e in W.MANIFEST} == sums


def test_every_published_file_is_present_and_intact(weights_root):
    assert {e.path: W.status(e, weights_root) for e in W.MANIFEST} == {e.path: "present" for e in W.MANIFEST}


def test_the_weights_root_is_the_option_else_the_environment_else_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path / "env"))
    assert paths.weights_root(str(tmp_path / "opt")) == str(tmp_path / "opt")
    assert paths.weights_root() == str(tmp_path / "env")
    monkeypatch.delenv("BENCH_WEIGHTS")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert paths.weights_root() == os.path.join(str(tmp_path / "cache"), "imaging-bench", "weights")
    entry = W.find_published("rpcanet", "published:sirst")
    assert W.file_of(entry, str(tmp_path / "opt")) == os.path.join(str(tmp_path / "opt"), "rpcanet", "sirst.pkl")


def test_the_resolver_names_every_source():
    shipped = W.resolve("istd", "rpcanet", "auto")
    assert shipped.kind == "shipped" and shipped.path.endswith(os.path.join("istd", "checkpoints", "rpcanet_sirst.npz"))
    assert W.resolve("istd", "l_rpcanet", "l_rpcanet_ablation_stages3").path.endswith("l_rpcanet_ablation_stages3.npz")
    assert W.resolve("istd", "rpcanet", "/x/y.npz").kind == "file"
    pub = W.resolve("istd", "l_rpcanet", "published:nudt_sirst")
    assert pub.kind == "published" and pub.entry.parameters == 475_188 and pub.label == "published:nudt_sirst"


# --------------------------------------------------------------------------- bench weights
def test_bench_weights_lists_every_set_with_its_status(weights_root, capsys):
    assert main(["weights", "--weights-root", weights_root]) == 0
    out = capsys.readouterr().out
    assert f"weights root: {weights_root} (--weights-root)" in out
    for e in W.MANIFEST:
        assert f"{e.method:14s} {e.name:17s} present  {e.path}" in out
    assert "github.com/fengyiwu98/RPCANet @ 25da080, result/ISTD/SIRST/RPCANet.pkl" in out
    assert "IoU 70.37 / F1 82.61 / Pd 95.41 / Fa 7.42" in out and "protocol rpcanet" in out
    assert "rpcanet[checkpoint=published:sirst]" in out and "loads it yet" not in out  # every set has a loader
    assert "star_net[checkpoint=published:sigma50_bandwise]" in out
    assert "ista_net_plus[checkpoint=published:ratio_10]" in out
    assert "215,916 parameters" in out and "SIRST v1 (NUAA-SIRST)" in out
    assert f"{len(EXPECTED)} published weight set(s): {len(EXPECTED)} present, 0 missing, 0 corrupt" in out


def test_bench_weights_reports_missing_and_corrupt_files_and_exits_1_on_corrupt(weights_root, tmp_path, capsys):
    root = tmp_path / "weights"
    assert main(["weights", "--weights-root", str(root), "--suite", "istd"]) == 0  # missing is not an error
    out = capsys.readouterr().out
    assert "7 published weight set(s): 0 present, 7 missing, 0 corrupt" in out
    assert f"https://github.com/fengyiwu98/RPCANet/raw/25da080/result/ISTD/SIRST/RPCANet.pkl -> {root}" in out
    _corrupt(_copy(weights_root, "rpcanet/sirst.pkl", root))
    _copy(weights_root, "rpcanet/nudt_sirst.pkl", root)
    assert main(["weights", "--weights-root", str(root), "--method", "rpcanet"]) == 1
    out = capsys.readouterr().out
    assert f"{'rpcanet':14s} {'sirst':17s} corrupt  rpcanet/sirst.pkl" in out
    assert f"{'rpcanet':14s} {'nudt_sirst':17s} present  rpcanet/nudt_sirst.pkl" in out
    assert "4 published weight set(s): 1 present, 2 missing, 1 corrupt" in out
    assert "CORRUPT     sha256" in out and "expected bb7db57e" in out


# --------------------------------------------------------------------------- published weights in a grid
def test_a_missing_published_file_skips_its_cells_with_where_to_download_it(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path / "empty"))
    (cell,) = build_cells("istd", [TINY], ["clean"], [SIRST], ["cpu"], 0)
    reason = SUITE.skip_reason(cell)
    assert reason.startswith("rpcanet[checkpoint=published:sirst]: published weights not found")
    assert "result/ISTD/SIRST/RPCANet.pkl from github.com/fengyiwu98/RPCANet at commit 25da080" in reason
    assert f"save it as {tmp_path / 'empty' / 'rpcanet' / 'sirst.pkl'}" in reason
    assert "`python -m bench data fetch rpcanet:sirst`" in reason
    assert "\n" not in reason
    # the shipped checkpoints and the ablation ones (not shipped) keep their skip line
    cells = build_cells("istd", [TINY], ["clean"], ["rpcanet", "l_rpcanet[checkpoint=shipped:l_rpcanet_ablation_stages3]"],
                        ["cpu"], 0)
    reasons = [SUITE.skip_reason(c) for c in cells]
    assert reasons[0] is None
    assert reasons[1] == ("l_rpcanet: no checkpoint " + os.path.relpath(W.shipped_checkpoint(
        "istd", "l_rpcanet_ablation_stages3")) + " (make it with `python -m bench train --suite istd --method "
        "l_rpcanet --dataset sirst --recipe ablation --set stages=3`)")


def test_a_missing_published_file_is_skipped_by_bench_run(tmp_path, capsys):
    rc = main(["run", "--suite", "istd", "--dataset", TINY, "--degradation", "clean", "--method", "mpcm",
               "--method", SIRST, "--results", str(tmp_path / "r.sqlite"), "--no-progress",
               "--weights-root", str(tmp_path / "none"), "--threads", "1"])
    assert rc == 0
    err = capsys.readouterr().err
    # offline (as in every test): one grouped line with the command that fetches the file
    assert ("skipped 2 cell(s): data or weights not present and fetching is off" in err
            and "bench data fetch rpcanet:sirst` [rpcanet[checkpoint=published:sirst]]" in err)
    assert os.environ.get("BENCH_WEIGHTS") != os.path.abspath(str(tmp_path / "none"))  # restored after the command


def test_a_corrupt_published_file_fails_its_cell_naming_it_and_the_rest_runs(weights_root, tmp_path, monkeypatch):
    root = tmp_path / "weights"
    path = _copy(weights_root, "rpcanet/sirst.pkl", root)
    _corrupt(path)
    monkeypatch.setenv("BENCH_WEIGHTS", str(root))
    cells = build_cells("istd", [TINY], ["clean"], ["mpcm", SIRST], ["cpu"], 0)
    assert [SUITE.skip_reason(c) for c in cells] == [None, None]  # corrupt is not missing: it runs, and fails
    store = Store(str(tmp_path / "r.sqlite"))
    summary = run_grid(cells, store, RunOptions(repeat=1, warmup=False), progress=False)
    assert summary.failed == 1 and summary.done == 1, summary.text()
    failed = store.frame("istd", status="failed").iloc[0]
    assert failed["method_label"] == SIRST
    assert "CheckpointError" in failed["error"] and path in failed["error"] and "corrupt" in failed["error"]
    assert "bb7db57e93ced581d37f664add0535ffcb6ba7bb18bea3eebae1bd032a7ada6c" in failed["error"]
    assert list(store.frame("istd")["method"]) == ["mpcm"]


def test_an_unknown_published_name_exits_2_listing_the_valid_ones(tmp_path, capsys):
    rc = main(["run", "--suite", "istd", "--dataset", TINY, "--method", "rpcanet[checkpoint=published:unknown]",
               "--results", str(tmp_path / "r.sqlite"), "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "checkpoint='published:unknown' is not allowed" in err
    for name in ("published:sirst", "published:nudt_sirst", "published:irstd_1k", "published:sirst_aug"):
        assert name in err
    assert not os.path.exists(tmp_path / "r.sqlite")
    with pytest.raises(Exception, match="published:sirst_aug"):
        R.METHODS["l_rpcanet"](checkpoint="published:sirst")  # RPCANet's name, not L-RPCANet's
    with pytest.raises(Exception, match="valid checkpoints: published:sirst"):
        W.resolve("istd", "rpcanet", "published:nope")


def test_the_published_file_is_part_of_the_cell_key(weights_root, tmp_path, monkeypatch):
    root = tmp_path / "weights"
    path = _copy(weights_root, "rpcanet/sirst.pkl", root)
    monkeypatch.setenv("BENCH_WEIGHTS", str(root))

    def key(method=SIRST):
        (cell,) = build_cells("istd", [TINY], ["clean"], [method], ["cpu"], 0)
        return cell.key

    before = key()
    assert before != key("rpcanet")  # the shipped checkpoint is another cell
    assert before != key("rpcanet[checkpoint=published:nudt_sirst]")
    monkeypatch.setenv("BENCH_WEIGHTS", weights_root)
    assert key() == before  # the same bytes elsewhere: the same key (the root is not keyed)
    monkeypatch.setenv("BENCH_WEIGHTS", str(root))
    _corrupt(path)
    assert key() != before
    corrupt = key()
    os.remove(path)
    assert key() not in (before, corrupt)  # missing: a key of its own (the cell is skipped anyway)


def test_a_shipped_checkpoint_s_key_does_not_depend_on_the_weights_root(tmp_path, monkeypatch):
    (a,) = build_cells("istd", [TINY], ["clean"], ["rpcanet"], ["cpu"], 0)
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path))
    (b,) = build_cells("istd", [TINY], ["clean"], ["rpcanet"], ["cpu"], 0)
    assert a.key == b.key


def test_check_file_names_the_file_and_how_to_get_it(weights_root, tmp_path):
    entry = W.find_published("l_rpcanet", "sirst_aug")
    assert W.check_file(entry, weights_root) == os.path.join(weights_root, "l_rpcanet", "sirst_aug.pkl")
    with pytest.raises(CheckpointError, match="L-RPCANet/result/SIRST_Aug_mIoU_74.56.pkl from github.com/"
                                              "xianchaoxiu/L-RPCANet at commit 47f8e53"):
        W.check_file(entry, str(tmp_path))
