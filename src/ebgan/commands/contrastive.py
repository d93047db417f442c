"""``ebgan contrastive``: siamese energy models trained on image pairs (train, eval, demo-random)."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import yaml

from ebgan.commands.config_args import _add
from ebgan.errors import EbganError


def register(sub) -> None:
    from ebgan.contrastive.config import FIELDS, ContrastiveConfig

    p = sub.add_parser("contrastive", help="siamese energy models trained on image pairs", description=__doc__)
    commands = p.add_subparsers(dest="contrastive_command", required=True, metavar="COMMAND")

    t = commands.add_parser(
        "train",
        help="train a siamese encoder on pairs (margin, cosine-bce or ntxent loss)",
        description="Train a siamese encoder: E(x1, x2) = distance between the embeddings, low on pairs of "
        "the same class, high (up to a margin) on pairs of different classes; or self-supervised on "
        "two augmented views of each image (--loss ntxent).",
    )
    t.add_argument("--out", help="run folder to create (must not hold a run already)")
    t.add_argument("--resume", metavar="RUN", help="continue the run in RUN up to --steps (which may be raised)")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    group = t.add_argument_group("config ('--dry-run' shows the result)")
    for f in dataclasses.fields(ContrastiveConfig):
        default = "computed" if f.default is None else f.default
        _add(group, f.name, FIELDS[f.name][0], f"{f.metadata['help']} (default: {default})")
    t.set_defaults(func=run_train)

    e = commands.add_parser(
        "eval",
        help="verification accuracy, AUROC, k-NN and linear-probe accuracy, PCA plot of an encoder",
        description="Evaluate an encoder on held-out pairs: the threshold is chosen on validation pairs "
        "(a part of the training split never trained on), the accuracy measured on test pairs.",
    )
    which = e.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", metavar="RUN", help="a run folder written by 'ebgan contrastive train'")
    which.add_argument(
        "--from-ebgan", metavar="RUN", help="an EBGAN run folder: its autoencoder discriminator's embedding"
    )
    e.add_argument(
        "--random-encoder",
        action="store_true",
        help="the same architecture freshly initialised (BatchNorm statistics from training images), to compare",
    )
    e.add_argument("--pairs-count", type=int, default=10_000, metavar="N", help="validation and test pairs each")
    e.add_argument("--seed", type=int, default=0, help="seed of the pairs (and of a --random-encoder)")
    e.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        metavar="F",
        help="--from-ebgan: share of the run's training split used as validation pairs (default: 0.1); "
        "a contrastive run uses its own",
    )
    e.add_argument("--out", metavar="DIR", help="where eval.json and projection.png go (default: inside the run)")
    e.add_argument("--data-root", metavar="DIR", help="where the dataset is (else the usual discovery)")
    e.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default: cpu)")
    e.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    e.set_defaults(func=run_eval)

    d = commands.add_parser(
        "demo-random",
        help="the first attempt on random tensors, and why it cannot learn; then on real pairs",
        description="Reproduce the first attempt (cosine as a BCE logit, 16 random pairs with random labels), "
        "explain its result, and train the same model on real pairs for a short run.",
    )
    d.add_argument("--dataset", default="fashion-mnist", help="the real pairs' dataset (default: fashion-mnist)")
    d.add_argument("--data-split", default=None, help="train (default), or test-fit where only the test split exists")
    d.add_argument("--data-root", metavar="DIR", help="where the dataset is (else the usual discovery)")
    d.add_argument("--steps", type=int, default=200, help="steps of the real-pairs runs (default: 200)")
    d.add_argument("--seeds", type=int, default=5, help="seeds of the random-data runs (default: 5)")
    d.add_argument("--no-real", action="store_true", help="only the random-data part (no dataset needed)")
    d.add_argument("--json", action="store_true", help="print one JSON object instead of the text")
    d.set_defaults(func=run_demo)


# ---------------------------------------------------------------------- train
def resolve_config(args):
    """defaults < saved run config (resume) < flags; a resume may change RESUMABLE keys only."""
    from ebgan.contrastive.config import FIELDS, ContrastiveConfig
    from ebgan.train.run_dir import CONFIG, check_resumable

    overrides = {k: v for k, v in vars(args).items() if k in FIELDS}
    if not args.resume:
        return ContrastiveConfig.from_dict(overrides, "flags").resolve()
    check_resumable(Path(args.resume))
    saved = ContrastiveConfig.load(Path(args.resume) / CONFIG)
    changed = {
        k: (getattr(saved, k), v)
        for k, v in overrides.items()
        if k not in ContrastiveConfig.RESUMABLE and getattr(saved, k) != v
    }
    if changed:
        listing = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
        raise EbganError(
            f"resume refuses a changed config ({listing}); only {sorted(ContrastiveConfig.RESUMABLE)} may change. "
            "Start a new run with --out to change the others"
        )
    return saved.updated(**overrides).resolve()


def run_train(args) -> int:
    from ebgan.contrastive.data import training_part
    from ebgan.contrastive.trainer import ContrastiveTrainer
    from ebgan.train import Stopped

    cfg = resolve_config(args)
    if args.dry_run:
        sys.stdout.write(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        return 0
    if args.resume and args.out and Path(args.out) != Path(args.resume):
        raise EbganError("--resume continues the run in its own folder; drop --out")
    if not (args.resume or args.out):
        raise EbganError("say where the run goes: --out RUN_FOLDER (or --resume RUN_FOLDER)")
    folder = Path(args.resume or args.out)
    data = training_part(cfg)  # before creating the folder: a missing dataset writes nothing
    trainer = ContrastiveTrainer(cfg, data, run_dir=folder, resume=bool(args.resume))
    if trainer.step >= cfg.steps:
        trainer.writer.close()
        print(f"{folder} is already at step {trainer.step} of {cfg.steps}; raise --steps to extend it")
        return 0
    t0 = time.perf_counter()
    try:
        trainer.train(progress=not args.no_progress)
    except Stopped as e:
        print(f"ebgan: {e}; continue with: ebgan contrastive train --resume {folder}", file=sys.stderr)
        return 128 + e.signum
    print(
        f"trained a {cfg.encoder} encoder with the {cfg.loss} loss to step {trainer.step} in "
        f"{time.perf_counter() - t0:.1f} s; evaluate it with: ebgan contrastive eval --run {folder}"
    )
    return 0


# ---------------------------------------------------------------------- eval
def run_eval(args) -> int:
    from ebgan.contrastive.evaluate import contrastive_source, ebgan_source, evaluate_source, format_result
    from ebgan.train.loop import pick_device

    device = pick_device(args.device)
    run = Path(args.run or args.from_ebgan)
    if not run.is_dir():
        raise EbganError(f"run folder {run} does not exist")
    if args.run and args.val_fraction is not None:
        raise EbganError("a contrastive run's validation part is fixed by its val_fraction; drop --val-fraction")
    if args.val_fraction is not None and not 0 < args.val_fraction <= 0.5:
        raise EbganError(f"--val-fraction must be in (0, 0.5], got {args.val_fraction}")
    if args.run:
        source = contrastive_source(run, device, args.random_encoder, args.seed, args.data_root)
        default = run / ("eval-random" if args.random_encoder else "eval")
    else:
        source = ebgan_source(run, device, args.random_encoder, args.seed, args.data_root, args.val_fraction)
        default = run / ("contrastive-eval-random" if args.random_encoder else "contrastive-eval")
    result = evaluate_source(source, device, args.pairs_count, args.seed, Path(args.out) if args.out else default)
    print(json.dumps(result, indent=1) if args.json else format_result(result))
    return 0


# ---------------------------------------------------------------------- demo
def run_demo(args) -> int:
    from ebgan.contrastive import demo

    if args.steps < 1 or args.seeds < 1:
        raise EbganError("--steps and --seeds must be at least 1")
    random_runs = {epochs: [demo.random_pairs(s, epochs) for s in range(args.seeds)] for epochs in (10, 50)}
    real = None
    if not args.no_real:
        real = demo.real_pairs(args.dataset, args.steps, 0, args.data_root, data_split=args.data_split)
    if args.json:
        print(json.dumps({"random": {str(k): v for k, v in random_runs.items()}, "real": real}, indent=1))
    else:
        print(demo.report(random_runs, real, args.dataset, args.steps))
    return 0
