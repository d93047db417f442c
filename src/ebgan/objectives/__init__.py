"""GAN objectives, one file each, behind one small interface (``base.Objective``)."""

from __future__ import annotations

import difflib

from ebgan.errors import EbganError
from ebgan.objectives.base import Objective
from ebgan.objectives.ebgan import (
    EBGAN,
    discriminator_hinge_loss,
    margin_in_units,
    pull_away,
    reconstruction_energy,
)


def _ebgan(cfg) -> Objective:
    return EBGAN(
        margin=cfg.margin,
        pt_weight=cfg.pt_weight,
        energy=cfg.energy,
        margin_schedule=cfg.margin_schedule,
        margin_decay_steps=cfg.margin_decay_steps,
        pretrain_steps=cfg.pretrain_steps,
    )


def _gan(cfg) -> Objective:
    from ebgan.objectives.gan import GAN

    return GAN(gan_loss=cfg.gan_loss, name=cfg.objective)


def _wgan_gp(cfg) -> Objective:
    from ebgan.objectives.wgan_gp import WGANGP

    return WGANGP(gp_weight=cfg.gp_weight, n_critic=cfg.n_critic)


def _began(cfg) -> Objective:
    from ebgan.objectives.began import BEGAN

    return BEGAN(gamma=cfg.gamma, lambda_k=cfg.lambda_k)


def _magan(cfg) -> Objective:
    from ebgan.objectives.magan import MAGAN

    return MAGAN(pretrain_steps=cfg.pretrain_steps, energy=cfg.energy)


def _autoencoder(cfg) -> Objective:
    from ebgan.objectives.autoencoder import Autoencoder

    return Autoencoder(energy=cfg.energy)


# name -> builder from a resolved Config
OBJECTIVES = {
    "ebgan-pt": _ebgan,
    "ebgan": _ebgan,
    "began": _began,
    "magan": _magan,
    "gan": _gan,
    "dcgan": _gan,  # the GAN loss on the dcgan networks (Radford et al. 2016)
    "wgan-gp": _wgan_gp,
    "autoencoder": _autoencoder,  # EBGAN's D on real data only: the anomaly baseline
}


def build_objective(cfg) -> Objective:
    if cfg.objective not in OBJECTIVES:
        close = difflib.get_close_matches(cfg.objective, OBJECTIVES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise EbganError(f"unknown objective {cfg.objective!r}{hint} Known: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[cfg.objective](cfg)


__all__ = [
    "EBGAN",
    "OBJECTIVES",
    "Objective",
    "build_objective",
    "discriminator_hinge_loss",
    "margin_in_units",
    "pull_away",
    "reconstruction_energy",
]
