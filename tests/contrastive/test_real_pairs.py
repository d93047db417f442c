"""On real images the siamese model learns within a few dozen steps (the first attempt's random data could not)."""

from __future__ import annotations

import pytest
import torch

from ebgan.contrastive import ContrastiveConfig, ContrastiveTrainer, evaluation_data
from ebgan.contrastive.evaluate import best_threshold, embeddings, verification_accuracy
from ebgan.contrastive.losses import pair_energy
from ebgan.contrastive.pairs import eval_pairs


@pytest.mark.slow
@pytest.mark.realdata("fashion-mnist")
def test_a_short_margin_run_on_fashion_mnist_verifies_test_pairs(data_root):
    cfg = ContrastiveConfig(
        data_root=str(data_root), width=8, batch_size=32, steps=60, device="cpu", log_every=60
    ).resolve()
    data = evaluation_data(cfg, cfg.val_fraction)
    trainer = ContrastiveTrainer(cfg, data.train)
    trainer.train(progress=False)
    trainer.encoder.eval()
    energy = pair_energy(cfg.loss)
    scores = {}
    for part, seed in (("val", 0), ("test", 1)):
        images, labels = getattr(data, part).images[:2000], getattr(data, part).labels[:2000]
        e = embeddings(trainer.embed, images, "cpu")
        i, j, same = eval_pairs(labels, 1000, seed, part)
        scores[part] = (energy(e[i], e[j]).numpy(), same.numpy())
    threshold, _ = best_threshold(*scores["val"])
    assert verification_accuracy(*scores["test"], threshold) > 0.8  # chance is 0.5
    assert torch.isfinite(trainer.encoder.head.weight).all()
