"""The interface between the trainer and a GAN objective.

Per iteration the trainer does, and knows nothing more (the order is fixed and
documented here once):

    for k in range(objective.d_steps):               # 1, or n_critic for WGAN-GP
        real = next batch;  fake = G(z)              # fresh z each time
        loss, metrics = objective.discriminator_loss(D, real, fake.detach())  -> D step
    loss, metrics = objective.generator_loss(D, fake)                         -> G step
    objective.end_step(step);  at an epoch's end: objective.end_epoch(epoch)

So the D step comes first and the G step reuses the last D step's G(z) (one G forward
per iteration), scored by the just-updated D, whose parameters get no gradient from
the G step. An objective with ``trains_generator = False`` (an energy shaped without a
generator) gets ``fake=None`` and no G step. Any state an objective carries (margin, k_t) lives in the objective and is
saved through ``state_dict``.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn as nn

from ebgan.distributed import Distributed
from ebgan.errors import EbganError
from ebgan.nets.layers import batchnorm_layers

if TYPE_CHECKING:
    from ebgan.config import Config

Metrics = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Option:
    """One option an objective reads from the config, declared beside its maths.

    ``default=None`` means "computed by the objective's ``resolve``" (e.g. the margin,
    whose unit depends on the energy and the image size). ``check`` returns an error
    message for a bad value, or None.
    """

    name: str
    type: type
    default: Any
    help: str
    choices: tuple = ()
    check: Callable[[Any], str | None] | None = None

    def validate(self, value: Any, owner: str) -> Any:
        """The value converted to the option's type, or a one-line EbganError naming ``owner``."""
        value = coerce(self.name, value, self.type, f"objective {owner!r}")
        if value is None:
            if self.default is not None:  # null means "computed" only where resolve computes it (the margin)
                raise EbganError(
                    f"{self.name} needs a value (objective {owner!r}: {self.help}); drop it for the default "
                    f"{self.default!r}"
                )
            return None
        if self.choices and value not in self.choices:
            raise EbganError(
                f"{self.name} must be one of {', '.join(map(str, self.choices))} for objective {owner!r}, got {value!r}"
            )
        problem = self.check(value) if self.check else None
        if problem:
            raise EbganError(f"{self.name} {problem} (objective {owner!r}), got {value!r}")
        return value


def coerce(name: str, value: Any, kind: type, where: str) -> Any:
    """``value`` as ``kind`` (bool, int, float, str, dict), or a one-line error naming the key and the type.

    Only lossless conversions: an int is a float, a float is never an int, a string is
    never a bool. Floats must be finite. None passes (it means "not set").
    """
    if value is None:
        return None
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
        dict: isinstance(value, dict),
    }[kind]
    if not ok:
        raise EbganError(f"{where}: {name} must be {_TYPE_WORDS[kind]}, got {value!r} ({type(value).__name__})")
    if kind is float:
        value = float(value)
        if not math.isfinite(value):
            raise EbganError(f"{where}: {name} must be a finite number, got {value!r}")
    return value


_TYPE_WORDS = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "a string",
    dict: "a mapping (key: value)",
}


def at_least(low: float) -> Callable[[Any], str | None]:
    return lambda v: None if v >= low else f"must be >= {low:g}"


def positive(v) -> str | None:
    return None if v > 0 else "must be > 0"


def critic_without_batchnorm(cfg: Config, why: str) -> None:
    """For objectives whose loss needs one sample's gradient (or energy) on its own: switch off
    BatchNorm in D where the model family has it (``batchnorm_d``) and refuse an explicit true.
    BatchNorm in train mode makes each sample's output depend on the whole batch, so
    d(sum_i D(x_i))/dx_j is no longer dD(x_j)/dx_j."""
    from ebgan.nets import family

    if "batchnorm_d" in family(cfg.model).ARGS:
        if cfg.model_args.get("batchnorm_d", False) is not False:
            raise EbganError(
                f"{cfg.objective} needs a critic without BatchNorm ({why}); set model_args batchnorm_d=false"
            )
        cfg.model_args["batchnorm_d"] = False


_WITHOUT_BATCHNORM: weakref.WeakSet = weakref.WeakSet()  # critics already checked: a set lookup per step


def check_no_batchnorm(D: nn.Module, why: str) -> nn.Module:
    """``D``, refused if it has BatchNorm: the same rule for a network built outside a Config. Each
    network is walked once; the objectives call this on every step."""
    if D not in _WITHOUT_BATCHNORM:
        if batchnorm_layers(D):
            raise EbganError(
                f"{why}, and BatchNorm in the critic mixes samples; "
                "use a critic without BatchNorm (e.g. --model-args batchnorm_d=false for the dcgan family)"
            )
        _WITHOUT_BATCHNORM.add(D)
    return D


class Objective:
    """Base class. A subclass sets ``name``, ``options`` (what it reads from the config) and
    implements the two losses; ``from_config`` builds it from a resolved Config."""

    name: str = ""
    options: ClassVar[tuple[Option, ...]] = ()
    discriminator_kind: str = "autoencoder"  # "autoencoder" or "critic"; see ebgan.nets
    d_steps: int = 1
    # False: an energy shaped without a generator (autoencoders, score matching, ...): the trainer
    # draws no z, passes ``fake=None`` to discriminator_loss and never calls generator_loss.
    trains_generator: bool = True
    # True: the loss differentiates D with respect to its input (gradient penalty, score, Langevin,
    # Jacobian), which fp16 autocast underflows; such objectives refuse --amp-dtype fp16.
    input_gradients: bool = False
    lr_factor: float = 1.0  # the trainer scales both learning rates by this after each step (BEGAN's decay)
    # Metrics that are the objective's state in force (a margin, k_t), not per-step measures: the
    # log line holds their value at the logged step, not a mean over the window, so a margin that
    # jumps mid-window is never logged at an in-between value it never had.
    state_metrics: ClassVar[tuple[str, ...]] = ()
    # Set by the trainer under torchrun: a term over the whole batch (pull-away) or a statistic that
    # drives the objective's state (k_t, MAGAN's means) must use dist.gather / dist.mean / dist.sum,
    # so that it is the global batch's and every process's state stays the same.
    dist: Distributed = Distributed()

    @classmethod
    def resolve(cls, cfg: Config) -> None:
        """Fill options that depend on the rest of the config and check combinations, in place.

        Called by ``Config.resolve`` after every declared option has its default and has
        passed its own check; ``cfg.options`` holds exactly this objective's options.
        """

    @classmethod
    def from_config(cls, cfg: Config) -> Objective:
        return cls(**cfg.options)

    @classmethod
    def check_options(cls, **values) -> None:
        """Validate constructor arguments with the same declarations Config uses."""
        declared = {o.name: o for o in cls.options}
        for key, value in values.items():
            if key in declared:
                declared[key].validate(value, cls.name)

    def discriminator_loss(
        self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor | None
    ) -> tuple[torch.Tensor, Metrics]:
        raise NotImplementedError

    def generator_loss(self, D: nn.Module, fake: torch.Tensor) -> tuple[torch.Tensor, Metrics]:
        raise NotImplementedError

    def prepare(self, trainer) -> None:
        """Called once before the first step of a fresh run (not on resume): pretraining."""

    def end_step(self, step: int) -> None:
        """Called after each iteration with the number of iterations done."""

    def end_epoch(self, epoch: int) -> None:
        """Called after the last batch of each pass over the data."""

    def energy(self, D: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Per-sample energy (or negated critic score): low on the data, high off it."""
        raise NotImplementedError(f"objective {self.name!r} defines no energy")

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
