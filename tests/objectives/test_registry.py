"""The objective registry: an objective is its file plus one registry line, nothing in config.py."""

from __future__ import annotations

import pytest
import torch
from tests.conftest import synthetic_images

from ebgan.cli import main
from ebgan.config import Config
from ebgan.errors import EbganError
from ebgan.objectives import (
    OBJECTIVES,
    Objective,
    Option,
    all_options,
    register_objective,
)
from ebgan.objectives.base import at_least
from ebgan.train import Trainer


class LeastSquares(Objective):
    """LSGAN (Mao et al. 2017), written here the way a user would add an objective."""

    name = "test-lsgan"
    discriminator_kind = "critic"
    options = (Option("target", float, 1.0, "label of real samples", check=at_least(0)),)

    def __init__(self, target: float = 1.0):
        self.target = target

    def discriminator_loss(self, D, real, fake):
        loss = 0.5 * ((D(real) - self.target) ** 2).mean() + 0.5 * (D(fake) ** 2).mean()
        return loss, {"loss_d": loss.detach()}

    def generator_loss(self, D, fake):
        loss = 0.5 * ((D(fake) - self.target) ** 2).mean()
        return loss, {"loss_g": loss.detach()}


@pytest.fixture
def lsgan():
    register_objective(LeastSquares)
    yield LeastSquares
    OBJECTIVES.pop(LeastSquares.name)


def test_a_new_objective_trains_from_its_own_options(lsgan):
    cfg = Config(
        objective="test-lsgan",
        target=0.5,
        model="mlp",
        image_size=16,
        latent_dim=4,
        batch_size=8,
        steps=2,
        model_args={"n_layer_g": 2, "size_g": 16, "n_layer_d": 2, "size_d": 16},
    ).resolve()
    assert cfg.options == {"target": 0.5}
    trainer = Trainer(cfg, synthetic_images(32, size=16))
    assert isinstance(trainer.objective, LeastSquares) and trainer.objective.target == 0.5
    before = [p.clone() for p in trainer.G.parameters()]
    trainer.train(progress=False)
    assert trainer.step == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.G.parameters()))


def test_its_options_are_checked_and_refused_elsewhere(lsgan):
    with pytest.raises(EbganError, match="target must be >= 0 \\(objective 'test-lsgan'\\)"):
        Config(objective="test-lsgan", model="mlp", target=-1.0).resolve()
    with pytest.raises(EbganError, match="objective 'ebgan-pt' does not use target"):
        Config(target=0.5).resolve()
    with pytest.raises(EbganError, match="target must be a number"):
        Config(objective="test-lsgan", target="high")


def test_its_options_become_flags_with_help(lsgan, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--target" in out and "[test-lsgan] label of real samples" in out


def test_every_builtin_option_has_help_and_a_declared_type():
    for key, owners in all_options().items():
        for name, opt in owners:
            assert opt.help, f"{name}.{key} has no help"
            assert opt.type is owners[0][1].type, f"{key} has two types"
            assert opt.default is None or isinstance(opt.default, opt.type), (name, key)


def test_unregistered_name_is_a_suggestion():
    with pytest.raises(EbganError, match="did you mean 'wgan-gp'"):
        Config(objective="wgan_gp").resolve()
