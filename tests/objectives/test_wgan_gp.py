"""WGAN-GP: the penalty on critics whose gradient is known in closed form, BN refusal, smoke run."""

import pytest
import torch
import torch.nn as nn
from tests.conftest import synthetic_images

from ebgan.config import Config
from ebgan.errors import EbganError
from ebgan.nets import build_discriminator
from ebgan.objectives.wgan_gp import WGANGP, gradient_penalty
from ebgan.train import Trainer


class LinearCritic(nn.Module):
    """C(x) = w . x + b: grad_x C = w everywhere, so ||grad|| = ||w|| for every interpolate."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))
        self.b = nn.Parameter(torch.tensor(0.5))

    def forward(self, x):
        return x.flatten(1) @ self.w + self.b


class HalfSquareCritic(nn.Module):
    """C(x) = ||x||^2 / 2: grad_x C = x, so ||grad|| at xh is ||xh||."""

    def forward(self, x):
        return 0.5 * x.flatten(1).pow(2).sum(1)


def test_penalty_of_linear_critic():
    C = LinearCritic([2.0, 2.0, 1.0])  # ||w|| = 3 -> (3 - 1)^2 = 4 whatever the interpolates
    real, fake = torch.randn(4, 3), torch.randn(4, 3)
    gp, norms = gradient_penalty(C, real, fake)
    assert gp.item() == pytest.approx(4.0)
    assert norms.tolist() == pytest.approx([3.0] * 4)
    gp.backward()  # the penalty trains the critic: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    assert C.w.grad.tolist() == pytest.approx([2 * 2 * 2 / 3, 2 * 2 * 2 / 3, 2 * 2 * 1 / 3])


def test_penalty_uses_per_sample_norms_at_the_interpolates():
    real = torch.tensor([[6.0, 8.0], [2.0, 0.0]])
    fake = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    # eps 0.5 -> xh = (3, 4), norm 5 -> 16; eps 0 -> xh = 0, norm 0 -> 1; mean 8.5
    gp, norms = gradient_penalty(HalfSquareCritic(), real, fake, eps=torch.tensor([0.5, 0.0]))
    assert norms.tolist() == pytest.approx([5.0, 0.0])
    assert gp.item() == pytest.approx(8.5)


def test_losses_by_hand():
    C = LinearCritic([1.0, 0.0])  # ||w|| = 1: no penalty
    obj = WGANGP(gp_weight=10.0, n_critic=5)
    real = torch.tensor([[3.0, 0.0], [1.0, 5.0]])  # C = 3.5, 1.5 -> mean 2.5
    fake = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])  # C = 0.5, -0.5 -> mean 0
    loss_d, m = obj.discriminator_loss(C, real, fake)
    assert loss_d.item() == pytest.approx(0.0 - 2.5)
    assert m["wasserstein"].item() == pytest.approx(2.5)
    assert m["gradient_penalty"].item() == pytest.approx(0.0, abs=1e-12)
    loss_g, _ = obj.generator_loss(C, fake)
    assert loss_g.item() == pytest.approx(-0.0)
    C2 = LinearCritic([0.0, 3.0])  # ||w|| = 3: penalty 4, times 10
    real2 = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    loss_d, _ = obj.discriminator_loss(C2, real2, fake)  # C(fake) = 3.5, 0.5; C(real) = 3.5
    assert loss_d.item() == pytest.approx(2.0 - 3.5 + 40.0)
    assert obj.d_steps == 5


def test_zero_penalty_weight_is_refused():
    # Without the penalty nothing bounds the critic: L_D = E C(G(z)) - E C(x) -> -inf by scaling C.
    with pytest.raises(EbganError, match="gp_weight must be > 0"):
        Config(objective="wgan-gp", model="mlp", gp_weight=0.0).resolve()
    with pytest.raises(EbganError, match="gp_weight must be > 0"):
        WGANGP(gp_weight=0.0)


def test_batchnorm_critic_is_refused():
    C = build_discriminator("dcgan", "critic", (1, 16, 16), {"width_d": 4, "batchnorm_d": True})
    x = torch.randn(4, 1, 16, 16)
    with pytest.raises(EbganError, match="BatchNorm"):
        WGANGP().discriminator_loss(C, x, x)
    with pytest.raises(EbganError, match="batchnorm_d=false"):
        Config(objective="wgan-gp", model="dcgan", model_args={"batchnorm_d": True}).resolve()
    cfg = Config(objective="wgan-gp", model="dcgan").resolve()  # the default becomes a BN-free critic
    assert cfg.model_args["batchnorm_d"] is False
    with pytest.raises(EbganError, match="n_critic"):
        Config(objective="wgan-gp", model="mlp", n_critic=0).resolve()


def test_the_batchnorm_check_is_per_network_not_per_objective():
    """An objective that has passed one BN-free critic still refuses the next network it is given
    (a flag on the objective skipped every later check)."""
    objective, x = WGANGP(), torch.randn(4, 1, 16, 16)
    plain = build_discriminator("dcgan", "critic", (1, 16, 16), {"width_d": 4, "batchnorm_d": False})
    objective.discriminator_loss(plain, x, x)
    with_bn = build_discriminator("dcgan", "critic", (1, 16, 16), {"width_d": 4, "batchnorm_d": True})
    with pytest.raises(EbganError, match="BatchNorm"):
        objective.discriminator_loss(with_bn, x, x)


@pytest.mark.parametrize(
    "model,args",
    [("dcgan", {"width_g": 8, "width_d": 8}), ("mlp", {"n_layer_g": 2, "size_g": 32, "size_d": 32})],
)
def test_smoke_run(model, args):
    cfg = Config(
        objective="wgan-gp",
        model=model,
        model_args=args,
        n_critic=2,
        image_size=16,
        latent_dim=8,
        batch_size=8,
        steps=2,
        device="cpu",
        log_every=1,
        sample_every=0,
        checkpoint_every=0,
    ).resolve()
    data = synthetic_images(32, size=16)
    trainer = Trainer(cfg, data)
    metrics = trainer.train_step()
    assert trainer.batches.position == 16  # n_critic = 2 real batches per generator step
    assert all(torch.isfinite(v).all() for v in metrics.values())
    trainer.train(progress=False)
    assert trainer.step == 2
