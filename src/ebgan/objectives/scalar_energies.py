"""Energies that are a network's scalar output, E(x) = D(x), shaped without a generator.

D is the ``critic`` network of the family (x -> one number per sample). Three of LeCun's
strategies for making E low on the data and high elsewhere:

- ``grid-likelihood`` (strategy 2, maximum likelihood): p(x) = exp(-E(x)) / Z with the
  partition function computed on a grid of the plane (2-D toy data only: the integral is
  a sum over ``grid_resolution``^2 cells of [-PLANE_EXTENT, PLANE_EXTENT]^2):
      L = mean_i E(x_i) + log Z,   log Z = logsumexp_g(-E(g)) + log(cell area)
  Pushing log Z down pushes the energy up everywhere on the grid at once.
- ``cd`` (strategy 3, contrastive divergence with Langevin negatives, in the form of Du &
  Mordatch 2019): negatives start from a replay buffer (a share ``reinit_share`` from
  uniform noise) and take ``langevin_steps`` steps
      x <- clip(x - step_size * dE/dx + noise * N(0, I))
  then  L = mean E(x+) - mean E(x-) + energy_reg * mean(E(x+)^2 + E(x-)^2)
  (the last term keeps the energies' scale from drifting). The chain runs on D as it is
  at the step; its samples are the "chosen points" pushed up, as G's samples are in EBGAN.
- ``dsm`` (strategy 4, denoising score matching, Vincent 2011): the model's score -dE/dx
  at x~ = x + sigma * eps is regressed onto the noise kernel's score -(x~ - x) / sigma^2:
      L = mean_i 1/2 || eps_i - sigma * dE/dx(x~_i) ||^2      (= sigma^2 * Fisher divergence
  to the sigma-smoothed data, up to a constant). Minimising the gradient on the data and
  making the energy curve up around it is what the loss asks for.

Random draws use torch's global generator (kept by checkpoints: exact resume holds);
``cd`` also keeps its replay buffer in the checkpoint. None trains a generator.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ebgan.data.toy import PLANE_EXTENT, is_toy
from ebgan.errors import EbganError
from ebgan.objectives.base import (
    Metrics,
    Objective,
    Option,
    at_least,
    check_no_batchnorm,
    critic_without_batchnorm,
    positive,
)
from ebgan.objectives.regularised_autoencoders import NOISE_OPTION


class ScalarEnergy(Objective):
    """E(x) = D(x) from a critic network; D alone is trained (``trains_generator`` is False)."""

    discriminator_kind = "critic"
    trains_generator = False
    input_gradients = True  # scores and Langevin steps are gradients with respect to x

    @classmethod
    def resolve(cls, cfg) -> None:
        # Scores, Langevin steps and log Z need E(x_i) of x_i alone: BatchNorm would couple the batch.
        critic_without_batchnorm(cfg, "its energy's gradient is per sample")

    def per_sample(self, D: nn.Module) -> nn.Module:
        """``D``, checked to have no BatchNorm (for networks built outside a Config)."""
        return check_no_batchnorm(D, f"{self.name}'s energy gradient is per sample")

    def energy(self, D: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self.per_sample(D)(x).float()


def energy_gradient(D: nn.Module, x: torch.Tensor, create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(E(x), dE/dx) for a batch; with ``create_graph`` the gradient is itself differentiable."""
    x = x.detach().requires_grad_(True)
    e = D(x).float()
    (grad,) = torch.autograd.grad(e.sum(), x, create_graph=create_graph)
    return e, grad


class GridLikelihood(ScalarEnergy):
    name = "grid-likelihood"
    options = (
        Option(
            "grid_resolution",
            int,
            64,
            "cells per side of the grid over [-1.2, 1.2]^2 on which the partition function is summed",
            check=at_least(8),
        ),
    )

    def __init__(self, grid_resolution: int = 64):
        self.check_options(grid_resolution=grid_resolution)
        self.grid_resolution = grid_resolution

    @classmethod
    def resolve(cls, cfg) -> None:
        super().resolve(cfg)
        if not is_toy(cfg.dataset):
            raise EbganError(
                "objective 'grid-likelihood' sums its partition function over a grid of the plane: it needs a 2-D "
                f"dataset (--dataset toy:NAME), got {cfg.dataset!r}; for images use cd or dsm"
            )

    def grid(self, device) -> tuple[torch.Tensor, float]:
        """Cell centres (resolution^2, 2) covering [-PLANE_EXTENT, PLANE_EXTENT]^2 and one cell's area."""
        side = 2 * PLANE_EXTENT / self.grid_resolution
        axis = -PLANE_EXTENT + side * (torch.arange(self.grid_resolution, device=device, dtype=torch.float32) + 0.5)
        yy, xx = torch.meshgrid(axis, axis, indexing="ij")
        return torch.stack([xx.flatten(), yy.flatten()], 1), side * side

    def log_partition(self, D: nn.Module, device) -> torch.Tensor:
        """log Z = log integral of exp(-E) over the plotted square, by the midpoint rule."""
        points, area = self.grid(device)
        return torch.logsumexp(-self.energy(D, points), 0) + math.log(area)

    def discriminator_loss(self, D, real, fake) -> tuple[torch.Tensor, Metrics]:
        e_real = self.energy(D, real)
        log_z = self.log_partition(D, real.device)
        loss = e_real.mean() + log_z  # the negative log-likelihood of the batch
        return loss, {"loss_d": loss.detach(), "energy_real": e_real.detach().mean(), "log_z": log_z.detach()}


class ContrastiveDivergence(ScalarEnergy):
    name = "cd"
    options = (
        Option("langevin_steps", int, 30, "Langevin steps per negative batch", check=at_least(1)),
        Option("langevin_step_size", float, 0.01, "step on -dE/dx per Langevin step", check=positive),
        Option("langevin_noise", float, 0.005, "std of the Gaussian noise added per Langevin step", check=at_least(0)),
        Option("buffer_size", int, 10000, "negatives kept in the replay buffer", check=at_least(1)),
        Option(
            "reinit_share",
            float,
            0.05,
            "share of each negative batch restarted from uniform noise",
            check=lambda v: None if 0 <= v <= 1 else "must be in [0, 1]",
        ),
        Option("energy_reg", float, 0.1, "weight of mean(E+^2 + E-^2), which keeps energies near 0", check=at_least(0)),
    )

    def __init__(
        self,
        langevin_steps: int = 30,
        langevin_step_size: float = 0.01,
        langevin_noise: float = 0.005,
        buffer_size: int = 10000,
        reinit_share: float = 0.05,
        energy_reg: float = 0.1,
        bound: float = 1.0,
    ):
        self.check_options(
            langevin_steps=langevin_steps,
            langevin_step_size=langevin_step_size,
            langevin_noise=langevin_noise,
            buffer_size=buffer_size,
            reinit_share=reinit_share,
            energy_reg=energy_reg,
        )
        self.steps, self.step_size, self.noise = langevin_steps, langevin_step_size, langevin_noise
        self.buffer_size, self.reinit_share, self.energy_reg = buffer_size, reinit_share, energy_reg
        self.bound = bound  # chains stay in [-bound, bound]^d: the data's range (the plotted square for toys)
        self.buffer: torch.Tensor | None = None  # also what ``ebgan energy shapes`` draws as the negatives

    @classmethod
    def from_config(cls, cfg) -> ContrastiveDivergence:
        return cls(**cfg.options, bound=PLANE_EXTENT if is_toy(cfg.dataset) else 1.0)

    def _uniform(self, n: int, like: torch.Tensor) -> torch.Tensor:
        return (torch.rand((n, *like.shape[1:]), device=like.device) * 2 - 1) * self.bound

    def langevin(self, D: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``langevin_steps`` noisy gradient steps down the energy from ``x`` (no graph kept)."""
        for _ in range(self.steps):
            _, grad = energy_gradient(D, x, create_graph=False)
            x = (x - self.step_size * grad + self.noise * torch.randn_like(x)).clamp_(-self.bound, self.bound)
        return x.detach()

    def discriminator_loss(self, D, real, fake) -> tuple[torch.Tensor, Metrics]:
        if self.dist.world_size > 1:
            raise EbganError("objective 'cd' keeps one replay buffer per process; run it in one process, not torchrun")
        if self.buffer is None:
            self.buffer = self._uniform(self.buffer_size, real)
        self.buffer = self.buffer.to(real.device)
        idx = torch.randint(self.buffer_size, (real.shape[0],), device=real.device)
        start = self.buffer[idx]
        restart = torch.rand(real.shape[0], device=real.device) < self.reinit_share
        start = torch.where(restart.view(-1, *[1] * (real.dim() - 1)), self._uniform(real.shape[0], real), start)
        negatives = self.langevin(self.per_sample(D), start)
        self.buffer[idx] = negatives
        e_pos, e_neg = self.energy(D, real), self.energy(D, negatives)
        loss = e_pos.mean() - e_neg.mean() + self.energy_reg * (e_pos.pow(2) + e_neg.pow(2)).mean()
        return loss, {
            "loss_d": loss.detach(),
            "energy_real": e_pos.detach().mean(),
            "energy_negative": e_neg.detach().mean(),
        }

    def state_dict(self) -> dict:
        return {} if self.buffer is None else {"buffer": self.buffer.detach().cpu()}

    def load_state_dict(self, state: dict) -> None:
        buffer = state.get("buffer")
        self.buffer = None if buffer is None else buffer.clone()


class DenoisingScoreMatching(ScalarEnergy):
    name = "dsm"
    options = (NOISE_OPTION,)

    def __init__(self, noise_std: float = 0.1):
        self.check_options(noise_std=noise_std)
        self.noise_std = noise_std

    def discriminator_loss(self, D, real, fake) -> tuple[torch.Tensor, Metrics]:
        eps = torch.randn_like(real)
        e, grad = energy_gradient(self.per_sample(D), real + self.noise_std * eps, create_graph=True)
        loss = 0.5 * (eps - self.noise_std * grad).flatten(1).pow(2).sum(1).mean()
        return loss, {"loss_d": loss.detach(), "energy_noisy": e.detach().mean()}
