"""Maps the top-level folders into the ``bench`` namespace.

``methods/`` becomes ``bench.methods`` and ``datasets/`` becomes ``bench.datasets``:
a top-level import package called ``datasets`` would shadow the widely installed
Hugging Face distribution. Everything else is in pyproject.toml.
"""
from setuptools import find_packages, setup

MAPPING = {"bench": "bench", "bench.methods": "methods", "bench.datasets": "datasets"}

packages, package_dir = [], {}
for namespace, folder in MAPPING.items():
    package_dir[namespace] = folder
    packages.append(namespace)
    for sub in find_packages(where=folder):
        if namespace == "bench" and sub.split(".")[0] in ("methods", "datasets"):
            continue
        packages.append(f"{namespace}.{sub}")

setup(packages=packages, package_dir=package_dir)
