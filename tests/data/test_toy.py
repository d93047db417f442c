"""The 2-D toy manifolds and the mode-coverage rule."""

from __future__ import annotations

import math

import pytest
import torch

from ebgan import Config, EbganError, load_training_data
from ebgan.data.toy import MIXTURES, TOY_NAMES, make_toy, mixture_of, mode_coverage


@pytest.mark.parametrize("name", TOY_NAMES)
def test_toys_are_seeded_2d_and_inside_tanh_range(name):
    a, b, c = make_toy(name, 3000, seed=1), make_toy(name, 3000, seed=1), make_toy(name, 3000, seed=2)
    assert a.shape == (3000, 2) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.abs().max() < 1.0  # the mlp generator's tanh can reach every point


def test_mixture_centres_are_the_documented_ones():
    ring = MIXTURES["8gaussians"].centres
    assert ring.shape == (8, 2)
    assert torch.allclose(ring.norm(dim=1), torch.full((8,), 0.8))
    assert torch.allclose(ring[2], torch.tensor([0.0, 0.8]), atol=1e-6)  # 90 degrees
    grid = MIXTURES["25gaussians"].centres
    assert grid.shape == (25, 2)
    assert sorted({round(v, 4) for v in grid[:, 0].tolist()}) == [-0.8, -0.4, 0.0, 0.4, 0.8]
    assert mixture_of("toy:spiral") is None


@pytest.mark.parametrize("name", ["toy:8gaussians", "toy:25gaussians"])
def test_real_mixture_samples_cover_every_mode(name):
    mix = mixture_of(name)
    cov = mode_coverage(make_toy(name, 20000, seed=0), mix.centres, mix.std)
    assert cov["modes"] == cov["n_modes"] == len(mix.centres)
    # P(|N(0, s^2 I_2)| <= 3 s) = 1 - exp(-9 / 2) for a 2-D Gaussian
    assert cov["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.005)
    assert min(cov["per_mode"]) > 0.8 * 20000 / len(mix.centres) * 0.98


def test_parabola_follows_y2_equals_y1_squared():
    p = make_toy("toy:parabola", 5000, seed=0)
    residual = p[:, 1] + 0.4 - p[:, 0] ** 2  # shifted down by 0.4
    assert residual.abs().max() < 0.1 and residual.std() < 0.03


def test_mode_coverage_on_hand_built_samples():
    centres = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    std = 0.1  # high quality: within 0.3 of the nearest centre
    samples = torch.tensor(
        [
            [0.0, 0.0],
            [0.1, 0.0],
            [0.0, -0.2],  # 3 on mode 0
            [1.2, 0.0],
            [1.0, 0.25],  # 2 on mode 1
            [0.0, 1.1],  # 1 on mode 2
            [0.0, 1.35],  # nearest is mode 2 but 0.35 > 0.3: low quality
            [0.5, 0.5],  # between modes: low quality
        ]
    )
    cov = mode_coverage(samples, centres, std, min_samples=2)
    assert cov["per_mode"] == [3, 2, 1]
    assert cov["modes"] == 2
    assert cov["high_quality"] == pytest.approx(6 / 8)
    assert mode_coverage(samples, centres, std, min_samples=1)["modes"] == 3
    assert mode_coverage(samples, centres, std, min_samples=4)["modes"] == 0


def test_the_default_mode_rule_scales_with_the_sample_count():
    """20 of VEEGAN's 2500 samples: a fixed 20 found no mode in 100 samples of a perfect generator."""
    centres = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    on_both = centres.repeat(50, 1)  # 100 samples, 50 exactly on each mode
    assert mode_coverage(on_both, centres, 0.1) == {
        "modes": 2,
        "n_modes": 2,
        "high_quality": 1.0,
        "min_samples": 1,  # round(100 * 20 / 2500) = round(0.8)
        "per_mode": [50, 50],
        "n_samples": 100,
    }
    lopsided = torch.cat([centres[:1].repeat(2480, 1), centres[1:].repeat(20, 1)])  # 2500: 20 on mode 1
    assert mode_coverage(lopsided, centres, 0.1)["min_samples"] == 20
    assert mode_coverage(lopsided, centres, 0.1)["modes"] == 2
    assert mode_coverage(lopsided[1:], centres, 0.1)["modes"] == 2  # 2499 samples: still 20
    assert mode_coverage(torch.cat([lopsided, centres[:1].repeat(40, 1)]), centres, 0.1)["min_samples"] == 20
    assert mode_coverage(centres[:1].repeat(5000, 1).clone(), centres, 0.1)["min_samples"] == 40


def test_config_and_loading_for_toys():
    cfg = Config(dataset="toy:spiral", model="mlp", seed=3).resolve()
    assert cfg.margin == 0.5  # the toy default, not the paper's 10 for 32x32 images
    data = load_training_data(cfg)
    assert data.dtype == torch.float32 and data.shape[1:] == (2,)
    assert torch.equal(data[:10], make_toy("toy:spiral", seed=3)[:10])
    with pytest.raises(EbganError, match="need --model mlp"):
        Config(dataset="toy:spiral").resolve()
    with pytest.raises(EbganError, match="unknown toy dataset"):
        Config(dataset="toy:circles", model="mlp").resolve()
