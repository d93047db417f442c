"""EBGAN margin schedules: constant, linear decay, and the automatic start from pretraining."""

import pytest
import torch
from tests.conftest import synthetic_images

from ebgan.config import Config
from ebgan.errors import EbganError
from ebgan.objectives import EBGAN
from ebgan.train import Trainer
from ebgan.train.run_dir import read_metrics


def test_constant_and_linear():
    const = EBGAN(margin=10.0)
    const.end_step(500)
    assert const.margin == 10.0
    lin = EBGAN(margin=16.0, margin_schedule="linear", margin_decay_steps=100)
    for step, expected in ((0, 16.0), (25, 12.0), (50, 8.0), (100, 0.0), (150, 0.0)):
        lin.end_step(step)
        assert lin.margin == pytest.approx(expected)


def test_bad_schedules_are_refused():
    with pytest.raises(EbganError, match="margin_schedule"):
        EBGAN(margin=10.0, margin_schedule="cosine")
    with pytest.raises(EbganError, match="pretrain_steps"):
        EBGAN(margin=10.0, margin_schedule="auto")
    with pytest.raises(EbganError, match="pretrain_steps"):
        Config(objective="ebgan", margin_schedule="auto").resolve()


def _cfg(**kw):
    base = dict(
        objective="ebgan-pt",
        margin_schedule="auto",
        pretrain_steps=10,
        image_size=16,
        latent_dim=8,
        model="dcgan",
        model_args={"width_g": 8, "width_d": 8},
        batch_size=8,
        steps=6,
        device="cpu",
        log_every=1,
        sample_every=0,
        checkpoint_every=0,
    )
    return Config(**{**base, **kw}).resolve()


def test_auto_starts_from_the_pretrained_real_energy():
    data = synthetic_images(32, size=16)
    trainer = Trainer(_cfg(), data)
    assert trainer.cfg.margin is None  # auto: no configured margin, pretraining sets it
    trainer.train(steps=1, progress=False)
    m0 = trainer.objective.initial_margin
    assert trainer.objective.margin == m0 != pytest.approx(10.0)
    # m_0 is a real energy: an independent re-run of the same pretraining gives the same value
    again = Trainer(_cfg(), data)
    again.objective.prepare(again)
    assert again.objective.margin == m0
    trainer.train(steps=4, progress=False)
    assert trainer.objective.margin == m0  # constant after the start


def test_auto_with_decay():
    trainer = Trainer(_cfg(margin_decay_steps=4), synthetic_images(32, size=16))
    trainer.train(steps=2, progress=False)
    m0 = trainer.objective.initial_margin
    assert trainer.objective.margin == pytest.approx(m0 * (1 - 2 / 4))


def test_auto_margin_survives_resume_without_pretraining_again(tmp_path):
    data = synthetic_images(32, size=16)
    first = Trainer(_cfg(), data, run_dir=tmp_path / "a")
    first.train(steps=3, progress=False)
    resumed = Trainer(_cfg(), data, run_dir=tmp_path / "a", resume=True)
    assert resumed.objective.state_dict() == first.objective.state_dict()
    resumed.train(steps=6, progress=False)
    straight = Trainer(_cfg(), data, run_dir=tmp_path / "b")
    straight.train(steps=6, progress=False)
    assert resumed.objective.margin == straight.objective.margin
    for a, b in zip(resumed.G.state_dict().values(), straight.G.state_dict().values()):
        assert torch.equal(a, b)


def test_the_logged_margin_is_the_one_in_force_at_the_logged_step(tmp_path):
    # Linear from 10 to 0 over 20 steps: step s trains with m = 10 (1 - (s - 1) / 20), so the log
    # lines at steps 5 and 10 must read 8.0 and 5.5 -- not the window means 9.0 and 6.5, which
    # would put a MAGAN margin that jumps mid-window at a value it never had.
    cfg = _cfg(margin_schedule="linear", margin=10.0, margin_decay_steps=20, pretrain_steps=0, log_every=5, steps=10)
    Trainer(cfg, synthetic_images(32, size=16), run_dir=tmp_path).train(progress=False)
    logged = {row["step"]: row["margin"] for row in read_metrics(tmp_path)}
    assert logged == pytest.approx({5: 8.0, 10: 5.5})
