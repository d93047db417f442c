"""BEGAN's own networks (Berthelot, Schumm & Metz 2017, arXiv:1703.10717, Figure 1).

No BatchNorm anywhere; 3x3 convolutions with ELU; an 8x8 base resolution.

- Encoder: 3x3 conv to ``width`` channels, then per scale two 3x3 convs (ELU) and, except at
  the last scale, a stride-2 3x3 conv (the paper's sub-sampling) that adds ``width``
  channels (n, 2n, 3n, ...: "filters increase linearly with each down-sampling"); a fully
  connected layer maps the 8x8 map to the embedding h (``embedding_dim``, 64 in the paper).
- Decoder: fully connected h -> 8x8 x n, then per scale two 3x3 convs (ELU) and, except at the
  last scale, nearest-neighbour up-sampling x2; a 3x3 conv to the image channels.
- Generator: the decoder's architecture with its own weights, from z (``latent_dim``, 64 in
  the paper). Its output goes through tanh by default, because ebgan's images live in
  [-1, 1]; ``tanh: false`` leaves it linear, as the paper does (samples are then clamped to
  [-1, 1] only when written as images). The autoencoder's decoder output stays linear.

32x32 images get 3 scales (32, 16, 8), 64x64 get 4. ``width`` is n: 64 or 128 in the paper,
32 by default here so that a CPU trains it. PyTorch's default initialisation (the paper
names none).

``skip`` (off by default) is the paper's optional skip connection (section 3.5.1): after each
up-sampling, the decoder's (and G's) feature map is concatenated with the first 8x8 map h0,
up-sampled to the same size, so every scale sees h (or z) directly; the convolution that follows
takes 2n channels. The paper's other option, vanishing residuals, is not built.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ebgan.errors import EbganError
from ebgan.nets.layers import check_sizes

ARGS = {
    "width": 32,  # n: channels of the first scale; the encoder adds n per down-sampling
    "embedding_dim": 64,  # h: the autoencoder's fully connected bottleneck
    "skip": False,  # the paper's skip connections from h0 to every up-sampled scale (section 3.5.1)
    "tanh": True,  # G's output through tanh into [-1, 1]; false: linear, as in the paper
}
BASE = 8  # the smallest feature map is 8x8, as in the paper


def scales(image_shape) -> int:
    """Resolutions from the image side down to 8x8 (3 for 32x32, 4 for 64x64)."""
    _, h, w = image_shape
    k = int(round(math.log2(h / BASE))) if h >= BASE else -1
    if h != w or k < 1 or BASE * 2**k != h:
        raise EbganError(
            f"the began networks need square images with a power-of-two side >= 16, got {h}x{w}; "
            "set --image-size to one, e.g. 32, 64 or 128"
        )
    return k + 1


def _conv(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1), nn.ELU()]


class Decoder(nn.Module):
    """h (or z) -> image: FC to 8x8 x n, [conv, conv, up-sample] per scale, conv to the channels."""

    def __init__(self, in_dim: int, image_shape, width: int, out: nn.Module | None = None, skip: bool = False):
        super().__init__()
        n, k = width, scales(image_shape)
        self.width, self.skip = n, skip
        self.fc = nn.Linear(in_dim, BASE * BASE * n)
        layers: list[nn.Module] = []
        for i in range(k):
            cin = 2 * n if skip and i > 0 else n  # after an up-sampling, h0 is concatenated
            layers += _conv(cin, n) + _conv(n, n)
            if i < k - 1:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        layers.append(nn.Conv2d(n, image_shape[0], 3, 1, 1))
        if out is not None:
            layers.append(out)
        self.body = nn.Sequential(*layers)  # one Sequential with or without skip: same state_dict keys

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h0 = x = self.fc(h).view(-1, self.width, BASE, BASE)
        for layer in self.body:
            x = layer(x)
            if self.skip and isinstance(layer, nn.Upsample):
                x = torch.cat([x, nn.functional.interpolate(h0, size=x.shape[-2:], mode="nearest")], dim=1)
        return x


class Encoder(nn.Module):
    """image -> h: conv to n, [conv, conv, stride-2 conv adding n channels] per scale, FC to h."""

    def __init__(self, image_shape, width: int, embedding_dim: int):
        super().__init__()
        n, k = width, scales(image_shape)
        layers: list[nn.Module] = _conv(image_shape[0], n)
        for i in range(k):
            ch = n * (i + 1)
            layers += _conv(ch, ch) + _conv(ch, ch)
            if i < k - 1:
                layers += _conv(ch, n * (i + 2), stride=2)
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(BASE * BASE * n * k, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x).flatten(1))


class Generator(nn.Module):
    def __init__(self, latent_dim: int, image_shape, width: int = 32, skip: bool = False, tanh: bool = True, **_):
        super().__init__()
        check_sizes(width=width)
        self.latent_dim, self.image_shape = latent_dim, tuple(image_shape)
        self.decoder = Decoder(latent_dim, image_shape, width, out=nn.Tanh() if tanh else None, skip=skip)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


class AutoencoderDiscriminator(nn.Module):
    """x -> (reconstruction, embedding h): BEGAN's D, whose L1 reconstruction error is the energy."""

    def __init__(self, image_shape, width: int = 32, embedding_dim: int = 64, skip: bool = False, **_):
        super().__init__()
        check_sizes(width=width, embedding_dim=embedding_dim)
        self.encoder = Encoder(image_shape, width, embedding_dim)
        self.decoder = Decoder(embedding_dim, image_shape, width, skip=skip)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.decoder(h), h
