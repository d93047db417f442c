"""ebgan energy shapes: the scores on energies whose answer is known, k-means, the command."""

import json

import numpy as np
import pytest
import torch

from ebgan.cli import main
from ebgan.data.toy import make_toy, manifold_distance
from ebgan.energy.shapes import KMeansEnergy, off_manifold_points, parse_strategies, shape_scores
from ebgan.errors import EbganError


def test_manifold_distance_is_zero_on_the_noiseless_curve_and_exact_off_it():
    # The parabola y = x^2 - 0.4 seen from the origin: d^2 = x^2 + (x^2 - 0.4)^2 has derivative
    # 2x (1 + 2 (x^2 - 0.4)) = 2x (2x^2 + 0.2), zero only at x = 0: the distance is 0.4.
    # The curve is sampled every ~2e-4 of its length, hence the tolerance.
    assert float(manifold_distance("toy:parabola", torch.tensor([[0.0, 0.0]]))) == pytest.approx(0.4, abs=1e-4)
    assert float(manifold_distance("toy:parabola", torch.tensor([[0.5, 0.25 - 0.4]]))) == pytest.approx(0, abs=5e-4)
    assert float(manifold_distance("toy:8gaussians", torch.tensor([[0.0, 0.0]]))) == pytest.approx(0.8, abs=1e-6)
    off = off_manifold_points("toy:spiral", 300, 0.1, seed=0)
    assert off.shape == (300, 2) and (manifold_distance("toy:spiral", off) >= 0.1).all()


def test_scores_of_known_energies():
    def distance(p):
        return manifold_distance("toy:parabola", p)

    perfect, _ = shape_scores(distance, "toy:parabola", seed=0, resolution=40)
    assert perfect["auroc"] == 1.0  # every off point is >= 0.1 away, every held-out point within noise
    assert perfect["spearman"] == pytest.approx(1.0)
    # the 5th percentile of on-manifold distances is ~0.001: almost no cell centre is that close
    assert perfect["low_area"] < 0.01
    inverted, _ = shape_scores(lambda p: -distance(p), "toy:parabola", seed=0, resolution=40)
    assert inverted["auroc"] == 0.0 and inverted["spearman"] == pytest.approx(-1.0)
    assert inverted["low_area"] > 0.9  # everything off the curve is "lower" than the data
    flat, grid = shape_scores(lambda p: torch.zeros(len(p)), "toy:parabola", seed=0, resolution=40)
    assert flat["auroc"] == 0.5 and flat["spearman"] == 0.0 and flat["low_area"] == 0.0
    assert grid.shape == (40, 40)


def test_kmeans_finds_well_separated_centres():
    centres = torch.tensor([[-0.5, -0.5], [0.5, 0.5], [0.5, -0.5]])
    g = torch.Generator().manual_seed(0)
    points = centres[torch.arange(600) % 3] + 0.02 * torch.randn(600, 2, generator=g)
    km = KMeansEnergy(k=3, seed=1).fit(points)
    found = km.centres[torch.cdist(centres, km.centres).argmin(1)]
    assert torch.allclose(found, centres, atol=0.01)
    assert float(km.energies(torch.tensor([[0.5, 0.5]]))) == pytest.approx(0.0, abs=0.01)
    with pytest.raises(EbganError, match="at least 3 points"):
        KMeansEnergy(k=3).fit(points[:2])


def test_parse_strategies():
    assert [s.key for s in parse_strategies("dae,kmeans,dae")] == ["dae", "kmeans"]
    with pytest.raises(EbganError, match="unknown strategy nope"):
        parse_strategies("dae,nope")


def test_command_writes_figure_json_and_grids(tmp_path, capsys):
    out = tmp_path / "shapes"
    argv = ["energy", "shapes", "--dataset", "toy:spiral", "--out", str(out), "--steps", "20", "--quiet"]
    assert main([*argv, "--strategies", "kmeans,ebgan-pt,dae,cd", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((out / "shapes.json").read_text())
    assert printed == saved
    assert list(saved["strategies"]) == ["kmeans", "ebgan-pt", "dae", "cd"]
    for r in saved["strategies"].values():
        assert 0 <= r["auroc"] <= 1 and -1 <= r["spearman"] <= 1 and 0 <= r["low_area"] <= 1
    assert (out / "shapes.png").stat().st_size > 10000
    with np.load(out / "energies.npz") as grids:
        assert set(grids.files) == {"kmeans", "ebgan_pt", "dae", "cd"}
    # the folder is not empty now: refused, nothing changed
    before = (out / "shapes.json").read_text()
    assert main([*argv, "--strategies", "kmeans"]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert (out / "shapes.json").read_text() == before


def test_command_refusals(tmp_path, capsys):
    for extra, message in (
        (["--dataset", "fashion-mnist"], "unknown toy dataset"),
        (["--dataset", "toy:spiral", "--steps", "0"], "--steps"),
        (["--dataset", "toy:spiral", "--strategies", "pca"], "unknown strategy"),
    ):
        assert main(["energy", "shapes", "--out", str(tmp_path / "x"), *extra]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "x").exists()


def test_held_out_points_are_not_the_training_draw():
    assert not torch.equal(make_toy("toy:parabola", 100, seed=0), make_toy("toy:parabola", 100, seed=1000))


def test_a_taken_out_folder_is_refused_before_any_training(tmp_path, capsys, monkeypatch):
    """The folder is checked first: a taken one used to be refused after every strategy had trained."""
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    monkeypatch.setattr("ebgan.energy.shapes.train_strategy", lambda *a: pytest.fail("a strategy trained"))
    argv = ["energy", "shapes", "--dataset", "toy:spiral", "--steps", "5", "--strategies", "kmeans,dae", "--quiet"]
    for out in (tmp_path / "taken", tmp_path / "taken" / "notes.txt"):
        assert main([*argv, "--out", str(out)]) == 2
        assert "is not an empty folder" in capsys.readouterr().err
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
