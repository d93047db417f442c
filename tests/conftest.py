"""Shared fixtures. Real MNIST-family files are optional: tests that need them skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# One thread per test process: the suite runs under pytest-xdist (one worker per core),
# and oversubscribed OpenMP threads slow small steps down several-fold.
torch.set_num_threads(1)


def real_data_root() -> Path | None:
    """A folder with mnist/ or fashion-mnist/ IDX files: EBGAN_DATA, else ../shared/data beside the repo."""
    for candidate in (os.environ.get("EBGAN_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "fashion-mnist").is_dir():
            return Path(candidate)
    return None


@pytest.fixture
def data_root() -> Path:
    root = real_data_root()
    if root is None:
        pytest.skip("no MNIST-family files (set EBGAN_DATA or put ../shared/data beside the repo)")
    return root


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    # No test may find datasets in the user's cache or download them by accident.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("EBGAN_DATA", raising=False)
    torch.manual_seed(0)


def synthetic_images(n: int = 256, channels: int = 1, size: int = 32, seed: int = 0) -> torch.Tensor:
    """uint8 images with structure (blobs at random places), for fast training tests."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centres = torch.randint(6, size - 6, (n, 2), generator=g)
    d2 = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
    img = (255 * torch.exp(-d2.float() / 18)).to(torch.uint8)
    return img[:, None].expand(n, channels, size, size).contiguous()
