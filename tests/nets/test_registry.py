"""The network-family registry: a family is its module plus one registry line."""

from __future__ import annotations

import math
import types

import pytest
import torch
import torch.nn as nn
from tests.conftest import synthetic_images

from ebgan.config import Config
from ebgan.errors import EbganError
from ebgan.nets import _LOADED, FAMILIES, register_family
from ebgan.train import Trainer


def _tiny_family() -> types.ModuleType:
    """A linear G and a linear autoencoder D, written as a user's module would be."""
    mod = types.ModuleType("tiny_family")
    mod.ARGS = {"hidden": 8}

    class Generator(nn.Module):
        def __init__(self, latent_dim, image_shape, hidden=8):
            super().__init__()
            self.latent_dim, self.image_shape = latent_dim, tuple(image_shape)
            self.net = nn.Sequential(nn.Linear(latent_dim, math.prod(image_shape)), nn.Tanh())

        def forward(self, z):
            return self.net(z).view(-1, *self.image_shape)

    class AutoencoderDiscriminator(nn.Module):
        def __init__(self, image_shape, hidden=8):
            super().__init__()
            self.enc, self.dec = nn.Linear(math.prod(image_shape), hidden), nn.Linear(hidden, math.prod(image_shape))

        def forward(self, x):
            h = self.enc(x.flatten(1))
            return self.dec(h).view_as(x), h

    mod.Generator, mod.AutoencoderDiscriminator = Generator, AutoencoderDiscriminator
    return mod


@pytest.fixture
def tiny():
    register_family("test-tiny", _tiny_family())
    yield
    FAMILIES.pop("test-tiny")
    _LOADED.pop("test-tiny")


def test_a_registered_family_trains_and_takes_its_options(tiny):
    cfg = Config(
        model="test-tiny", model_args={"hidden": 4}, image_size=16, latent_dim=4, batch_size=8, steps=2
    ).resolve()
    trainer = Trainer(cfg, synthetic_images(32, size=16))
    assert trainer.D.enc.out_features == 4
    trainer.train(progress=False)
    assert trainer.step == 2 and all(torch.isfinite(p).all() for p in trainer.G.parameters())
    with pytest.raises(EbganError, match="has no option\\(s\\) \\['depth'\\]"):
        Config(model="test-tiny", model_args={"depth": 3}).resolve()
    with pytest.raises(EbganError, match="needs a critic discriminator; model 'test-tiny' has none"):
        Config(model="test-tiny", objective="gan").resolve()


def test_a_module_without_the_parts_is_refused():
    with pytest.raises(EbganError, match="must define ARGS, Generator"):
        register_family("broken", types.ModuleType("broken"))
    assert "broken" not in FAMILIES


def test_an_option_of_another_family_names_that_family():
    # model_args written for mlp in a config that forgot `model: mlp` (the default family is seed32)
    with pytest.raises(EbganError, match=r"has no option\(s\) \['size_g'\].*size_g is an option of mlp"):
        Config(model_args={"size_g": 16}).resolve()
    with pytest.raises(EbganError, match=r"embedding_dim is an option of .*; width is an option of began"):
        Config(model="mlp", model_args={"width": 4, "embedding_dim": 8}).resolve()
