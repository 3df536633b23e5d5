"""Fingerprints of the code and weights that shape a cell's numbers (part of its key).

A cell's key (:attr:`bench.grid.Cell.key`) must change whenever something that shapes its
stored numbers changes, so that a rerun recomputes it instead of reusing a stale row. The
fingerprint of a cell covers:

- the method's modules (its class and its project base classes, plus its
  ``source_dependencies``), the dataset's and the degradation's, the suite's (its class's
  module, ``bench/suites/<suite>.py``, and the base :mod:`bench.suite`) and the metric
  modules of the suite (``bench.metrics.<suite>`` and the module of every metric function);
- every project module those import, transitively: imports are read by parsing each
  module's source with :mod:`ast` (``import bench.x``, ``from bench.x import y``, ``from
  bench.x import module``, relative imports, and imports inside functions too), restricted
  to modules whose name starts with ``bench.``. Nothing is imported to find them;
- the method's weights: :meth:`bench.registry.Method.weights_digest` (the SHA-256 of the
  checkpoint files a learned method reads for those parameters);
- :data:`KEY_VERSION`.

Deliberately left out (:data:`EXCLUDED`): the harness modules. They run every cell alike
and are edited for reasons that do not change a stored number (a new hook, a report
column, a CLI option, an error message); including them would change every key of every
suite on such edits and rerun hours of grids for nothing. An excluded module is
*transparent*: its own source is not hashed but the project modules it imports still are
(``from bench.train import TrainingJob`` reaches :mod:`bench.checkpoints`, which
decodes the weights and is hashed). :mod:`bench.train` is excluded because training
shapes numbers only through the checkpoint files, which the weights digest covers.
A change to an excluded module that does change stored numbers (how the runner derives
seeds, say) must bump :data:`KEY_VERSION`.

Parent packages' ``__init__`` modules are not hashed (they only mark packages here).
Every module's source is read once per process (:func:`read_source`, memoised by module
name) and each digest is memoised, so that a rerun where every cell is stored stays fast.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import inspect
import os
import sys
from typing import Any, Iterable

PREFIX = "bench."

#: bump when an edit to an excluded module changes stored numbers: every key changes
KEY_VERSION = 2

#: harness modules whose own source is not part of any key (see the module docstring)
EXCLUDED = frozenset({
    "bench.registry",    # base classes and registries: their behaviour is the params, already keyed
    "bench.errors",      # exception classes and messages
    "bench.params",      # parameter checks: a value that passes is keyed as the params
    "bench.paths",       # where files are (the files themselves are keyed: weights)
    # where weights come from and the published manifest: the file a cell reads is keyed by
    # its bytes (the weights digest), the mapping of the authors' keys by the method's module;
    # this module only finds, checks (sha256, strict key/shape match) and refuses
    "bench.weights", "bench.published_weights",
    "bench.grid", "bench.selectors", "bench.fingerprint",  # how cells and keys are built
    "bench.runner", "bench.timing", "bench.provenance",    # running and timing (not metrics)
    "bench.store", "bench.artifacts",                      # storing rows and their arrays
    "bench.results",     # the typed rows (CellResult, extras types): their shape, not their numbers
    "bench.report", "bench.report_style", "bench.cli", "bench.check",          # reading rows back, commands
    # the command handlers bench.cli calls (parsing options, printing what happened)
    "bench.commands", "bench.commands.listing", "bench.commands.run", "bench.commands.report",
    "bench.commands.check",
    # a suite's tables and figures (rows read back)
    "bench.suites.hsi_report", "bench.suites.istd_report", "bench.suites.istd_figures", "bench.suites.cs_report", "bench.suites.sparse_report",
    "bench.suites.hsi_realworld",                          # the hsi report's real-data part (rows read back)
    "bench.suites.hsi_report_common",                      # what the hsi report's two parts share
    "bench.suites.istd_captions",                          # the istd report's caption text
    "bench.shared_outputs",  # one method output scored under several protocols (the runner's)
    "bench.train",       # shapes numbers only through checkpoint files (weights digest)
    # where cells run (the same bench.runner.execute on a Dask worker), where files come
    # from (the files themselves are checksummed) and how stored rows are exported
    "bench.dask_executor", "bench.cluster", "bench.data", "bench.data_manifest", "bench.export",
    # which data files a cell read and their checks: the files' bytes are keyed (Cell.data_hash)
    "bench.data_identity",
})


# --------------------------------------------------------------------------- sources
@functools.lru_cache(maxsize=None)
def module_file(name: str) -> str | None:
    """The source file of the project module ``name`` (None: not a module, or no source)."""
    mod = sys.modules.get(name)
    path = getattr(mod, "__file__", None) if mod is not None else None
    if path is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError, AttributeError):
            return None
        path = spec.origin if spec is not None else None
    if not path or not path.endswith(".py") or not os.path.exists(path):
        return None
    return path


@functools.lru_cache(maxsize=None)
def read_source(name: str) -> str | None:
    """The source text of the project module ``name``, read once per process (None when it
    is not a module with a source file). The only place module sources are read."""
    path = module_file(name)
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read().decode("utf-8", errors="replace")


def _is_package(name: str) -> bool:
    path = module_file(name)
    return path is not None and os.path.basename(path) == "__init__.py"


@functools.lru_cache(maxsize=None)
def project_imports(name: str) -> tuple[str, ...]:
    """The ``bench.`` modules that module ``name`` imports anywhere in its source (sorted)."""
    src = read_source(name)
    if src is None:
        return ()
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return ()
    package = name if _is_package(name) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                if node.level - 1 > len(parts) - 1:
                    continue
                base = ".".join(parts[:len(parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            found.add(base)
            for alias in node.names:  # ``from bench.methods.sparse import classical``
                if alias.name != "*":
                    found.add(f"{base}.{alias.name}")
    out = set()
    for mod in found:
        if not mod.startswith(PREFIX) or mod == name:
            continue
        parent = mod.rpartition(".")[0]
        if parent in found and parent != "bench" and not _is_package(parent):
            continue  # ``from bench.x import y`` with y a name, not a module: no look-up
        if module_file(mod) is not None:
            out.add(mod)
    return tuple(sorted(out))


@functools.lru_cache(maxsize=None)
def closure(name: str) -> frozenset[str]:
    """``name`` and every project module it reaches through imports (excluded ones too)."""
    seen: set[str] = set()
    stack = [name]
    while stack:
        mod = stack.pop()
        if mod in seen:
            continue
        seen.add(mod)
        stack.extend(m for m in project_imports(mod) if m not in seen)
    return frozenset(seen)


@functools.lru_cache(maxsize=None)
def module_digest(name: str) -> str:
    src = read_source(name)
    return hashlib.sha256((src if src is not None else f"<no source: {name}>").encode()).hexdigest()


def modules_digest(roots: Iterable[str]) -> str:
    """Digest of the keyed modules reachable from ``roots`` (names and sources)."""
    return _modules_digest(frozenset(r for r in roots if r.startswith(PREFIX)))


@functools.lru_cache(maxsize=None)
def _modules_digest(roots: frozenset[str]) -> str:
    mods: set[str] = set()
    for r in roots:
        mods |= closure(r)
    h = hashlib.sha256()
    for m in sorted(mods - EXCLUDED):
        h.update(f"{m}\0{module_digest(m)}\n".encode())
    return h.hexdigest()


def keyed_modules(roots: Iterable[str]) -> list[str]:
    """The module names whose source goes into the digest of ``roots`` (for messages/tests)."""
    mods: set[str] = set()
    for r in roots:
        if r.startswith(PREFIX):
            mods |= closure(r)
    return sorted(mods - EXCLUDED)


# --------------------------------------------------------------------------- components
def class_modules(cls: type) -> tuple[str, ...]:
    """Modules of ``cls`` and of its project base classes, plus ``source_dependencies``."""
    names = []
    for klass in cls.__mro__:
        mod = getattr(klass, "__module__", None)
        if mod and mod.startswith(PREFIX) and mod not in names:
            names.append(mod)
    names.extend(cls.source_dependencies)  # declared by Component and Suite
    return tuple(names)


def suite_modules(suite: Any, metrics: Iterable[Any]) -> tuple[str, ...]:
    """The modules of a suite (an instance: its class's and its project bases'),
    ``bench.metrics.<suite name>`` and the module of each of ``metrics``' functions (the
    caller passes the suite's registered metrics: this module imports no registry)."""
    names = list(class_modules(type(suite)))
    names.append(f"{PREFIX}metrics.{suite.name}")
    for metric in metrics:
        fn = metric.fn
        mod = inspect.getmodule(fn) if fn is not None else None
        if mod is not None:
            names.append(mod.__name__)
    return tuple(n for n in names if module_file(n) is not None)


def file_digest(path: str) -> str:
    """SHA-256 of a file's bytes, memoised by (path, size, mtime); "" when it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return ""
    return _file_digest(os.path.abspath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=1024)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def files_digest(paths: Iterable[str]) -> str:
    """Digest of several files (their names and contents); a missing file counts as such."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(f"{os.path.basename(p)}\0{file_digest(p) or 'missing'}\n".encode())
    return h.hexdigest()


def directory_digest(directory: str, prefix: str, suffix: str = ".npz") -> str:
    """Digest of the files ``<prefix>*<suffix>`` in ``directory`` ("" when there are none)."""
    if not os.path.isdir(directory):
        return ""
    files = [os.path.join(directory, f) for f in sorted(os.listdir(directory))
             if f.startswith(prefix) and f.endswith(suffix)]
    return files_digest(files) if files else ""


def cell_fingerprint(suite_mods: tuple[str, ...], dataset: type, degradation: type, method: type,
                     method_params: dict[str, Any]) -> str:
    """The ``source_hash`` of a cell: 16 hex digits of everything listed in the module
    docstring; ``suite_mods`` is :func:`suite_modules` of the cell's suite (memoised, so
    that building a big grid costs one digest per combination)."""
    return _cell_fingerprint(tuple(suite_mods), dataset, degradation, method,
                             str(method.weights_digest(dict(method_params))))


@functools.lru_cache(maxsize=None)
def _cell_fingerprint(suite_mods: tuple[str, ...], dataset: type, degradation: type, method: type,
                      weights: str) -> str:
    parts = {
        "version": str(KEY_VERSION),
        "suite": modules_digest(suite_mods),
        "dataset": modules_digest(class_modules(dataset)),
        "degradation": modules_digest(class_modules(degradation)),
        "method": modules_digest(class_modules(method)),
        "weights": weights,
    }
    h = hashlib.sha256("".join(f"{k}={v}\n" for k, v in sorted(parts.items())).encode())
    return h.hexdigest()[:16]


def clear_caches() -> None:
    """Forget every memoised source and digest (tests; a long-lived process after edits)."""
    for fn in (module_file, read_source, project_imports, closure, module_digest, _modules_digest,
               _file_digest, _cell_fingerprint):
        fn.cache_clear()
