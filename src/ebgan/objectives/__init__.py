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
    )


# name -> builder from a resolved Config
OBJECTIVES = {"ebgan-pt": _ebgan, "ebgan": _ebgan}


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
