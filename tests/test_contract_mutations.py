"""Every contract of :mod:`bench.contracts` can fail: each catches a method broken its way.

A mutant is a real sparse solver (ISTA, FISTA) with one deliberate fault. It is registered
only for the test that uses it (``monkeypatch`` removes it afterwards), because the suite's
tiny problem looks a method up by name; a suite fault (a metric left unscored) is a
subclass of the real suite put in the registry for one test in the same way. An unbroken
mutant (a renamed ISTA) passes every check, so each failure below comes from its fault.

Five of these faults passed the contract tests before they were rewritten (run against
them at commit 5c95da5): a declared metric left unscored (``set(declared) <= set(scored) or
scored`` held whenever anything was scored), a NaN metric, a suite declaring no metrics,
iterates that yield nothing (the comparison looped over an empty list) and iterates that
skip the initial estimate. Outputs whose tensors differ in number are caught too: a ``zip``
of the two runs' tensors stopped at the shorter list.
"""
from __future__ import annotations

import itertools
import math

import pytest

from bench import contracts
from bench import registry as R
from bench.methods.sparse.classical import Fista, Ista

R.load_all()
#: the real sparse suite's class (the suite mutants below are subclasses of it)
SPARSE_SUITE = type(R.SUITES["sparse"])


@pytest.fixture
def register(monkeypatch):
    """Register a mutant for this test only (the registry is as it was afterwards)."""
    def add(cls):
        assert cls.name not in R.METHODS, f"{cls.name} is already registered: mutants need names of their own"
        monkeypatch.setitem(R.METHODS, cls.name, cls)
        return cls
    return add


@pytest.fixture
def patch_suite(monkeypatch):
    """Replace the sparse suite for this test by a subclass with the given attributes."""
    def patch(**attributes):
        mutant = type(f"Mutant{SPARSE_SUITE.__name__}", (SPARSE_SUITE,), attributes)
        monkeypatch.setitem(R.SUITES, "sparse", mutant())
    return patch


class Control(Ista):
    """ISTA under another name, with no fault: it passes every contract."""
    name = "mutant_control"


def test_an_unbroken_mutant_passes_every_contract(register):
    cls = register(Control)
    contracts.check_declared(cls, registered_as=cls.name)
    contracts.check_run(cls, "cpu")
    contracts.check_deterministic(cls, "cpu")
    contracts.check_iterates(cls, "cpu")


# --------------------------------------------------------------------------- check_declared
class UnknownFamily(Ista):
    name = "mutant_family"
    family = "deep"


class UnknownDevice(Ista):
    name = "mutant_device"
    devices = ("cpu", "tpu")


class NoDevice(Ista):
    name = "mutant_no_device"
    devices = ()


class UnknownSuite(Ista):
    name = "mutant_suite"
    suite = "sparse_coding"


class BadName(Ista):
    name = "Mutant-Name"


@pytest.mark.parametrize("cls", [UnknownFamily, UnknownDevice, NoDevice, UnknownSuite, BadName],
                         ids=lambda c: c.__name__)
def test_check_declared_catches(cls):
    with pytest.raises(AssertionError, match=cls.name if cls is not BadName else "BadName"):
        contracts.check_declared(cls)


def test_check_declared_catches_a_class_registered_under_another_name(register):
    cls = register(Control)
    with pytest.raises(AssertionError, match="registered as 'ista'"):
        contracts.check_declared(cls, registered_as="ista")


# --------------------------------------------------------------------------- check_run
class WrongShape(Ista):
    name = "mutant_shape"

    def run(self, inputs):
        return super().run(inputs)[:, :-1]


class NanOutput(Ista):
    name = "mutant_nan"

    def run(self, inputs):
        x = super().run(inputs).clone()
        x[0, 0] = math.nan
        return x


class NotATensor(Ista):
    name = "mutant_list"

    def run(self, inputs):
        return super().run(inputs).tolist()


class ElsewhereOutput(Ista):
    """Returns its output on another device than it ran on (``meta``: one every machine has)."""
    name = "mutant_elsewhere"

    def run(self, inputs):
        return super().run(inputs).to("meta")


BAD_OUTPUTS = [
    (WrongShape, "the suite rejects its output: output shape"),
    (NanOutput, "the suite rejects its output: output has 1 non-finite"),
    (NotATensor, "the output holds no tensor"),
    (ElsewhereOutput, "output tensor 0 is on meta"),
]


@pytest.mark.parametrize("cls, message", BAD_OUTPUTS, ids=[c.__name__ for c, _ in BAD_OUTPUTS])
def test_check_run_catches_a_bad_output(register, cls, message):
    register(cls)
    with pytest.raises(AssertionError, match=f"{cls.name}.*{message}"):
        contracts.check_run(cls, "cpu")


def test_check_run_catches_non_finite_values_that_the_suite_lets_through(register, patch_suite):
    """A suite whose validation forgets finiteness does not hide a NaN from the contract."""
    cls = register(NanOutput)
    patch_suite(validate_output=lambda self, task, output: None)
    with pytest.raises(AssertionError, match=f"{cls.name} on cpu: output tensor 0 has 1 non-finite"):
        contracts.check_run(cls, "cpu")


def _renamed_score(self, task, output):
    """The suite's metric under another name than the one it declares."""
    metrics, extras = SPARSE_SUITE.score(self, task, output)
    return {"nmse": metrics["nmse_db"]}, extras


def _nan_score(self, task, output):
    return {"nmse_db": math.nan}, {}


def test_check_run_catches_a_declared_metric_left_unscored(register, patch_suite):
    cls = register(Control)
    patch_suite(score=_renamed_score)
    with pytest.raises(AssertionError, match=r"declares metric\(s\) \['nmse_db'\] but did not score"):
        contracts.check_run(cls, "cpu")


def test_check_run_catches_a_metric_that_is_not_finite(register, patch_suite):
    cls = register(Control)
    patch_suite(score=_nan_score)
    with pytest.raises(AssertionError, match="not a finite number"):
        contracts.check_run(cls, "cpu")


def test_check_run_catches_a_suite_that_declares_no_metrics(register, patch_suite):
    cls = register(Control)
    patch_suite(metrics=())
    with pytest.raises(AssertionError, match="declares no metrics"):
        contracts.check_run(cls, "cpu")


# --------------------------------------------------------------------------- check_deterministic
class Nondeterministic(Fista):
    """Adds a little of a counter that no seed resets (as an unseeded generator would)."""
    name = "mutant_nondeterministic"
    calls = itertools.count()

    def run(self, inputs):
        return super().run(inputs) + 1e-6 * next(self.calls)


class ChangingLength(Fista):
    """The second run returns one tensor more: a ``zip`` of the two outputs would hide it."""
    name = "mutant_length"
    calls = itertools.count()

    def run(self, inputs):
        x = super().run(inputs)
        return [x] * (1 + next(self.calls) % 2)


@pytest.mark.parametrize("cls", [Nondeterministic, ChangingLength], ids=lambda c: c.__name__)
def test_check_deterministic_catches(register, cls):
    register(cls)
    with pytest.raises(AssertionError, match=f"{cls.name}: not deterministic under seed 0"):
        contracts.check_deterministic(cls, "cpu")


# --------------------------------------------------------------------------- check_iterates
class RunsOneStepMore(Ista):
    """``run`` does one iteration more than ``iterates`` (an off-by-one of a fast path)."""
    name = "mutant_overshoot"

    def run(self, inputs):
        return Ista(**{**self.params, "n_iter": self.params["n_iter"] + 1}).run(inputs)


class YieldsNothing(Ista):
    name = "mutant_no_iterates"

    def run(self, inputs):
        return Ista(**self.params).run(inputs)

    def iterates(self, inputs):
        return iter(())


class SkipsTheInitialEstimate(Ista):
    """Ends where ``run`` ends (which loops over it) but its curve is one step off."""
    name = "mutant_no_initial"

    def iterates(self, inputs):
        return itertools.islice(super().iterates(inputs), 1, None)


class FlatIterates(Ista):
    name = "mutant_flat_iterates"

    def run(self, inputs):
        return Ista(**self.params).run(inputs)

    def iterates(self, inputs):
        return (x.flatten() for x in super().iterates(inputs))


class CannotStep(Ista):
    name = "mutant_cannot_step"
    iterates = R.Method.iterates

    def run(self, inputs):
        return Ista(**self.params).run(inputs)


BAD_ITERATES = [
    (RunsOneStepMore, "the last iterate is not where run"),
    (YieldsNothing, "yielded nothing"),
    (SkipsTheInitialEstimate, "yielded 5 estimate"),
    (FlatIterates, "iterate 0 has shape"),
    (CannotStep, "cannot be stepped"),
]


@pytest.mark.parametrize("cls, message", BAD_ITERATES, ids=[c.__name__ for c, _ in BAD_ITERATES])
def test_check_iterates_catches(register, cls, message):
    register(cls)
    with pytest.raises(AssertionError, match=f"{cls.name}.*{message}"):
        contracts.check_iterates(cls, "cpu")
