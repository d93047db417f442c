"""``ebgan eval``: score a run's generator or any sample file against real data.

Scores use the project's own classifier features (``ebgan classifier train`` once per
dataset), with the real-vs-real value of every score printed beside it as the floor. The
reference split is disjoint from the images the generator and the classifier trained on
(``ebgan.data.splits``); the output names it. The work is done by ``ebgan.metrics``
(``evaluate_run_folder``, ``evaluate_samples``, ``format_result``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ebgan.data.sources import read_image
from ebgan.data.splits import SPLITS
from ebgan.errors import EbganError
from ebgan.metrics.runs import evaluator_for  # noqa: F401  (ebgan compare imports it from here)


def register(sub) -> None:
    p = sub.add_parser("eval", help="score samples (Frechet/KID on classifier features, IS, I', P/R, modes)",
                       description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="run folder (or RUN/best) whose exported generator is sampled")
    src.add_argument("--samples", help="samples.npz (uint8 'images', N x C x H x W) or a folder of PNG files")
    p.add_argument("--dataset", help="dataset the samples imitate (default for --run: the run's dataset)")
    p.add_argument("--data-split", metavar="SPLIT",
                   help=f"--samples: the split their generator trained on ({', '.join(SPLITS)}), to score against "
                        "a reference disjoint from it (default: unknown, not checked); --run reads the run's config")
    p.add_argument("--data-root", help="folder with one sub-folder per dataset (else the run's, EBGAN_DATA, ...)")
    p.add_argument("--n", type=int, help="samples to score (--run: default 10000; --samples: default all)")
    p.add_argument("--seed", type=int, default=0, help="noise seed for --run, and the seed of KID subsets")
    p.add_argument("--inception-weights", metavar="PATH", help="torch-fidelity InceptionV3 weights file (offline)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--device", default="cpu", help="device for sampling the generator")
    p.set_defaults(func=run)


# ------------------------------------------------------------------ inputs
def load_npz(path: Path) -> torch.Tensor:
    try:
        with np.load(path, allow_pickle=False) as f:
            if "images" not in f.files:
                raise EbganError(f"{path} has no 'images' array (keys: {', '.join(f.files) or 'none'}); "
                                 "write samples with 'ebgan sample --out samples.npz'")
            images = f["images"]
    except (OSError, ValueError) as e:
        raise EbganError(f"cannot read {path} as .npz: {e}") from e
    if images.dtype != np.uint8:
        raise EbganError(f"{path}: 'images' is {images.dtype}, expected uint8 in [0, 255] (as 'ebgan sample' writes)")
    return torch.from_numpy(images)


def load_png_folder(path: Path) -> torch.Tensor:
    files = sorted(path.glob("*.png"))
    if not files:
        raise EbganError(f"{path} holds no .png files; pass a folder written by 'ebgan sample --format png'")
    images = []
    for p in files:
        images.append(read_image(p))
        if images[-1].shape != images[0].shape:
            raise EbganError(f"{p} is {tuple(images[-1].shape)} but {files[0].name} is {tuple(images[0].shape)}; "
                             "all PNG files must share one size and channel count")
    return torch.stack(images)


def load_samples(path: str) -> torch.Tensor:
    p = Path(path)
    if p.is_dir():
        return load_png_folder(p)
    if p.is_file() and p.suffix.lower() == ".npz":
        return load_npz(p)
    if not p.exists():
        raise EbganError(f"--samples {p} does not exist")
    raise EbganError(f"--samples {p} is neither a .npz file nor a folder of PNG files")


# ------------------------------------------------------------------ the command
def run(args) -> int:
    from ebgan.metrics import evaluate_run_folder, evaluate_samples, format_result

    t0 = time.perf_counter()
    common = dict(seed=args.seed, data_root=args.data_root, inception_weights=args.inception_weights)
    if args.run:
        if args.data_split:
            raise EbganError("--data-split is for --samples; a run's split is read from its config")
        result = evaluate_run_folder(args.run, n=args.n, dataset=args.dataset, device=args.device, **common)
    else:
        if not args.dataset:
            raise EbganError("--samples needs --dataset (which real data the samples imitate), e.g. --dataset mnist")
        evaluator_for(args.dataset)  # unknown dataset: fail before reading the samples
        result = evaluate_samples(load_samples(args.samples), args.dataset, data_split=args.data_split, n=args.n,
                                  source=f"samples {args.samples}", **common)
    seconds = time.perf_counter() - t0
    if args.json:
        sys.stdout.write(json.dumps(result, allow_nan=False) + "\n")
        print(f"evaluated in {seconds:.1f} s", file=sys.stderr)  # timing off stdout: the JSON stays deterministic
    else:
        print(format_result(result))
        print(f"evaluated in {seconds:.1f} s")
    return 0

