"""The run configuration: plain values, one comment each (defaults < preset YAML < CLI).

``resolve`` fills the values that depend on others (margin, pt_weight, image shape) and
validates everything, so a saved ``config.yaml`` is complete and a resumed run can be
compared with it key by key.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ebgan.errors import EbganError


@dataclass
class Config:
    # --- data
    dataset: str = "fashion-mnist"  # mnist, fashion-mnist, folder:PATH, toy:NAME (2-D points, see ebgan.data.toy)
    data_root: str | None = None  # folder with one sub-folder per dataset (else EBGAN_DATA, cache, /usr/share/datasets)
    data_split: str = "train"  # train or test (the offline MNIST copy has only test)
    image_size: int = 32  # images are padded or resized to this once, at load
    fit: str = "pad"  # pad (centre, black border) or resize
    channels: int | None = None  # None: the dataset's own
    # --- networks
    model: str = "seed32"  # network family: seed32, mlp (see ebgan.nets)
    model_args: dict = field(default_factory=dict)  # family options, e.g. {n_layer_g: 5}
    latent_dim: int = 62  # z ~ N(0, I) of this size
    # --- objective
    objective: str = "ebgan-pt"  # ebgan-pt, ebgan (and the GAN family, see ebgan.objectives)
    energy: str = "l2"  # l2 (paper), l2sq, mse: units of the autoencoder energy
    margin: float | None = None  # hinge margin m; None: 10 in L2 units, converted to the energy's units
    margin_schedule: str = "constant"  # constant, linear (to 0 over margin_decay_steps), auto (from pretraining)
    margin_decay_steps: int = 0  # steps for the linear schedule to reach 0
    pt_weight: float | None = None  # pull-away weight; None: 0.1 for ebgan-pt, 0 for ebgan
    gan_loss: str = "non-saturating"  # vanilla GAN generator loss: non-saturating or minimax
    gp_weight: float = 10.0  # WGAN-GP gradient penalty weight
    n_critic: int = 5  # WGAN-GP critic steps per generator step
    gamma: float = 0.5  # BEGAN diversity ratio
    lambda_k: float = 0.001  # BEGAN k_t learning rate
    pretrain_steps: int = 0  # autoencoder pretraining steps on real data (MAGAN, automatic margin)
    # --- optimisation
    steps: int = 2000  # total generator steps of the run (resume continues up to it)
    batch_size: int = 64
    lr_g: float = 2e-4  # Adam learning rates
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0
    # --- run
    device: str = "auto"  # auto (cuda if available), cpu, cuda, cuda:N
    amp: bool = False  # bf16 autocast (CUDA); energies and losses stay float32
    compile: bool = False  # torch.compile the networks
    log_every: int = 50  # steps between metric lines (JSONL, TensorBoard, progress bar)
    sample_every: int = 500  # steps between fixed-noise sample grids; 0: only at the end
    checkpoint_every: int = 1000  # steps between checkpoints; 0: only at the end
    eval_every: int = 0  # steps between evaluations (ebgan eval metrics); 0: never

    # Keys a resumed run may change: they do not change what is computed.
    RESUMABLE = frozenset({"steps", "data_root", "device", "log_every", "sample_every", "checkpoint_every", "eval_every"})

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "Config":
        check_keys(values, source)
        return cls(**values)

    def updated(self, **values) -> "Config":
        check_keys(values, "override")
        return dataclasses.replace(self, **values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        from ebgan.files import write_text

        write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    def resolve(self) -> "Config":
        """Fill dependent defaults and validate; returns a new Config."""
        from ebgan.data.toy import TOY_MARGIN, is_toy, toy_key
        from ebgan.nets import resolve_model_args
        from ebgan.objectives import OBJECTIVES, margin_in_units

        c = dataclasses.replace(self, model_args=dict(self.model_args or {}))
        if c.objective not in OBJECTIVES:
            raise EbganError(f"unknown objective {c.objective!r}; use one of {', '.join(OBJECTIVES)}")
        if c.objective == "ebgan" and c.pt_weight not in (None, 0, 0.0):
            raise EbganError("objective 'ebgan' has no pull-away term; use --objective ebgan-pt to set pt_weight")
        if c.pt_weight is None:
            c.pt_weight = 0.1 if c.objective == "ebgan-pt" else 0.0
        if c.objective == "ebgan-pt" and c.pt_weight <= 0:
            raise EbganError("ebgan-pt needs pt_weight > 0; use --objective ebgan for no pull-away term")
        if c.channels is None and (c.dataset in ("mnist", "fashion-mnist")):
            c.channels = 1
        if is_toy(c.dataset):  # 2-D points: image_size/fit/channels do not apply; margin in 2-D units
            toy_key(c.dataset)
            _check(c.model == "mlp", f"toy datasets are 2-D points and need --model mlp, got {c.model!r}")
            if c.margin is None:
                c.margin = margin_in_units(TOY_MARGIN, c.energy, (2,))
        if c.margin is None:
            c.margin = margin_in_units(10.0, c.energy, (c.channels or 1, c.image_size, c.image_size))
        _resolve_objective_options(c)
        c.model_args = resolve_model_args(c.model, c.model_args)
        _check(c.margin >= 0, f"margin must be >= 0, got {c.margin}")
        _check(c.pt_weight >= 0, f"pt_weight must be >= 0, got {c.pt_weight}")
        _check(c.steps > 0, f"steps must be positive, got {c.steps}")
        _check(c.batch_size >= 1, f"batch_size must be positive, got {c.batch_size}")
        _check(
            c.batch_size >= 2 or c.pt_weight == 0,
            "the pull-away term is undefined for a batch of 1 (it averages over pairs); use --batch-size >= 2",
        )
        _check(c.image_size >= 4, f"image_size must be at least 4, got {c.image_size}")
        _check(c.latent_dim >= 1, f"latent_dim must be positive, got {c.latent_dim}")
        _check(c.fit in ("pad", "resize"), f"fit must be 'pad' or 'resize', got {c.fit!r}")
        from ebgan.data.splits import check_split  # the split names live with their definition
        check_split(c.data_split)
        for key in ("log_every", "sample_every", "checkpoint_every", "eval_every", "margin_decay_steps", "pretrain_steps"):
            _check(getattr(c, key) >= 0, f"{key} must be >= 0, got {getattr(c, key)}")
        _check(c.log_every > 0, "log_every must be positive")
        return c


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise EbganError(message)


def _resolve_objective_options(c: Config) -> None:
    """Validate the GAN-family options (gan, dcgan, wgan-gp, began, magan, margin schedules) in place."""
    from ebgan.nets import family
    from ebgan.objectives.ebgan import MARGIN_SCHEDULES
    from ebgan.objectives.gan import GAN_LOSSES

    ebgan_like = c.objective in ("ebgan", "ebgan-pt")
    _check(c.margin_schedule in MARGIN_SCHEDULES, f"margin_schedule must be one of {MARGIN_SCHEDULES}, got {c.margin_schedule!r}")
    if not ebgan_like:
        _check(c.pt_weight == 0, f"objective {c.objective!r} has no pull-away term; drop pt_weight or use ebgan-pt")
        _check(c.margin_schedule == "constant", f"margin_schedule is an EBGAN option; objective {c.objective!r} does not use it")
    if c.objective == "magan" or (ebgan_like and c.margin_schedule == "auto"):
        _check(c.pretrain_steps > 0, "magan and margin_schedule 'auto' need pretrain_steps > 0 (autoencoder steps on real data, e.g. 500)")
    _check(c.gan_loss in GAN_LOSSES, f"gan_loss must be one of {GAN_LOSSES}, got {c.gan_loss!r}")
    _check(c.gp_weight >= 0, f"gp_weight must be >= 0, got {c.gp_weight}")
    _check(c.n_critic >= 1, f"n_critic must be >= 1, got {c.n_critic}")
    _check(0 < c.gamma <= 1, f"gamma must be in (0, 1], got {c.gamma}")
    _check(c.lambda_k >= 0, f"lambda_k must be >= 0, got {c.lambda_k}")
    if c.objective == "dcgan":
        _check(c.model == "dcgan", f"objective 'dcgan' is the GAN loss on the dcgan networks; use --model dcgan (or --objective gan with {c.model!r})")
    if c.objective in ("gan", "dcgan", "wgan-gp"):
        _check(hasattr(family(c.model), "Critic"), f"objective {c.objective!r} needs a critic; model {c.model!r} has none (use mlp or dcgan)")
    if c.objective == "wgan-gp":
        _check(not c.compile, "wgan-gp's gradient penalty needs a double backward, which torch.compile does not support; drop --compile")
        if "batchnorm_d" in family(c.model).ARGS:
            # WGAN-GP's penalty is per sample: the critic must have no BatchNorm (the default here).
            _check(c.model_args.get("batchnorm_d", False) is False,
                   "wgan-gp needs a critic without BatchNorm (its gradient penalty is per sample); set model_args batchnorm_d=false")
            c.model_args["batchnorm_d"] = False


def check_keys(values: dict, source: str) -> None:
    known = Config.keys()
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise EbganError(f"{source}: unknown config key {key!r}{hint}")


def load_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise EbganError(f"config file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise EbganError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(values, dict):
        raise EbganError(f"{path} must hold a mapping of config keys to values")
    check_keys(values, str(path))
    return values


def config_diff(old: Config, new: Config) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ, except the ones a resume may change."""
    a, b = old.to_dict(), new.to_dict()
    return {k: (a[k], b[k]) for k in a if k not in Config.RESUMABLE and a[k] != b.get(k)}
