"""The training pipeline shared by every learned method: a model, a data source, a loss,
a schedule of stages, validation with early stopping, checkpoints, resumption.

What is problem-specific lives in a :class:`TrainingJob` that the method's module builds
(``training_job`` classmethod of the registered Method); this module knows nothing of
LASSO, images or spectra::

    job = MethodClass.training_job(options)       # model, data, loss, schedule, recipe
    result = train(job, "path/to/checkpoint.npz")  # resumable, progress bar, early stopping

The command line: ``python -m bench train --suite sparse --method alista --snr 40``.

Checkpoints (:func:`save_checkpoint`, :func:`load_checkpoint`) are a NumPy ``.npz`` archive
of plain arrays plus one JSON metadata entry, read with ``allow_pickle=False``: loading can
never execute code. Large tensors may be stored as float16 differences from a reference
state the loader can rebuild (the initialisation, deterministic from the problem): float16,
which halves the size at a relative error of about 1e-4 of the *change*, not of the weight,
or int8/int7 with a scale per row, about a quarter of the size at 1/254 (int8) or 1/126
(int7) of each row's largest change. The trainer writes the finest of a job's
``delta_encodings`` whose file fits its ``max_checkpoint_bytes`` (by default the project's
5 MiB per tracked file), records that choice, and validates the stored state, decoded in
memory from the arrays it writes, as well as the trained one.
The resume file of an interrupted training is a ``torch.save`` of tensors and plain
containers, read back with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import io
import json
import math
import os
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from bench.errors import BenchError, CheckpointError

CHECKPOINT_FORMAT = "bench-checkpoint/1"


# --------------------------------------------------------------------------- checkpoints
#: delta encodings: float16, or integers stored as int8 with one float32 scale per row and
#: this many levels either side of zero (int8: 127; int7: 63, for half a bit less entropy
#: per entry after compression at twice the rounding step)
DELTA_ENCODINGS = {"float16": None, "int8": 127, "int7": 63}


#: the largest checkpoint file a training writes by default: the project's limit for a
#: tracked file (shipped checkpoints live in the repository)
CHECKPOINT_MAX_BYTES = 5 * 2**20
#: room left in that limit for what the trainer adds to the metadata after choosing the
#: encoding (the validation of the stored state, the choice itself: a few hundred bytes)
META_SLACK_BYTES = 16 * 2**10


def encode_checkpoint(state: dict[str, torch.Tensor], meta: dict[str, Any],
                      reference: dict[str, torch.Tensor] | None = None,
                      delta_min_numel: int = 4096, delta_encoding: str = "float16"
                      ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays of a checkpoint (what :func:`save_checkpoint` writes) and its full metadata.

    Tensors with at least ``delta_min_numel`` entries that have a same-shaped entry in
    ``reference`` are stored as differences ``state - reference``: float16
    (``delta_encoding="float16"``, about 1e-4 of the change) or integers with one float32
    scale per row, stored as int8 (``"int8"``: symmetric rounding to 127 levels either side of
    zero of each row's largest change; ``"int7"``: 63 levels, a smaller compressed file at
    twice the step). Every other tensor is stored as float32 (or its integer dtype).
    """
    if delta_encoding not in DELTA_ENCODINGS:
        raise ValueError(f"delta_encoding {delta_encoding!r}: expected one of {sorted(DELTA_ENCODINGS)}")
    arrays: dict[str, np.ndarray] = {}
    encoding: dict[str, str] = {}
    for name, t in state.items():
        t = t.detach().cpu()
        ref = None if reference is None else reference.get(name)
        if (ref is not None and t.is_floating_point() and t.numel() >= delta_min_numel
                and tuple(ref.shape) == tuple(t.shape)):
            delta = (t.double() - ref.detach().cpu().double()).numpy()
            levels = DELTA_ENCODINGS[delta_encoding]
            if levels:
                rows = delta.reshape(delta.shape[0], -1) if delta.ndim > 1 else delta.reshape(1, -1)
                scale = np.abs(rows).max(axis=1) / levels
                q = np.rint(rows / np.where(scale > 0, scale, 1.0)[:, None])
                arrays["t/" + name] = q.astype(np.int8).reshape(delta.shape)
                arrays["s/" + name] = scale.astype(np.float32)
                encoding[name] = "int8-delta"
            else:
                arrays["t/" + name] = delta.astype(np.float16)
                encoding[name] = "float16-delta"
        elif t.is_floating_point():
            arrays["t/" + name] = t.float().numpy()
            encoding[name] = "float32"
        else:
            arrays["t/" + name] = t.numpy()
            encoding[name] = str(t.dtype).replace("torch.", "")
    meta = {**meta, "format": CHECKPOINT_FORMAT, "encoding": encoding,
            "shapes": {k: list(v.shape) for k, v in state.items()}}
    arrays["__meta__"] = _meta_array(meta)
    return arrays, meta


def _meta_array(meta: dict[str, Any]) -> np.ndarray:
    blob = json.dumps(meta, sort_keys=True, default=_json_default).encode()
    return np.frombuffer(blob, dtype=np.uint8)


def _savez(f, arrays: dict[str, np.ndarray]) -> None:
    np.savez_compressed(f, **arrays)


def checkpoint_nbytes(arrays: dict[str, np.ndarray]) -> int:
    """The size of the file :func:`write_checkpoint` makes of ``arrays`` (compressed in memory)."""
    buf = io.BytesIO()
    _savez(buf, arrays)
    return buf.tell()


def write_checkpoint(path: str, arrays: dict[str, np.ndarray]) -> str:
    """Write encoded arrays (from :func:`encode_checkpoint`) to ``path``, compressed and atomically."""
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        _savez(f, arrays)
    os.replace(tmp, path)
    return path


def save_checkpoint(path: str, state: dict[str, torch.Tensor], meta: dict[str, Any],
                    reference: dict[str, torch.Tensor] | None = None,
                    delta_min_numel: int = 4096, delta_encoding: str = "float16") -> str:
    """Write ``state`` (name -> tensor) and ``meta`` (JSON-serialisable) to ``path``, encoded
    as :func:`encode_checkpoint` says; the archive is compressed and written atomically."""
    arrays, _ = encode_checkpoint(state, meta, reference, delta_min_numel, delta_encoding)
    return write_checkpoint(path, arrays)


def encode_within(state: dict[str, torch.Tensor], meta: dict[str, Any],
                  reference: dict[str, torch.Tensor] | None, encodings: tuple[str, ...],
                  max_bytes: int | None) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
    """Encode with the first (finest) of ``encodings`` whose file fits ``max_bytes``.

    Returns the arrays, the full metadata and a record of the choice (``chosen``,
    ``max_bytes``, the size of every encoding tried, ``fits``); a file fits when it is at
    least ``META_SLACK_BYTES`` under ``max_bytes``. When none fits, the last
    (coarsest) is returned with ``fits`` False: the caller still writes it and says so, since
    a finished training is never thrown away. Without deltas to encode (no ``reference``)
    there is nothing to choose: the first encoding is used (its size still measured).
    """
    if not encodings:
        raise ValueError("no delta encoding to choose from")
    tried: dict[str, int] = {}
    for enc in encodings:
        arrays, full = encode_checkpoint(state, meta, reference, delta_encoding=enc)
        if max_bytes is None:
            return arrays, full, {"chosen": enc, "max_bytes": None, "bytes": {}, "fits": True}
        tried[enc] = checkpoint_nbytes(arrays)
        if reference is None or tried[enc] + META_SLACK_BYTES <= max_bytes:
            break
    return arrays, full, {"chosen": enc, "max_bytes": max_bytes, "bytes": tried,
                          "fits": tried[enc] + META_SLACK_BYTES <= max_bytes}


def read_checkpoint_meta(path: str) -> dict[str, Any]:
    """The metadata of a checkpoint (no tensors decoded); CheckpointError when unreadable."""
    return _open_checkpoint(path)[1]


def load_checkpoint(path: str, reference: dict[str, torch.Tensor] | None = None,
                    expect: dict[str, Any] | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; weights only, no pickle.

    ``expect`` maps metadata keys to required values (``{"method": "alista",
    "instance": "3f2a..."}``); a mismatch, a truncated or malformed file raises
    :class:`CheckpointError` naming the file and what to do.
    """
    arrays, meta = _open_checkpoint(path)
    for key, want in (expect or {}).items():
        have = meta.get(key)
        if have != want:
            raise CheckpointError(
                f"checkpoint {path} is for {key}={have!r}, not {key}={want!r}: "
                f"{meta.get('how_to_reproduce') and 'retrain it for this ' + key + ' (' + _retrain_hint(meta) + ')' or 'pass the checkpoint that belongs to it'}")
    try:
        state = decode_checkpoint(arrays, meta, reference)
    except (KeyError, ValueError, zipfile.BadZipFile, OSError, EOFError) as e:
        raise CheckpointError(f"checkpoint {path} is malformed ({type(e).__name__}: {e}); "
                              f"delete it and retrain ({_retrain_hint(meta)})") from None
    finally:
        arrays.close()
    return state, meta


def decode_checkpoint(arrays, meta: dict[str, Any],
                      reference: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The state stored in ``arrays`` (an opened archive, or what :func:`encode_checkpoint`
    returned) as its metadata describes it; KeyError/ValueError on anything malformed."""
    state: dict[str, torch.Tensor] = {}
    for name, enc in meta["encoding"].items():
        a = arrays["t/" + name]
        if list(a.shape) != list(meta["shapes"][name]):
            raise ValueError(f"tensor {name} has shape {list(a.shape)}, metadata says {meta['shapes'][name]}")
        t = torch.from_numpy(np.array(a))
        if enc in ("float16-delta", "int8-delta"):
            if reference is None or name not in reference:
                raise ValueError(f"tensor {name} is stored relative to the initialisation, which was not given")
            if enc == "int8-delta":
                if a.dtype != np.int8:
                    raise ValueError(f"tensor {name} is {a.dtype}, its encoding says int8")
                scale = torch.from_numpy(np.array(arrays["s/" + name], dtype=np.float64)).reshape(-1)
                n_rows = a.shape[0] if a.ndim > 1 else 1
                if scale.numel() != n_rows:
                    raise ValueError(f"tensor {name} has {scale.numel()} row scales for {n_rows} rows")
                t = (t.double().reshape(n_rows, -1) * scale[:, None]).reshape(a.shape)
            t = (reference[name].detach().cpu().double() + t.double()).to(reference[name].dtype)
        state[name] = t
    return state


def _retrain_hint(meta: dict) -> str:
    return meta.get("how_to_reproduce") or "python -m bench train ..."


def _open_checkpoint(path: str):
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        arrays = np.load(path, allow_pickle=False)
        meta = json.loads(bytes(arrays["__meta__"]).decode())
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
        # touch every member now so that a truncated archive fails here, not half-way
        for k in arrays.files:
            arrays[k]
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError, UnicodeDecodeError,
            json.JSONDecodeError) as e:
        raise CheckpointError(
            f"checkpoint {path} is truncated or not a checkpoint ({type(e).__name__}: {e}); "
            f"delete it and retrain it (its recipe's command is in the docs), or restore it "
            f"with `git checkout -- {path}`") from None
    return arrays, meta


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=256)
def _file_sha256_cached(path: str, size: int, mtime: float) -> str:
    return file_sha256(path)


def hash_with_checkpoints(base: str, directory: str, prefix: str) -> str:
    """``base`` (a method's source hash) combined with the name and SHA-256 of every
    ``<prefix>*.npz`` in ``directory``: a retrained checkpoint invalidates stored cells.
    File digests are cached by (path, size, mtime)."""
    h = hashlib.sha256(base.encode())
    if os.path.isdir(directory):
        for f in sorted(os.listdir(directory)):
            if f.startswith(prefix) and f.endswith(".npz"):
                p = os.path.join(directory, f)
                st = os.stat(p)
                h.update(f.encode() + _file_sha256_cached(p, st.st_size, st.st_mtime).encode())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class Stage:
    """One stage of a schedule: an optimiser over some parameters for at most
    ``max_steps`` steps, stopped early when the validation score has not improved for
    ``patience`` steps (None: never). ``spec`` is read by the job only (which layers,
    which parameters, learning-rate multipliers)."""

    name: str
    max_steps: int
    lr: float
    spec: dict[str, Any] = field(default_factory=dict)
    patience: int | None = None
    eval_every: int = 100


class TrainingJob:
    """What one training needs; subclasses fill in the problem-specific parts.

    ``model`` is a ``torch.nn.Module``; ``recipe`` a JSON-serialisable dict (the named
    configuration with every value used); ``score_name``/``score_direction`` name the
    validation score used for early stopping and for keeping the best state.
    """

    model: torch.nn.Module
    recipe: dict[str, Any]
    seed: int
    score_name: str = "val_score"
    score_direction: str = "min"

    def schedule(self) -> list[Stage]:
        raise NotImplementedError

    def param_groups(self, stage: Stage) -> list[dict[str, Any]]:
        """Optimiser parameter groups (``params``, ``lr``) of a stage."""
        return [{"params": [p for p in self.model.parameters() if p.requires_grad], "lr": stage.lr}]

    def batch(self, generator: torch.Generator) -> Any:
        """A fresh training batch drawn from ``generator``."""
        raise NotImplementedError

    def loss(self, batch: Any, stage: Stage) -> torch.Tensor:
        raise NotImplementedError

    def validate(self, stage: Stage | None) -> dict[str, float]:
        """Validation metrics on the fixed validation set; must contain ``score_name``.
        ``stage`` None: the final model as it will be used."""
        raise NotImplementedError

    def checkpoint_meta(self) -> dict[str, Any]:
        """Metadata stored with the weights (method, problem-instance hash, ...)."""
        return {}

    def reference_state(self) -> dict[str, torch.Tensor] | None:
        """A state the loader can rebuild (the initialisation); enables stored deltas."""
        return None

    #: how the deltas from ``reference_state`` may be stored, finest first (see
    #: :func:`encode_checkpoint`): the trainer writes the first whose file fits
    #: ``max_checkpoint_bytes`` (None: no limit, the first is used)
    delta_encodings: tuple[str, ...] = ("float16", "int8", "int7")
    max_checkpoint_bytes: int | None = CHECKPOINT_MAX_BYTES

    def lr_factor(self, stage: Stage, step: int) -> float:
        """Multiplier of every group's base learning rate at ``step`` (0-based) of ``stage``;
        1.0 (constant) unless the job has a schedule (e.g. poly decay)."""
        return 1.0

    def better(self, a: float, b: float | None) -> bool:
        if b is None or (isinstance(b, float) and math.isnan(b)):
            return True
        return a < b if self.score_direction == "min" else a > b


@dataclass
class TrainResult:
    path: str
    steps: int
    seconds: float
    validation: dict[str, float]
    stages: list[dict[str, Any]]


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train(job: TrainingJob, out_path: str, resume: bool = True, progress: bool = True,
          save_every_s: float = 60.0, extra_meta: dict[str, Any] | None = None) -> TrainResult:
    """Run the job's schedule; write the checkpoint to ``out_path``.

    Every ``save_every_s`` seconds (and at each stage end) the position, model,
    optimiser and random-generator states go to ``out_path + '.resume.pt'``; rerunning
    the same command continues from there (``resume=False`` starts afresh). Within a
    stage the best validated state is kept and restored at the stage's end.
    """
    from tqdm import tqdm

    stages = job.schedule()
    resume_path = out_path + ".resume.pt"
    gen = torch.Generator().manual_seed(int(job.seed))
    pos = {"stage": 0, "step": 0, "steps": 0, "seconds": 0.0, "best": None, "since_best": 0,
           "log": []}
    best_state = None
    opt_state = None
    if resume and os.path.exists(resume_path):
        try:
            saved = torch.load(resume_path, weights_only=True, map_location="cpu")
            if saved.get("recipe") != json.loads(json.dumps(job.recipe, default=_json_default)):
                raise CheckpointError(f"{resume_path} was written by another recipe; delete it or "
                                      f"pass --no-resume")
            job.model.load_state_dict(saved["model"])
            gen.set_state(saved["generator"])
            pos = saved["pos"]
            best_state = saved["best_state"]
            opt_state = saved["optimizer"]
            print(f"resuming {out_path} at stage {pos['stage'] + 1}/{len(stages)}, step {pos['step']} "
                  f"({pos['steps']} steps, {pos['seconds']:.0f} s so far)", file=sys.stderr)
        except CheckpointError:
            raise
        except Exception as e:  # noqa: BLE001 - a broken resume file: say so, do not guess
            raise CheckpointError(f"resume file {resume_path} is unreadable ({type(e).__name__}: {e}); "
                                  f"delete it or pass --no-resume") from None

    total = sum(s.max_steps for s in stages)
    done_before = sum(s.max_steps for s in stages[:pos["stage"]]) + pos["step"]
    bar = tqdm(total=total, initial=done_before, desc=job.recipe.get("name", "train"), unit="step",
               disable=not progress, dynamic_ncols=True, file=sys.stderr, mininterval=1.0)
    t_mark = time.perf_counter()
    last_save = t_mark

    def elapsed() -> float:
        return pos["seconds"] + (time.perf_counter() - t_mark)

    def save_resume(optimizer):
        nonlocal last_save
        torch.save({"recipe": json.loads(json.dumps(job.recipe, default=_json_default)),
                    "model": job.model.state_dict(), "generator": gen.get_state(),
                    "pos": {**pos, "seconds": elapsed()}, "best_state": best_state,
                    "optimizer": optimizer.state_dict() if optimizer is not None else None},
                   resume_path + ".tmp")
        os.replace(resume_path + ".tmp", resume_path)
        last_save = time.perf_counter()

    try:
        while pos["stage"] < len(stages):
            stage = stages[pos["stage"]]
            optimizer = torch.optim.Adam(job.param_groups(stage))
            if opt_state is not None:
                optimizer.load_state_dict(opt_state)
                opt_state = None
            if pos["step"] == 0:
                with torch.no_grad():
                    v = job.validate(stage)
                pos["best"], pos["since_best"] = v[job.score_name], 0
                best_state = _cpu_state(job.model)
            bar.set_postfix_str(f"{stage.name} val {pos['best']:.2f}", refresh=False)
            stopped = False
            while pos["step"] < stage.max_steps:
                job.model.train()
                factor = job.lr_factor(stage, pos["step"])
                for group in optimizer.param_groups:
                    group["lr"] = group.setdefault("base_lr", group["lr"]) * factor
                batch = job.batch(gen)
                loss = job.loss(batch, stage)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                pos["step"] += 1
                pos["steps"] += 1
                bar.update(1)
                if pos["step"] % stage.eval_every == 0 or pos["step"] == stage.max_steps:
                    job.model.eval()
                    with torch.no_grad():
                        v = job.validate(stage)
                    score = v[job.score_name]
                    pos.setdefault("history", []).append(
                        {"step": pos["steps"], "seconds": round(elapsed(), 1),
                         **{k: float(x) for k, x in v.items() if isinstance(x, (int, float))}})
                    if not math.isfinite(score):
                        raise BenchError(f"training diverged in stage {stage.name} (validation {score}); "
                                         f"lower the learning rate of the recipe")
                    if job.better(score, pos["best"]):
                        pos["best"], pos["since_best"] = score, 0
                        best_state = _cpu_state(job.model)
                    else:
                        pos["since_best"] += stage.eval_every
                    bar.set_postfix_str(f"{stage.name} val {score:.2f} best {pos['best']:.2f}", refresh=False)
                    if stage.patience is not None and pos["since_best"] >= stage.patience:
                        stopped = True
                        break
                if time.perf_counter() - last_save > save_every_s:
                    save_resume(optimizer)
            bar.update(stage.max_steps - pos["step"])
            job.model.load_state_dict(best_state)
            pos["log"].append({"stage": stage.name, "steps": pos["step"], "best": pos["best"],
                               "early_stop": stopped, "seconds": round(elapsed(), 2)})
            pos["stage"] += 1
            pos["step"] = 0
            save_resume(None)
    finally:
        bar.close()

    seconds = elapsed()
    job.model.eval()
    with torch.no_grad():
        final = job.validate(None)
    meta = {**job.checkpoint_meta(), **(extra_meta or {}), "recipe": job.recipe, "seed": job.seed,
            "validation": final, "training": {"steps": pos["steps"], "seconds": round(seconds, 1),
                                              "stages": len(stages), "log": pos["log"],
                                              "history": pos.get("history", []),
                                              "torch_threads": torch.get_num_threads(),
                                              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
    reference = job.reference_state()
    trained = _cpu_state(job.model)
    arrays, meta, choice = encode_within(trained, meta, reference, tuple(job.delta_encodings),
                                         job.max_checkpoint_bytes)
    if reference is not None:
        # what a user loads is the stored (delta-encoded) state: validate that one too,
        # decoded in memory from the very arrays that are written below
        stored = decode_checkpoint(arrays, meta, reference)
        job.model.load_state_dict({**job.model.state_dict(), **stored})
        with torch.no_grad():
            meta["validation_as_stored"] = job.validate(None)
        meta["delta_encoding"] = choice
        arrays["__meta__"] = _meta_array(meta)
    write_checkpoint(out_path, arrays)
    if not choice["fits"]:
        print(f"warning: {out_path} is {os.path.getsize(out_path) / 1e6:.2f} MB in the coarsest encoding "
              f"tried ({choice['chosen']}), over the {choice['max_bytes'] / 2**20:g} MiB a checkpoint should "
              f"fit (bytes per encoding: {choice['bytes']}); it was written anyway", file=sys.stderr)
    if os.path.exists(resume_path):
        os.remove(resume_path)
    return TrainResult(out_path, pos["steps"], seconds, final, pos["log"])


# --------------------------------------------------------------------------- command line
def add_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train a learned method and write its checkpoint",
        description="Train a learned method of a suite with a named recipe. Fresh training samples each "
                    "step, a fixed validation set, early stopping, checkpoints; rerunning an interrupted "
                    "command resumes it.")
    p.add_argument("--suite", required=True)
    p.add_argument("--method", required=True, help="a learned method of the suite (see `list`)")
    p.add_argument("--recipe", default="cpu", help="named configuration (default cpu; see the method's docs)")
    p.add_argument("--snr", default=None, help="training SNR in dB or inf (suites with noise levels)")
    p.add_argument("--dataset", default=None, help="dataset selector to train on (default: the suite's)")
    p.add_argument("--seed", type=int, default=None, help="training seed (default: the recipe's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one recipe value, repeatable (e.g. --set steps_new=400)")
    p.add_argument("--out", default=None, help="checkpoint path (default: where the method looks for it)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--data-root", default=None,
                   help="folder with the real data sets (default: $BENCH_DATA, else ~/.cache/imaging-bench/data)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (methods that support it; default cpu)")
    p.add_argument("--no-resume", action="store_true", help="ignore a resume file and start afresh")
    p.add_argument("--no-progress", action="store_true")


def cmd_train(args) -> int:
    from bench import registry as R
    from bench.cli import default_data_root
    from bench.selectors import parse_value

    R.SUITES.get_or_fail(args.suite)
    mcls = R.METHODS.get_or_fail(args.method)
    if mcls.suite != args.suite or not hasattr(mcls, "training_job"):
        learned = sorted(n for n, m in R.METHODS.items() if m.suite == args.suite and hasattr(m, "training_job"))
        from bench.errors import UnknownNameError
        raise UnknownNameError(f"{args.method!r} is not a trainable method of suite {args.suite!r}",
                               valid=learned, what="method")
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {}
    for item in args.set:
        if "=" not in item:
            raise BenchError(f"--set {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        overrides[k.strip()] = parse_value(v, f"--set {k}")
    if args.device not in ("cpu", "cuda") and not args.device.startswith("cuda:"):
        raise BenchError(f"--device {args.device!r}: use cpu or cuda")
    if args.device != "cpu" and not torch.cuda.is_available():
        raise BenchError(f"--device {args.device}: torch sees no CUDA device here; train with --device cpu")
    job, default_out = mcls.training_job(recipe=args.recipe, snr=args.snr, dataset=args.dataset,
                                         seed=args.seed, overrides=overrides, device=args.device,
                                         data_root=args.data_root or default_data_root())
    out = args.out or default_out
    print(f"training {args.method} ({args.recipe}) -> {out} on {args.device}; {torch.get_num_threads()} thread(s)",
          file=sys.stderr)
    res = train(job, out, resume=not args.no_resume, progress=not args.no_progress)
    size = os.path.getsize(out)
    print(f"{out}: {res.steps} steps in {res.seconds:.0f} s; validation "
          + ", ".join(f"{k} {v:.2f}" for k, v in res.validation.items() if isinstance(v, float))
          + f"; {size / 1e6:.2f} MB")
    return 0
