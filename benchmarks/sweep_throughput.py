"""Sweep throughput: settings per hour with W workers, and the share of time that is not training.

Runs ``ebgan sweep`` from the command line (so process start, imports and the pool are
counted) on the same seeded sample of the paper's MNIST grid, once per worker count, each in
a fresh folder, and reads the result lines:

- **settings/hour** = settings / wall-clock;
- **overhead** = 1 - (sum of the runs' training seconds) / (workers x wall-clock): process
  start, imports, loading the dataset and the classifier (once per worker), scoring,
  result writing and workers idle at the end all count against it.

    .venv/bin/python benchmarks/sweep_throughput.py --data-root ../shared/data --sample 4 --steps 300

Needs the classifier of the dataset (``ebgan classifier train --dataset mnist --data-root ...``).
MNIST here has only its test split: runs train on test-fit (``--data-split test-fit``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(args, workers: int, out: Path) -> dict:
    cmd = [sys.executable, "-m", "ebgan", "sweep", "--grid", "paper-mnist", "--objectives", args.objectives]
    cmd += ["--sample", str(args.sample), "--steps", str(args.steps), "--workers", str(workers)]
    cmd += ["--dataset", args.dataset, "--data-split", args.data_split, "--out", str(out)]
    if args.data_root:
        cmd += ["--data-root", args.data_root]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    rows = [json.loads(line) for f in sorted(out.glob("results-*.jsonl")) for line in f.read_text().splitlines()]
    ok = [r for r in rows if r.get("status") == "ok"]
    train = sum(r["train_seconds"] for r in ok)
    return {
        "workers": workers,
        "settings": len(rows),
        "ok": len(ok),
        "wall": wall,
        "per_hour": len(rows) / wall * 3600,
        "train": train,
        "load": sum(r.get("load_seconds", 0.0) for r in ok),
        "score": sum(r.get("score_seconds", 0.0) for r in ok),
        "overhead": 1 - train / (workers * wall),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-split", default="test-fit")
    p.add_argument("--objectives", default="ebgan,gan")
    p.add_argument("--sample", type=int, default=4, help="settings per objective")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--workers", default="1,2", help="worker counts to time, comma-separated")
    args = p.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for w in [int(x) for x in args.workers.split(",")]:
            results.append(one(args, w, Path(tmp) / f"w{w}"))
    print(f"{args.dataset} ({args.data_split}), {args.objectives}, {args.sample} settings each, {args.steps} steps")
    print("workers  settings  wall s  settings/h  train s  load s  score s  overhead")
    for r in results:
        print(
            f"{r['workers']:>7}  {r['settings']:>8}  {r['wall']:>6.1f}  {r['per_hour']:>10.1f}  {r['train']:>7.1f}  "
            f"{r['load']:>6.1f}  {r['score']:>7.1f}  {r['overhead']:>8.1%}"
        )
    if len(results) > 1:
        print(
            f"throughput ratio {results[-1]['workers']} vs {results[0]['workers']} workers: "
            f"{results[-1]['per_hour'] / results[0]['per_hour']:.2f}x"
        )


if __name__ == "__main__":
    main()
