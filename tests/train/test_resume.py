"""Exact resume: 2N steps in one go == N steps, checkpoint, fresh process state, N more."""

import pytest
import torch
from tests.conftest import synthetic_images

from ebgan.config import Config
from ebgan.train import Trainer


def _cfg(**kw):
    base = dict(
        dataset="folder:unused",
        steps=6,
        batch_size=16,
        log_every=1,
        sample_every=0,
        checkpoint_every=0,
        latent_dim=8,
        device="cpu",
    )
    return Config(**{**base, **kw}).resolve()


def _assert_same_state(a: Trainer, b: Trainer):
    for name in ("G", "D"):
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), f"{name}.{k} differs"
    for name in ("opt_g", "opt_d"):
        sa, sb = getattr(a, name).state_dict()["state"], getattr(b, name).state_dict()["state"]
        for i in sa:
            for k in sa[i]:
                assert torch.equal(sa[i][k], sb[i][k]), f"{name}[{i}].{k} differs"
    assert a.objective.state_dict() == b.objective.state_dict()
    assert a.step == b.step


@pytest.mark.parametrize(
    "model, model_args",
    [
        ("seed32", {}),
        # dropout exercises the global RNG state; small widths keep it fast
        ("mlp", {"n_layer_g": 3, "size_g": 32, "n_layer_d": 3, "size_d": 32, "dropout_d": True}),
    ],
)
def test_two_halves_with_resume_equal_one_run(tmp_path, model, model_args):
    data = synthetic_images(40)  # 2 batches per epoch: the run crosses several epochs
    cfg = _cfg(model=model, model_args=model_args, margin_schedule="linear", margin_decay_steps=10)

    whole = Trainer(cfg, data, run_dir=tmp_path / "whole")
    whole.train(progress=False)

    first = Trainer(cfg, data, run_dir=tmp_path / "halves")
    first.train(steps=3, progress=False)
    # Scramble the global RNG as a new process would have it.
    torch.manual_seed(12345)
    torch.rand(100)
    second = Trainer(cfg, data, run_dir=tmp_path / "halves", resume=True)
    assert second.step == 3
    second.train(progress=False)

    _assert_same_state(whole, second)


def test_a_different_run_is_not_identical(tmp_path):
    # Guards the test above against passing vacuously (e.g. if nothing trained).
    data = synthetic_images(40)
    a = Trainer(_cfg(), data)
    a.train(progress=False)
    b = Trainer(_cfg(seed=1), data)
    b.train(progress=False)
    assert not torch.equal(a.G.project.weight, b.G.project.weight)
    before = Trainer(_cfg(), data)
    assert not torch.equal(a.G.project.weight, before.G.project.weight)


def test_a_metric_reported_on_some_steps_is_logged_at_its_value(tmp_path):
    # A hook reporting 6.0 on every third step only: the logged mean over a 6-step
    # interval must be 6.0 (its own two reports), not 12 / 6 = 2.0.
    import json

    trainer = Trainer(_cfg(log_every=6), synthetic_images(40), run_dir=tmp_path / "run")
    trainer.hooks.append(lambda t: {"sparse": 6.0} if t.step % 3 == 0 else None)
    trainer.train(progress=False)
    line = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert line["step"] == 6 and line["sparse"] == 6.0


def test_a_stop_between_log_lines_logs_the_same_lines_after_resume(tmp_path):
    """Stopped (SIGINT) at step 6 of 8 with a line every 4 steps: the resumed run's line at step 8
    averages steps 5-8 as the uninterrupted run's does, not only 7-8."""
    import json
    import signal

    from ebgan.train import Stopped

    def lines(folder):
        rows = [json.loads(r) for r in (folder / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k != "images_per_s"} for r in rows]  # a rate: wall-clock

    data, cfg = synthetic_images(40), _cfg(steps=8, log_every=4)
    Trainer(cfg, data, run_dir=tmp_path / "whole").train(progress=False)

    stopped = Trainer(cfg, data, run_dir=tmp_path / "halves")

    def stop_at_6(t):
        if t.step == 6:
            t._stop_signal = signal.SIGINT

    stopped.hooks.append(stop_at_6)
    with pytest.raises(Stopped):
        stopped.train(progress=False)
    torch.manual_seed(12345)
    Trainer(cfg, data, run_dir=tmp_path / "halves", resume=True).train(progress=False)

    whole, halves = lines(tmp_path / "whole"), lines(tmp_path / "halves")
    assert [r["step"] for r in whole] == [4, 8] == [r["step"] for r in halves]
    assert halves == whole
