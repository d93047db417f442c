"""ebgan.train.ema: the arithmetic of the average, on a model small enough to follow by hand."""

from __future__ import annotations

import json

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


def test_trainer_with_ema_resumes_exactly_exports_it_and_says_so(tmp_path, capsys):
    from tests.conftest import synthetic_images

    from ebgan.cli import main
    from ebgan.config import Config
    from ebgan.generator_io import load_generator
    from ebgan.train import Trainer

    fast = dict(
        model="mlp",
        model_args={"n_layer_g": 2, "size_g": 16, "n_layer_d": 2, "size_d": 16},
        image_size=16,
        latent_dim=4,
        batch_size=8,
        log_every=1,
        sample_every=0,
        checkpoint_every=0,
        ema_decay=0.9,
        ema_start=2,
    )
    data = synthetic_images(40, size=16)
    straight = Trainer(Config(steps=6, **fast).resolve(), data, run_dir=tmp_path / "a")
    straight.train(progress=False)
    first = Trainer(Config(steps=3, **fast).resolve(), data, run_dir=tmp_path / "b")
    first.train(progress=False)
    resumed = Trainer(Config(steps=6, **fast).resolve(), data, run_dir=tmp_path / "b", resume=True)
    resumed.train(progress=False)
    for a, b in zip(straight.ema.model.state_dict().values(), resumed.ema.model.state_dict().values()):
        assert torch.equal(a, b)
    # the average differs from the raw generator, and the export is the average
    assert any(not torch.equal(a, b) for a, b in zip(straight.ema.model.parameters(), straight.G.parameters()))
    exported = load_generator(tmp_path / "a")
    for a, b in zip(exported.state_dict().values(), straight.ema.model.state_dict().values()):
        assert torch.equal(a, b)
    assert main(["sample", "--run", str(tmp_path / "a"), "--n", "4", "--out", str(tmp_path / "s.npz")]) == 0
    assert "ema (decay 0.9, from step 2) generator" in capsys.readouterr().out
    early = Trainer(Config(steps=1, **fast).resolve(), data, run_dir=tmp_path / "c")
    early.train(progress=False)  # stopped before ema_start: its "average" is the raw G
    spec = json.loads((tmp_path / "c" / "generator.json").read_text())
    assert spec["generator"] == "ema (decay 0.9, from step 2; so far a copy of the raw generator)"
