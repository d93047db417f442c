"""Reading samples and inputs, one set of rules for every command (``ebgan eval --samples``,
``ebgan energy score``, ...):

- ``.npz`` files (never unpickled): uint8 ``images`` as (N, H, W), (N, C, H, W) or
  channels-last (N, H, W, C) with C in 1 or 3; or, for 2-D toy runs, float ``points`` (N, 2);
- folders of image files (png, jpg, bmp, gif, webp; extensions in any case), sorted by name;
- single image files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ebgan.data.sources import IMAGE_EXTENSIONS, image_files, read_image
from ebgan.errors import EbganError


def read_npz(path: Path) -> torch.Tensor:
    """The ``images`` (uint8, N x C x H x W) or ``points`` (float32, N x 2) array of an .npz file."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if "images" in f.files:
                arr = f["images"]
            elif "points" in f.files:
                points = np.asarray(f["points"], dtype=np.float32)
                if points.ndim != 2 or points.shape[1] != 2:
                    raise EbganError(f"{path}: 'points' must be (N, 2), got shape {points.shape}")
                return torch.from_numpy(points)
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


def read_sample_images(path: str | Path) -> torch.Tensor:
    """A set of samples as uint8 (N, C, H, W): an .npz file's ``images``, or a folder of image
    files that share one size and channel count."""
    p = Path(path)
    if p.is_dir():
        files = image_files(p)
        if not files:
            raise EbganError(
                f"{p} holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}); pass a folder "
                "written by 'ebgan sample --format png' or an .npz"
            )
        images = [read_image(f) for f in files]
        odd = next((f for f, im in zip(files, images) if im.shape != images[0].shape), None)
        if odd is not None:
            raise EbganError(
                f"{odd} is {tuple(read_image(odd).shape)} but {files[0].name} is "
                f"{tuple(images[0].shape)}; all images must share one size and channel count"
            )
        return torch.stack(images)
    if p.is_file() and p.suffix.lower() == ".npz":
        batch = read_npz(p)
        if batch.dtype != torch.uint8:
            raise EbganError(f"{p} holds 'points', not 'images': score 2-D points with 'ebgan energy score'")
        return batch
    if not p.exists():
        raise EbganError(f"{p} does not exist")
    raise EbganError(f"{p} is neither an .npz file nor a folder of images")


def read_inputs(paths: list[str], channels: int) -> tuple[list[str], list[torch.Tensor]]:
    """Names and tensors (one per file, or one batch per .npz), in the order given; folders sorted."""
    if not paths:
        raise EbganError("nothing to score: pass image files, folders or .npz files")
    names, items = [], []
    for p in map(Path, paths):
        if p.is_dir():
            files = image_files(p)
            if not files:
                raise EbganError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) found in folder {p}")
            for f in files:
                names.append(str(f))
                items.append(read_image(f, channels)[None])
        elif p.is_file() and p.suffix.lower() == ".npz":
            batch = read_npz(p)
            if batch.shape[0] == 0:
                raise EbganError(f"{p} holds no images")
            names += [f"{p}[{i}]" for i in range(batch.shape[0])]
            items.append(batch)
        elif p.is_file():
            if p.suffix.lower() not in IMAGE_EXTENSIONS:
                raise EbganError(
                    f"{p}: unsupported file type; pass images ({', '.join(sorted(IMAGE_EXTENSIONS))}) or .npz"
                )
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
