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


def test_ae_bottom_8_is_the_ebgan_papers_64x64_discriminator():
    """Encoder (64)4c2s-(128)4c2s-(256)4c2s, decoder (128)4c2s-(64)4c2s-(3)4c2s: the layer list,
    written out from the paper's notation, and an 8x8x256 embedding."""
    AE = build_discriminator("dcgan", "autoencoder", (3, 64, 64), {"ae_bottom": 8})
    convs = [
        (type(m).__name__, m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0])
        for m in AE.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
    ]
    assert convs == [
        ("Conv2d", 3, 64, 4, 2),
        ("Conv2d", 64, 128, 4, 2),
        ("Conv2d", 128, 256, 4, 2),
        ("ConvTranspose2d", 256, 128, 4, 2),
        ("ConvTranspose2d", 128, 64, 4, 2),
        ("ConvTranspose2d", 64, 3, 4, 2),
    ]
    recon, emb = AE(torch.randn(2, 3, 64, 64))
    assert recon.shape == (2, 3, 64, 64) and emb.shape == (2, 256 * 8 * 8)
    with pytest.raises(EbganError, match="ae_bottom must be 4 or 8"):
        build_discriminator("dcgan", "autoencoder", (3, 64, 64), {"ae_bottom": 16})
