"""Training images/s of seed32 EBGAN-PT at batch 64 on Fashion-MNIST: ours against the common way.

Usage:
    python benchmarks/train_speed.py [--data-root DIR] [--steps 300] [--rounds 5] [--threads N]

Contenders, timed in the same process in interleaved rounds (the machine's load drifts):
  baseline  torchvision ``datasets.FashionMNIST`` (PIL -> Resize(32) -> ToTensor -> Normalize
            per sample) through a ``DataLoader``; seed32 written with ``nn.Upsample + nn.Conv2d``
            in NCHW; the same EBGAN-PT losses and Adam settings, D step then G step on the same G(z).
  ours      ``ebgan.train.Trainer.train_step`` (uint8 dataset in memory, batches by index)
            with the seed32 nets as shipped (2x2-phase upsample+conv, channels_last).
  ours-plain-layers (--ablation)  ``Trainer`` with ``UpsampleConv2d(impl='reference')``: how much
            of the gain is the layers.

Also measures the machine's float32 matmul and conv throughput and the share of it the
training step reaches (FLOPs counted by ``torch.utils.flop_counter.FlopCounterMode``).
DIR holds ``fashion-mnist/`` with the IDX files (default: $EBGAN_DATA, else ../shared/data).
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn

from ebgan.config import Config
from ebgan.data import load_images
from ebgan.nets.layers import UpsampleConv2d, init_normal_
from ebgan.objectives import build_objective
from ebgan.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
BATCH = 64
LATENT = 62
FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def find_data_root(arg: str | None) -> Path:
    root = Path(arg or os.environ.get("EBGAN_DATA") or REPO.parent / "shared" / "data").expanduser()
    folder = root / "fashion-mnist"
    missing = [f for f in FILES if not (folder / f).is_file() and not (folder / (f + ".gz")).is_file()]
    if missing:
        sys.exit(
            f"train_speed: Fashion-MNIST not found in {folder} (missing {', '.join(missing)}). "
            "Pass --data-root DIR (or set EBGAN_DATA=DIR) where DIR/fashion-mnist/ holds the IDX files."
        )
    return root


# ----------------------------------------------------------------------------- baseline
class BaselineGenerator(nn.Module):
    """seed32's generator as the reference script writes it (same layers, NCHW)."""

    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(LATENT, 128 * 8 * 8)
        self.conv_blocks = nn.Sequential(
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 128, 3, stride=1, padding=1),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 64, 3, stride=1, padding=1),
            nn.BatchNorm2d(64),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(64, 1, 3, stride=1, padding=1),
            nn.Tanh(),
        )
        init_normal_(self, 0.02)

    def forward(self, z):
        return self.conv_blocks(self.l1(z).view(z.shape[0], 128, 8, 8))


class BaselineDiscriminator(nn.Module):
    """seed32's autoencoder discriminator as the reference script writes it."""

    def __init__(self):
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(1, 64, 3, 2, 1), nn.ReLU())
        self.embedding = nn.Linear(64 * 16 * 16, 32)
        self.fc = nn.Sequential(
            nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 64 * 16 * 16), nn.BatchNorm1d(64 * 16 * 16), nn.ReLU()
        )
        self.up = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(64, 1, 3, 1, 1))
        init_normal_(self, 0.02)

    def forward(self, img):
        out = self.down(img)
        embedding = self.embedding(out.view(out.size(0), -1))
        out = self.fc(embedding).view(out.size(0), 64, 16, 16)
        return self.up(out), embedding


def torchvision_dataset(data_root: Path, tmp: Path):
    """torchvision's own FashionMNIST class over the local files (it wants root/FashionMNIST/raw/, uncompressed)."""
    from torchvision import datasets, transforms

    raw = tmp / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in FILES:
        src = data_root / "fashion-mnist" / name
        if src.is_file():
            os.symlink(src, raw / name)
        else:
            with gzip.open(str(src) + ".gz", "rb") as f, open(raw / name, "wb") as out:
                shutil.copyfileobj(f, out)
    tf = transforms.Compose([transforms.Resize(32), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
    return datasets.FashionMNIST(str(tmp), train=True, download=False, transform=tf)


class Baseline:
    name = "baseline"

    def __init__(self, dataset, workers: int):
        self.loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=BATCH,
            shuffle=True,
            drop_last=True,
            num_workers=workers,
            persistent_workers=workers > 0,
        )
        self.batches = iter(self.loader)
        self.G, self.D = BaselineGenerator(), BaselineDiscriminator()
        self.objective = build_objective(Config(objective="ebgan-pt").resolve())  # margin 10, pt 0.1
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def next_real(self):
        try:
            return next(self.batches)[0]
        except StopIteration:
            self.batches = iter(self.loader)
            return next(self.batches)[0]

    def step(self):
        real = self.next_real()
        z = torch.randn(real.shape[0], LATENT)
        fake = self.G(z)
        loss_d, _ = self.objective.discriminator_loss(self.D, real, fake.detach())
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        loss_g, _ = self.objective.generator_loss(self.D, fake)
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()


# ----------------------------------------------------------------------------- ours
class Ours:
    def __init__(self, images: torch.Tensor, impl: str = "transposed", name: str = "ours"):
        self.name = name
        cfg = Config(
            dataset="fashion-mnist",
            model="seed32",
            objective="ebgan-pt",
            batch_size=BATCH,
            steps=10**9,
            device="cpu",
            log_every=10**9,
            sample_every=0,
            checkpoint_every=0,
        ).resolve()
        self.trainer = Trainer(cfg, images, run_dir=None)
        for m in [*self.trainer.G.modules(), *self.trainer.D.modules()]:
            if isinstance(m, UpsampleConv2d):
                m.impl = impl

    def step(self):
        self.trainer.train_step()


# ----------------------------------------------------------------------------- machine
def best_time(fn, repeat: int = 5, number: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t) / number)
    return best


def machine_throughput() -> dict[str, float]:
    """Best-of float32 GFLOP/s: a large matmul, and the forward convs that dominate the step."""
    torch.manual_seed(0)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    out = {"matmul 2048^3": 2 * 2048**3 / best_time(lambda: a @ b) / 1e9}
    x = torch.randn(BATCH, 128, 32, 32)
    w = torch.randn(64, 128, 3, 3)
    flops = 2 * BATCH * 32 * 32 * 64 * 128 * 9
    out["conv2d 128->64 3x3 @32x32 (baseline's largest)"] = (
        flops / best_time(lambda: torch.nn.functional.conv2d(x, w, padding=1)) / 1e9
    )
    x16 = torch.randn(BATCH, 128, 16, 16).contiguous(memory_format=torch.channels_last)
    wt = torch.randn(128, 64, 4, 4).contiguous(memory_format=torch.channels_last)
    flops_t = 2 * BATCH * 16 * 16 * 128 * 64 * 16
    out["conv_transpose2d 128->64 4x4/2 @16x16 (ours' largest)"] = (
        flops_t / best_time(lambda: torch.nn.functional.conv_transpose2d(x16, wt, stride=2, padding=1)) / 1e9
    )
    return out


def step_flops(contender) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        contender.step()
    return counter.get_total_flops()


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", help="folder holding fashion-mnist/ (default: $EBGAN_DATA, else ../shared/data)")
    ap.add_argument("--steps", type=int, default=300, help="timed steps per contender, split over the rounds")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (each contender once per round)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps per contender first")
    ap.add_argument("--workers", type=int, default=0, help="baseline DataLoader workers")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, the core count)")
    ap.add_argument("--ablation", action="store_true", help="also time the Trainer with the plain upsample+conv")
    args = ap.parse_args()
    data_root = find_data_root(args.data_root)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at start",
        flush=True,
    )

    with tempfile.TemporaryDirectory() as tmp:
        baseline = Baseline(torchvision_dataset(data_root, Path(tmp)), args.workers)
        # same pixels as the baseline's Resize(32); ours resizes once at load
        images = load_images("fashion-mnist", "train", data_root, 32, fit="resize", download=False).images
        contenders = [baseline, Ours(images)]
        if args.ablation:
            contenders.append(Ours(images, impl="reference", name="ours-plain-layers"))

        flops = {c.name: step_flops(c) for c in contenders}
        for c in contenders:
            for _ in range(args.warmup):
                c.step()
        per_round = max(1, args.steps // args.rounds)
        times = {c.name: [] for c in contenders}
        for r in range(args.rounds):
            for c in contenders if r % 2 == 0 else contenders[::-1]:  # alternate who goes first
                t = time.perf_counter()
                for _ in range(per_round):
                    c.step()
                times[c.name].append(time.perf_counter() - t)
            rates = "  ".join(f"{n} {per_round * BATCH / ts[-1]:.1f}" for n, ts in times.items())
            print(f"round {r + 1}/{args.rounds}: img/s {rates}", flush=True)

    steps_total = per_round * args.rounds
    rate = {n: steps_total * BATCH / sum(ts) for n, ts in times.items()}
    round_ratios = [b / o for b, o in zip(times["baseline"], times["ours"])]
    print(f"\nload average {os.getloadavg()[0]:.1f} at end (other processes share the CPU)")
    print(f"{'contender':<20} {'img/s':>8} {'GFLOP/step':>11} {'GFLOP/s':>8}")
    for n in rate:
        print(f"{n:<20} {rate[n]:>8.1f} {flops[n] / 1e9:>11.2f} {flops[n] / 1e9 * rate[n] / BATCH:>8.1f}")
    print(
        f"ratio ours/baseline: {rate['ours'] / rate['baseline']:.2f}x over {steps_total} steps each "
        f"(per round: min {min(round_ratios):.2f}x, median {statistics.median(round_ratios):.2f}x)"
    )
    if "ours-plain-layers" in rate:
        print(f"ratio ours/ours-plain-layers: {rate['ours'] / rate['ours-plain-layers']:.2f}x")

    peak = machine_throughput()
    print("\nmachine float32 throughput (best of 5):")
    for k, v in peak.items():
        print(f"  {k:<55} {v:8.1f} GFLOP/s")
    # MKL's sgemm may not use AVX-512 on AMD CPUs while oneDNN's convs do: take the best rate
    best = max(peak.values())
    print(f"share of the best measured rate ({best:.1f} GFLOP/s):")
    for n in rate:
        achieved = flops[n] / 1e9 * rate[n] / BATCH
        nominal = flops["baseline"] / 1e9 * rate[n] / BATCH
        print(
            f"  {n}: executes {achieved:.1f} GFLOP/s = {100 * achieved / best:.0f}%; "
            f"counted in the plain model's FLOPs {nominal:.1f} GFLOP/s = {100 * nominal / best:.0f}%"
        )


if __name__ == "__main__":
    main()
