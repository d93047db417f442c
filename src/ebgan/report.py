"""The end-of-run report: a loss/energy plot and a short markdown summary."""

from __future__ import annotations

from pathlib import Path

from ebgan.config import Config
from ebgan.files import write_text
from ebgan.generator_io import SPEC, read_spec
from ebgan.plotting import pyplot, save_figure
from ebgan.train.run_dir import grid_step, read_metrics

PANELS = [
    ("losses", ("loss_d", "loss_g")),
    ("energies", ("energy_real", "energy_fake", "energy_fake_g", "margin")),
    ("hinge and pull-away", ("hinge_active", "pull_away")),
]


def plot_metrics(folder: Path, out: Path | None = None) -> Path | None:
    rows = read_metrics(folder)
    if not rows:
        return None
    panels = [(t, [k for k in keys if any(k in r for r in rows)]) for t, keys in PANELS]
    panels = [(t, keys) for t, keys in panels if keys]
    other = sorted({k for r in rows for k in r} - {"step", "images_per_s"} - {k for _, ks in panels for k in ks})
    if other:  # objectives other than EBGAN log their own quantities
        panels.append(("other", other[:6]))
    fig, axes = pyplot().subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (title, keys) in zip(axes[0], panels):
        for k in keys:
            pts = [(r["step"], r[k]) for r in rows if k in r]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out or Path(folder) / "losses.png", dpi=100)


def write_report(folder: Path, cfg: Config, wall_seconds: float | None = None) -> Path:
    folder = Path(folder)
    rows = read_metrics(folder)
    plot = plot_metrics(folder)
    # by step, not by name: step_1000000.png sorts before step_999999.png
    grids = sorted((p for p in (folder / "samples").glob("step_*.png") if grid_step(p) >= 0), key=grid_step)
    last = rows[-1] if rows else {}
    speeds = [r["images_per_s"] for r in rows[1:] or rows if "images_per_s" in r]
    lines = [
        f"# Run report: {cfg.objective} / {cfg.model} on {cfg.dataset}",
        "",
        f"- steps: {last.get('step', 0)} of {cfg.steps}, batch {cfg.batch_size}, seed {cfg.seed}",
        f"- objective {cfg.objective}: " + (", ".join(f"{k} {v}" for k, v in cfg.options.items()) or "no options"),
    ]
    if "margin" in last:  # the margin in force (schedules, MAGAN and auto margins move it)
        schedule = cfg.option("margin_schedule")
        lines.append(
            f"- margin: {last['margin']:.4g} at the last logged step" + (f" ({schedule} schedule)" if schedule else "")
        )
    if (folder / SPEC).is_file():  # the grids are drawn by the generator that is exported: say which one
        spec = read_spec(folder)
        shown = "generator.safetensors and the sample grids" if grids else "generator.safetensors"
        lines.append(f"- generator ({shown}): {spec.get('generator', 'raw')}, exported at step {spec.get('step', '?')}")
    if wall_seconds is not None:
        lines.append(f"- wall time this session: {wall_seconds:.1f} s")
    if speeds:
        lines.append(f"- training speed: {sum(speeds) / len(speeds):.0f} images/s (mean of logged intervals)")
    lines += ["", "## Last logged metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4g} |" for k, v in last.items() if k != "step"]
    if plot:
        lines += ["", f"![losses and energies]({plot.name})"]
    if grids:
        lines += [
            "",
            f"## Samples at step {grid_step(grids[-1])}",
            "",
            f"![samples](samples/{grids[-1].name})",
        ]
    return write_text(folder / "report.md", "\n".join(lines) + "\n")
