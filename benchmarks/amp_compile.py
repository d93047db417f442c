"""Training img/s with --amp (bf16 autocast) and --compile (torch.compile) against neither, on CPU.

EBGAN-PT on the DCGAN networks at 32x32 (the cifar10 preset's nets) and 64x64 (the celeba64
preset's: the paper's 64x64 autoencoder), trained on Fashion-MNIST resized to the size, so that
only local data is needed. Each variant trains ``--steps`` steps in its own process; img/s is
the mean over the log intervals after the first (compilation and warm-up fall in the first).

    .venv/bin/python benchmarks/amp_compile.py --steps 40 --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PRESETS = {32: "cifar10-ebgan-pt", 64: "celeba64-ebgan-pt"}
VARIANTS = {"plain": [], "amp": ["--amp"], "compile": ["--compile"]}


def img_per_s(size: int, variant: str, steps: int, data_root: str | None, out: Path) -> float:
    every = max(1, steps // 4)
    args = ["train", "--config", PRESETS[size], "--dataset", "fashion-mnist", "--image-size", str(size)]
    args += ["--fit", "resize", "--steps", str(steps), "--log-every", str(every), "--sample-every", "0"]
    args += ["--checkpoint-every", "0", "--no-progress", "--device", "cpu", "--out", str(out), *VARIANTS[variant]]
    if data_root:
        args += ["--data-root", data_root]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    subprocess.run([sys.executable, "-m", "ebgan", *args], check=True, env=env, capture_output=True, text=True)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return statistics.fmean(line["images_per_s"] for line in lines[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--data-root", default=os.environ.get("EBGAN_DATA"))
    p.add_argument("--sizes", default="32,64")
    a = p.parse_args()
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in a.sizes.split(",")):
            base = None
            for variant in VARIANTS:
                ips = img_per_s(size, variant, a.steps, a.data_root, Path(tmp) / f"{size}-{variant}")
                base = base or ips
                print(f"{size}x{size} {variant:8s}: {ips:7.1f} img/s  ratio {ips / base:.2f}", flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
