"""Contract tests generated for every registered method (adding a method adds its tests).

On its suite's tiny problem each method must be well declared, run and return what its suite
validates and scores (every declared metric, finite), be deterministic under a seed, and, if
it can be stepped, end its iterates where ``run`` ends. The checks are the functions of
:mod:`bench.contracts`; ``tests/test_contract_mutations.py`` shows that each one fails on a
method broken that way.
"""
from __future__ import annotations

import pytest

from bench import contracts
from bench import registry as R

R.load_all()
METHOD_NAMES = sorted(R.METHODS)


def _runs_on(name, device):
    if device not in R.METHODS[name].devices:
        pytest.skip(f"{name} does not run on {device}")


def test_every_component_module_imports():
    assert R.LOAD_ERRORS == {}


def test_every_suite_has_methods_to_check():
    """The tests below are generated from the registry: an empty one would check nothing."""
    assert METHOD_NAMES, "no method is registered: R.load_all() found none"
    without = sorted(set(R.SUITES) - {R.METHODS[n].suite for n in METHOD_NAMES})
    assert not without, f"suite(s) {without} have no registered method, so no contract test"
    assert any(R.METHODS[n]().can_step for n in METHOD_NAMES), \
        "no registered method can be stepped: the iterates contract checks nothing"


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_method_is_well_declared(name):
    contracts.check_declared(R.METHODS[name], registered_as=name)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_method_runs_and_is_scored(name, device):
    _runs_on(name, device)
    contracts.check_run(R.METHODS[name], device)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_method_is_deterministic(name, device):
    _runs_on(name, device)
    contracts.check_deterministic(R.METHODS[name], device)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_iterates_end_where_run_ends(name):
    _runs_on(name, "cpu")
    if not R.METHODS[name]().can_step:
        pytest.skip(f"{name} cannot be stepped")
    contracts.check_iterates(R.METHODS[name], "cpu")
