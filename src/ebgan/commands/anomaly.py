"""``ebgan anomaly``: the one-class anomaly benchmark, EBGAN energy vs a plain autoencoder
(and any other energy: ``--models ebgan-pt,ebgan,autoencoder,dae,sparse-ae,contractive-ae,dsm,cd``).

Train on the normal class(es) of the training split, score the whole test split by
energy, report AUROC and AUPRC with the anomalies as positives, per class and mean,
as mean ± spread over ``--seeds`` seeds. Objective options (--margin, --noise-std, ...)
go to every model that declares them.
``--cross mnist`` instead trains on the whole training split and scores another
dataset's test images as the anomalies.
"""

from __future__ import annotations

import json
import sys

from ebgan.commands.config_args import PRESET_HELP, add_config_flags, config_overrides
from ebgan.config import Config, layered, load_preset
from ebgan.errors import EbganError

# Short CPU budget: about 10 classes x 2 models in minutes on a laptop (raise --steps for more).
DEFAULTS = {
    "model": "mlp",
    "model_args": {"n_layer_g": 3, "size_g": 512, "n_layer_d": 2, "size_d": 256},
    "image_size": 28,  # the MNIST family's own size: no padding pixels to reconstruct
    "steps": 500,
    "batch_size": 64,
    "lr_g": 1e-3,
    "lr_d": 1e-3,
    "log_every": 100,
    "sample_every": 0,
    "checkpoint_every": 0,
}


# The protocol picks the splits, and runs are scored once at the end: these keys mean nothing here,
# so their flags do not exist (argparse refuses them) and a preset's values are overridden, said once.
NOT_USED = frozenset({"data_split", "eval_every"})
RUN_FOLDER_ONLY = ("sample_every", "checkpoint_every")  # only with --runs-dir


def register(sub) -> None:
    p = sub.add_parser(
        "anomaly", help="one-class anomaly detection: EBGAN energy vs autoencoder (AUROC, AUPRC)", description=__doc__
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--normal-class",
        type=int,
        action="append",
        metavar="K",
        help="class to treat as normal (repeat for several settings)",
    )
    which.add_argument("--all-classes", action="store_true", help="every class in turn, one table")
    which.add_argument(
        "--cross",
        metavar="DATASET",
        help="train on all of --dataset, score DATASET's test split as anomalies (e.g. mnist)",
    )
    p.add_argument(
        "--protocol",
        choices=("one", "all-but-one"),
        default="one",
        help="'one': train on class K only; 'all-but-one': train on every class but K (K is the anomaly)",
    )
    p.add_argument(
        "--models",
        metavar="LIST",
        help="comma-separated objectives to compare (default: the config's objective and autoencoder), "
        "e.g. ebgan-pt,ebgan,autoencoder,dae,sparse-ae,contractive-ae,dsm,cd",
    )
    p.add_argument("--seeds", type=int, default=1, help="seeds per setting (the config's seed, +1, ...); spread = std")
    p.add_argument(
        "--ebgan-setup",
        choices=("paper-auto", "configured"),
        help="paper-auto: EBGAN's D is pretrained as an autoencoder for half of --steps, m is then its real energy "
        "(the paper's appendix advice) and adversarial training takes the other half, so D gets as many updates "
        "as the autoencoder's; it replaces a preset's margin. configured: the margin and steps as given. "
        "Default: paper-auto unless a margin option is given by flag or preset",
    )
    p.add_argument("--config", metavar="PRESET", help=PRESET_HELP)
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.add_argument("--runs-dir", help="also keep each trained model as a run folder here (for ebgan energy ...)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    add_config_flags(p, skip=NOT_USED)
    p.set_defaults(func=run)


def resolve_config(args) -> dict[str, Config]:
    """Config defaults < this command's short-budget defaults < preset < flags, then one config per model."""
    from ebgan.energy.anomaly import MARGIN_KEYS, model_configs, paper_auto_margin
    from ebgan.objectives import all_options

    values = dict(DEFAULTS)
    preset: dict = {}
    if args.config:
        preset = load_preset(args.config)
        ignored = sorted(k for k in NOT_USED if k in preset)
        if ignored:
            print(
                f"note: ebgan anomaly ignores {', '.join(ignored)} from {args.config} (the protocol sets the "
                "splits; models are scored once, at the end)",
                file=sys.stderr,
            )
        values = layered(values, {k: v for k, v in preset.items() if k not in NOT_USED})
    flags = config_overrides(args)
    given = [k for k in RUN_FOLDER_ONLY if k in flags]
    if given and not args.runs_dir:
        raise EbganError(
            f"{', '.join('--' + k.replace('_', '-') for k in given)} only matter with --runs-dir "
            "(without it no run folder is written); add --runs-dir DIR or drop them"
        )
    models = None
    if args.models is not None:
        if "objective" in flags:
            raise EbganError("--objective and --models both name the models; list them all in --models")
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        if not models:
            raise EbganError("--models is empty; name at least one objective, e.g. ebgan-pt,autoencoder")
    values = layered(values, flags)
    option_names = set(all_options())
    from_flags = {k: v for k, v in flags.items() if k in option_names}  # must be used by some model
    general = {k: v for k, v in values.items() if k not in option_names}
    base = Config.from_dict({**general, **({"objective": models[0]} if models else {})}, "anomaly")
    base.options.update({k: v for k, v in values.items() if k in option_names and k not in from_flags})
    configs = model_configs(base, models, from_flags)
    flag_margin = [k for k in MARGIN_KEYS if k in flags]
    if args.ebgan_setup == "paper-auto" and flag_margin:
        raise EbganError(
            "--ebgan-setup paper-auto sets the margin itself; drop "
            + ", ".join("--" + k.replace("_", "-") for k in flag_margin)
            + " or use --ebgan-setup configured"
        )
    preset_margin = [k for k in MARGIN_KEYS if k in preset]
    if args.ebgan_setup == "paper-auto" or (args.ebgan_setup is None and not flag_margin and not preset_margin):
        if preset_margin:
            print(
                f"note: --ebgan-setup paper-auto replaces {', '.join(preset_margin)} from {args.config}",
                file=sys.stderr,
            )
        configs = {name: paper_auto_margin(c) for name, c in configs.items()}
    cfg = next(iter(configs.values()))
    if cfg.dataset.startswith("toy:"):
        raise EbganError("anomaly works on labelled image datasets (mnist, fashion-mnist), not toy:NAME")
    return configs


def run(args) -> int:
    from ebgan.energy.anomaly import (
        cross_dataset_benchmark,
        format_cross,
        format_table,
        one_class_benchmark,
    )

    configs = resolve_config(args)
    cfg = next(iter(configs.values()))
    if args.cross:
        result = cross_dataset_benchmark(
            configs, args.cross, seeds=args.seeds, runs_dir=args.runs_dir, quiet=args.quiet
        )
        print(json.dumps(result, indent=2) if args.json else format_cross(result))
        _note_diverged(sum(result[m]["diverged"] for m in result["models"]))
        return 0
    classes = None if args.all_classes else args.normal_class  # None: every class of the dataset
    result = one_class_benchmark(
        configs, classes, protocol=args.protocol, seeds=args.seeds, runs_dir=args.runs_dir, quiet=args.quiet
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        what = "normal class (trained on it alone)" if args.protocol == "one" else "anomaly class (trained on the rest)"
        print(f"{cfg.dataset}, {what}; seeds {result['seeds']} (mean ± std); anomalies are the positives")
        for name, c in configs.items():
            pre = c.options.get("pretrain_steps") or 0
            how = (
                f"{pre} autoencoder + {c.steps} adversarial steps, m = the real energy then"
                if pre
                else f"{c.steps} steps"
            )
            print(f"  {name}: {how}")
        print()
        print(format_table(result))
    _note_diverged(sum(result["mean"][m]["diverged"] for m in result["models"]))
    return 0


def _note_diverged(count: int) -> None:
    """Said even with --quiet: the table's cells marked 'diverged' are not scores."""
    if count:
        print(
            f"ebgan: note: {count} training(s) diverged and are marked 'diverged' (a mean over classes leaves "
            "out a seed with a diverged class); lower the learning rate for those models",
            file=sys.stderr,
        )
