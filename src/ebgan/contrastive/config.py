"""The configuration of a contrastive run, in the style of ``ebgan.config.Config``.

Typed fields with one line of help each (``_f``), checked when read (``coerce``: a float is
never an int, a string never a bool, floats are finite), saved as the run's config.yaml and
compared on resume key by key: only ``RESUMABLE`` keys may change. Keys that only one loss
uses (``margin``, ``temperature``, ``learn_temperature``) default to None, are filled by
``resolve`` for the loss that uses them and refused, by name, with the others.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ebgan.config import _did_you_mean, _f, field_types, load_yaml
from ebgan.errors import EbganError
from ebgan.objectives.base import coerce

LOSSES = ("margin", "cosine-bce", "ntxent")
PAIRS = ("labels", "views")
ENCODERS = ("conv4", "small")
BATCH_PAIRS = ("all", "drawn")
# The keys only some losses use, their users and their defaults.
LOSS_KEYS: dict[str, dict[str, Any]] = {
    "margin": {"margin": 1.0},
    "temperature": {"cosine-bce": 0.1, "ntxent": 0.2},
    "learn_temperature": {"cosine-bce": True},
}
MIN_TEMPERATURE = 1e-3


@dataclass(init=False)
class ContrastiveConfig:
    # --- data
    dataset: str = _f("fashion-mnist", "mnist, fashion-mnist, cifar10, or folder:PATH (one sub-folder per class)")
    data_root: str | None = _f(
        None, "folder with one sub-folder per dataset (else EBGAN_DATA, the cache, /usr/share/datasets)"
    )
    data_split: str = _f(
        "train",
        "split to train on: train, or test-fit where only the test split exists (MNIST offline); "
        "evaluation then uses test, or test-heldout",
    )
    image_size: int = _f(32, "images are padded or resized to this once, at load")
    fit: str = _f("pad", "how images reach image_size: pad (centre, black border) or resize")
    channels: int | None = _f(None, "image channels; default: the dataset's own")
    val_fraction: float = _f(
        0.1, "share of the training split held out, never trained on: the validation pairs that choose the threshold"
    )
    # --- model
    encoder: str = _f("conv4", "conv4 (4 conv stages with BatchNorm) or small (the first attempt: 2 conv stages)")
    width: int | None = _f(None, "conv4: channels of the first stage, doubled at each stage (default 32)")
    embedding_dim: int = _f(128, "size of the embedding")
    normalize: bool = _f(
        True,
        "margin loss: L2-normalise the embeddings (their distances then lie in [0, 2]); the cosine losses always do",
    )
    # --- loss
    loss: str = _f(
        "margin",
        "margin (Hadsell et al. 2006, Euclidean distance), cosine-bce (BCE on a scaled cosine), "
        "ntxent (SimCLR; with --pairs views)",
    )
    margin: float | None = _f(None, "margin loss: the distance incompatible pairs are pushed to (default 1.0)")
    temperature: float | None = _f(
        None, "ntxent: tau (default 0.2); cosine-bce: the starting tau of logit = cos / tau + b (default 0.1)"
    )
    learn_temperature: bool | None = _f(
        None,
        "cosine-bce: learn tau = exp(-t) and the bias b, at 10 x lr (default true); false: cos / temperature, no bias",
    )
    pairs: str | None = _f(
        None,
        "labels (positives: same class, negatives: different classes, balanced) or views (two augmentations "
        "of one image, no labels); default: views for ntxent, labels otherwise",
    )
    batch_pairs: str | None = _f(
        None,
        "labels: all (default: the loss on every pair of the batch's images, compatible and incompatible "
        "pairs weighed equally) or drawn (on the drawn pairs only)",
    )
    flip: bool = _f(True, "views: random horizontal flips among the augmentations")
    # --- optimisation
    steps: int = _f(2500, "total optimisation steps of the run (a resume continues up to it)")
    batch_size: int = _f(64, "pairs per step (labels) or images per step, two views each (views)")
    lr: float = _f(1e-3, "Adam learning rate")
    seed: int = _f(0, "seed of weights, pair draws and augmentations")
    # --- run
    device: str = _f("auto", "auto (cuda if available), cpu, cuda, cuda:N")
    log_every: int = _f(50, "steps between metric lines (JSONL, TensorBoard, progress bar)")
    checkpoint_every: int = _f(1000, "steps between checkpoints; 0: only at the end")

    # Keys a resumed run may change: they do not change what is computed.
    RESUMABLE: typing.ClassVar[frozenset] = frozenset({"steps", "data_root", "device", "log_every", "checkpoint_every"})

    def __init__(self, **values: Any):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, f.default)
        for key, value in values.items():
            self.set(key, value, "config")

    def set(self, key: str, value: Any, where: str) -> None:
        if key not in FIELDS:
            raise EbganError(f"{where}: unknown contrastive config key {key!r}{_did_you_mean(key, FIELDS)}")
        kind, nullable = FIELDS[key]
        if value is None and not nullable:
            raise EbganError(f"{where}: {key} needs a value ({field_help(key)})")
        setattr(self, key, coerce(key, value, kind, where))

    @classmethod
    def keys(cls) -> list[str]:
        return list(FIELDS)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config", saved: bool = False) -> ContrastiveConfig:
        """A config from flat values (``saved`` is accepted for ``TrainingLoop.load``; every key is a field)."""
        cfg = cls()
        for key, value in dict(values).items():
            cfg.set(key, value, source)
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> ContrastiveConfig:
        path = Path(path)
        try:
            values = load_yaml(path.read_text())
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
            raise EbganError(f"cannot read {path} ({str(e).splitlines()[0]}); is it a contrastive run's config?") from e
        if values is None:  # an empty file (or only comments): no keys; 0, false or [] are refused below
            values = {}
        if not isinstance(values, dict):
            raise EbganError(f"{path} must hold a mapping of config keys to values")
        unknown = [k for k in values if k not in FIELDS]
        if unknown:
            raise EbganError(
                f"{path} is not a contrastive run's config (it has {', '.join(map(str, unknown[:3]))}); "
                "a GAN run is resumed with: ebgan train --resume RUN"
            )
        return cls.from_dict(values, str(path), saved=True)

    def updated(self, **values: Any) -> ContrastiveConfig:
        return ContrastiveConfig.from_dict({**self.to_dict(), **values}, "override")

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}

    def save(self, path: Path) -> None:
        from ebgan.files import write_text

        write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    def resolve(self) -> ContrastiveConfig:
        """Fill the defaults that depend on the loss and dataset, and validate; returns a new config."""
        from ebgan.data.registry import dataset_spec
        from ebgan.data.splits import TEST_FIT, TRAIN, check_split

        c = ContrastiveConfig.from_dict(self.to_dict())
        _one_of("loss", c.loss, LOSSES)
        _one_of("encoder", c.encoder, ENCODERS)
        if c.pairs is None:
            c.pairs = "views" if c.loss == "ntxent" else "labels"
        _one_of("pairs", c.pairs, PAIRS)
        _check(
            (c.loss == "ntxent") == (c.pairs == "views"),
            "--loss ntxent trains on --pairs views (its negatives are the other images of the batch)"
            if c.loss == "ntxent"
            else f"--pairs views trains with --loss ntxent only; --loss {c.loss} needs labelled pairs "
            "(--pairs labels, the default)",
        )
        if c.pairs == "labels":
            c.batch_pairs = "all" if c.batch_pairs is None else c.batch_pairs
            _one_of("batch_pairs", c.batch_pairs, BATCH_PAIRS)
        else:
            _check(c.batch_pairs is None, "--pairs views pairs the two views of each image; drop --batch-pairs")
        # Labelled pairs are not augmented, so --no-flip would be silently ignored there.
        _check(c.flip or c.pairs == "views", "--no-flip applies to --pairs views; labelled pairs are not augmented")
        for key, users in LOSS_KEYS.items():
            if c.loss in users:
                if getattr(c, key) is None:
                    setattr(c, key, users[c.loss])
            elif getattr(c, key) is not None:
                raise EbganError(
                    f"--loss {c.loss} does not use {key} (used by {', '.join(users)}); "
                    f"drop --{key.replace('_', '-')} or choose a loss that uses it"
                )
        if c.encoder == "conv4":
            c.width = 32 if c.width is None else c.width
            _check(c.width >= 1, f"width must be positive, got {c.width}")
        else:
            _check(c.width is None, "--encoder small has fixed widths (64, 128); drop --width")
        spec = dataset_spec(c.dataset)  # unknown names fail here, with a suggestion
        _check(spec.loader != "toy", f"{c.dataset} holds 2-D points; contrastive training needs images")
        if c.channels is None and spec.channels:
            c.channels = spec.channels
        check_split(c.data_split)
        if spec.loader == "folder":
            _check(
                c.data_split == TRAIN,
                "an image folder has no splits (test pairs are carved from it); drop --data-split",
            )
        else:
            _check(
                c.data_split in (TRAIN, TEST_FIT),
                f"train on {TRAIN} or {TEST_FIT}: evaluation needs a part of the test split the encoder "
                f"never saw, and {c.data_split} leaves none",
            )
        _check(c.steps > 0, f"steps must be positive, got {c.steps}")
        _check(c.batch_size >= 2, f"batch_size must be at least 2 (a positive and a negative), got {c.batch_size}")
        _check(c.image_size >= 16, f"image_size must be at least 16, got {c.image_size}")
        _check(c.encoder != "small" or c.image_size % 4 == 0, "--encoder small needs an image_size divisible by 4")
        _check(c.channels is None or c.channels in (1, 3), f"channels must be 1 or 3, got {c.channels}")
        _check(c.embedding_dim >= 1, f"embedding_dim must be positive, got {c.embedding_dim}")
        _check(c.seed >= 0, f"seed must be >= 0, got {c.seed}")
        _check(c.fit in ("pad", "resize"), f"fit must be 'pad' or 'resize', got {c.fit!r}")
        _check(0 < c.val_fraction <= 0.5, f"val_fraction must be in (0, 0.5], got {c.val_fraction}")
        _check(c.lr > 0, f"lr must be a positive learning rate, got {c.lr}")
        _check(c.margin is None or c.margin > 0, f"margin must be > 0, got {c.margin}")
        _check(c.temperature is None or c.temperature > 0, f"temperature must be > 0, got {c.temperature}")
        _check(c.log_every > 0, f"log_every must be positive, got {c.log_every}")
        _check(c.checkpoint_every >= 0, f"checkpoint_every must be >= 0, got {c.checkpoint_every}")
        # Logits are cos / temperature: below 1e-3 they exceed 1000 and the gradients scale with them,
        # so training diverges (CLIP caps its learnt scale at 100, i.e. a temperature of 0.01).
        _check(
            c.temperature is None or c.temperature >= MIN_TEMPERATURE,
            f"temperature must be at least {MIN_TEMPERATURE} (logits are cos / temperature), got {c.temperature}; "
            "0.05 to 0.5 is usual",
        )
        return c


FIELDS = field_types(ContrastiveConfig)


def field_help(key: str) -> str:
    return next(f.metadata["help"] for f in dataclasses.fields(ContrastiveConfig) if f.name == key)


def _one_of(key: str, value: str, known: tuple[str, ...]) -> None:
    if value not in known:
        close = difflib.get_close_matches(value, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise EbganError(f"unknown {key} {value!r}; {hint}use one of {', '.join(known)}")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise EbganError(message)
