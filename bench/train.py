"""The training pipeline shared by every learned method: a model, a data source, a loss,
a schedule of stages, validation with early stopping, checkpoints, resumption.

What is problem-specific lives in a :class:`TrainingJob` that the method's module builds
(``training_job`` classmethod of the registered Method); this module knows nothing of
LASSO, images or spectra::

    job = MethodClass.training_job(...)           # model, data, loss, schedule, recipe
    result = train(job, "path/to/checkpoint.npz")  # resumable, progress bar, early stopping

The command line: ``python -m bench train --suite sparse --method alista --snr 40``.

Checkpoints are encoded, written and read by :mod:`bench.checkpoints`. The trainer writes
the finest of a job's ``delta_encodings`` whose file fits its ``max_checkpoint_bytes`` (by
default the project's 5 MiB per tracked file), records that choice, and validates the
stored state, decoded in memory from the arrays it writes, as well as the trained one.
The resume file of an interrupted training is a ``torch.save`` of tensors and plain
containers, read back with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from bench.checkpoints import (CHECKPOINT_MAX_BYTES, decode_checkpoint, encode_checkpoint, encode_within,
                               json_default, meta_array, write_checkpoint)
from bench.errors import BenchError, CheckpointError
from bench import paths


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
    # the checkpoint's folder (a suite's first shipped checkpoint, a new --out folder)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    resume_path = out_path + ".resume.pt"
    gen = torch.Generator().manual_seed(int(job.seed))
    pos = {"stage": 0, "step": 0, "steps": 0, "seconds": 0.0, "best": None, "since_best": 0,
           "log": []}
    best_state = None
    opt_state = None
    if resume and os.path.exists(resume_path):
        try:
            saved = torch.load(resume_path, weights_only=True, map_location="cpu")
            if saved.get("recipe") != json.loads(json.dumps(job.recipe, default=json_default)):
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
        torch.save({"recipe": json.loads(json.dumps(job.recipe, default=json_default)),
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
                # in eval mode, as every later validation: in train mode BatchNorm would score
                # with each image's own statistics and fold the val images into its averages
                job.model.eval()
                with torch.no_grad():
                    v = job.validate(stage)
                pos["best"], pos["since_best"], pos["best_step"] = v[job.score_name], 0, 0
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
                        pos["best"], pos["since_best"], pos["best_step"] = score, 0, pos["step"]
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
            # best_step: the step of the kept state within the stage (0: the state it started from)
            pos["log"].append({"stage": stage.name, "steps": pos["step"], "best": pos["best"],
                               "best_step": pos.get("best_step"),
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
        arrays["__meta__"] = meta_array(meta)
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
    # the suites' own training options (Suite.training_options: sparse's --snr), one flag each
    for name, (suites, text) in _suite_options().items():
        p.add_argument(f"--{name}", default=None, dest=f"option_{name}",
                       help=f"{text} (suite {', '.join(suites)} only)")
    p.add_argument("--dataset", default=None, help="dataset selector to train on (default: the suite's)")
    p.add_argument("--seed", type=int, default=None, help="training seed (default: the recipe's)")
    p.add_argument("--init", default=None, metavar="published:NAME",
                   help="start from published weights instead of a random initialisation (fine-tuning; "
                        "methods that support it, e.g. istd's l_rpcanet with --recipe finetune; "
                        "`python -m bench weights` lists the names)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one recipe value, repeatable (e.g. --set steps_new=400)")
    p.add_argument("--out", default=None, help="checkpoint path (default: where the method looks for it)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads, N >= 1 (default: the cores other work leaves free, by the load average, "
                        "as `bench run` chooses them; printed at start and recorded in the checkpoint)")
    p.add_argument("--data-root", default=None,
                   help="folder with the real data sets (default: $BENCH_DATA, else ~/.cache/imaging-bench/data)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (methods that support it; default cpu)")
    p.add_argument("--no-resume", action="store_true", help="ignore a resume file and start afresh")
    p.add_argument("--no-progress", action="store_true")


def _suite_options() -> dict[str, tuple[list[str], str]]:
    """Every suite's declared training options: name -> (the suites that declare it, help)."""
    from bench import registry as R
    R.load_all()
    out: dict[str, tuple[list[str], str]] = {}
    for sname, suite in sorted(R.SUITES.items()):
        for name, text in suite.training_options.items():
            out.setdefault(name, ([], text))[0].append(sname)
    return out


def training_options(suite: str, args) -> dict[str, Any]:
    """The options the command line gave (``--snr 40``), refused with one line when ``suite``
    does not declare them (:attr:`bench.suite.Suite.training_options`)."""
    from bench import registry as R
    declared = R.SUITES.get_or_fail(suite).training_options
    given = {k[len("option_"):]: v for k, v in vars(args).items() if k.startswith("option_") and v is not None}
    for name in given:
        if name not in declared:
            raise BenchError(f"--{name} does not apply to suite {suite!r} (its training options: "
                             f"{', '.join('--' + n for n in declared) or 'none'}); drop it")
    return given


def cmd_train(args) -> int:
    from bench import registry as R
    from bench.selectors import parse_value

    R.SUITES.get_or_fail(args.suite)
    mcls = R.METHODS.get_or_fail(args.method)
    if mcls.suite != args.suite or not mcls.can_train():
        learned = sorted(n for n, m in R.METHODS.items() if m.suite == args.suite and m.can_train())
        from bench.errors import UnknownNameError
        raise UnknownNameError(f"{args.method!r} is not a trainable method of suite {args.suite!r}",
                               valid=learned, what="method")
    if args.threads is not None and args.threads < 1:
        raise BenchError(f"--threads {args.threads}: must be at least 1")
    from bench.runner import choose_threads
    threads = choose_threads(1, args.threads)
    torch.set_num_threads(threads.threads)
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
    kwargs = {}
    if args.init is not None:
        if not mcls.fine_tunes:
            from bench.errors import UnknownNameError
            able = sorted(n for n, m in R.METHODS.items() if m.suite == args.suite and m.fine_tunes)
            raise UnknownNameError(f"--init: {args.method} cannot start from other weights; drop --init, or "
                                   f"fine-tune one of suite {args.suite!r}'s methods that can",
                                   valid=able or ["(none in this suite)"], what="method")
        kwargs["init"] = args.init
    job, default_out = mcls.training_job(recipe=args.recipe, dataset=args.dataset,
                                         seed=args.seed, overrides=overrides, device=args.device,
                                         data_root=paths.data_root(args.data_root),
                                         options=training_options(args.suite, args), **kwargs)
    out = args.out or default_out
    print(f"training {args.method} ({args.recipe}) -> {out} on {args.device}", file=sys.stderr)
    print(threads.line(), file=sys.stderr)
    res = train(job, out, resume=not args.no_resume, progress=not args.no_progress)
    size = os.path.getsize(out)
    print(f"{out}: {res.steps} steps in {res.seconds:.0f} s; validation "
          + ", ".join(f"{k} {v:.2f}" for k, v in res.validation.items() if isinstance(v, float))
          + f"; {size / 1e6:.2f} MB")
    return 0
