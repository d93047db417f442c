"""The interface between the trainer and a GAN objective.

Per iteration the trainer does, and knows nothing more (the order is fixed and
documented here once):

    for k in range(objective.d_steps):               # 1, or n_critic for WGAN-GP
        real = next batch;  fake = G(z)              # fresh z each time
        loss, metrics = objective.discriminator_loss(D, real, fake.detach())  -> D step
    loss, metrics = objective.generator_loss(D, fake)                         -> G step
    objective.end_step(step);  at an epoch's end: objective.end_epoch(epoch)

So the D step comes first and the G step reuses the last D step's G(z) (one G forward
per iteration), scored by the just-updated D, whose parameters get no gradient from
the G step. Any state an objective carries (margin, k_t) lives in the objective and is
saved through ``state_dict``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

Metrics = dict[str, torch.Tensor]


class Objective:
    name: str = ""
    discriminator_kind: str = "autoencoder"  # "autoencoder" or "critic"; see ebgan.nets
    d_steps: int = 1

    def discriminator_loss(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, Metrics]:
        raise NotImplementedError

    def generator_loss(self, D: nn.Module, fake: torch.Tensor) -> tuple[torch.Tensor, Metrics]:
        raise NotImplementedError

    def prepare(self, trainer) -> None:
        """Called once before the first step of a fresh run (not on resume): pretraining."""

    def end_step(self, step: int) -> None:
        """Called after each iteration with the number of iterations done."""

    def end_epoch(self, epoch: int) -> None:
        """Called after the last batch of each pass over the data."""

    def energy(self, D: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Per-sample energy (or negated critic score): low on the data, high off it."""
        raise NotImplementedError(f"objective {self.name!r} defines no energy")

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
