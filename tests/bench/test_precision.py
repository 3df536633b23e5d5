"""bench.precision and bench.flops: the bf16 policy (refused without native support, by
name), channels_last giving the default layout's values, the FLOP count by hand, and the
options reaching the istd networks and their trainer."""
from __future__ import annotations

import types

import pytest
import torch
from torch import nn

from bench.errors import BenchError
from bench.flops import conv_flops, conv_layers, roof_pass
from bench.precision import autocast, bf16_support, check_precision, memory_format


def test_bf16_refused_without_native_support(monkeypatch):
    monkeypatch.setenv("BENCH_CPU_BF16", "0")
    assert bf16_support("cpu")[0] is False
    with pytest.raises(BenchError, match="native bf16.*precision=fp32"):
        check_precision("bf16", "cpu", "rpcanet")
    check_precision("fp32", "cpu", "rpcanet")  # fp32 always runs
    with pytest.raises(BenchError, match="valid: fp32, bf16"):
        check_precision("fp16", "cpu", "rpcanet")
    monkeypatch.setenv("BENCH_CPU_BF16", "1")
    check_precision("bf16", "cpu", "rpcanet")


def test_istd_network_setup_refuses_bf16_without_support(monkeypatch):
    from bench.methods.istd.learned import RpcaNet
    monkeypatch.setenv("BENCH_CPU_BF16", "0")
    m = RpcaNet(precision="bf16")
    with pytest.raises(BenchError, match="bf16"):
        m.setup(types.SimpleNamespace(device="cpu", seed=0, data_root=None, problem_id="", problem=None))


def test_trainer_refuses_bf16_without_support(monkeypatch):
    from bench.methods.istd.learned import IstdTrainingJob
    monkeypatch.setenv("BENCH_CPU_BF16", "0")
    with pytest.raises(BenchError, match="bf16"):
        IstdTrainingJob("rpcanet", "cpu", None, None, {"precision": "bf16"})


def test_conv_flops_by_hand_and_roof_runs():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))
    x = torch.rand(2, 1, 5, 6)
    layers = conv_layers(net, x)
    assert [tuple(t.shape) for _, t in layers] == [(2, 1, 5, 6), (2, 4, 5, 6)]
    assert conv_flops(layers) == 2 * 2 * 30 * (4 * 1 * 9 + 2 * 4 * 1)
    roof_pass(layers)


@pytest.mark.parametrize("method", ["rpcanet", "l_rpcanet"])
def test_channels_last_and_bf16_on_the_networks(method):
    from bench.methods.istd.learned import CONFIGS, build
    torch.manual_seed(0)
    net = build(CONFIGS[method]).eval()
    x = torch.rand(1, 1, 24, 32)
    with torch.no_grad():
        _, T = net(x)
        net_cl = net.to(memory_format=memory_format(True))
        _, T_cl = net_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(T_cl, T, rtol=1e-4, atol=1e-4)  # the same values up to sum order
    if bf16_support("cpu")[0]:
        with torch.no_grad(), autocast("bf16", "cpu"):
            _, T_bf = net_cl(x.contiguous(memory_format=torch.channels_last))
        assert not torch.equal(T_bf, T)  # autocast really ran the convolutions in bf16
        rel = float((T_bf.float() - T).norm() / T.norm())
        assert rel < 5e-2
