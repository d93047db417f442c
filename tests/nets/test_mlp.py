"""mlp: the paper's fully connected grid-search networks (section 4.1)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from ebgan.nets import build_discriminator, build_generator


def linears(net):
    return [m for m in net.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("n_layer_g, n_layer_d", [(2, 2), (5, 3)])
def test_layer_counts_and_widths_follow_the_papers_grid(n_layer_g, n_layer_d):
    args = {"n_layer_g": n_layer_g, "size_g": 40, "n_layer_d": n_layer_d, "size_d": 24}
    G = build_generator("mlp", 10, (1, 28, 28), args)
    D = build_discriminator("mlp", "autoencoder", (1, 28, 28), args)
    assert [(layer.in_features, layer.out_features) for layer in linears(G)] == (
        [(10, 40)] + [(40, 40)] * (n_layer_g - 2) + [(40, 784)]
    )
    # D: n_layer_d linear layers in all, the encoder's n_layer_d - 1 of width size_d, one back to the image
    assert [(layer.in_features, layer.out_features) for layer in linears(D)] == (
        [(784, 24)] + [(24, 24)] * (n_layer_d - 2) + [(24, 784)]
    )
    x = G(torch.randn(6, 10))
    recon, embedding = D(x)
    assert x.shape == recon.shape == (6, 1, 28, 28) and embedding.shape == (6, 24)


def test_batchnorm_everywhere_but_at_ds_input_and_gs_output():
    args = {"n_layer_g": 3, "size_g": 16, "n_layer_d": 3, "size_d": 16}
    G = build_generator("mlp", 8, (1, 8, 8), args)
    D = build_discriminator("mlp", "autoencoder", (1, 8, 8), args)
    assert isinstance(D.encoder[0], nn.Linear)  # the input goes straight into a linear layer
    assert isinstance(G.net[-1], nn.Tanh) and isinstance(G.net[-2], nn.Linear)  # no BN before the tanh
    assert sum(isinstance(m, nn.BatchNorm1d) for m in G.modules()) == 2
    assert sum(isinstance(m, nn.BatchNorm1d) for m in D.modules()) == 2


def test_dropout_only_when_asked():
    args = {"n_layer_d": 3, "size_d": 16}
    with_dropout = build_discriminator("mlp", "autoencoder", (1, 8, 8), {**args, "dropout_d": True})
    without = build_discriminator("mlp", "autoencoder", (1, 8, 8), args)
    assert sum(isinstance(m, nn.Dropout) for m in with_dropout.modules()) == 3  # before each of the 3 linears
    assert not any(isinstance(m, nn.Dropout) for m in without.modules())


def test_initialisation_std_is_the_configured_one():
    G = build_generator("mlp", 100, (1, 28, 28), {"n_layer_g": 2, "size_g": 800, "init_std_g": 0.02})
    D = build_discriminator("mlp", "autoencoder", (1, 28, 28), {"size_d": 800, "init_std_d": 0.002})
    for net, std in ((G, 0.02), (D, 0.002)):
        w = torch.cat([layer.weight.flatten() for layer in linears(net)])
        # the sample std of n normal draws has a standard error of about std / sqrt(2n)
        assert abs(w.std().item() - std) < 6 * std / math.sqrt(2 * w.numel())


def test_discriminator_without_batchnorm_scores_each_sample_alone():
    from ebgan.nets.mlp import AutoencoderDiscriminator

    torch.manual_seed(0)
    D = AutoencoderDiscriminator((1, 8, 8), n_layer_d=3, size_d=16, batchnorm_d=False).train()
    assert not any(isinstance(m, nn.BatchNorm1d) for m in D.modules())
    x = torch.randn(6, 1, 8, 8)
    # in train mode, a sample's reconstruction is the same alone and in a batch (no batch statistics)
    assert torch.allclose(D(x[:1])[0], D(x)[0][:1], atol=1e-6)
    with_bn = AutoencoderDiscriminator((1, 8, 8), n_layer_d=3, size_d=16).train()
    assert not torch.allclose(with_bn(x[:2])[0][:1], with_bn(x)[0][:1], atol=1e-6)
