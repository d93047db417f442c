"""``ebgan eval``: score a run's generator or any sample file against real data.

Scores use the project's own classifier features (``ebgan classifier train`` once per
dataset), with the real-vs-real value of every score printed beside it as the floor.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ebgan.data.sources import read_image
from ebgan.errors import EbganError


def register(sub) -> None:
    p = sub.add_parser("eval", help="score samples (Frechet/KID on classifier features, IS, I', P/R, modes)",
                       description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="run folder (or RUN/best) whose exported generator is sampled")
    src.add_argument("--samples", help="samples.npz (uint8 'images', N x C x H x W) or a folder of PNG files")
    p.add_argument("--dataset", help="dataset the samples imitate (default for --run: the run's dataset)")
    p.add_argument("--data-root", help="folder with one sub-folder per dataset (else EBGAN_DATA, ...)")
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


def run_samples(args) -> tuple[torch.Tensor, str, str]:
    """(uint8 samples, dataset, where they came from) for --run or --samples."""
    if args.n is not None and args.n < 1:
        raise EbganError(f"--n must be positive, got {args.n}")
    if args.samples:
        if not args.dataset:
            raise EbganError("--samples needs --dataset (which real data the samples imitate), e.g. --dataset mnist")
        images = load_samples(args.samples)
        if args.n is not None:
            if args.n > len(images):
                raise EbganError(f"--n {args.n} exceeds the {len(images)} images in {args.samples}")
            images = images[: args.n]
        return images, args.dataset, f"samples {args.samples}"
    from ebgan.data import to_uint8
    from ebgan.generator_io import SPEC, load_generator, sample_images

    G = load_generator(args.run, device=args.device)
    run_path = Path(args.run)
    spec = json.loads(((run_path if run_path.is_dir() else run_path.parent) / SPEC).read_text())
    dataset = args.dataset or spec.get("dataset")
    if not dataset:
        raise EbganError(f"{args.run} does not record its dataset; pass --dataset")
    images = to_uint8(sample_images(G, args.n or 10000, seed=args.seed)).cpu()
    return images, dataset, f"run {args.run} (step {spec.get('step', '?')}, noise seed {args.seed})"


# ------------------------------------------------------------------ evaluators: one per dataset kind
def evaluate_images(images, dataset, args) -> dict:
    """MNIST-family images: classifier features against the test split."""
    from ebgan.metrics.evaluate import evaluate_classifier_images

    return evaluate_classifier_images(images, dataset, args.data_root, seed=args.seed,
                                      inception_weights=args.inception_weights,
                                      log=lambda m: print(m, file=sys.stderr))


EVALUATORS = {"mnist": evaluate_images, "fashion-mnist": evaluate_images}  # 2-D toys: add their kind here


def evaluator_for(dataset: str):
    if dataset not in EVALUATORS:
        raise EbganError(f"ebgan eval knows datasets {', '.join(sorted(EVALUATORS))}; got {dataset!r}")
    return EVALUATORS[dataset]


# ------------------------------------------------------------------ output
ROWS = [  # (key, label, format)
    ("frechet", None, ".3f"), ("kid", None, ".5f"), ("is", "is (exp E KL(p(y|x)||p(y)))", ".3f"),
    ("i_prime", "i_prime (E KL(p(y)||p(y|x)))", ".3f"), ("precision", "precision (k=3)", ".4f"),
    ("recall", "recall (k=3)", ".4f"), ("modes", None, "d"), ("kl_uniform", "kl_uniform (modes)", ".4f"),
]


def _fmt(v, spec: str) -> str:
    return "inf" if v is None else format(v, spec)


def format_table(r: dict) -> str:
    floor = r.get("real_vs_real", {})
    labels = {"frechet": r.get("frechet_name", "frechet"), "kid": r.get("kid_name", "kid"),
              "modes": f"modes (of {r['modes_of']})" if "modes_of" in r else "modes"}
    rows = [(label or labels.get(key, key), _fmt(r[key], f), _fmt(floor[key], f) if key in floor else "")
            for key, label, f in ROWS if key in r]
    inc = r.get("inception", {})
    if inc.get("available"):
        for key in ("fid_inception", "kid_inception"):
            rows.append((key, f"{inc[key]:.4f}", f"{inc['real_vs_real'][key]:.4f}"))
    width = max(len(a) for a, _, _ in rows)
    lines = [f"{r['source']}: {r['n']} images vs {r['reference']}",
             f"features: {r['feature_extractor']}", "",
             f"{'score':<{width}}  {'samples':>12}  {'real vs real':>12}", "-" * (width + 28)]
    lines += [f"{a:<{width}}  {b:>12}  {c:>12}" for a, b, c in rows]
    if "histogram" in r:
        lines += ["", f"predicted classes: samples {r['histogram']}", f"                   real    {floor.get('histogram')}"]
    if floor.get("n") is not None:
        lines.append(f"real vs real: {floor.get('description', '')} (n={floor['n']})")
    if not inc.get("available", True):
        lines.append(inc["message"])
    return "\n".join(lines)


def run_toy(args, t0: float) -> int:
    """2-D toy runs: mode coverage of the Gaussian mixtures (ebgan.energy.toy_eval), not image scores."""
    from ebgan.energy.toy_eval import N_SAMPLES, format_toy_metrics, toy_metrics

    result = {"source": f"run {args.run}", **toy_metrics(args.run, n=args.n or N_SAMPLES, seed=args.seed,
                                                         device=args.device)}
    print(json.dumps(result) if args.json else format_toy_metrics(result if len(result) > 1 else {}))
    print(f"evaluated in {time.perf_counter() - t0:.1f} s", file=sys.stderr if args.json else sys.stdout)
    return 0


def run(args) -> int:
    t0 = time.perf_counter()
    if args.run:
        from ebgan.energy.toy_eval import is_toy_run

        if is_toy_run(args.run):
            return run_toy(args, t0)
    if args.dataset:
        evaluator_for(args.dataset)  # unknown dataset: fail before sampling
    images, dataset, source = run_samples(args)
    result = {"source": source, **evaluator_for(dataset)(images, dataset, args)}
    seconds = time.perf_counter() - t0
    if args.json:
        sys.stdout.write(json.dumps(result, allow_nan=False) + "\n")
        print(f"evaluated in {seconds:.1f} s", file=sys.stderr)  # timing off stdout: the JSON stays deterministic
    else:
        print(format_table(result))
        print(f"evaluated in {seconds:.1f} s")
    return 0
