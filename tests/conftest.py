"""Shared fixtures: devices (CPU always, CUDA where present), the real-data root and the
published-weights root."""
from __future__ import annotations

import os

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# `bench run` writes the suite's report at its end, by default into ./reports (the committed
# reports): tests' runs (and their subprocesses) skip it unless a test asks for it
os.environ["BENCH_NO_REPORT"] = "1"
# `bench run` fetches missing data on first use: tests never reach the network (a test of the
# fetch itself removes this and serves the files from a loopback mirror)
os.environ["BENCH_OFFLINE"] = "1"


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        params = [pytest.param("cpu", id="cpu"),
                  pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(
                      not torch.cuda.is_available(), reason="no CUDA device"))]
        metafunc.parametrize("device", params)


@pytest.fixture(scope="session")
def data_root():
    root = os.environ.get("BENCH_DATA") or os.path.join(REPO, "..", "shared", "data")
    if not os.path.isdir(root):
        pytest.skip(f"real data not found at {root} (set BENCH_DATA)")
    return os.path.abspath(root)


@pytest.fixture(scope="session")
def weights_root():
    """The published weights (``../shared/weights``: the authors' released networks), from
    $BENCH_WEIGHTS or beside the repository; tests that need them skip without them."""
    root = os.environ.get("BENCH_WEIGHTS") or os.path.join(REPO, "..", "shared", "weights")
    if not os.path.isdir(root):
        pytest.skip(f"published weights not found at {root} (set BENCH_WEIGHTS)")
    return os.path.abspath(root)


@pytest.fixture
def bench_env(tmp_path):
    """Environment for subprocesses running `python -m bench` from the repository."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("BENCH_DATA", os.path.join(REPO, "..", "shared", "data"))
    env.setdefault("BENCH_WEIGHTS", os.path.join(REPO, "..", "shared", "weights"))
    return env


@pytest.fixture
def one_thread():
    """One torch thread for a test's tiny problems (several threads on a loaded 2-core
    machine spin at every barrier and crawl); restores the previous count. Modules use it
    with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
