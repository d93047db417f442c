"""The pair losses against values computed by hand, and the floor of the first attempt's BCE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ebgan.contrastive.losses import CosineBCE, MarginLoss, NTXent, bce_floor

SOFTPLUS_MINUS_1 = float(np.logaddexp(0.0, -1.0))  # log(1 + e^-1) = 0.31326..., numpy's own routine


def test_margin_loss_by_hand():
    e1 = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    e2 = torch.tensor([[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    same = torch.tensor([True, False, False])
    # pair 1 compatible, E = 1: E^2 = 1; pair 2 incompatible at E = 5 > m = 2: 0;
    # pair 3 incompatible at E = 0: (2 - 0)^2 = 4
    loss, m = MarginLoss(2.0)(e1, e2, same)
    assert loss.item() == pytest.approx(5 / 3, abs=1e-5)
    assert m["energy_pos"].item() == pytest.approx(1.0) and m["energy_neg"].item() == pytest.approx(2.5, abs=1e-5)
    # balanced: mean of the compatible (1) and of the incompatible ((0 + 4) / 2) pairs, weighed equally
    assert MarginLoss(2.0)(e1, e2, same, balanced=True)[0].item() == pytest.approx(0.5 * 1 + 0.5 * 2, abs=1e-5)


def test_margin_loss_has_a_finite_gradient_on_identical_embeddings():
    e = torch.ones(2, 3, requires_grad=True)
    loss, _ = MarginLoss(1.0)(e, e.detach().clone(), torch.tensor([True, False]))
    loss.backward()
    assert torch.isfinite(e.grad).all()


def test_ntxent_by_hand():
    # views: image 0 -> (1, 0) and (1, 0); image 1 -> (0, 1) and (-1, 0); tau = 1/2
    e1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    e2 = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    # z = [a=(1,0), b=(0,1), c=(1,0), d=(-1,0)]; cosines/tau to the three others, positive first:
    #   a: c 2, b 0, d -2    b: d 0, a 0, c 0    c: a 2, b 0, d -2    d: b 0, a -2, c -2
    la = -2 + math.log(math.exp(2) + 1 + math.exp(-2))
    lb = math.log(3)
    ld = math.log(1 + 2 * math.exp(-2))
    loss, m = NTXent(0.5)(e1, e2)
    assert loss.item() == pytest.approx((2 * la + lb + ld) / 4, abs=1e-6)
    assert m["energy_pos"].item() == pytest.approx((0 + 1 + 0 + 1) / 4)  # 1 - cos of (a,c), (b,d), (c,a), (d,b)
    # embeddings are normalised inside: scale changes nothing
    assert NTXent(0.5)(3 * e1, 0.5 * e2)[0].item() == pytest.approx(loss.item(), abs=1e-6)


def test_cosine_as_a_logit_costs_at_least_log_1_plus_e_minus_1_per_pair():
    fixed = CosineBCE(temperature=1.0, learn=False)
    u = torch.tensor([[1.0, 0.0]])
    # the best case: positive at cos = 1, negative at cos = -1
    assert fixed(u, u, torch.tensor([True]))[0].item() == pytest.approx(SOFTPLUS_MINUS_1, abs=1e-6)
    assert fixed(u, -u, torch.tensor([False]))[0].item() == pytest.approx(SOFTPLUS_MINUS_1, abs=1e-6)
    assert bce_floor() == pytest.approx(0.3132617, abs=1e-7)
    g = torch.Generator().manual_seed(0)
    e1, e2 = torch.randn(500, 4, generator=g), torch.randn(500, 4, generator=g)
    same = torch.rand(500, generator=g) < 0.5
    per_pair = F.binary_cross_entropy_with_logits(F.cosine_similarity(e1, e2), same.float(), reduction="none")
    assert per_pair.min().item() >= SOFTPLUS_MINUS_1 - 1e-6
    assert not list(fixed.parameters())  # nothing of the loss is learnt


def test_the_k_class_floor_is_reached_by_a_collapsed_simplex():
    # K classes collapsed onto the K vertices of a regular simplex (centred one-hot vectors): positives
    # at cos 1, every negative at cos -1/(K-1): balanced pairs then cost exactly the bound
    k = 10
    vertices = F.normalize(torch.eye(k) - 1 / k, dim=1)
    a, b = torch.meshgrid(torch.arange(k), torch.arange(k), indexing="ij")
    neg = a != b
    fixed = CosineBCE(1.0, learn=False)
    pos_loss = fixed(vertices, vertices, torch.ones(k, dtype=torch.bool))[0]
    neg_loss = fixed(vertices[a[neg]], vertices[b[neg]], torch.zeros(int(neg.sum()), dtype=torch.bool))[0]
    by_hand = (SOFTPLUS_MINUS_1 + float(np.logaddexp(0.0, -1 / (k - 1)))) / 2  # 0.47620
    assert ((pos_loss + neg_loss) / 2).item() == pytest.approx(by_hand, abs=1e-6)
    assert bce_floor(k) == pytest.approx(by_hand, abs=1e-12)


@pytest.mark.parametrize("learn", [False, True])
def test_a_learnt_temperature_goes_below_the_floor_the_fixed_one_cannot(learn):
    # two classes of free embeddings, every pair of them, balanced; Adam on embeddings and loss alike
    torch.manual_seed(0)
    e = torch.randn(12, 8, requires_grad=True)
    labels = torch.arange(12) % 2
    a, b = torch.triu_indices(12, 12, 1)
    loss_fn = CosineBCE(temperature=1.0, learn=learn)
    opt = torch.optim.Adam([e, *loss_fn.parameters()], lr=0.05)
    for _ in range(300):
        loss, _ = loss_fn(e[a], e[b], labels[a] == labels[b], balanced=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if learn:
        assert loss.item() < SOFTPLUS_MINUS_1 / 3  # far below the floor
    else:
        assert SOFTPLUS_MINUS_1 - 1e-6 <= loss.item() < SOFTPLUS_MINUS_1 + 0.01  # at the floor, never under it
