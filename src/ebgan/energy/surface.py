"""Energy surfaces of 2-D toy runs: D's energy over a grid of the plane, with real and
generated points on top, and the same picture at moments during training.

Frames over training are recorded by ``EnergyFrames``, a trainer hook: every ``every``
steps it evaluates a copy of D (eval mode, BatchNorm statistics recomputed on real data,
no gradients) on the fixed grid and G on fixed noise,
and rewrites ``energy_frames.npz`` in the run folder. Recording energy grids rather
than D snapshots keeps the file small (a 96x96 float32 grid is 36 kB a frame), needs no
network code to draw, and leaves training untouched: the hook draws its noise from its
own generator and restores the networks' train mode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ebgan.data.toy import PLANE_EXTENT
from ebgan.errors import EbganError
from ebgan.files import save_npz
from ebgan.nets import sample_latent
from ebgan.plotting import pyplot, save_figure

FRAMES = "energy_frames.npz"
EXTENT = PLANE_EXTENT  # the toys lie inside [-0.95, 0.95]^2; show a margin of plane around them


def plane_grid(extent: float = EXTENT, resolution: int = 96) -> tuple[torch.Tensor, np.ndarray]:
    """(resolution^2, 2) points of [-extent, extent]^2, row-major from the bottom (y) up, and the axis."""
    axis = np.linspace(-extent, extent, resolution, dtype=np.float32)
    xx, yy = np.meshgrid(axis, axis)  # yy varies along rows: row 0 is y = -extent
    pts = torch.from_numpy(np.stack([xx.ravel(), yy.ravel()], 1))
    return pts, axis


def energy_grid(model, extent: float = EXTENT, resolution: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """D's energy on the grid as (resolution, resolution), with the axis values."""
    if not model.is_toy:
        raise EbganError("an energy surface needs a 2-D toy run (--dataset toy:NAME); image runs: ebgan energy score")
    pts, axis = plane_grid(extent, resolution)
    return model.energies(pts).numpy().reshape(resolution, resolution), axis


class EnergyFrames:
    """Trainer hook recording the energy surface and generated points every ``every`` steps."""

    def __init__(self, every: int, extent: float = EXTENT, resolution: int = 96, n_points: int = 500, seed: int = 0):
        if every < 1:
            raise EbganError(f"frames need every >= 1 step, got {every}")
        self.every, self.extent, self.resolution = every, extent, resolution
        self.z_seed, self.n_points = seed, n_points
        self.steps: list[int] = []
        self.grids: list[np.ndarray] = []
        self.fakes: list[np.ndarray] = []

    def keep_recorded(self, run: str | Path, step: int) -> None:
        """On a resume: take over the frames the run recorded up to ``step`` (its checkpoint); the
        ones after it are recorded again by the resumed training."""
        frames = load_frames(run)
        if frames is None:
            return
        keep = [i for i, s in enumerate(frames["steps"]) if s <= step]
        self.steps = [int(frames["steps"][i]) for i in keep]
        self.grids = [frames["grids"][i] for i in keep]
        self.fakes = [frames["fakes"][i] for i in keep]

    def due(self, trainer) -> bool:
        """Step 1, every ``every`` steps and the last: the frames a run's story needs."""
        return trainer.step == 1 or trainer.step % self.every == 0 or trainer.step == trainer.cfg.steps

    @torch.no_grad()
    def __call__(self, trainer) -> None:
        if not self.due(trainer):
            return None
        import copy

        from ebgan.energy.model import model_from_modules, recalibrate_batchnorm

        D = copy.deepcopy(trainer.D)  # recalibrate a copy: the run's own BN buffers stay as training left them
        recalibrate_batchnorm(D, trainer.batches.images, trainer.cfg.batch_size, max_batches=50)
        model = model_from_modules(D, trainer.objective, trainer.cfg, trainer.image_shape, trainer.step)
        grid, _ = energy_grid(model, self.extent, self.resolution)
        g = torch.Generator().manual_seed(self.z_seed)  # own noise: the run's RNG streams are untouched
        z = sample_latent(self.n_points, trainer.cfg.latent_dim, trainer.cfg.latent, g).to(trainer.device)
        was_training = trainer.G.training
        trainer.G.eval()
        fake = trainer.G(z).float().cpu().numpy()
        trainer.G.train(was_training)
        self.steps.append(trainer.step)
        self.grids.append(grid)
        self.fakes.append(fake)
        if trainer.writer.enabled:
            self.save(trainer.writer.folder / FRAMES)
        return None

    def save(self, path: Path) -> None:
        save_npz(
            path,
            steps=np.array(self.steps),
            grids=np.stack(self.grids),
            fakes=np.stack(self.fakes),
            extent=np.float32(self.extent),
        )


def load_frames(run: str | Path) -> dict | None:
    path = Path(run) / FRAMES
    if not path.is_file():
        return None
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _draw(ax, grid, extent, real=None, fake=None, title=None, vmax=None):
    im = ax.imshow(
        grid,
        origin="lower",
        extent=(-extent, extent, -extent, extent),
        cmap="viridis",
        vmin=0.0,
        vmax=vmax,
        interpolation="bilinear",
    )
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=1.5, c="white", alpha=0.5, linewidths=0, label="real")
    if fake is not None:
        ax.scatter(fake[:, 0], fake[:, 1], s=2.5, c="#ff3030", alpha=0.8, linewidths=0, label="generated")
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=9)
    return im


def plot_surface(
    model,
    out: str | Path,
    real: np.ndarray | None = None,
    fake: np.ndarray | None = None,
    extent: float = EXTENT,
    resolution: int = 160,
) -> Path:
    """One heat map of D's energy with real (white) and generated (red) points on top."""
    plt = pyplot()

    grid, _ = energy_grid(model, extent, resolution)
    vmax = float(np.quantile(grid, 0.98))  # a few huge energies far out would wash out the map
    fig, ax = plt.subplots(figsize=(5.6, 5))
    im = _draw(ax, grid, extent, real, fake, vmax=vmax)
    fig.colorbar(im, ax=ax, label=f"energy D(x) ({model.cfg.option('energy', model.objective.name)})")
    ax.set_title(f"{model.cfg.objective} on {model.cfg.dataset}, step {model.step}", fontsize=10)
    if real is not None or fake is not None:
        ax.legend(loc="upper right", fontsize=7, markerscale=4, framealpha=0.6)
    fig.tight_layout()
    return save_figure(fig, out, dpi=110)


def plot_frames(frames: dict, out: str | Path, real: np.ndarray | None = None, max_frames: int = 8) -> Path:
    """A strip of recorded frames (energy surface + generated points) over training."""
    plt = pyplot()

    n = len(frames["steps"])
    if n == 0:
        raise EbganError("the run recorded no energy frames")
    pick = np.unique(np.linspace(0, n - 1, min(n, max_frames)).round().astype(int))
    extent = float(frames["extent"])
    fig, axes = plt.subplots(1, len(pick), figsize=(2.4 * len(pick), 2.6), squeeze=False)
    for ax, i in zip(axes[0], pick):
        grid = frames["grids"][i]
        _draw(
            ax,
            grid,
            extent,
            real,
            frames["fakes"][i],
            title=f"step {int(frames['steps'][i])}",
            vmax=float(np.quantile(grid, 0.98)),
        )
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return save_figure(fig, out, dpi=100)
