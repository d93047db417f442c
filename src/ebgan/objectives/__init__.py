"""GAN objectives, one file each, behind one small interface (``base.Objective``).

Adding an objective: its file (a subclass of ``Objective`` declaring ``name`` and
``options``) and one line in ``BUILTIN`` below; from outside the package,
``register_objective(cls)``. Config resolution, the CLI flags and their help all read
this registry.
"""

from __future__ import annotations

import difflib

from ebgan.errors import EbganError
from ebgan.objectives.autoencoder import Autoencoder
from ebgan.objectives.base import Objective, Option
from ebgan.objectives.began import BEGAN
from ebgan.objectives.ebgan import (
    EBGAN,
    EBGANPT,
    discriminator_hinge_loss,
    margin_in_units,
    pull_away,
    reconstruction_energy,
)
from ebgan.objectives.gan import DCGAN, GAN
from ebgan.objectives.magan import MAGAN
from ebgan.objectives.regularised_autoencoders import (
    ContractiveAutoencoder,
    DenoisingAutoencoder,
    SparseAutoencoder,
)
from ebgan.objectives.scalar_energies import ContrastiveDivergence, DenoisingScoreMatching, GridLikelihood
from ebgan.objectives.wgan_gp import WGANGP

BUILTIN: tuple[type[Objective], ...] = (
    EBGANPT,  # the default
    EBGAN,
    BEGAN,
    MAGAN,
    GAN,
    DCGAN,
    WGANGP,
    Autoencoder,  # EBGAN's D on real data only: the anomaly baseline
    # energies shaped without a generator (LeCun's strategies; ebgan energy shapes, ebgan anomaly)
    DenoisingAutoencoder,
    SparseAutoencoder,
    ContractiveAutoencoder,
    DenoisingScoreMatching,
    ContrastiveDivergence,
    GridLikelihood,
)
OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(cls: type[Objective]) -> type[Objective]:
    """Make ``cls`` available as ``--objective cls.name`` (usable as a class decorator)."""
    if not cls.name:
        raise EbganError(f"{cls.__name__} has no name; set the class attribute 'name'")
    names = [o.name for o in cls.options]
    if len(set(names)) != len(names):
        raise EbganError(f"objective {cls.name!r} declares an option twice: {names}")
    OBJECTIVES[cls.name] = cls
    return cls


for _cls in BUILTIN:
    register_objective(_cls)


def objective_class(name: str) -> type[Objective]:
    if name not in OBJECTIVES:
        close = difflib.get_close_matches(name, OBJECTIVES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise EbganError(f"unknown objective {name!r}{hint} Known: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]


def all_options() -> dict[str, list[tuple[str, Option]]]:
    """Every option name of every registered objective -> [(objective, declaration), ...]."""
    out: dict[str, list[tuple[str, Option]]] = {}
    for name, cls in OBJECTIVES.items():
        for opt in cls.options:
            out.setdefault(opt.name, []).append((name, opt))
    return out


def build_objective(cfg) -> Objective:
    """The objective a resolved Config names, built from its options."""
    return objective_class(cfg.objective).from_config(cfg)


__all__ = [
    "EBGAN",
    "EBGANPT",
    "OBJECTIVES",
    "Objective",
    "Option",
    "all_options",
    "build_objective",
    "discriminator_hinge_loss",
    "margin_in_units",
    "objective_class",
    "pull_away",
    "reconstruction_energy",
    "register_objective",
]
