"""The run configuration: plain values, one line of help each (defaults < preset YAML < CLI).

Two kinds of keys, one flat namespace (in YAML, flags and ``Config(...)`` alike):

- the fields below, which every run has (data, networks, optimisation, run);
- the chosen objective's own options (``margin``, ``pt_weight``, ``gp_weight``, ...),
  declared beside its maths in ``ebgan/objectives/<name>.py`` and kept in ``options``.
  An option the chosen objective does not use is refused, naming the objective.

Every value is checked against its declared type when it is read (a float is never an
int, a string never a bool, floats are finite). ``resolve`` fills the values that depend
on others (margin, image shape) and validates the rest, so a saved ``config.yaml`` is
complete and a resumed run can be compared with it key by key.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ebgan.errors import EbganError


def _f(default: Any, help: str) -> Any:
    """A config field: its default and its one line of help (shown by ``--help``)."""
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass(init=False)
class Config:
    # --- data
    dataset: str = _f(
        "fashion-mnist",
        "mnist, fashion-mnist, cifar10, celeba, lsun:CATEGORY, folder:PATH, "
        "or toy:NAME (2-D points, see ebgan.data.toy)",
    )
    data_root: str | None = _f(
        None, "folder with one sub-folder per dataset (else EBGAN_DATA, the cache, /usr/share/datasets)"
    )
    data_split: str = _f(
        "train",
        "split to train on: train, test-fit (6,000 of the test split, for machines with only a test "
        "split; the other 4,000, test-heldout, stay the evaluation reference), test or test-heldout "
        "(these two leave ebgan eval no disjoint reference: it refuses their runs)",
    )
    image_size: int = _f(32, "images are padded or resized to this once, at load")
    fit: str = _f("pad", "how images reach image_size: pad (centre, black border) or resize")
    channels: int | None = _f(None, "image channels; default: the dataset's own")
    # --- networks
    model: str = _f("seed32", "network family: seed32, mlp, dcgan, began (see ebgan.nets)")
    model_args: dict = _f({}, "network family options, e.g. n_layer_g=3,size_g=400 (see ebgan.nets)")
    latent_dim: int = _f(62, "size of z")
    latent: str = _f(
        "normal", "distribution of z: normal, N(0, I), or uniform, U[-1, 1] per coordinate (DCGAN's and BEGAN's)"
    )
    # --- objective (its own options live in ``options``)
    objective: str = _f(
        "ebgan-pt",
        "ebgan-pt, ebgan, began, magan, gan, dcgan, wgan-gp; energies without a generator: autoencoder, dae, "
        "sparse-ae, contractive-ae, dsm, cd, grid-likelihood (see ebgan energy shapes)",
    )
    # --- optimisation
    steps: int = _f(2000, "total generator steps of the run (a resume continues up to it)")
    batch_size: int = _f(64, "images per batch; under torchrun the global batch, split among the processes")
    optim_g: str = _f("adam", "optimizer of G: adam (betas beta1, beta2) or sgd (plain, no momentum)")
    optim_d: str = _f("adam", "optimizer of D: adam or sgd")
    lr_g: float = _f(2e-4, "learning rate of G")
    lr_d: float = _f(2e-4, "learning rate of D")
    beta1: float = _f(0.5, "Adam beta1")
    beta2: float = _f(0.999, "Adam beta2")
    seed: int = _f(0, "seed of weights, data order and noise")
    ema_decay: float = _f(0.0, "exponential moving average of G's weights, used for samples, eval and export; 0: off")
    ema_start: int = _f(0, "generator steps before the average starts (a plain copy until then)")
    # --- run
    device: str = _f("auto", "auto (cuda if available), cpu, cuda, cuda:N")
    amp: bool = _f(False, "mixed precision (autocast, see amp_dtype); energies and losses stay float32")
    amp_dtype: str = _f(
        "auto",
        "auto (fp16 with a gradient scaler on CUDA; bf16 on a CPU with native bf16, else float32), bf16 "
        "(no scaler), or fp16 (with a gradient scaler, its state in the checkpoint)",
    )
    compile: bool = _f(False, "torch.compile the networks")
    sync_bn: bool = _f(
        False,
        "under torchrun: BatchNorm statistics over the global batch (SyncBatchNorm); without it each process "
        "normalises its own slice; in one process it has no effect",
    )
    log_every: int = _f(50, "steps between metric lines (JSONL, TensorBoard, progress bar)")
    sample_every: int = _f(500, "steps between fixed-noise sample grids; 0: only at the end")
    checkpoint_every: int = _f(1000, "steps between checkpoints; 0: only at the end")
    eval_every: int = _f(0, "steps between evaluations (ebgan eval's scores); 0: never")
    # the chosen objective's options, by name (flat in YAML and flags)
    options: dict = field(default_factory=dict, metadata={"help": "the objective's own options"})

    # Keys a resumed run may change: they do not change what is computed.
    RESUMABLE: typing.ClassVar[frozenset] = frozenset(
        {"steps", "data_root", "device", "log_every", "sample_every", "checkpoint_every", "eval_every"}
    )

    def __init__(self, **values: Any):
        """``Config(dataset="mnist", margin=20)``: fields and objective options alike, type-checked."""
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, f.default_factory() if callable(f.default_factory) else f.default)
        values = dict(values)
        self.options = dict(values.pop("options", None) or {})
        for key, value in values.items():
            self.set(key, value, "config")

    def set(self, key: str, value: Any, where: str) -> None:
        """Set one flat key (field or objective option) after checking its name and type."""
        from ebgan.objectives import all_options
        from ebgan.objectives.base import coerce

        if not isinstance(key, str):  # YAML reads `1:`, `yes:` and `null:` as a number, a bool and None
            raise EbganError(f"{where}: config keys are names, got {key!r}; quote it or correct it")
        if key in FIELD_TYPES:
            kind, nullable = FIELD_TYPES[key]
            if value is None and not nullable:
                raise EbganError(f"{where}: {key} needs a value ({_help(key)})")
            value = coerce(key, value, kind, where)
            setattr(self, key, dict(value) if kind is dict else value)
        elif key in all_options():
            self.options[key] = coerce(key, value, all_options()[key][0][1].type, where)
        else:
            raise EbganError(f"{where}: unknown config key {key!r}{_did_you_mean(key, Config.keys())}")

    def __getattr__(self, name: str) -> Any:
        # Objective options read like fields (cfg.margin); only called when normal lookup fails.
        options = self.__dict__.get("options", {})
        if name in options:
            return options[name]
        if not name.startswith("_"):
            from ebgan.objectives import all_options

            if name in all_options():
                raise AttributeError(f"objective {self.__dict__.get('objective')!r} has no option {name!r}")
        raise AttributeError(name)

    def option(self, name: str, default: Any = None) -> Any:
        """The objective option ``name``, or ``default`` when the objective has none."""
        return self.options.get(name, default)

    @classmethod
    def keys(cls) -> list[str]:
        """Every key a config may hold: the fields and every registered objective's options."""
        from ebgan.objectives import all_options

        return list(FIELD_TYPES) + [k for k in all_options() if k not in FIELD_TYPES]

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config", saved: bool = False) -> Config:
        """A config from flat values; ``saved=True`` for a run's own config.yaml or checkpoint,
        where options the objective does not use are dropped (ebgan 0.1 saved every key)."""
        cfg = cls()
        values = dict(values)
        for key, value in values.items():
            cfg.set(key, value, source)
        if saved:
            from ebgan.objectives import OBJECTIVES

            if cfg.objective in OBJECTIVES:
                used = {o.name for o in OBJECTIVES[cfg.objective].options}
                cfg.options = {k: v for k, v in cfg.options.items() if k in used}
        return cfg

    def updated(self, **values: Any) -> Config:
        return Config.from_dict(layered(self.to_dict(), values), "override")

    def with_objective(self, objective: str) -> Config:
        """The same run with another objective, keeping only the options it declares (unresolved)."""
        from ebgan.objectives import objective_class

        keep = {o.name for o in objective_class(objective).options}
        cfg = self.updated(objective=objective)
        cfg.options = {k: v for k, v in cfg.options.items() if k in keep}
        return cfg

    def ignored_keys(self) -> dict[str, str]:
        """Keys whose value this config never reads, each with what would make it read. A preset may
        hold such values (an override can switch their user off); a flag the user types for one is
        a mistake, which ``ebgan train`` refuses."""
        ignored = {}
        if not self.amp:
            ignored["amp_dtype"] = "--amp"
        if self.ema_decay == 0:
            ignored["ema_start"] = "--ema-decay above 0"
        if "adam" not in (self.optim_g, self.optim_d):
            ignored["beta1"] = ignored["beta2"] = "an Adam optimizer (--optim-g adam or --optim-d adam)"
        return ignored

    def to_dict(self) -> dict[str, Any]:
        """Flat key -> value, the objective's options right after ``objective``."""
        out: dict[str, Any] = {}
        for name in FIELD_TYPES:
            value = getattr(self, name)
            out[name] = dict(value) if isinstance(value, dict) else value
            if name == "objective":
                out.update(self.options)
        return out

    def save(self, path: Path) -> None:
        from ebgan.files import write_text

        write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    def resolve(self) -> Config:
        """Fill dependent defaults and validate; returns a new Config."""
        from ebgan.data.registry import dataset_spec
        from ebgan.data.splits import check_split
        from ebgan.data.toy import is_toy
        from ebgan.nets import DISCRIMINATOR_CLASSES, LATENTS, family, resolve_model_args
        from ebgan.objectives import objective_class

        c = Config.from_dict(self.to_dict(), "config")
        cls = objective_class(c.objective)
        declared = {o.name: o for o in cls.options}
        unused = [k for k in c.options if k not in declared]
        if unused:
            mine = ", ".join(declared) or "none"
            raise EbganError(
                f"objective {c.objective!r} does not use {', '.join(unused)} (its options: {mine}); "
                f"drop {' '.join('--' + k.replace('_', '-') for k in unused)} or choose an objective "
                "that uses it"
            )
        c.options = {k: opt.validate(c.options.get(k, opt.default), cls.name) for k, opt in declared.items()}
        spec = dataset_spec(c.dataset)  # unknown names fail here, with a suggestion
        if c.channels is None and spec.channels:
            c.channels = spec.channels
        if is_toy(c.dataset):  # 2-D points: image_size/fit/channels do not apply
            _check(c.model == "mlp", f"toy datasets are 2-D points and need --model mlp, got {c.model!r}")
        _check(c.steps > 0, f"steps must be positive, got {c.steps}")
        _check(c.batch_size >= 1, f"batch_size must be positive, got {c.batch_size}")
        _check(c.image_size >= 4, f"image_size must be at least 4, got {c.image_size}")
        _check(c.channels is None or c.channels in (1, 3), f"channels must be 1 or 3, got {c.channels}")
        _check(c.latent_dim >= 1, f"latent_dim must be positive, got {c.latent_dim}")
        _check(c.latent in LATENTS, f"latent must be one of {', '.join(LATENTS)}, got {c.latent!r}")
        check_seed(c.seed)
        _check(0 <= c.ema_decay < 1, f"ema_decay must be in [0, 1) (0: off), got {c.ema_decay}")
        _check(c.ema_start >= 0, f"ema_start must be >= 0, got {c.ema_start}")
        _check(c.fit in ("pad", "resize"), f"fit must be 'pad' or 'resize', got {c.fit!r}")
        check_split(c.data_split)
        for key in ("lr_g", "lr_d"):
            _check(getattr(c, key) > 0, f"{key} must be a positive learning rate, got {getattr(c, key)}")
        for key in ("optim_g", "optim_d"):
            _check(
                getattr(c, key) in OPTIMIZERS, f"{key} must be one of {', '.join(OPTIMIZERS)}, got {getattr(c, key)!r}"
            )
        for key in ("beta1", "beta2"):
            _check(0 <= getattr(c, key) < 1, f"{key} must be in [0, 1), got {getattr(c, key)}")
        for key in ("sample_every", "checkpoint_every", "eval_every"):
            _check(getattr(c, key) >= 0, f"{key} must be >= 0, got {getattr(c, key)}")
        _check(c.log_every > 0, f"log_every must be positive, got {c.log_every}")
        _check(c.amp_dtype in AMP_DTYPES, f"amp_dtype must be one of {', '.join(AMP_DTYPES)}, got {c.amp_dtype!r}")
        _check(
            not (c.amp and c.amp_dtype == "fp16" and cls.input_gradients),
            f"objective {c.objective!r} differentiates D with respect to its input, which fp16 underflows "
            "(the gradient scaler only protects the weights' gradients); use --amp-dtype bf16",
        )
        cls.resolve(c)
        needed = DISCRIMINATOR_CLASSES[cls.discriminator_kind]
        _check(
            hasattr(family(c.model), needed),
            f"objective {c.objective!r} needs a {cls.discriminator_kind} discriminator; model {c.model!r} has "
            "none (use mlp or dcgan)"
            if cls.discriminator_kind == "critic"
            else f"objective {c.objective!r} needs an autoencoder discriminator; model {c.model!r} has none",
        )
        c.model_args = resolve_model_args(c.model, c.model_args)
        return c


OPTIMIZERS = ("adam", "sgd")
AMP_DTYPES = ("auto", "bf16", "fp16")


def field_types(cls: type, skip: tuple[str, ...] = ()) -> dict[str, tuple[type, bool]]:
    """field -> (type, None allowed) of a config dataclass declared with ``_f``, from its annotations
    (``Config``'s here; another run kind's config, e.g. ``ebgan.contrastive.ContrastiveConfig``, alike)."""
    types: dict[str, tuple[type, bool]] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        args = [t for t in typing.get_args(hints[f.name]) if t is not type(None)]
        types[f.name] = (args[0] if args else typing.get_origin(hints[f.name]) or hints[f.name], bool(args))
    return types


FIELD_TYPES = field_types(Config, skip=("options",))  # field -> (type, None allowed)


def _help(key: str) -> str:
    return next(f.metadata["help"] for f in dataclasses.fields(Config) if f.name == key)


def field_help(key: str) -> str:
    """The one line of help of a config field."""
    return _help(key)


def _did_you_mean(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_seed(seed: int, name: str = "seed") -> None:
    """A seed torch and numpy take: not negative (numpy refuses those), below 2^63 (torch's seeds are
    64-bit, and a run derives a few more from its seed by adding small numbers)."""
    _check(0 <= seed < 2**63, f"{name} must be >= 0 and below 2^63, got {seed}")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise EbganError(message)


def layered(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over``'s values on top of ``base`` (a preset's, a saved run's): each key replaces, except
    ``model_args`` within one network family, where only the options ``over`` names change, so
    ``--config fmnist-gan --model-args dropout_d=false`` keeps the preset's layer sizes. When
    ``over`` names another family, ``base``'s options (that family's) are dropped."""
    out = {**base, **over}
    base_family = base.get("model", Config.model)  # a preset without `model` means the default family
    same_family = over.get("model", base_family) == base_family
    if same_family and "model_args" in over:
        out["model_args"] = {**(base.get("model_args") or {}), **over["model_args"]}
    elif not same_family:
        out["model_args"] = dict(over.get("model_args") or {})
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load, but a key given twice in one mapping is an error: PyYAML keeps the last one
    silently, so a preset edited by appending a key would train on whichever came last."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool | None):
                continue  # a list as a key: PyYAML's own "unhashable key" error follows
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"found the key {key!r} twice; keep one", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# PyYAML follows YAML 1.1, where a float needs a dot: it reads 2e-4 as the string '2e-4' (then refused
# as "not a number"), where YAML 1.2, Python and the presets' own comments mean a number.
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str) -> Any:
    """YAML text as Python values (safe types only), refusing duplicate keys."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506  # a SafeLoader subclass


def load_config_file(path: str | Path, check: bool = True) -> dict[str, Any]:
    """The flat values of a preset YAML file, names and types checked (``check=False``: only that it
    is a YAML mapping, for reading a few keys of a run's config.yaml)."""
    path = Path(path)
    if not path.is_file():
        raise EbganError(f"config file {path} does not exist")
    try:
        values = load_yaml(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise EbganError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from e
    if values is None:  # an empty file (or only comments): no keys
        values = {}
    if not isinstance(values, dict):  # a list, or a scalar such as 0 or false
        raise EbganError(f"{path} must hold a mapping of config keys to values")
    if check:
        Config.from_dict(values, str(path))  # names and types, now, with the file named
    return values


def presets() -> dict[str, Path]:
    """The presets shipped inside the package (``src/ebgan/presets/*.yaml``), by name; the same in a
    source checkout and in an installed wheel."""
    from importlib.resources import files

    folder = files("ebgan") / "presets"
    return {Path(str(f)).stem: Path(str(f)) for f in folder.iterdir() if str(f).endswith(".yaml")}


def preset_path(name_or_path: str | Path) -> Path:
    """A YAML file given by path (an existing file wins) or by preset name (``fmnist-ebgan-pt``)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    known = presets()
    name = path.name[:-5] if path.name.endswith(".yaml") else path.name
    if name in known and path.parent in (Path("."), Path("configs")):  # configs/NAME.yaml: the 0.1 layout
        return known[name]
    raise EbganError(
        f"no preset or file {str(name_or_path)!r}{_did_you_mean(name, known)}; presets: "
        f"{', '.join(sorted(known))} (ebgan presets lists them)"
    )


def load_preset(name_or_path: str | Path) -> dict[str, Any]:
    """The flat values of a preset (by name) or a YAML file (by path), names and types checked."""
    return load_config_file(preset_path(name_or_path))


def config_diff(old: Any, new: Any) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ, except the ones a resume may change (``RESUMABLE`` of ``new``'s class:
    a ``Config`` or another run kind's config with ``to_dict`` and ``resolve``).

    Both are compared resolved: an objective option or network-family option added since ``old``
    was saved counts at its default, which is by convention the behaviour the run had then (the
    began family's ``skip``: off)."""
    a, b = old.resolve().to_dict(), new.resolve().to_dict()
    keys = list(a) + [k for k in b if k not in a]
    resumable = type(new).RESUMABLE
    return {k: (a.get(k), b.get(k)) for k in keys if k not in resumable and a.get(k) != b.get(k)}
