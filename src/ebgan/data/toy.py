"""2-D toy manifolds, generated on the fly from a seed, for looking at an energy surface.

Dataset names (``--dataset``): ``toy:8gaussians``, ``toy:25gaussians``, ``toy:parabola``,
``toy:spiral``, ``toy:swissroll``. Each is a float32 tensor (N, 2), N = ``TOY_SIZE``.

Scale: every set lies inside [-0.95, 0.95]^2, because the ``mlp`` generator ends in tanh
and cannot leave [-1, 1]^2. The Gaussian mixtures are the usual benchmarks shrunk to fit:

- 8gaussians: 8 modes evenly on a circle of radius 0.8, std 0.02 per coordinate
  (the literature's ring has radius 2; std / distance between neighbours here 0.033).
- 25gaussians: a 5x5 grid of modes at {-0.8, -0.4, 0, 0.4, 0.8}^2, std 0.02
  (std / spacing 0.05).
- parabola: y2 = y1^2 for y1 ~ U(-0.9, 0.9), shifted down by 0.4 to centre it, noise 0.01.
- spiral: one arm of an Archimedean spiral, r from 0.05 to 0.9 over 2 turns, noise 0.01.
- swissroll: the 2-D swiss roll (t cos t, t sin t), t in [1.5 pi, 4.5 pi], scaled by
  0.9 / (4.5 pi), noise 0.02: a thicker, wider-spaced roll than the spiral.

Mode coverage (``mode_coverage``) follows VEEGAN (Srivastava et al., 2017): draw
samples, a sample is *high quality* when it lies within 3 std of its nearest mode
centre (Euclidean distance <= 3 * std), and a mode is *captured* when at least
``min_samples`` high-quality samples fall on it (default 20 per 2500 samples, PacGAN's stricter
rule, scaled to the sample count and at least 1; 1 gives VEEGAN's "any sample").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ebgan.errors import EbganError

PREFIX = "toy:"
TOY_SIZE = 20000  # samples per toy set: many epochs of 2-D points cost nothing
PLANE_EXTENT = 1.2  # the square [-1.2, 1.2]^2 where toy energies are drawn and integrated (a margin around the data)
TOY_MARGIN = 0.5  # default hinge margin for the toys: ||r|| of 2-D points is O(0.1), not O(10)


@dataclass(frozen=True)
class Mixture:
    """Known mode centres (K, 2) and the per-coordinate std of every mode."""

    centres: torch.Tensor
    std: float


def _ring(n_modes: int = 8, radius: float = 0.8) -> torch.Tensor:
    angle = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1).float()


def _grid(side: int = 5, extent: float = 0.8) -> torch.Tensor:
    axis = torch.linspace(-extent, extent, side)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten()], 1)


MIXTURES = {
    "8gaussians": Mixture(_ring(), 0.02),
    "25gaussians": Mixture(_grid(), 0.02),
}


def _mixture(name: str, n: int, g: torch.Generator) -> torch.Tensor:
    mix = MIXTURES[name]
    which = torch.randint(len(mix.centres), (n,), generator=g)
    return mix.centres[which] + mix.std * torch.randn(n, 2, generator=g)


def _parabola_curve(u: torch.Tensor) -> torch.Tensor:
    y1 = (u * 2 - 1) * 0.9
    return torch.stack([y1, y1**2 - 0.4], 1)


def _spiral_curve(s: torch.Tensor) -> torch.Tensor:
    turns = 2.0
    radius = 0.05 + 0.85 * s
    angle = 2 * math.pi * turns * s
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)


def _swissroll_curve(u: torch.Tensor) -> torch.Tensor:
    t = 1.5 * math.pi * (1 + 2 * u)
    return torch.stack([t * torch.cos(t), t * torch.sin(t)], 1) * (0.9 / (4.5 * math.pi))


# The continuous manifolds as curves of a parameter u in [0, 1]; the data are the curve at
# uniform u plus isotropic Gaussian noise of the given std.
CURVES = {"parabola": (_parabola_curve, 0.01), "spiral": (_spiral_curve, 0.01), "swissroll": (_swissroll_curve, 0.02)}


def _curve(name: str, n: int, g: torch.Generator) -> torch.Tensor:
    curve, noise = CURVES[name]
    return curve(torch.rand(n, generator=g)) + noise * torch.randn(n, 2, generator=g)


GENERATORS = {
    "8gaussians": lambda n, g: _mixture("8gaussians", n, g),
    "25gaussians": lambda n, g: _mixture("25gaussians", n, g),
    "parabola": lambda n, g: _curve("parabola", n, g),
    "spiral": lambda n, g: _curve("spiral", n, g),
    "swissroll": lambda n, g: _curve("swissroll", n, g),
}
TOY_NAMES = tuple(PREFIX + k for k in GENERATORS)


def is_toy(dataset: str) -> bool:
    return isinstance(dataset, str) and dataset.startswith(PREFIX)


def toy_key(dataset: str) -> str:
    """'toy:8gaussians' -> '8gaussians', with a clear error for unknown names."""
    key = dataset[len(PREFIX) :] if is_toy(dataset) else dataset
    if key not in GENERATORS:
        raise EbganError(f"unknown toy dataset {dataset!r}; use one of {', '.join(TOY_NAMES)}")
    return key


def make_toy(dataset: str, n: int = TOY_SIZE, seed: int = 0) -> torch.Tensor:
    """n points of a toy manifold as float32 (n, 2); the same seed gives the same points."""
    if n < 1:
        raise EbganError(f"a toy dataset needs at least 1 point, got n={n}")
    g = torch.Generator().manual_seed(seed)
    return GENERATORS[toy_key(dataset)](n, g).float().contiguous()


def mixture_of(dataset: str) -> Mixture | None:
    """The known modes of a Gaussian-mixture toy, None for the continuous manifolds."""
    return MIXTURES.get(toy_key(dataset))


N_SAMPLES = 2500  # VEEGAN's sample count for the 2-D ring and grid
MIN_SHARE = 20 / N_SAMPLES  # PacGAN's 20 high-quality samples of VEEGAN's 2500


def mode_coverage(samples: torch.Tensor, centres: torch.Tensor, std: float, min_samples: int | None = None) -> dict:
    """Modes captured and share of high-quality samples (see the module docstring for the rule).
    ``min_samples`` None: MIN_SHARE of the samples (20 of 2500; a fixed 20 would find no mode in
    100 samples of a perfect generator).

    Returns ``modes`` (captured count), ``n_modes``, ``high_quality`` (share in [0, 1]),
    ``min_samples``, ``per_mode`` (high-quality count per mode) and ``n_samples``.
    """
    samples = torch.as_tensor(samples, dtype=torch.float32).reshape(-1, 2)
    centres = torch.as_tensor(centres, dtype=torch.float32)
    if samples.shape[0] == 0:
        raise EbganError("mode coverage needs at least one sample")
    if min_samples is None:
        min_samples = max(1, round(MIN_SHARE * samples.shape[0]))
    if min_samples < 1:
        raise EbganError(f"min_samples must be at least 1, got {min_samples}")
    dist = torch.cdist(samples, centres)  # (N, K)
    nearest_dist, nearest = dist.min(dim=1)
    good = nearest_dist <= 3 * std
    per_mode = torch.bincount(nearest[good], minlength=centres.shape[0])
    return {
        "modes": int((per_mode >= min_samples).sum()),
        "n_modes": int(centres.shape[0]),
        "high_quality": float(good.float().mean()),
        "min_samples": int(min_samples),
        "per_mode": per_mode.tolist(),
        "n_samples": int(samples.shape[0]),
    }


def manifold_distance(dataset: str, points: torch.Tensor, curve_points: int = 20000) -> torch.Tensor:
    """Euclidean distance (N,) of each point to the noiseless manifold: the nearest mode
    centre of a mixture, or the nearest of ``curve_points`` points evenly spaced in the
    parameter of a curve (spacing well under its noise std, so the error is negligible)."""
    key = toy_key(dataset)
    points = torch.as_tensor(points, dtype=torch.float32).reshape(-1, 2)
    if key in MIXTURES:
        reference = MIXTURES[key].centres
    else:
        reference = CURVES[key][0](torch.linspace(0, 1, curve_points)).float()
    return torch.cat([torch.cdist(chunk, reference).min(1).values for chunk in points.split(4096)])
