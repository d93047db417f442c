"""UpsampleConv2d's fast forms equal nearest 2x upsampling + 3x3 conv, values and gradients."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from ebgan.nets import seed32
from ebgan.nets.layers import (
    IMPLEMENTATIONS,
    UpsampleConv2d,
    phase_kernels,
    upsample_conv_phases,
    upsample_conv_transposed,
)

FAST = [impl for impl in IMPLEMENTATIONS if impl != "reference"]
# (batch, in channels, out channels, height, width): odd, even, non-square, 1x1, single channel
SHAPES = [(1, 3, 5, 7, 9), (2, 4, 1, 8, 6), (3, 16, 8, 5, 5), (1, 1, 1, 1, 1), (4, 8, 16, 4, 3)]


def plain(cin: int, cout: int) -> nn.Sequential:
    """The common two-module form the fast layer must equal."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1))


def values_and_grads(module: nn.Module, conv: nn.Module, x: torch.Tensor, grad_out: torch.Tensor):
    x = x.detach().clone().requires_grad_(True)
    module.zero_grad(set_to_none=True)
    out = module(x)
    out.backward(grad_out)
    return out.detach(), x.grad, conv.weight.grad, conv.bias.grad


@pytest.mark.parametrize("impl", FAST)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_matches_upsample_conv(impl, shape, channels_last):
    n, cin, cout, h, w = shape
    g = torch.Generator().manual_seed(sum(shape))
    ref = plain(cin, cout)
    with torch.no_grad():  # non-trivial bias and weights, each tap different
        ref[1].weight.copy_(torch.randn(ref[1].weight.shape, generator=g))
        ref[1].bias.copy_(torch.randn(cout, generator=g))
    fast = UpsampleConv2d(cin, cout, impl=impl)
    fast.load_state_dict(ref[1].state_dict())  # also checks the parameter names match nn.Conv2d's
    x = torch.randn(n, cin, h, w, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    grad_out = torch.randn(n, cout, 2 * h, 2 * w, generator=g)

    expected = values_and_grads(ref, ref[1], x, grad_out)
    got = values_and_grads(fast, fast, x, grad_out)
    assert got[0].shape == (n, cout, 2 * h, 2 * w)
    for name, e, a in zip(("output", "input grad", "weight grad", "bias grad"), expected, got):
        scale = e.abs().max().item()
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5 * scale, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("impl", FAST)
def test_double_precision_is_exact(impl):
    # in float64 the only difference left is summation order
    torch.manual_seed(1)
    ref = plain(6, 3).double()
    fast = UpsampleConv2d(6, 3, impl=impl).double()
    fast.load_state_dict(ref[1].state_dict())
    x = torch.randn(2, 6, 5, 4, dtype=torch.float64)
    torch.testing.assert_close(fast(x), ref(x), rtol=0, atol=1e-12)


def test_phase_kernels_by_hand():
    # one input and output channel, 3x3 weight 1..9: phase (0, 1) reads rows (i-1, i)
    # with [w0, w1+w2] and columns (j, j+1) with [w0+w1, w2]
    w = torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    k = phase_kernels(w).view(2, 2, 2, 2)
    rows0 = torch.stack([w[0, 0, 0], w[0, 0, 1] + w[0, 0, 2]])  # (2 taps, 3 columns)
    expected01 = torch.stack([rows0[:, 0] + rows0[:, 1], rows0[:, 2]], dim=1)
    torch.testing.assert_close(k[0, 1], expected01, rtol=0, atol=0)
    assert k.sum() == 4 * w.sum()  # each phase sums all nine taps once


def test_only_the_3x3_parameters():
    m = UpsampleConv2d(4, 2)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == {"weight": (2, 4, 3, 3), "bias": (2,)}
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]


def test_without_bias():
    torch.manual_seed(2)
    ref = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(3, 2, 3, padding=1, bias=False))
    x = torch.randn(2, 3, 5, 6)
    for f in (upsample_conv_phases, upsample_conv_transposed):
        torch.testing.assert_close(f(x, ref[1].weight, None), ref(x), rtol=1e-5, atol=1e-5)


def test_unknown_impl_is_refused():
    with pytest.raises(ValueError, match="impl"):
        UpsampleConv2d(1, 1, impl="fft")


def as_plain_modules(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with every UpsampleConv2d replaced by Upsample + Conv2d, same weights."""
    net = copy.deepcopy(net)
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, UpsampleConv2d):
                seq = plain(child.in_channels, child.out_channels)
                seq[1].load_state_dict(child.state_dict())
                setattr(parent, name, seq)
    return net


G_KEYS = [  # checkpoints written before the fast layer must still load
    "project.weight",
    "project.bias",
    "blocks.0.weight",
    "blocks.0.bias",
    "blocks.1.weight",
    "blocks.1.bias",
    "blocks.1.running_mean",
    "blocks.1.running_var",
    "blocks.1.num_batches_tracked",
    "blocks.3.weight",
    "blocks.3.bias",
    "blocks.4.weight",
    "blocks.4.bias",
    "blocks.4.running_mean",
    "blocks.4.running_var",
    "blocks.4.num_batches_tracked",
    "blocks.6.weight",
    "blocks.6.bias",
]
D_KEYS = [
    "down.0.weight",
    "down.0.bias",
    "embed.weight",
    "embed.bias",
    "expand.0.weight",
    "expand.0.bias",
    "expand.0.running_mean",
    "expand.0.running_var",
    "expand.0.num_batches_tracked",
    "expand.2.weight",
    "expand.2.bias",
    "expand.3.weight",
    "expand.3.bias",
    "expand.3.running_mean",
    "expand.3.running_var",
    "expand.3.num_batches_tracked",
    "up.weight",
    "up.bias",
]


def test_seed32_state_dict_names_unchanged():
    assert list(seed32.Generator(62, (1, 32, 32)).state_dict()) == G_KEYS
    assert list(seed32.AutoencoderDiscriminator((1, 32, 32)).state_dict()) == D_KEYS


def test_seed32_networks_match_plain_form():
    torch.manual_seed(3)
    shape = (1, 32, 32)
    G = seed32.Generator(62, shape)
    D = seed32.AutoencoderDiscriminator(shape)
    with torch.no_grad():  # biases are zero after init; make them matter
        for m in (*G.modules(), *D.modules()):
            if isinstance(m, UpsampleConv2d):
                m.bias.normal_()
    G_ref, D_ref = as_plain_modules(G), as_plain_modules(D)
    assert sum(isinstance(m, UpsampleConv2d) for m in G_ref.modules()) == 0
    z = torch.randn(8, 62)
    for train in (True, False):  # batch statistics and running statistics
        G.train(train), G_ref.train(train), D.train(train), D_ref.train(train)
        fake, fake_ref = G(z), G_ref(z)
        torch.testing.assert_close(fake, fake_ref, rtol=1e-4, atol=1e-5)
        recon, emb = D(fake_ref)
        recon_ref, emb_ref = D_ref(fake_ref)
        torch.testing.assert_close(emb, emb_ref, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(recon, recon_ref, rtol=1e-4, atol=1e-5)
    # and the generator's parameter gradients through both networks, in float64 so that
    # float32 rounding (amplified by BatchNorm) cannot hide or fake a difference
    nets = [m.double().train() for m in (G, D, G_ref, D_ref)]
    z = z.double()
    for g_net, d_net in ((nets[0], nets[1]), (nets[2], nets[3])):
        recon, emb = d_net(g_net(z))
        (recon.square().sum() + emb.square().sum()).backward()
    for (name, p), p_ref in zip(G.named_parameters(), G_ref.parameters()):
        torch.testing.assert_close(p.grad, p_ref.grad, rtol=1e-7, atol=1e-9, msg=lambda m, name=name: f"{name}: {m}")
