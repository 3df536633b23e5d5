"""The contracts every registered method keeps, as plain functions (the contract tests).

``tests/test_contracts.py`` runs each check below on every registered method, so adding a
method adds its tests; ``tests/test_contract_mutations.py`` shows that each check catches a
deliberately broken method. A check that cannot fail protects nothing, so each one asserts
what it loops over is not empty and compares whole collections (a ``zip`` of two lists
stops at the shorter one and would hide a missing tensor).

Each check raises :class:`AssertionError` with a message that names the method and says
what is wrong. The checks run a method on its suite's tiny problem
(:meth:`bench.suite.Suite.tiny_task`), which looks the method up by name in
:data:`bench.registry.METHODS`: a method must be registered to be checked.
"""
from __future__ import annotations

import math
import re
from typing import Any

import torch

from bench import registry as R
from bench.suite import Suite, Task

FAMILIES = ("classical", "learned", "reference")
DEVICES = ("cpu", "cuda")


def tensors(out: Any) -> list[torch.Tensor]:
    """The tensors of a method's output (a tensor, a sequence, a dict or a dataclass of
    them, nested), in a fixed order; other leaves (a segmentation rule's name) are skipped."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for x in out for t in tensors(x)]
    if isinstance(out, dict):
        return [t for x in out.values() for t in tensors(x)]
    if hasattr(out, "__dataclass_fields__"):
        return [t for f in out.__dataclass_fields__ for t in tensors(getattr(out, f))]
    return []


def run_tiny(cls: type[R.Method], device: str, seed: int = 0) -> tuple[Suite, Task, R.Method, Any]:
    """Set up ``cls`` on its suite's tiny problem as the runner does (seeded) and run it once:
    (suite, task, method, output)."""
    suite = R.SUITES[cls.suite]
    task, params = suite.tiny_task(cls.name, device, seed)
    method = cls(**params)
    torch.manual_seed(seed)
    method.setup(R.MethodContext(device=device, seed=seed, problem_id=task.problem_id, problem=task.problem))
    return suite, task, method, method.run(task.inputs)


def _output_tensors(name: str, out: Any, what: str) -> list[torch.Tensor]:
    ts = tensors(out)
    assert ts, (f"{name}: {what} holds no tensor (got {type(out).__name__}); a method returns tensors "
                f"(or a sequence/dict/dataclass of them) that its suite can score")
    return ts


def _same(name: str, a: list[torch.Tensor], b: list[torch.Tensor], what: str, exact: bool) -> None:
    """Assert two outputs' tensors are equal, one by one, with as many on each side."""
    assert len(a) == len(b), f"{name}: {what}: {len(a)} tensor(s) against {len(b)}"
    for i, (x, y) in enumerate(zip(a, b)):
        assert tuple(x.shape) == tuple(y.shape), \
            f"{name}: {what}: tensor {i} has shape {tuple(x.shape)} against {tuple(y.shape)}"
        try:
            if exact:
                torch.testing.assert_close(x, y, rtol=0, atol=0, equal_nan=True)
            else:
                torch.testing.assert_close(x, y)
        except AssertionError as e:
            raise AssertionError(f"{name}: {what}: tensor {i} differs: {e}") from None


def _finite_number(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------- contracts
def check_declared(cls: type[R.Method], registered_as: str | None = None) -> None:
    """What a method declares, before anything runs: a registered suite, a known family,
    devices among those the harness knows (at least one), a name (the one it is registered
    under, when ``registered_as`` is given) and a 16-digit source hash."""
    name = cls.name or cls.__name__
    assert cls.name and re.fullmatch(r"[a-z][a-z0-9_]*", cls.name), \
        f"{cls.__name__}: name {cls.name!r} is not a selector name (lower case, digits, '_')"
    if registered_as is not None:
        assert cls.name == registered_as and R.METHODS.get(registered_as) is cls, \
            f"{name}: registered as {registered_as!r}, which is {R.METHODS.get(registered_as)!r}, not this class"
    assert cls.suite in R.SUITES, f"{name}: suite {cls.suite!r} is not registered (valid: {sorted(R.SUITES)})"
    assert cls.family in FAMILIES, f"{name}: family {cls.family!r} is not one of {FAMILIES}"
    devices = tuple(cls.devices)
    assert devices, f"{name}: declares no device; list where it runs, e.g. devices = ('cpu', 'cuda')"
    unknown = [d for d in devices if d not in DEVICES]
    assert not unknown, f"{name}: unknown device(s) {unknown} (valid: {DEVICES})"
    assert len(set(devices)) == len(devices), f"{name}: devices {devices} lists one twice"
    digest = cls.source_hash()
    assert re.fullmatch(r"[0-9a-f]{16}", digest), f"{name}: source_hash() gave {digest!r}, not 16 hex digits"


def check_run(cls: type[R.Method], device: str, seed: int = 0) -> None:
    """On its suite's tiny problem the method runs, every tensor of its output is on the
    device it ran on, the output passes the suite's validation (shape, finite values: what
    the runner checks) and every tensor of it is finite whatever the suite validates, and
    the suite scores every metric it declares, each a finite number."""
    name = cls.name
    suite, task, _, out = run_tiny(cls, device, seed)
    ts = _output_tensors(name, out, "the output")
    for i, t in enumerate(ts):
        assert t.device.type == device, (f"{name} on {device}: output tensor {i} is on {t.device.type}; a method "
                                         f"returns its output on the device it ran on")
    try:
        suite.validate_output(task, out)
    except ValueError as e:
        raise AssertionError(f"{name} on {device}: the suite rejects its output: {e}") from None
    for i, t in enumerate(ts):
        assert torch.isfinite(t).all(), \
            f"{name} on {device}: output tensor {i} has {int((~torch.isfinite(t)).sum())} non-finite value(s)"
    declared = tuple(suite.metrics)
    assert declared, f"suite {suite.name} declares no metrics: nothing of {name}'s output would be scored"
    metrics, _ = suite.score(task, out)
    missing = [m for m in declared if m not in metrics]
    assert not missing, (f"{name} on {device}: the suite declares metric(s) {missing} but did not score "
                         f"them (scored: {sorted(metrics)})")
    bad = {m: metrics[m] for m in declared if not _finite_number(metrics[m])}
    assert not bad, f"{name} on {device}: metric(s) not a finite number: {bad}"


def check_deterministic(cls: type[R.Method], device: str, seed: int = 0) -> None:
    """Two runs under the same seed give the same output, bit for bit (a stored cell must
    be reproducible, and the runner compares repeats)."""
    _, _, _, first = run_tiny(cls, device, seed)
    _, _, _, again = run_tiny(cls, device, seed)
    _same(cls.name, _output_tensors(cls.name, first, "the output"),
          _output_tensors(cls.name, again, "the second run's output"),
          f"not deterministic under seed {seed} on {device}", exact=True)


def check_iterates(cls: type[R.Method], device: str = "cpu", seed: int = 0) -> None:
    """A method that can be stepped yields the initial estimate, then one estimate per
    iteration or layer (``n_iter``/``n_layers`` of them, where it has such a parameter: a
    curve's point k is the estimate after k steps), each shaped like ``run``'s output, and
    its last estimate is where ``run`` ends."""
    name = cls.name
    _, task, method, out = run_tiny(cls, device, seed)
    assert method.can_step, f"{name} cannot be stepped (it does not implement iterates())"
    expected = _output_tensors(name, out, "run's output")
    n = 0
    last = None
    for last in method.iterates(task.inputs):
        n += 1
        got = _output_tensors(name, last, f"iterate {n - 1}")
        shapes, want = [tuple(t.shape) for t in got], [tuple(t.shape) for t in expected]
        assert shapes == want, f"{name}: iterate {n - 1} has shape(s) {shapes}, run's output {want}"
    assert n > 0, f"{name}: iterates() yielded nothing (it yields the initial estimate first)"
    steps = next((method.params[k] for k in ("n_iter", "n_layers") if k in method.params), None)
    if steps is not None:
        assert n == int(steps) + 1, (f"{name}: iterates() yielded {n} estimate(s) for {steps} steps; it yields "
                                     f"the initial estimate and one per step ({int(steps) + 1})")
    _same(name, expected, _output_tensors(name, last, "the last iterate"),
          "the last iterate is not where run() ends", exact=False)
