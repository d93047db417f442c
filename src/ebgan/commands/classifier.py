"""``ebgan classifier``: train or inspect the feature classifier that ``ebgan eval`` scores with.

It trains on the train split where that exists, else on test-fit, and is tested on the
disjoint test or test-heldout split (``ebgan.data.splits``).
"""

from __future__ import annotations

import json

import torch

from ebgan.errors import EbganError


def register(sub) -> None:
    p = sub.add_parser("classifier", help="the feature classifiers used by 'ebgan eval'", description=__doc__)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    t = actions.add_parser("train", help="train and cache the classifier for a dataset (once)")
    t.add_argument(
        "--dataset",
        required=True,
        help="a dataset with evaluation 'classifier' in the registry (mnist, fashion-mnist, ...)",
    )
    t.add_argument("--data-root", help="folder with one sub-folder per dataset (else EBGAN_DATA, ...)")
    t.add_argument("--epochs", type=int, default=4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    t.add_argument("--limit", type=int, help="train on only this many images (quick checks)")
    t.add_argument("--force", action="store_true", help="replace a cached classifier")
    t.set_defaults(func=run_train)
    s = actions.add_parser("show", help="print a cached classifier's metadata (JSON)")
    s.add_argument("--dataset", required=True)
    s.set_defaults(func=run_show)


def run_train(args) -> int:
    from ebgan.metrics.classifier import (
        SPEC,
        check_dataset,
        classifier_dir,
        load_meta,
        train_classifier,
    )

    check_dataset(args.dataset)
    if args.epochs < 1:
        raise EbganError(f"--epochs must be positive, got {args.epochs}")
    if args.threads < 0:
        raise EbganError(f"--threads must be >= 0 (0: torch's default), got {args.threads}")
    if (classifier_dir(args.dataset) / SPEC).is_file() and not args.force:
        meta = load_meta(args.dataset)
        raise EbganError(
            f"a classifier for {args.dataset} is already cached in {classifier_dir(args.dataset)} "
            f"(held-out accuracy {meta['test_accuracy']:.4f}); pass --force to replace it"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    meta = train_classifier(
        args.dataset,
        args.data_root,
        epochs=args.epochs,
        seed=args.seed,
        limit=args.limit,
        log=lambda m: print(m, flush=True),
    )
    print(
        f"{meta['name']}: held-out accuracy {meta['test_accuracy']:.4f} ({meta['split_note']}: "
        f"{meta['n_train']} training, {meta['n_test']} test images); "
        f"{meta['feature_dim']}-d features; {meta['train_seconds']} s; cached in {classifier_dir(args.dataset)}"
    )
    return 0


def run_show(args) -> int:
    from ebgan.metrics.classifier import load_meta

    print(json.dumps(load_meta(args.dataset), indent=2))
    return 0
