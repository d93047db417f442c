"""Shared fixtures.

Real datasets are optional: tests that need one ask for it by dataset and split and skip
with a reason naming what is missing. They are found the way the product finds them
(``ebgan.data.sources.candidate_roots``, ``locate_idx``), in the environment the session
started with: $EBGAN_DATA, then ``../shared/data`` beside the repo (the build machines'
copy), the user's cache, /usr/share/datasets (Debian's dataset-fashion-mnist).

Everything else runs isolated (``_isolated_env``): no test finds datasets in those places
or downloads them by accident; a test that needs data to be absent says so with ``no_datasets``.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from ebgan.data.registry import DatasetSpec, dataset_spec, register_dataset, unregister_dataset
from ebgan.data.sources import candidate_roots, locate_idx

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# One thread per test process: the suite runs under pytest-xdist (one worker per core),
# and oversubscribed OpenMP threads slow small steps down several-fold.
torch.set_num_threads(1)


def _session_roots() -> list[Path]:
    product = candidate_roots(None)  # [$EBGAN_DATA], cache, /usr/share/datasets
    n_env = 1 if os.environ.get("EBGAN_DATA") else 0
    return product[:n_env] + [SHARED_DATA] + product[n_env:]


# Read at import, before any fixture changes the environment: setting EBGAN_DATA works.
SESSION_ROOTS = _session_roots()

FMNIST = (("fashion-mnist", "train"), ("fashion-mnist", "test"))
MNIST_TEST = (("mnist", "test"),)


def find_split(name: str, split: str) -> tuple[Path, Path] | None:
    """The (images, labels) files of an official split, from the first session root holding them."""
    for root in SESSION_ROOTS:
        found = locate_idx(name, split, [root])
        if found:
            return found
    return None


def missing_reason(needs) -> str | None:
    missing = [f"{name} {split} split" for name, split in needs if find_split(name, split) is None]
    if not missing:
        return None
    return f"{', '.join(missing)} not found in {', '.join(map(str, SESSION_ROOTS))}"


def real_root(needs, folder: Path, link: bool = False) -> Path | None:
    """A data root holding every (dataset, split) of ``needs``, or None if one is missing.

    The one session root that holds them all when there is one (and not ``link``); else
    ``folder`` filled with links to the files found and nothing else, one sub-folder per
    dataset, as the product lays them out.
    """
    found = {need: find_split(*need) for need in needs}
    if any(v is None for v in found.values()):
        return None
    for root in [] if link else SESSION_ROOTS:
        if all(locate_idx(name, split, [root]) == found[(name, split)] for name, split in needs):
            return root
    for (name, _), files in found.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for f in files:
            if not (folder / name / f.name).exists():
                (folder / name / f.name).symlink_to(f)
    return folder


def real_root_or_skip(needs, folder: Path, link: bool = False) -> Path:
    root = real_root(needs, folder, link)
    if root is None:
        pytest.skip(missing_reason(needs))
    return root


@pytest.fixture
def fmnist_root(tmp_path) -> Path:
    """A data root with Fashion-MNIST's train and test splits."""
    return real_root_or_skip(FMNIST, tmp_path / "real")


@pytest.fixture
def mnist_test_root(tmp_path) -> Path:
    """A data root with MNIST's test split (the only one the build machines have)."""
    return real_root_or_skip(MNIST_TEST, tmp_path / "real")


@pytest.fixture
def mnist_test_only_root(tmp_path) -> Path:
    """A data root holding MNIST's test split and nothing else: its train split is absent whatever the machine has."""
    return real_root_or_skip(MNIST_TEST, tmp_path / "only-test", link=True)


def _parse_needs(args) -> tuple:
    """'fashion-mnist' (both official splits) or 'mnist:test' (one) -> ((name, split), ...)."""
    needs = []
    for a in args:
        name, _, split = a.partition(":")
        dataset_spec(name)
        needs += [(name, split)] if split else [(name, "train"), (name, "test")]
    return tuple(needs)


# Tests in files this conftest's owner does not edit that use the generic ``data_root`` and
# need more than Fashion-MNIST. Better: the test declares it, @pytest.mark.realdata("fashion-mnist", "mnist:test").
LEGACY_NEEDS = {"test_histogram_of_real_generated_and_other_dataset": FMNIST + MNIST_TEST}


@pytest.fixture
def data_root(request, tmp_path) -> Path:
    """A data root with what the test's ``realdata`` marker names; Fashion-MNIST (train and test) by default."""
    marker = request.node.get_closest_marker("realdata")
    needs = _parse_needs(marker.args) if marker and marker.args else LEGACY_NEEDS.get(request.node.originalname, FMNIST)
    return real_root_or_skip(needs, tmp_path / "real")


def isolate_data(monkeypatch, folder: Path) -> None:
    """Make every place the product searches empty: EBGAN_DATA, the cache, /usr/share/datasets, downloads."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder / "cache"))
    monkeypatch.delenv("EBGAN_DATA", raising=False)
    monkeypatch.setattr("ebgan.data.sources.SYSTEM_DATA_DIR", folder / "system")
    monkeypatch.setattr("ebgan.data.sources._download_idx", lambda name, split: None)
    monkeypatch.setattr("ebgan.data.cifar._download", _no_download)


def _no_download(cache) -> None:
    raise OSError("tests download nothing")


@pytest.fixture
def no_datasets(monkeypatch, tmp_path) -> None:
    """No dataset can be found or downloaded (unless a test passes a data root of its own)."""
    isolate_data(monkeypatch, tmp_path / "nothing")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    # No test may find datasets in the user's places or download them by accident.
    isolate_data(monkeypatch, tmp_path)
    torch.manual_seed(0)


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding written independently of the reader: magic 0,0,0x08,ndim; sizes big-endian."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_split(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool = True) -> None:
    """MNIST-style files ``<prefix>-images-idx3-ubyte[.gz]`` and ``<prefix>-labels-idx1-ubyte[.gz]``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
        data = idx_bytes(arr)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


def class_images(n: int, classes: int = 3, size: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, size, size) images whose class k is a bright 4x4 square at (4k, 4k) on dim noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n).astype(np.uint8)
    images = rng.integers(0, 40, (n, size, size)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 4 * k : 4 * k + 4, 4 * k : 4 * k + 4] = 220
    return images, labels


@pytest.fixture
def tiny_idx(tmp_path):
    """Factory: write a tiny IDX dataset into tmp_path and register it with one registry entry.

    ``make(name, splits={"train": 90, "test": 60})`` -> (data root, spec); every dataset made is
    unregistered after the test.
    """
    made = []

    def make(name: str = "tiny-digits", splits: dict | None = None, classes: int = 3, size: int = 12):
        root = tmp_path / "tiny-data"
        sizes = {"train": 90, "test": 60} if splits is None else splits
        for i, (split, n) in enumerate(sizes.items()):
            write_idx_split(
                root / name, {"train": "train", "test": "t10k"}[split], *class_images(n, classes, size, seed=i)
            )
        spec = DatasetSpec(
            name,
            native_size=(size, size),
            num_classes=classes,
            class_names=tuple(f"square{k}" for k in range(classes)),
            score_name=name.replace("-", "_") + "_cls",
        )
        register_dataset(spec)
        made.append(name)
        return root, spec

    yield make
    for name in made:
        unregister_dataset(name)


def synthetic_images(n: int = 256, channels: int = 1, size: int = 32, seed: int = 0) -> torch.Tensor:
    """uint8 images with structure (blobs at random places), for fast training tests."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centres = torch.randint(6, size - 6, (n, 2), generator=g)
    d2 = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
    img = (255 * torch.exp(-d2.float() / 18)).to(torch.uint8)
    return img[:, None].expand(n, channels, size, size).contiguous()


# A tiny toy run from the command line: 2-D points, small mlp nets, seconds per hundred steps.
TOY_TRAIN_ARGS = [
    "--dataset",
    "toy:parabola",
    "--model",
    "mlp",
    "--model-args",
    "n_layer_g=2,size_g=16,n_layer_d=2,size_d=16",
    "--batch-size",
    "16",
    "--no-progress",
]


class CodeRunningPayload:
    """Unpickling this runs code: it writes a marker file (what a crafted weights file would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.write_text, (pathlib.Path(self.marker), "pwned"))
