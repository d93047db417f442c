"""Layers shared by the network families."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class UpsampleConv2d(nn.Module):
    """Nearest-neighbour 2x upsampling followed by a 3x3 'same' convolution.

    Holds exactly the parameters of ``nn.Conv2d(in, out, 3, padding=1)`` (``weight``,
    ``bias``) so that checkpoints match the two-module form ``Upsample + Conv2d``.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Conv2d's default initialisation, so both forms start the same.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_channels * 9)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), self.weight, self.bias, padding=1)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, upsample=2, kernel_size=3"


def init_normal_(module: nn.Module, std: float) -> None:
    """DCGAN-style init: conv/linear weights N(0, std), biases 0; norm scales N(1, std)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, UpsampleConv2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
