"""``ebgan energy``: look at and use a run's energy function D(x).

surface    heat map of D over the plane for a 2-D toy run, real and generated points on top
           (record frames over training with ``ebgan train --energy-frames N``)
score      energy of each image (files, folders, .npz) or toy point (.npz 'points')
histogram  energies of real test images, generated images and another dataset's images
shapes     LeCun's strategies for shaping an energy, trained side by side on a 2-D manifold
           (one figure, a panel per strategy, with AUROC, rank correlation and low-energy area)
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path

from ebgan.errors import EbganError
from ebgan.files import write_json, write_text
from ebgan.plotting import figure_path


def register(sub) -> None:
    p = sub.add_parser(
        "energy",
        help="energy surfaces, image scores and histograms from a run's D",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    esub = p.add_subparsers(dest="energy_command", required=True, metavar="SUBCOMMAND")

    s = esub.add_parser("surface", help="energy heat map of a 2-D toy run (+ a strip of frames if recorded)")
    s.add_argument("--run", required=True, help="run folder of a toy:NAME run")
    s.add_argument("--out", required=True, help="PNG to write; the strip goes to OUT_frames.png")
    s.add_argument("--n", type=int, default=1000, help="real and generated points to draw")
    s.add_argument("--extent", type=float, default=1.2, help="half-width of the plotted square")
    s.add_argument("--device", default="cpu")
    _bn_flags(s)
    s.set_defaults(func=run_surface)

    c = esub.add_parser("score", help="energy of each image or point")
    c.add_argument("--run", required=True, help="run folder")
    c.add_argument("inputs", nargs="+", help="image files, folders of images, or .npz files (uint8 'images')")
    c.add_argument(
        "--fit",
        choices=("pad", "resize"),
        help="bring images of another size to the run's size this way (default: refuse other sizes)",
    )
    c.add_argument("--out", help="write scores to a .csv or .json file instead of printing them")
    c.add_argument("--batch-size", type=int, default=500)
    c.add_argument("--device", default="cpu")
    c.add_argument("--data-root", help="folder with the datasets, for --bn-stats train (default: the run's data_root)")
    _bn_flags(c)
    c.set_defaults(func=run_score)

    h = esub.add_parser("histogram", help="energy histogram: real test, generated, and another dataset's images")
    h.add_argument("--run", required=True, help="run folder of an image run")
    h.add_argument("--out", required=True, help="PNG to write")
    h.add_argument("--other", help="another dataset whose test split to score (e.g. mnist under a fashion-mnist model)")
    h.add_argument("--data-root", help="folder with the datasets (default: the run's data_root)")
    h.add_argument("--n", type=int, default=2000, help="images per group (test images: the first n)")
    h.add_argument("--json", action="store_true", help="print the summary as JSON")
    h.add_argument("--device", default="cpu")
    _bn_flags(h)
    h.set_defaults(func=run_histogram)

    from ebgan.energy.shapes import STRATEGIES

    sh = esub.add_parser(
        "shapes",
        help="the strategies for shaping an energy, side by side on a 2-D manifold (figure + JSON)",
        description="Train one representative of each energy-shaping strategy on the same 2-D points and draw "
        "their energy surfaces in one figure (OUT/shapes.png), with the scores in OUT/shapes.json and the "
        "grids in OUT/energies.npz. Strategies: "
        + ", ".join(f"{s.key} ({s.number or 'reference'})" for s in STRATEGIES),
    )
    sh.add_argument("--dataset", required=True, help="toy:parabola, toy:spiral, toy:swissroll, toy:8gaussians, ...")
    sh.add_argument("--out", required=True, help="output folder (new or empty)")
    sh.add_argument("--steps", type=int, default=2000, help="training steps per strategy")
    sh.add_argument("--seed", type=int, default=0)
    sh.add_argument("--strategies", help="comma-separated subset (default: all)")
    sh.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    sh.add_argument("--json", action="store_true", help="print the scores as JSON (else a table)")
    sh.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    sh.set_defaults(func=run_shapes)


def _bn_flags(p) -> None:
    p.add_argument(
        "--bn-stats",
        choices=("train", "saved"),
        default="train",
        help="D's BatchNorm statistics: 'train' recomputes them on the run's training data for its final "
        "weights (default; the saved running averages trail them), 'saved' uses the checkpoint's",
    )


def load_model(args, check=None):
    """The run's energy model, its BatchNorm statistics recomputed on its training data unless --bn-stats saved."""
    from ebgan.energy.model import load_energy_model

    model = load_energy_model(args.run, device=args.device, bn_stats="saved")
    if check:
        check(model)  # refuse the wrong kind of run before loading its training data
    if args.bn_stats == "train":
        model.recalibrate(getattr(args, "data_root", None))
    return model


def _need_toy(model) -> None:
    if not model.is_toy:
        raise EbganError(
            f"{model.cfg.dataset} run: energy surfaces need a toy:NAME run. "
            "For images use 'ebgan energy score' or 'ebgan energy histogram'"
        )


def _need_images(model) -> None:
    if model.is_toy:
        raise EbganError(f"{model.cfg.dataset} is a toy run; use 'ebgan energy surface' for it")


# ---------------------------------------------------------------------- surface
def run_surface(args) -> int:
    from ebgan.data.toy import make_toy
    from ebgan.energy.surface import load_frames, plot_frames, plot_surface
    from ebgan.generator_io import load_generator, sample_images

    if args.n < 0 or not 0 < args.extent < math.inf:  # NaN fails the comparison too
        raise EbganError(f"--n must be >= 0 and --extent a finite number > 0, got --n {args.n} --extent {args.extent}")
    figure_path(args.out)
    model = load_model(args, check=_need_toy)
    real = make_toy(model.cfg.dataset, n=max(args.n, 1), seed=model.cfg.seed + 1000).numpy()[: args.n]
    fake = sample_images(load_generator(args.run, device=args.device), max(args.n, 1), seed=0).numpy()[: args.n]
    out = plot_surface(model, args.out, real=real, fake=fake, extent=args.extent)
    print(f"wrote {out}")
    frames = load_frames(args.run)
    if frames is not None:
        strip = plot_frames(frames, out.with_name(out.stem + "_frames.png"), real=real[:500])
        print(f"wrote {strip} ({len(frames['steps'])} frames recorded)")
    return 0


# ---------------------------------------------------------------------- score
def run_score(args) -> int:
    import torch

    from ebgan.data.samples import fit_to, read_inputs

    if args.batch_size < 1:
        raise EbganError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.out:
        _scores_path(Path(args.out))
    model = load_model(args)
    names, items = read_inputs(args.inputs, channels=model.input_shape[0] if not model.is_toy else 1)
    if model.is_toy and any(t.dtype == torch.uint8 for t in items):
        raise EbganError(f"{args.run} is a 2-D toy run: score an .npz with float 'points' (N, 2), not images")
    if not model.is_toy:
        items = [fit_to(t, model.input_shape[-1], args.fit) for t in items]
        bad = [
            (n, tuple(t.shape[1:]))
            for n, t in zip(_first_names(names, items), items)
            if tuple(t.shape[1:]) != model.input_shape
        ]
        if bad:
            name, shape = bad[0]
            raise EbganError(
                f"{name} has shape {shape} but the run's D takes {model.input_shape} "
                f"({len(bad)} input(s) differ); {_shape_fix(shape, model)}"
            )
    energies = torch.cat([model.energies(t, args.batch_size) for t in items]).tolist()
    rows = list(zip(names, energies))
    if args.out:
        _write_scores(rows, Path(args.out))
        print(f"wrote {len(rows)} energies to {args.out}")
    else:
        for name, e in rows:
            print(f"{e:.6g}\t{name}")
    return 0


def _shape_fix(shape: tuple, model) -> str:
    """What brings an input of ``shape`` to the run's D: --fit only changes the size."""
    want = model.input_shape
    if len(shape) != len(want):
        return "2-D points are scored by toy runs; pass images"
    if shape[0] != want[0]:
        return f"save them with {want[0]} channel(s) (image files are converted; .npz arrays are taken as they are)"
    fit = model.cfg.fit
    if fit == "pad" and max(shape[1:]) > want[-1]:
        return "pass --fit resize (padding cannot shrink them)"
    return f"pass --fit {fit} to fit them as training did"


def _first_names(names: list[str], items) -> list[str]:
    """The name of the first sample of each item (items are files or whole .npz batches)."""
    out, i = [], 0
    for t in items:
        out.append(names[i])
        i += t.shape[0]
    return out


def _scores_path(out: Path) -> Path:
    """--out of 'energy score', checked before any scoring: a .csv or .json file, not a folder."""
    if out.suffix.lower() not in (".csv", ".json"):
        raise EbganError(f"--out must end in .csv or .json, got {out.name}")
    if out.is_dir():
        raise EbganError(f"--out {out} is a folder; pass a .csv or .json file name")
    return out


def _write_scores(rows, out: Path) -> None:
    if _scores_path(out).suffix.lower() == ".json":
        write_json(out, [{"input": n, "energy": e} for n, e in rows])
    else:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["input", "energy"])
        w.writerows(rows)
        write_text(out, buf.getvalue())


# ---------------------------------------------------------------------- histogram
def run_histogram(args) -> int:
    from ebgan.energy.histogram import energy_histogram

    if args.n < 2:
        raise EbganError(f"--n must be at least 2, got {args.n}")
    figure_path(args.out)
    model = load_model(args, check=_need_images)
    summary = energy_histogram(
        model, args.run, args.out, n=args.n, other=args.other, data_root=args.data_root, device=args.device
    )
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"wrote {summary['plot']}")
    for name, mean in summary["mean_energy"].items():
        extra = summary["auroc_vs_real_test"].get(name)
        tail = f"  AUROC vs {summary['reference']} (higher energy = outlier): {extra:.3f}" if extra is not None else ""
        print(f"  {name:>22}: mean energy {mean:.3f}{tail}")
    return 0


def run_shapes(args) -> int:
    import torch

    from ebgan.energy.shapes import parse_strategies
    from ebgan.energy.shapes import run_shapes as shapes

    strategies = parse_strategies(args.strategies)
    if args.threads < 0:
        raise EbganError(f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    result = shapes(args.dataset, args.out, steps=args.steps, seed=args.seed, strategies=strategies, quiet=args.quiet)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{result['dataset']}, {result['steps']} steps, seed {result['seed']}; "
        f"off-manifold: >= {result['off_distance']} from the curve"
    )
    print("| strategy | model | AUROC | Spearman | low-energy area | seconds |")
    print("|---|---|---|---|---|---|")
    for key, r in result["strategies"].items():
        print(
            f"| {r['strategy'] or '-'} | {key} | {r['auroc']:.3f} | {r['spearman']:.3f} | {r['low_area']:.2%} | "
            f"{r['seconds']:.0f} |"
        )
    print(f"wrote {Path(args.out) / 'shapes.png'}, shapes.json, energies.npz")
    return 0
