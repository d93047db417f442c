"""ebgan.train.Trainer: the step order of objectives/base.py, epochs, cadence, signals."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from tests.conftest import synthetic_images
from tests.train.test_resume import _cfg

from ebgan.config import Config
from ebgan.errors import EbganError
from ebgan.objectives.base import Objective
from ebgan.train import Stopped, Trainer

FAST = dict(
    model="mlp",
    model_args={"n_layer_g": 2, "size_g": 16, "n_layer_d": 2, "size_d": 16},
    image_size=16,
    latent_dim=4,
    batch_size=8,
    log_every=1,
    sample_every=0,
    checkpoint_every=0,
)


class Recorder(Objective):
    """Records the calls the trainer makes, with a real (tiny) loss so optimizers can step."""

    name = "recorder"
    d_steps = 3

    def __init__(self):
        self.calls, self.fakes = [], []

    def discriminator_loss(self, D, real, fake):
        self.calls.append("D")
        self.fakes.append(fake)
        assert not fake.requires_grad  # G(z) reaches D's step detached
        recon, _ = D(real)
        return (recon - real).pow(2).mean(), {}

    def generator_loss(self, D, fake):
        self.calls.append("G")
        assert fake.requires_grad and torch.equal(fake.detach(), self.fakes[-1])  # the last D step's G(z)
        self.d_grads_before = [p.grad for p in D.parameters()]
        recon, _ = D(fake)
        return (recon - fake).pow(2).mean(), {}

    def end_step(self, step):
        self.calls.append(f"end{step}")

    def end_epoch(self, epoch):
        self.calls.append(f"epoch{epoch}")


def test_d_steps_then_one_g_step_on_the_last_fake_and_epoch_ends():
    trainer = Trainer(Config(steps=4, **FAST).resolve(), synthetic_images(40, size=16))
    trainer.objective = rec = Recorder()
    d_before = [p.clone() for p in trainer.D.parameters()]
    trainer.train(progress=False)
    # 40 images, batch 8: 5 batches per epoch; 3 D batches per iteration -> epochs end after batches 5, 10
    assert rec.calls == [
        "D",
        "D",
        "D",
        "G",
        "end1",
        "D",
        "D",
        "epoch0",
        "D",
        "G",
        "end2",  # 5th batch: epoch 0 ends
        "D",
        "D",
        "D",
        "G",
        "end3",
        "D",
        "epoch1",
        "D",
        "D",
        "G",
        "end4",
    ]  # 10th batch: epoch 1 ends
    assert trainer.batches.position == (12 - 10) * 8 and trainer.batches.epoch == 2  # 2 batches into epoch 2
    assert any(not torch.equal(a, b) for a, b in zip(d_before, trainer.D.parameters()))


def test_the_g_step_gives_d_no_gradient():
    trainer = Trainer(Config(steps=1, **FAST).resolve(), synthetic_images(40, size=16))
    trainer.objective = rec = Recorder()
    grads = {}

    def spy(self, D, fake):
        loss, m = Recorder.generator_loss(self, D, fake)
        grads["D"] = [p.requires_grad for p in D.parameters()]
        return loss, m

    rec.generator_loss = spy.__get__(rec)
    trainer.train(progress=False)
    assert grads["D"] and not any(grads["D"])
    assert all(p.requires_grad for p in trainer.D.parameters())  # restored for the next D step


def test_cadence_of_checkpoints_and_samples(tmp_path):
    cfg = Config(steps=5, **{**FAST, "checkpoint_every": 2, "sample_every": 3}).resolve()
    saved = []
    trainer = Trainer(cfg, synthetic_images(40, size=16), run_dir=tmp_path / "run")
    original = trainer.save
    trainer.save = lambda: (saved.append(trainer.step), original())[1]
    trainer.train(progress=False)
    assert saved == [2, 4, 5]  # every 2 steps, and at the end
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == ["step_000003.png", "step_000005.png"]


def test_no_run_folder_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Trainer(Config(steps=2, **FAST).resolve(), synthetic_images(40, size=16)).train(progress=False)
    assert list(tmp_path.iterdir()) == []


def test_sigterm_checkpoints_and_stops(tmp_path):
    trainer = Trainer(Config(steps=100, **FAST).resolve(), synthetic_images(40, size=16), run_dir=tmp_path / "run")
    trainer.hooks.append(lambda tr: os.kill(os.getpid(), signal.SIGTERM) if tr.step == 3 else None)
    with pytest.raises(Stopped) as stopped:
        trainer.train(progress=False)
    assert stopped.value.step == 3 and stopped.value.signum == signal.SIGTERM
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 3


def test_latent_uniform_trains_on_and_exports_u_minus1_1(tmp_path):
    from ebgan.generator_io import load_generator

    mlp = {"n_layer_g": 2, "size_g": 16, "n_layer_d": 2, "size_d": 16}
    cfg = _cfg(model="mlp", model_args=mlp, latent="uniform", batch_size=8, steps=2)
    trainer = Trainer(cfg, synthetic_images(32), run_dir=tmp_path / "run")
    z = trainer.sample_z(4000)
    assert z.min() >= -1 and z.max() <= 1 and z.min() < -0.99 and z.max() > 0.99  # not N(0, I)
    assert trainer.fixed_z.abs().max() <= 1
    trainer.train(progress=False)
    assert load_generator(tmp_path / "run").latent == "uniform"
    with pytest.raises(EbganError, match="latent must be one of normal, uniform"):
        _cfg(latent="gaussian")
