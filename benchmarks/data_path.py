"""Batches per second: the decoded cache against ImageFolder + transforms + DataLoader.

Generates a CelebA-layout folder of N JPEGs (178x218 faces' size, random smooth colour
fields), then times, on the same 64x64 batches of 64:

- **common** - torchvision ``ImageFolder`` with ``CenterCrop(108)``, ``Resize(64)``,
  ``ToTensor``, ``Normalize``, through ``DataLoader(num_workers=2, shuffle=True)``: JPEG
  decoding and per-sample Python at every batch;
- **cache** - ``ebgan``'s decoded cache (built once: its build time and size on disk are
  printed) read by ``EpochBatches``: one ``index_select`` of uint8 and a conversion per batch.

Each contender runs for ``--batches`` batches after ``--warmup``; the ratio is of batches/s.

    .venv/bin/python benchmarks/data_path.py --n 10000 --batches 200
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_folder(root: Path, n: int) -> Path:
    folder = root / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (n, 7, 6, 3), dtype=np.uint8)  # smooth fields: JPEGs of realistic size
    for i in range(n):
        Image.fromarray(base[i]).resize((178, 218), Image.BICUBIC).save(folder / f"{i:06d}.jpg", quality=90)
    return root


def time_common(root: Path, batches: int, warmup: int) -> float:
    import torch
    from torchvision import datasets, transforms

    tf = transforms.Compose(
        [transforms.CenterCrop(108), transforms.Resize(64), transforms.ToTensor(), transforms.Normalize(0.5, 0.5)]
    )
    ds = datasets.ImageFolder(str(root / "celeba"), transform=tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, num_workers=2, drop_last=True)
    batches_seen = iter(_endless(loader))
    for _ in range(warmup):  # starts the workers
        next(batches_seen)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(batches_seen)
    return batches / (time.perf_counter() - t0)


def _endless(loader):
    while True:
        yield from loader


def time_cache(root: Path, batches: int, warmup: int) -> tuple[float, float, int]:
    from ebgan.data import EpochBatches, load_images

    t0 = time.perf_counter()
    data = load_images("celeba", data_root=root, image_size=64)
    build = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in (Path(os.environ["XDG_CACHE_HOME"]) / "ebgan" / "decoded").glob("*.npy"))
    b = EpochBatches(data.images, 64, seed=0)
    for _ in range(warmup):
        b.next()
    t0 = time.perf_counter()
    for _ in range(batches):
        b.next()
    return batches / (time.perf_counter() - t0), build, size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    a = p.parse_args()
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        t0 = time.perf_counter()
        root = make_folder(Path(tmp) / "data", a.n)
        print(f"generated {a.n} JPEGs in {time.perf_counter() - t0:.1f} s")
        common = time_common(root, a.batches, a.warmup)
        print(f"common (ImageFolder + transforms + DataLoader, 2 workers): {common:.1f} batches/s")
        cache, build, size = time_cache(root, a.batches, a.warmup)
        print(f"decoded cache: built once in {build:.1f} s, {size / 2**20:.1f} MiB on disk")
        print(f"cache (EpochBatches over the mapped array): {cache:.1f} batches/s; ratio {cache / common:.1f}x")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
