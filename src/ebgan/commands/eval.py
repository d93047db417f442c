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

from ebgan.config import check_seed
from ebgan.data.samples import read_sample_images
from ebgan.data.splits import SPLITS
from ebgan.errors import EbganError


def register(sub) -> None:
    p = sub.add_parser(
        "eval", help="score samples (Frechet/KID on classifier features, IS, I', P/R, modes)", description=__doc__
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="run folder (or RUN/best) whose exported generator is sampled")
    src.add_argument("--samples", help="samples.npz (uint8 'images', N x C x H x W) or a folder of PNG files")
    p.add_argument("--dataset", help="dataset the samples imitate (default for --run: the run's dataset)")
    p.add_argument(
        "--data-split",
        metavar="SPLIT",
        help=f"--samples: the split their generator trained on ({', '.join(SPLITS)}), to score against "
        "a reference disjoint from it (default: unknown, not checked); --run reads the run's config",
    )
    p.add_argument("--data-root", help="folder with one sub-folder per dataset (else the run's, EBGAN_DATA, ...)")
    p.add_argument(
        "--n", type=int, help="samples to score (--run: default 10000, toy runs 2500; --samples: default all)"
    )
    p.add_argument("--seed", type=int, default=0, help="noise seed for --run, and the seed of KID subsets")
    p.add_argument("--inception-weights", metavar="PATH", help="torch-fidelity InceptionV3 weights file (offline)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--device", default="cpu", help="device for sampling the generator")
    p.set_defaults(func=run)


# ------------------------------------------------------------------ inputs
def run(args) -> int:
    from ebgan.metrics import evaluate_run_folder, evaluate_samples, evaluator_for, format_result

    check_seed(args.seed, "--seed")
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
        result = evaluate_samples(
            read_sample_images(args.samples),
            args.dataset,
            data_split=args.data_split,
            n=args.n,
            source=f"samples {args.samples}",
            **common,
        )
    seconds = time.perf_counter() - t0
    if args.json:
        sys.stdout.write(json.dumps(result, allow_nan=False) + "\n")
        print(f"evaluated in {seconds:.1f} s", file=sys.stderr)  # timing off stdout: the JSON stays deterministic
    else:
        print(format_result(result))
        print(f"evaluated in {seconds:.1f} s")
    return 0
