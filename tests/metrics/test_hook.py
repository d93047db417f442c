"""``--eval-every``: model selection on the run's own training images, never on an evaluation reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ebgan import Config, Trainer, load_training_data
from ebgan.data import to_uint8
from ebgan.errors import EbganError
from ebgan.generator_io import load_generator, sample_images
from ebgan.metrics.classifier import classify, load_classifier, train_classifier
from ebgan.metrics.hook import BEST_DIR, BEST_SCORES, EvalHook
from ebgan.train.run_dir import read_metrics

SMALL = {"n_layer_g": 2, "size_g": 16, "n_layer_d": 2, "size_d": 16}
KEY = "select/fid_tiny_digits_cls_vs_training_images"


@pytest.fixture
def tiny(tiny_idx):
    root, _ = tiny_idx(splits={"test": 60})  # MNIST-like: no train split; classifier on test-fit
    train_classifier("tiny-digits", root, epochs=1, log=lambda m: None)
    return root


def config(root, **kw):
    values = dict(
        dataset="tiny-digits",
        data_root=str(root),
        data_split="test-fit",
        model="mlp",
        model_args=SMALL,
        steps=3,
        batch_size=8,
        eval_every=1,
        log_every=1,
        sample_every=0,
        checkpoint_every=0,
    )
    return Config(**{**values, **kw}).resolve()


def frechet_by_eigenvalues(a: np.ndarray, b: np.ndarray) -> float:
    """The Frechet distance with Tr (Ca Cb)^(1/2) = sum of sqrt(eigenvalues of Ca Cb), a route
    ebgan.metrics.scores does not take (it symmetrises with Ca^(1/2))."""
    ma, mb = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    eig = np.linalg.eigvals(ca @ cb).real
    return float(((ma - mb) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * np.sqrt(np.clip(eig, 0, None)).sum())


def test_selection_is_on_the_runs_own_training_images(tiny, tmp_path):
    cfg = config(tiny)
    data = load_training_data(cfg)  # the 36 images of test-fit
    trainer = Trainer(cfg, data, run_dir=tmp_path / "run")
    trainer.hooks.append(EvalHook(cfg, tmp_path / "run", n=30))
    trainer.train(progress=False)
    rows = [r for r in read_metrics(tmp_path / "run") if KEY in r]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert not any(k.startswith("eval/") for r in read_metrics(tmp_path / "run") for k in r)
    # The last value, recomputed: 30 samples (seed 0) vs the documented subset of the training images.
    net, _ = load_classifier("tiny-digits")
    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:30]
    f_val, _ = classify(net, data[pick])
    f_s, _ = classify(net, to_uint8(sample_images(trainer.G, 30, seed=0)))
    assert rows[-1][KEY] == pytest.approx(frechet_by_eigenvalues(f_s, f_val), rel=1e-4, abs=1e-7)
    best = json.loads((tmp_path / "run" / BEST_DIR / BEST_SCORES).read_text())
    assert best["frechet"] == min(r[KEY] for r in rows) and best["selected_by"] == KEY.removeprefix("select/")
    assert best["selected_on"].startswith("30 of the run's own training images (test-fit")
    assert "never an evaluation reference" in best["selected_on"] and best["data_split"] == "test-fit"
    spec = json.loads((tmp_path / "run" / BEST_DIR / "generator.json").read_text())
    assert spec["data_split"] == "test-fit" and spec["selected_on"] == best["selected_on"]
    load_generator(tmp_path / "run" / BEST_DIR)


def test_the_hook_leaves_training_unchanged(tiny, tmp_path):
    cfg = config(tiny)
    with_hook = Trainer(cfg, load_training_data(cfg), run_dir=tmp_path / "a")
    with_hook.hooks.append(EvalHook(cfg, tmp_path / "a", n=20))
    with_hook.train(progress=False)
    plain = Trainer(cfg, load_training_data(cfg))
    plain.train(progress=False)
    for a, b in zip(with_hook.G.state_dict().values(), plain.G.state_dict().values()):
        assert torch.equal(a, b)


def test_a_best_chosen_by_another_rule_does_not_compete(tiny, tmp_path):
    cfg = config(tiny)
    best = tmp_path / "run" / BEST_DIR
    best.mkdir(parents=True)
    (best / BEST_SCORES).write_text(json.dumps({"frechet": 0.0}))  # the old hook's, against the test split
    assert EvalHook(cfg, tmp_path / "run").best == math.inf
    (best / BEST_SCORES).write_text(json.dumps({"frechet": 1.5, "selected_by": KEY.removeprefix("select/")}))
    assert EvalHook(cfg, tmp_path / "run").best == 1.5


def test_a_damaged_best_record_is_named_not_overwritten(tiny, tmp_path):
    """It was an internal JSONDecodeError at the resume; read as 'no best', the next evaluation would
    replace a generator that may be the run's best."""
    best = tmp_path / "run" / BEST_DIR
    best.mkdir(parents=True)
    for damaged in ('{"frechet": 1.5, "sel', "[1, 2]", json.dumps({"selected_by": KEY.removeprefix("select/")})):
        (best / BEST_SCORES).write_text(damaged)
        with pytest.raises(EbganError, match=f"{BEST_SCORES} is damaged .*move {best} away"):
            EvalHook(config(tiny), tmp_path / "run")


def test_refusals(tiny):
    with pytest.raises(EbganError, match="classifiers exist for"):
        EvalHook(Config(dataset="toy:8gaussians", model="mlp", eval_every=1).resolve(), "unused")
    with pytest.raises(EbganError, match=r"\(1, 32, 32\)"):
        EvalHook(config(tiny, image_size=16), "unused")
