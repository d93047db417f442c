"""MAGAN: margin adaptation for GANs (Wang, Cully, Chang & Demiris 2017, arXiv:1704.03817).

EBGAN's per-sample energy and hinge (EBGAN eqs. 1, 2, 13), with a margin that is set
from the data instead of tuned:

    L_D = mean_i D(x_i) + mean_i [m - D(G(z_i))]^+,    L_G = mean_i D(G(z_i))

- Before step 0 (``prepare``): D is pretrained as an autoencoder on real data for
  ``pretrain_steps`` (see ``ebgan.objectives.ebgan.pretrain_autoencoder``) and
  m_0 = the mean real energy under the pretrained D.
- At each epoch end (Algorithm 1): with S_x and S_G the mean real and fake energies
  seen by the D steps of the epoch, and S_G' that of the previous epoch,

      if S_x < m  and  S_x < S_G  and  S_G' < S_G:   m <- S_x

  i.e. the margin only goes down, and only when the fake energy rose while the real
  energy stayed below both the margin and the fake energy. S_G' = +inf before the first
  epoch, so the first epoch cannot lower m.

The margin, S_G' and the running sums of the current epoch are in ``state_dict``, so a
resume in the middle of an epoch takes the same decision as an uninterrupted run.
"""

from __future__ import annotations

import math

import torch

from ebgan.objectives.base import Metrics, Option
from ebgan.objectives.ebgan import EBGAN, ENERGY_OPTION, pretrain_autoencoder


def margin_update(margin: float, real_mean: float, fake_mean: float, prev_fake_mean: float) -> float:
    """The paper's epoch-end rule: the new margin (lowered to ``real_mean`` or unchanged)."""
    if real_mean < margin and real_mean < fake_mean and prev_fake_mean < fake_mean:
        return real_mean
    return margin


class MAGAN(EBGAN):
    name = "magan"
    options = (
        ENERGY_OPTION,
        Option(
            "pretrain_steps",
            int,
            0,
            "autoencoder steps on real data that set m_0 (e.g. 500)",
            check=lambda v: (
                None
                if v > 0
                else "must be > 0 (set --pretrain-steps, e.g. 500): MAGAN's first margin comes from pretraining"
            ),
        ),
    )

    @classmethod
    def resolve(cls, cfg) -> None:  # no margin schedule: the epoch-end rule moves m
        pass

    def __init__(self, pretrain_steps: int, energy: str = "l2"):
        self.check_options(pretrain_steps=pretrain_steps, energy=energy)
        super().__init__(margin=0.0, pt_weight=0.0, energy=energy)
        self.name = "magan"
        self.pretrain_steps = int(pretrain_steps)
        self.prev_fake_mean = math.inf
        self._reset_sums()

    def _reset_sums(self) -> None:
        self._sum_real, self._sum_fake, self._count = 0.0, 0.0, 0

    def prepare(self, trainer) -> None:
        self.initial_margin = self.margin = pretrain_autoencoder(trainer, self.pretrain_steps, self.energy)

    def discriminator_loss(self, D, real, fake) -> tuple[torch.Tensor, Metrics]:
        loss, metrics = super().discriminator_loss(D, real, fake)
        # Batch means weighted by batch size: every batch of the epoch has the same size.
        # Under torchrun the sums are the global batch's (every process keeps the same state).
        n = real.shape[0] * self.dist.world_size
        self._sum_real = self._sum_real + self.dist.mean(metrics["energy_real"]) * n
        self._sum_fake = self._sum_fake + self.dist.mean(metrics["energy_fake"]) * n
        self._count += n
        return loss, metrics

    def end_step(self, step: int) -> None:
        pass  # the margin moves at epoch ends only

    def end_epoch(self, epoch: int) -> None:
        if self._count == 0:
            return
        real_mean, fake_mean = float(self._sum_real) / self._count, float(self._sum_fake) / self._count
        self.margin = margin_update(self.margin, real_mean, fake_mean, self.prev_fake_mean)
        self.prev_fake_mean = fake_mean
        self._reset_sums()

    def state_dict(self) -> dict:
        return {
            "margin": self.margin,
            "initial_margin": self.initial_margin,
            "prev_fake_mean": self.prev_fake_mean,
            "sum_real": float(self._sum_real),
            "sum_fake": float(self._sum_fake),
            "count": self._count,
        }

    def load_state_dict(self, state: dict) -> None:
        self.margin, self.initial_margin = float(state["margin"]), float(state["initial_margin"])
        self.prev_fake_mean = float(state["prev_fake_mean"])
        self._sum_real, self._sum_fake, self._count = (
            float(state["sum_real"]),
            float(state["sum_fake"]),
            int(state["count"]),
        )
