"""Energy histograms: how far apart a model puts real test images, its own samples and
images of another dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ebgan.errors import EbganError
from ebgan.plotting import pyplot, save_figure

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def plot_histogram(groups: dict[str, np.ndarray], out: str | Path, title: str = "") -> Path:
    """Overlaid density histograms, one per named group of energies, on shared bins."""
    plt = pyplot()

    values = np.concatenate([np.asarray(v, dtype=np.float64) for v in groups.values()])
    lo, hi = np.quantile(values, [0.001, 0.995])  # a few extreme energies would squash the rest
    bins = np.linspace(lo, hi, 60)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for (name, v), colour in zip(groups.items(), COLOURS):
        v = np.asarray(v)
        ax.hist(
            np.clip(v, lo, hi),
            bins=bins,
            density=True,
            alpha=0.45,
            color=colour,
            label=f"{name} (n={len(v)}, mean {np.mean(v):.2f})",
        )
    ax.set_xlabel("energy D(x)")
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out, dpi=110)


def energy_histogram(
    model,
    run: str | Path,
    out: str | Path,
    n: int = 2000,
    other: str | None = None,
    data_root=None,
    device: str = "cpu",
) -> dict:
    """Energies of ``n`` real test images, ``n`` samples of the run's generator and (``other``) ``n``
    test images of another dataset: the plot at ``out`` and a summary with each group's mean energy
    and its AUROC against the real test images (higher energy = outlier)."""
    from ebgan.data.sources import load_images
    from ebgan.generator_io import load_generator, sample_images
    from ebgan.metrics.ranking import auroc

    cfg = model.cfg
    kw = dict(data_root=data_root or cfg.data_root, image_size=cfg.image_size, fit=cfg.fit, channels=cfg.channels)
    reference = f"{cfg.dataset} test"
    groups = {
        reference: model.energies(load_images(cfg.dataset, split="test", **kw).images[:n]).numpy(),
        "generated": model.energies(sample_images(load_generator(run, device=device), n, seed=0)).numpy(),
    }
    if other:
        groups[f"{other} test"] = model.energies(load_images(other, split="test", **kw).images[:n]).numpy()
    for name, v in groups.items():  # before the plot: no figure of a diverged D
        if not np.isfinite(v).all():
            raise EbganError(
                f"D gives NaN or infinite energies to {int((~np.isfinite(v)).sum())} of the {len(v)} {name} "
                f"images: {run} diverged; retrain it with a lower learning rate"
            )
    plot = plot_histogram(groups, out, title=f"{cfg.objective} on {cfg.dataset}, step {model.step}")
    base = groups[reference]
    aurocs = {
        name: auroc(np.r_[base, v], np.r_[np.zeros(len(base)), np.ones(len(v))])
        for name, v in groups.items()
        if name != reference
    }
    return {
        "plot": str(plot),
        "reference": reference,
        "mean_energy": {k: float(np.mean(v)) for k, v in groups.items()},
        "auroc_vs_real_test": aurocs,
    }
