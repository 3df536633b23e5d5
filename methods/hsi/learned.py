"""Learned model-aided hyperspectral denoisers (SPECS section 3): SMDS-Net, STAR-Net and
STAR-Net-S, one implementation with the variants as configurations
(:class:`~bench.methods.hsi.network.NetConfig`). This module registers the three methods; the
code they run is in three modules: :mod:`bench.methods.hsi.network` (the unrolled stages,
step 3 below), :mod:`bench.methods.hsi.blocks` (steps 1, 2 and 4: blocks, subspace, cubes)
and :mod:`bench.methods.hsi.published` (the authors' weights).

The pipeline, per overlapping 56x56 spatial block of the cube (the authors' test protocol):

1. **Spectral subspace.** A non-local-means prefilter of the noisy block (scikit-image
   ``denoise_nl_means``, patch 7, distance 9, h 0.08, fast mode, sigma from
   ``estimate_sigma``) is used only to estimate the subspace with HySime
   (:func:`hysime`: rank k and the k eigenvectors E_k, ordered by HySime's cost); E_k is
   padded with zero columns up to 9. The NOISY block is projected, G = Y E_k.
2. **Cubes.** Every 9x9 (space) x 9 (subspace channels) cube of G, stride 1 (when k > 9 the
   cubes also slide along the channels), each with its mean removed: a 729-vector, index
   channel*81 + row*9 + column (``torch.nn.functional.unfold`` order).
3. **Unrolled stages** on all cubes of all blocks of a chunk at once (a matrix of rows, no
   loop per block or per cube). Three 9x9 dictionaries per role act on a cube through their
   Kronecker product, applied as mode products (:func:`tucker`): analysis A (init D^T),
   synthesis D and output W (init D), D the 9x9 DCT of SPECS divided by the square root of
   the largest eigenvalue of D^T D. With Y the cubes:

   * codes B_0 = soft(Y pinv(kron DCT)^T, t_0): t_0 = 0.001 (SMDS-Net) or a learned
     729-vector ``init_threshold`` (STAR-Net's ``l``);
   * stage k: B = soft(Z - (Z D^T - Y) A^T, theta_k), Z the previous stage's code; theta_k
     = lambda_k (SMDS-Net) or gamma1_k * lambda_k (STAR-Net), 729 values per stage.
     Computed as soft(Z - Z (A D)^T + Y A^T, theta_k), Y A^T once for all stages (the
     same product by associativity; A D = kron(A_i D_i)): one mode product per stage;
   * STAR-Net's L update (``low_rank``, the slides' model): L = t-SVT(B - P/beta_k) with
     per-frequency thresholds gamma2_k lambda_k / beta_k on each (48 x 48 x 729) slab of
     one block's codes (FFT along the 729 code axis, orthonormal; singular value soft
     thresholding of every 48x48 frequency slice; the thresholds of frequencies f and 729 - f
     averaged so that L stays real), then the multiplier step and Z = L. ``l_update=slides``
     (default): P <- P + beta_k (L - B), the scaled-ADMM step that goes with L = prox(B - P/beta)
     for the constraint L = B. ``l_update=code``: the public code's line as written (it never
     executes there), P <- P - beta_k (L - B): with it the offset L - B accumulates over the
     stages and the output diverges (measured: 4.4 dB on a CAVE crop where ``slides`` gives
     40.1 and ``released`` 38.5, docs/suite_hsi.md). The public code never runs this update
     (its loop is ``range(m - 1)`` with m = 1): ``l_update=released`` skips it, Z = B, which
     is what the published checkpoint was trained with;
   * STAR-Net-S (``sparse``): a sparse-noise term S with an l1 penalty, S = soft(Y - Z D^T, mu)
     with a learned 729-vector mu (init 1.0: inactive on Gaussian noise until trained), and
     the data term of the B update uses Y - S. The authors' earlier file (ops/STARNet.py
     at 8808a52) soft-thresholds the cubes and the subspace image instead (its ``e`` has one
     value per column of a 56-pixel block) and does not import; no weights exist for it:
     this is the model as the issue states it, not a port.

   Output cubes B_K W^T plus their means; overlapping cubes averaged uniformly.
4. **Back to bands and blocks.** Each block's G estimate times E_k^T; blocks merged by a
   weighted average (weight of a pixel = number of 9x9 patches of its block covering it),
   stride 12, after reflect padding by 55 pixels (plus the authors' "pad even" margin at the
   bottom and right: a full stride when the size already fits, as their code does).

Parameter counts: SMDS-Net (6 stages) 5,103; STAR-Net (9 stages) 27,702 (the slides' and the
checkpoint's; gamma_2 and beta count whether or not the L update runs); STAR-Net-S 28,431.

Published weights (``checkpoint=published:<name>``, :mod:`bench.weights`): the authors' keys
(``apply_A.i``, ``apply_D.i``, ``apply_W.i``, ``lmbda.k``, ``gamma_1.k``, ``gamma_2.k``,
``beta.k``, ``l``) are mapped onto this module's names (:data:`AUTHORS_NAMES`) and loaded
strictly (every key, every shape; the first mismatch named). Their training data (ICVL for
SMDS-Net; not named for STAR-Net) is not ours: rows say "published, trained on ICVL".

Differences from the authors' code that can move a number (measured in docs/suite_hsi.md):
scikit-image's NLM and ``estimate_sigma`` of the installed version (the authors ran an older
one with ``multichannel=True``); HySime as pysptools computes it (float32 data, float64
algebra), reimplemented here batched over blocks; the stage reassociation above (float32
rounding only).
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from bench import weights as W
from bench.errors import BenchError, CheckpointError
from bench.methods.hsi.blocks import BLOCK, BLOCK_STRIDE, SUBSPACES, denoise_cube
from bench.methods.hsi.common import HsiInput, HsiMethod
from bench.methods.hsi.network import CUBE, L_UPDATES, SMDS_NET, STAR_NET, STAR_NET_S, CubeNet, NetConfig
from bench.methods.hsi.published import PUBLISHED_TAGS, published_network
from bench.params import Param
from bench.registry import register_method


class _HsiLearned(HsiMethod):
    """A SMDS-Net-family network; ``setup`` (not timed) builds it and loads its weights."""

    family = "learned"
    devices = ("cpu", "cuda")
    loads_published = True
    config: ClassVar[NetConfig] = SMDS_NET
    # seconds to a minute per cube: one timed run and no untimed warm-up (as BM4D), so a grid
    # does not pay each cell twice; setup (weights, dictionaries) is outside the timing anyway
    warmup: ClassVar[bool] = False
    max_repeat: ClassVar[int] = 1

    def _config(self) -> NetConfig:
        return self.config

    def setup(self, context) -> None:
        super().setup(context)
        if int(self.params["block_stride"]) > int(self.params["block"]):
            raise BenchError(f"{self.name}: block_stride={self.params['block_stride']} > block={self.params['block']} "
                             f"leaves pixels in no block; use a stride <= the block")
        ckpt = W.canonical(self.params["checkpoint"])
        cfg = self._config()
        self._source = None
        self._meta = {}
        if ckpt is None:
            net = CubeNet(cfg)
        else:
            source = W.resolve("hsi", self.name, ckpt, problem=context.problem)
            self._source = source
            if source.entry is None:          # trained here (a shipped name or a path)
                net, self._meta = self._trained(source.path, cfg)
            else:
                net = W.load_network(source, lambda state, what, n: published_network(cfg, state, what, n))
        self._net = net.to(context.device).eval()

    def _trained(self, path: str, cfg: NetConfig) -> tuple[CubeNet, dict]:
        """A network trained here (:mod:`bench.methods.hsi.training`): its metadata must name
        this method and this cell's configuration (STAR-Net's ``l_update``); the weights are
        decoded against the initialisation (deterministic: DCT dictionaries, thresholds)."""
        from bench.checkpoints import load_checkpoint
        meta = W.trained_meta("hsi", self.name, path)
        if meta.get("config") != dataclasses.asdict(cfg):
            raise CheckpointError(f"checkpoint {path} was trained as {meta.get('config')} (l_update="
                                  f"{meta.get('l_update')}); this cell builds {dataclasses.asdict(cfg)}: pass the "
                                  f"l_update it was trained with")
        state, meta = load_checkpoint(path, reference=CubeNet(cfg).state_dict(), expect={"method": self.name})
        net = CubeNet(cfg)
        net.load_state_dict(state)
        return net, meta

    @classmethod
    def training_job(cls, recipe: str = "cpu", dataset: str | None = None, seed: int | None = None,
                     overrides: dict[str, Any] | None = None, device: str = "cpu", data_root: str | None = None,
                     options: dict[str, Any] | None = None):
        from bench.methods.hsi.training import HsiTrainingJob
        job = HsiTrainingJob(cls.name, recipe, dataset, seed, overrides or {}, device, data_root)
        return job, job.default_path()

    def denoise(self, noisy, sigma, sigma_bands):
        p = self.params
        return denoise_cube(self._net, noisy, int(p["block"]), int(p["block_stride"]), int(p["chunk"]),
                            int(p["max_rank"]), cache=SUBSPACES).to(noisy.dtype)

    def run(self, inputs: HsiInput):
        # one thread setting for the whole call: the cubes are batched blocks, not small cubes
        before = SUBSPACES.reused_s
        out = tuple(self.denoise(y, s, sb) for y, s, sb in zip(inputs.noisy, inputs.sigma, inputs.sigma_bands))
        self._reused_s = SUBSPACES.reused_s - before
        return out

    def reused_seconds(self) -> float:
        """Seconds of the last run's subspace bases that were reused from another row of the
        cell (:class:`SubspaceCache`): the runner adds them to the run's time."""
        return float(getattr(self, "_reused_s", 0.0))

    def parameter_count(self) -> int | None:
        net = getattr(self, "_net", None)
        return (net if net is not None else CubeNet(self._config())).parameter_count()

    def row_extras(self) -> dict[str, Any]:
        cfg = self._config()
        rec: dict[str, Any] = {"config": dataclasses.asdict(cfg), "checkpoint": str(self.params["checkpoint"])}
        src = self._source
        if src is not None and src.entry is None:     # trained here
            m = self._meta
            tr, r = m.get("training") or {}, m.get("recipe") or {}
            rec["weights_tag"] = "trained here, hsi_split train"
            rec["training"] = {"recipe": r.get("name"), "steps": tr.get("steps"), "seconds": tr.get("seconds"),
                               "threads": tr.get("torch_threads"), "train_scenes": m.get("train_scenes"),
                               "val_scenes": m.get("val_scenes"), "train_hash": m.get("train_hash"),
                               "noise": r.get("noise"), "crop": r.get("crop"), "batch_size": r.get("batch_size"),
                               "lr": r.get("lr"), "validation": m.get("validation"),
                               "command": m.get("how_to_reproduce")}
            rec["weights"] = {"source": "trained here", "checkpoint": src.label, "file": src.path,
                              "file_sha256": W.sha256_of(src.path)}
        elif src is not None and src.entry is not None:
            from bench.checkpoints import decoded_digest
            e = src.entry
            # the tables' label: these weights were trained on data that is not ours
            rec["weights_tag"] = PUBLISHED_TAGS.get(e.method, "published")
            rec["training"] = {"recipe": "published", "dataset": e.trained_on, "source": e.source}
            rec["weights"] = {"source": "published", "checkpoint": src.label, "name": e.name, "file": e.path,
                              "file_sha256": W.sha256_of(src.path), "repo": e.repo, "commit": e.commit,
                              "source_path": e.source_path, "licence": e.licence, "trained_on": e.trained_on,
                              "decoded_sha256": decoded_digest(self._net.state_dict())}
        else:
            rec["training"] = {"recipe": "untrained (initialisation)"}
            rec["weights_tag"] = "untrained"
        return rec

    @classmethod
    def weights_digest(cls, params) -> str:
        ckpt = W.canonical(params.get("checkpoint"))
        if ckpt is None:
            return ""
        return W.weights_digest(W.resolve("hsi", cls.name, ckpt))

    @classmethod
    def default_checkpoint(cls, problem, kind: str = "shipped") -> str | None:
        """``shipped``: the network trained here on hsi_split's train scenes,
        ``shipped:<method>_cpu``; ``published`` names no file by itself (``published:<name>``)."""
        return f"{W.SHIPPED_PREFIX}{cls.name}_cpu" if kind == "shipped" else None


def _specs(method: str, l_update: bool = False) -> dict[str, Param]:
    specs = {
        "checkpoint": W.checkpoint_param(method, help=W.checkpoint_help(
            method, "none: the untrained network (DCT dictionaries, initial thresholds); shipped: the one trained "
                    "here (shipped:<method>_cpu)")),
        "block": Param(int, min=CUBE, help="edge of the spatial blocks (the authors': 56)"),
        "block_stride": Param(int, min=1, help="stride between blocks (the authors': 12)"),
        "chunk": Param(int, min=1, help="blocks through the network at once (memory, not results)"),
        "max_rank": Param(int, min=0, help="0 (the authors'): the whole HySime subspace, cubes slide along it when "
                                           "k > 9; > 0: at most that many dimensions (9: one cube position, the "
                                           "budget of the default grid)"),
    }
    if l_update:
        specs["l_update"] = Param(str, choices=L_UPDATES, help="slides: the L (t-SVT) update runs, P <- P + "
                                  "beta (L - B); code: it runs with the public code's P <- P - beta (L - B) (diverges); "
                                  "released: the public code's behaviour, it never runs")
    return specs


_BLOCKS = {"block": BLOCK, "block_stride": BLOCK_STRIDE, "chunk": 2, "max_rank": 0}


@register_method
class SmdsNet(_HsiLearned):
    name = "smds_net"
    display_name = "SMDS-Net"
    description = ("SMDS-Net (Xiong et al., TIP 2022): HySime subspace, 9x9x9 Tucker dictionaries, 6 unrolled "
                   "soft-threshold stages, 5,103 parameters; published weights trained on ICVL")
    parameters = {"checkpoint": "published:icvl_sigma55", **_BLOCKS}
    parameter_specs = _specs("smds_net")
    config = SMDS_NET


class _StarFamily(_HsiLearned):
    def _config(self) -> NetConfig:
        mode = self.params["l_update"]
        return dataclasses.replace(self.config, low_rank=mode != "released", dual_sign=-1 if mode == "code" else 1)


@register_method
class StarNet(_StarFamily):
    name = "star_net"
    display_name = "STAR-Net"
    description = ("STAR-Net (Liu, Jin, Xiu, PR 2026): SMDS-Net's pipeline, 9 stages of B (soft threshold), "
                   "L (t-SVT) and P updates, learned initial threshold; 27,702 parameters. l_update=released: "
                   "the public code (L never updated)")
    parameters = {"checkpoint": "published:sigma50_bandwise", "l_update": "slides", **_BLOCKS}
    parameter_specs = _specs("star_net", l_update=True)
    config = STAR_NET


@register_method
class StarNetS(_StarFamily):
    name = "star_net_s"
    display_name = "STAR-Net-S"
    description = ("STAR-Net-S: STAR-Net plus a sparse-noise term S = soft(Y - X, mu) (l1 penalty), 28,431 "
                   "parameters; no published weights (untrained unless a checkpoint is given)")
    parameters = {"checkpoint": None, "l_update": "slides", **_BLOCKS}   # none: untrained
    parameter_specs = _specs("star_net_s", l_update=True)
    config = STAR_NET_S

