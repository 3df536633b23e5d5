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
