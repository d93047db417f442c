"""Matplotlib for files only (no display on servers), and one way to save a figure."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend, imported on first use (it is slow)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_path(out: str | Path) -> Path:
    """``out`` checked as a figure file, before the work that draws it: a format matplotlib writes
    (by its suffix; none: PNG), not a folder."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from ebgan.errors import EbganError

    out = Path(out)
    known = FigureCanvasAgg.get_supported_filetypes()
    if (out.suffix.lstrip(".").lower() or "png") not in known:
        raise EbganError(f"cannot write a figure as {out.name}; end the name in .png (or .{', .'.join(sorted(known))})")
    if out.is_dir():
        raise EbganError(f"{out} is a folder; pass a file name such as {out / 'figure.png'}")
    return out


def save_figure(fig, out: str | Path, dpi: int = 110, **kwargs) -> Path:
    """Save ``fig`` to ``out`` atomically (parent folders created) and free it."""
    from ebgan.files import atomic_write

    try:
        out = figure_path(out)
        atomic_write(out, lambda f: fig.savefig(f, format=out.suffix.lstrip(".").lower() or "png", dpi=dpi, **kwargs))
    finally:
        pyplot().close(fig)
    return out
