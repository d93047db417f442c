"""Colour image sets decoded once into a uint8 array on disk, read back memory-mapped.

CelebA and LSUN hold hundreds of thousands of JPEGs; decoding them at every batch (the common
``ImageFolder`` + ``DataLoader`` way) costs more than a CPU training step. Here each image is
decoded, centre-cropped and resized once, into ``cache_dir()/decoded/<name>.npy`` (an
(N, C, S, S) uint8 ``.npy``), written atomically; later loads map the file (``mmap_mode="c"``:
pages are read on demand and never written back) and the trainer draws batches from it by index.

The file name holds a hash of everything the pixels depend on: the source kind, its resolved
root, the size, the crop, the channels and the sorted file list with each file's size and
modification time. A changed source therefore gets a new file (the stale one is removed), never
a silent reuse; a file of the right name but the wrong shape (torn, foreign) is rebuilt.

One process builds a file at a time (``flock`` on ``.<name>.lock``): torchrun's ranks all load
the data at start, and the others wait for the first's file rather than decode it again each.

An image that cannot be decoded stops the build with an error naming the file: skipping it
would change the dataset without anyone deciding to.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ebgan.errors import EbganError

CACHE_FORMAT = "ebgan-decoded-v2"  # part of every key: a new layout never reads an old file (v2: EXIF orientation)


def cache_key(kind: str, root: Path, entries: Sequence[tuple[str, int, int]], size: int, crop, channels: int) -> str:
    """sha256 of the source and the transform; ``entries``: (relative name, bytes, mtime_ns) per image."""
    h = hashlib.sha256()
    h.update(json.dumps([CACHE_FORMAT, kind, str(root), size, crop, channels]).encode())
    for entry in entries:
        h.update(json.dumps(list(entry)).encode())
    return h.hexdigest()


def crop_resize(image: torch.Tensor, size: int, crop: int | None) -> torch.Tensor:
    """uint8 (C, H, W) -> (C, size, size): the centre ``crop`` x ``crop`` square (None: the largest
    centred square), then an antialiased resize."""
    from torchvision.transforms.v2.functional import center_crop, resize

    _, h, w = image.shape
    side = min(h, w) if crop is None else crop
    if side > min(h, w):
        raise EbganError(f"cannot crop {side}x{side} from a {h}x{w} image")
    image = center_crop(image, [side, side])
    if side != size:
        image = resize(image, [size, size], antialias=True)
    return image


def decoded_images(
    kind: str,
    root: Path,
    names: Sequence[str],
    stat: Callable[[str], tuple[int, int]],
    read: Callable[[str], torch.Tensor],
    size: int,
    crop: int | None,
    channels: int,
    cache: Path,
) -> torch.Tensor:
    """The images ``names`` of a source, cropped and resized, as a uint8 (N, C, size, size) tensor
    mapped from the decoded cache (built on the first call).

    ``stat(name)`` gives (bytes, mtime_ns) for the key; ``read(name)`` decodes one image to uint8
    (C, H, W) with ``channels`` channels and raises EbganError naming it when it cannot.
    """
    entries = [(n, *stat(n)) for n in names]
    key = cache_key(kind, root.resolve(), entries, size, crop, channels)
    # one file per source, size and channels: a change of source replaces it; grey and colour both stay
    stem = f"{kind}-{hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]}-{size}-c{channels}"
    path = cache / "decoded" / f"{stem}-{key[:20]}.npy"
    shape = (len(names), channels, size, size)
    found = _mapped(path, shape)
    if found is not None:
        return found
    _make_cache_dir(path.parent)
    with _build_lock(path):  # one process decodes; torchrun's other ranks (or a second run) wait, then map it
        found = _mapped(path, shape)
        if found is not None:
            return found
        if path.is_file():
            print(f"ebgan: {path} does not hold {shape} uint8 images (torn or foreign); rebuilding it")
        _build(path, shape, names, read, size, crop, kind, root)
        for old in [*path.parent.glob(f"{stem}-*.npy"), *path.parent.glob(f".{stem}-*.npy.lock")]:
            if not old.name.endswith((path.name, f"{path.name}.lock")):  # decoded before the source changed
                old.unlink(missing_ok=True)
    return torch.from_numpy(np.load(path, mmap_mode="c"))


def _mapped(path: Path, shape) -> torch.Tensor | None:
    """The cache file mapped, when it holds the expected images; None when it is absent, torn or foreign."""
    if not path.is_file():
        return None
    try:
        array = np.load(path, mmap_mode="c")
    except (ValueError, OSError, EOFError):
        return None
    return torch.from_numpy(array) if array.shape == shape and array.dtype == np.uint8 else None


def _make_cache_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EbganError(f"cannot create the decoded-image cache {folder}: {e.strerror}; set XDG_CACHE_HOME") from e


@contextlib.contextmanager
def _build_lock(path: Path):
    """An exclusive lock on ``.<name>.lock`` beside the cache file (flock: released by the kernel if
    the holder dies, so a killed build never blocks the next one)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock; concurrent builds then each write their own temporary file
        yield
        return
    lock = path.with_name(f".{path.name}.lock")
    try:
        f = open(lock, "a")  # noqa: SIM115  # closed by the with below; opened here to word its error
    except OSError as e:
        raise EbganError(f"cannot write the decoded-image cache {lock}: {e.strerror}; set XDG_CACHE_HOME") from e
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _build(path: Path, shape, names, read, size: int, crop, kind: str, root: Path) -> None:
    from tqdm import tqdm

    _remove_orphans(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        for i, name in enumerate(tqdm(names, desc=f"decoding {kind} once ({root})", unit="img", mininterval=2)):
            image = read(name)
            try:
                out[i] = crop_resize(image, size, crop).numpy()
            except EbganError as e:  # too small for the crop: name it, as a file that cannot be decoded is
                raise EbganError(f"{root / name}: {e}; remove it or replace it with a full-size image") from e
        out.flush()
        del out
        os.replace(tmp, path)  # atomic: the cache holds a whole file or none
    except OSError as e:
        raise EbganError(
            f"cannot write the decoded-image cache {path}: {e.strerror}; free space or set XDG_CACHE_HOME"
        ) from e
    finally:
        tmp.unlink(missing_ok=True)


def _remove_orphans(path: Path) -> None:
    """Delete the partial files of builds of ``path`` that were killed (at LSUN's scale each can be
    100 GB); a build still running (another rank or process, its pid alive) keeps its own."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 : -len(".tmp")]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
