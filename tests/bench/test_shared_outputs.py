"""One method output for the cells that differ only in their scoring protocol
(bench.shared_outputs): grouping, the inputs' digest, and istd runs where the protocols hand
the method equal inputs (256x256 8-bit images) and where they do not (other sizes)."""
from __future__ import annotations

import pytest
import torch

from bench import registry as R
from bench import shared_outputs as S
from bench.grid import build_cells
from bench.runner import RunOptions, execute, run_grid
from bench.store import Store
from tests.helpers import write_istd_folder


def _folder(root, size, n=2):
    return write_istd_folder(root, f"toy{size}", n=n, size=size)


def _cells(dataset, methods, root, degradations=("clean",)):
    return build_cells("istd", [dataset], list(degradations), methods, ["cpu"], 0,
                       protocols=["basicirstd", "rpcanet"], data_root=str(root))


def test_groups_hold_one_method_under_each_protocol(tmp_path):
    ds = _folder(tmp_path, 256)
    cells = _cells(ds, ["mpcm", "pstnn"], tmp_path)
    groups = S.group_cells(cells)
    assert [len(g) for g in groups] == [2, 2]
    for g in groups:
        assert len({c.method for c in g}) == 1 and {c.protocol for c in g} == {"basicirstd", "rpcanet"}
        assert len({S.share_key(c) for c in g}) == 1 and len({c.key for c in g}) == 2
    assert [c.key for g in groups for c in g] == [c.key for c in cells]


def test_inputs_digest_sees_values_dtype_and_shape():
    a = (torch.zeros(4, 4), torch.ones(3))
    assert S.inputs_digest(a) == S.inputs_digest((torch.zeros(4, 4), torch.ones(3)))
    b = (torch.zeros(4, 4), torch.ones(3)); b[0][2, 1] = 1e-30
    assert S.inputs_digest(a) != S.inputs_digest(b)
    assert S.inputs_digest(a) != S.inputs_digest((torch.zeros(4, 4, dtype=torch.float64), torch.ones(3)))
    assert S.inputs_digest(a) != S.inputs_digest((torch.zeros(2, 8), torch.ones(3)))
    assert S.inputs_digest((torch.tensor(1.0),)) != S.inputs_digest((torch.tensor(2.0),))


def _rows(store):
    df = store.frame("istd")
    return {r["protocol"]: r for _, r in df.iterrows()}


@pytest.mark.parametrize("method", ["pstnn", "mpcm"])
def test_equal_inputs_one_run_scored_under_both_protocols(tmp_path, method):
    ds = _folder(tmp_path, 256)
    cells = _cells(ds, [method], tmp_path)
    store = Store(str(tmp_path / "r.sqlite"))
    summary = run_grid(cells, store, RunOptions(data_root=str(tmp_path), repeat=1), progress=False)
    assert summary.done == 2 and summary.failed == 0
    rows = _rows(store)
    first, second = rows["basicirstd"], rows["rpcanet"]
    shared = (second["extras"] or {}).get("output_shared")
    assert shared == {"cell": first["key"], "protocol": "basicirstd"}
    assert "output_shared" not in (first["extras"] or {})
    assert second["times_s"] == first["times_s"] and second["warmup_s"] == first["warmup_s"]
    # the same metrics as the cell run on its own (no group: the method runs again)
    alone, _ = execute(cells[1], RunOptions(data_root=str(tmp_path), repeat=1))
    assert alone.status == "ok" and alone.metrics == second["metrics"]
    assert "output_shared" not in alone.extras.other


def test_different_inputs_are_not_shared(tmp_path):
    # 64x64 images: the authors' protocol resizes them to 256x256, so each protocol runs
    ds = _folder(tmp_path, 64)
    store = Store(str(tmp_path / "r.sqlite"))
    run_grid(_cells(ds, ["mpcm"], tmp_path), store, RunOptions(data_root=str(tmp_path), repeat=1), progress=False)
    rows = _rows(store)
    assert len(rows) == 2 and all("output_shared" not in (r["extras"] or {}) for r in rows.values())
    # noise drawn as floats: the authors' protocol rounds it to 8-bit levels, the other not
    ds = _folder(tmp_path, 256)
    store = Store(str(tmp_path / "n.sqlite"))
    run_grid(_cells(ds, ["mpcm"], tmp_path, ["gaussian_noise[sigma=10]"]), store,
             RunOptions(data_root=str(tmp_path), repeat=1), progress=False)
    assert all("output_shared" not in (r["extras"] or {}) for r in _rows(store).values())


def test_a_method_that_opts_out_runs_under_each_protocol(tmp_path, monkeypatch):
    ds = _folder(tmp_path, 256)
    R.load_all()
    monkeypatch.setattr(R.METHODS["mpcm"], "share_output", False)
    store = Store(str(tmp_path / "r.sqlite"))
    run_grid(_cells(ds, ["mpcm"], tmp_path), store, RunOptions(data_root=str(tmp_path), repeat=1), progress=False)
    assert all("output_shared" not in (r["extras"] or {}) for r in _rows(store).values())


def test_other_weights_are_not_shared(tmp_path, monkeypatch):
    """The identity after setup is part of what is shared: a learned method whose weights
    differ between the two cells (its checkpoint resolved per problem) runs twice."""
    from tests.suites.test_istd_suite import _untrained_checkpoint
    ds = _folder(tmp_path, 256, n=1)
    ckpt = _untrained_checkpoint(tmp_path / "k1.npz", stages=1)
    cells = _cells(ds, [f"l_rpcanet[checkpoint={ckpt}]"], tmp_path)
    store = Store(str(tmp_path / "r.sqlite"))
    run_grid(cells, store, RunOptions(data_root=str(tmp_path), repeat=1), progress=False)
    assert "output_shared" in (_rows(store)["rpcanet"]["extras"] or {})
    cls = R.METHODS["l_rpcanet"]
    calls = iter(["a", "b"])
    monkeypatch.setattr(cls, "output_identity", lambda self: next(calls))
    store = Store(str(tmp_path / "s.sqlite"))
    run_grid(cells, store, RunOptions(data_root=str(tmp_path), repeat=1), progress=False)
    assert all("output_shared" not in (r["extras"] or {}) for r in _rows(store).values())


def test_groups_share_in_worker_processes(tmp_path):
    ds = _folder(tmp_path, 256)
    store = Store(str(tmp_path / "r.sqlite"))
    summary = run_grid(_cells(ds, ["mpcm", "pstnn"], tmp_path), store,
                       RunOptions(data_root=str(tmp_path), repeat=1, threads=1), jobs=2, progress=False)
    assert summary.done == 4
    df = store.frame("istd")
    shared = [r for _, r in df.iterrows() if (r["extras"] or {}).get("output_shared")]
    assert len(shared) == 2 and {r["method"] for r in shared} == {"mpcm", "pstnn"}
