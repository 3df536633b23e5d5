"""Where a learned method's weights come from: one resolver for every source.

A learned method's ``checkpoint`` parameter names its weights in one of three ways, and
:func:`resolve` turns each into a :class:`WeightsSource` (a file and what it is). The suites'
skip decisions (:func:`missing_reason`), the methods' loading and the cell keys
(:meth:`bench.registry.Method.weights_digest`) all go through it, so that a file is found,
skipped, loaded and keyed the same way:

* ``auto`` or a bare name (no ``/``, no ``.npz``): a **shipped** project checkpoint,
  ``methods/<suite>/checkpoints/<stem>.npz`` (:func:`shipped_checkpoint`; ``auto`` is the
  suite's default stem, :data:`AUTO_STEMS`). When it is not there the skip line gives the
  ``bench train`` command that makes it (:func:`make_command`);
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

Loading a published file (:func:`load_published`) checks its hash, then reads it with
``torch.load(path, map_location="cpu", weights_only=True)`` (no code runs; the files were
saved from CUDA tensors). The authors' key names are not this project's: a converter per
method (e.g. :func:`bench.methods.istd.learned.published_network`) maps them onto the
project's modules, and :func:`strict_match` refuses a state whose keys or shapes do not fit,
naming the first mismatch (:class:`bench.errors.CheckpointError`).

Why the manifest is a Python table and not a JSON file: it installs with the package (no
package-data plumbing for ``pip install -e`` and wheels alike), each entry is a typed,
frozen :class:`Published` checked when the module is imported, and entries may carry
comments on their provenance. This module is left out of the cell keys
(:data:`bench.fingerprint.EXCLUDED`): what a cell reads is keyed by the file's own bytes
(the weights digest) and by the method module's converter, so adding an entry for another
suite does not rerun every learned cell.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from bench import paths
from bench.errors import CheckpointError

PUBLISHED_PREFIX = "published:"

#: the protocols a published figure was measured under (the authors' test code; see
#: ``../shared/weights/README.md``, "Authors' protocols")
PROTOCOLS: dict[str, str] = {
    "rpcanet": ("the RPCANet/L-RPCANet authors' ISTD test: image resized to 256x256 (bilinear) / 255, sigmoid(T), "
                "metrics at 256x256, pixel positive above 0.5 x the image's own maximum, IoU pooled over the test "
                "set, Pd by any-pixel overlap with an 8-connected target, Fa = false pixels / background pixels, "
                "target-free images skipped for Pd and Fa; model selected on the test split"),
    "ista_net": ("the ISTA-Net authors' CS test: Y channel, zero-padded to a multiple of 33, 33x33 blocks / 255, "
                 "y = Phi x without noise, x0 = Qinit y, output clipped to [0, 1], PSNR (peak 255) on the unpadded "
                 "image, SSIM (scikit-image, data_range 255)"),
    "smds_net": ("the SMDS-Net/STAR-Net authors' HSI test: cubes noised beforehand, ground truth / its max, "
                 "overlapping 56-pixel blocks, NLM pre-denoising and a HySime subspace inside the model, PSNR per "
                 "band"),
}


#: how a figure's metric is printed (the suites' metric names as keys)
FIGURE_LABELS = {"iou": "IoU", "f1": "F1", "pd": "Pd", "fa": "Fa"}


@dataclass(frozen=True)
class Published:
    """One published weight set: a file the authors released, and what is known about it."""

    suite: str              # the suite whose methods use it (istd, cs, hsi)
    method: str             # the project's method name (registered or planned: ista_net, star_net, ...)
    name: str               # selected as ``checkpoint=published:<name>``
    path: str               # where the file is expected, relative to the weights root
    sha256: str             # the file's expected SHA-256 (the project's own copy of SHA256SUMS)
    repo: str               # the GitHub repository it comes from (owner/name)
    commit: str             # the commit it was taken at
    source_path: str        # its path in that repository at that commit
    licence: str
    trained_on: str
    parameters: int         # learnable parameters of the network it loads into
    tensors: int            # entries of its state_dict
    #: the published figure, metric -> value (units of the suite's metrics; empty: none published)
    figure: Mapping[str, float] = field(default_factory=dict)
    figure_source: str = ""  # where the figure is printed, or why there is none
    protocol: str = ""      # a PROTOCOLS name: how the figure was measured
    configuration: str = ""  # the network configuration the file is (when the method has several)
    #: the file holds a dict; the state_dict is under this key (None: the file is the state_dict)
    state_key: str | None = None
    strip_prefix: str = ""  # a prefix every key carries (``module.``: saved from nn.DataParallel)

    @property
    def selector(self) -> str:
        return f"{self.method}[checkpoint={PUBLISHED_PREFIX}{self.name}]"

    @property
    def source(self) -> str:
        return f"github.com/{self.repo} @ {self.commit}, {self.source_path}"

    @property
    def url(self) -> str:
        """The file at its commit on GitHub (``raw``: the bytes, not the page)."""
        return f"https://github.com/{self.repo}/raw/{self.commit}/{self.source_path}"

    def figure_text(self) -> str:
        if not self.figure:
            return f"none ({self.figure_source})" if self.figure_source else "none"
        text = " / ".join(f"{FIGURE_LABELS.get(k, k)} {v:g}" for k, v in self.figure.items())
        return f"{text} ({self.figure_source}; protocol {self.protocol})"


_RPCANET = dict(suite="istd", method="rpcanet", repo="fengyiwu98/RPCANet", commit="25da080",
                licence="MIT (Copyright (c) 2024 Fengyi Wu)", parameters=679_896, tensors=462,
                figure_source="the repository's README, RPCANet row; Fa in 1e-6", protocol="rpcanet",
                configuration="6 stages of 32-channel modules (the only RPCANet configuration)")
_LRPCANET = dict(suite="istd", method="l_rpcanet", repo="xianchaoxiu/L-RPCANet", commit="47f8e53",
                 licence="none in the repository (research use; cite the paper)",
                 figure_source="the slides' main table, mIoU (also in the file's name)", protocol="rpcanet")
_NO_LICENCE = "none in the repository (research use; cite the paper)"
_ISTA = dict(suite="cs", repo="jianzhangcs/ISTA-Net-PyTorch", commit="f699040", licence=_NO_LICENCE,
             protocol="ista_net", strip_prefix="module.",
             trained_on="the authors' 33x33 training blocks with the ratio's fixed sampling matrix "
                        "(data/cs/sampling_matrix/phi_0_<r>_1089.mat)")
_HSI = dict(suite="hsi", licence=_NO_LICENCE, protocol="smds_net", state_key="state_dict", strip_prefix="module.")


def _ista_figure(r: int, plus: bool) -> str:
    measured = {1: 17.45, 4: 21.56, 10: 26.49, 25: 32.44, 30: 33.70, 40: 36.02}
    note = "no figure for this ratio in the source repository (its only log, ratio 50, has no released file)"
    if plus:
        note += f"; measured with the authors' test script: Set11 PSNR {measured[r]:.2f} dB (weights README)"
    return note


#: every published weight set the project knows (``python -m bench weights`` lists them);
#: hashes from ``../shared/weights/SHA256SUMS``, facts from its README
MANIFEST: tuple[Published, ...] = (
    # ---------------------------------------------------------------- istd: RPCANet (WACV 2024)
    Published(name="sirst", path="rpcanet/sirst.pkl", source_path="result/ISTD/SIRST/RPCANet.pkl",
              sha256="bb7db57e93ced581d37f664add0535ffcb6ba7bb18bea3eebae1bd032a7ada6c",
              trained_on="SIRST v1 (NUAA-SIRST), 256x256",
              figure={"iou": 70.37, "f1": 82.61, "pd": 95.41, "fa": 7.42}, **_RPCANET),
    Published(name="nudt_sirst", path="rpcanet/nudt_sirst.pkl", source_path="result/ISTD/NUDT/RPCANet.pkl",
              sha256="2e733b2c64c32b6f90d76170f490c8bf7ac76c6ac2638b2d6225060eea81098d",
              trained_on="NUDT-SIRST", figure={"iou": 89.31, "f1": 94.35, "pd": 97.14, "fa": 2.87}, **_RPCANET),
    Published(name="irstd_1k", path="rpcanet/irstd_1k.pkl", source_path="result/ISTD/1K/RPCANet.pkl",
              sha256="60a6fd4f3284669a0c2033adee761e54e5d29962b7641dc43219e55cd49f1a28",
              trained_on="IRSTD-1k", figure={"iou": 63.21, "f1": 77.45, "pd": 88.31, "fa": 4.39}, **_RPCANET),
    Published(name="sirst_aug", path="rpcanet/sirst_aug.pkl", source_path="result/ISTD/SIRST-Aug/RPCANet.pkl",
              sha256="c08debe601a386df3fe77a4610a745ed190db2775dca495263ff30b05ec59715",
              trained_on="SIRST-Aug", figure={"iou": 72.54, "f1": 84.08, "pd": 98.21, "fa": 34.14}, **_RPCANET),
    # ---------------------------------------------------------------- istd: L-RPCANet (Liu, Han, Xiu)
    # three files, three configurations: nothing in the authors' repository says so; the
    # loader infers each from the file's shapes (and the count is pinned here and in a test)
    Published(name="nudt_sirst", path="l_rpcanet/nudt_sirst.pkl",
              source_path="L-RPCANet/result/NUDT_SIRST_mIoU_92.37.pkl",
              sha256="8616b1db8a249041d73f1cc89d6accc1c4dd0dfb040ce2366d9f69b940c643a8",
              trained_on="NUDT-SIRST", parameters=475_188, tensors=696, figure={"iou": 92.37},
              configuration="the public code's default: noise module 6 hidden layers, bottleneck 16", **_LRPCANET),
    Published(name="irstd_1k", path="l_rpcanet/irstd_1k.pkl", source_path="L-RPCANet/result/IRSTD_1K_mIoU_64.68.pkl",
              sha256="76d00066e67e6be63548f7b563ad3d2bac50b98595e1e00a8d05755eef940d66",
              trained_on="IRSTD-1k", parameters=433_428, tensors=660, figure={"iou": 64.68},
              configuration="noise module 3 hidden layers, bottleneck 16", **_LRPCANET),
    Published(name="sirst_aug", path="l_rpcanet/sirst_aug.pkl", source_path="L-RPCANet/result/SIRST_Aug_mIoU_74.56.pkl",
              sha256="f1e2ecd0f49766c93af846a89cb14ff5f4dd0c0a7f806d213a3e8ac382654c33",
              trained_on="SIRST-Aug", parameters=215_916, tensors=696, figure={"iou": 74.56},
              configuration="bottleneck 4 (the slides' \"0.216M\")", **_LRPCANET),
    # ---------------------------------------------------------------- cs: ISTA-Net, ISTA-Net+ (CVPR 2018); methods/cs/ista_net.py loads them
    *(Published(method="ista_net", name=f"ratio_{r}", path=f"ista_net/ratio_{r}.pkl",
                source_path=f"model/CS_ISTA_Net_layer_9_group_1_ratio_{r}_lr_0.0001/net_params_200.pkl",
                sha256=h, parameters=171_090, tensors=54, figure_source=_ista_figure(r, False),
                configuration="9 phases, epoch 200", **_ISTA)
      for r, h in ((1, "96abdebae3536d21ab9909119ce8aeeaf20e77daf1be55c1fc481faa4faeaba6"),
                   (4, "f79be7ce5953dd262e4a29ea5c03d3ccbfc95c175cd2de91a3dd9a27cfa61022"),
                   (10, "1065f698000b250951e0397253194a1702d732085b14381986600776c6dc317b"),
                   (25, "01c25cb453749c7ee8bf9082878647884db6f1c2012f03016ab12635d4c02600"),
                   (30, "636bfb98af9cfdd2ea8beb1b9c3212293bcdf9dfd6c45e39b2640d8317db360e"),
                   (40, "5961a5cdf9c63c19eddc4845f22dee88d5e84cfa2405c7cb97e8c1210b0eb499"))),
    *(Published(method="ista_net_plus", name=f"ratio_{r}", path=f"ista_net_plus/ratio_{r}.pkl",
                source_path=f"model/CS_ISTA_Net_plus_layer_9_group_1_ratio_{r}_lr_0.0001/net_params_200.pkl",
                sha256=h, parameters=336_978, tensors=72, figure_source=_ista_figure(r, True),
                configuration="9 phases, epoch 200", **_ISTA)
      for r, h in ((1, "51aa38a7f64a743459c4d94d85bd237ad0d6bb7bf69a8efd6b44403c4ba7bac0"),
                   (4, "ed9c424ab7265e43232f06caf6b172ae30ff528c2c19002eddd174118f9d07eb"),
                   (10, "3bf165e7799128d4715c1330d0d2b5ea82d2c91e2723f3de0de3c62229e85ca0"),
                   (25, "1a29f3cde39ca3c5090396c743434b6ed2df74ebabc39402c7d372f467f248a8"),
                   (30, "8f3bfb58bc3cf50c988d8394afb5ae9647c6a60dfc32b9a4efe0de364eae55ba"),
                   (40, "f228ef9f9fdd89351a48bae81bcfb3cf99010870858ac2aecd5c5dc53af30fb6"))),
    # ---------------------------------------------------------------- hsi: STAR-Net, SMDS-Net (methods/hsi/learned.py)
    Published(method="star_net", name="sigma50_bandwise", path="star_net/sigma50_bandwise.ckpt",
              repo="Jason011212/STAR-Net", commit="c27a2c3", source_path="STAR-Net/trained_model/ckpt",
              sha256="8768d27e4eff7761bf2ffd1dadca877fd10fcb4e83ad535515030fd6ad18090f",
              trained_on="bandwise Gaussian noise, sigma ~ U(0, 50)/255 per band, 300 epochs of 56-pixel patches; "
                         "training data not named in the repository",
              parameters=27_702, tensors=46,
              figure_source="none in the repository (the checkpoint's psnr_validation 22.0 is a placeholder)",
              configuration="9 unfoldings, dictionary 9x9x9 (the model file exists at 4c6fbb3, "
                            "STAR-Net/model/STARNet.py)", **_HSI),
    *(Published(method="smds_net", name=f"icvl_sigma{s}", path=f"smds_net/icvl_sigma{s}_bandwise.ckpt",
                repo="bearshng/smds-net", commit="311093a", source_path=f"trained_model/ICVL_{s}_ckpt",
                sha256=h, trained_on=f"ICVL, bandwise Gaussian noise up to {s}/255",
                parameters=5_103, tensors=15, figure_source="none for this file in the repository",
                configuration="6 unfoldings; legacy (non-zip) torch format", **_HSI)
      for s, h in ((15, "b1462806618e9396b6c19ff3c2950d7bddf4d0c6789701f68b04074f7b1aac1f"),
                   (55, "c59536cda7a77fd3c22f4366da1b90e2c9ad30c4d7088bae7a575a2b6da16aaf"),
                   (95, "7238a7c23588b8919b59ac4b916a88b68187fac62a2c00ab7aeec1cc1b078693"))),
)


def _check_manifest(entries: Iterable[Published]) -> None:
    seen = set()
    for e in entries:
        if (e.method, e.name) in seen:
            raise ValueError(f"published weights {e.method}:{e.name} listed twice")
        seen.add((e.method, e.name))
        if not re.fullmatch(r"[0-9a-f]{64}", e.sha256):
            raise ValueError(f"published weights {e.method}:{e.name}: sha256 is not 64 hex digits")
        if e.protocol and e.protocol not in PROTOCOLS:
            raise ValueError(f"published weights {e.method}:{e.name}: unknown protocol {e.protocol!r}")
        if os.path.isabs(e.path) or ".." in e.path.split("/"):
            raise ValueError(f"published weights {e.method}:{e.name}: path must be relative to the weights root")


_check_manifest(MANIFEST)


# --------------------------------------------------------------------------- lookups
def entries(suite: str | None = None, method: str | None = None) -> list[Published]:
    """The manifest's entries, optionally of one suite and/or one method, in manifest order."""
    return [e for e in MANIFEST if (suite is None or e.suite == suite) and (method is None or e.method == method)]


def published_names(method: str) -> list[str]:
    """The ``published:<name>`` names ``method`` accepts (its manifest entries' names)."""
    return [e.name for e in entries(method=method)]


def is_published(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PUBLISHED_PREFIX)


def find_published(method: str, value: str) -> Published:
    """The entry ``published:<name>`` of ``method``; :class:`UnknownNameError` (exit 2)
    listing the valid names when there is none."""
    from bench.errors import UnknownNameError
    name = value[len(PUBLISHED_PREFIX):] if is_published(value) else value
    for e in entries(method=method):
        if e.name == name:
            return e
    raise UnknownNameError(f"{method}: no published weights {name!r}",
                           valid=[PUBLISHED_PREFIX + n for n in published_names(method)], what="checkpoint")


def valid_published(method: str, value: Any) -> bool:
    """Whether a ``checkpoint`` value is acceptable as far as published weights go: any
    value that does not start with ``published:``, or one that names an entry of ``method``
    (what the methods' parameter spec checks, so that a typo stops ``bench run`` at once)."""
    if not is_published(value):
        return True
    return value[len(PUBLISHED_PREFIX):] in published_names(method)


def checkpoint_help(method: str, local: str) -> str:
    """The help text of a ``checkpoint`` parameter: ``local`` (what the other values mean)
    and the published names of ``method``."""
    names = published_names(method)
    if not names:
        return local
    return f"{local}; or published:<name>, the authors' released weights (`python -m bench weights`)"


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


# --------------------------------------------------------------------------- one resolver
#: ``checkpoint=auto``: the stem of the suite's shipped checkpoint (``{method}``: the method name)
AUTO_STEMS: dict[str, str] = {"istd": "{method}_sirst"}
#: the dataset a suite's ``bench train`` command names (None: the command names none)
TRAIN_DATASETS: dict[str, str | None] = {"istd": "sirst", "sparse": None}


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


def shipped_checkpoint(suite: str, stem: str) -> str:
    """A shipped project checkpoint: ``methods/<suite>/checkpoints/<stem>.npz``."""
    return os.path.join(paths.shipped_checkpoints(suite), stem + ".npz")


def resolve(suite: str, method: str, value: Any, weights_root: str | None = None) -> WeightsSource:
    """The weights a ``checkpoint`` value names (see the module docstring): ``auto``, a bare
    name, ``published:<name>`` or a path. An unknown published name raises
    :class:`UnknownNameError` (exit 2) with the valid ones; whether the file is there is
    :func:`missing_reason`'s business (and the loader's)."""
    value = str(value)
    if is_published(value):
        entry = find_published(method, value)
        return WeightsSource(suite, method, value, "published", file_of(entry, weights_root), entry)
    if value == "auto":
        if suite not in AUTO_STEMS:
            raise CheckpointError(f"{method}: checkpoint=auto has no fixed file in suite {suite!r}")
        return WeightsSource(suite, method, value, "shipped", shipped_checkpoint(suite, AUTO_STEMS[suite].format(method=method)))
    if "/" not in value and os.sep not in value and not value.endswith(".npz"):
        return WeightsSource(suite, method, value, "shipped", shipped_checkpoint(suite, value))
    return WeightsSource(suite, method, value, "file", value)


def train_command(suite: str, method: str, recipe: str = "cpu", overrides: Mapping[str, Any] | None = None,
                  out: str | None = None, snr: str | None = None) -> str:
    """The ``bench train`` command that makes a project checkpoint (``--set`` per override)."""
    cmd = f"python -m bench train --suite {suite} --method {method}"
    if TRAIN_DATASETS.get(suite):
        cmd += f" --dataset {TRAIN_DATASETS[suite]}"
    if snr is not None:
        cmd += f" --snr {snr}"
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
        raise CheckpointError(f"checkpoint {path} belongs to method {meta.get('method')!r}, not {method!r}")
    return meta


def make_command(source: WeightsSource) -> str:
    """The command that makes a missing project checkpoint: an ablation stem
    (``<method>_ablation_stages3``, ``<method>_ablation_se-background+target``) names the
    ``ablation`` recipe and its knob; anything else the default recipe."""
    stem = os.path.basename(source.path)[:-4] if source.path.endswith(".npz") else os.path.basename(source.path)
    if "_sirst_from_" in stem:  # fine-tuned on SIRST from published weights (istd)
        return train_command(source.suite, source.method, "finetune") + f" --init {PUBLISHED_PREFIX}{stem.split('_sirst_from_', 1)[1]}"
    if "_ablation_" in stem:
        knob = stem.split("_ablation_", 1)[1]
        arg = (f"stages={knob[len('stages'):]}" if knob.startswith("stages")
               else "se=" + knob.split("-", 1)[1].replace("+", ","))
        return train_command(source.suite, source.method, "ablation") + f" --set {arg}"
    return train_command(source.suite, source.method)


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


# --------------------------------------------------------------------------- loading
def load_published(entry: Published, weights_root: str | None = None) -> dict[str, Any]:
    """The state_dict of ``entry``'s file (name -> tensor, as the authors named them, less
    ``strip_prefix``): its hash checked first (:func:`check_file`), then read by
    :func:`load_state_file`."""
    return load_state_file(check_file(entry, weights_root), entry.state_key, entry.strip_prefix)


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
