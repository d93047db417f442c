"""DCGAN networks (Radford, Metz & Chintala, ICLR 2016) for square power-of-two images.

The depth follows the image size: ``log2(side) - 2`` stride-2 stages between 4x4 and
the image, so 32x32 gets 3 stages and 64x64 gets 4 (the paper's 64x64 net). Stage i
from the image side has ``width * 2**i`` channels.

- ``Generator``: z -> 4x4 by a 4x4 transposed convolution, then 4x4 stride-2 transposed
  convolutions, BatchNorm + ReLU everywhere except the output (tanh).
- ``Critic``: 4x4 stride-2 convolutions with LeakyReLU 0.2, BatchNorm except at the
  input, then a 4x4 valid convolution to one score per sample (a logit for GAN/DCGAN,
  a Wasserstein critic for WGAN-GP, which needs ``batchnorm_d: false``).
- ``AutoencoderDiscriminator``: the same encoder and a mirrored transposed-convolution
  decoder (BatchNorm + ReLU, linear output), for EBGAN/BEGAN/MAGAN on DCGAN nets. With
  ``embedding_dim > 0`` a 4x4 convolution to that many channels (and back) forms a
  bottleneck, as in BEGAN; with 0 the embedding is the encoder's 4x4 feature map, as in
  the EBGAN paper's convolutional autoencoder (no bottleneck). ``ae_bottom: 8`` stops the
  autoencoder's encoder at 8x8: at 64x64 that is the EBGAN paper's discriminator for CelebA
  and LSUN as best known (appendix, unverified): encoder (64)4c2s-(128)4c2s-(256)4c2s,
  decoder (128)4c2s-(64)4c2s-(3)4c2s, with ``width_d: 64``.

Initialisation N(0, 0.02) as in the DCGAN paper.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ebgan.errors import EbganError
from ebgan.nets.layers import check_sizes, init_normal_

ARGS = {
    "width_g": 64,  # channels of G's last hidden stage (doubling towards 4x4)
    "width_d": 64,  # channels of D's first stage (doubling towards 4x4)
    "batchnorm_d": True,  # BatchNorm in D; WGAN-GP needs false (its penalty is per sample)
    "embedding_dim": 0,  # autoencoder bottleneck channels; 0: none (the bottom feature map)
    "ae_bottom": 4,  # side of the autoencoder's bottom feature map: 4 (DCGAN's encoder) or 8 (EBGAN's 64x64 D)
    "init_std": 0.02,
}


def stages(image_shape) -> int:
    """Number of stride-2 stages between 4x4 and the image side."""
    c, h, w = image_shape
    n = int(round(math.log2(h))) - 2 if h > 0 else -1
    if h != w or n < 2 or 4 * 2**n != h:
        raise EbganError(
            f"dcgan needs square images with a power-of-two side >= 16 (32, 64, 128), got {h}x{w}; set --image-size"
        )
    return n


class Generator(nn.Module):
    def __init__(self, latent_dim, image_shape, width_g=64, init_std=0.02, **_):
        super().__init__()
        n = stages(image_shape)
        check_sizes(width_g=width_g)
        self.latent_dim, self.image_shape = latent_dim, tuple(image_shape)
        ch = [width_g * 2**i for i in reversed(range(n))]  # 4x4 stage first
        layers = [nn.ConvTranspose2d(latent_dim, ch[0], 4, 1, 0, bias=False), nn.BatchNorm2d(ch[0]), nn.ReLU(True)]
        for a, b in zip(ch, ch[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ch[-1], image_shape[0], 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_normal_(self, init_std)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


def _encoder(image_shape, width_d: int, batchnorm_d: bool, bottom: int = 4) -> tuple[nn.Sequential, int]:
    """Image -> (width_d * 2**(n-1), bottom, bottom); no BatchNorm on the input layer (DCGAN)."""
    check_sizes(width_d=width_d)
    n = stages(image_shape) - (bottom // 4 - 1)
    ch = [image_shape[0]] + [width_d * 2**i for i in range(n)]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(ch, ch[1:])):
        layers.append(nn.Conv2d(a, b, 4, 2, 1, bias=not (batchnorm_d and i > 0)))
        if batchnorm_d and i > 0:
            layers.append(nn.BatchNorm2d(b))
        layers.append(nn.LeakyReLU(0.2, True))
    return nn.Sequential(*layers), ch[-1]


class Critic(nn.Module):
    """x -> one real-valued score per sample, shape (N,)."""

    def __init__(self, image_shape, width_d=64, batchnorm_d=True, init_std=0.02, **_):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.encoder, top = _encoder(image_shape, width_d, batchnorm_d)
        self.score = nn.Conv2d(top, 1, 4, 1, 0)
        init_normal_(self, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(self.encoder(x)).flatten()


class AutoencoderDiscriminator(nn.Module):
    """x -> (reconstruction, embedding), the encoder of ``Critic`` and a mirrored decoder."""

    def __init__(self, image_shape, width_d=64, batchnorm_d=True, embedding_dim=0, init_std=0.02, ae_bottom=4, **_):
        super().__init__()
        if embedding_dim < 0:
            raise EbganError(f"embedding_dim must be >= 0, got {embedding_dim}")
        if ae_bottom not in (4, 8) or (ae_bottom == 8 and stages(image_shape) < 3):
            raise EbganError(
                f"ae_bottom must be 4 or 8 (8 needs images of 32x32 or more), got {ae_bottom} "
                f"for {image_shape[1]}x{image_shape[2]}"
            )
        self.image_shape = tuple(image_shape)
        n = stages(image_shape) - (ae_bottom // 4 - 1)
        self.encoder, top = _encoder(image_shape, width_d, batchnorm_d, ae_bottom)
        if embedding_dim:
            self.encoder.append(nn.Conv2d(top, embedding_dim, ae_bottom, 1, 0))  # -> (embedding_dim, 1, 1)
            first = [nn.ConvTranspose2d(embedding_dim, top, ae_bottom, 1, 0)]
        else:
            first = []
        ch = [width_d * 2**i for i in reversed(range(n))]  # mirror: the bottom stage first
        layers: list[nn.Module] = list(first)
        if first:
            layers += [nn.BatchNorm2d(top), nn.ReLU(True)] if batchnorm_d else [nn.ReLU(True)]
        for a, b in zip(ch, ch[1:]):
            layers.append(nn.ConvTranspose2d(a, b, 4, 2, 1, bias=not batchnorm_d))
            layers += [nn.BatchNorm2d(b), nn.ReLU(True)] if batchnorm_d else [nn.ReLU(True)]
        layers.append(nn.ConvTranspose2d(ch[-1], image_shape[0], 4, 2, 1))  # linear output, like EBGAN's decoder
        self.decoder = nn.Sequential(*layers)
        init_normal_(self, init_std)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.decoder(h), h.flatten(1)
