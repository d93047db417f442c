"""An exponential moving average of the generator's weights (Karras et al. 2018; Yazici et al. 2019).

    theta_ema <- decay * theta_ema + (1 - decay) * theta      after each generator step >= start
    theta_ema <- theta                                        before ``start`` (a plain copy)

Buffers (BatchNorm's running mean and variance) are not averaged: they are copied from
the generator at every update, as StyleGAN2-ADA (``training_loop.py``: ``b_ema.copy_(b)``)
and StudioGAN (``Ema``) do, so the averaged weights are used with the statistics of the
current generator.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from ebgan.errors import EbganError


class EMA:
    def __init__(self, model: nn.Module, decay: float, start: int = 0):
        if not 0.0 <= decay < 1.0:
            raise EbganError(f"ema_decay must be in [0, 1) (0: off), got {decay}")
        if start < 0:
            raise EbganError(f"ema_start must be >= 0, got {start}")
        self.decay, self.start = float(decay), int(start)
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Fold ``model``'s weights in after generator step ``step`` (1-based)."""
        decay = self.decay if step >= self.start else 0.0
        for ema_p, p in zip(self.model.parameters(), model.parameters()):
            ema_p.lerp_(p.detach(), 1.0 - decay)  # ema + (1 - decay) (p - ema)
        for ema_b, b in zip(self.model.buffers(), model.buffers()):
            ema_b.copy_(b)

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
