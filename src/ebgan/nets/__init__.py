"""Network families. Each family module defines ``ARGS`` (its options and defaults),
``Generator`` and the discriminators it offers:

- ``AutoencoderDiscriminator``: x -> (reconstruction, embedding), for energy-based objectives;
- ``Critic``: x -> one real-valued score per sample (logit or Wasserstein critic).

Objectives say which kind they need (``Objective.discriminator_kind``).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import types

import torch
import torch.nn as nn

from ebgan.errors import EbganError

# Adding a family: its module and one line here (or ``register_family`` from outside the package).
FAMILIES: dict[str, str] = {
    "seed32": "ebgan.nets.seed32",
    "mlp": "ebgan.nets.mlp",
    "dcgan": "ebgan.nets.dcgan",
    "began": "ebgan.nets.began",
}
DISCRIMINATOR_CLASSES = {"autoencoder": "AutoencoderDiscriminator", "critic": "Critic"}
LATENTS = ("normal", "uniform")  # distributions of z; a generator carries its own as ``G.latent``


def check_latent(latent: str) -> str:
    if latent not in LATENTS:
        raise EbganError(f"unknown latent distribution {latent!r}; choose one of {', '.join(LATENTS)}")
    return latent


def latent_of(G: nn.Module) -> str:
    """The distribution G's z is drawn from; a generator not made by ``build_generator`` draws N(0, I)."""
    return getattr(G, "latent", "normal")


def sample_latent(
    n: int, latent_dim: int, latent: str = "normal", generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """n latent vectors: N(0, I), or U[-1, 1] per coordinate (the DCGAN and BEGAN papers' z)."""
    if check_latent(latent) == "uniform":
        return torch.rand(n, latent_dim, generator=generator, device=device) * 2 - 1
    return torch.randn(n, latent_dim, generator=generator, device=device)


def register_family(name: str, module: str | types.ModuleType) -> None:
    """Make a network family available as ``--model name``: a module path or a module object
    defining ``ARGS``, ``Generator`` and at least one discriminator class."""
    mod = importlib.import_module(module) if isinstance(module, str) else module
    missing = [a for a in ("ARGS", "Generator") if not hasattr(mod, a)]
    if missing or not any(hasattr(mod, c) for c in DISCRIMINATOR_CLASSES.values()):
        raise EbganError(
            f"network family {name!r} must define ARGS, Generator and one of "
            f"{', '.join(DISCRIMINATOR_CLASSES.values())}; missing {missing or 'a discriminator'}"
        )
    FAMILIES[name] = mod.__name__
    _LOADED[name] = mod


_LOADED: dict[str, types.ModuleType] = {}


def family(model: str) -> types.ModuleType:
    if model not in FAMILIES:
        close = difflib.get_close_matches(model, FAMILIES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise EbganError(f"unknown model {model!r}{hint} Known: {', '.join(sorted(FAMILIES))}")
    if model not in _LOADED:
        _LOADED[model] = importlib.import_module(FAMILIES[model])
    return _LOADED[model]


def resolve_model_args(model: str, model_args: dict | None) -> dict:
    """The family's defaults updated by ``model_args``; unknown names are an error."""
    defaults = family(model).ARGS
    unknown = set(model_args or {}) - set(defaults)
    if unknown:  # often a config written for another family that does not name it (`model: mlp`)
        owners = {k: [name for name in FAMILIES if k in family(name).ARGS] for k in sorted(unknown)}
        elsewhere = "; ".join(f"{k} is an option of {', '.join(o)}" for k, o in owners.items() if o)
        raise EbganError(
            f"model {model!r} has no option(s) {sorted(unknown)}; its options are {sorted(defaults)}"
            + (f" ({elsewhere}: set --model)" if elsewhere else "")
        )
    from ebgan.objectives.base import coerce

    nulls = sorted(k for k, v in (model_args or {}).items() if v is None)
    if nulls:  # coerce passes None ("not set"), but no family option is optional
        raise EbganError(
            f"model_args of {model!r}: {', '.join(nulls)} needs a value; drop it for the default "
            f"({', '.join(f'{k}={defaults[k]!r}' for k in nulls)})"
        )
    given = {k: coerce(k, v, type(defaults[k]), f"model_args of {model!r}") for k, v in (model_args or {}).items()}
    return {**defaults, **given}


def build_generator(
    model: str, latent_dim: int, image_shape, model_args: dict | None = None, latent: str = "normal"
) -> nn.Module:
    """The family's generator, tagged with the distribution of its z (``G.latent``) so that
    everything sampling it later (``sample_images``, exports) draws the z it was trained on."""
    args = resolve_model_args(model, model_args)
    latent = check_latent(latent)
    with _as_user_error(model):
        G = family(model).Generator(latent_dim, tuple(image_shape), **args)
    G.latent = latent
    return G


def build_discriminator(model: str, kind: str, image_shape, model_args: dict | None = None) -> nn.Module:
    args = resolve_model_args(model, model_args)
    cls = getattr(family(model), DISCRIMINATOR_CLASSES[kind], None)
    if cls is None:
        raise EbganError(f"model {model!r} has no {kind} discriminator; pick another --model for this objective")
    with _as_user_error(model):
        return cls(tuple(image_shape), **args)


def check_buildable(model: str, kind: str, latent_dim: int, image_shape, model_args=None, latent="normal") -> None:
    """Build G and D on the meta device (no memory, no RNG): a family that cannot take the run's
    image shape or options says so before a dataset is decoded, which can take hours at scale."""
    with torch.device("meta"):
        build_generator(model, latent_dim, image_shape, model_args, latent)
        build_discriminator(model, kind, image_shape, model_args)


@contextlib.contextmanager
def _as_user_error(model: str):
    """A family refuses shapes or options it cannot build with ValueError: a user's mistake."""
    try:
        yield
    except (ValueError, TypeError) as e:
        raise EbganError(f"model {model!r}: {e}; choose another --image-size or --model-args") from e


@torch.no_grad()
def check_networks(model: str, G: nn.Module, D: nn.Module, kind: str, image_shape) -> None:
    """One forward of G and D on two samples (eval mode, private noise: no RNG stream or buffer
    changes), so that an image size a family cannot take fails now with a one-line error, not
    deep in the first training step."""
    image_shape = tuple(image_shape)
    what = f"model {model!r} cannot take {'x'.join(map(str, image_shape))} inputs"
    modes = (G.training, D.training)
    G.eval()
    D.eval()
    try:
        device = next(G.parameters()).device
        latent_dim: int = G.latent_dim  # type: ignore[assignment]  # every family sets it
        z = sample_latent(2, latent_dim, latent_of(G), torch.Generator().manual_seed(0)).to(device)
        fake = G(z)
        if tuple(fake.shape[1:]) != image_shape:
            raise EbganError(
                f"{what}: its generator makes {tuple(fake.shape[1:])}; "
                "choose another --image-size or --model (see ebgan.nets)"
            )
        out = D(fake)
        recon = out[0] if kind == "autoencoder" else None
        if recon is not None and tuple(recon.shape) != tuple(fake.shape):
            raise EbganError(
                f"{what}: its discriminator reconstructs {tuple(recon.shape[1:])}; "
                "choose another --image-size or --model"
            )
    except RuntimeError as e:
        raise EbganError(f"{what} ({str(e).splitlines()[0][:160]}); choose another --image-size or --model") from e
    finally:
        G.train(modes[0])
        D.train(modes[1])
