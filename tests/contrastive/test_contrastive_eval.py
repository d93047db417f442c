"""The evaluation's measures on hand-made cases, and ebgan contrastive eval end to end on tiny runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ebgan.cli import main
from ebgan.contrastive.evaluate import best_threshold, knn_predict, linear_probe_predict, pca_2d, verification_accuracy


def test_the_threshold_is_the_first_best_cut_between_distinct_energies():
    e = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    same = [True, True, False, True, False, False]
    # "same iff e <= t": t = 0.25 gets 5 of 6 (only the 0.4 pair wrong); so does t = 0.45, found later
    assert best_threshold(e, same) == pytest.approx((0.25, 5 / 6))
    assert verification_accuracy(e, same, 0.45) == pytest.approx(5 / 6)
    # a cut never separates equal energies: 0.2 twice, once same once not; between them it would get 4 of 4,
    # but no threshold does that: the best real ones get 3 of 4, the first at (0.1 + 0.2) / 2
    assert best_threshold([0.1, 0.2, 0.2, 0.9], [True, True, False, False]) == pytest.approx((0.15, 3 / 4))
    assert best_threshold([1.0, 2.0], [False, True]) == pytest.approx((0.0, 1 / 2))  # "never same" is as good


def test_knn_majority_and_ties_to_the_nearest():
    train = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [20.0]])
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    # from 1.2 the 5 nearest are 1 (0), 2 (1), 0 (0), 10 (1), 11 (1): class 1 has 3 votes
    # from 15.4 they are 11 (1), 20 (2), 10 (1), 2 (1), 1 (0): class 1
    assert knn_predict(train, labels, torch.tensor([[1.2], [15.4]])).tolist() == [1, 1]
    # k = 2 from 0.6: 1 (0) then 0 (0); from 1.6: 2 (1) then 1 (0), a 1-1 tie that the nearest (class 1) wins
    assert knn_predict(train, labels, torch.tensor([[0.6], [1.6]]), k=2).tolist() == [0, 1]


def test_linear_probe_separates_what_a_line_separates():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]])
    y = torch.arange(300) % 3
    x = centres[y] + torch.randn(300, 2, generator=g)
    xt = centres[y] + torch.randn(300, 2, generator=g)
    pred = linear_probe_predict(x, y, xt)
    # the nearest centre is the Bayes rule here (equal spherical Gaussians); the probe agrees almost everywhere
    nearest = torch.cdist(xt, centres).argmin(1)
    assert (pred == nearest).float().mean() > 0.98


def test_pca_of_points_on_a_line():
    direction = torch.tensor([1.0, 2.0, 2.0]) / 3
    t = torch.linspace(-1, 1, 11)
    coords, share = pca_2d(t[:, None] * direction + torch.tensor([5.0, 0.0, -1.0]))
    assert share[0] == pytest.approx(1.0) and share[1] == pytest.approx(0.0, abs=1e-12)
    assert torch.allclose(coords[:, 0].abs(), t.abs(), atol=1e-6)


@pytest.fixture
def tiny_run(tmp_path, tiny_idx):
    root, spec = tiny_idx(splits={"train": 90, "test": 60}, size=16)
    run = tmp_path / "run"
    args = ["--dataset", spec.name, "--data-root", str(root), "--image-size", "16", "--width", "4"]
    args += ["--embedding-dim", "8", "--batch-size", "8", "--steps", "20", "--val-fraction", "0.2"]
    assert main(["contrastive", "train", "--out", str(run), *args, "--no-progress", "--device", "cpu"]) == 0
    return run, root, spec


def test_eval_of_a_contrastive_run_and_of_its_random_twin(tiny_run, capsys):
    run, _, _ = tiny_run
    capsys.readouterr()
    assert main(["contrastive", "eval", "--run", str(run), "--pairs-count", "200", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("verification_accuracy", "validation_accuracy", "auroc", "knn_accuracy", "linear_probe_accuracy"):
        assert 0.0 <= r[key] <= 1.0
    assert r["projection"]["method"] == "PCA" and (run / "eval" / "projection.png").is_file()
    assert json.loads((run / "eval" / "eval.json").read_text()) == r
    assert "72 images" in r["train"] and "18 images" in r["validation"] and "60 images" in r["test"]
    # the squares of the tiny classes are easy: the trained encoder separates them
    assert r["verification_accuracy"] > 0.9
    assert main(["contrastive", "eval", "--run", str(run), "--random-encoder", "--pairs-count", "200"]) == 0
    out = capsys.readouterr().out
    assert "randomly initialised conv4 encoder" in out and (run / "eval-random" / "eval.json").is_file()


def test_eval_of_an_ebgan_discriminator(tmp_path, tiny_idx, capsys):
    root, spec = tiny_idx(splits={"train": 90, "test": 60}, size=16)
    run = tmp_path / "gan"
    common = ["--dataset", spec.name, "--data-root", str(root), "--image-size", "16", "--batch-size", "8"]
    assert main(["train", "--out", str(run), *common, "--steps", "3", "--latent-dim", "4", "--no-progress"]) == 0
    evaluate = ["contrastive", "eval", "--from-ebgan", str(run), "--pairs-count", "100", "--val-fraction", "0.3"]
    capsys.readouterr()
    assert main([*evaluate, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["encoder"].startswith(f"EBGAN discriminator of {run}") and 0 <= r["auroc"] <= 1
    # D trained on the whole split: its validation part is not one "training never draws from"
    assert "which the discriminator trained on too" in r["validation"] and "never" not in r["validation"]
    assert (run / "contrastive-eval" / "projection.png").is_file()
    assert main([*evaluate, "--random-encoder"]) == 0
    assert "randomly initialised seed32 autoencoder discriminator" in capsys.readouterr().out


def test_the_verification_threshold_transfers_from_validation():
    # same-class distances ~0.3, different ~1.0 in both sets: the threshold chosen on one works on the other
    rng = np.random.default_rng(0)
    same = rng.random(400) < 0.5
    val = np.where(same, 0.3, 1.0) + 0.1 * rng.standard_normal(400)
    test = np.where(same, 0.3, 1.0) + 0.1 * rng.standard_normal(400)
    t, acc = best_threshold(val, same)
    assert 0.5 < t < 0.8 and acc > 0.99 and verification_accuracy(test, same, t) > 0.99


def test_a_diverged_discriminator_is_a_one_line_error(tmp_path, tiny_idx, capsys):
    """NaN weights gave NaN embeddings and an internal LinAlgError from the PCA."""
    root, spec = tiny_idx(splits={"train": 90, "test": 60}, size=16)
    run = tmp_path / "gan"
    common = ["--dataset", spec.name, "--data-root", str(root), "--image-size", "16", "--batch-size", "8"]
    assert main(["train", "--out", str(run), *common, "--steps", "1", "--latent-dim", "4", "--no-progress"]) == 0
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    for v in state["D"].values():
        if v.is_floating_point():
            v.fill_(float("nan"))
    torch.save(state, run / "checkpoint.pt")
    capsys.readouterr()
    assert main(["contrastive", "eval", "--from-ebgan", str(run), "--pairs-count", "100", "--val-fraction", "0.3"]) == 2
    assert "gives NaN or infinite embeddings: its training diverged" in capsys.readouterr().err
