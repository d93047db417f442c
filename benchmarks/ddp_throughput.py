"""Training img/s of 2 processes x 1 thread (torchrun, gloo) against 1 process x 2 threads.

Both train the same config (the demo preset's networks and objective unless told otherwise) for
the same steps on the same global batch; img/s is read from each run's metrics.jsonl (rank 0
logs global images per second), the first log interval dropped as warm-up. Rounds alternate
which contender goes first. Usage:

    .venv/bin/python benchmarks/ddp_throughput.py --steps 150 --rounds 3 [-- extra ebgan train flags]
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


def run(nproc: int, threads: int, out: Path, steps: int, extra: list[str]) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
    args = ["train", "--config", "demo", "--steps", str(steps), "--log-every", str(max(1, steps // 5))]
    args += ["--sample-every", "0", "--checkpoint-every", "0", "--no-progress", "--device", "cpu", "--out", str(out)]
    args += extra
    if nproc == 1:
        cmd = [sys.executable, "-m", "ebgan", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
        cmd += ["-m", "ebgan", *args]
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return statistics.fmean(line["images_per_s"] for line in lines[1:])  # first interval: warm-up


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("extra", nargs="*", help="more ebgan train flags (after --)")
    a = p.parse_args()
    print(f"load average before: {os.getloadavg()}")
    results: dict[str, list[float]] = {"1 process x 2 threads": [], "2 processes x 1 thread": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            order = [(1, 2), (2, 1)] if r % 2 == 0 else [(2, 1), (1, 2)]
            for nproc, threads in order:
                key = "1 process x 2 threads" if nproc == 1 else "2 processes x 1 thread"
                ips = run(nproc, threads, Path(tmp) / f"r{r}-{nproc}", a.steps, a.extra)
                results[key].append(ips)
                print(f"round {r}: {key}: {ips:.0f} img/s", flush=True)
    base = statistics.median(results["1 process x 2 threads"])
    for key, values in results.items():
        med = statistics.median(values)
        print(f"{key}: median {med:.0f} img/s (min {min(values):.0f}, max {max(values):.0f}); ratio {med / base:.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
