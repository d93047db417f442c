"""Energy histograms: how far apart a model puts real test images, its own samples and
images of another dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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
        ax.hist(np.clip(v, lo, hi), bins=bins, density=True, alpha=0.45, color=colour,
                label=f"{name} (n={len(v)}, mean {np.mean(v):.2f})")
    ax.set_xlabel("energy D(x)")
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out, dpi=110)
