"""Generator weights as safetensors plus a small JSON of how to build the network.

Loading needs neither the training code's state nor pickle: ``load_generator(path)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file

from ebgan.errors import EbganError, one_line
from ebgan.files import save_weights_and_spec, spec_disagrees
from ebgan.nets import build_generator, latent_of, sample_latent

WEIGHTS, SPEC = "generator.safetensors", "generator.json"


def export_generator(G: nn.Module, folder: Path, model: str, model_args: dict, extra: dict | None = None) -> None:
    folder = Path(folder)
    spec = {
        "model": model,
        "model_args": model_args,
        "latent_dim": G.latent_dim,
        "latent": latent_of(G),
        "image_shape": list(G.image_shape),  # type: ignore[arg-type]  # every family sets it
        **(extra or {}),
    }
    save_weights_and_spec(folder / WEIGHTS, G.state_dict(), folder / SPEC, spec)


def _damaged(spec_path: Path, e: Exception) -> EbganError:
    return EbganError(
        f"{spec_path} is damaged or not an ebgan generator spec ({e.__class__.__name__}: "
        f"{str(e)[:100]}); export the generator again (ebgan train --resume RUN)"
    )


def read_spec(folder: str | Path) -> dict:
    """The ``generator.json`` of an exported generator in ``folder``, as a dict; a one-line error when
    it is not JSON or not an object."""
    spec_path = Path(folder) / SPEC
    try:
        spec = json.loads(spec_path.read_text())
        if not isinstance(spec, dict):
            raise TypeError(f"a JSON {type(spec).__name__}, not an object")
    except (ValueError, TypeError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _damaged(spec_path, e) from e
    return spec


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Load an exported generator from a run folder or a ``generator.safetensors`` path (eval mode).
    ``device``: a torch.device, or a name as ``--device`` takes it (auto, cpu, cuda, cuda:N)."""
    from ebgan.train.loop import pick_device  # here: ebgan.train imports this module

    if isinstance(device, str):
        device = pick_device(device)  # an unknown or absent device is a one-line error
    path = Path(path)
    if not path.exists():
        raise EbganError(
            f"{path} does not exist; pass a run folder written by 'ebgan train' (or its generator.safetensors)"
        )
    folder = path if path.is_dir() else path.parent
    weights = path if path.is_file() else folder / WEIGHTS
    spec_path = folder / SPEC
    if not weights.is_file() or not spec_path.is_file():
        from ebgan.train.run_dir import CHECKPOINT  # here: ebgan.train imports this module

        fix = (
            f"export it again from the run's checkpoint: ebgan train --resume {folder}"
            if (folder / CHECKPOINT).is_file()
            else "train a run first"
        )
        raise EbganError(f"no exported generator in {folder} (expected {WEIGHTS} and {SPEC}); {fix}")
    spec = read_spec(folder)
    try:
        # exports from before z's distribution was an option all drew z from N(0, I)
        latent = spec.get("latent", "normal")
        G = build_generator(spec["model"], spec["latent_dim"], spec["image_shape"], spec["model_args"], latent)
    except (ValueError, KeyError, TypeError, RuntimeError) as e:  # RuntimeError: torch's, e.g. a negative size
        raise _damaged(spec_path, e) from e
    try:
        disagrees = spec_disagrees(weights, spec_path, spec)
        G.load_state_dict(load_file(str(weights)))
    except Exception as e:  # safetensors raises its own error types for a damaged file
        raise EbganError(
            f"cannot load {weights} ({one_line(e)}); the file is damaged or does not match {spec_path.name}"
        ) from e
    if disagrees:
        raise EbganError(
            f"{spec_path} does not describe {weights} (an export was interrupted between the two files); "
            "export the generator again (ebgan train --resume RUN)"
        )
    return G.to(device).eval()


@torch.no_grad()
def sample_images(G: nn.Module, n: int, seed: int = 0, batch_size: int = 500, device=None) -> torch.Tensor:
    """n generator samples in [-1, 1] as float (N, C, H, W) on the CPU.

    Same seed, same latents, so the same samples; across batch sizes they agree to float rounding
    (BLAS may choose a different kernel per batch size), at one batch size bit for bit.
    """
    device = device or next(G.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    latent_dim: int = G.latent_dim  # type: ignore[assignment]  # every family sets it
    z = sample_latent(n, latent_dim, latent_of(G), gen)
    was_training = G.training
    G.eval()
    out = torch.cat([G(z[i : i + batch_size].to(device)).float().cpu() for i in range(0, n, batch_size)])
    G.train(was_training)
    if not torch.isfinite(out).all():
        raise EbganError(
            "the generator's output is not finite (NaN or inf): its weights diverged; "
            "sample an earlier checkpoint or train again with lower learning rates"
        )
    return out
