"""Where a learned method's weights come from: one resolver for every source.

A learned method's ``checkpoint`` parameter names its weights in one grammar, the same in
every suite, and :func:`resolve` turns each value into a :class:`WeightsSource` (a file and
what it is). The suites' skip decisions (:meth:`bench.suite.Suite.skip_reason`,
:func:`missing_reason`), the methods' loading and the cell keys
(:meth:`bench.registry.Method.weights_digest`) all go through it, so that a file is found,
skipped, loaded and keyed the same way:

* ``shipped:<name>``: a **shipped** project checkpoint, ``methods/<suite>/checkpoints/<name>.npz``
  (:func:`shipped_checkpoint`). When it is not there the skip line gives the ``bench train``
  command that makes it (:func:`make_command`);
* ``shipped`` / ``published`` (bare): the method's own choice of that kind for the cell's
  problem (:meth:`bench.registry.Method.default_checkpoint`: sparse by the SNR, cs by the
  ratio, istd its SIRST checkpoint);
* ``none``: no weights (the untrained network, where the method has one);
* a path (``.npz``): a checkpoint **trained** here by ``bench train`` (by default under
  ``results/checkpoints/<suite>/``) or anywhere else;
* ``published:<name>``: a **published** file the authors of the network released, read from
  the weights root (:func:`bench.paths.weights_root`: ``--weights-root``, else
  ``$BENCH_WEIGHTS``, else ``~/.cache/imaging-bench/weights``) and listed in
  :data:`MANIFEST` with its SHA-256, source repository and commit, licence, training data,
  the published figure and the protocol it was measured under. The project carries the
  expected hashes itself: a user downloads the files, and a file whose bytes differ is
  *corrupt* (refused, its cells fail naming it); a file that is not there is *missing* (its
  cells are skipped with one line saying where to download it and where to put it).
  ``python -m bench weights`` lists every entry with its status.

Old spellings (``auto``, cs's ``trained``, a bare stem such as ``star_net_cpu``) are accepted
for one release: :func:`canonical` turns them into the new ones with one line on stderr.

Loading a published file (:func:`load_published`) checks its hash, then reads it with
``torch.load(path, map_location="cpu", weights_only=True)`` (no code runs; the files were
saved from CUDA tensors). The authors' key names are not this project's: a converter per
method (e.g. :func:`bench.methods.istd.learned.published_network`) maps them onto the
project's modules, and :func:`strict_match` refuses a state whose keys or shapes do not fit,
naming the first mismatch (:class:`bench.errors.CheckpointError`).

The published weights' manifest (:data:`MANIFEST`, :class:`Published`, the lookups) is
:mod:`bench.published_weights`, re-exported here. This module is left out of the cell keys
(:data:`bench.fingerprint.EXCLUDED`): what a cell reads is keyed by the file's own bytes
(the weights digest) and by the method module's converter.
"""
from __future__ import annotations

import functools
import os
import re
import shlex
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from bench import paths
from bench.errors import CheckpointError

from bench.published_weights import (FIGURE_LABELS, MANIFEST, PROTOCOLS, PUBLISHED_PREFIX,  # noqa: F401
                                     Published, checkpoint_help, entries, find_published, is_published,
                                     published_names, valid_published)

# --------------------------------------------------------------------------- the weights root
def root(given: str | None = None) -> str:
    """The weights root (:func:`bench.paths.weights_root`), absolute."""
    return os.path.abspath(paths.weights_root(given))


def root_origin(given: str | None = None) -> str:
    """Where the weights root came from, in words (for listings)."""
    if given:
        return "--weights-root"
    if os.environ.get("BENCH_WEIGHTS"):
        return "$BENCH_WEIGHTS"
    return "default: no --weights-root, no $BENCH_WEIGHTS"


def file_of(entry: Published, weights_root: str | None = None) -> str:
    """Where ``entry``'s file is expected: under the weights root."""
    return os.path.join(root(weights_root), *entry.path.split("/"))


def sha256_of(path: str) -> str:
    """The file's SHA-256 ("" when it does not exist), memoised by size and mtime."""
    from bench.fingerprint import file_digest
    return file_digest(path)


def status(entry: Published, weights_root: str | None = None) -> str:
    """``present`` (the expected bytes), ``missing`` or ``corrupt`` (other bytes)."""
    path = file_of(entry, weights_root)
    if not os.path.isfile(path):
        return "missing"
    return "present" if sha256_of(path) == entry.sha256 else "corrupt"


def download_line(entry: Published, path: str) -> str:
    """One line: where to download ``entry``'s file and where to put it (``path``)."""
    return (f"get it with `python -m bench data fetch {entry.method}:{entry.name}`, or download "
            f"{entry.source_path} from github.com/{entry.repo} at commit {entry.commit} ({entry.url}) "
            f"and save it as {path} (weights root: --weights-root, else $BENCH_WEIGHTS, else "
            f"~/.cache/imaging-bench/weights; `python -m bench weights` lists every file)")


def check_file(entry: Published, weights_root: str | None = None) -> str:
    """The path of ``entry``'s file when it holds the expected bytes; else
    :class:`CheckpointError`: missing (with the download line) or corrupt (the file named,
    both hashes)."""
    path = file_of(entry, weights_root)
    st = status(entry, weights_root)
    if st == "missing":
        raise CheckpointError(f"{entry.method}: published weights {entry.name!r} not found: {download_line(entry, path)}")
    if st == "corrupt":
        raise CheckpointError(f"{entry.method}: published weights file {path} is corrupt: sha256 {sha256_of(path)}, "
                              f"expected {entry.sha256} (download it again: {entry.url})")
    return path


# --------------------------------------------------------------------------- the grammar
#: ``checkpoint=shipped:<name>``: ``methods/<suite>/checkpoints/<name>.npz``
SHIPPED_PREFIX = "shipped:"
#: the bare words: the method's own choice of that kind for the cell's problem
#: (:meth:`bench.registry.Method.default_checkpoint`: the SNR's file, the ratio's file)
PER_PROBLEM = ("published", "shipped")
#: old spellings accepted for one release, each with one line on stderr: the new spelling
DEPRECATED: dict[str, str] = {"auto": "shipped", "trained": "shipped"}
_NAME = re.compile(r"[A-Za-z0-9_.+\-]+")  # a file stem: letters, digits, _ . + -
_warned: set[str] = set()


def is_path(value: str) -> bool:
    """A ``checkpoint`` value that is a file path (a ``/`` in it, or a ``.npz`` ending)."""
    return "/" in value or os.sep in value or value.endswith(".npz")


def canonical(value: Any) -> Any:
    """A ``checkpoint`` value in the one grammar (``published:<name>``, ``shipped:<name>``,
    ``published``, ``shipped``, a path, or None for ``none``): the old spellings (``auto``,
    ``trained``: ``shipped``; a bare stem: ``shipped:<stem>``) become the new ones with one
    deprecation line on stderr (once per value in a process); anything else is returned as
    given (the parameter's rules refuse it). Applied by the parameter spec
    (:func:`checkpoint_param`), so that cells, labels and keys carry the new spelling."""
    if value is None:
        return None
    if not isinstance(value, str):
        return value
    if value.lower() == "none":
        return None
    if (value.startswith(PUBLISHED_PREFIX) or value.startswith(SHIPPED_PREFIX) or value in PER_PROBLEM
            or is_path(value)):
        return value
    if value in DEPRECATED:
        new = DEPRECATED[value]
    elif _NAME.fullmatch(value):
        new = SHIPPED_PREFIX + value
    else:
        return value
    if value not in _warned:
        _warned.add(value)
        import sys
        print(f"checkpoint={value} is deprecated and will be refused in the next release: write "
              f"checkpoint={new} (the same weights)", file=sys.stderr)
    return new


def valid_value(method: str, value: Any) -> bool:
    """Whether a canonical ``checkpoint`` value is one of the grammar's for ``method``
    (a published name must be one of its manifest entries, a shipped name a file stem)."""
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    if is_published(value):
        return valid_published(method, value)
    if value.startswith(SHIPPED_PREFIX):
        return bool(_NAME.fullmatch(value[len(SHIPPED_PREFIX):]))
    return value in PER_PROBLEM or is_path(value)


#: the grammar in one line, for parameter help and messages
GRAMMAR = ("published:<name> (the authors' released weights, `python -m bench weights`), shipped:<name> "
           "(methods/<suite>/checkpoints/<name>.npz), published or shipped (the method's choice for the "
           "cell's problem), a .npz path, or none (untrained)")


def checkpoint_param(method: str, help: str = "", none: bool = True):
    """The :class:`bench.params.Param` of a learned method's ``checkpoint``: every value goes
    through :func:`canonical` first, then must be one of the grammar's (:func:`valid_value`);
    ``none`` False refuses ``none`` (a method whose untrained network means nothing)."""
    from bench.params import Param
    names = ", ".join(PUBLISHED_PREFIX + n for n in published_names(method)) or "no published:<name>"
    return Param(str, allow=(None,) if none else (), convert=canonical,
                 where=lambda v, m=method: valid_value(m, v),
                 where_help=f"{GRAMMAR}; published names: {names}", help=help)


def fact(problem: Any, name: str) -> Any:
    """One fact of a cell's problem, from the typed problem a method's setup is given
    (an attribute) or from the mapping a suite gives at planning time
    (:meth:`bench.suite.Suite.checkpoint_problem`); None when it has none."""
    if problem is None:
        return None
    if isinstance(problem, Mapping):
        return problem.get(name)
    return getattr(problem, name, None)


# --------------------------------------------------------------------------- one resolver
@dataclass(frozen=True)
class WeightsSource:
    """Where the weights of one ``checkpoint`` value are: ``kind`` is ``shipped`` (a project
    checkpoint under ``methods/<suite>/checkpoints``), ``file`` (a checkpoint path: trained
    here by ``bench train``, or anywhere) or ``published`` (``entry`` says which)."""

    suite: str
    method: str
    value: str
    kind: str
    path: str
    entry: Published | None = None

    @property
    def label(self) -> str:
        """How a row names it: ``published:sirst``, or the path relative to the repository."""
        if self.entry is not None:
            return PUBLISHED_PREFIX + self.entry.name
        return os.path.relpath(self.path, paths.REPO_ROOT)

    @property
    def stem(self) -> str:
        """The file's name without ``.npz`` (a shipped checkpoint's ``<name>``)."""
        base = os.path.basename(self.path)
        return base[:-4] if base.endswith(".npz") else base


def shipped_checkpoint(suite: str, stem: str) -> str:
    """A shipped project checkpoint: ``methods/<suite>/checkpoints/<stem>.npz``."""
    return os.path.join(paths.shipped_checkpoints(suite), stem + ".npz")


def resolve(suite: str, method: str, value: Any, weights_root: str | None = None,
            problem: Any = None) -> WeightsSource:
    """The weights a ``checkpoint`` value names (old spellings first made canonical):
    ``published:<name>``, ``shipped:<name>``, a path, or the bare ``published`` /
    ``shipped``, which the method turns into a name for the cell's ``problem``
    (:meth:`bench.registry.Method.default_checkpoint`; a typed problem or a suite's
    planning facts). An unknown published name raises :class:`UnknownNameError` (exit 2)
    with the valid ones; a bare word the method cannot name a file for here
    :class:`CheckpointError`; whether the file is there is :func:`missing_reason`'s business
    (and the loader's). ``none`` is not a source: callers handle it first."""
    given = value
    value = canonical(value)
    if value is None:
        raise CheckpointError(f"{method}: checkpoint=none names no weights")
    value = str(value)
    if value in PER_PROBLEM:
        from bench import registry as R
        named = R.METHODS.get_or_fail(method).default_checkpoint(problem, value)
        if named is None:
            raise CheckpointError(f"{method}: checkpoint={value} names no file for this cell's problem; "
                                  f"name one: {GRAMMAR}")
        src = resolve(suite, method, named, weights_root)
        return WeightsSource(suite, method, value, src.kind, src.path, src.entry)
    if is_published(value):
        entry = find_published(method, value)
        return WeightsSource(suite, method, str(given), "published", file_of(entry, weights_root), entry)
    if value.startswith(SHIPPED_PREFIX):
        return WeightsSource(suite, method, value, "shipped",
                             shipped_checkpoint(suite, value[len(SHIPPED_PREFIX):]))
    return WeightsSource(suite, method, value, "file", value)


def train_command(suite: str, method: str, recipe: str = "cpu", overrides: Mapping[str, Any] | None = None,
                  out: str | None = None, options: Mapping[str, Any] | None = None,
                  dataset: str | None = None) -> str:
    """The ``bench train`` command that makes a project checkpoint: ``dataset``, else the
    suite's training dataset when it names one (:attr:`bench.suite.Suite.train_dataset`), the suite's training
    options (``--snr 40``: :attr:`bench.suite.Suite.training_options`), the recipe, ``--set``
    per override and ``--out``. The one place such a command is written."""
    from bench import registry as R
    R.load_all()
    s = R.SUITES.get(suite)
    cmd = f"python -m bench train --suite {suite} --method {method}"
    if dataset is not None:
        cmd += f" --dataset {shlex.quote(dataset)}"
    elif s is not None and s.train_dataset:
        cmd += f" --dataset {s.train_dataset}"
    for k, v in (options or {}).items():
        if v is not None:
            cmd += f" --{k} {v}"
    cmd += f" --recipe {recipe}"
    for k, v in sorted((overrides or {}).items()):
        v = ",".join(v) if isinstance(v, (list, tuple)) else v
        cmd += f" --set {k}={v}"
    if out:
        cmd += f" --out {out}"
    return cmd


def trained_meta(suite: str, method: str, path: str) -> dict[str, Any]:
    """The metadata of a checkpoint trained here that a cell is about to load, checked: the
    file exists (else the ``bench train`` command that makes it) and names ``method``. What
    else must match (a configuration, a sampling matrix) is the loader's to check."""
    from bench.checkpoints import read_checkpoint_meta
    if not os.path.exists(path):
        raise CheckpointError(f"{method}: no checkpoint at {path}; train it with "
                              f"`{train_command(suite, method)} --out {path}`")
    meta = read_checkpoint_meta(path)
    if meta.get("method") != method:
        raise CheckpointError(f"checkpoint {path} belongs to method {meta.get('method')!r}, not {method!r}: "
                              f"pass {method}'s checkpoint (`{train_command(suite, method)}`)")
    return meta


def make_command(source: WeightsSource) -> str:
    """The command that makes a missing project checkpoint: the method's
    (:meth:`bench.registry.Method.make_command`: its file names say what the recipe, the
    options and an ``--init`` were), else the default recipe's (:func:`train_command`)."""
    from bench import registry as R
    cls = R.METHODS.get_or_fail(source.method)
    cmd = cls.make_command(source.stem)
    return cmd if cmd is not None else train_command(cls.suite, cls.name)


def missing_reason(source: WeightsSource) -> str | None:
    """One line when the file of ``source`` is not there (None when it is): for published
    weights where to download it and where to put it; for a project checkpoint the command
    that makes it. A corrupt published file is not missing: its cells run and fail naming it."""
    if os.path.exists(source.path):
        return _missing_init(source)
    if source.entry is not None:
        return f"{source.entry.selector}: published weights not found; {download_line(source.entry, source.path)}"
    return f"{source.method}: no checkpoint {os.path.relpath(source.path)} (make it with `{make_command(source)}`)"


def planning_meta(path: str) -> dict[str, Any] | None:
    """The metadata of a project checkpoint as grid planning reads it (skip reasons, for every
    cell that names the file): read once per version of the file in a process (keyed by path,
    size and modification time); None where it is absent or unreadable (the loader reports
    that, in the cell). Callers only read it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _planning_meta(os.path.abspath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _planning_meta(path: str, size: int, mtime_ns: int) -> dict[str, Any] | None:
    from bench.checkpoints import read_checkpoint_meta
    try:
        return read_checkpoint_meta(path)
    except Exception:  # noqa: BLE001 - an unreadable checkpoint is the loader's to report
        return None


def _missing_init(source: WeightsSource) -> str | None:
    """For a project checkpoint fine-tuned from published weights (its meta's ``init``,
    stored as a delta from them): the line of :func:`missing_reason` when those are absent."""
    if source.entry is not None or not source.path.endswith(".npz"):
        return None
    init = (planning_meta(source.path) or {}).get("init")
    if not init:
        return None
    reason = missing_reason(resolve(source.suite, source.method, init["checkpoint"]))
    return None if reason is None else f"{source.method}: {os.path.relpath(source.path)} is fine-tuned from {reason}"


def weights_digest(source: WeightsSource) -> str:
    """Part of a cell's key: the digest of the file's name and bytes (``missing`` when absent),
    independent of where the weights root is."""
    from bench.fingerprint import files_digest
    return files_digest([source.path])


# --------------------------------------------------------------------------- provenance
def provenance(row: Any) -> dict[str, Any] | None:
    """How the weights of a stored learned row were made, from what the row recorded of its
    checkpoint (the method's ``row_extras``: ``weights`` and ``training``, which a project
    checkpoint's own metadata filled, its ``init`` and ``recipe`` fields): ``kind`` is
    ``published`` (the authors' file), ``finetuned`` (trained here from published weights:
    ``init`` names them) or ``trained`` (trained here from the seeded initialisation); also
    ``source`` (the checkpoint's label: ``published:sirst``, a path), ``recipe``, ``steps``,
    ``minutes`` and, for published weights, ``trained_on``. None for a row without weights
    (a classical method, an untrained network). ``row`` is a stored row (a mapping or a
    frame row with ``extras``) or its extras. Rows stored before checkpoints recorded their
    ``init`` name it in the recipe (``finetune from published:<name>``): read from there."""
    extras = row.get("extras", row) if hasattr(row, "get") else row
    extras = extras if isinstance(extras, Mapping) else {}
    w, tr = extras.get("weights") or {}, extras.get("training") or {}
    source = w.get("checkpoint") or extras.get("checkpoint")
    if w.get("source") == "published" or tr.get("recipe") == "published":
        return {"kind": "published", "source": source, "init": None, "recipe": "published", "steps": None,
                "minutes": None, "trained_on": w.get("trained_on") or tr.get("dataset")}
    recipe = tr.get("recipe")
    if not w and not recipe or w.get("source") == "none" or str(recipe or "").startswith(("none", "untrained")):
        return None
    name, _, old_init = str(recipe or "").partition(" from ")
    init = tr.get("init") or old_init or None
    seconds = tr.get("seconds")
    return {"kind": "finetuned" if init else "trained", "source": source, "init": init,
            "recipe": name if old_init else recipe, "steps": tr.get("steps"),
            "minutes": None if seconds is None else float(seconds) / 60.0, "trained_on": None}


# --------------------------------------------------------------------------- loading
def load_published(entry: Published, weights_root: str | None = None) -> dict[str, Any]:
    """The state_dict of ``entry``'s file (name -> tensor, as the authors named them, less
    ``strip_prefix``): its hash checked first (:func:`check_file`), then read by
    :func:`load_state_file`."""
    return load_state_file(check_file(entry, weights_root), entry.state_key, entry.strip_prefix)


def load_network(source: WeightsSource, convert: Callable[[dict[str, Any], str, int | None], Any],
                 count: bool = True) -> Any:
    """The network of published weights, the one way every learned method loads them: the
    file's hash checked first (:func:`load_published`: a corrupt file fails here, named),
    its state_dict read without running code, then ``convert(state, what, parameters)``,
    the method's mapping of the authors' keys onto its modules (strict: :func:`strict_match`),
    given what to call the file in messages and the manifest's parameter count (None with
    ``count`` False: no count to check)."""
    e = source.entry
    if e is None:
        raise CheckpointError(f"{source.method}: checkpoint={source.value} names no published weights")
    return convert(load_published(e), f"{e.selector} ({source.path})", e.parameters if count else None)


def load_state_file(path: str, state_key: str | None = None, strip_prefix: str = "") -> dict[str, Any]:
    """A state_dict from a torch file, read with ``torch.load(path, map_location="cpu",
    weights_only=True)`` (no code runs; CUDA-saved tensors land on the CPU): the file itself,
    or its ``state_key`` entry, with ``strip_prefix`` taken off every key that has it. No hash
    is checked here (:func:`load_published` does); anything but name -> tensor is refused."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - an unreadable file is a checkpoint error
        raise CheckpointError(f"weights file {path} does not load ({type(e).__name__}: {e})") from None
    if state_key is not None:
        if not isinstance(obj, Mapping) or state_key not in obj:
            raise CheckpointError(f"weights file {path}: no {state_key!r} entry")
        obj = obj[state_key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"weights file {path} is not a state_dict (name -> tensor)")
    p = strip_prefix
    return {(k[len(p):] if p and k.startswith(p) else k): v for k, v in obj.items()}


def strict_match(expected: Mapping[str, tuple[int, ...]], state: Mapping[str, Any], what: str) -> None:
    """Refuse ``state`` unless it has exactly the keys of ``expected`` with the same shapes:
    :class:`CheckpointError` naming the first mismatch, in the state's order (a key with no
    place, or a shape that differs), then the first expected key the state lacks."""
    for k, v in state.items():
        if k not in expected:
            raise CheckpointError(f"{what}: key {k!r} {tuple(v.shape)} has no place in the network")
        if tuple(v.shape) != tuple(expected[k]):
            raise CheckpointError(f"{what}: key {k!r} has shape {tuple(v.shape)}, the network expects "
                                  f"{tuple(expected[k])}")
    for k, shape in expected.items():
        if k not in state:
            raise CheckpointError(f"{what}: key {k!r} {tuple(shape)} is missing")


# --------------------------------------------------------------------------- listing
def listing(weights_root: str | None = None, suite: str | None = None, method: str | None = None) -> tuple[str, int]:
    """What ``python -m bench weights`` prints, and the number of corrupt files."""
    from bench import registry as R
    R.load_all()
    here = root(weights_root)
    lines = [f"weights root: {here} ({root_origin(weights_root)})"]
    chosen = entries(suite, method)
    counts = {"present": 0, "missing": 0, "corrupt": 0}
    for e in chosen:
        st = status(e, weights_root)
        counts[st] += 1
        m = R.METHODS.get(e.method)
        loads = e.selector if (m is not None and m.loads_published) else \
            f"no {e.suite} method loads it yet"
        lines.append(f"{e.method:14s} {e.name:17s} {st:8s} {e.path}")
        lines.append(f"    source      {e.source}  [licence: {e.licence}]")
        lines.append(f"    trained on  {e.trained_on}; {e.parameters:,} parameters"
                     + (f"; {e.configuration}" if e.configuration else ""))
        lines.append(f"    published   {e.figure_text()}")
        lines.append(f"    use         {loads}")
        if st == "corrupt":
            lines.append(f"    CORRUPT     sha256 {sha256_of(file_of(e, weights_root))}, expected {e.sha256}: "
                         f"download it again ({e.url})")
        elif st == "missing":
            lines.append(f"    get it      python -m bench data fetch {e.method}:{e.name}   "
                         f"(or {e.url} -> {file_of(e, weights_root)})")
    lines.append(f"{len(chosen)} published weight set(s): {counts['present']} present, {counts['missing']} missing, "
                 f"{counts['corrupt']} corrupt")
    used = sorted({e.protocol for e in chosen if e.protocol})
    if used:
        lines.append("protocols of the published figures:")
        lines += [f"  {p}: {PROTOCOLS[p]}" for p in used]
    return "\n".join(lines), counts["corrupt"]
