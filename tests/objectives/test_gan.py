"""Vanilla GAN / DCGAN objective: BCE-with-logits losses on hand-computed logits, a smoke run."""

import math

import pytest
import torch
import torch.nn as nn
from tests.conftest import synthetic_images

from ebgan.config import Config
from ebgan.errors import EbganError
from ebgan.nets import build_discriminator
from ebgan.objectives.gan import GAN, discriminator_bce, generator_bce
from ebgan.train import Trainer

LN3 = math.log(3.0)


class SumCritic(nn.Module):
    """Logit = sum of the input's entries: the logit is whatever the test puts in."""

    def forward(self, x):
        return x.flatten(1).sum(1)


def test_discriminator_bce_by_hand():
    # softplus(-0) = ln 2, softplus(-ln 3) = ln(4/3); fake: softplus(0) = ln 2, softplus(-ln 3) = ln(4/3)
    loss = discriminator_bce(torch.tensor([0.0, LN3]), torch.tensor([0.0, -LN3]))
    assert loss.item() == pytest.approx(math.log(2) + math.log(4 / 3), rel=1e-6)


def test_generator_losses_by_hand():
    logits = torch.tensor([0.0, LN3])  # s = 1/2 and 3/4
    ns = generator_bce(logits, "non-saturating")  # -log s
    mm = generator_bce(logits, "minimax")  # log(1 - s)
    assert ns.item() == pytest.approx(-(math.log(0.5) + math.log(0.75)) / 2, rel=1e-6)
    assert mm.item() == pytest.approx((math.log(0.5) + math.log(0.25)) / 2, rel=1e-6)


def test_non_saturating_keeps_gradient_where_minimax_saturates():
    # D sure that G(z) is fake (logit -20): minimax gradient ~ s(l) ~ 2e-9, non-saturating ~ 1
    for kind, expected in (("non-saturating", -1.0), ("minimax", 0.0)):
        logit = torch.tensor([-20.0], requires_grad=True)
        generator_bce(logit, kind).backward()
        assert logit.grad.item() == pytest.approx(expected, abs=1e-6)
    assert torch.isfinite(generator_bce(torch.tensor([-200.0]))).all()  # logits, not probabilities


def test_objective_losses_and_metrics():
    obj = GAN()
    real = torch.tensor([[0.0], [LN3]])
    fake = torch.tensor([[0.0], [-LN3]])
    loss_d, m = obj.discriminator_loss(SumCritic(), real, fake)
    assert loss_d.item() == pytest.approx(math.log(8 / 3), rel=1e-6)
    assert m["d_real"].item() == pytest.approx((0.5 + 0.75) / 2)
    assert m["d_fake"].item() == pytest.approx((0.5 + 0.25) / 2)
    loss_g, _ = obj.generator_loss(SumCritic(), fake)
    assert loss_g.item() == pytest.approx((math.log(2) + math.log(4)) / 2, rel=1e-6)  # -log(1/2), -log(1/4)
    assert obj.energy(SumCritic(), real).tolist() == pytest.approx([0.0, -LN3])


def test_bad_options_are_refused():
    with pytest.raises(EbganError, match="gan_loss"):
        GAN(gan_loss="wasserstein")
    with pytest.raises(EbganError, match="needs a critic"):
        Config(objective="gan", model="seed32").resolve()
    with pytest.raises(EbganError, match="--model dcgan"):
        Config(objective="dcgan", model="mlp").resolve()
    with pytest.raises(EbganError, match="objective 'gan' does not use pt_weight"):
        Config(objective="gan", model="mlp", pt_weight=0.1).resolve()
    with pytest.raises(EbganError, match="objective 'ebgan-pt' does not use gp_weight"):
        Config(gp_weight=10.0).resolve()  # once silently kept


def test_mlp_critic_shape_and_dropout():
    C = build_discriminator("mlp", "critic", (1, 8, 8), {"n_layer_d": 3, "size_d": 16, "dropout_d": True})
    assert C(torch.randn(5, 1, 8, 8)).shape == (5,)
    assert sum(isinstance(m, nn.Dropout) for m in C.modules()) == 2
    assert sum(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for m in C.modules()) == 2
    # Dropout acts on hidden units, never on the pixels: in train mode the first linear layer sees
    # the image as it is, and each dropout directly follows a LeakyReLU.
    seen = []
    first = next(m for m in C.modules() if isinstance(m, nn.Linear))
    first.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0]))
    x = torch.randn(5, 1, 8, 8)
    C.train()(x)
    assert torch.equal(seen[0], x.flatten(1))
    layers = list(C.modules())
    assert all(isinstance(layers[i - 1], nn.LeakyReLU) for i, m in enumerate(layers) if isinstance(m, nn.Dropout))


@pytest.mark.parametrize(
    "objective,model,args",
    [
        ("gan", "mlp", {"n_layer_g": 2, "size_g": 32, "n_layer_d": 2, "size_d": 32, "dropout_d": True}),
        ("dcgan", "dcgan", {"width_g": 8, "width_d": 8}),
    ],
)
@pytest.mark.parametrize("gan_loss", ["non-saturating", "minimax"])
def test_smoke_run(objective, model, args, gan_loss):
    cfg = Config(
        objective=objective,
        model=model,
        model_args=args,
        gan_loss=gan_loss,
        image_size=16,
        latent_dim=8,
        batch_size=8,
        steps=3,
        device="cpu",
        log_every=1,
        sample_every=0,
        checkpoint_every=0,
    ).resolve()
    trainer = Trainer(cfg, synthetic_images(32, size=16))
    before = [p.clone() for p in trainer.G.parameters()]
    metrics = trainer.train_step()
    trainer.train(progress=False)
    assert trainer.step == 3
    assert all(torch.isfinite(v).all() for v in metrics.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.G.parameters()))
