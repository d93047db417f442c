"""seed32: the reference EBGAN's 32x32 networks, with BatchNorm's defaults where it had a bug."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from ebgan.errors import EbganError
from ebgan.nets import build_discriminator, build_generator


def batchnorms(*modules):
    return [m for net in modules for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def bn_defaults_kept(modules) -> bool:
    return all(m.eps == 1e-5 and m.momentum == 0.1 for m in batchnorms(*modules))


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_embedding(channels):
    G = build_generator("seed32", 62, (channels, 32, 32))
    D = build_discriminator("seed32", "autoencoder", (channels, 32, 32))
    x = G(torch.randn(5, 62))
    assert x.shape == (5, channels, 32, 32) and x.abs().max() <= 1  # tanh
    recon, embedding = D(x)
    assert recon.shape == x.shape and embedding.shape == (5, 32)


def test_batchnorm_keeps_pytorchs_defaults_not_the_reference_codes_eps_of_0_8():
    G = build_generator("seed32", 62, (1, 32, 32))
    D = build_discriminator("seed32", "autoencoder", (1, 32, 32))
    assert len(batchnorms(G, D)) >= 3
    assert bn_defaults_kept([G, D])
    # The check catches the bug it is about: BatchNorm2d(C, 0.8) sets eps (the second argument) to 0.8.
    buggy = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4, 0.8))
    assert buggy[1].eps == 0.8 and not bn_defaults_kept([buggy])


def test_sizes_it_cannot_take_are_one_line_errors():
    with pytest.raises(EbganError, match="divisible by 4"):
        build_generator("seed32", 62, (1, 30, 30))
    with pytest.raises(EbganError, match="divisible by 4"):
        build_discriminator("seed32", "autoencoder", (1, 32, 28))
