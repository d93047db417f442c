"""Reading what ``ebgan energy score`` scores: image files, folders of images, and .npz
files (uint8 ``images`` (N, H, W) or (N, C, H, W); for toy runs float ``points`` (N, 2))."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ebgan.data.sources import IMAGE_EXTENSIONS, read_image
from ebgan.errors import EbganError


def _from_npz(path: Path, channels: int) -> torch.Tensor:
    try:
        with np.load(path) as f:
            if "images" in f.files:
                arr = f["images"]
            elif "points" in f.files:
                return torch.from_numpy(np.asarray(f["points"], dtype=np.float32))
            else:
                raise EbganError(f"{path} holds {sorted(f.files)}; expected an array named 'images' (or 'points')")
    except (OSError, ValueError) as e:
        raise EbganError(f"cannot read {path} as .npz: {e}") from e
    if arr.dtype != np.uint8:
        raise EbganError(f"{path}: 'images' must be uint8 in [0, 255], got {arr.dtype}")
    if arr.ndim == 3:  # (N, H, W) grayscale, as MNIST arrays usually are
        arr = arr[:, None]
    if arr.ndim != 4:
        raise EbganError(f"{path}: 'images' must be (N, H, W) or (N, C, H, W), got shape {arr.shape}")
    if arr.shape[1] not in (1, 3) and arr.shape[3] in (1, 3):  # channels-last arrays
        arr = arr.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(arr))


def read_inputs(paths: list[str], channels: int) -> tuple[list[str], list[torch.Tensor]]:
    """Names and tensors (one per file, or one batch per .npz), in the order given; folders sorted."""
    if not paths:
        raise EbganError("nothing to score: pass image files, folders or .npz files")
    names, items = [], []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                raise EbganError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) found in folder {p}")
            for f in files:
                names.append(str(f))
                items.append(read_image(f, channels)[None])
        elif p.is_file() and p.suffix.lower() == ".npz":
            batch = _from_npz(p, channels)
            if batch.shape[0] == 0:
                raise EbganError(f"{p} holds no images")
            names += [f"{p}[{i}]" for i in range(batch.shape[0])]
            items.append(batch)
        elif p.is_file():
            if p.suffix.lower() not in IMAGE_EXTENSIONS:
                raise EbganError(f"{p}: unsupported file type; pass images ({', '.join(sorted(IMAGE_EXTENSIONS))}) or .npz")
            names.append(str(p))
            items.append(read_image(p, channels)[None])
        else:
            raise EbganError(f"{p} does not exist")
    return names, items


def fit_to(batch: torch.Tensor, size: int, fit: str | None) -> torch.Tensor:
    """Bring uint8 images to size x size with the training rule ('pad' or 'resize'), or leave them."""
    if fit is None or batch.dtype != torch.uint8 or tuple(batch.shape[-2:]) == (size, size):
        return batch
    from ebgan.data.sources import ImageData, fit_images

    data = ImageData(batch, torch.full((batch.shape[0],), -1), "inputs", 0)
    return fit_images(data, size, fit).images
