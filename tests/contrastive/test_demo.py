"""demo-random: the first attempt memorises random pairs and learns nothing, and the numbers it prints."""

from __future__ import annotations

import pytest

from ebgan.contrastive import demo
from ebgan.contrastive.losses import bce_floor


def test_random_pairs_are_memorised_at_the_floor_and_nothing_is_learnt():
    r = demo.random_pairs(seed=0, epochs=30)
    assert r["train_accuracy"] == 1.0  # 16 pairs memorised
    assert bce_floor() - 1e-6 <= r["train_loss"] < bce_floor() + 0.05  # yet the loss stays above the floor


def test_the_coin_interval_on_8_pairs():
    # P(2 <= X <= 6) for X ~ Binomial(8, 1/2) = (28 + 56 + 70 + 56 + 28) / 256
    assert demo.coin_range(8) == pytest.approx((0.25, 0.75, 238 / 256))


def test_the_report_explains_the_numbers():
    runs = {10: [{"train_accuracy": 0.75, "test_accuracy": 0.5, "train_loss": 0.56}]}
    out = demo.report(runs, None, "fashion-mnist", 200)
    assert "log(1 + e^-1) = 0.3133" in out and "[0.27, 0.73]" in out and "from 25% to 75%" in out
    assert "75.0%          50.0%      0.5600" in out


def test_the_report_says_below_the_floor_only_when_the_learnt_loss_is():
    """'the learnt scale and bias take it below that' was printed whatever the loss: after --steps 5 the
    learnt run's loss was 2.14, far above the 0.476 floor."""
    runs = {10: [{"train_accuracy": 0.75, "test_accuracy": 0.5, "train_loss": 0.56}]}

    def real(learnt_loss):
        run = {"test_verification_accuracy": 0.7, "test_accuracy_cos_positive": 0.7, "train_loss": 0.6}
        learnt = {**run, "train_loss": learnt_loss, "scale": 9.5, "bias": -0.05}
        return {"num_classes": 10, "floor": 0.4762, "cosine_logit": run, "learnt_temperature": learnt}

    assert "take it below that" in demo.report(runs, real(0.389), "fashion-mnist", 200)
    above = demo.report(runs, real(2.14), "fashion-mnist", 5)
    assert "take it below that" not in above and "have not brought it below that yet (after 5 steps)." in above
