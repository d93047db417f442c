"""``ebgan sample``: images from a run's exported generator, as .npz, PNG files or one grid."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ebgan.errors import EbganError

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


def save_png(image_chw: np.ndarray, path: Path) -> None:
    from PIL import Image

    hwc = image_chw.transpose(1, 2, 0)
    Image.fromarray(hwc[:, :, 0] if hwc.shape[2] == 1 else hwc).save(path, format="PNG")


def write_samples(images_uint8: np.ndarray, out: Path, fmt: str) -> None:
    """Write atomically: a temp file/folder renamed into place, so no half-written output."""
    import torch
    from torchvision.utils import make_grid

    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "npz":
        fd, tmp = tempfile.mkstemp(suffix=".npz", dir=out.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, images=images_uint8)
        os.replace(tmp, out)
    elif fmt == "grid":
        grid = make_grid(torch.from_numpy(images_uint8), nrow=int(np.ceil(np.sqrt(len(images_uint8)))), padding=2)
        tmp = out.with_name(out.name + ".tmp.png")
        save_png(grid.numpy(), tmp)
        os.replace(tmp, out)
    else:
        if out.exists() and any(out.iterdir()):
            raise EbganError(f"{out} exists and is not empty; choose another --out folder")
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=out.name + ".tmp"))
        width = len(str(len(images_uint8) - 1))
        for i, img in enumerate(images_uint8):
            save_png(img, tmp / f"{i:0{width}d}.png")
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)


def run(args) -> int:
    from ebgan.data import to_uint8
    from ebgan.generator_io import load_generator, sample_images

    if args.n < 1:
        raise EbganError(f"--n must be positive, got {args.n}")
    out = Path(args.out)
    fmt = infer_format(out, args.format)
    G = load_generator(args.run, device=args.device)
    images = to_uint8(sample_images(G, args.n, seed=args.seed)).numpy()
    write_samples(images, out, fmt)
    print(f"wrote {args.n} samples of shape {tuple(images.shape[1:])} to {out} ({fmt})")
    return 0
