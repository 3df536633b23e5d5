"""Contract tests generated for every registered method (adding a method adds its tests).

On its suite's tiny problem each method must: run, return the right shape, give finite
values, and be deterministic under a seed; a method that can be stepped must end its
iterates where ``run`` ends.
"""
from __future__ import annotations

import pytest
import torch

from bench import registry as R

R.load_all()
METHOD_NAMES = sorted(R.METHODS)


def _run(name, device, seed):
    cls = R.METHODS[name]
    suite = R.SUITES[cls.suite]
    task, params = suite.tiny_task(name, device, seed)
    method = cls(**params)
    torch.manual_seed(seed)
    method.setup(R.MethodContext(device=device, seed=seed, problem_id=task.problem_id))
    return suite, task, method, method.run(task.inputs)


def _as_list(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [o for x in out for o in _as_list(x)]
    if isinstance(out, dict):
        return [o for x in out.values() for o in _as_list(x)]
    if hasattr(out, "__dataclass_fields__"):
        return [o for f in out.__dataclass_fields__ for o in _as_list(getattr(out, f))]
    return []


def test_every_component_module_imports():
    assert R.LOAD_ERRORS == {}


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_method_is_well_declared(name):
    cls = R.METHODS[name]
    assert cls.suite in R.SUITES, f"{name}: suite {cls.suite!r} is not registered"
    assert cls.family in ("classical", "learned", "reference")
    assert set(cls.devices) <= {"cpu", "cuda"} and cls.devices
    assert cls.name == name
    assert len(cls.source_hash()) == 16


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_method_contract(name, device):
    if device not in R.METHODS[name].devices:
        pytest.skip(f"{name} does not run on {device}")
    suite, task, method, out = _run(name, device, seed=0)
    suite.validate_output(task, out)  # shape and finiteness, as the runner checks them
    for t in _as_list(out):
        assert torch.isfinite(t).all()
    metrics, _ = suite.score(task, out)
    assert set(suite.metrics) <= set(metrics) or metrics, f"{name}: no metrics scored"
    _, _, _, again = _run(name, device, seed=0)
    for a, b in zip(_as_list(out), _as_list(again)):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"{name} is not deterministic under a seed")


@pytest.mark.parametrize("name", [n for n in METHOD_NAMES])
def test_iterates_end_where_run_ends(name):
    suite, task, method, out = _run(name, "cpu", seed=0)
    if not method.can_step:
        pytest.skip(f"{name} cannot be stepped")
    last = None
    for last in method.iterates(task.inputs):
        pass
    for a, b in zip(_as_list(out), _as_list(last)):
        torch.testing.assert_close(a, b)
