"""CelebA, LSUN and large image folders: where their files are, how they are cropped, and their
decoded cache.

- ``celeba``: torchvision's layout, ``<root>/celeba/img_align_celeba/*.jpg`` (the aligned
  178x218 faces; ``<root>/img_align_celeba`` also works). Crop: the centre 108x108 square,
  then resized to the image size: the crop of the DCGAN-tensorflow and BEGAN code, which keeps
  the face and drops most of the background.
- ``lsun:CATEGORY`` (``lsun:bedroom``): ``<root>/lsun/<category>/`` holding images (any depth),
  or torchvision's LMDB export ``<root>/lsun/<category>_train_lmdb`` read with the ``lmdb``
  package (its values are encoded images; torchvision's own LSUN class is not used: it caches its
  keys with pickle). Crop: the largest centred square, then resized.

- ``folder:PATH`` with ``--fit resize`` (ImageNet's ``train/`` is one): any depth, one
  sub-folder per class giving the labels. Crop: the largest centred square, then resized. A
  folder of photos at full resolution would not fit in memory (ImageNet: over 100 GB decoded),
  so it is decoded straight to the run's size, once. ``--fit pad`` folders (small images padded)
  load in memory instead (``ebgan.data.sources.load_image_folder``).

CelebA and LSUN are unlabelled; none of the three has splits (they load whole). All are decoded
once into ``ebgan.data.decoded``'s cache.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from ebgan.data.decoded import decoded_images
from ebgan.errors import EbganError

CELEBA_CROP = 108


def _first_dir(candidates: list[Path]) -> Path | None:
    return next((c for c in candidates if c.is_dir()), None)


def _image_names(folder: Path) -> list[str]:
    from ebgan.data.sources import image_files

    return sorted(p.relative_to(folder).as_posix() for p in image_files(folder))


def _folder_source(folder: Path, channels: int):
    from ebgan.data.sources import read_image

    def stat(name: str) -> tuple[int, int]:
        st = (folder / name).stat()
        return st.st_size, st.st_mtime_ns

    return stat, lambda name: read_image(folder / name, channels)


def load_celeba(roots: list[Path], size: int, channels: int, cache: Path) -> torch.Tensor:
    tried = [r / sub for r in roots for sub in ("celeba/img_align_celeba", "img_align_celeba")]
    folder = _first_dir(tried)
    names = _image_names(folder) if folder else []
    if not names:
        where = ", ".join(str(t) for t in tried[:4])
        raise EbganError(
            f"CelebA's aligned images not found (looked in {where}); put img_align_celeba/ (from "
            "torchvision.datasets.CelebA(download=True) or the authors' site) in DIR/celeba/ and pass --data-root DIR"
        )
    if size > CELEBA_CROP:
        raise EbganError(
            f"CelebA is cropped to its centre {CELEBA_CROP}x{CELEBA_CROP}; --image-size {size} would upscale it; "
            "use 64 (or another size up to 108)"
        )
    assert folder is not None
    stat, read = _folder_source(folder, channels)
    return decoded_images("celeba", folder, names, stat, read, size, CELEBA_CROP, channels, cache)


def load_folder(folder: Path, size: int, channels: int, cache: Path) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(images, labels, number of classes) of an image folder, decoded to ``size`` once; the files
    and labels as ``ebgan.data.sources.folder_files`` finds them."""
    from ebgan.data.sources import MAX_UPSCALE, folder_files

    files, labels, num_classes = folder_files(folder)
    names = [p.relative_to(folder).as_posix() for p in files]
    stat, read = _folder_source(folder, channels)
    blown_up: list[str] = []

    def read_noting_small(name: str) -> torch.Tensor:
        image = read(name)
        if min(image.shape[1:]) * MAX_UPSCALE < size:
            blown_up.append(name)
        return image

    images = decoded_images("folder", folder, names, stat, read_noting_small, size, None, channels, cache)
    if blown_up:  # only known when decoding: a handful in a big set is normal (ImageNet has some), so say it
        print(
            f"ebgan: {len(blown_up)} image(s) of {folder} are less than {size / MAX_UPSCALE:g} pixels on their short "
            f"side and were enlarged more than {MAX_UPSCALE:g}x to {size}x{size} (e.g. {', '.join(blown_up[:3])}); "
            "remove them from the folder if that is not wanted"
        )
    return images, labels, num_classes


def load_lsun(category: str, roots: list[Path], size: int, channels: int, cache: Path) -> torch.Tensor:
    if not category or "/" in category:
        raise EbganError(f"lsun needs a category, e.g. --dataset lsun:bedroom, got {category!r}")
    folder = _first_dir([r / "lsun" / category for r in roots])
    if folder is not None and _image_names(folder):
        stat, read = _folder_source(folder, channels)
        return decoded_images(f"lsun-{category}", folder, _image_names(folder), stat, read, size, None, channels, cache)
    lmdb_dir = _first_dir([r / "lsun" / f"{category}_train_lmdb" for r in roots])
    if lmdb_dir is not None:
        return _load_lsun_lmdb(category, lmdb_dir, size, channels, cache)
    where = ", ".join(str(r / "lsun" / category) for r in roots[:3])
    raise EbganError(
        f"LSUN {category} not found (looked for images in {where} and for {category}_train_lmdb beside them); "
        f"put the images in DIR/lsun/{category}/ (or the LMDB export as DIR/lsun/{category}_train_lmdb) "
        "and pass --data-root DIR"
    )


def _load_lsun_lmdb(category: str, folder: Path, size: int, channels: int, cache: Path) -> torch.Tensor:
    try:
        import lmdb  # type: ignore[import-not-found,unused-ignore]  # optional: the 'lsun' extra
    except ImportError:
        raise EbganError(
            f"{folder} is an LMDB database; reading it needs the lmdb package: pip install lmdb "
            f"(or export its images to a folder lsun/{category}/)"
        ) from None
    import numpy as np
    from PIL import Image

    env = lmdb.open(str(folder), readonly=True, lock=False, readahead=False, meminit=False)
    with env.begin() as txn:
        keys = [bytes(k) for k, _ in txn.cursor()]
    data_file = folder / "data.mdb"
    st = data_file.stat() if data_file.exists() else folder.stat()

    def stat(name: str) -> tuple[int, int]:  # one database: its size and time stand for every entry
        return st.st_size, st.st_mtime_ns

    def read(name: str) -> torch.Tensor:
        with env.begin() as txn:
            value = txn.get(bytes.fromhex(name))
        if value is None:
            raise EbganError(f"entry {name} of {folder} vanished while reading; is the database being written?")
        try:
            with Image.open(io.BytesIO(value)) as im:
                array = np.asarray(im.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
        except Exception as e:
            raise EbganError(f"cannot decode entry {name} of {folder}: {e}") from e
        return torch.from_numpy(array.reshape(array.shape[0], array.shape[1], -1).copy()).permute(2, 0, 1)

    try:
        return decoded_images(
            f"lsun-{category}", folder, [k.hex() for k in keys], stat, read, size, None, channels, cache
        )
    finally:
        env.close()
