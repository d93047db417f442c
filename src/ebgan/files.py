"""Every file ebgan writes goes through here, atomically.

A write goes to a temporary file in the destination's folder, is flushed and fsynced,
renamed over the destination, and the folder is fsynced so the rename itself survives
a power cut. A reader (or a crash, a kill, a full disk) therefore sees the old file or
the new one, never half of one; a failed write removes its temporary file.

Files get the permissions the user's umask gives an ordinary file (``tempfile`` alone
would leave them 0600 and folders 0700).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from ebgan.errors import EbganError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()
_DIR_MODE = 0o777 & ~_umask()


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def explain_os_error(e: OSError, path: Path) -> EbganError:
    if e.errno == errno.ENOSPC:
        return EbganError(
            f"the disk is full while writing {path}; nothing was replaced "
            f"(any previous {path.name} is intact). Free some space and run again"
        )
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return EbganError(f"cannot write {path}: {e.strerror}; choose a folder you can write to")
    return EbganError(f"cannot write {path}: {e}")


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(f)`` on a binary temp file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise explain_os_error(e, path) from e
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise explain_os_error(e, path) from e
        raise
    fsync_dir(path.parent)
    return path


def write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, value: Any, indent: int | None = 1) -> Path:
    """JSON without NaN or infinity (they are not JSON): such a value is a bug, not a file."""
    return write_text(path, json.dumps(value, indent=indent, allow_nan=False) + "\n")


def save_torch(path: str | Path, obj: Any) -> Path:
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def save_safetensors(path: str | Path, tensors: dict, metadata: dict[str, str] | None = None) -> Path:
    from safetensors.torch import save

    return write_bytes(path, save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata))


def save_weights_and_spec(weights: Path, tensors: dict, spec_path: Path, spec: dict) -> None:
    """Weights (safetensors) and the JSON that describes them, e.g. ``generator.json``. They are written
    one after the other, so the weights carry the JSON in their metadata too: ``spec_disagrees`` then
    tells when a kill between the two left one export's weights beside another's JSON."""
    save_safetensors(weights, tensors, metadata={spec_path.name: json.dumps(spec, sort_keys=True)})
    write_json(spec_path, spec, indent=2)


def spec_disagrees(weights: Path, spec_path: Path, spec: dict) -> bool:
    """True when ``weights`` were written with another JSON than ``spec`` (read from ``spec_path``);
    False for weights written before they carried it."""
    from safetensors import safe_open

    with safe_open(str(weights), "pt") as f:
        written_with = (f.metadata() or {}).get(spec_path.name)
    return written_with is not None and json.loads(written_with) != spec


def save_npz(path: str | Path, **arrays) -> Path:
    import numpy as np

    return atomic_write(path, lambda f: np.savez(f, **arrays))


def save_png(path: str | Path, image) -> Path:
    """A PIL image, or a uint8 array (C, H, W) with 1 or 3 channels, as a PNG file."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        hwc = image.transpose(1, 2, 0)
        image = Image.fromarray(hwc[:, :, 0] if hwc.shape[2] == 1 else hwc)
    return atomic_write(path, lambda f: image.save(f, format="PNG"))


def check_new_folder(path: str | Path) -> Path:
    """``path`` as an output folder ``atomic_dir`` can fill: absent or empty (check it before the work)."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise EbganError(f"{path} exists and is not an empty folder; choose another output folder")
    return path


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Fill a temp folder beside ``path``; on success it is renamed to ``path`` (which must be
    absent or an empty folder), on failure removed."""
    path = check_new_folder(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as e:
        raise explain_os_error(e, path) from e
    try:
        yield tmp
        os.chmod(tmp, _DIR_MODE)
        if path.exists():
            path.rmdir()
        os.replace(tmp, path)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise explain_os_error(e, path) from e
        raise
    fsync_dir(path.parent)
