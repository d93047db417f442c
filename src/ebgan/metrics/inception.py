"""Inception-based FID/KID (torchmetrics' InceptionV3, torch-fidelity weights), offline only.

The weights are never downloaded here: they come from ``--inception-weights PATH`` or
from torch's hub cache when a previous online run left them there. Without them the
result says so and the classifier-based scores stand alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ebgan.errors import EbganError, one_line
from ebgan.metrics import scores

WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's file name


def find_weights(path=None) -> Path | None:
    """The weights file to use: ``path``, else torch's hub cache when an online run left it there."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise EbganError(f"--inception-weights {p} does not exist; pass the torch-fidelity file {WEIGHTS_NAME}")
        return p
    cached = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME
    return cached if cached.is_file() else None


def load_state_dict_safely(path: Path) -> dict:
    """A state dict from a .safetensors file or a .pth read with ``weights_only=True``: no code in
    the file can run (torch-fidelity's own loader unpickles with ``weights_only=False``)."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise EbganError(
            f"refusing {path}: it is not a plain weights file ({str(e).splitlines()[0][:140]}); "
            f"delete it or pass --inception-weights with torch-fidelity's {WEIGHTS_NAME}"
        ) from e
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise EbganError(f"refusing {path}: it does not hold a state dict of tensors")
    return state


def build_extractor(weights: Path):
    """torchmetrics' InceptionV3 with the weights loaded here, safely.

    torch-fidelity's constructor loads its weights itself, from a path (unpickling) or by
    download; it is handed our state dict instead, through the one function it calls for
    the download, replaced for the duration of the call.
    """
    from unittest import mock

    state = load_state_dict_safely(weights)
    try:
        import torch_fidelity.feature_extractor_inceptionv3 as tf_inception
        from torchmetrics.image.fid import NoTrainInceptionV3
    except ImportError as e:
        raise EbganError(f"Inception scores need torchmetrics and torch-fidelity ({e})") from e

    def hand_over(url, *args, **kwargs):
        return state

    try:  # antialias=False: torch-fidelity's TF1-style bilinear resize to 299, as published FIDs use;
        # torchmetrics' default (torch's half-pixel bilinear) gives other features, so other FIDs
        with mock.patch.object(tf_inception, "load_state_dict_from_url", hand_over):
            return NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"], antialias=False)
    except Exception as e:  # the detail (missing keys, ...) follows the first line: one line of it
        raise EbganError(
            f"cannot load Inception weights from {weights} ({one_line(e)}); "
            f"pass --inception-weights with torch-fidelity's {WEIGHTS_NAME}"
        ) from e


@torch.no_grad()
def inception_features(net, images_uint8: torch.Tensor, batch_size: int = 50) -> np.ndarray:
    """2048-d pool features; grey images are repeated to 3 channels (the network resizes to 299
    as torch-fidelity does, and maps [0, 255] to [-1, 1] by (x - 128) / 128)."""
    out = []
    for i in range(0, len(images_uint8), batch_size):
        x = images_uint8[i : i + batch_size]
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        out.append(net(x.contiguous()).double().numpy())
    return np.concatenate(out)


def unavailable() -> dict:
    return {
        "available": False,
        "message": (
            f"Inception FID/KID skipped: no Inception weights offline (pass --inception-weights PATH "
            f"to torch-fidelity's {WEIGHTS_NAME}); the classifier-based scores stand alone"
        ),
    }


def find_extractor(path=None) -> tuple[Path, Any] | None:
    """``find_weights``' file and the network built from it, now: a damaged or foreign weights
    file fails before any other scoring (not after minutes of it); None when there is none."""
    weights = find_weights(path)
    return None if weights is None else (weights, build_extractor(weights))


def inception_scores(samples: torch.Tensor, reference, extractor: tuple[Path, Any], log=print, seed: int = 0) -> dict:
    """Inception FID/KID of the samples and of the real floor images, against ``reference.test``;
    ``extractor`` as ``find_extractor`` returns it."""
    path, net = extractor
    log(
        f"Inception features for {len(samples) + len(reference.test) + len(reference.floor)} images "
        "(slow on a CPU: 299x299 inputs)"
    )
    f_ref = inception_features(net, reference.test)
    f_s, f_floor = inception_features(net, samples), inception_features(net, reference.floor)
    ref_stats = scores.mean_cov(f_ref)

    def pair(f):
        kid, kid_std = scores.kid(f, f_ref, seed=seed)
        return {
            "fid_inception": scores.frechet_distance(*scores.mean_cov(f), *ref_stats),
            "kid_inception": kid,
            "kid_inception_std": kid_std,
        }

    return {"available": True, "weights": str(path), **pair(f_s), "real_vs_real": pair(f_floor)}
