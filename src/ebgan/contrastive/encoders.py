"""Siamese encoders: one network embeds both images of a pair.

- ``small``: the first attempt's network, two (3x3 conv, ReLU, 2x2 max-pool) stages of 64 and
  128 channels and a linear layer to the embedding.
- ``conv4`` (default): four stages of (3x3 conv, BatchNorm, ReLU) x DEPTH (1) then 2x2 max-pool, widths
  w, 2w, 4w, 8w, global average pooling and a linear layer to the embedding; any image size
  from 16 up.

Both return the raw embedding; ``embed`` L2-normalises it when the run does (``normalize``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

DEPTH = 1  # convolutions per conv4 stage


class SmallEncoder(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], embedding_dim: int = 128):
        super().__init__()
        c, h, w = image_shape
        self.features = nn.Sequential(
            nn.Conv2d(c, 64, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(128 * (h // 4) * (w // 4), embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def _stage(cin: int, cout: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(DEPTH):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)]
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers, nn.MaxPool2d(2))


class Conv4Encoder(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], embedding_dim: int = 128, width: int = 32):
        super().__init__()
        c = image_shape[0]
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.features = nn.Sequential(*[_stage(a, b) for a, b in zip([c, *widths[:-1]], widths)])
        self.head = nn.Linear(widths[-1], embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


def build_encoder(cfg, image_shape) -> nn.Module:
    """The encoder a resolved ContrastiveConfig names, for images of ``image_shape`` (C, H, W)."""
    if cfg.encoder == "small":
        return SmallEncoder(tuple(image_shape), cfg.embedding_dim)
    return Conv4Encoder(tuple(image_shape), cfg.embedding_dim, cfg.width)


def embed(encoder: nn.Module, x: torch.Tensor, normalize: bool) -> torch.Tensor:
    e = encoder(x)
    return F.normalize(e, dim=1) if normalize else e
