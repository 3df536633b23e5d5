"""docs/architecture.md names a file for every step of a cell: each file it names exists
(a name with ``<suite>`` in it exists for every suite), so the page follows the code."""
from __future__ import annotations

import os
import re

from bench import registry as R

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_file_the_architecture_page_names_exists():
    R.load_all()
    text = open(os.path.join(REPO, "docs", "architecture.md"), encoding="utf-8").read()
    names = set(re.findall(r"\b((?:bench|methods|datasets|tests|results)/[\w<>/*.-]+\.(?:py|json|sqlite))", text))
    assert len(names) >= 20
    for name in sorted(names):
        if "*" in name or "<file>" in name or name.startswith("results/"):
            continue
        for suite in (sorted(R.SUITES) if "<suite>" in name or "<name>" in name else [None]):
            path = name.replace("<suite>", suite or "").replace("<name>", suite or "")
            assert os.path.exists(os.path.join(REPO, path)), f"docs/architecture.md names {path}, which is not there"


def test_no_module_is_over_600_lines():
    """A module a reader can hold: none of bench/, methods/, datasets/ is over 600 lines (data
    sit in data files: bench/data_registry/*.txt)."""
    long = []
    for top in ("bench", "methods", "datasets"):
        for dirpath, _, files in os.walk(os.path.join(REPO, top)):
            for f in files:
                if f.endswith(".py"):
                    path = os.path.join(dirpath, f)
                    n = sum(1 for _ in open(path, encoding="utf-8"))
                    if n > 600:
                        long.append(f"{os.path.relpath(path, REPO)}: {n} lines")
    assert not long, long

