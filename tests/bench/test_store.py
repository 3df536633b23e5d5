import math
import multiprocessing as mp

from bench.store import Store


def _row(key, **kw):
    base = dict(key=key, suite="s", dataset="d", dataset_params={}, sample_set="d",
                degradation="g", degradation_params={"snr_db": math.inf}, method="m", method_label="m",
                method_params={"lam": 0.4}, family="classical", device="cpu", seed=0, source_hash="h",
                status="ok", metrics={"nmse_db": -20.0}, curves={"nmse_db": [0.0, -1.0]})
    base.update(kw)
    return base


def test_round_trip_with_infinite_values(tmp_path):
    st = Store(str(tmp_path / "r.sqlite"))
    st.put(_row("a"))
    df = st.frame("s")
    assert len(df) == 1
    assert df.iloc[0]["degradation_params"]["snr_db"] == math.inf
    assert df.iloc[0]["curves"]["nmse_db"] == [0.0, -1.0]


def test_same_key_replaces_never_duplicates(tmp_path):
    st = Store(str(tmp_path / "r.sqlite"))
    st.put(_row("a", status="failed", metrics=None))
    assert st.finished_keys() == set()
    st.put(_row("a"))
    assert st.count() == 1 and st.finished_keys() == {"a"}


def _writer(path, start):
    st = Store(path)
    for i in range(start, start + 40):
        st.put(_row(f"k{i}"))
    st.close()


def test_parallel_processes_write_safely(tmp_path):
    path = str(tmp_path / "r.sqlite")
    Store(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, 40 * i)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert Store(path).count() == 120


# -- paths that are no store, and stores that cannot be written
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

from bench.errors import StoreError  # noqa: E402


def test_paths_that_are_no_store_file_are_named(tmp_path):
    (tmp_path / "not.sqlite").write_text("hello, I am a CSV\n")
    (tmp_path / "a_file").write_text("x")
    cases = {"": "is not a path to a file", str(tmp_path): "is a folder",
             str(tmp_path / "a_file" / "r.sqlite"): "is a file, not a folder",
             str(tmp_path / "not.sqlite"): "is not a SQLite result store"}
    for path, words in cases.items():
        with pytest.raises(StoreError, match=words) as e:
            Store(path)
        assert "\n" not in str(e.value)
        assert e.value.exit_code == (1 if path.endswith("not.sqlite") else 2)
    assert (tmp_path / "not.sqlite").read_text() == "hello, I am a CSV\n"  # left as it is


def test_a_read_only_open_writes_nothing(tmp_path):
    path = str(tmp_path / "r.sqlite")
    st = Store(path)
    st.put(_row("a"))
    st.close()  # the last connection checkpoints the WAL and removes -wal and -shm
    before = (os.stat(path).st_mtime_ns, open(path, "rb").read())
    ro = Store(path, readonly=True)
    assert list(ro.frame("s")["key"]) == ["a"]
    with pytest.raises(StoreError, match="read-only"):
        ro.put(_row("b"))
    ro.close()
    assert (os.stat(path).st_mtime_ns, open(path, "rb").read()) == before
    assert Store(path).count() == 1
    with pytest.raises(StoreError, match="no result store"):
        Store(str(tmp_path / "none.sqlite"), readonly=True)
    assert not (tmp_path / "none.sqlite").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_a_read_only_store_fails_when_opened_not_after_a_cell(tmp_path):
    path = tmp_path / "r.sqlite"
    Store(str(path)).close()
    path.chmod(0o444)
    with pytest.raises(StoreError, match="read-only"):
        Store(str(path))
    (tmp_path).chmod(0o555)
    try:
        assert len(Store(str(path), readonly=True).frame()) == 0  # a read-only folder: still readable
    finally:
        tmp_path.chmod(0o755)


HOLD = ("import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "print('locked', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n")


def hold_lock(path, seconds=60):
    """A real process holding the store's write lock (as another run storing a cell would)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, path, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_locked_store_says_so_within_seconds_and_names_the_holder(tmp_path, monkeypatch, capsys):
    import bench.store as S
    monkeypatch.setattr(S, "LOCK_NOTICE_S", 1.0)
    monkeypatch.setattr(S, "LOCK_GIVE_UP_S", 3.0)
    path = str(tmp_path / "r.sqlite")
    st = Store(path)
    holder = hold_lock(path)
    try:
        t0 = time.monotonic()
        with pytest.raises(StoreError, match="stayed locked by another process"):
            st.put(_row("a"))
        assert time.monotonic() - t0 < 10
        err = capsys.readouterr().err
        assert "waiting for the store lock held by another process" in err
        if sys.platform.startswith("linux"):
            assert f"(pid {holder.pid})" in err
    finally:
        holder.kill()
        holder.wait()
    st.put(_row("a"))  # released: the write goes through
    assert st.count() == 1
