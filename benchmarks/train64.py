"""Training img/s of the 64x64 EBGAN-PT preset: ebgan's Trainer against the common way.

Generates a CelebA-layout folder of N JPEGs (``make_folder`` of ``data_path.py``), then trains
``celeba64-ebgan-pt`` (DCGAN 64x64 G, the paper's 64x64 autoencoder D, margin 20, pull-away
0.1, Adam 2e-4/0.5, batch 64) on it in one process, two ways, with the same networks, losses,
seed and torch threads:

- **ebgan** - ``ebgan.train.Trainer.train_step``: the folder decoded, cropped and resized once
  into ebgan's decoded cache (its build time is printed, not counted), batches by index;
- **common** - torchvision ``ImageFolder`` with ``CenterCrop(108)``, ``Resize(64)``,
  ``ToTensor``, ``Normalize`` through ``DataLoader(num_workers=2, shuffle=True)``, and a plain
  loop over the same ``build_generator``/``build_discriminator`` networks, ``torch.optim.Adam``
  and the objective's ``discriminator_loss``/``generator_loss``: D step, then G step on the same
  G(z).

The preset trains under ``amp`` (bf16 autocast on a CPU) when it says so; the common loop is
then timed twice, in float32 (the way most training scripts run) and under the same bf16
autocast, so the ratios separate what the data path gives from what mixed precision gives.

Each contender runs ``--warmup`` untimed steps, then ``--steps`` timed ones; img/s is
steps * 64 / seconds and the ratios are ebgan/common.

    .venv/bin/python benchmarks/train64.py --n 10000 --steps 30
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_path import make_folder  # noqa: E402

PRESET = "celeba64-ebgan-pt"
BATCH = 64


def make_config(root: Path, seed: int):
    from ebgan.config import Config, load_preset

    values = {**load_preset(PRESET), "dataset": "celeba", "data_root": str(root), "batch_size": BATCH}
    values |= {"seed": seed, "device": "cpu", "sample_every": 0, "checkpoint_every": 0}
    return Config.from_dict(values, "benchmark").resolve()


def time_ebgan(cfg, steps: int, warmup: int) -> tuple[float, float, bool]:
    """img/s, the cache's build seconds, and whether the Trainer ran under bf16 autocast (a preset's
    amp is float32 on a CPU without native bf16)."""
    from ebgan.data import load_training_data
    from ebgan.train import Trainer

    t0 = time.perf_counter()
    data = load_training_data(cfg)  # builds the decoded cache
    build = time.perf_counter() - t0
    trainer = Trainer(cfg, data)
    for _ in range(warmup):
        trainer.train_step()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    return steps * BATCH / (time.perf_counter() - t0), build, trainer.amp_dtype is not None


def time_common(cfg, root: Path, steps: int, warmup: int, amp: bool = False) -> float:
    import contextlib

    import torch
    from torchvision import datasets, transforms

    from ebgan.nets import build_discriminator, build_generator
    from ebgan.objectives import build_objective

    tf = transforms.Compose(
        [transforms.CenterCrop(108), transforms.Resize(64), transforms.ToTensor(), transforms.Normalize(0.5, 0.5)]
    )
    ds = datasets.ImageFolder(str(root / "celeba"), transform=tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=2, drop_last=True)
    torch.manual_seed(cfg.seed)  # the Trainer seeds the same way before building its networks
    obj = build_objective(cfg)
    shape = (3, cfg.image_size, cfg.image_size)
    G = build_generator(cfg.model, cfg.latent_dim, shape, cfg.model_args)
    D = build_discriminator(cfg.model, obj.discriminator_kind, shape, cfg.model_args)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    batches = _endless(loader)

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if amp else contextlib.nullcontext()

    def step() -> None:
        real, _ = next(batches)
        with autocast():
            fake = G(torch.randn(BATCH, cfg.latent_dim))
            loss_d, _ = obj.discriminator_loss(D, real, fake.detach())
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        with autocast():
            loss_g, _ = obj.generator_loss(D, fake)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

    for _ in range(warmup):  # also starts the workers
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * BATCH / (time.perf_counter() - t0)


def _endless(loader):
    while True:
        yield from loader


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} threads, {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")  # ebgan's cache_dir(): <XDG_CACHE_HOME>/ebgan
        t0 = time.perf_counter()
        root = make_folder(Path(tmp) / "data", a.n)
        print(f"generated {a.n} JPEGs in {time.perf_counter() - t0:.1f} s")
        cfg = make_config(root, a.seed)
        ebgan, build, bf16 = time_ebgan(cfg, a.steps, a.warmup)
        print(f"decoded cache built once in {build:.1f} s (not counted)")
        common = time_common(cfg, root, a.steps, a.warmup)
        common_amp = time_common(cfg, root, a.steps, a.warmup, amp=True) if bf16 else None
    precision = f"bf16 autocast ({PRESET} sets amp)" if bf16 else "float32"
    print(f"\n{PRESET}, batch {BATCH}, {a.steps} steps after {a.warmup} warm-up; ebgan in {precision}")
    print(f"{'contender':46s} {'img/s':>8s} {'ebgan/it':>9s}")
    print(f"{'ebgan (Trainer.train_step, decoded cache)':46s} {ebgan:8.1f}")
    print(f"{'common (ImageFolder + DataLoader, 2 wkr), fp32':46s} {common:8.1f} {ebgan / common:8.2f}x")
    if common_amp is not None:
        print(f"{'common, the same bf16 autocast':46s} {common_amp:8.1f} {ebgan / common_amp:8.2f}x")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
