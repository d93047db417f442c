"""CIFAR-10 from its binary version: records read as the format defines them, damage named, nothing unpickled."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ebgan.data import load_images
from ebgan.errors import EbganError


def record(label: int, r: int, g: int, b: int) -> bytes:
    """One record as the CIFAR-10 page defines it: the label byte, then the 1024 red, green and blue
    bytes of the 32x32 image, row by row. Pixel (row 0, column 1) of the red plane is 255."""
    red = np.full(1024, r, np.uint8)
    red[1] = 255
    return bytes([label]) + red.tobytes() + np.full(1024, g, np.uint8).tobytes() + np.full(1024, b, np.uint8).tobytes()


def test_records_become_images_and_labels(tmp_path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-bin"  # the archive's own folder, inside ours
    folder.mkdir(parents=True)
    (folder / "test_batch.bin").write_bytes(record(3, 10, 20, 30) + record(7, 40, 50, 60))
    data = load_images("cifar10", split="test", data_root=tmp_path, image_size=32)
    assert data.images.shape == (2, 3, 32, 32) and data.labels.tolist() == [3, 7]
    assert data.images[1, :, 5, 5].tolist() == [40, 50, 60]
    assert data.images[0, 0, 0, 1] == 255 and data.images[0, 0, 1, 0] == 10  # row-major planes
    assert data.images.dtype == torch.uint8 and data.num_classes == 10


@pytest.mark.parametrize(
    "content, message",
    [
        (record(1, 0, 0, 0) + b"\x00" * 7, "not a whole number of 3073-byte CIFAR-10 records"),
        (record(42, 0, 0, 0), "labels above 9"),
    ],
)
def test_damaged_batches_are_named(tmp_path, content, message):
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "test_batch.bin").write_bytes(content)
    with pytest.raises(EbganError, match=message):
        load_images("cifar10", split="test", data_root=tmp_path)


def test_missing_files_say_where_they_were_looked_for(tmp_path):
    with pytest.raises(EbganError, match=r"cifar10 \(train split\) not found.*binary version, not the Python one"):
        load_images("cifar10", split="train", data_root=tmp_path)


def _labelled_batch(n: int, seed: int) -> bytes:
    """n records whose class k has a bright 6x6 square at (3k, 3k) in colour plane k % 3."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 3, 32, 32)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, k % 3, 3 * k : 3 * k + 6, 3 * k : 3 * k + 6] = 230
    return b"".join(bytes([int(k)]) + im.tobytes() for k, im in zip(labels, images, strict=True))


def test_cifar10_classifier_trains_and_evaluates_rgb_samples(tmp_path, capsys):
    import json

    from ebgan.cli import main

    folder = tmp_path / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        (folder / f"data_batch_{i}.bin").write_bytes(_labelled_batch(100, i))
    (folder / "test_batch.bin").write_bytes(_labelled_batch(200, 9))
    assert main(["classifier", "train", "--dataset", "cifar10", "--data-root", str(tmp_path), "--epochs", "3"]) == 0
    capsys.readouterr()
    assert main(["classifier", "show", "--dataset", "cifar10"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["image_shape"] == [3, 32, 32] and meta["split_used"] == "train"
    assert meta["test_accuracy"] > 0.3  # ten coloured squares: far above chance (0.1) after 3 epochs
    # RGB samples scored on its features: the test images themselves are close to the train floor
    samples = load_images("cifar10", split="test", data_root=tmp_path, image_size=32).images[:100]
    np.savez(tmp_path / "samples.npz", images=samples.numpy())
    argv = ["eval", "--samples", str(tmp_path / "samples.npz"), "--dataset", "cifar10", "--data-root", str(tmp_path)]
    assert main([*argv, "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["frechet_name"] == "fid_cifar10_cls"
    assert np.isfinite(scores["frechet"]) and scores["frechet"] >= 0
    assert scores["modes"] >= 5  # real test images of ten classes: far from a collapsed set (1 mode)
