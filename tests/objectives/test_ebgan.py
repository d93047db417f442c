"""EBGAN's maths pinned line by line (paper eqs. 1, 2, 13, 14).

Every expected number is worked out by hand in a comment, or computed by an
independent formula in the test; none is copied from the code's output.
"""

import itertools
import math

import pytest
import torch
import torch.nn as nn

from ebgan.config import Config
from ebgan.errors import EbganError
from ebgan.objectives import (
    EBGAN,
    discriminator_hinge_loss,
    margin_in_units,
    pull_away,
    reconstruction_energy,
)


class FixedAutoencoder(nn.Module):
    """D(x) returns (W x, x): a linear reconstruction and the input itself as embedding."""

    def __init__(self, W: torch.Tensor):
        super().__init__()
        self.W = nn.Parameter(W.clone())

    def forward(self, x):
        flat = x.flatten(1)
        return (flat @ self.W.T).view_as(x), flat


# ---------------------------------------------------------------- energy (eq. 13)
def test_l2_energy_is_the_per_sample_norm_not_squared_nor_averaged():
    x = torch.zeros(2, 1, 2, 2)
    recon = torch.tensor([[3.0, 4.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]).view(2, 1, 2, 2)
    # sample 0: sqrt(9 + 16) = 5; sample 1: sqrt(4) = 2
    assert reconstruction_energy(x, recon, "l2").tolist() == pytest.approx([5.0, 2.0])
    assert reconstruction_energy(x, recon, "l2sq").tolist() == pytest.approx([25.0, 4.0])
    # mse: squared norm over 4 pixels
    assert reconstruction_energy(x, recon, "mse").tolist() == pytest.approx([25.0 / 4, 1.0])


def test_energy_is_nonnegative_and_zero_for_perfect_reconstruction():
    x = torch.randn(5, 3, 4, 4)
    assert torch.all(reconstruction_energy(x, x.clone()) == 0)
    assert torch.all(reconstruction_energy(x, torch.randn_like(x)) > 0)


def test_margin_conversion_between_units():
    # ||r|| = 10  <=>  ||r||^2 = 100  <=>  mean r^2 over 1x32x32 = 100 / 1024
    assert margin_in_units(10, "l2", (1, 32, 32)) == 10
    assert margin_in_units(10, "l2sq", (1, 32, 32)) == 100
    assert margin_in_units(10, "mse", (1, 32, 32)) == pytest.approx(100 / 1024)


# ---------------------------------------------------------------- D loss (eq. 1)
def test_hinge_is_taken_per_sample_then_averaged():
    e_real = torch.tensor([1.0, 2.0])
    e_fake = torch.tensor([5.0, 15.0])
    # mean real = 1.5; hinges: max(0, 10-5) = 5, max(0, 10-15) = 0 -> mean 2.5; total 4.0.
    # (A hinge on the batch-mean energy would give max(0, 10 - 10) = 0 -> 1.5.)
    assert discriminator_hinge_loss(e_real, e_fake, 10.0).item() == pytest.approx(4.0)


def test_discriminator_loss_and_metrics_through_the_objective():
    D = FixedAutoencoder(torch.zeros(4, 4))  # reconstructs 0, so D(x) = ||x||
    real = torch.tensor([[3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]).view(2, 1, 2, 2)  # energies 5, 1
    fake = torch.tensor([[0.0, 0.0, 6.0, 8.0], [2.0, 0.0, 0.0, 0.0]]).view(2, 1, 2, 2)  # energies 10, 2
    loss, m = EBGAN(margin=4.0).discriminator_loss(D, real, fake)
    # mean real 3; hinges max(0, 4-10) = 0, max(0, 4-2) = 2 -> mean 1; total 4
    assert loss.item() == pytest.approx(4.0)
    assert m["energy_real"].item() == pytest.approx(3.0)
    assert m["energy_fake"].item() == pytest.approx(6.0)
    assert m["hinge_active"].item() == pytest.approx(0.5)  # one of two fakes below the margin


def test_discriminator_gradient_pushes_fake_energy_up_only_inside_the_margin():
    # d/dW of the hinge is zero for a fake sample whose energy is already above m.
    W = torch.zeros(4, 4)
    real = torch.zeros(1, 1, 2, 2)  # energy 0 whatever W is
    far = torch.tensor([[0.0, 0.0, 6.0, 8.0]]).view(1, 1, 2, 2)  # energy 10 > m = 4
    D = FixedAutoencoder(W)
    loss, _ = EBGAN(margin=4.0).discriminator_loss(D, real, far)
    loss.backward()
    assert torch.count_nonzero(D.W.grad) == 0


# ---------------------------------------------------------------- pull-away (eq. 14)
def test_pull_away_hand_computed():
    S = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    # cos^2: (1,2) = 1/2, (1,3) = 0, (2,3) = (2 / (sqrt2 * 2))^2 = 1/2.
    # sum over ordered pairs i != j = 2 * (1/2 + 0 + 1/2) = 2; N(N-1) = 6 -> 1/3
    assert pull_away(S).item() == pytest.approx(1 / 3)


def test_pull_away_matches_an_explicit_double_loop():
    S = torch.randn(7, 5, dtype=torch.float64)
    total = 0.0
    for i, j in itertools.permutations(range(7), 2):
        total += (float(S[i] @ S[j]) / (float(S[i].norm()) * float(S[j].norm()))) ** 2
    assert pull_away(S).item() == pytest.approx(total / (7 * 6), rel=1e-5)


def test_pull_away_bounds_and_scale_invariance():
    v = torch.randn(1, 16)
    collapsed = v * torch.tensor([[1.0], [2.0], [0.5], [7.0]])  # same direction, different norms
    assert pull_away(collapsed).item() == pytest.approx(1.0, abs=1e-6)
    assert pull_away(torch.eye(8)).item() == pytest.approx(0.0, abs=1e-7)
    S = torch.randn(6, 10)
    scales = torch.rand(6, 1) * 10 + 0.1
    assert pull_away(S * scales).item() == pytest.approx(pull_away(S).item(), rel=1e-5)


def test_pull_away_needs_two_samples():
    with pytest.raises(EbganError, match="at least 2"):
        pull_away(torch.randn(1, 4))


# ---------------------------------------------------------------- G loss (eq. 2)
def test_generator_loss_value_with_pull_away():
    D = FixedAutoencoder(torch.zeros(2, 2))  # D(x) = ||x||, embedding = x
    fake = torch.tensor([[3.0, 4.0], [0.0, 1.0]])  # energies 5, 1; embeddings orthogonal? cos = 4/5
    loss, m = EBGAN(margin=10.0, pt_weight=0.1).generator_loss(D, fake)
    # mean energy 3; f_PT = (2 * (4/5)^2) / 2 = 0.64; total 3 + 0.1 * 0.64
    assert loss.item() == pytest.approx(3.064)
    assert m["pull_away"].item() == pytest.approx(0.64)


def test_generator_gradient_flows_through_the_target_too():
    # For a linear autoencoder A(x) = W x, d||Wx - x|| / dx = (W - I)^T r / ||r|| with r = Wx - x.
    # Detaching the target would give W^T r / ||r|| instead (the -I term lost).
    torch.manual_seed(1)
    W = torch.randn(3, 3, dtype=torch.float64)
    x = torch.randn(1, 3, dtype=torch.float64, requires_grad=True)
    loss, _ = EBGAN(margin=10.0).generator_loss(FixedAutoencoder(W).double(), x)
    loss.backward()
    with torch.no_grad():
        r = x @ W.T - x
        expected = (r / r.norm()) @ (W - torch.eye(3, dtype=torch.float64))
        detached_version = (r / r.norm()) @ W
    assert torch.allclose(x.grad, expected, atol=1e-10)
    assert not torch.allclose(x.grad, detached_version, atol=1e-3)


def test_generator_gradient_includes_pull_away_term():
    # With W = 0 and a batch whose energy gradient is radial, only f_PT can rotate samples.
    D = FixedAutoencoder(torch.zeros(2, 2))
    fake = torch.tensor([[1.0, 0.0], [1.0, 0.1]], requires_grad=True)
    loss, _ = EBGAN(margin=1.0, pt_weight=1.0).generator_loss(D, fake)
    loss.backward()
    radial = fake.detach() / fake.detach().norm(dim=1, keepdim=True)
    tangential = fake.grad - (fake.grad * radial).sum(1, keepdim=True) * radial
    assert tangential.abs().max() > 1e-3


# ---------------------------------------------------------------- margin schedule and config
def test_linear_margin_schedule_reaches_zero():
    obj = EBGAN(margin=16.0, margin_schedule="linear", margin_decay_steps=4)
    seen = []
    for step in range(1, 6):
        obj.end_step(step)
        seen.append(obj.margin)
    assert seen == [12.0, 8.0, 4.0, 0.0, 0.0]


def test_objective_names():
    assert EBGAN(margin=1, pt_weight=0.1).name == "ebgan-pt"
    assert EBGAN(margin=1).name == "ebgan"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"margin": -1.0}, "margin must be >= 0"),
        ({"batch_size": 1}, "batch of 1"),
        ({"objective": "ebgan", "pt_weight": 0.1}, "objective 'ebgan' does not use pt_weight"),
        ({"objective": "ebgan-pt", "pt_weight": 0.0}, "pt_weight must be > 0"),
        ({"objective": "ebgna"}, "unknown objective"),
        ({"energy": "l1"}, "energy must be one of l2, l2sq, mse"),
    ],
)
def test_config_rejects_bad_values(values, message):
    with pytest.raises(EbganError, match=message):
        Config(**values).resolve()


def test_config_rejects_unknown_keys_with_a_suggestion():
    with pytest.raises(EbganError, match="did you mean 'margin'"):
        Config.from_dict({"margni": 3})


def test_config_default_margin_is_the_papers_in_the_chosen_units():
    assert Config().resolve().margin == 10.0
    assert "pt_weight" not in Config(objective="ebgan").resolve().options
    assert Config().resolve().pt_weight == 0.1
    assert Config(energy="mse").resolve().margin == pytest.approx(100 / 1024)
    assert math.isclose(Config(energy="l2sq").resolve().margin, 100.0)


def test_default_margin_counts_the_channels_a_folder_loads_as():
    """A folder: dataset has no channel count of its own: it loads as RGB unless --channels 1, so the
    paper's 10 on ||r|| is 100 / (3 * 32 * 32) in mse units; the default took 1 channel there."""
    assert Config(dataset="folder:photos", energy="mse").resolve().margin == pytest.approx(100 / 3072)
    assert Config(dataset="folder:photos", energy="mse", channels=1).resolve().margin == pytest.approx(100 / 1024)
    assert Config(dataset="cifar10", energy="mse").resolve().margin == pytest.approx(100 / 3072)
