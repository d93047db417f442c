"""The original GAN (Goodfellow et al., NeurIPS 2014) with a logit discriminator.

    L_D = -E_x log s(D(x)) - E_z log(1 - s(D(G(z))))       (eq. 1, as binary cross-entropy)
    L_G = -E_z log s(D(G(z)))                              non-saturating (section 3)
    L_G =  E_z log(1 - s(D(G(z))))                         minimax (eq. 1)

with s the logistic sigmoid; every term is computed from logits (``softplus``), never
from probabilities, so nothing saturates numerically. The ``dcgan`` objective is the same
loss on the DCGAN networks (Radford et al. 2016).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ebgan.errors import EbganError
from ebgan.nets import DISCRIMINATOR_CLASSES, family
from ebgan.objectives.base import Metrics, Objective, Option

GAN_LOSSES = ("non-saturating", "minimax")


def discriminator_bce(logit_real: torch.Tensor, logit_fake: torch.Tensor) -> torch.Tensor:
    """BCE(D(x), 1) + BCE(D(G(z)), 0) = mean softplus(-l_real) + mean softplus(l_fake)."""
    return F.softplus(-logit_real.float()).mean() + F.softplus(logit_fake.float()).mean()


def generator_bce(logit_fake: torch.Tensor, kind: str = "non-saturating") -> torch.Tensor:
    """-log s(l) = softplus(-l) (non-saturating) or log(1 - s(l)) = -softplus(l) (minimax)."""
    if kind == "non-saturating":
        return F.softplus(-logit_fake.float()).mean()
    if kind == "minimax":
        return -F.softplus(logit_fake.float()).mean()
    raise EbganError(f"unknown gan_loss {kind!r}; use one of {GAN_LOSSES}")


class GAN(Objective):
    name = "gan"
    discriminator_kind = "critic"
    options = (
        Option(
            "gan_loss",
            str,
            "non-saturating",
            "generator loss: non-saturating (-log D(G(z))) or minimax",
            choices=GAN_LOSSES,
        ),
    )

    def __init__(self, gan_loss: str = "non-saturating"):
        self.check_options(gan_loss=gan_loss)
        self.gan_loss = gan_loss

    def energy(self, D, x: torch.Tensor) -> torch.Tensor:
        return -D(x).float()  # a high logit means "real", so low energy

    def discriminator_loss(self, D, real, fake) -> tuple[torch.Tensor, Metrics]:
        l_real, l_fake = D(real).float(), D(fake).float()
        loss = discriminator_bce(l_real, l_fake)
        return loss, {
            "loss_d": loss.detach(),
            "d_real": torch.sigmoid(l_real.detach()).mean(),  # D's probability that x is real
            "d_fake": torch.sigmoid(l_fake.detach()).mean(),
        }

    def generator_loss(self, D, fake) -> tuple[torch.Tensor, Metrics]:
        loss = generator_bce(D(fake), self.gan_loss)
        return loss, {"loss_g": loss.detach()}


class DCGAN(GAN):
    """The GAN loss on the DCGAN networks (Radford et al. 2016): the name pins the networks."""

    name = "dcgan"

    @classmethod
    def resolve(cls, cfg) -> None:
        if cfg.model != "dcgan":
            # --objective gan needs a critic, which seed32 and began do not have
            gan_too = hasattr(family(cfg.model), DISCRIMINATOR_CLASSES["critic"])
            raise EbganError(
                "objective 'dcgan' is the GAN loss on the dcgan networks; use --model dcgan"
                + (f" (or --objective gan with {cfg.model!r})" if gan_too else "")
            )
