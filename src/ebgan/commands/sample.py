"""``ebgan sample``: images from a run's exported generator, as .npz, PNG files or one grid (a 2-D toy
run's points: float ``points`` in an .npz, as ``ebgan energy score`` reads them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ebgan.config import check_seed
from ebgan.errors import EbganError
from ebgan.files import atomic_dir, check_new_folder, save_npz, save_png

FORMATS = ("npz", "png", "grid")


def register(sub) -> None:
    p = sub.add_parser("sample", help="draw samples from a trained generator", description=__doc__)
    p.add_argument("--run", required=True, help="run folder (or a generator.safetensors file)")
    p.add_argument("--n", type=int, default=64, help="number of samples")
    p.add_argument("--seed", type=int, default=0, help="noise seed: same seed, same samples")
    p.add_argument("--out", required=True, help="samples.npz, grid.png, or a folder for --format png")
    p.add_argument("--format", choices=FORMATS, help="default: from --out (.npz, .png = grid, else a folder of PNGs)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def infer_format(out: Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    return {".npz": "npz", ".png": "grid"}.get(out.suffix.lower(), "png")


def write_samples(images_uint8: np.ndarray, out: Path, fmt: str) -> None:
    """Write atomically: a temp file/folder renamed into place, so no half-written output."""
    import torch
    from torchvision.utils import make_grid

    if fmt == "npz":
        save_npz(out, images=images_uint8)
    elif fmt == "grid":
        grid = make_grid(torch.from_numpy(images_uint8), nrow=int(np.ceil(np.sqrt(len(images_uint8)))), padding=2)
        save_png(out, grid.numpy())
    else:
        width = len(str(len(images_uint8) - 1))
        with atomic_dir(out) as tmp:
            for i, img in enumerate(images_uint8):
                save_png(tmp / f"{i:0{width}d}.png", img)


def run(args) -> int:
    from ebgan.data import to_uint8
    from ebgan.generator_io import load_generator, sample_images

    if args.n < 1:
        raise EbganError(f"--n must be positive, got {args.n}")
    check_seed(args.seed, "--seed")
    out = Path(args.out)
    fmt = infer_format(out, args.format)
    if fmt == "png":
        check_new_folder(out)  # now, not after sampling
    elif out.is_dir():
        example = out / ("samples.npz" if fmt == "npz" else "grid.png")
        raise EbganError(f"--out {out} is a folder; pass a file name such as {example}")
    from ebgan.metrics.runs import run_info

    G = load_generator(args.run, device=args.device)
    kind = run_info(args.run)["generator"]
    if len(G.image_shape) == 1:  # type: ignore[arg-type]  # a 2-D toy run: points, not images
        if fmt != "npz":
            raise EbganError(
                f"{args.run} is a 2-D toy run: its samples are points, not images; write them to an .npz "
                "(float 'points', N x 2), e.g. --out points.npz"
            )
        points = sample_images(G, args.n, seed=args.seed).numpy()
        save_npz(out, points=points)
        shape = tuple(points.shape[1:])
        print(f"wrote {_count(args.n, 'point')} of shape {shape} to {out} (npz 'points'; {kind} generator)")
        return 0
    images = to_uint8(sample_images(G, args.n, seed=args.seed)).numpy()
    write_samples(images, out, fmt)
    print(f"wrote {_count(args.n, 'sample')} of shape {tuple(images.shape[1:])} to {out} ({fmt}; {kind} generator)")
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
