"""The SMDS-Net and STAR-Net authors' released weights in this project's network
(:class:`bench.methods.hsi.network.CubeNet`): their parameter names (``apply_A.i``,
``apply_D.i``, ``apply_W.i``, ``lmbda.k``, ``gamma_1.k``, ``gamma_2.k``, ``beta.k``, ``l``)
mapped onto ours (:data:`AUTHORS_NAMES`) and loaded strictly (every key, every shape; the
first mismatch named), and how the tables label them (:data:`PUBLISHED_TAGS`)."""
from __future__ import annotations

import torch

from bench import weights as W
from bench.errors import CheckpointError
from bench.methods.hsi.network import ATOMS, CubeNet, NetConfig

#: the authors' parameter names (less ``module.``) -> this module's: per-role lists of 9x9
#: matrices and per-stage 729-vectors (the authors store those as (1, 1, 1, 1, 729))
AUTHORS_NAMES = {"apply_A": "analysis", "apply_D": "synthesis", "apply_W": "output", "lmbda": "threshold",
                 "gamma_1": "gamma_sparse", "gamma_2": "gamma_low_rank", "beta": "penalty", "l": "init_threshold",
                 "mu": "sparse_threshold"}
OURS_TO_AUTHORS = {v: k for k, v in AUTHORS_NAMES.items()}


def authors_key(key: str) -> str:
    head, _, rest = key.partition(".")
    return OURS_TO_AUTHORS[head] + ("." + rest if rest else "")


def authors_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1, 1, 1, 1, ATOMS) if tuple(shape) == (ATOMS,) else tuple(shape)


def published_network(cfg: NetConfig, state: dict[str, torch.Tensor], what: str,
                      parameters: int | None = None) -> CubeNet:
    """A network of configuration ``cfg`` holding an authors' state_dict: every key mapped
    (:func:`authors_key`), every shape checked (:func:`bench.weights.strict_match`: the
    first key without a place, of another shape, or missing is named), the count checked
    against the manifest's."""
    net = CubeNet(cfg)
    ours = net.state_dict()
    expected = {authors_key(k): authors_shape(v.shape) for k, v in ours.items()}
    W.strict_match(expected, state, what)
    back = {AUTHORS_NAMES[k.partition(".")[0]] + k[len(k.partition(".")[0]):]: v for k, v in state.items()}
    net.load_state_dict({k: v.reshape(ours[k].shape).to(torch.float32) for k, v in back.items()}, strict=True)
    if parameters is not None and net.parameter_count() != parameters:
        raise CheckpointError(f"{what}: {net.parameter_count():,} parameters, the manifest says {parameters:,}")
    return net


#: how the tables label rows of published weights (bench.weights.MANIFEST says it at length):
#: SMDS-Net's files were trained on ICVL; STAR-Net's repository does not name its data
PUBLISHED_TAGS = {"smds_net": "published, trained on ICVL", "star_net": "published, training data not named"}
