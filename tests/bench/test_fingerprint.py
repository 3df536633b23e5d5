"""A cell's key changes whenever code or weights that shape its numbers change (issue 14).

The fault tests edit a copy of the project, never the checkout: the package is copied into a
temporary folder laid out as the installed namespace (``bench/``, ``bench/methods/``,
``bench/datasets/``), once per variant, and one file of each copy is edited the way a
developer would (a constant in ``lipschitz_scale``, a line of ``nmse_db``, a checkpoint
retrained). One subprocess then imports each copy in turn and prints the keys that
:func:`bench.grid.build_cells` gives, so that the test goes through the public API alone
(what a rerun compares) and reads no cache of this process. The stale results of the issue
were exactly these keys staying equal across such an edit.
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
import types

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: where each top-level folder of the checkout goes in the installed namespace (setup.py)
LAYOUT = {"bench": "bench", "methods": os.path.join("bench", "methods"),
          "datasets": os.path.join("bench", "datasets")}
#: the cells whose keys are compared (gaussian_lasso, noiseless): label -> method selector
METHODS = {"ista": "ista", "lista": "lista", "lista_cp": "lista_cp"}
#: a statement that changes a module's source and nothing it computes
HARMLESS = "\n_EDITED_BY_TEST_FINGERPRINT = True\n"


# --------------------------------------------------------------------------- edits
def installed(root, relpath):
    """Where the checkout's ``relpath`` (``methods/sparse/classical.py``) is in a copy."""
    top, _, rest = relpath.partition(os.sep)
    return os.path.join(root, LAYOUT[top], rest)


def append_statement(relpath):
    def edit(root):
        with open(installed(root, relpath), "a", encoding="utf-8") as f:
            f.write(HARMLESS)
    return edit


def edit_function(relpath, function, old, new):
    """Replace ``old`` by ``new`` inside the body of the module-level ``function`` only (the
    same text elsewhere in the module stays), failing loudly when the function or the text is
    not there, so that a renamed function cannot turn the test into one that edits nothing."""
    def edit(root):
        path = installed(root, relpath)
        with open(path, encoding="utf-8") as f:
            src = f.read()
        nodes = [n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == function]
        assert nodes, f"{relpath} has no function {function}(): update the test's edit to the code"
        lines = src.splitlines(keepends=True)
        start, end = nodes[0].lineno - 1, nodes[0].end_lineno
        body = "".join(lines[start:end])
        assert old in body, f"{function}() in {relpath} no longer contains {old!r}: update the test's edit"
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(lines[:start]) + body.replace(old, new, 1) + "".join(lines[end:]))
    return edit


def replace_checkpoint(relpath):
    """A retrained checkpoint: same name and size, other bytes (the last byte flipped)."""
    def edit(root):
        path = installed(root, relpath)
        with open(path, "rb") as f:
            data = bytearray(f.read())
        data[-1] ^= 0xFF
        os.remove(path)  # a new file, as a training run writes one
        with open(path, "wb") as f:
            f.write(bytes(data))
    return edit


#: variant -> edit of the copy (None: the copy as it is)
VARIANTS = {
    "base": None,
    "lipschitz_scale": edit_function(os.path.join("methods", "sparse", "classical.py"), "lipschitz_scale",
                                     "return 1.001 *", "return 1.002 *"),
    "nmse_db": edit_function(os.path.join("bench", "metrics", "sparse.py"), "nmse_db",
                             "ratio = float(err / ref)", "ratio = float(err / ref) * 1.0"),
    "dataset": append_statement(os.path.join("datasets", "sparse.py")),
    "degradation": append_statement(os.path.join("datasets", "noise.py")),
    "suite": append_statement(os.path.join("bench", "suites", "sparse.py")),
    "suite_base": append_statement(os.path.join("bench", "suite.py")),
    "checkpoint": replace_checkpoint(os.path.join("methods", "sparse", "checkpoints", "lista_cp_snrinf.npz")),
    "report": append_statement(os.path.join("bench", "report.py")),
}

#: imports each copy in turn in one process (torch is imported once), checks that every
#: ``bench`` module came from that copy and prints {variant: {label: key}}
SCRIPT = textwrap.dedent("""
    import importlib, json, os, sys
    roots, methods = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    out = {}
    for variant, root in roots.items():
        for name in [m for m in sys.modules if m == "bench" or m.startswith("bench.")]:
            del sys.modules[name]
        sys.path.insert(0, root)
        importlib.invalidate_caches()
        from bench.grid import build_cells
        keys = {}
        for label, selector in methods.items():
            (cell,) = build_cells("sparse", ["gaussian_lasso"], ["awgn_snr[snr_db=inf]"], [selector], ["cpu"], 0)
            keys[label] = cell.key
        strays = sorted(n for n, m in sys.modules.items() if (n == "bench" or n.startswith("bench."))
                        and getattr(m, "__file__", None) and not os.path.abspath(m.__file__).startswith(root))
        if strays:
            sys.exit(f"{variant}: modules imported from outside the copy {root}: {strays}")
        out[variant] = keys
        sys.path.remove(root)
    print(json.dumps(out))
""")


def _copy_project(dest):
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder, target in LAYOUT.items():
        shutil.copytree(os.path.join(REPO, folder), os.path.join(dest, target), ignore=ignore, dirs_exist_ok=True)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """{variant: {label: key}} over copies of the project, each with one edit."""
    top = tmp_path_factory.mktemp("fingerprint")
    base = os.path.join(top, "_pristine")
    _copy_project(base)
    roots = {}
    for variant, edit in VARIANTS.items():
        root = os.path.join(top, variant)
        shutil.copytree(base, root)
        if edit is not None:
            edit(root)
        roots[variant] = os.path.abspath(root)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(roots), json.dumps(METHODS)],
                          cwd=str(top), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"computing the keys failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _changed(keys, variant):
    return {label for label, key in keys[variant].items() if key != keys["base"][label]}


def test_editing_a_helper_the_method_imports_changes_its_keys(keys):
    """The issue's first case: ISTA calls ``lipschitz_scale``, and so does LISTA-CP's
    initialisation (imported from ``classical``): both cells must be recomputed."""
    assert {"ista", "lista_cp"} <= _changed(keys, "lipschitz_scale")


def test_editing_a_metric_changes_every_key_of_its_suite(keys):
    """The issue's second case: ``nmse_db`` scores ISTA's and LISTA's cells alike."""
    assert _changed(keys, "nmse_db") == set(METHODS)


@pytest.mark.parametrize("variant", ["dataset", "degradation", "suite", "suite_base"])
def test_editing_the_dataset_degradation_or_suite_changes_every_key(keys, variant):
    assert _changed(keys, variant) == set(METHODS), f"editing the {variant} module left keys unchanged"


def test_replacing_a_checkpoint_changes_only_the_cells_that_read_it(keys):
    assert _changed(keys, "checkpoint") == {"lista_cp"}


def test_editing_an_excluded_harness_module_keeps_every_key(keys):
    """``bench.report`` reads stored rows back and never shapes a number: editing it must not
    rerun grids (:data:`bench.fingerprint.EXCLUDED`). Equal keys across two copies in other
    folders also show that a key does not depend on where the checkout is."""
    assert _changed(keys, "report") == set()


def test_replacing_a_checkpoint_given_by_path_changes_the_key(tmp_path):
    """``checkpoint=<path>`` (an ablation's network): the key covers that file's bytes too."""
    from bench.grid import build_cells

    src = os.path.join(REPO, "methods", "sparse", "checkpoints", "lista_cp_snrinf.npz")
    path = tmp_path / "lista_cp.npz"
    shutil.copyfile(src, path)

    def key():
        (cell,) = build_cells("sparse", ["gaussian_lasso"], ["awgn_snr[snr_db=inf]"],
                              [f"lista_cp[checkpoint='{path}']"], ["cpu"], 0)
        return cell.key

    before = key()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # as a later write would
    assert key() != before


# --------------------------------------------------------------------------- the module itself
PROBE = '''
"""A module that imports the project in every way the fingerprint reads."""
import os
import torch
import bench.operators
from bench.suite import Task
from . import grid
from .metrics.sparse import nmse_db


def later():
    from bench.methods.sparse import classical
    return classical
'''


def test_project_imports_reads_every_form_of_import(tmp_path, monkeypatch):
    """Absolute, ``from x import name``, ``from package import module``, relative and
    function-level imports are all found, and only project modules (no ``torch``, no
    names mistaken for modules such as ``bench.suite.Task``)."""
    from bench import fingerprint

    path = tmp_path / "probe.py"
    path.write_text(PROBE)
    probe = types.ModuleType("bench._fingerprint_probe")
    probe.__file__ = str(path)
    monkeypatch.setitem(sys.modules, probe.__name__, probe)
    fingerprint.clear_caches()
    try:
        found = set(fingerprint.project_imports(probe.__name__))
        reached = fingerprint.closure(probe.__name__)
    finally:
        fingerprint.clear_caches()
    assert found == {"bench.operators", "bench.suite", "bench.grid", "bench.metrics.sparse",
                     "bench.methods.sparse", "bench.methods.sparse.classical"}
    assert "bench.registry" in reached  # through bench.metrics.sparse, transitively


def test_lista_keys_cover_the_classical_module_and_leave_out_the_harness():
    from bench import fingerprint
    from bench import registry as R

    R.load_all()
    keyed = fingerprint.keyed_modules(fingerprint.class_modules(R.METHODS["lista_cp"]))
    assert "bench.methods.sparse.classical" in keyed and "bench.operators" in keyed
    assert "bench.checkpoints" in keyed  # it decodes the weights
    assert not set(keyed) & fingerprint.EXCLUDED


def test_the_command_line_is_harness_and_no_keyed_module_reaches_it():
    """bench.cli and every handler module of bench.commands are excluded from the keys (an
    option or a message changes no number), and no module a cell's key covers imports them."""
    import pkgutil

    import bench.commands
    from bench import fingerprint
    from bench import registry as R

    commands = {f"bench.commands.{m.name}" for m in pkgutil.iter_modules(bench.commands.__path__)}
    assert {"bench.commands.run", "bench.commands.report"} <= commands
    assert {"bench.cli", "bench.commands"} | commands <= fingerprint.EXCLUDED
    R.load_all()
    roots = set()
    for name, suite in R.SUITES.items():
        roots |= set(fingerprint.suite_modules(suite, [m for m in R.METRICS.values() if m.suite == name]))
    for cls in [*R.METHODS.values(), *R.DATASETS.values(), *R.DEGRADATIONS.values()]:
        roots |= set(fingerprint.class_modules(cls))
    reached = set().union(*(fingerprint.closure(r) for r in roots))
    assert {"bench.registry", "bench.runner"} <= reached  # excluded modules are walked through too
    assert not reached & ({"bench.cli", "bench.commands"} | commands)
