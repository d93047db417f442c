"""BEGAN: the L1 and L2 energies, L_D and L_G by hand, k_t control and clipping, resume of k_t."""

import pytest
import torch
import torch.nn as nn
from tests.conftest import synthetic_images

from ebgan.config import Config
from ebgan.errors import EbganError
from ebgan.objectives.began import BEGAN, convergence, k_update, residual_energy
from ebgan.train import Trainer


class ZeroAE(nn.Module):
    """Reconstructs everything as 0, so L(v) = mean |v|."""

    def forward(self, x):
        return torch.zeros_like(x), x.flatten(1)


def test_residual_energy_is_a_per_sample_pixel_mean_of_the_power_eta():
    x = torch.zeros(2, 1, 2, 2)
    recon = torch.tensor([[1.0, -1.0, 2.0, 0.0], [4.0, 4.0, 4.0, 4.0]]).view(2, 1, 2, 2)
    assert residual_energy(x, recon).tolist() == pytest.approx([1.0, 4.0])  # (1+1+2+0)/4, 4
    assert residual_energy(x, recon, eta=2).tolist() == pytest.approx([1.5, 16.0])  # (1+1+4+0)/4, 16


def test_eta_picks_the_energy_and_rejects_other_powers():
    x = torch.full((1, 1, 2, 2), -3.0)  # ZeroAE: residual 3 everywhere
    assert BEGAN(eta=2).energy(ZeroAE(), x).item() == pytest.approx(9.0)
    assert BEGAN().energy(ZeroAE(), x).item() == pytest.approx(3.0)
    with pytest.raises(EbganError, match="eta"):
        BEGAN(eta=3)


def test_the_pull_away_variant_adds_f_pt_to_g_s_loss_and_leaves_k_to_the_energy():
    # ZeroAE: the code is the sample itself. Three samples with codes (1, 0), (0, 2), (1, 1):
    # L1 energies 1/2, 1, 1 (mean 5/6); squared cosines 0, 1/2, 1/2 per pair, so
    # f_PT = 2 (0 + 1/2 + 1/2) / (3 * 2) = 1/3 (eq. 14).
    obj = BEGAN(gamma=0.5, lambda_k=0.1, pull_away_weight=0.6)
    real = torch.full((3, 1, 1, 2), 2.0)  # L(x) = 2
    fake = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]).view(3, 1, 1, 2)
    obj.discriminator_loss(ZeroAE(), real, fake)
    loss_g, m = obj.generator_loss(ZeroAE(), fake)
    assert m["pull_away"].item() == pytest.approx(1 / 3)
    assert loss_g.item() == pytest.approx(5 / 6 + 0.6 / 3)
    assert m["convergence"].item() == pytest.approx(2.0 + abs(0.5 * 2.0 - 5 / 6))  # M: the energy alone
    obj.end_step(1)
    assert obj.k == pytest.approx(0.1 * (0.5 * 2.0 - 5 / 6))  # k: the energy alone
    plain_loss, plain = BEGAN(gamma=0.5, lambda_k=0.1).generator_loss(ZeroAE(), fake)
    assert "pull_away" not in plain and plain_loss.item() == pytest.approx(5 / 6)  # off by default: the paper's


def test_k_update_and_clipping():
    assert k_update(0.0, 1.0, 0.2, gamma=0.5, lambda_k=0.001) == pytest.approx(0.0003)  # 0.001 * (0.5 - 0.2)
    assert k_update(0.5, 1.0, 0.7, gamma=0.5, lambda_k=0.1) == pytest.approx(0.48)  # 0.5 + 0.1 * (0.5 - 0.7)
    assert k_update(0.0, 1.0, 3.0, gamma=0.5, lambda_k=0.001) == 0.0  # would be -0.0025
    assert k_update(0.9999, 10.0, 0.0, gamma=0.5, lambda_k=0.001) == 1.0  # would be 1.0049
    assert convergence(1.0, 0.2, 0.5) == pytest.approx(1.0 + 0.3)


def test_losses_and_k_step_by_hand():
    obj = BEGAN(gamma=0.5, lambda_k=0.1)
    assert obj.k == 0.0  # k_0 = 0
    obj.k = 0.25
    real = torch.full((2, 1, 2, 2), 2.0)  # L(x) = 2
    fake = torch.tensor([1.0, -1.0]).view(2, 1, 1, 1).expand(2, 1, 2, 2)  # L(G(z)) = 1
    loss_d, m = obj.discriminator_loss(ZeroAE(), real, fake)
    assert loss_d.item() == pytest.approx(2.0 - 0.25 * 1.0)
    assert m["k"].item() == pytest.approx(0.25)
    loss_g, m = obj.generator_loss(ZeroAE(), fake)
    assert loss_g.item() == pytest.approx(1.0)
    assert m["convergence"].item() == pytest.approx(2.0 + abs(0.5 * 2.0 - 1.0))
    obj.end_step(1)
    assert obj.k == pytest.approx(0.25 + 0.1 * (0.5 * 2.0 - 1.0))
    assert obj.state_dict()["k"] == obj.k and obj.state_dict()["lr_factor"] == 1.0


def test_bad_options_are_refused():
    with pytest.raises(EbganError, match="gamma"):
        BEGAN(gamma=0.0)
    with pytest.raises(EbganError, match="lambda_k"):
        Config(objective="began", lambda_k=-1).resolve()
    with pytest.raises(EbganError, match="margin_schedule"):
        Config(objective="began", margin_schedule="linear", margin_decay_steps=10).resolve()


def _cfg(**kw):
    base = dict(
        objective="began",
        model="dcgan",
        model_args={"width_g": 8, "width_d": 8, "embedding_dim": 4},
        image_size=16,
        latent_dim=8,
        batch_size=8,
        steps=6,
        lambda_k=0.05,
        device="cpu",
        log_every=1,
        sample_every=0,
        checkpoint_every=0,
    )
    return Config(**{**base, **kw}).resolve()


def test_smoke_run_keeps_k_in_unit_interval():
    trainer = Trainer(_cfg(), synthetic_images(32, size=16))
    ks = []
    for _ in range(6):
        metrics = trainer.train_step()
        assert all(torch.isfinite(v).all() for v in metrics.values())
        ks.append(trainer.objective.k)
    assert all(0.0 <= k <= 1.0 for k in ks) and any(k > 0 for k in ks)
    assert "convergence" in metrics and "k" in metrics


def test_k_survives_a_checkpoint(tmp_path):
    data = synthetic_images(32, size=16)
    cfg = _cfg()
    first = Trainer(cfg, data, run_dir=tmp_path / "a")
    first.train(steps=3, progress=False)
    k_at_3 = first.objective.k
    resumed = Trainer(cfg, data, run_dir=tmp_path / "a", resume=True)
    assert resumed.objective.k == k_at_3 and k_at_3 > 0
    resumed.train(steps=6, progress=False)
    straight = Trainer(cfg, data, run_dir=tmp_path / "b")
    straight.train(steps=6, progress=False)
    assert resumed.objective.k == straight.objective.k
    for a, b in zip(resumed.D.state_dict().values(), straight.D.state_dict().values()):
        assert torch.equal(a, b)


def test_learning_rate_decay_when_m_stalls_by_hand():
    obj = BEGAN(lr_decay_window=10, lr_decay_patience=2, lr_min_factor=0.25)
    seen = []
    for mean_m in (3.0, 2.0, 2.5, 2.4, 1.9, 2.0, 2.1, 2.2, 2.3, 2.4, 2.5):
        obj.end_window(mean_m)
        seen.append(obj.lr_factor)
    # new bests at 3.0, 2.0, 1.9; a second window without one halves (2.4, 2.1), never below 0.25 (2.3)
    assert seen == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.25]


def test_the_trainer_applies_the_factor_and_a_resume_keeps_it(tmp_path, monkeypatch):
    def halve_every_window(self, mean_m):
        self.lr_factor *= 0.5

    monkeypatch.setattr(BEGAN, "end_window", halve_every_window)
    cfg = _cfg(lr_decay_window=2, steps=4)
    trainer = Trainer(cfg, synthetic_images(32, size=16), run_dir=tmp_path / "run")
    trainer.train(progress=False)
    lrs = [g["lr"] for opt in (trainer.opt_g, trainer.opt_d) for g in opt.param_groups]
    assert lrs == [cfg.lr_g * 0.25, cfg.lr_d * 0.25]  # windows ended at steps 2 and 4
    resumed = Trainer(
        _cfg(lr_decay_window=2, steps=4), synthetic_images(32, size=16), run_dir=tmp_path / "run", resume=True
    )
    assert resumed.objective.lr_factor == 0.25
    assert [g["lr"] for opt in (resumed.opt_g, resumed.opt_d) for g in opt.param_groups] == lrs
