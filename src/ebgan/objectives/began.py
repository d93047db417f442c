"""BEGAN (Berthelot, Schumm & Metz 2017, arXiv:1703.10717), on any autoencoder discriminator.

    L(v)      = mean_pixels |v - AE(v)|                         (eq. 1, eta = 1: L1)
    L_D       = L(x) - k_t L(G(z_D))                            (eq. 4)
    L_G       = L(G(z_G))
    k_{t+1}   = clip(k_t + lambda_k (gamma L(x) - L(G(z_G))), 0, 1),  k_0 = 0
    M_global  = L(x) + |gamma L(x) - L(G(z_G))|                 (convergence measure, section 3.4.1)

L is per sample, then averaged over the batch. In the trainer's step order the k update
uses L(x) from the D step and L(G(z)) from the G step (the just-updated D scoring the
same G(z)), as in the paper's Algorithm with z_G. k_t is a float saved in ``state_dict``.
"""

from __future__ import annotations

import torch

from ebgan.objectives.base import Metrics, Objective, Option, at_least


def l1_energy(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Per-sample mean absolute residual, shape (N,), in float32."""
    return (recon.float() - x.float()).abs().flatten(1).mean(dim=1)


def k_update(k, loss_real, loss_fake, gamma: float, lambda_k: float):
    """One step of proportional control of k, clipped to [0, 1] (eq. 4); floats or 0-d tensors."""
    k = k + lambda_k * (gamma * loss_real - loss_fake)
    return k.clamp(0.0, 1.0) if torch.is_tensor(k) else min(1.0, max(0.0, k))


def convergence(loss_real: float, loss_fake: float, gamma: float) -> float:
    """M_global = L(x) + |gamma L(x) - L(G(z))|."""
    return loss_real + abs(gamma * loss_real - loss_fake)


class BEGAN(Objective):
    name = "began"
    discriminator_kind = "autoencoder"
    options = (
        Option(
            "gamma",
            float,
            0.5,
            "diversity ratio gamma = E[L(G(z))] / E[L(x)] aimed at (the paper: 0.3 to 0.7)",
            check=lambda v: None if 0 < v <= 1 else "must be in (0, 1]",
        ),
        Option("lambda_k", float, 0.001, "learning rate of the k_t control", check=at_least(0)),
    )

    def __init__(self, gamma: float = 0.5, lambda_k: float = 0.001):
        self.check_options(gamma=gamma, lambda_k=lambda_k)
        self.gamma, self.lambda_k = float(gamma), float(lambda_k)
        self.k = 0.0  # k_0 = 0; kept as a 0-d tensor so the per-step update needs no device sync
        self._loss_real: torch.Tensor | None = None  # L(x) of the last D step, for the k update
        self._loss_fake: torch.Tensor | None = None  # L(G(z)) of the last G step

    @property
    def k(self) -> float:
        return float(self._k)

    @k.setter
    def k(self, value) -> None:
        self._k = torch.as_tensor(value, dtype=torch.float32)

    def energy(self, D, x: torch.Tensor) -> torch.Tensor:
        recon, _ = D(x)
        return l1_energy(x, recon)

    def discriminator_loss(self, D, real, fake) -> tuple[torch.Tensor, Metrics]:
        loss_real = self.energy(D, real).mean()
        loss_fake = self.energy(D, fake).mean()
        self._k = self._k.to(loss_real.device)
        loss = loss_real - self._k * loss_fake
        self._loss_real = loss_real.detach()
        return loss, {
            "loss_d": loss.detach(),
            "energy_real": loss_real.detach(),
            "energy_fake": loss_fake.detach(),
            "k": self._k.clone(),
        }

    def generator_loss(self, D, fake) -> tuple[torch.Tensor, Metrics]:
        loss = self.energy(D, fake).mean()
        self._loss_fake = loss.detach()
        metrics = {"loss_g": loss.detach()}
        if self._loss_real is not None:
            metrics["convergence"] = self._loss_real + (self.gamma * self._loss_real - self._loss_fake).abs()
        return loss, metrics

    def end_step(self, step: int) -> None:
        if self._loss_real is None:  # no D step yet (cannot happen in the trainer's order)
            return
        self._k = k_update(self._k, self._loss_real, self._loss_fake, self.gamma, self.lambda_k)

    def state_dict(self) -> dict:
        return {"k": self.k}

    def load_state_dict(self, state: dict) -> None:
        self.k = float(state["k"])
