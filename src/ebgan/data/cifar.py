"""CIFAR-10 from its binary version (``cifar-10-binary.tar.gz``), never from the pickled one.

torchvision's CIFAR10 reads the Python version, whose batches are pickles: unpickling a
file runs whatever code it names. The binary version is plain bytes: each record is one
label byte then 3072 pixel bytes (1024 red, 1024 green, 1024 blue, row-major 32x32), 10,000
records per file; ``data_batch_1.bin`` .. ``data_batch_5.bin`` are the train split,
``test_batch.bin`` the test split.

Where the files are looked for, under each data root (``ebgan.data.sources.candidate_roots``):
``ROOT/cifar10/`` or ``ROOT/cifar10/cifar-10-batches-bin/`` or ``ROOT/cifar-10-batches-bin/``
(the archive's own folder). Else the archive is downloaded (md5-checked) into the cache.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from ebgan.errors import EbganError

FILES = {"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test": ("test_batch.bin",)}
RECORD = 1 + 3 * 32 * 32
PER_FILE = 10_000
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
ARCHIVE_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"  # as published on the dataset's page
FOLDER = "cifar-10-batches-bin"


def _folders(root: Path, name: str) -> list[Path]:
    return [root / name, root / name / FOLDER, root / FOLDER]


def locate(name: str, split: str, roots) -> list[Path] | None:
    for root in roots:
        for folder in _folders(Path(root), name):
            files = [folder / f for f in FILES[split]]
            if all(f.is_file() for f in files):
                return files
    return None


def read_batches(files: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, 3, 32, 32) and int64 labels (N,) of binary batch files, sizes checked."""
    images, labels = [], []
    for path in files:
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % RECORD:
            raise EbganError(
                f"{path} is {raw.size} bytes, not a whole number of {RECORD}-byte CIFAR-10 records; "
                "the file is damaged or not from cifar-10-binary.tar.gz"
            )
        records = raw.reshape(-1, RECORD)
        if records[:, 0].max() > 9:
            raise EbganError(f"{path} has labels above 9: it is not a CIFAR-10 binary batch (CIFAR-100's?)")
        labels.append(torch.from_numpy(records[:, 0].astype(np.int64)))
        images.append(torch.from_numpy(records[:, 1:].reshape(-1, 3, 32, 32).copy()))
    return torch.cat(images), torch.cat(labels)


def _download(cache: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    download_and_extract_archive(ARCHIVE_URL, str(cache), md5=ARCHIVE_MD5)


def load_cifar(name: str, split: str, roots, cache: Path, download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The official split ('train' or 'test') as (images, labels)."""
    if split not in FILES:
        raise EbganError(f"{name} has no official {split!r} split; use one of {', '.join(FILES)}")
    files = locate(name, split, roots)
    if files is None and download:
        with contextlib.suppress(Exception):  # offline, or the mirror refused: reported below with where we looked
            _download(cache)
        files = locate(name, split, [cache])
    if files is None:
        looked = [str(f) for r in roots for f in _folders(Path(r), name)]
        raise EbganError(
            f"{name} ({split} split) not found. Looked in: {', '.join(looked)}"
            + ("; a download also failed (offline?)" if download else "")
            + f". Fix: extract cifar-10-binary.tar.gz (the binary version, not the Python one) into DIR/{name}/ "
            "and pass --data-root DIR or set EBGAN_DATA=DIR"
        )
    return read_batches(files)
