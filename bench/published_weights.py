"""The published weights the project knows: one :class:`Published` entry per file the
authors of a network released (:data:`MANIFEST`), with its SHA-256, source repository and
commit, licence, training data, the published figure and the protocol it was measured
under, and the lookups by method and name. :mod:`bench.weights` re-exports every name here
and resolves ``checkpoint=published:<name>`` with them.

Why the manifest is a Python table and not a JSON file: it installs with the package (no
package-data plumbing for ``pip install -e`` and wheels alike), each entry is a typed,
frozen :class:`Published` checked when the module is imported, and entries may carry
comments on their provenance. This module is left out of the cell keys
(:data:`bench.fingerprint.EXCLUDED`): what a cell reads is keyed by the file's own bytes
(the weights digest) and by the method module's converter, so adding an entry for another
suite does not rerun every learned cell.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

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


