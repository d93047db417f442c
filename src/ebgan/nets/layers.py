"""Layers shared by the network families."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# Nearest 2x upsampling then a 3x3 'same' convolution, along one axis: output row 2i
# (phase 0) reads low-res rows (i-1, i) with kernel rows [w0, w1+w2]; output row 2i+1
# (phase 1) reads rows (i, i+1) with [w0+w1, w2]. _PHASE_TAPS[phase, tap, k] sums the
# 3x3 kernel's rows k into the 2-tap kernel of that phase.
_PHASE_TAPS = ((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)), ((1.0, 1.0, 0.0), (0.0, 0.0, 1.0))
# The same four 2-tap kernels as one 4-tap kernel of a stride-2 transposed convolution
# (padding 1): tap t of output row p reads input row (p + 1 - t) / 2, so t = 3, 1 are
# phase 0's taps on rows i-1, i and t = 2, 0 are phase 1's taps on rows i, i+1.
_TRANSPOSED_TAPS = ((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 0.0))

IMPLEMENTATIONS = ("transposed", "phases", "reference")


def _taps(table, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(table, dtype=like.dtype, device=like.device)


def upsample_conv_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The plain form: ``nn.Upsample(scale_factor=2)`` then ``nn.Conv2d(k=3, padding=1)``."""
    return F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), weight, bias, padding=1)


def phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """The four 2x2 kernels (one per output phase (a, b)) equal to upsample + 3x3 conv.

    Shape (Cout * 4, Cin, 2, 2), output channel o * 4 + 2a + b (pixel_shuffle's order).
    Built from ``weight`` by an einsum, so gradients flow to the 3x3 weight.
    """
    taps = _taps(_PHASE_TAPS, weight)
    cout, cin = weight.shape[:2]
    return torch.einsum("ark,bsl,ockl->oabcrs", taps, taps, weight).reshape(cout * 4, cin, 2, 2)


def upsample_conv_phases(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Upsample + 3x3 conv as one 2x2 convolution of the low-res input, then an interleave.

    The conv (padding 1) gives (H+1)x(W+1) per phase; phase (a, b) is its window at
    offset (a, b), and its rows/columns land on output rows 2i+a, columns 2j+b.
    """
    n, _, h, w = x.shape
    cout = weight.shape[0]
    y = F.conv2d(x, phase_kernels(weight), None if bias is None else bias.repeat_interleave(4), padding=1)
    y = y.view(n, cout, 2, 2, h + 1, w + 1)
    phases = torch.stack([y[:, :, a, b, a : a + h, b : b + w] for a in (0, 1) for b in (0, 1)], dim=2)
    return F.pixel_shuffle(phases.reshape(n, cout * 4, h, w), 2)


def transposed_kernel(weight: torch.Tensor) -> torch.Tensor:
    """The 4x4 stride-2 transposed-convolution kernel (Cin, Cout, 4, 4) equal to upsample + 3x3 conv."""
    taps = _taps(_TRANSPOSED_TAPS, weight)
    return torch.einsum("rk,sl,ockl->cors", taps, taps, weight)


def upsample_conv_transposed(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The same four 2x2 phase convolutions, run as one transposed convolution that
    writes the phases interleaved (no slicing or shuffle copies)."""
    kernel = transposed_kernel(weight)
    if x.is_contiguous(memory_format=torch.channels_last):
        # keep the kernel in the input's layout so oneDNN need not reorder per call
        kernel = kernel.contiguous(memory_format=torch.channels_last)
    return F.conv_transpose2d(x, kernel, bias, stride=2, padding=1)


_FORWARDS = {
    "transposed": upsample_conv_transposed,
    "phases": upsample_conv_phases,
    "reference": upsample_conv_reference,
}


class UpsampleConv2d(nn.Module):
    """Nearest-neighbour 2x upsampling followed by a 3x3 'same' convolution.

    Holds exactly the parameters of ``nn.Conv2d(in, out, 3, padding=1)`` (``weight``,
    ``bias``) so that checkpoints match the two-module form ``Upsample + Conv2d``.
    ``impl`` picks an exact way to compute it (same values and gradients up to float
    rounding): 'transposed' (default, fastest on CPU), 'phases' or 'reference'.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True, impl: str = "transposed"):
        super().__init__()
        if impl not in _FORWARDS:
            raise ValueError(f"unknown impl {impl!r}; use one of {IMPLEMENTATIONS}")
        self.in_channels, self.out_channels, self.impl = in_channels, out_channels, impl
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
        return _FORWARDS[self.impl](x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, upsample=2, kernel_size=3, impl={self.impl}"


def batchnorm_layers(*modules: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer (1-D, 2-D, SyncBatchNorm, GlobalBatchNorm) in ``modules``."""
    return [m for module in modules for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def check_sizes(**sizes: int) -> None:
    """Widths, layer counts and code sizes are at least 1; the ValueError becomes a one-line user
    error naming the family (``ebgan.nets``), where torch would fail later, or build empty layers."""
    for name, value in sizes.items():
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")


def init_normal_(module: nn.Module, std: float, name: str = "init_std") -> None:
    """DCGAN-style init: conv/linear weights N(0, std), biases 0; norm scales N(1, std).
    ``name`` is the option that set ``std``, for the error when it is negative."""
    if std < 0:
        raise ValueError(f"{name} must be >= 0, got {std}")
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, UpsampleConv2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
