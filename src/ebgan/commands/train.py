"""``ebgan train``: a fresh run from a preset and flags, or ``--resume RUN``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

from ebgan.commands.config_args import PRESET_HELP, add_config_flags, config_overrides
from ebgan.config import Config, config_diff, layered, load_config_file, load_preset
from ebgan.errors import EbganError
from ebgan.train.checkpoint import load_checkpoint
from ebgan.train.run_dir import CHECKPOINT, CONFIG, check_resumable


def register(sub) -> None:
    p = sub.add_parser("train", help="train a GAN (EBGAN-PT by default)", description=__doc__)
    p.add_argument("--config", metavar="PRESET", help=PRESET_HELP)
    p.add_argument("--out", help="run folder to create (must not hold a run already)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in RUN up to --steps (which may be raised)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--energy-frames",
        type=int,
        default=0,
        metavar="N",
        help="2-D toy runs: record D's energy surface every N steps for 'ebgan energy surface' (0: off)",
    )
    add_config_flags(p)
    p.set_defaults(func=run)


def resolve_config(args) -> Config:
    """defaults < saved run config (resume) or preset < flags; a typed flag the config ignores is refused."""
    cfg = _resolve_config(args)
    ignored = cfg.ignored_keys()
    for key in config_overrides(args):
        if key in ignored:
            raise EbganError(
                f"--{key.replace('_', '-')} has no effect without {ignored[key]}; add that or drop the flag"
            )
    return cfg


def _resolve_config(args) -> Config:
    overrides = config_overrides(args)
    if args.config:
        overrides = layered(load_preset(args.config), overrides)
    if args.resume:
        check_resumable(Path(args.resume))
        saved_path = Path(args.resume) / CONFIG
        values = load_config_file(saved_path) if saved_path.is_file() else {}
        if not values:  # config.yaml deleted or emptied: the checkpoint holds the run's config too
            saved_path = Path(args.resume) / CHECKPOINT
            in_checkpoint = load_checkpoint(saved_path).get("config")
            if not isinstance(in_checkpoint, dict):
                raise EbganError(f"{saved_path} holds no config: it is damaged; start a new run with --out")
            values = in_checkpoint
        saved = Config.from_dict(values, str(saved_path), saved=True)
        cfg = saved.updated(**overrides).resolve()
        changed = config_diff(saved, cfg)
        if changed:
            listing = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
            raise EbganError(
                f"resume refuses a changed config ({listing}); only {sorted(Config.RESUMABLE)} may change. "
                "Start a new run with --out to change the others"
            )
        return cfg
    return Config.from_dict(overrides).resolve()


def energy_frames_hook(cfg: Config, every: int):
    from ebgan.data.toy import is_toy
    from ebgan.energy.surface import EnergyFrames

    if every < 0:
        raise EbganError(f"--energy-frames must be >= 0, got {every}")
    if not is_toy(cfg.dataset):
        raise EbganError(
            f"energy frames are drawn on the plane: --energy-frames needs a toy:NAME dataset, not {cfg.dataset!r}"
        )
    return EnergyFrames(every)


def _check_networks_take_the_images(cfg: Config) -> None:
    from ebgan.data.toy import is_toy
    from ebgan.nets import check_buildable
    from ebgan.objectives import build_objective

    if is_toy(cfg.dataset):
        return
    shape = (cfg.channels or 3, cfg.image_size, cfg.image_size)  # what load_training_data will give
    kind = build_objective(cfg).discriminator_kind
    check_buildable(cfg.model, kind, cfg.latent_dim, shape, cfg.model_args, cfg.latent)


def run(args) -> int:
    from ebgan.data import load_training_data
    from ebgan.train import Trainer

    cfg = resolve_config(args)
    # before decoding a dataset, which can take hours at scale; and what --dry-run prints can be built
    _check_networks_take_the_images(cfg)
    if args.dry_run:
        sys.stdout.write(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        return 0
    if args.resume and args.out and Path(args.out) != Path(args.resume):
        raise EbganError("--resume continues the run in its own folder; drop --out")
    folder = Path(args.resume or args.out or "")
    if not (args.resume or args.out):
        raise EbganError("say where the run goes: --out RUN_FOLDER (or --resume RUN_FOLDER)")
    hooks: list = []
    if args.energy_frames:
        hooks.append(energy_frames_hook(cfg, args.energy_frames))
    if cfg.eval_every:  # before any file is written: a missing classifier fails here
        from ebgan.metrics.hook import EvalHook

        hooks.append(EvalHook(cfg, folder))
    data = load_training_data(cfg)  # before creating the folder: a missing dataset writes nothing
    trainer = Trainer(cfg, data, run_dir=folder, resume=bool(args.resume))
    for hook in hooks:
        if hasattr(hook, "keep_recorded"):
            hook.keep_recorded(folder, trainer.step)
    trainer.hooks += hooks
    try:
        return _train(trainer, cfg, folder, args)
    finally:
        trainer.dist.close()


def _train(trainer, cfg: Config, folder: Path, args) -> int:
    from ebgan.report import write_report
    from ebgan.train import Stopped

    say = trainer.is_main  # under torchrun, rank 0 speaks and writes
    if trainer.step >= cfg.steps:
        if say:  # the checkpoint's generator, exported again: the fix for a damaged or deleted export
            trainer.export()
            print(
                f"{folder} is already at step {trainer.step} of {cfg.steps} (its generator exported again "
                "from the checkpoint); raise --steps to extend it"
            )
        trainer.writer.close()
        return 0
    t0 = time.perf_counter()
    try:
        trainer.train(progress=not args.no_progress)
    except Stopped as e:
        if say:
            print(f"ebgan: {e}; continue with: ebgan train --resume {folder}", file=sys.stderr)
        return 128 + e.signum
    if say:
        report = write_report(folder, cfg, time.perf_counter() - t0)
        print(f"trained {cfg.objective} to step {trainer.step} in {time.perf_counter() - t0:.1f} s; report: {report}")
    return 0
