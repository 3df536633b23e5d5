"""The learned ISTD methods (SPECS section 2): RPCANet and L-RPCANet, registered as
``rpcanet`` and ``l_rpcanet``. Their network is :mod:`bench.methods.istd.network` (one
:class:`UnfoldingNet` built from a :class:`NetConfig`); ``checkpoint`` (:mod:`bench.weights`'s
grammar) names a project checkpoint (``shipped``: ``<method>_sirst``, trained here by
:mod:`bench.methods.istd.training`) or the authors' released weights
(``published:<name>``, read by :mod:`bench.methods.istd.published`).

The map a method returns is sigmoid(T_K); segmentation rule ``prob`` (> 0.5), as SPECS
says for learned networks. Inputs are gray levels / 255 at the image's native resolution
(the networks are fully convolutional; the public code resizes to 256x256 first, which
the BasicIRSTD protocol at native resolution does not).
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, ClassVar

import torch

from bench import weights as W
from bench.errors import BenchError, CheckpointError
from bench.methods.istd.common import IstdInput, TargetMaps, groups_by_shape, shape_batches
# the network, the published weights and the training, re-exported: `learned.build`, ...
from bench.methods.istd.network import (CONFIGS, L_RPCANET, MODULES, NET_KEYS, RPCANET, ConvModule,  # noqa: F401
                                        ModuleSpec, NetConfig, SqueezeExcite, Stage, UnfoldingNet, build,
                                        config_dict, config_from_dict, net_config, shared_state)
from bench.methods.istd.published import (AUTHORS_MODULES, AUTHORS_STEPS, authors_key,  # noqa: F401
                                          infer_published_config, published_network)
from bench.methods.istd.training import (CHECKPOINT_DIR, IOU_OVER, LOSS_GAMMA, PAPER_LR,  # noqa: F401
                                         RECIPE_KEYS_ADDED, RECIPES, REPO_ROOT, IstdTrainingJob,
                                         _init_network, ablation_finetuned_name, ablation_name, ablation_overrides,
                                         checkpoint_recipe, finetuned_name,
                                         soft_iou_loss)
from bench.params import Param
from bench.precision import PRECISIONS, autocast, check_precision, memory_format
from bench.registry import Method, register_method

BN_MODES = ("running", "image")


def _parameter_specs(method: str) -> dict[str, Param]:
    """The parameter specs of ``method``: its ``checkpoint`` accepts ``published:<name>``
    only for the names of its manifest entries (a typo stops ``bench run`` with exit 2 and
    the valid names)."""
    return {"checkpoint": W.checkpoint_param(method, none=False, help=W.checkpoint_help(
                method, "shipped: the shipped one trained on SIRST (shipped:<method>_sirst); shipped:<name>: "
                        "methods/istd/checkpoints/<name>.npz; or a .npz path")),
            "bn": Param(str, choices=BN_MODES),
            "precision": Param(str, choices=PRECISIONS,
                               help="fp32 (default) or bf16: autocast to bfloat16 around the network, only "
                                    "where the device computes bf16 natively (bench/precision.py)"),
            "channels_last": Param(bool, help="network and inputs in channels_last (NHWC) memory format")}


class _IstdLearned(Method):
    """A trained RPCANet-family network: loads its checkpoint in ``setup`` (not timed): a
    project checkpoint (shipped or trained here) or the authors' published weights."""

    suite = "istd"
    family = "learned"
    devices = ("cpu", "cuda")
    # bn: which statistics the BatchNorm layers normalise with at inference.
    #   "running" (default; the papers' and public codes' eval mode): the running averages
    #     stored in the checkpoint;
    #   "image": prediction-time BN (Nado et al., 2020, arXiv:2006.10963): the statistics of
    #     the image being segmented, one image per forward pass; the stored averages are
    #     neither used nor changed. A diagnostic of how much a short training's running
    #     statistics cost, not the published protocol (docs/suite_istd.md).
    # checkpoint: where the weights come from (:func:`bench.weights.resolve`): shipped (the
    #   SIRST one), shipped:<name>, a .npz path, or published:<name>, the authors' weights
    # precision / channels_last: bench/precision.py (fp32 and the default layout by default)
    parameters = {"checkpoint": "shipped", "bn": "running", "precision": "fp32", "channels_last": False}
    BN_MODES: ClassVar[tuple[str, ...]] = BN_MODES
    parameter_specs = _parameter_specs("")
    source_dependencies = ("bench.methods.istd.common",)
    # one timed repeat after the warm-up: a whole test set takes about a minute on a 2-core CPU
    max_repeat: ClassVar[int] = 1
    #: accepts ``checkpoint=published:<name>`` (``bench weights`` lists the selector)
    loads_published: ClassVar[bool] = True
    fine_tunes: ClassVar[bool] = True

    def setup(self, context) -> None:
        super().setup(context)
        if self.params["bn"] not in self.BN_MODES:
            raise BenchError(f"{self.name}: bn={self.params['bn']!r}; valid: {', '.join(self.BN_MODES)}")
        check_precision(self.params["precision"], context.device, self.name)
        ckpt = W.canonical(self.params["checkpoint"])
        if ckpt is None:
            raise CheckpointError(f"{self.name}: an untrained network detects nothing; pass checkpoint=shipped, "
                                  f"shipped:<name>, published:<name> or a path")
        source = W.resolve("istd", self.name, ckpt, problem=context.problem)
        self._source = source
        if source.entry is not None:
            # its sha256 checked first: a corrupt file fails here, named
            net = W.load_network(source, lambda state, what, n: published_network(self.name, state, what, n))
            self._net = net.to(context.device).eval()
            self._place(context.device)
            self._path, self._meta = source.path, {"method": self.name, "config": config_dict(net.cfg)}
            return
        path = source.path
        if not os.path.exists(path):
            raise CheckpointError(f"{self.name}: no checkpoint at {path}; make it with "
                                  f"`{W.make_command(source) if source.kind == 'shipped' else W.train_command('istd', self.name, out=path)}`")
        from bench.checkpoints import load_checkpoint
        meta = W.trained_meta("istd", self.name, path)
        try:
            cfg = config_from_dict(meta["config"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"checkpoint {path} has no readable network configuration ({e}); "
                                  f"retrain it (`{meta.get('how_to_reproduce') or W.train_command('istd', self.name)}`)") from None
        net = UnfoldingNet(cfg)
        reference = _reference_of(self.name, meta, path)
        state, _ = load_checkpoint(path, reference=reference)
        try:
            net.load_state_dict(state)
        except RuntimeError as e:
            raise CheckpointError(f"checkpoint {path} does not fit {self.name} ({str(e).splitlines()[0]}); "
                                  f"retrain it (`{meta.get('how_to_reproduce')}`)") from None
        self._net = net.to(context.device).eval()
        self._place(context.device)
        self._path, self._meta = path, meta

    def _place(self, device: str) -> None:
        self._device = str(device)
        self._format = memory_format(bool(self.params["channels_last"]))
        self._net = self._net.to(memory_format=self._format)
        # the convolutions' FLOPs per pixel (every convolution keeps the image's size): the
        # runtime table's achieved GFLOP/s (bench/flops.py)
        from bench.flops import conv_flops, conv_layers
        probe = torch.zeros(1, 1, 16, 16, device=device)
        self._flops_per_pixel = conv_flops(conv_layers(self._net, probe)) / 256.0
        self._conv_flops = 0.0

    def run(self, inputs: IstdInput) -> TargetMaps:
        maps: list = [None] * len(inputs.images)
        if self.params["bn"] == "image":
            # one image per pass: a stacked batch would share its statistics across images
            groups = [[i] for i in range(len(inputs.images))]
        else:
            groups = shape_batches(inputs.images)
        self._conv_flops = self._flops_per_pixel * sum(int(im.shape[-1]) * int(im.shape[-2]) for im in inputs.images)
        with torch.no_grad(), image_batch_norm(self._net, self.params["bn"] == "image"):
            for idx in groups:
                x = torch.stack([inputs.images[i] for i in idx]).to(torch.float32).unsqueeze(1) / 255.0
                x = x.contiguous(memory_format=self._format)
                self._roof_probe = x[:1]
                with autocast(self.params["precision"], self._device):
                    _, T = self._net(x)
                prob = torch.sigmoid(T[:, 0].float()).contiguous()
                for k, i in enumerate(idx):
                    maps[i] = prob[k]
        return TargetMaps(tuple(maps), "prob")

    def warm_up(self, inputs: IstdInput) -> None:
        """The runner's untimed warm-up: the network on the first image only (a whole test set
        takes a minute on a 2-core CPU; one image allocates the buffers and loads the kernels)."""
        self.run(IstdInput(inputs.images[:1]))

    def output_identity(self) -> str:
        """The loaded weights (their decoded digest) and how they run: the checkpoint is
        resolved from the cell's problem."""
        from bench.checkpoints import decoded_digest
        return f"{self._source.label}|{decoded_digest(self._net.state_dict())}"

    def parameter_count(self) -> int | None:
        net = getattr(self, "_net", None)
        return net.parameter_count() if net is not None else build(CONFIGS[self.name]).parameter_count()

    def weights_record(self) -> dict[str, Any]:
        """What the row records of the loaded weights: where they come from, the file's
        SHA-256 and the digest of the decoded weights (:func:`bench.checkpoints.decoded_digest`);
        for published weights also the manifest's provenance (repository, commit, licence,
        training data, the published figure and its protocol: targets, never table values)."""
        from bench.checkpoints import decoded_digest
        src = self._source
        rec = {"source": src.kind, "checkpoint": src.label, "file_sha256": W.sha256_of(self._path),
               "decoded_sha256": decoded_digest(self._net.state_dict())}
        e = src.entry
        if e is not None:
            rec.update({"name": e.name, "file": e.path, "repo": e.repo, "commit": e.commit,
                        "source_path": e.source_path, "licence": e.licence, "trained_on": e.trained_on,
                        "published_figure": dict(e.figure), "published_protocol": e.protocol})
        return rec

    def row_extras(self) -> dict[str, Any]:
        return {**self._row_extras(), "conv_flops_per_run": self._conv_flops,
                "precision": self.params["precision"], "channels_last": bool(self.params["channels_last"]),
                **self._roof_record()}

    def _roof_record(self, repeats: int = 3) -> dict[str, Any]:
        """The network's convolution FLOP rate against the roof, measured in the same run after
        the timed pass (not timed with it): on the last batch's first image, the network's
        forward pass and its convolutions alone (:func:`bench.flops.roof_pass`, the same
        shapes, weights, precision and layout), interleaved, median of ``repeats`` each."""
        import statistics
        import time

        from bench.flops import conv_flops, conv_layers, roof_pass
        x = getattr(self, "_roof_probe", None)
        if x is None or self._device != "cpu":
            return {}
        ctx = lambda: autocast(self.params["precision"], self._device)  # noqa: E731
        layers = conv_layers(self._net, x, ctx())
        flops = conv_flops(layers)
        net_t, roof_t = [], []
        with torch.no_grad():
            for _ in range(repeats):
                t0 = time.perf_counter()
                with ctx():
                    self._net(x)
                net_t.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                roof_pass(layers, ctx())
                roof_t.append(time.perf_counter() - t0)
        net_s, roof_s = statistics.median(net_t), statistics.median(roof_t)
        return {"roof": {"image": list(x.shape[-2:]), "conv_flops": flops, "net_gflops": flops / net_s / 1e9,
                         "roof_gflops": flops / roof_s / 1e9, "ratio": roof_s / net_s, "repeats": repeats,
                         "threads": torch.get_num_threads()}}

    def _row_extras(self) -> dict[str, Any]:
        m = self._meta
        if self._source.entry is not None:
            e = self._source.entry
            cfg = self._net.cfg
            return {"checkpoint": self._source.label, "config": m.get("config"),
                    "se_modules": list(cfg.se_modules()), "stages": cfg.stages,
                    "training": {"recipe": "published", "dataset": e.trained_on, "source": e.source},
                    "weights": self.weights_record()}
        tr = m.get("training", {})
        return {"checkpoint": os.path.relpath(self._path, REPO_ROOT), "config": m.get("config"),
                "se_modules": list(config_from_dict(m["config"]).se_modules()),
                "stages": m["config"]["stages"],
                "training": {"recipe": m.get("recipe", {}).get("name"), "init": (m.get("init") or {}).get("checkpoint"),
                             "dataset": m.get("dataset"),
                             "steps": tr.get("steps"),
                             # the step of the kept state (0: the starting state; None: not recorded)
                             "kept_step": (tr.get("log") or [{}])[-1].get("best_step"),
                             "seconds": tr.get("seconds"), "threads": tr.get("torch_threads"),
                             "device": m.get("device"), "train_split_hash": m.get("train_hash"),
                             "validation": m.get("validation")},
                "how_to_reproduce": m.get("how_to_reproduce"), "weights": self.weights_record()}

    @classmethod
    def training_job(cls, recipe: str = "cpu", dataset: str | None = None, seed: int | None = None,
                     overrides: dict[str, Any] | None = None, device: str = "cpu",
                     data_root: str | None = None, options: dict[str, Any] | None = None, init: str | None = None):
        job = IstdTrainingJob(cls.name, recipe, dataset, seed, overrides or {}, device, data_root, init)
        return job, job.default_path()

    @classmethod
    def weights_digest(cls, params) -> str:
        """The file the cell reads, shipped, trained or published (part of its key; resolved by
        :func:`bench.weights.resolve`, as the loading and the suite's skip are)."""
        ckpt = W.canonical(params.get("checkpoint", "shipped"))
        if ckpt is None:
            return ""
        return W.weights_digest(W.resolve("istd", cls.name, ckpt))

    @classmethod
    def default_checkpoint(cls, problem, kind: str = "shipped") -> str | None:
        """``shipped``: the checkpoint trained here on SIRST, ``shipped:<method>_sirst``
        (whatever the cell's dataset: the other sets are cross-dataset tests of it)."""
        return f"{W.SHIPPED_PREFIX}{cls.name}_sirst" if kind == "shipped" else None

    @classmethod
    def make_command(cls, stem: str) -> str:
        """What a shipped file's name says: ``<method>_sirst_from_<name>`` fine-tuned on SIRST
        from ``published:<name>`` (recipe ``finetune``); ``<method>[_<dataset>]_ablation_<knob>``
        the ``ablation`` recipe and its knob (on SIRST, else on ``<dataset>``), and
        ``<method>_<dataset>_ablation_<knob>_from_<name>``
        the ``ablation_finetune`` recipe on ``<dataset>`` from ``published:<name>``
        (:func:`ablation_overrides` reads the knob); anything else the default recipe."""
        if "_ablation_" in stem:
            head, knob = stem.split("_ablation_", 1)
            dataset = head[len(cls.name) + 1:] or None
            if "_from_" not in knob:
                return W.train_command("istd", cls.name, "ablation", ablation_overrides(knob), dataset=dataset)
            knob, init = knob.split("_from_", 1)
            return (W.train_command("istd", cls.name, "ablation_finetune", ablation_overrides(knob),
                                    dataset=dataset) + f" --init {W.PUBLISHED_PREFIX}{init}")
        if "_sirst_from_" in stem:
            return (W.train_command("istd", cls.name, "finetune")
                    + f" --init {W.PUBLISHED_PREFIX}{stem.split('_sirst_from_', 1)[1]}")
        return W.train_command("istd", cls.name)


@register_method
class RpcaNet(_IstdLearned):
    name = "rpcanet"
    display_name = "RPCANet"
    parameter_specs = _parameter_specs("rpcanet")
    description = ("RPCANet (Wu et al., WACV 2024): 6 unfolded stages of background, target and image CNNs, "
                   "679,896 parameters; trained on SIRST (checkpoint=shipped: the shipped CPU-budget one)")


@register_method
class LRpcaNet(_IstdLearned):
    name = "l_rpcanet"
    display_name = "L-RPCANet"
    parameter_specs = _parameter_specs("l_rpcanet")
    description = ("L-RPCANet (Liu, Han, Xiu): RPCANet plus a noise module, 1x1 bottlenecks and SE blocks; the "
                   "public code's configuration, 475,188 parameters; trained on SIRST")


def _reference_of(method: str, meta: dict[str, Any], path: str) -> dict[str, torch.Tensor]:
    """The state a checkpoint's deltas are stored against: the seeded initialisation, or for
    a fine-tuned one (``meta["init"]``) the published weights it started from, which must be
    under the weights root with the SHA-256 the checkpoint recorded."""
    init = meta.get("init")
    if not init:
        return build(config_from_dict(meta["config"]), int(meta.get("seed", 0))).state_dict()
    source = W.resolve("istd", method, init["checkpoint"])
    reason = W.missing_reason(source)
    if reason is not None:
        raise CheckpointError(f"checkpoint {path} is stored as a delta from {init['checkpoint']}: {reason}")
    if source.entry.sha256 != init.get("sha256"):
        raise CheckpointError(f"checkpoint {path} was fine-tuned from {init['checkpoint']} with SHA-256 "
                              f"{init.get('sha256')}; the manifest now names {source.entry.sha256}")
    state = W.load_network(source, lambda state, what, _: published_network(method, state, what),
                           count=False).state_dict()
    # a fine-tuning of fewer stages or SE blocks started from (and is stored against) the
    # file's tensors that its network has
    return shared_state(state, config_from_dict(meta["config"]), init["checkpoint"])


@contextlib.contextmanager
def image_batch_norm(net: torch.nn.Module, enabled: bool = True):
    """Inside the block the BatchNorm layers of ``net`` normalise with the statistics of the
    batch they are given and leave their running averages (and counters) untouched."""
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)] if enabled else []
    saved = [(m.training, m.track_running_stats) for m in bns]
    try:
        for m in bns:
            m.training, m.track_running_stats = True, False
        yield net
    finally:
        for m, (tr, track) in zip(bns, saved):
            m.training, m.track_running_stats = tr, track
