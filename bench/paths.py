"""Where things are, computed once: the data root, the weights root, and the repository's
own folders (results, reports, baselines, checkpoints, caches).

Two roots are outside the repository and are chosen by the user:

* the data root (real data sets): ``--data-root``, else ``$BENCH_DATA``, else
  ``~/.cache/imaging-bench/data`` (``$XDG_CACHE_HOME`` replaces ``~/.cache`` when set);
* the weights root (third-party pretrained weights): ``--weights-root``, else
  ``$BENCH_WEIGHTS``, else ``~/.cache/imaging-bench/weights``.

Everything else is a folder of the checkout. Shipped checkpoints live beside the networks
that read them (``methods/<suite>/checkpoints/``); checkpoints that ``bench train`` writes
for other configurations go to ``results/checkpoints/<suite>/``; caches (ALISTA's analytic
weight per problem instance, say) to ``results/cache/<suite>/``.

The command line's defaults for the result store and the report folder stay relative to the
working directory (``results/results.sqlite``, ``reports/``), as they always were.
"""
from __future__ import annotations

import importlib.util
import os

#: the folder of the ``bench`` package, and the checkout (or installation) above it
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(PACKAGE_DIR)


def _package_dir(name: str, fallback: str) -> str:
    # ``bench.methods`` and ``bench.datasets`` are the top-level folders methods/ and
    # datasets/ (setup.py maps them): ask the import system where they are, without importing them
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    return os.path.abspath(locations[0]) if locations else fallback


METHODS_DIR = _package_dir("bench.methods", os.path.join(REPO_ROOT, "methods"))
RESULTS_DIR = os.path.join(REPO_ROOT, "results")
REPORTS_DIR = os.path.join(REPO_ROOT, "reports")
#: the committed values ``bench check`` compares against (results/baselines/<suite>.json)
BASELINES_DIR = os.path.join(RESULTS_DIR, "baselines")
#: checkpoints ``bench train`` writes off the shipped paths (results/checkpoints/<suite>/)
TRAINED_CHECKPOINTS_DIR = os.path.join(RESULTS_DIR, "checkpoints")
#: recomputable per-instance caches (results/cache/<suite>/)
CACHE_DIR = os.path.join(RESULTS_DIR, "cache")

#: command-line defaults, relative to the working directory
DEFAULT_RESULTS = os.path.join("results", "results.sqlite")
DEFAULT_REPORTS = "reports"


def shipped_checkpoints(suite: str) -> str:
    """The folder of a suite's shipped checkpoints: ``methods/<suite>/checkpoints``."""
    return os.path.join(METHODS_DIR, suite, "checkpoints")


def trained_checkpoints(suite: str) -> str:
    """Where ``bench train`` puts a suite's checkpoints that are not shipped ones."""
    return os.path.join(TRAINED_CHECKPOINTS_DIR, suite)


def cache_dir(suite: str) -> str:
    """A suite's cache folder (safe to delete: everything in it is recomputed)."""
    return os.path.join(CACHE_DIR, suite)


def _user_cache() -> str:
    return os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")


def default_data_root() -> str:
    """``$BENCH_DATA``, else ``~/.cache/imaging-bench/data``."""
    return os.environ.get("BENCH_DATA") or os.path.join(_user_cache(), "imaging-bench", "data")


def data_root(given: str | None = None) -> str:
    """The data root: ``given`` (the ``--data-root`` option) when set, else the default."""
    return given or default_data_root()


def default_weights_root() -> str:
    """``$BENCH_WEIGHTS``, else ``~/.cache/imaging-bench/weights``."""
    return os.environ.get("BENCH_WEIGHTS") or os.path.join(_user_cache(), "imaging-bench", "weights")


def weights_root(given: str | None = None) -> str:
    """The weights root: ``given`` (a ``--weights-root`` option) when set, else the default."""
    return given or default_weights_root()
