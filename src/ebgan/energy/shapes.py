"""LeCun's seven strategies for shaping an energy, side by side on one 2-D manifold.

An energy should be low on the data and high elsewhere; the failure to avoid is a flat
one (an autoencoder that learns the identity reconstructs every point: zero energy
everywhere). One representative per strategy, each trained on the same points:

    1  k-means (K = 20): the volume of low energy is fixed by construction
    2  grid-likelihood: exp(-E)/Z, Z summed on the grid (push data down, everything up)
    3  cd (Langevin negatives), ebgan and ebgan-pt (the generator picks the points pushed up)
    4  dsm: denoising score matching (small gradient, curvature around the data)
    5  dae: denoising autoencoder (dynamics that go to the manifold)
    6  sparse-ae: an L1 code limits the volume of low energy
    7  contractive-ae: make Enc (so Dec(Enc(y))) as constant as possible
    -  autoencoder: the unregularised reference

All but k-means are ordinary objectives (``ebgan.objectives``) trained by the ordinary
``Trainer`` on the ``mlp`` networks of the toy presets; k-means is fitted by Lloyd's
algorithm here. Per strategy, three numbers (``shape_scores``):

- ``auroc``: held-out manifold points (fresh draws of the dataset) against points of the
  plotted square at distance >= ``OFF_DISTANCE`` from the noiseless manifold; higher
  energy counts as off the manifold. 1 is a perfect separation, 0.5 none.
- ``spearman``: rank correlation, over the plotted grid, of the energy with the distance
  to the manifold. An energy that grows with the distance scores near 1.
- ``low_area``: share of the plotted square whose energy is below the 5th percentile of
  the held-out manifold points' energies: space wrongly "as low as the data" (the
  manifold itself covers about 1% of the square at its noise width).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ebgan.config import Config
from ebgan.data.toy import PLANE_EXTENT, make_toy, manifold_distance, toy_key
from ebgan.energy.surface import plane_grid
from ebgan.errors import EbganError
from ebgan.files import atomic_dir, check_new_folder, save_npz, write_json
from ebgan.plotting import pyplot, save_figure

# scipy.stats (through ebgan.metrics.ranking too) is imported where the scores are computed:
# ``ebgan energy`` imports this module to list the strategies in its help, and every ebgan
# command would otherwise pay about 0.6 s for it.

OFF_DISTANCE = 0.1  # "off the manifold": at least 10 noise std from the parabola and spiral
LOW_QUANTILE = 0.05
RESOLUTION = 96  # grid cells per side for the pictures and the grid scores
N_SCORE = 2000  # held-out manifold points and off-manifold points scored

# The toy presets' networks: G 4 x 256 (z of 4), D an over-complete autoencoder 2 -> 128 -> 128 -> 2
# (a critic 2 -> 128 -> 128 -> 1 for the scalar energies), which can learn the identity.
BASE = {
    "model": "mlp",
    "model_args": {"n_layer_g": 4, "size_g": 256, "n_layer_d": 3, "size_d": 128},
    "latent_dim": 4,
    "batch_size": 128,
    "lr_g": 5e-4,
    "lr_d": 5e-4,
    "log_every": 100,
    "sample_every": 0,
    "checkpoint_every": 0,
}


@dataclass(frozen=True)
class Strategy:
    key: str  # the panel's name; the objective's where there is one
    number: int  # LeCun's strategy (0: the unregularised reference)
    title: str
    settings: dict = field(default_factory=dict)  # objective options (beside BASE)


STRATEGIES = (
    Strategy("kmeans", 1, "k-means, K = 20"),
    Strategy("grid-likelihood", 2, "max. likelihood, Z on the grid"),
    Strategy("cd", 3, "contrastive divergence (Langevin)"),
    Strategy("ebgan", 3, "EBGAN (m = 0.2)", {"margin": 0.2}),
    Strategy("ebgan-pt", 3, "EBGAN-PT (m = 0.2)", {"margin": 0.2}),
    Strategy("dsm", 4, "denoising score matching", {"noise_std": 0.05}),
    Strategy("dae", 5, "denoising autoencoder", {"noise_std": 0.05}),
    Strategy("sparse-ae", 6, "sparse autoencoder", {"sparsity_weight": 0.01}),
    Strategy("contractive-ae", 7, "contractive autoencoder", {"contraction_weight": 1e-3}),
    Strategy("autoencoder", 0, "plain autoencoder (reference)"),
)
BY_KEY = {s.key: s for s in STRATEGIES}


class KMeansEnergy:
    """Strategy 1: E(y) = distance to the nearest of K centres found by Lloyd's algorithm
    from a k-means++ start (Arthur & Vassilvitskii 2007; a uniform start often leaves two
    centres in one cluster)."""

    def __init__(self, k: int = 20, iterations: int = 50, seed: int = 0):
        self.k, self.iterations, self.seed = k, iterations, seed
        self.centres: torch.Tensor | None = None

    def fit(self, points: torch.Tensor) -> KMeansEnergy:
        if points.shape[0] < self.k:
            raise EbganError(f"k-means with K = {self.k} needs at least {self.k} points, got {points.shape[0]}")
        g = torch.Generator().manual_seed(self.seed)
        centres = points[torch.randint(points.shape[0], (1,), generator=g)]
        for _ in range(self.k - 1):  # k-means++: each next centre drawn with probability ~ squared distance
            d2 = torch.cdist(points, centres).min(1).values.pow(2)
            pick = torch.multinomial(d2 if d2.sum() > 0 else torch.ones_like(d2), 1, generator=g)
            centres = torch.cat([centres, points[pick]])
        for _ in range(self.iterations):
            nearest = torch.cdist(points, centres).argmin(1)
            sums = torch.zeros_like(centres).index_add_(0, nearest, points)
            counts = torch.bincount(nearest, minlength=self.k).unsqueeze(1)
            centres = torch.where(counts > 0, sums / counts.clamp(min=1), centres)  # an empty cluster keeps its centre
        self.centres = centres
        return self

    def energies(self, points: torch.Tensor) -> torch.Tensor:
        if self.centres is None:
            raise EbganError("fit the k-means energy before scoring")
        return torch.cdist(torch.as_tensor(points, dtype=torch.float32), self.centres).min(1).values


@dataclass
class Trained:
    """One strategy's energy function and what to draw beside it."""

    energies: object  # callable: (N, 2) float tensor -> (N,) energies
    contrastive: np.ndarray | None  # the points pushed up (G's samples, Langevin negatives), or centres
    contrastive_label: str | None
    seconds: float


def off_manifold_points(dataset: str, n: int, distance: float, seed: int) -> torch.Tensor:
    """n uniform points of the plotted square at least ``distance`` from the manifold."""
    g = torch.Generator().manual_seed(seed)
    kept: list[torch.Tensor] = []
    total = 0
    for _ in range(100):
        cand = (torch.rand(8 * n, 2, generator=g) * 2 - 1) * PLANE_EXTENT
        cand = cand[manifold_distance(dataset, cand) >= distance]
        kept.append(cand)
        total += cand.shape[0]
        if total >= n:
            return torch.cat(kept)[:n]
    raise EbganError(f"fewer than {n} points of the square lie {distance} from {dataset}'s manifold")


def shape_scores(energy_fn, dataset: str, seed: int, resolution: int = RESOLUTION) -> tuple[dict, np.ndarray]:
    """The three numbers of the module docstring, and the energy on the grid (resolution, resolution)."""
    from scipy.stats import spearmanr

    from ebgan.metrics.ranking import auroc

    on = make_toy(dataset, N_SCORE, seed=seed + 1000)  # held out: not the training draw
    off = off_manifold_points(dataset, N_SCORE, OFF_DISTANCE, seed + 2000)
    e_on, e_off = energy_fn(on).double().numpy(), energy_fn(off).double().numpy()
    grid, _ = plane_grid(PLANE_EXTENT, resolution)
    e_grid = energy_fn(grid).double().numpy()
    if not (np.isfinite(e_on).all() and np.isfinite(e_off).all() and np.isfinite(e_grid).all()):
        raise EbganError("the energy is not finite on the plane (training diverged); lower the learning rate")
    labels = np.r_[np.zeros(len(e_on), np.int64), np.ones(len(e_off), np.int64)]
    # a constant energy has no rank order: 0 (spearmanr would warn and give NaN)
    rho = spearmanr(e_grid, manifold_distance(dataset, grid).numpy()).statistic if np.ptp(e_grid) > 0 else 0.0
    scores = {
        "auroc": auroc(np.r_[e_on, e_off], labels),
        "spearman": float(rho),
        "low_area": float((e_grid < np.quantile(e_on, LOW_QUANTILE)).mean()),
    }
    return scores, e_grid.reshape(resolution, resolution)


def train_strategy(strategy: Strategy, dataset: str, points: torch.Tensor, steps: int, seed: int) -> Trained:
    """Fit one strategy on ``points`` with ``steps`` steps (k-means: Lloyd iterations to convergence)."""
    start = time.perf_counter()
    if strategy.key == "kmeans":
        km = KMeansEnergy(seed=seed).fit(points)
        assert km.centres is not None
        return Trained(km.energies, km.centres.numpy(), "centres", time.perf_counter() - start)
    from ebgan.energy.model import input_shape_of, model_from_modules, recalibrate_batchnorm
    from ebgan.generator_io import sample_images
    from ebgan.train import Trainer

    values = {
        **BASE,
        **strategy.settings,
        "dataset": dataset,
        "objective": strategy.key,
        "steps": steps,
        "seed": seed,
        "device": "cpu",
    }
    cfg = Config.from_dict(values, f"strategy {strategy.key}").resolve()
    trainer = Trainer(cfg, points)
    trainer.train(progress=False)
    recalibrate_batchnorm(trainer.D, points, cfg.batch_size)
    model = model_from_modules(trainer.D, trainer.objective, cfg, input_shape_of(cfg), trainer.step)
    contrastive, label = None, None
    if trainer.objective.trains_generator:
        contrastive, label = sample_images(trainer.sampling_generator, 500, seed=seed).numpy(), "G(z)"
    elif isinstance(buffer := getattr(trainer.objective, "buffer", None), torch.Tensor):
        contrastive, label = buffer[:500].cpu().numpy(), "Langevin negatives"
    return Trained(model.energies, contrastive, label, time.perf_counter() - start)


def parse_strategies(text: str | None) -> list[Strategy]:
    if not text:
        return list(STRATEGIES)
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown or not keys:
        raise EbganError(f"unknown strategy {', '.join(unknown) or '(none)'}; choose from {', '.join(BY_KEY)}")
    return [BY_KEY[k] for k in dict.fromkeys(keys)]


def run_shapes(
    dataset: str,
    out: str | Path,
    steps: int = 2000,
    seed: int = 0,
    strategies: list[Strategy] | None = None,
    quiet: bool = False,
) -> dict:
    """Train every strategy on ``dataset``'s points; write shapes.png, shapes.json and
    energies.npz into ``out`` (all or nothing); return the JSON's content."""
    toy_key(dataset)  # a clear error for an unknown toy name
    if steps < 1:
        raise EbganError(f"--steps must be at least 1, got {steps}")
    check_new_folder(out)  # now, not after the training
    strategies = strategies or list(STRATEGIES)
    points = make_toy(dataset, seed=seed)
    result: dict = {
        "dataset": dataset,
        "steps": steps,
        "seed": seed,
        "off_distance": OFF_DISTANCE,
        "low_quantile": LOW_QUANTILE,
        "plane": [-PLANE_EXTENT, PLANE_EXTENT],
        "strategies": {},
    }
    grids, drawn = {}, {}
    for s in strategies:
        if not quiet:
            print(f"{dataset}: training {s.key} ({steps} steps)", file=sys.stderr, flush=True)
        trained = train_strategy(s, dataset, points, steps, seed)
        scores, grids[s.key] = shape_scores(trained.energies, dataset, seed)
        drawn[s.key] = trained
        result["strategies"][s.key] = {
            "strategy": s.number,
            "title": s.title,
            "settings": s.settings,
            **scores,
            "seconds": round(trained.seconds, 2),
        }
        if not quiet:
            print(
                f"  {s.key}: AUROC {scores['auroc']:.3f}, Spearman {scores['spearman']:.3f}, "
                f"low area {scores['low_area']:.1%} ({trained.seconds:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    with atomic_dir(out) as tmp:
        fig = plot_shapes(result, grids, drawn, points.numpy())
        save_figure(fig, tmp / "shapes.png")
        write_json(tmp / "shapes.json", result)
        save_npz(tmp / "energies.npz", **{k.replace("-", "_"): v.astype(np.float32) for k, v in grids.items()})
    return result


def plot_shapes(result: dict, grids: dict, drawn: dict, data: np.ndarray):
    """One panel per strategy: the energy (colours clipped to its grid's 1st-99th percentiles,
    so each panel shows its own shape), the data in white, the points pushed up in red."""
    plt = pyplot()
    keys = list(grids)
    cols = min(5, len(keys))
    rows = -(-len(keys) // cols)
    # constrained layout keeps each panel's two-line title clear of the panel above (tight_layout
    # let the second row's titles overlap the first row's square images)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 3.75 * rows), squeeze=False, layout="constrained")
    shown = data[np.random.default_rng(0).permutation(len(data))[:600]]
    ext = PLANE_EXTENT
    for ax, key in zip(axes.flat, keys, strict=False):
        grid, r = grids[key], result["strategies"][key]
        lo, hi = np.percentile(grid, [1, 99])
        ax.imshow(
            grid,
            origin="lower",
            extent=(-ext, ext, -ext, ext),
            cmap="viridis",
            vmin=lo,
            vmax=hi if hi > lo else lo + 1e-9,
            interpolation="bilinear",
        )
        ax.scatter(shown[:, 0], shown[:, 1], s=1.0, c="white", alpha=0.6, linewidths=0)
        t = drawn[key]
        if t.contrastive is not None:
            size = 14 if t.contrastive_label == "centres" else 2.0
            ax.scatter(t.contrastive[:, 0], t.contrastive[:, 1], s=size, c="#ff3030", alpha=0.8, linewidths=0)
        number = f"{r['strategy']}. " if r["strategy"] else ""
        ax.set_title(
            f"{number}{r['title']}\nAUROC {r['auroc']:.3f}  rho {r['spearman']:.2f}  low {r['low_area']:.1%}",
            fontsize=8,
        )
        ax.set_xlim(-ext, ext)
        ax.set_ylim(-ext, ext)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.suptitle(
        f"{result['dataset']}: the energy each strategy shapes ({result['steps']} steps; white: data; red: the points "
        f"pushed up, or k-means' centres)\nAUROC: held-out data against points >= {result['off_distance']} from the "
        "manifold; rho: Spearman of energy with distance; low: share of the square below the data's 5th percentile",
        fontsize=8,
    )
    return fig
