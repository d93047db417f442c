"""IDX reading and validation, dataset discovery order, fitting, and the in-memory sampler."""

import gzip
import struct

import numpy as np
import pytest
import torch

from ebgan.data import (
    EpochBatches,
    fit_images,
    load_images,
    read_idx,
    to_uint8,
    to_unit_range,
)
from ebgan.data.sources import ImageData
from ebgan.errors import EbganError


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding written independently of the reader: magic 0,0,0x08,ndim; sizes big-endian."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_split(folder, prefix, n, gz=True, size=28, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    for name, arr in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
        data = idx_bytes(arr)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_roundtrip(tmp_path, gz):
    images, labels = write_split(tmp_path, "train", 5, gz=gz)
    suffix = ".gz" if gz else ""
    assert np.array_equal(read_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", 3), images)
    assert np.array_equal(read_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", 1), labels)


def test_read_idx_rejects_truncated_and_foreign_files(tmp_path):
    good = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    (tmp_path / "short").write_bytes(good[:-10])
    with pytest.raises(EbganError, match="truncated or corrupt"):
        read_idx(tmp_path / "short", 3)
    (tmp_path / "short.gz").write_bytes(gzip.compress(good)[:-20])  # cut gzip stream
    with pytest.raises(EbganError, match="cannot read"):
        read_idx(tmp_path / "short.gz", 3)
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    with pytest.raises(EbganError, match="not an IDX file"):
        read_idx(tmp_path / "png", 3)
    with pytest.raises(EbganError, match="expected unsigned bytes with 1 dims"):
        (tmp_path / "img").write_bytes(good)
        read_idx(tmp_path / "img", 1)


def test_discovery_order_data_root_then_env(tmp_path, monkeypatch):
    root_images, _ = write_split(tmp_path / "a" / "mnist", "t10k", 4, seed=1)
    env_images, _ = write_split(tmp_path / "b" / "mnist", "t10k", 6, seed=2)
    monkeypatch.setenv("EBGAN_DATA", str(tmp_path / "b"))
    data = load_images("mnist", split="test", data_root=tmp_path / "a", image_size=28, download=False)
    assert np.array_equal(data.images[:, 0].numpy(), root_images)
    data = load_images("mnist", split="test", image_size=28, download=False)
    assert np.array_equal(data.images[:, 0].numpy(), env_images)


def test_torchvision_download_layout_is_found(tmp_path):
    images, _ = write_split(tmp_path / "FashionMNIST" / "raw", "train", 3, gz=False)
    data = load_images("fashion-mnist", data_root=tmp_path, image_size=28, download=False)
    assert data.num_classes == 10 and np.array_equal(data.images[:, 0].numpy(), images)


def test_wrong_image_size_and_count_mismatch(tmp_path):
    write_split(tmp_path / "mnist", "train", 3, size=20)
    with pytest.raises(EbganError, match="expected 28x28"):
        load_images("mnist", data_root=tmp_path, download=False)
    folder = tmp_path / "x" / "mnist"
    write_split(folder, "train", 3)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(4, np.uint8))))
    with pytest.raises(EbganError, match="3 images but"):
        load_images("mnist", data_root=tmp_path / "x", download=False)


def test_pad_to_32_centres_with_black_border():
    images = torch.full((2, 1, 28, 28), 200, dtype=torch.uint8)
    out = fit_images(ImageData(images, torch.zeros(2, dtype=torch.long), "t", 0), 32, "pad").images
    assert out.shape == (2, 1, 32, 32)
    assert torch.all(out[:, :, 2:30, 2:30] == 200)
    assert out.sum() == 2 * 28 * 28 * 200  # the 2-pixel border is 0
    resized = fit_images(ImageData(images, torch.zeros(2, dtype=torch.long), "t", 0), 32, "resize").images
    assert resized.shape == (2, 1, 32, 32) and torch.all(resized == 200)


def test_unit_range_roundtrip():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    f = to_unit_range(x)
    assert f.min() == -1 and f.max() == 1
    assert torch.equal(to_uint8(f), x)


def test_epoch_batches_visit_every_sample_once_per_epoch_and_restore():
    data = torch.arange(10, dtype=torch.float32).view(10, 1)
    sampler = EpochBatches(data, batch_size=3, seed=0)  # 3 batches per epoch, 1 sample left out
    epoch0 = torch.cat([sampler.next() for _ in range(3)]).flatten().tolist()
    assert len(set(epoch0)) == 9 and sampler.epoch_ended
    state = sampler.state_dict()
    following = [sampler.next() for _ in range(5)]
    assert sampler.epoch == 2  # batches 4-6 are epoch 1, 7-8 epoch 2
    clone = EpochBatches(data, batch_size=3, seed=99)
    clone.load_state_dict(state)
    assert all(torch.equal(a, clone.next()) for a in following)


@pytest.mark.realdata
def test_real_fashion_mnist_loads_as_documented(data_root):
    data = load_images("fashion-mnist", data_root=data_root)
    assert data.images.shape == (60000, 1, 32, 32) and data.images.dtype == torch.uint8
    assert sorted(data.labels.unique().tolist()) == list(range(10))
    test = load_images("fashion-mnist", split="test", data_root=data_root)
    assert len(test) == 10000
