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



def _project_modules() -> list[str]:
    """Every module of bench/, methods/ (bench.methods) and datasets/ (bench.datasets)."""
    mods = []
    for top, package in (("bench", "bench"), ("methods", "bench.methods"), ("datasets", "bench.datasets")):
        for dirpath, dirs, files in os.walk(os.path.join(REPO, top)):
            dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
            rel = os.path.relpath(dirpath, os.path.join(REPO, top))
            base = package if rel == "." else package + "." + rel.replace(os.sep, ".")
            mods += [base if f == "__init__.py" else f"{base}.{f[:-3]}" for f in sorted(files) if f.endswith(".py")]
    return mods


def _cycles(graph: dict[str, tuple[str, ...]]) -> list[list[str]]:
    """One cycle (a, b, ..., a) per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for comp in components:
        start = min(comp)
        # the shortest way back to ``start`` inside the component
        came_from: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in came_from:
            nxt = []
            for v in frontier:
                for w in graph[v]:
                    if w in comp and w not in came_from:
                        came_from[w] = v
                        nxt.append(w)
            frontier = nxt
        path = [start]
        while path[-1] != start or len(path) == 1:
            path.append(came_from[path[-1]])
        cycles.append(path[::-1])
    return cycles


def test_cycles_are_found_and_printed():
    graph = {"a": ("b",), "b": ("c",), "c": ("a", "d"), "d": (), "e": ("e",)}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"x": ("y",), "y": ()}) == []


def test_no_import_cycle_between_project_modules():
    """No circle of imports among the modules of bench/, methods/ and datasets/, counting the
    imports inside functions too (the parser the cell keys use,
    :func:`bench.fingerprint.project_imports`): shared code goes in a module both sides import."""
    from bench.fingerprint import project_imports

    mods = _project_modules()
    assert len(mods) >= 80 and "bench.methods.sparse.lista" in mods
    graph = {m: tuple(i for i in project_imports(m) if i in mods) for m in mods}
    assert sum(map(len, graph.values())) >= 100, "the parser found almost no imports"
    cycles = _cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
