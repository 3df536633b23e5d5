"""Typed data instead of dict glue (issue 14): each suite's task carries a frozen problem
dataclass (methods read attributes, a missing one raises), each stored row is a
:class:`~bench.results.CellResult` with the suite's typed extras, written to the same
columns as the row dicts of earlier code, which still read."""
from __future__ import annotations

import dataclasses
import json
import math
import sqlite3

import pytest

from bench import artifacts
from bench import registry as R
from bench.grid import build_cells
from bench.methods.sparse.classical import Ista
from bench.results import CellResult, Extras, Record
from bench.runner import RunOptions, execute, run_grid
from bench.store import Store
from bench.suite import Problem, Task
from bench.suites.hsi import HsiExtras, HsiProblem, Preview
from bench.suites.istd import IstdExtras, IstdProblem, PdFaCurve, PerImage
from bench.suites.sparse import LassoProblem, MeasuredLassoProblem, SparseExtras

pytestmark = pytest.mark.usefixtures("one_thread")
R.load_all()

#: one tiny cell per suite, each through the runner as `bench run` runs it
CELLS = {
    "sparse": (["gaussian_lasso[m=20,n=40,n_test=16]"], ["awgn_snr[snr_db=30]"],
               ["ista[n_iter=5]", "alista[checkpoint=none,n_layers=3]"]),
    "istd": (["istd_synthetic[n_images=2,min_size=64,max_size=64]"], ["clean"], ["mpcm"]),
    "hsi": (["hsi_synthetic[n_cubes=1,size=16,bands=8]"], ["hsi_gaussian[sigma=30]"], ["subspace_tv"]),
}
TYPES = {"sparse": (MeasuredLassoProblem, SparseExtras), "istd": (IstdProblem, IstdExtras),
         "hsi": (HsiProblem, HsiExtras)}


def _cells(suite):
    datasets, degradations, methods = CELLS[suite]
    return build_cells(suite, datasets, degradations, methods, ["cpu"], 0)


# --------------------------------------------------------------------------- problems
@pytest.mark.parametrize("suite", sorted(TYPES))
def test_a_suites_task_carries_its_frozen_typed_problem(suite):
    problem_type, extras_type = TYPES[suite]
    s = R.SUITES[suite]
    assert s.extras_type is extras_type
    task, _ = s.tiny_task(R.methods_of(suite)[0].name, "cpu", 0)
    assert isinstance(task, Task) and type(task.problem) is problem_type and isinstance(task.problem, Problem)
    assert not hasattr(task, "info")
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.problem.names = ()  # noqa: the point: frozen
    # a field the problem does not have is an AttributeError, never a silent default
    with pytest.raises(AttributeError):
        task.problem.snr  # noqa: B018
    # every field is documented: a comment on its line, or a #: comment above it
    import inspect
    lines = [l.strip() for c in problem_type.__mro__ if dataclasses.is_dataclass(c)
             for l in inspect.getsource(c).splitlines()]
    for f in dataclasses.fields(problem_type):
        i = next(i for i, l in enumerate(lines) if l.startswith(f"{f.name}:"))
        assert "#" in lines[i] or lines[i - 1].startswith("#:"), f"{problem_type.__name__}.{f.name}: no doc"


def test_the_sparse_problem_extends_the_training_instance():
    s = R.SUITES["sparse"]
    task, _ = s.tiny_task("ista", "cpu", 0)
    p = task.problem
    assert isinstance(p, LassoProblem) and p.snr_db == 40.0 and p.operator_shape == (20, 40)
    assert p.truth_energy == pytest.approx(float(task.reference.double().pow(2).sum()), rel=1e-6)
    # training draws from the bare instance; its validation task is measured like a test set
    data = s.training_data("gaussian_lasso[m=20,n=40]", "val")
    assert type(data.samples) is LassoProblem
    with pytest.raises(AttributeError):
        data.samples.snr_db  # noqa: B018 - a bare instance has no SNR: no silent default
    val = s.validation_task(data, 0, size=8)
    assert type(val.problem) is MeasuredLassoProblem and math.isinf(val.problem.snr_db)
    # to_device moves the tensors and keeps the rest
    moved = p.to_device("cpu")
    assert type(moved) is MeasuredLassoProblem and moved.A.device.type == "cpu"
    assert (moved.p, moved.snr_db, moved.truth_energy) == (p.p, p.snr_db, p.truth_energy)


class _ReadsAMissingField(Ista):
    """A method that reads a field the sparse problem does not have."""

    name = "test_reads_missing_field"

    def setup(self, context):
        super().setup(context)
        self.sigma = context.problem.sigma  # the sparse problem has snr_db, not sigma


@pytest.fixture
def missing_field_method():
    R.METHODS[_ReadsAMissingField.name] = _ReadsAMissingField
    yield _ReadsAMissingField.name
    R.METHODS.pop(_ReadsAMissingField.name, None)


def test_a_method_reading_a_missing_field_fails_loudly(tmp_path, missing_field_method):
    cell = build_cells("sparse", CELLS["sparse"][0], CELLS["sparse"][1], [missing_field_method], ["cpu"], 0)[0]
    result, _ = execute(cell, RunOptions(repeat=1, warmup=False))
    assert result.status == "failed" and result.error.startswith("AttributeError")
    assert "'MeasuredLassoProblem' object has no attribute 'sigma'" in result.error
    # and the problem reaches the method as the task's, typed
    task, _ = R.SUITES["sparse"].tiny_task("lista", "cpu", 0)
    m = R.METHODS["lista"](checkpoint="none", n_layers=2)
    m.setup(R.MethodContext(device="cpu", seed=0, problem_id=task.problem_id, problem=task.problem))
    assert m.context.problem is task.problem and m.parameter_count() is not None


# --------------------------------------------------------------------------- rows
@pytest.mark.parametrize("suite", sorted(CELLS))
def test_a_cell_result_round_trips_through_the_store(tmp_path, suite):
    store = Store(str(tmp_path / "r.sqlite"))
    put = []
    for cell in _cells(suite):
        result, _ = execute(cell, RunOptions(repeat=1, warmup=False))
        assert isinstance(result, CellResult) and result.status == "ok", result.error
        assert isinstance(result.extras, TYPES[suite][1])
        result = artifacts.save(result, store.path)
        assert result.extras.arrays is None
        store.put(result)
        put.append(result)
    got = {r.key: r for r in store.results(suite)}
    for result in put:
        back = got[result.key]
        assert back.created_at is not None
        assert back == dataclasses.replace(result, created_at=back.created_at)
        assert type(back.extras) is type(result.extras) and back.extras.other == {}
    # the frame the reports read holds the extras as the same plain JSON object, and a
    # frame's row reads back as the same CellResult
    frame = store.frame(suite)
    for _, row in frame.iterrows():
        assert row["extras"] == got[row["key"]].extras.to_json()
        assert json.loads(json.dumps(row["extras"])) == row["extras"]
        assert CellResult.from_row(row) == got[row["key"]]


def test_typed_extras_are_what_each_suite_scores(tmp_path):
    store = Store(str(tmp_path / "r.sqlite"))
    cells = [c for s in ("istd", "hsi") for c in _cells(s)]
    assert run_grid(cells, store, RunOptions(repeat=1, warmup=False), progress=False).failed == 0
    by_suite = {r.suite: r for r in store.results()}
    istd = by_suite["istd"].extras
    assert isinstance(istd.pd_fa_curve, PdFaCurve) and isinstance(istd.per_image, PerImage)
    assert len(istd.pd_fa_curve.pd) == len(istd.pd_fa_curve.thresholds) and istd.pd_fa_curve.normalised is True
    assert istd.segmentation == by_suite["istd"].method_params["segmentation"]
    assert set(istd.by_rule) >= {"max_norm", "minmax", "mean_std5"}
    assert istd.per_image.names == [v["name"] for v in istd.visual]
    assert artifacts.load(by_suite["istd"], store.path)["visual0_map"].shape == (64, 64)
    hsi = by_suite["hsi"].extras
    assert isinstance(hsi.preview, Preview) and hsi.preview.b64 is None and hsi.sigma_source == "true"
    assert hsi.sigma_used == pytest.approx([30 / 255]) and set(hsi.per_cube) >= {"psnr", "ssim"}


def test_store_refuses_a_row_that_still_holds_arrays(tmp_path):
    store = Store(str(tmp_path / "r.sqlite"))
    result, _ = execute(_cells("hsi")[0], RunOptions(repeat=1, warmup=False))
    assert result.extras.arrays
    with pytest.raises(ValueError, match="bench.artifacts.save"):
        store.put(result)
    assert store.count() == 0


# --------------------------------------------------------------------------- older rows
OLD_SCHEMA = """CREATE TABLE results (key TEXT PRIMARY KEY, suite TEXT NOT NULL, dataset TEXT NOT NULL,
    dataset_params TEXT NOT NULL, sample_set TEXT NOT NULL, degradation TEXT NOT NULL,
    degradation_params TEXT NOT NULL, method TEXT NOT NULL, method_label TEXT NOT NULL,
    method_params TEXT NOT NULL, family TEXT NOT NULL, device TEXT NOT NULL, seed INTEGER NOT NULL,
    source_hash TEXT NOT NULL, status TEXT NOT NULL, error TEXT, metrics TEXT, curves TEXT, extras TEXT,
    n_samples INTEGER, time_s REAL, times_s TEXT, warmup_s REAL, parameter_count INTEGER,
    provenance TEXT, created_at REAL NOT NULL)"""


def _old_store(path):
    """A store as the code before the typed rows (and before the threads column) wrote it:
    extras plain JSON objects, with keys no type declares, nulls, and base64 images."""
    rows = [
        ("old-istd", "istd", "sirst", {}, "clean", {}, "mpcm", "mpcm", {}, "classical",
         {"iou": 40.0, "pd": 90.0, "fa": 5.0},
         {"segmentation": "mean_std5", "protocol": "basicirstd", "authors_ipi_s_per_image": None,
          "pd_fa_curve": {"thresholds": [0.1, 0.5], "pd": [90.0, 80.0], "fa": [9.0, 1.0]},  # before `normalised`
          "visual": [{"name": "Misc_1", "map": "iVBORw0KGgo="}], "retired_key": {"kept": [1, 2]}}),
        ("old-hsi", "hsi", "cave", {"size": 32}, "hsi_gaussian[sigma=30]", {"sigma": 30.0}, "noisy", "noisy", {},
         "reference", {"psnr": 20.0},
         {"per_cube": {"psnr": [20.0]}, "names": ["balloons"], "sigma_source": "true",
          "preview": {"shape": [2, 2, 3], "bands": [0, 1, 2], "b64": "AAECAwQFBgcICQoL"}}),
        ("old-sparse", "sparse", "gaussian_lasso", {"m": 250}, "awgn_snr[snr_db=inf]", {"snr_db": "inf"},
         "lista", "lista", {"n_layers": 16}, "learned", {"nmse_db": -30.0},
         {"checkpoint": "methods/sparse/checkpoints/lista_snrinf.npz",
          "training": {"steps": 12000, "seconds": 345.6, "snr_db": "inf"}}),
    ]
    with sqlite3.connect(path) as c:
        c.execute(OLD_SCHEMA)
        for i, (key, suite, ds, dp, g, gp, m, ml, mp, fam, metrics, extras) in enumerate(rows):
            c.execute("INSERT INTO results (key, suite, dataset, dataset_params, sample_set, degradation, "
                      "degradation_params, method, method_label, method_params, family, device, seed, "
                      "source_hash, status, error, metrics, curves, extras, n_samples, time_s, times_s, "
                      "warmup_s, parameter_count, provenance, created_at) "
                      "VALUES (?,?,?,?,?,?,?,?,?,?,?,'cpu',0,'h','ok',NULL,?,'{}',?,1,2.0,'[2.0]',NULL,NULL,"
                      "'{\"commit\": \"abc\"}',?)",
                      (key, suite, ds, json.dumps(dp), ds, g, json.dumps(gp), m, ml, json.dumps(mp), fam,
                       json.dumps(metrics), json.dumps(extras), float(i)))
    return [r[0] for r in rows]


def test_rows_written_by_earlier_code_still_read(tmp_path):
    path = str(tmp_path / "old.sqlite")
    _old_store(path)
    store = Store(path)  # adds the threads column, NULL in the old rows
    before = store.frame()
    got = {r.key: r for r in store.results()}
    istd, hsi, sparse = got["old-istd"], got["old-hsi"], got["old-sparse"]
    assert isinstance(istd.extras, IstdExtras) and istd.threads is None and istd.created_at == 0.0
    assert istd.extras.pd_fa_curve.pd == [90.0, 80.0] and istd.extras.pd_fa_curve.normalised is None
    assert istd.extras.visual[0]["map"] == "iVBORw0KGgo=" and istd.extras.authors_ipi_s_per_image is None
    assert istd.extras.other == {"retired_key": {"kept": [1, 2]}}  # undeclared keys are kept
    assert isinstance(hsi.extras.preview, Preview) and hsi.extras.preview.b64 == "AAECAwQFBgcICQoL"
    assert sparse.extras.training["snr_db"] == math.inf and sparse.degradation_params == {"snr_db": math.inf}
    assert isinstance(sparse.extras, SparseExtras) and sparse.extras.checkpoint.endswith("lista_snrinf.npz")
    # rewriting an old row through the typed layer keeps what the reports read
    copy = Store(str(tmp_path / "copy.sqlite"))
    for r in got.values():
        copy.put(r)
    after = copy.frame()
    for key in got:
        old = before.set_index("key").loc[key]
        new = after.set_index("key").loc[key]
        expected = {k: v for k, v in old["extras"].items() if v is not None}  # a null is not written back
        assert new["extras"] == expected and new["metrics"] == old["metrics"]
    assert {r.key: r for r in copy.results()} == got
    # and the suites' reports read the old rows (the hsi false-colour figure from the base64 preview)
    from bench.suites.hsi_report_common import decode_preview
    assert decode_preview(before.set_index("key").loc["old-hsi"]["extras"]["preview"]).shape == (2, 2, 3)


def test_a_row_dict_is_still_accepted_and_checked(tmp_path):
    store = Store(str(tmp_path / "r.sqlite"))
    row = dict(key="k", suite="sparse", dataset="d", dataset_params={}, sample_set="d", degradation="g",
               degradation_params={}, method="ista", method_label="ista", method_params={}, family="classical",
               device="cpu", seed=0, source_hash="h", status="ok", metrics={"nmse_db": -1.0}, curves={},
               extras={"training": {"steps": 3}})
    store.put(row)
    (r,) = store.results("sparse")
    assert isinstance(r.extras, SparseExtras) and r.extras.training == {"steps": 3}
    with pytest.raises(TypeError, match="not columns"):
        store.put({**row, "extra": {}})
    with pytest.raises(TypeError):
        store.put({k: v for k, v in row.items() if k != "method"})


def test_records_keep_undeclared_keys_and_refuse_a_clash():
    e = IstdExtras.from_json({"segmentation": "prob", "new_key": 1, "pd_fa_curve": {"pd": [1.0], "x": 2}})
    assert e.other == {"new_key": 1} and e.pd_fa_curve.other == {"x": 2}
    assert e.to_json() == {"segmentation": "prob", "new_key": 1, "pd_fa_curve": {"pd": [1.0], "x": 2}}
    assert e.merged({"stages": 3, "unknown": "u"}).to_json()["stages"] == 3
    assert e.merged({"unknown": "u"}).other == {"new_key": 1, "unknown": "u"}
    with pytest.raises(ValueError, match="are fields"):
        Extras(other={"checkpoint": "x"})
    assert issubclass(PdFaCurve, Record) and "arrays" not in Extras.field_names()
