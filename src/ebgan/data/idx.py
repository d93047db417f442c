"""Reading MNIST-family IDX files (LeCun's format), gzipped or not, with validation.

Format: big-endian magic (0x00 0x00 dtype ndim), ndim uint32 sizes, then the data.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ebgan.errors import EbganError

_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | Path, expect_ndim: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes and check its header against its size."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:  # by content, not name: a saved download may have lost or kept ".gz" wrongly
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # truncated gzip: EOFError; damaged: zlib.error
        raise EbganError(f"cannot read {path}: {e}; re-download or re-copy the file") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise EbganError(f"{path} is not an IDX file (bad magic number); is it the right file?")
    dtype, ndim = raw[2], raw[3]
    if dtype != _UBYTE or ndim != expect_ndim:
        raise EbganError(
            f"{path}: IDX header says dtype 0x{dtype:02x} with {ndim} dims, "
            f"expected unsigned bytes with {expect_ndim} dims"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise EbganError(f"{path} is truncated inside its header; re-download it")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise EbganError(
            f"{path} has {len(raw)} bytes but its header {shape} needs {expected}: "
            "the file is truncated or corrupt; re-download it"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
