"""DCGAN family: shapes at 32x32 and 64x64, depth by image size, BatchNorm option, errors."""

import pytest
import torch
import torch.nn as nn

from ebgan.errors import EbganError
from ebgan.nets import build_discriminator, build_generator, resolve_model_args


def _count(module, kind):
    return sum(isinstance(m, kind) for m in module.modules())


@pytest.mark.parametrize("side,stages", [(32, 3), (64, 4)])
def test_shapes_and_depth(side, stages):
    args = {"width_g": 4, "width_d": 4}
    G = build_generator("dcgan", 10, (3, side, side), args)
    x = G(torch.randn(2, 10))
    assert x.shape == (2, 3, side, side) and x.abs().max() <= 1  # tanh output
    assert _count(G, nn.ConvTranspose2d) == stages + 1  # z -> 4x4, then one per doubling
    C = build_discriminator("dcgan", "critic", (3, side, side), args)
    assert C(x).shape == (2,)
    assert _count(C, nn.Conv2d) == stages + 1
    assert _count(C, nn.BatchNorm2d) == stages - 1  # none at the input
    AE = build_discriminator("dcgan", "autoencoder", (3, side, side), args)
    recon, emb = AE(x)
    assert recon.shape == x.shape
    assert emb.shape == (2, 4 * 2 ** (stages - 1) * 4 * 4)  # the 4x4 feature map
    recon, emb = build_discriminator("dcgan", "autoencoder", (3, side, side), {**args, "embedding_dim": 7})(x)
    assert recon.shape == x.shape and emb.shape == (2, 7)


def test_critic_without_batchnorm_is_per_sample():
    C = build_discriminator("dcgan", "critic", (1, 32, 32), {"width_d": 4, "batchnorm_d": False})
    assert _count(C, nn.BatchNorm2d) == 0
    x = torch.randn(3, 1, 32, 32)
    assert torch.allclose(C(x)[:1], C(x[:1]), atol=1e-6)  # a sample's score ignores the others
    AE = build_discriminator("dcgan", "autoencoder", (1, 32, 32), {"width_d": 4, "batchnorm_d": False})
    assert _count(AE, nn.BatchNorm2d) == 0


def test_bad_sizes_and_options():
    with pytest.raises(EbganError, match="power-of-two"):
        build_generator("dcgan", 10, (1, 28, 28))
    with pytest.raises(EbganError, match="power-of-two"):
        build_discriminator("dcgan", "critic", (1, 32, 16))
    with pytest.raises(EbganError, match="no option"):
        resolve_model_args("dcgan", {"width": 3})
