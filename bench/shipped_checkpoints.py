"""The shipped checkpoints, decoded and scored: what each file under
``methods/<suite>/checkpoints/`` must decode to and how well it must do.

``results/baselines/checkpoints.json`` holds one record per shipped ``.npz``: the file's raw
SHA-256, the digest of the weights the method decodes from it
(:func:`bench.checkpoints.decoded_digest`: the loaded network's state, through the method's
own ``setup``, exactly as a cell loads it) and the scores of the loaded network on a small
real problem of its suite (:data:`SCORING_TASKS`). Two digests tell a changed file (both
move) from a changed decoder or initialisation (only the decoded one moves). The test
``tests/methods/test_shipped_checkpoints.py`` checks every file against its record;
``python -m bench.shipped_checkpoints`` does the same from the command line, and
``python -m bench.shipped_checkpoints --update`` rewrites the records from the files
(after a retraining, say: review the printed changes, then commit the file).

Scores are compared with each metric's own tolerance (the one ``bench check`` uses).
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
from typing import Any

import torch

from bench import paths

#: the committed records
EXPECTED_PATH = os.path.join(paths.BASELINES_DIR, "checkpoints.json")
WRITTEN_BY = "python -m bench.shipped_checkpoints --update"
#: what the records' ``decoded_sha256`` is, in the file's header
DIGEST_NOTE = ("bench.checkpoints.decoded_digest of the network's state after the method loads the file: "
               "SHA-256 over the name-sorted tensors, each a JSON line [name, dtype, shape] then its "
               "little-endian bytes in the dtype loaded")

#: per suite, the small real problem a shipped checkpoint of that suite is scored on:
#: (dataset selector, degradation selector; ``{snr}`` is the SNR the checkpoint was trained
#: at). The sparse one is ``bench check``'s smoke instance; the istd one the first 4 SIRST
#: test images of at most 50,000 pixels (about a second each per network on one core).
SCORING_TASKS: dict[str, tuple[str, str]] = {
    "sparse": ("gaussian_lasso[n_test=200]", "awgn_snr[snr_db={snr}]"),
    "istd": ("sirst[max_pixels=50000,limit=4]", "clean"),
    "hsi": ("cave[size=32]", "hsi_gaussian[sigma=50]"),
    # ``{ratio}``: the ratio whose matrix the checkpoint was trained with
    "cs": ("set11[ratio={ratio},names=Monarch]", "measurement_noise"),
}
#: method parameters of the scoring cell besides the checkpoint (hsi: small blocks and one
#: cube position per pixel keep it to seconds)
SCORING_PARAMS: dict[str, str] = {"hsi": "block=16,block_stride=8,max_rank=9"}
#: the suites whose scoring problem reads the data root (the others generate theirs)
NEEDS_DATA = ("istd", "hsi", "cs")
#: the suites whose networks cannot even be decoded without that task (cs: a checkpoint is
#: checked against the cell's sampling matrix, read from the data root)
DECODE_NEEDS_DATA = ("cs",)


def shipped_files() -> list[str]:
    """Every shipped checkpoint, named as in the checkout: ``methods/<suite>/checkpoints/<file>.npz``
    (the record's key; the same wherever the ``bench.methods`` package is installed)."""
    found = glob.glob(os.path.join(paths.METHODS_DIR, "*", "checkpoints", "*.npz"))
    return sorted("methods/" + os.path.relpath(p, paths.METHODS_DIR).replace(os.sep, "/") for p in found)


def absolute(rel: str) -> str:
    """The file a key of :func:`shipped_files` names."""
    return os.path.join(paths.METHODS_DIR, *rel.split("/")[1:])


def load_expected(path: str = EXPECTED_PATH) -> dict[str, dict[str, Any]]:
    """The committed records (checkpoint path -> record); empty when there is no file."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)["checkpoints"]


class LoadedCheckpoint:
    """A checkpoint decoded through its method's ``setup`` (and network construction), on the
    task it is scored on. ``state`` is the loaded network's state as the method holds it.

    ``score=False`` decodes without the scoring task where that task reads the data root
    (istd: its networks load in ``setup``); the sparse task is generated, and its operator is
    what the network is built for, so it is always made.
    """

    def __init__(self, path: str, data_root: str | None = None, score: bool = True):
        from bench import registry as R
        from bench.checkpoints import read_checkpoint_meta
        from bench.grid import build_cells
        from bench.runner import build_task

        R.load_all()
        self.path = path
        self.meta = read_checkpoint_meta(path)
        self.method = self.meta["method"]
        mcls = R.METHODS.get_or_fail(self.method)
        self.suite = mcls.suite
        dataset, degradation = SCORING_TASKS[self.suite]
        snr = self.meta.get("snr_db")  # the sparse checkpoints' training SNR (inf: noiseless)
        if snr is not None:
            degradation = degradation.format(snr="inf" if math.isinf(float(snr)) else f"{float(snr):g}")
        if "{ratio}" in dataset:   # cs: the matrix the checkpoint was trained with
            dataset = dataset.format(ratio=int(self.meta["ratio"]))
        self.task_label = f"{dataset} | {degradation}"
        # the cell `bench run` builds for the method on that problem (its task, its seeds),
        # with the checkpoint given by path: the file is read the way a cell reads it
        selector = self.method + (f"[{SCORING_PARAMS[self.suite]}]" if self.suite in SCORING_PARAMS else "")
        (cell,) = build_cells(self.suite, [dataset], [degradation], [selector], ["cpu"], seed=0, data_root=data_root)
        self.task = (build_task(cell, data_root)
                     if score or self.suite not in NEEDS_DATA or self.suite in DECODE_NEEDS_DATA else None)
        task = self.task
        self.instance = mcls(**{**cell.mparams, "checkpoint": os.path.abspath(path)})
        self.instance.setup(method_context(task, cell.method_seed(), data_root))
        self.output = self.instance.run(task.inputs) if task is not None else None
        # both learned families keep the network they loaded in ``_net`` (the sparse one builds
        # it for the task's operator on its first run, the istd one in setup)
        self.state = dict(self.instance._net.state_dict())

    def digest(self) -> str:
        from bench.checkpoints import decoded_digest
        return decoded_digest(self.state)

    def scores(self) -> dict[str, float]:
        """The suite's metrics of the network's output on the scoring task ({} without it)."""
        from bench import registry as R
        if self.output is None:
            return {}
        suite = R.SUITES[self.suite]
        suite.validate_output(self.task, self.output)
        metrics, _ = suite.score(self.task, self.output)
        return {k: float(v) for k, v in metrics.items() if v is not None}

    def record(self) -> dict[str, Any]:
        from bench.fingerprint import file_digest
        return {"method": self.method, "suite": self.suite, "file_sha256": file_digest(self.path),
                "decoded_sha256": self.digest(), "tensors": len(self.state), "task": self.task_label,
                "scores": self.scores()}


def method_context(task, seed: int = 0, data_root: str | None = None):
    """The context ``bench run`` sets a method up with for ``task`` (None: no task) on the cpu."""
    from bench import registry as R
    if task is None:
        return R.MethodContext(device="cpu", seed=seed, data_root=data_root)
    return R.MethodContext(device="cpu", seed=seed, data_root=data_root, problem_id=task.problem_id,
                           problem=task.problem)


def compare_record(rel: str, record: dict[str, Any], expected: dict[str, Any] | None,
                   parts: tuple[str, ...] = ("file", "decoded", "scores")) -> list[str]:
    """What differs between a checkpoint's fresh ``record`` and its committed one, each
    problem a sentence saying what it means ([] when everything holds); ``parts`` picks the
    comparisons: the file's SHA-256, the decoded weights' digest, the scores."""
    from bench.check import tolerance_of

    if expected is None:
        return [f"{rel} has no record in {os.path.relpath(EXPECTED_PATH, paths.REPO_ROOT)}: check that it "
                f"loads and scores as it should, then add it with `{WRITTEN_BY}` and commit that file"]
    problems = []
    file_moved = record["file_sha256"] != expected.get("file_sha256")
    if file_moved and "file" in parts:
        problems.append(f"{rel}: the file is not the one recorded (sha256 {record['file_sha256'][:12]}, "
                        f"recorded {str(expected.get('file_sha256'))[:12]}): a retrained or damaged checkpoint; "
                        f"restore it (`git checkout -- {rel}`) or, for a new training, rerun `{WRITTEN_BY}`")
    if "decoded" in parts and record["decoded_sha256"] != expected.get("decoded_sha256"):
        why = ("the file changed" if file_moved else
               "the file is unchanged, so the decoding changed: the decoder (bench.checkpoints), the "
               "initialisation the deltas are added to, or the network's construction")
        problems.append(f"{rel}: decoded weights digest {record['decoded_sha256'][:12]}, recorded "
                        f"{str(expected.get('decoded_sha256'))[:12]} ({why})")
    for metric, want in sorted((expected.get("scores") or {}).items() if "scores" in parts else ()):
        have = record["scores"].get(metric)
        tol = tolerance_of(metric)
        if have is None or not math.isfinite(have) or abs(have - want) > tol:
            problems.append(f"{rel}: {metric} = {have} on {record['task']}, recorded {want} (tolerance {tol:g})")
    return problems


def write_expected(data_root: str | None = None, path: str = EXPECTED_PATH) -> tuple[str, list[str]]:
    """Decode and score every shipped checkpoint and write the records to ``path``; returns
    the path and a line per record that changed (for review before committing)."""
    from bench.provenance import git_commit, versions

    data_root = paths.data_root(data_root)
    old = load_expected(path)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        records = {rel: LoadedCheckpoint(absolute(rel), data_root).record() for rel in shipped_files()}
    finally:
        torch.set_num_threads(previous)
    changes = []
    for rel, rec in records.items():
        if old.get(rel) != rec:
            changes.append(f"{'new' if rel not in old else 'changed'}: {rel} {json.dumps(rec, sort_keys=True)}")
    changes += [f"removed: {rel}" for rel in sorted(set(old) - set(records))]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    doc = {"written_by": WRITTEN_BY, "commit": git_commit(), "versions": versions(),
           "decoded_sha256": DIGEST_NOTE,
           "scoring_tasks": {k: list(v) for k, v in SCORING_TASKS.items()},
           "checkpoints": records}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return path, changes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shipped_checkpoints", description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help=f"rewrite {os.path.relpath(EXPECTED_PATH, paths.REPO_ROOT)}")
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)
    if args.update:
        path, changes = write_expected(args.data_root)
        print("\n".join(changes) or "no record changed")
        print(f"written {path}")
        return 0
    expected = load_expected()
    data_root = paths.data_root(args.data_root)
    torch.set_num_threads(1)
    bad = 0
    for rel in shipped_files():
        problems = compare_record(rel, LoadedCheckpoint(absolute(rel), data_root).record(), expected.get(rel))
        bad += bool(problems)
        print("\n".join(problems) if problems else f"ok: {rel}")
    for rel in sorted(set(expected) - set(shipped_files())):
        bad += 1
        print(f"{rel} is recorded but not shipped: rerun `{WRITTEN_BY}`")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
