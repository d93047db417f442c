"""Matplotlib for files only (no display on servers), and one way to save a figure."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend, imported on first use (it is slow)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out: str | Path, dpi: int = 110, **kwargs) -> Path:
    """Save ``fig`` to ``out`` atomically (parent folders created) and free it."""
    from ebgan.files import atomic_write

    out = Path(out)
    try:
        atomic_write(out, lambda f: fig.savefig(f, format=out.suffix.lstrip(".").lower() or "png", dpi=dpi, **kwargs))
    finally:
        pyplot().close(fig)
    return out
