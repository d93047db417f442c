"""Checkpoints: one dict in one file, written atomically (``ebgan.files.save_torch``).

A checkpoint holds everything an exact resume needs: both networks, both optimizers,
the step, the data order (sampler state), the objective's state (margin, k_t), the
noise generator and the global RNG states (dropout), and the resolved config.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ebgan.errors import EbganError, one_line

FORMAT_VERSION = 1


def load_checkpoint(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise EbganError(f"no checkpoint at {path}; is this a run folder written by 'ebgan train'?")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise EbganError(f"cannot read checkpoint {path} ({e}); the file is damaged or not an ebgan checkpoint") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise EbganError(f"{path} is not an ebgan checkpoint of format {FORMAT_VERSION}")
    return state


def rng_states(device: torch.device | None = None) -> dict:
    """The global RNG states: the CPU's, and the CUDA device's when training on one."""
    states: dict[str, torch.Tensor] = {"torch": torch.get_rng_state()}
    if device is not None and device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_rng_states(states: dict, device: torch.device | None = None) -> None:
    torch.set_rng_state(states["torch"])
    cuda = states.get("cuda")
    if cuda is None or device is None or device.type != "cuda":
        return
    if isinstance(cuda, (list, tuple)):  # earlier development checkpoints held every device's state
        cuda = cuda[device.index or 0] if len(cuda) > (device.index or 0) else None
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, device)


def load_module_state(module: torch.nn.Module, state: dict, what: str, path: Path) -> None:
    """load_state_dict with an error that says which network does not fit."""
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise EbganError(
            f"the {what} in {path} does not fit the configured network ({one_line(e)}); "
            "the checkpoint comes from another model or model_args, or from an earlier development "
            "version of ebgan whose network differed (such as the mlp critic before its dropout "
            "moved after the activations)"
        ) from e
