"""MAGAN: the epoch-end margin rule, m_0 from autoencoder pretraining, resume of the margin."""

import math

import pytest
import torch
import torch.nn as nn
from tests.conftest import synthetic_images

from ebgan.config import Config
from ebgan.errors import EbganError
from ebgan.objectives.magan import MAGAN, margin_update
from ebgan.train import Trainer


class ScaledAE(nn.Module):
    """Reconstructs x as 0, so the L2 energy is ||x||: the test sets energies through x."""

    def forward(self, x):
        return torch.zeros_like(x), x.flatten(1)


def test_margin_rule_by_case():
    # all three conditions: real < m, real < fake, fake rose -> m = real
    assert margin_update(10.0, real_mean=4.0, fake_mean=6.0, prev_fake_mean=5.0) == 4.0
    assert margin_update(3.0, real_mean=4.0, fake_mean=6.0, prev_fake_mean=5.0) == 3.0  # real >= m
    assert margin_update(10.0, real_mean=7.0, fake_mean=6.0, prev_fake_mean=5.0) == 10.0  # real >= fake
    assert margin_update(10.0, real_mean=4.0, fake_mean=6.0, prev_fake_mean=6.5) == 10.0  # fake fell
    assert margin_update(10.0, real_mean=4.0, fake_mean=6.0, prev_fake_mean=math.inf) == 10.0  # first epoch


def _batch(energy: float, n: int = 2) -> torch.Tensor:
    return torch.tensor([energy, 0.0]).repeat(n, 1)  # L2 norm = energy


def test_epoch_end_uses_the_epoch_means_and_the_hinge_is_per_sample():
    obj = MAGAN(pretrain_steps=1)
    obj.margin = 10.0
    ae = ScaledAE()
    loss, _ = obj.discriminator_loss(ae, _batch(2.0), torch.tensor([[4.0, 0.0], [12.0, 0.0]]))
    assert loss.item() == pytest.approx(2.0 + (6.0 + 0.0) / 2)  # [10-4]^+ and [10-12]^+ per sample
    obj.end_epoch(0)  # fake mean 8, previous +inf: no change
    assert obj.margin == 10.0 and obj.prev_fake_mean == pytest.approx(8.0)
    obj.discriminator_loss(ae, _batch(3.0), _batch(8.5))
    obj.discriminator_loss(ae, _batch(5.0), _batch(9.5))
    obj.end_epoch(1)  # real mean 4 < 10, 4 < fake mean 9, 9 > 8 -> m = 4
    assert obj.margin == pytest.approx(4.0)
    obj.discriminator_loss(ae, _batch(3.0), _batch(9.5))
    obj.end_epoch(2)  # real 3 < 4 and < 9.5, fake rose 9 -> 9.5 -> m = 3
    assert obj.margin == pytest.approx(3.0)
    obj.end_step(100)  # no step-wise schedule
    assert obj.margin == pytest.approx(3.0)


def test_needs_pretraining():
    with pytest.raises(EbganError, match="pretrain_steps"):
        MAGAN(pretrain_steps=0)
    with pytest.raises(EbganError, match="pretrain_steps") as e:
        Config(objective="magan").resolve()
    assert "--pretrain-steps" in str(e.value)  # its default, 0, is not a value: the error names the flag to set


def _cfg(**kw):
    base = dict(
        objective="magan",
        model="dcgan",
        model_args={"width_g": 8, "width_d": 8},
        pretrain_steps=5,
        image_size=16,
        latent_dim=8,
        batch_size=8,
        steps=10,
        device="cpu",
        log_every=1,
        sample_every=0,
        checkpoint_every=0,
    )
    return Config(**{**base, **kw}).resolve()


def test_prepare_pretrains_on_real_data_and_sets_m0():
    data = synthetic_images(32, size=16)
    trainer = Trainer(_cfg(pretrain_steps=20), data)
    probe = trainer.batches.images[:16].float() / 127.5 - 1
    with torch.no_grad():
        before = trainer.objective.energy(trainer.D, probe).mean().item()
    trainer.objective.prepare(trainer)
    with torch.no_grad():
        after = trainer.objective.energy(trainer.D, probe).mean().item()
    m0 = trainer.objective.margin
    assert after < before  # the autoencoder learnt the data
    assert m0 == trainer.objective.initial_margin and 0 < m0 < before
    assert trainer.batches.position == 0 and not trainer.opt_d.state  # the run's own data order and optimizer untouched


def test_smoke_run_and_margin_survives_a_checkpoint(tmp_path):
    data = synthetic_images(32, size=16)  # 4 batches an epoch: the run crosses epoch ends
    cfg = _cfg()
    first = Trainer(cfg, data, run_dir=tmp_path / "a")
    first.train(steps=5, progress=False)  # stops in the middle of an epoch
    saved = first.objective.state_dict()
    resumed = Trainer(cfg, data, run_dir=tmp_path / "a", resume=True)
    assert resumed.objective.state_dict() == saved
    resumed.train(steps=10, progress=False)  # no pretraining on resume: step > 0
    straight = Trainer(cfg, data, run_dir=tmp_path / "b")
    straight.train(steps=10, progress=False)
    assert resumed.objective.state_dict() == straight.objective.state_dict()
    assert math.isfinite(straight.objective.margin) and straight.objective.margin > 0
    for a, b in zip(resumed.D.state_dict().values(), straight.D.state_dict().values()):
        assert torch.equal(a, b)
