"""Mixed precision: which dtype --amp means where, fp16's gradient scalers resume exactly, and the
objectives that differentiate D with respect to its input refuse fp16."""

import pytest
import torch
from tests.conftest import synthetic_images
from tests.train.test_resume import _assert_same_state, _cfg

from ebgan.errors import EbganError
from ebgan.train import Trainer
from ebgan.train.trainer import amp_dtype

MLP = dict(model="mlp", model_args={"n_layer_g": 2, "size_g": 32, "n_layer_d": 2, "size_d": 32})


@pytest.mark.parametrize("native_bf16", [True, False])
def test_amp_dtype_per_device(monkeypatch, native_bf16):
    import ebgan.train.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda: native_bf16)
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert amp_dtype(False, "fp16", gpu) is None  # --amp off: no autocast whatever the dtype
    # auto: bf16 only on a CPU that computes it natively, float32 on the others
    assert amp_dtype(True, "auto", cpu) == (torch.bfloat16 if native_bf16 else None)
    assert amp_dtype(True, "auto", gpu) == torch.float16
    assert amp_dtype(True, "bf16", gpu) == torch.bfloat16
    assert amp_dtype(True, "bf16", cpu) == torch.bfloat16  # asked for: forced
    assert amp_dtype(True, "fp16", cpu) == torch.float16


def test_amp_without_native_bf16_says_it_trains_in_float32(monkeypatch, capsys):
    import ebgan.train.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda: False)
    trainer = Trainer(_cfg(**MLP, amp=True), synthetic_images(40))
    assert trainer.amp_dtype is None
    assert "trains in float32 here: this CPU has no native bf16" in capsys.readouterr().out


def test_fp16_trains_through_scalers_that_resume_exactly(tmp_path):
    data = synthetic_images(40)
    cfg = _cfg(**MLP, amp=True, amp_dtype="fp16", checkpoint_every=3)  # fp16 convolutions crawl on a CPU
    whole = Trainer(cfg, data, run_dir=tmp_path / "whole")
    whole.train(progress=False)
    assert whole.scaler_d.is_enabled() and whole.scaler_g.is_enabled()
    state = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    for name in ("scaler_d", "scaler_g"):
        # updated after each of the 6 steps: the scale (2**16 at first) halved on an overflow, or the
        # count of clean steps since the last one grew
        s = state[name]
        assert s["scale"] < 2.0**16 or s["_growth_tracker"] == 6, s
        assert s["scale"] == getattr(whole, name).get_scale()

    first = Trainer(cfg, data, run_dir=tmp_path / "halves")
    first.train(steps=3, progress=False)
    second = Trainer(cfg, data, run_dir=tmp_path / "halves", resume=True)
    second.train(progress=False)
    _assert_same_state(whole, second)
    assert second.scaler_d.state_dict() == whole.scaler_d.state_dict()

    fp32 = Trainer(_cfg(**MLP), data)
    fp32.train(progress=False)
    first_weight = next(iter(whole.G.parameters()))
    assert not torch.equal(next(iter(fp32.G.parameters())), first_weight)  # autocast did act


def test_a_run_resumes_only_in_its_own_precision(tmp_path):
    data = synthetic_images(40)
    Trainer(_cfg(model="seed32", steps=2, checkpoint_every=2), data, run_dir=tmp_path / "run").train(progress=False)
    cfg = _cfg(model="seed32", steps=4, amp=True, amp_dtype="fp16")
    with pytest.raises(EbganError, match=r"another config \(amp, amp_dtype differ\)"):
        Trainer(cfg, data, run_dir=tmp_path / "run", resume=True)


def test_a_run_moved_to_a_cpu_without_bf16_says_its_precision_changed(tmp_path, monkeypatch, capsys):
    """amp_dtype auto is bf16 on a CPU with native bf16 and float32 on one without: a run resumed on
    the other machine continues (the config is the same) but must say it is no longer exact."""
    import ebgan.train.trainer as trainer_module

    data = synthetic_images(40)
    cfg = _cfg(**MLP, amp=True, steps=4, checkpoint_every=2)
    monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda: True)
    Trainer(cfg, data, run_dir=tmp_path / "run").train(steps=2, progress=False)
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["precision"] == "bfloat16"
    capsys.readouterr()
    monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda: False)
    moved = Trainer(cfg, data, run_dir=tmp_path / "run", resume=True)
    out = capsys.readouterr().out
    assert moved.precision == "float32" and moved.step == 2
    assert "was trained in bfloat16; amp_dtype auto means float32 on this machine" in out
    assert "not be bit-identical" in out
    moved.train(progress=False)
    again = Trainer(cfg, data, run_dir=tmp_path / "run", resume=True)  # same machine: no note
    assert "was trained in" not in capsys.readouterr().out and again.step == 4


@pytest.mark.parametrize("objective", ["wgan-gp", "dsm", "contractive-ae"])
def test_input_gradient_objectives_refuse_fp16_but_not_bf16(objective):
    with pytest.raises(EbganError, match="underflows.*--amp-dtype bf16"):
        _cfg(model="mlp", objective=objective, amp=True, amp_dtype="fp16")
    _cfg(model="mlp", objective=objective, amp=True, amp_dtype="bf16")
    _cfg(model="mlp", objective=objective, amp_dtype="fp16")  # without --amp the dtype is unused


def test_unknown_amp_dtype_names_the_choices():
    with pytest.raises(EbganError, match="amp_dtype must be one of auto, bf16, fp16, got 'half'"):
        _cfg(amp_dtype="half")
