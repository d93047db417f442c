"""The classifier, ``ebgan eval`` and the ``--eval-every`` hook, end to end.

Tests that need Fashion-MNIST skip when it is absent. A tiny classifier (a few seconds
of training) is cached once per module in its own cache folder.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from ebgan.cli import main
from ebgan.config import Config
from ebgan.data import load_training_data
from ebgan.errors import EbganError
from ebgan.metrics.classifier import Classifier, load_classifier, train_classifier
from ebgan.metrics.evaluate import ClassifierScorer
from ebgan.metrics.hook import EvalHook
from tests.conftest import FMNIST, CodeRunningPayload, real_root_or_skip, synthetic_images


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    """A cache folder holding a quickly trained Fashion-MNIST classifier (weak but real)."""
    root = real_root_or_skip(FMNIST, tmp_path_factory.mktemp("real"))
    cache = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(cache))
    try:
        meta = train_classifier("fashion-mnist", root, epochs=2, limit=3000, log=lambda m: None)
    finally:
        mp.undo()
    return cache, root, meta


@pytest.fixture
def with_classifier(tiny_cache, monkeypatch):
    cache, root, meta = tiny_cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return root, meta


class OneImageGenerator(nn.Module):
    """A fully collapsed generator: the same image for every z."""

    def __init__(self, image: torch.Tensor):
        super().__init__()
        self.latent_dim, self.image_shape = 4, tuple(image.shape)
        self.register_buffer("image", image)
        self.dummy = nn.Parameter(torch.zeros(1))  # sample_images reads the device from a parameter

    def forward(self, z):
        return self.image.expand(z.shape[0], *self.image_shape)


# ------------------------------------------------------------------ classifier
def test_classifier_features_and_logits_have_the_documented_shapes():
    f, logits = Classifier().forward_features(torch.zeros(5, 1, 32, 32))
    assert f.shape == (5, 128) and logits.shape == (5, 10)


def test_cached_classifier_records_its_accuracy_and_split(with_classifier):
    _, meta = with_classifier
    net, loaded = load_classifier("fashion-mnist")
    assert loaded == meta
    assert meta["split_used"] == "train" and meta["tested_on"] == "test"
    assert meta["feature_dim"] == 128 and meta["n_test"] == 10000
    assert 0.5 < meta["test_accuracy"] <= 1.0  # 3000 images, 2 epochs: weak but far above chance


@pytest.mark.realdata("mnist:test")
def test_mnist_classifier_falls_back_to_the_test_split_and_says_so(mnist_test_only_root, no_datasets):
    root = mnist_test_only_root  # downloads are off too (no_datasets): the train split is absent
    meta = train_classifier("mnist", root, epochs=1, limit=500, log=lambda m: None)
    assert meta["split_used"] == "test-fit" and meta["tested_on"] == "test-heldout"
    assert meta["n_train"] == 500 and meta["n_test"] == 4000
    assert "train split is absent" in meta["split_note"]


@pytest.mark.slow
@pytest.mark.realdata("mnist:test")
def test_offline_mnist_run_on_test_fit_is_scored_against_the_4000_heldout_images(
    mnist_test_only_root, no_datasets, tmp_path, capsys
):
    from ebgan.train import Trainer

    root = mnist_test_only_root
    train_classifier("mnist", root, epochs=1, limit=300, log=lambda m: None)
    cfg = Config(
        dataset="mnist",
        data_root=str(root),
        data_split="test-fit",
        model="mlp",
        steps=1,
        batch_size=8,
        model_args={"n_layer_g": 2, "size_g": 16, "n_layer_d": 2, "size_d": 16},
        log_every=1,
        sample_every=0,
        checkpoint_every=0,
    ).resolve()
    data = load_training_data(cfg)
    assert data.shape == (6000, 1, 32, 32)
    Trainer(cfg, data, run_dir=tmp_path / "run").train(progress=False)
    code, out, _ = _eval(["--run", str(tmp_path / "run"), "--n", "100", "--json"], capsys)
    r = json.loads(out)
    assert (
        code == 0
        and r["reference_split"] == "test-heldout"
        and r["reference"].startswith("mnist test-heldout split (4000")
    )
    assert r["real_vs_real"]["description"].startswith("100 test-fit images")


# ------------------------------------------------------------------ the collapse test
@pytest.mark.slow
def test_one_image_generator_scores_far_worse_than_real_data(with_classifier):
    from ebgan.data import load_images, to_uint8, to_unit_range
    from ebgan.generator_io import sample_images

    root, _ = with_classifier
    scorer = ClassifierScorer("fashion-mnist", root)
    real = load_images("fashion-mnist", "train", root).images[torch.randperm(60000)[:2000]]
    G = OneImageGenerator(to_unit_range(real[:1])[0])
    collapsed = to_uint8(sample_images(G, 2000, seed=0))
    r, c = scorer.score(real), scorer.score(collapsed)
    assert c["frechet"] > 20 * r["frechet"]
    assert c["modes"] == 1 and r["modes"] == 10
    assert c["kl_uniform"] == pytest.approx(math.log(10)) and r["kl_uniform"] < 0.1
    assert c["recall"] < 0.01 < 0.5 < r["recall"]
    assert c["is"] == pytest.approx(1.0) and r["is"] > 3


# ------------------------------------------------------------------ ebgan eval: errors
def _eval(argv, capsys):
    code = main(["eval", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing_key", "expected an array named 'images'"),
        ("wrong_size", "expected (N, 1, 32, 32)"),
        ("wrong_channels", "expected (N, 1, 32, 32)"),
        ("float", "'images' must be uint8"),
        ("unit_range_cast", "every pixel is 0 or 1, as when images in [0, 1] are cast to uint8"),
        ("empty_folder", "holds no image files"),
        ("missing_file", "does not exist"),
    ],
)
def test_eval_bad_input_is_one_clear_line(case, message, tmp_path, capsys):
    path = tmp_path / "s.npz"
    if case == "missing_key":
        np.savez(path, pictures=np.zeros((20, 1, 32, 32), np.uint8))
    elif case == "wrong_size":
        np.savez(path, images=np.zeros((20, 1, 30, 30), np.uint8))
    elif case == "wrong_channels":  # colour: three channels that differ
        np.savez(
            path, images=np.array([0, 50, 100], np.uint8).reshape(1, 3, 1, 1).repeat(20, 0).repeat(32, 2).repeat(32, 3)
        )
    elif case == "float":
        np.savez(path, images=np.zeros((20, 1, 32, 32), np.float32))
    elif case == "unit_range_cast":  # (x > 0.5).astype(uint8) of [0, 1] samples: 0 and 1 only
        np.savez(path, images=(np.arange(20 * 32 * 32).reshape(20, 1, 32, 32) % 2).astype(np.uint8))
    elif case == "empty_folder":
        path = tmp_path / "empty"
        path.mkdir()
    else:
        path = tmp_path / "nothing.npz"
    code, out, err = _eval(["--samples", str(path), "--dataset", "fashion-mnist"], capsys)
    assert code != 0 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_eval_unknown_dataset(tmp_path, capsys):
    code, _, err = _eval(["--samples", str(tmp_path), "--dataset", "cifar-11"], capsys)
    assert code != 0 and "cifar-11" in err and len(err.strip().splitlines()) == 1


def test_eval_without_classifier_names_the_command_to_run(tmp_path, capsys, data_root):
    np.savez(tmp_path / "s.npz", images=np.zeros((20, 1, 32, 32), np.uint8))
    code, _, err = _eval(["--samples", str(tmp_path / "s.npz"), "--dataset", "fashion-mnist"], capsys)
    assert code != 0 and "ebgan classifier train --dataset fashion-mnist" in err


def test_train_eval_every_without_classifier_fails_before_writing_anything(tmp_path, capsys):
    code = main(
        ["train", "--dataset", "fashion-mnist", "--eval-every", "10", "--steps", "20", "--out", str(tmp_path / "run")]
    )
    assert code != 0 and "ebgan classifier train --dataset fashion-mnist" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ ebgan eval: results
def test_eval_json_has_every_key_and_is_deterministic(with_classifier, tmp_path, capsys):
    from ebgan.commands.sample import write_samples
    from ebgan.data import load_images

    root, _ = with_classifier
    images = load_images("fashion-mnist", "test", root).images[:300].numpy()
    write_samples(images, tmp_path / "s.npz", "npz")
    write_samples(images, tmp_path / "pngs", "png")
    argv = ["--dataset", "fashion-mnist", "--data-root", str(root), "--json"]
    code, out, _ = _eval(["--samples", str(tmp_path / "s.npz"), *argv], capsys)
    assert code == 0 and len(out.strip().splitlines()) == 1
    r = json.loads(out)
    for key in (
        "frechet",
        "kid",
        "is",
        "i_prime",
        "precision",
        "recall",
        "modes",
        "kl_uniform",
        "feature_extractor",
        "n",
        "real_vs_real",
    ):
        assert key in r, key
    assert r["n"] == 300 and r["frechet_name"] == "fid_fmnist_cls" and r["real_vs_real"]["n"] == 300
    # the samples' training split is unknown: the test split (disjoint from the classifier's train split), said so
    assert r["reference_split"] == "test" and r["generator_split"] is None and "not checked" in r["reference_note"]
    assert r["inception"]["available"] is False and "--inception-weights" in r["inception"]["message"]
    _, again, _ = _eval(["--samples", str(tmp_path / "s.npz"), *argv], capsys)
    _, from_png, _ = _eval(["--samples", str(tmp_path / "pngs"), *argv], capsys)
    assert again == out
    assert json.loads(from_png) | {"source": ""} == r | {"source": ""}  # same images as PNG, same scores
    code, table, _ = _eval(["--samples", str(tmp_path / "s.npz"), *argv[:-1]], capsys)
    assert code == 0 and "fid_fmnist_cls" in table and "real vs real" in table
    assert "vs fashion-mnist test split" in table and "not checked" in table


def test_samples_written_by_other_code_at_28x28_in_rgb_score_as_the_padded_grey_ones(with_classifier, tmp_path, capsys):
    """torchvision's save_image writes grey MNIST samples as RGB PNGs, and most GAN code makes
    28x28 images: both were refused. Read as grey and padded as the reference images are, they
    are the same pixels as ebgan's own samples, so the same scores."""
    from ebgan.commands.sample import write_samples
    from ebgan.data import load_images

    root, _ = with_classifier
    native = load_images("fashion-mnist", "test", root, image_size=28).images[:300]  # (300, 1, 28, 28)
    write_samples(native.repeat(1, 3, 1, 1).numpy(), tmp_path / "rgb28", "png")
    padded = torch.zeros(300, 1, 32, 32, dtype=torch.uint8)
    padded[:, :, 2:30, 2:30] = native  # 2 black pixels on every side, by hand
    write_samples(padded.numpy(), tmp_path / "s.npz", "npz")
    argv = ["--dataset", "fashion-mnist", "--data-root", str(root), "--json"]
    _, ours, _ = _eval(["--samples", str(tmp_path / "s.npz"), *argv], capsys)
    code, theirs, _ = _eval(["--samples", str(tmp_path / "rgb28"), *argv], capsys)
    assert code == 0
    assert json.loads(theirs) | {"source": ""} == json.loads(ours) | {"source": ""}
    assert "3 equal channels read as grey; 28x28 padded to 32x32" in json.loads(theirs)["source"]


def test_eval_missing_inception_weights_path_is_an_error(with_classifier, tmp_path, capsys):
    root, _ = with_classifier
    np.savez(tmp_path / "s.npz", images=np.zeros((20, 1, 32, 32), np.uint8))
    code, _, err = _eval(
        [
            "--samples",
            str(tmp_path / "s.npz"),
            "--dataset",
            "fashion-mnist",
            "--inception-weights",
            str(tmp_path / "nope.pth"),
        ],
        capsys,
    )
    assert code != 0 and "nope.pth does not exist" in err


# ------------------------------------------------------------------ the training hook
def test_eval_hook_logs_scores_and_keeps_the_best_generator(with_classifier, tmp_path):
    from ebgan.generator_io import load_generator
    from ebgan.train import Trainer
    from ebgan.train.run_dir import read_metrics

    root, _ = with_classifier
    cfg = Config(
        dataset="fashion-mnist",
        data_root=str(root),
        steps=4,
        batch_size=8,
        eval_every=2,
        log_every=2,
        sample_every=0,
        checkpoint_every=0,
    ).resolve()
    trainer = Trainer(cfg, synthetic_images(64), run_dir=tmp_path / "run")
    trainer.hooks.append(EvalHook(cfg, tmp_path / "run", n=200))
    trainer.train(progress=False)
    key = "select/fid_fmnist_cls_vs_training_images"
    evals = [r for r in read_metrics(tmp_path / "run") if key in r]
    assert [r["step"] for r in evals] == [2, 4]
    best = json.loads((tmp_path / "run" / "best" / "scores.json").read_text())
    assert best["frechet"] == min(r[key] for r in evals)
    assert "64 of the run's own training images (train" in best["selected_on"]
    assert (tmp_path / "run" / "best.pt").is_file()
    load_generator(tmp_path / "run" / "best")  # loadable by ebgan sample / ebgan eval


def test_eval_hook_refuses_other_image_shapes(with_classifier):
    root, _ = with_classifier
    cfg = Config(dataset="fashion-mnist", data_root=str(root), image_size=64, eval_every=2).resolve()
    with pytest.raises(EbganError, match="32"):
        EvalHook(cfg, "unused")


# ------------------------------------------------------------------ Inception path (random weights)
def _random_inception_state(monkeypatch) -> dict:
    """A randomly initialised state dict of torch-fidelity's InceptionV3 layout."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe
    from torchmetrics.image.fid import NoTrainInceptionV3

    with monkeypatch.context() as m:  # build once without weights to get a state dict of the right layout
        m.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
        return NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"]).state_dict()


@pytest.mark.slow
def test_inception_features_are_torch_fidelitys(tmp_path, monkeypatch):
    """Same weights, same features as torch-fidelity's own extractor (its TF1-style resize to 299,
    the one published FIDs use), for grey and colour images of other sizes."""
    pytest.importorskip("torch_fidelity")
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    from ebgan.metrics import inception

    state = _random_inception_state(monkeypatch)
    torch.save(state, tmp_path / "w.pth")
    ours = inception.build_extractor(tmp_path / "w.pth")
    with monkeypatch.context() as m:
        m.setattr(fe, "load_state_dict_from_url", lambda *a, **k: state)
        reference = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    g = torch.Generator().manual_seed(0)
    for shape in ((3, 1, 32, 32), (2, 3, 64, 64)):
        x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)
        expected = reference(x.expand(-1, 3, -1, -1).contiguous())[0].double().numpy()
        got = inception.inception_features(ours, x)
        assert np.linalg.norm(got - expected) <= 1e-6 * np.linalg.norm(expected)


@pytest.mark.slow
def test_inception_scores_run_from_an_offline_weights_file(tmp_path, monkeypatch):
    """The code path only: weights are random (real ones cannot be downloaded here), so no values are checked."""
    pytest.importorskip("torch_fidelity")
    from ebgan.metrics import inception
    from ebgan.metrics.evaluate import Reference

    torch.save(_random_inception_state(monkeypatch), tmp_path / "w.pth")
    g = torch.Generator().manual_seed(0)
    imgs = [torch.randint(0, 256, (2, 1, 32, 32), dtype=torch.uint8, generator=g) for _ in range(3)]
    r = inception.inception_scores(
        imgs[0], Reference(imgs[1], imgs[2], ""), inception.find_extractor(tmp_path / "w.pth")
    )
    assert r["available"] and math.isfinite(r["fid_inception"]) and math.isfinite(r["real_vs_real"]["kid_inception"])


def test_a_weights_file_that_would_run_code_is_refused_from_the_flag_and_the_hub_cache(tmp_path, monkeypatch):
    from ebgan.errors import EbganError
    from ebgan.metrics import inception

    marker = tmp_path / "marker"
    evil = tmp_path / "hub" / "checkpoints" / inception.WEIGHTS_NAME
    evil.parent.mkdir(parents=True)
    torch.save({"conv.weight": CodeRunningPayload(marker)}, evil)
    for found in (inception.find_weights(evil), None):
        if found is None:  # no flag: picked up from torch's hub cache
            monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
            found = inception.find_weights(None)
            assert found == evil
        with pytest.raises(EbganError, match=f"refusing {evil}"):
            inception.build_extractor(found)
        assert not marker.exists()


def test_weights_of_another_network_name_the_file_to_pass(tmp_path, capsys):
    """They said only "Error(s) in loading state_dict for NoTrainInceptionV3:", without the keys or the fix."""
    pytest.importorskip("torch_fidelity")
    from ebgan.metrics import inception

    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(EbganError) as e:
        inception.build_extractor(tmp_path / "other.pth")
    message = str(e.value)
    assert "Missing key(s)" in message and inception.WEIGHTS_NAME in message and "\n" not in message


def test_a_foreign_inception_file_fails_before_the_classifier_scores(tmp_path, capsys):
    """It was loaded only after the classifier's scores (minutes on 10000 samples); here there is not
    even a classifier, whose absence was the error reported instead."""
    pytest.importorskip("torch_fidelity")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    np.savez(tmp_path / "s.npz", images=np.full((20, 1, 32, 32), 7, np.uint8))
    argv = ["--samples", str(tmp_path / "s.npz"), "--dataset", "fashion-mnist"]
    code, _, err = _eval([*argv, "--inception-weights", str(tmp_path / "other.pth")], capsys)
    assert code == 2 and "cannot load Inception weights" in err and "Missing key(s)" in err
