"""How long scoring 10k samples takes: each stage of ``ebgan eval``, then the whole command path.

Usage (needs Fashion-MNIST and its cached classifier, 'ebgan classifier train --dataset fashion-mnist'):
    python benchmarks/eval_speed.py --data-root /work/shared/data [--run RUN] [--n 10000] [--threads 1]

Without --run the samples are n real train images (the cost does not depend on what the
images show). Wall time and this process's CPU time are both printed: on a shared machine
the wall time grows with the other users' load, the CPU time does not.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch


class Timer:
    def __init__(self):
        self.rows = []

    def __call__(self, name, fn, *args, **kwargs):
        w, c = time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        self.rows.append((name, time.perf_counter() - w, time.process_time() - c))
        return out

    def table(self) -> str:
        lines = [f"{'stage':<42} {'wall s':>8} {'cpu s':>8}", "-" * 60]
        lines += [f"{n:<42} {w:>8.2f} {c:>8.2f}" for n, w, c in self.rows]
        return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--run", help="score this run's generator instead of real images")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from ebgan.data import load_images, to_uint8
    from ebgan.metrics import scores
    from ebgan.metrics.classifier import classify, load_classifier
    from ebgan.metrics.evaluate import (
        _REFERENCE_MEMO,
        KID_SUBSET_SIZE,
        KID_SUBSETS,
        PR_K,
        evaluate_classifier_images,
    )

    t = Timer()
    if args.run:
        from ebgan.generator_io import load_generator, sample_images

        G = load_generator(args.run)
        images = t(f"sample {args.n} from the generator", lambda: to_uint8(sample_images(G, args.n, seed=0)))
    else:
        train = load_images(args.dataset, "train", args.data_root).images
        images = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(1))[: args.n]]
    net, meta = load_classifier(args.dataset)
    test = t("load the test split", load_images, args.dataset, "test", args.data_root)
    ref_f, _ = t(f"classifier features, {len(test)} reference images", classify, net, test.images)
    f, lp = t(f"classifier features, {args.n} samples", classify, net, images)
    ref_stats = t("mean + covariance (both sets)", lambda: (scores.mean_cov(f), scores.mean_cov(ref_f)))
    t("frechet distance", scores.frechet_distance, *ref_stats[0], *ref_stats[1])
    t(f"kid ({KID_SUBSETS} subsets of {KID_SUBSET_SIZE})", scores.kid, f, ref_f, KID_SUBSETS, KID_SUBSET_SIZE)
    t(f"precision/recall (k={PR_K}, {args.n} vs {len(ref_f)})", scores.precision_recall, ref_f, f, PR_K)
    t(
        "is, i_prime, mode coverage",
        lambda: (scores.inception_score(lp), scores.i_prime(lp), scores.mode_coverage(lp.argmax(1), 10)),
    )
    print(
        f"stages ({meta['name']}, torch threads {torch.get_num_threads()}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs):"
    )
    print(t.table())

    whole = Timer()
    _REFERENCE_MEMO.clear()
    r = whole(
        "evaluate (floor cached or computed)",
        evaluate_classifier_images,
        images,
        args.dataset,
        args.data_root,
        log=lambda m: None,
    )
    _REFERENCE_MEMO.clear()
    whole(
        "evaluate again (floor cached)",
        evaluate_classifier_images,
        images,
        args.dataset,
        args.data_root,
        log=lambda m: None,
    )
    print(f"\nwhole evaluation of {args.n} samples, as 'ebgan eval' runs it (load average {os.getloadavg()[0]:.1f}):")
    print(whole.table())
    print("\n" + json.dumps({k: r[k] for k in ("frechet", "kid", "precision", "recall", "modes")}))


if __name__ == "__main__":
    main()
