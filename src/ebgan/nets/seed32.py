"""The 32x32 networks of the widely used reference PyTorch EBGAN script.

Generator: linear to 128x8x8, two (upsample, 3x3 conv, BatchNorm, LeakyReLU) blocks,
3x3 conv, tanh. Autoencoder discriminator: 3x3 stride-2 conv + ReLU, a linear
embedding of 32, linear back, BatchNorm + ReLU, upsample + 3x3 conv.

The reference passes 0.8 as BatchNorm's second positional argument, which is ``eps``,
where momentum was meant; eps = 0.8 swamps the batch variance. We use BatchNorm's
defaults (eps 1e-5, momentum 0.1).

Speed (exact, same parameters): the upsample+conv blocks run as ``UpsampleConv2d``'s
default "transposed" form (the four 2x2 phase kernels of the 3x3 kernel as one stride-2
transposed convolution: 2.25x fewer multiply-adds), and the feature maps after the
linear layers are put in channels_last memory order, which oneDNN's CPU convolutions and BatchNorm run faster
(``benchmarks/train_speed.py``).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ebgan.nets.layers import UpsampleConv2d, check_sizes, init_normal_

ARGS = {"init_std": 0.02, "embedding_dim": 32}


def _check_size(image_shape):
    c, h, w = image_shape
    if h != w or h % 4:
        raise ValueError(f"seed32 needs square images with a side divisible by 4, got {h}x{w}")


class Generator(nn.Module):
    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int], init_std: float = 0.02, **_):
        super().__init__()
        _check_size(image_shape)
        self.latent_dim, self.image_shape = latent_dim, tuple(image_shape)
        channels, side = image_shape[0], image_shape[1]
        self.init_size = side // 4
        self.project = nn.Linear(latent_dim, 128 * self.init_size**2)
        self.blocks = nn.Sequential(
            UpsampleConv2d(128, 128),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.2, inplace=True),
            UpsampleConv2d(128, 64),
            nn.BatchNorm2d(64),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(64, channels, 3, padding=1),
            nn.Tanh(),
        )
        init_normal_(self, init_std)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(z.shape[0], 128, self.init_size, self.init_size)
        # a no-op for one channel; plain layout for callers when there are more
        return self.blocks(x.contiguous(memory_format=torch.channels_last)).contiguous()


class AutoencoderDiscriminator(nn.Module):
    """Returns (reconstruction, embedding); the energy is computed from them by the objective."""

    def __init__(self, image_shape: tuple[int, int, int], init_std: float = 0.02, embedding_dim: int = 32, **_):
        super().__init__()
        _check_size(image_shape)
        check_sizes(embedding_dim=embedding_dim)
        self.image_shape = tuple(image_shape)
        channels, side = image_shape[0], image_shape[1]
        self.down_size = side // 2
        down_dim = 64 * self.down_size**2
        self.down = nn.Sequential(nn.Conv2d(channels, 64, 3, stride=2, padding=1), nn.ReLU())
        self.embed = nn.Linear(down_dim, embedding_dim)
        self.expand = nn.Sequential(
            nn.BatchNorm1d(embedding_dim),
            nn.ReLU(),
            nn.Linear(embedding_dim, down_dim),
            nn.BatchNorm1d(down_dim),
            nn.ReLU(),
        )
        self.up = UpsampleConv2d(64, channels)
        init_normal_(self, init_std)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.down(x)
        embedding = self.embed(h.flatten(1))
        h = self.expand(embedding).view(x.shape[0], 64, self.down_size, self.down_size)
        recon = self.up(h.contiguous(memory_format=torch.channels_last))
        return recon.contiguous(), embedding
