"""BEGAN (Berthelot, Schumm & Metz 2017, arXiv:1703.10717), on any autoencoder discriminator.

    L(v)      = mean_pixels |v - AE(v)|^eta                     (eq. 1; eta = 1, L1, by default)
    L_D       = L(x) - k_t L(G(z_D))                            (eq. 4)
    L_G       = L(G(z_G))
    k_{t+1}   = clip(k_t + lambda_k (gamma L(x) - L(G(z_G))), 0, 1),  k_0 = 0
    M_global  = L(x) + |gamma L(x) - L(G(z_G))|                 (convergence measure, section 3.4.1)

L is per sample, then averaged over the batch. In the trainer's step order the k update
uses L(x) from the D step and L(G(z)) from the G step (the just-updated D scoring the
same G(z)), as in the paper's Algorithm with z_G. k_t is a float saved in ``state_dict``.

``pull_away_weight`` > 0 (off by default; not in the BEGAN paper) adds EBGAN's pull-away term on
D's code h to G's loss, L_G = L(G(z_G)) + w f_PT(h(G(z_G))) (Zhao et al. 2017, eq. 14); k is still
driven by L(G(z_G)) alone. BEGAN has no term that spreads G's samples, and on Fashion-MNIST G kept
either the garments or the footwear in every setting measured (README "Comparing objectives").

The authors decayed the learning rate when M stalled; here (``lr_decay_window`` > 0) both
learning rates are halved after ``lr_decay_patience`` windows without a new best mean M,
down to ``lr_min_factor`` of their start, and the decision state is checkpointed.
"""

from __future__ import annotations

import math

import torch

from ebgan.objectives.base import Metrics, Objective, Option, at_least
from ebgan.objectives.ebgan import pull_away


def residual_energy(x: torch.Tensor, recon: torch.Tensor, eta: int = 1) -> torch.Tensor:
    """Per-sample mean of |residual|^eta (eta 1: absolute, 2: squared), shape (N,), in float32."""
    residual = (recon.float() - x.float()).flatten(1)
    return (residual.abs() if eta == 1 else residual.square()).mean(dim=1)


def k_update(k, loss_real, loss_fake, gamma: float, lambda_k: float):
    """One step of proportional control of k, clipped to [0, 1] (eq. 4); floats or 0-d tensors."""
    k = k + lambda_k * (gamma * loss_real - loss_fake)
    return k.clamp(0.0, 1.0) if torch.is_tensor(k) else min(1.0, max(0.0, k))


def convergence(loss_real: float, loss_fake: float, gamma: float) -> float:
    """M_global = L(x) + |gamma L(x) - L(G(z))|."""
    return loss_real + abs(gamma * loss_real - loss_fake)


class BEGAN(Objective):
    name = "began"
    state_metrics = ("k", "lr_factor")
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
        Option(
            "pull_away_weight",
            float,
            0.0,
            "not in the BEGAN paper: weight of EBGAN's pull-away term on D's code, added to G's loss (0: off)",
            check=at_least(0),
        ),
        Option(
            "eta",
            int,
            1,
            "power of the per-pixel residual in the energy: 1 (absolute, L1) or 2 (squared, L2), the paper's eq. 1",
            check=lambda v: None if v in (1, 2) else "must be 1 or 2",
        ),
        Option(
            "lr_decay_window",
            int,
            0,
            "steps per window of mean M; halve both learning rates when M has not "
            "improved for lr_decay_patience windows (the authors' decay when M stalls); 0: off",
            check=at_least(0),
        ),
        Option("lr_decay_patience", int, 2, "windows without a new best M before a decay", check=at_least(1)),
        Option(
            "lr_min_factor",
            float,
            0.125,
            "the learning rates never fall below this share of their start "
            "(decaying too far is a known cause of late collapse)",
            check=lambda v: None if 0 < v <= 1 else "must be in (0, 1]",
        ),
    )

    def __init__(
        self,
        gamma: float = 0.5,
        lambda_k: float = 0.001,
        eta: int = 1,
        lr_decay_window: int = 0,
        lr_decay_patience: int = 2,
        lr_min_factor: float = 0.125,
        pull_away_weight: float = 0.0,
    ):
        self.check_options(
            gamma=gamma,
            lambda_k=lambda_k,
            eta=eta,
            lr_decay_window=lr_decay_window,
            lr_decay_patience=lr_decay_patience,
            lr_min_factor=lr_min_factor,
            pull_away_weight=pull_away_weight,
        )
        self.gamma, self.lambda_k, self.eta = float(gamma), float(lambda_k), int(eta)
        self.pull_away_weight = float(pull_away_weight)
        self.window, self.patience, self.min_factor = int(lr_decay_window), int(lr_decay_patience), lr_min_factor
        self.lr_factor = 1.0
        self._m_sum: torch.Tensor | float = 0.0  # sum of M over the current window (on the device: no sync)
        self.best_m, self.stalled = math.inf, 0
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
        return residual_energy(x, recon, self.eta)

    def discriminator_loss(self, D, real, fake) -> tuple[torch.Tensor, Metrics]:
        loss_real = self.energy(D, real).mean()
        loss_fake = self.energy(D, fake).mean()
        self._k = self._k.to(loss_real.device)
        loss = loss_real - self._k * loss_fake
        self._loss_real = self.dist.mean(loss_real.detach())  # the global batch's, under torchrun
        return loss, {
            "loss_d": loss.detach(),
            "energy_real": loss_real.detach(),
            "energy_fake": loss_fake.detach(),
            "k": self._k.clone(),
        }

    def generator_loss(self, D, fake) -> tuple[torch.Tensor, Metrics]:
        recon, code = D(fake)
        loss_fake = residual_energy(fake, recon, self.eta).mean()
        self._loss_fake = self.dist.mean(loss_fake.detach())  # k and M see the energy only
        loss = loss_fake
        metrics = {}
        if self.pull_away_weight > 0:
            pt = pull_away(self.dist.gather(code))  # over the global batch under torchrun
            loss = loss + self.pull_away_weight * pt
            metrics["pull_away"] = pt.detach()
        metrics["loss_g"] = loss.detach()
        if self._loss_real is not None:
            metrics["convergence"] = self._loss_real + (self.gamma * self._loss_real - self._loss_fake).abs()
            self._m_sum = self._m_sum + metrics["convergence"]
        metrics["lr_factor"] = torch.tensor(self.lr_factor)
        return loss, metrics

    def end_step(self, step: int) -> None:
        if self._loss_real is None:  # no D step yet (cannot happen in the trainer's order)
            return
        self._k = k_update(self._k, self._loss_real, self._loss_fake, self.gamma, self.lambda_k)
        if self.window and step % self.window == 0:
            self.end_window(float(self._m_sum) / self.window)
            self._m_sum = 0.0

    def end_window(self, mean_m: float) -> None:
        """A window's mean M: a new best resets the count; ``patience`` windows without one halve
        ``lr_factor`` (which the trainer applies to both learning rates), never below ``min_factor``."""
        if mean_m < self.best_m:
            self.best_m, self.stalled = mean_m, 0
            return
        self.stalled += 1
        if self.stalled >= self.patience:
            self.lr_factor = max(self.min_factor, self.lr_factor * 0.5)
            self.stalled = 0

    def state_dict(self) -> dict:
        return {
            "k": self.k,
            "lr_factor": self.lr_factor,
            "best_m": self.best_m,
            "stalled": self.stalled,
            "m_sum": float(self._m_sum),
        }

    def load_state_dict(self, state: dict) -> None:
        self.k = float(state["k"])
        self.lr_factor = float(state.get("lr_factor", 1.0))  # checkpoints of ebgan 0.1 have k only
        self.best_m, self.stalled = float(state.get("best_m", math.inf)), int(state.get("stalled", 0))
        self._m_sum = float(state.get("m_sum", 0.0))
