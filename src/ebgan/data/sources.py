"""Where datasets come from, and loading them once into one uint8 tensor.

Every image dataset ends up as an ``ImageData``: uint8 images (N, C, H, W) already
fitted to the run's image size, and int64 labels (-1 where there are none). Scaling to
[-1, 1] happens per batch on the device (``to_unit_range``), so memory holds bytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ebgan.data import splits
from ebgan.data.idx import read_idx
from ebgan.data.registry import FOLDER, DatasetSpec, dataset_spec, folder_path
from ebgan.errors import EbganError

# Debian's dataset-fashion-mnist package installs here; other dataset packages follow it.
SYSTEM_DATA_DIR = Path("/usr/share/datasets")


@dataclass
class ImageData:
    """A whole image dataset in memory."""

    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,), -1 when unlabelled
    name: str
    num_classes: int  # 0 when unlabelled

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    def to(self, device: torch.device | str) -> ImageData:
        return ImageData(self.images.to(device), self.labels.to(device), self.name, self.num_classes)


def to_unit_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range of the generators' tanh."""
    return images_uint8.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounding to nearest (inverse of ``to_unit_range``)."""
    return images.detach().add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ebgan"


def candidate_roots(data_root: str | Path | None) -> list[Path]:
    """Folders that may hold one sub-folder per dataset, in the order they are searched."""
    roots = []
    if data_root:
        roots.append(Path(data_root).expanduser())
    if os.environ.get("EBGAN_DATA"):
        roots.append(Path(os.environ["EBGAN_DATA"]).expanduser())
    roots += [cache_dir(), SYSTEM_DATA_DIR]
    return roots


def _find_idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _idx_folders(root: Path, spec: DatasetSpec) -> list[Path]:
    # Our layout (root/fashion-mnist/*.gz, as /usr/share/datasets has it) and
    # torchvision's download layout (root/FashionMNIST/raw/*).
    return [root / spec.name] + ([root / spec.torchvision / "raw"] if spec.torchvision else [])


def locate_idx(name: str, split: str, roots) -> tuple[Path, Path] | None:
    """(images, labels) files of an official split ('train' or 'test') in the first of ``roots`` holding both."""
    spec = dataset_spec(name)
    prefix = spec.idx_prefix(split)
    for root in roots:
        for folder in _idx_folders(Path(root), spec):
            images = _find_idx_file(folder, f"{prefix}-images-idx3-ubyte")
            labels = _find_idx_file(folder, f"{prefix}-labels-idx1-ubyte")
            if images and labels:
                return images, labels
    return None


def _download_idx(name: str, split: str) -> tuple[Path, Path] | None:
    """Fetch through torchvision into the cache; None when offline or torchvision has no such set."""
    import torchvision

    cls = getattr(torchvision.datasets, dataset_spec(name).torchvision or "", None)
    if cls is None:
        return None
    try:
        cls(root=str(cache_dir()), train=(split == "train"), download=True)
    except Exception:  # no network, or a mirror refused: reported by the caller
        return None
    return locate_idx(name, split, [cache_dir()])


def load_idx_dataset(name: str, split: str = "train", data_root=None, download: bool = True) -> ImageData:
    """An official split ('train' or 'test') of a registered IDX dataset, as stored (no fitting)."""
    spec = dataset_spec(name)
    if spec.loader != "idx":
        raise EbganError(f"{name} is not an IDX dataset")
    if split not in dict(spec.idx_files):
        raise EbganError(f"{name} has no official {split!r} split; use one of {', '.join(dict(spec.idx_files))}")
    found = locate_idx(name, split, candidate_roots(data_root)) or (download and _download_idx(name, split)) or None
    if found is None:
        looked = [str(f) for r in candidate_roots(data_root) for f in _idx_folders(r, spec)]
        raise EbganError(
            f"{name} ({split} split) not found. Looked in: {', '.join(looked)}"
            + ("; a download through torchvision also failed (offline?)" if spec.torchvision and download else "")
            + f". Fix: put the IDX files ({spec.idx_prefix(split)}-images-idx3-ubyte[.gz] and labels) in "
            f"DIR/{name}/ and pass --data-root DIR or set EBGAN_DATA=DIR"
            + (f"; on Debian: apt-get install {spec.system_package}" if spec.system_package else "")
        )
    images_path, labels_path = found
    images = read_idx(images_path, expect_ndim=3)
    labels = read_idx(labels_path, expect_ndim=1)
    if spec.native_size is not None and images.shape[1:] != tuple(spec.native_size):
        h, w = spec.native_size
        raise EbganError(f"{images_path}: images are {images.shape[1:]}, expected {h}x{w} for {name}")
    if images.shape[0] == 0:
        raise EbganError(f"{images_path} holds no images (its header says 0); re-download it")
    if images.shape[0] != labels.shape[0]:
        raise EbganError(
            f"{images_path} has {images.shape[0]} images but {labels_path} has {labels.shape[0]} labels; "
            "the two files are from different sets"
        )
    if spec.num_classes and labels.size and int(labels.max()) >= spec.num_classes:
        raise EbganError(
            f"{labels_path} holds label {int(labels.max())} but {name} has {spec.num_classes} classes "
            f"(0-{spec.num_classes - 1}); the labels file is from another dataset"
        )
    tensor = torch.from_numpy(images.copy()).unsqueeze(1)
    return ImageData(tensor, torch.from_numpy(labels.astype(np.int64)), name, spec.num_classes)


IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def image_files(folder: str | Path) -> list[Path]:
    """The image files under ``folder`` at any depth (extensions in any case), sorted. Sub-folders that
    are symbolic links are followed, each real folder once (``Path.rglob`` skips them: a dataset of linked
    class folders would silently lose them); a folder named like an image is not a file. Hidden files
    and folders below ``folder`` (names starting with '.') are skipped: macOS's ``._photo.jpg`` metadata
    files are not images, and a ``.ipynb_checkpoints`` folder is not a class."""
    found, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link back up the tree, or a second link to one folder
            dirnames[:] = []
            continue
        seen.add(real)
        # which of two links to one folder is walked does not depend on the file system
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [
            Path(dirpath, f) for f in filenames if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS
        ]
    return sorted(found)


def read_image(path: str | Path, channels: int | None = None) -> torch.Tensor:
    """One image file as uint8 (C, H, W): 1 (grey) or 3 (RGB) channels; None keeps grey files grey.

    Pillow, not torchvision.io (deprecated in 0.29); never on the training hot path.
    """
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that: refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im = _upright(im, ImageOps)
                if im.mode == "I" or im.mode.startswith("I;16"):  # 16-bit grey: convert("L") would clip at 255
                    im = Image.fromarray(np.round(np.asarray(im, dtype=np.float64) / 257).clip(0, 255).astype(np.uint8))
                if channels is None:
                    channels = 1 if im.mode in ("L", "LA", "1") else 3
                array = np.asarray(im.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise EbganError(
            f"refusing {path}: {e} (a decompression bomb, or an image far larger than training needs; shrink it first)"
        ) from e
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:  # Pillow raises all of these
        raise EbganError(f"cannot decode {path}: {e}; is it an image?") from e
    return torch.from_numpy(array.reshape(array.shape[0], array.shape[1], -1).copy()).permute(2, 0, 1)


def _upright(im, image_ops):
    """The image as viewers show it: a camera's EXIF orientation applied (a phone photo is stored
    sideways with a tag saying so). A malformed tag leaves the pixels as stored."""
    try:
        return image_ops.exif_transpose(im)
    except Exception:  # broken EXIF blocks: Pillow raises several types; the pixels themselves are fine
        return im


def load_image_folder(path: str | Path, channels: int) -> ImageData:
    """Any folder of images, optionally one sub-folder per class (torchvision ImageFolder layout).

    Decoded once, here, in memory: ``load_images`` uses this for ``--fit pad`` (small images);
    ``--fit resize`` folders, which may be photos at full resolution, go through the decoded cache
    (``ebgan.data.photos.load_folder``). Images must share a size after ``fit_images`` (the caller's job).
    """
    root = Path(path).expanduser()
    files, labels, num_classes = folder_files(root)
    images = [read_image(p, channels) for p in files]
    if len({tuple(im.shape) for im in images}) > 1:
        images = _to_common_size(images, files)
    return ImageData(torch.stack(images), labels, f"{FOLDER}{root}", num_classes)


def folder_files(root: Path) -> tuple[list[Path], torch.Tensor, int]:
    """The image files of a folder (sorted), their labels and the number of classes: the sub-folders
    holding images, sorted and numbered as torchvision's ImageFolder does; images directly in
    ``root`` get -1."""
    if not root.is_dir():
        raise EbganError(f"image folder {root} does not exist; pass an existing folder as --dataset folder:PATH")
    files = image_files(root)
    if not files:
        raise EbganError(f"no images (png, jpg, bmp, gif, webp) found under {root}")
    parents = [p.parent.relative_to(root).as_posix() for p in files]
    class_index = {c: i for i, c in enumerate(sorted(set(parents) - {"."}))}
    labels = torch.tensor([class_index.get(c, -1) for c in parents], dtype=torch.long)
    return files, labels, len(class_index)


# In memory (--fit pad): images under 1/2 of the folder's common size are refused, not blown up. Through
# the decoded cache (--fit resize): images enlarged more than this to the run's size are named.
MAX_UPSCALE = 2.0


def _to_common_size(images: list[torch.Tensor], files: list[Path]) -> list[torch.Tensor]:
    """Bring images of mixed sizes to the most common one first (fit_images then makes them the run's
    size): the short side is resized to the common shape's short side, then the centre square cropped.
    An image that would need more than MAX_UPSCALE is refused, naming it: a 1x200 strip must not
    shrink a whole dataset, nor be stretched into noise."""
    from collections import Counter

    from torchvision.transforms.v2.functional import center_crop, resize

    (common_h, common_w), _ = Counter(tuple(im.shape[1:]) for im in images).most_common(1)[0]
    side = min(common_h, common_w)
    small = [str(f) for f, im in zip(files, images) if side / min(im.shape[1:]) > MAX_UPSCALE]
    if small:
        raise EbganError(
            f"{len(small)} image(s) are less than 1/{MAX_UPSCALE:g} of the folder's common size "
            f"{common_h}x{common_w} (e.g. {', '.join(small[:3])}); remove them or resize them first"
        )
    return [center_crop(resize(im, side, antialias=True), [side, side]) for im in images]


def fit_images(data: ImageData, size: int, fit: str = "pad") -> ImageData:
    """Bring square-or-not images to size x size once: 'pad' (centre, background 0) or 'resize'."""
    _, _, h, w = data.images.shape
    if (h, w) == (size, size):
        return data
    if fit == "pad":
        if h > size or w > size:
            raise EbganError(f"cannot pad {h}x{w} images to {size}x{size}; use --fit resize or a larger --image-size")
        top, left = (size - h) // 2, (size - w) // 2
        images = F.pad(data.images, (left, size - w - left, top, size - h - top), value=0)
    elif fit == "resize":
        from torchvision.transforms.v2.functional import center_crop, resize

        images = center_crop(resize(data.images, size, antialias=True), [size, size])
    else:
        raise EbganError(f"unknown fit {fit!r}; use 'pad' or 'resize'")
    return ImageData(images.contiguous(), data.labels, data.name, data.num_classes)


def load_images(
    name: str,
    split: str = "train",
    data_root=None,
    image_size: int = 32,
    fit: str = "pad",
    channels: int | None = None,
    download: bool = True,
) -> ImageData:
    """A registered image dataset (or folder:PATH) fitted to ``image_size``.

    ``split`` is one of ``ebgan.data.splits.SPLITS``; test-fit and test-heldout are the two
    parts of the test split. Image folders have no splits and load whole.
    """
    spec = dataset_spec(name)
    splits.check_split(split)
    if spec.loader == "idx":
        if channels not in (None, spec.channels):
            raise EbganError(f"{name} has {spec.channels} channel(s); drop --channels or set it to {spec.channels}")
        data = load_idx_dataset(name, splits.official_split(split), data_root, download)
        part = splits.part_indices(split, len(data))
        if part is not None:
            data = ImageData(data.images[part], data.labels[part], data.name, data.num_classes)
    elif spec.loader == "cifar":
        from ebgan.data.cifar import load_cifar

        if channels not in (None, spec.channels):
            raise EbganError(f"{name} has {spec.channels} channels; drop --channels or set it to {spec.channels}")
        images, labels = load_cifar(
            name, splits.official_split(split), candidate_roots(data_root), cache_dir(), download
        )
        part = splits.part_indices(split, len(images))
        if part is not None:
            images, labels = images[part], labels[part]
        data = ImageData(images, labels, name, spec.num_classes)
    elif spec.loader == "folder" and fit == "resize":  # decoded to the run's size once, into the cache
        from ebgan.data import photos

        root = folder_path(name)
        images, labels, num_classes = photos.load_folder(root, image_size, channels or 3, cache_dir())
        return ImageData(images, labels, f"{FOLDER}{root}", num_classes)
    elif spec.loader == "folder":
        data = load_image_folder(folder_path(name), channels or 3)
    elif spec.loader in ("celeba", "lsun"):  # decoded, cropped and resized once, into a cache on disk
        from ebgan.data import photos

        roots, ch = candidate_roots(data_root), channels or 3
        if spec.loader == "celeba":
            images = photos.load_celeba(roots, image_size, ch, cache_dir())
        else:
            images = photos.load_lsun(name[len("lsun:") :], roots, image_size, ch, cache_dir())
        return ImageData(images, torch.full((images.shape[0],), -1, dtype=torch.long), name, 0)
    else:
        raise EbganError(f"{name} holds 2-D points, not images; load it with ebgan.data.load_training_data")
    return fit_images(data, image_size, fit)
