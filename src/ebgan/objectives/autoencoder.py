"""A plain autoencoder: EBGAN's discriminator trained on real data alone, the baseline of
``ebgan anomaly``.

    L_D(x) = D(x) = || Dec(Enc(x)) - x ||      (the same energy as EBGAN, eq. 13; no hinge)

There is no adversarial term: the generator is never run or trained and stays at its
initialisation (the trainer still builds it, so runs look like any other run). The only
difference from EBGAN is the missing [m - D(G(z))]^+ term, which is what the anomaly
comparison measures.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn

from ebgan.objectives.base import Metrics, Objective, Option
from ebgan.objectives.ebgan import ENERGY_OPTION, reconstruction_energy


class Autoencoder(Objective):
    name = "autoencoder"
    discriminator_kind = "autoencoder"
    trains_generator = False
    options: ClassVar[tuple[Option, ...]] = (ENERGY_OPTION,)

    def __init__(self, energy: str = "l2"):
        self.check_options(energy=energy)
        self.energy_kind = energy

    def energy(self, D: nn.Module, x: torch.Tensor) -> torch.Tensor:
        recon, _ = D(x)
        return reconstruction_energy(x, recon, self.energy_kind)

    def discriminator_loss(self, D, real, fake) -> tuple[torch.Tensor, Metrics]:
        e_real = self.energy(D, real)
        loss = e_real.mean()
        return loss, {"loss_d": loss.detach(), "energy_real": e_real.detach().mean()}
