"""ebgan.train.ema: the arithmetic of the average, on a model small enough to follow by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from ebgan.errors import EbganError
from ebgan.train.ema import EMA


def tiny() -> nn.Module:
    net = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    net[0].weight.data.fill_(1.0)
    return net


def test_average_by_hand():
    G = tiny()
    ema = EMA(G, decay=0.5, start=2)
    G[0].weight.data.fill_(3.0)
    ema.update(G, step=1)  # before start: a copy
    assert ema.model[0].weight.item() == 3.0
    G[0].weight.data.fill_(5.0)
    ema.update(G, step=2)  # 0.5 * 3 + 0.5 * 5
    assert ema.model[0].weight.item() == 4.0
    G[0].weight.data.fill_(0.0)
    ema.update(G, step=3)  # 0.5 * 4 + 0.5 * 0
    assert ema.model[0].weight.item() == 2.0


def test_buffers_are_copied_not_averaged():
    G = tiny()
    ema = EMA(G, decay=0.9)
    G[1].running_mean.fill_(7.0)
    G[1].num_batches_tracked.fill_(12)
    ema.update(G, step=5)
    assert ema.model[1].running_mean.item() == 7.0 and ema.model[1].num_batches_tracked.item() == 12
    assert ema.model[0].weight.item() == pytest.approx(1.0)  # unchanged weights stay where they were


def test_ema_model_is_frozen_and_separate():
    G = tiny()
    ema = EMA(G, decay=0.99)
    assert not any(p.requires_grad for p in ema.model.parameters()) and not ema.model.training
    G[0].weight.data.fill_(2.0)
    assert ema.model[0].weight.item() == 1.0  # a copy, not a view


def test_state_round_trip_and_bad_values():
    G = tiny()
    a = EMA(G, decay=0.5)
    G[0].weight.data.fill_(9.0)
    a.update(G, 1)
    b = EMA(tiny(), decay=0.5)
    b.load_state_dict(a.state_dict())
    assert torch.equal(b.model[0].weight, a.model[0].weight)
    for decay, start in ((1.0, 0), (-0.1, 0), (0.5, -1)):
        with pytest.raises(EbganError):
            EMA(G, decay, start)
