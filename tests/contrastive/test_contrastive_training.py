"""ContrastiveTrainer on the shared TrainingLoop: exact resume, run folder, export, divergence."""

from __future__ import annotations

import json
import math

import pytest
import torch
from tests.conftest import class_images

from ebgan.contrastive.config import ContrastiveConfig
from ebgan.contrastive.trainer import ContrastiveTrainer, load_encoder
from ebgan.data.sources import ImageData
from ebgan.errors import EbganError
from ebgan.train.loop import Diverged


def tiny_data(n: int = 40) -> ImageData:
    images, labels = class_images(n, classes=3, size=16)
    return ImageData(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).long(), "tiny", 3)


def tiny_cfg(**kw) -> ContrastiveConfig:
    base = dict(
        dataset="folder:unused",
        image_size=16,
        width=4,
        embedding_dim=8,
        batch_size=8,
        steps=6,
        log_every=1,
        checkpoint_every=0,
        device="cpu",
    )
    return ContrastiveConfig(**{**base, **kw}).resolve()


def _assert_same(a: ContrastiveTrainer, b: ContrastiveTrainer) -> None:
    for name in ("encoder", "loss_fn"):
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), f"{name}.{k} differs"
    oa, ob = a.opt.state_dict()["state"], b.opt.state_dict()["state"]
    assert oa.keys() == ob.keys()
    for i in oa:
        for k in oa[i]:
            assert torch.equal(oa[i][k], ob[i][k]), f"opt[{i}].{k} differs"
    assert a.step == b.step


@pytest.mark.parametrize(
    "kw",
    [
        dict(loss="margin"),  # BatchNorm buffers, every pair of the batch
        dict(loss="cosine-bce", batch_pairs="drawn"),  # learnt temperature and bias
        dict(loss="ntxent"),  # augmented views: the augmentation generator
    ],
)
def test_two_halves_with_resume_equal_one_run(tmp_path, kw):
    cfg, data = tiny_cfg(**kw), tiny_data()  # 5 batches per epoch: the run crosses an epoch
    whole = ContrastiveTrainer(cfg, data, run_dir=tmp_path / "whole")
    whole.train(progress=False)

    first = ContrastiveTrainer(cfg, data, run_dir=tmp_path / "halves")
    first.train(steps=3, progress=False)
    torch.manual_seed(12345)  # the global RNG as a new process would have it
    torch.rand(100)
    second = ContrastiveTrainer(cfg, data, run_dir=tmp_path / "halves", resume=True)
    assert second.step == 3
    second.train(progress=False)
    _assert_same(whole, second)
    # one line per step, no step twice
    steps = [json.loads(x)["step"] for x in (tmp_path / "halves" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_another_seed_trains_other_weights():
    # guards the test above against passing because nothing trains
    data = tiny_data()
    a = ContrastiveTrainer(tiny_cfg(), data)
    before = a.encoder.head.weight.clone()
    a.train(progress=False)
    b = ContrastiveTrainer(tiny_cfg(seed=1), data)
    b.train(progress=False)
    assert not torch.equal(a.encoder.head.weight, before)
    assert not torch.equal(a.encoder.head.weight, b.encoder.head.weight)


def test_a_resume_with_another_config_is_refused(tmp_path):
    from ebgan.errors import EbganError

    data = tiny_data()
    ContrastiveTrainer(tiny_cfg(), data, run_dir=tmp_path / "run").train(progress=False)
    with pytest.raises(EbganError, match=r"another config \(margin differ\)"):
        ContrastiveTrainer(tiny_cfg(margin=0.5), data, run_dir=tmp_path / "run", resume=True)
    ContrastiveTrainer(tiny_cfg(steps=8, log_every=2), data, run_dir=tmp_path / "run", resume=True)  # resumable keys


def test_the_exported_encoder_is_the_trained_one(tmp_path):
    data = tiny_data()
    trainer = ContrastiveTrainer(tiny_cfg(loss="cosine-bce"), data, run_dir=tmp_path / "run")
    trainer.train(progress=False)
    encoder, cfg, info = load_encoder(tmp_path / "run")
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    trainer.encoder.eval()
    assert torch.equal(encoder(x), trainer.encoder(x))
    assert cfg.loss == "cosine-bce" and info["step"] == 6
    assert info["loss"]["log_scale"] == pytest.approx(float(trainer.loss_fn.log_scale.detach()))
    assert not (tmp_path / "run" / "samples").exists()  # a contrastive run has no sample grids


def test_an_encoder_export_cut_between_its_two_files_is_refused_not_mislabelled(tmp_path, monkeypatch):
    """A kill after the weights and before encoder.json left step 6's encoder described as step 3's."""
    import ebgan.files

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    trainer = ContrastiveTrainer(tiny_cfg(steps=3), tiny_data(), run_dir=tmp_path / "run")
    trainer.train(progress=False)
    assert load_encoder(tmp_path / "run")[2]["step"] == 3
    monkeypatch.setattr(ebgan.files, "write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(steps=6, progress=False)
    with pytest.raises(EbganError, match="encoder.json does not describe .*encoder.safetensors"):
        load_encoder(tmp_path / "run")


def test_the_learnt_temperature_and_bias_train_and_the_fixed_ones_do_not():
    data = tiny_data()
    learnt = ContrastiveTrainer(tiny_cfg(loss="cosine-bce"), data)
    learnt.train(progress=False)
    assert float(learnt.loss_fn.bias.detach()) != 0.0
    assert float(learnt.loss_fn.log_scale.detach()) != pytest.approx(math.log(10.0), abs=1e-7)  # moved from its start
    fixed = ContrastiveTrainer(tiny_cfg(loss="cosine-bce", learn_temperature=False, temperature=1.0), data)
    fixed.train(progress=False)
    assert float(fixed.loss_fn.bias) == 0.0 and float(fixed.loss_fn.log_scale) == 0.0


def test_a_nan_loss_stops_training_with_the_learning_rate_named(tmp_path, monkeypatch):
    from ebgan.contrastive.losses import MarginLoss

    original = MarginLoss.forward

    def nan_at_second(self, *args, **kw):
        loss, m = original(self, *args, **kw)
        if getattr(self, "calls", 0) == 1:
            loss = loss * float("nan")
            m["loss"] = loss.detach()
        self.calls = getattr(self, "calls", 0) + 1
        return loss, m

    monkeypatch.setattr(MarginLoss, "forward", nan_at_second)
    trainer = ContrastiveTrainer(tiny_cfg(checkpoint_every=1), tiny_data(), run_dir=tmp_path / "run")
    with pytest.raises(
        Diverged, match=r"diverged at step 2: loss = nan; the last good checkpoint \(step 1\).*lr 0.001"
    ):
        trainer.train(progress=False)
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 1
