"""Provenance recorded with every result row: commit, versions, device, threads, CPU."""
from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (sha or "unknown") + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str) -> str:
    import torch
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_model()


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for mod in ("torch", "numpy", "scipy", "cvxpy", "tensorly", "skimage", "bm4d"):
        try:
            m = __import__(mod)
            out[mod] = getattr(m, "__version__", "?")
        except Exception:  # noqa: BLE001 - optional dependency absent
            continue
    try:
        from importlib.metadata import version
        out["bench"] = version("imaging-inverse-bench")
    except Exception:  # noqa: BLE001
        out["bench"] = "source"
    return out


def provenance(device: str) -> dict:
    import torch
    return {
        "commit": git_commit(),
        "versions": versions(),
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "cpu_model": cpu_model(),
        "cuda": torch.version.cuda,
        "hostname": platform.node(),
    }
