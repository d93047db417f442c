"""``ebgan sweep``: the paper's MNIST grid search (Figures 2-3) and margin sweep (Figure 9).

  ebgan sweep --grid paper-mnist --objectives ebgan,gan --sample 64 --steps 2000 --workers 2 --out DIR
  ebgan sweep --grid paper-margin --seeds 2 --steps 2000 --out DIR
  ebgan sweep --grid paper-mnist --objectives ebgan,gan --shard 3/16 --steps 20000 --out DIR   # a job array
  ebgan sweep summary DIR [DIR ...]     # histograms of I', the margin curve, summary.md

Run the same command again to continue a killed sweep: finished settings are never trained
twice. The library: ``ebgan.experiments.sweep``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="the paper's MNIST grid search and margin sweep, resumable and shardable",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--grid", default="paper-mnist", help="paper-mnist (Figures 2-3) or paper-margin (Figure 9)")
    p.add_argument(
        "--objectives",
        help="comma-separated: ebgan, gan, ebgan-pt (paper-mnist; default ebgan,gan); paper-margin has ebgan only",
    )
    p.add_argument("--sample", type=int, help="a seeded random sample of this many settings per objective")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample")
    p.add_argument("--seeds", type=int, default=1, help="training seeds per setting (paper-margin: 2 or more)")
    p.add_argument("--steps", type=int, default=2000, help="generator steps per run")
    p.add_argument("--workers", type=int, default=1, help="processes at once, splitting the CPU threads (and GPUs)")
    p.add_argument("--shard", default="0/1", help="i/k: run only the i-th of k disjoint parts of the selection")
    p.add_argument("--dataset", default="mnist", help="mnist or fashion-mnist")
    p.add_argument(
        "--data-split", default="train", help="training split of every run; test-fit where only the test split exists"
    )
    p.add_argument("--data-root", help="folder with one sub-folder per dataset")
    p.add_argument("--device", default="auto", help="auto spreads workers over the visible GPUs")
    p.add_argument("--keep-runs", action="store_true", help="keep every run folder under OUT/runs/")
    p.add_argument("--out", help="sweep folder (created, or continued when it exists)")
    p.set_defaults(func=run)
    s = p.add_subparsers(dest="sweep_command", metavar="summary")
    m = s.add_parser("summary", help="merge result files (any number of shards) into figures and a table")
    m.add_argument("folders", nargs="+", help="sweep folders or results-*.jsonl files")
    m.add_argument("--out", help="where figures and summary.md go (default: the first folder)")
    m.set_defaults(func=run_summary)


def run(args) -> int:
    from ebgan.errors import EbganError
    from ebgan.experiments.sweep import parse_shard, sweep

    if not args.out:
        raise EbganError("say where the sweep goes: --out DIR (the same DIR continues it)")
    base = {"dataset": args.dataset, "data_split": args.data_split, "data_root": args.data_root}
    sweep(
        args.grid,
        args.objectives,
        args.out,
        args.steps,
        sample=args.sample,
        seed=args.seed,
        seeds=args.seeds,
        workers=args.workers,
        shard=parse_shard(args.shard),
        keep_runs=args.keep_runs,
        base=base,
        device=args.device,
    )
    print(f"results in {args.out}; summarise with: ebgan sweep summary {args.out}")
    return 0


def run_summary(args) -> int:
    from ebgan.experiments.sweep import summarise

    out = Path(args.out or (args.folders[0] if Path(args.folders[0]).is_dir() else Path(args.folders[0]).parent))
    summarise(args.folders, out)
    print((out / "summary.md").read_text(), end="")
    return 0
