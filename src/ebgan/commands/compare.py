"""``ebgan compare``: train objectives for the same wall-clock or step budget, then score them.

Each (objective, seed) is an ordinary run folder OUT/<objective>/seed<k> trained from the
objective's shipped preset (see ``ebgan presets``); the comparison is written as
results.md, results.json and samples.png. Budget: 15m, 90s, 1h (training wall-clock per
run) or a bare number of generator steps (2000). Run the same command again to continue
a killed comparison. The library: ``ebgan.experiments.compare``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="train objectives for equal time or steps and compare their scores",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", default="fashion-mnist", help="dataset for every run")
    p.add_argument("--data-root", help="folder with one sub-folder per dataset")
    p.add_argument("--objectives", default="ebgan-pt,ebgan,magan,began,dcgan,wgan-gp,gan", help="comma-separated")
    p.add_argument("--budget", required=True, help="per run: wall-clock (15m, 90s, 1h) or generator steps (2000)")
    p.add_argument("--seeds", type=int, default=1, help="runs per objective, seeds 0..N-1")
    p.add_argument("--out", required=True, help="folder of the comparison (created, or continued when it exists)")
    p.add_argument("--preset-dir", help="folder of <prefix>-<objective>.yaml presets (default: the shipped presets)")
    p.add_argument("--preset-prefix", help="preset name prefix (default: fmnist for fashion-mnist, else the dataset)")
    p.add_argument("--eval-n", type=int, default=10000, help="samples scored per run")
    p.add_argument("--no-eval", action="store_true", help="skip scoring: the table holds training measures only")
    p.add_argument("--device", default="auto", help="training device for every run")
    p.add_argument(
        "--curve-points",
        type=int,
        default=10,
        help="evaluations of each run during training, spread over the budget (0: none); their time "
        "does not count against the budget",
    )
    p.add_argument("--curve-n", type=int, default=2000, help="samples scored at each of those evaluations")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="runs trained at once, each in its own process with a share of the CPU threads "
        "(wall-clock budgets then measure shared machines: prefer step budgets)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="list the runs, their presets and models and the estimated time (a few timed steps), and exit",
    )
    p.set_defaults(func=run)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def run(args) -> int:
    from ebgan.experiments.compare import check_scoring, compare, estimate, plan
    from ebgan.train import Stopped

    if not args.no_eval:
        check_scoring(args.eval_n, args.curve_points, args.curve_n)

    where = dict(
        dataset=args.dataset,
        objectives=args.objectives,
        budget=args.budget,
        out=args.out,
        seeds=args.seeds,
        data_root=args.data_root,
        preset_dir=args.preset_dir,
        preset_prefix=args.preset_prefix,
        device=args.device,
    )
    if args.dry_run:
        planned = plan(**where)
        times = estimate(
            planned,
            args.budget,
            0 if args.no_eval else args.curve_points,
            args.curve_n,
            0 if args.no_eval else args.eval_n,
        )
        for r in planned:
            state = "finished"
            if not r["finished"]:
                t = times["objectives"][r["objective"]]
                pretraining = f" after ~{t['prepare_s']:.0f} s of pretraining" if t["prepare_s"] >= 0.5 else ""
                state = (
                    f"to train: ~{_minutes(t['train_s'] + t['eval_s'])}, "
                    f"{t['steps']} steps at {t['s_per_step'] * 1000:.0f} ms/step{pretraining}"
                )
            print(f"{r['objective']:<12} seed {r['seed']}  {r['model']:<7} {r['preset']:<45} {r['folder']}  ({state})")
        scored = "" if args.no_eval else " and scoring (curve points and the final score)"
        print(
            f"estimated time left: ~{_minutes(times['total_s'])} with one worker, training{scored}, timed from "
            f"a few steps on this machine (--workers split the CPU threads: on a CPU the total shrinks little)"
        )
        return 0
    try:
        compare(
            **where,
            eval_n=args.eval_n,
            no_eval=args.no_eval,
            curve_points=args.curve_points,
            curve_n=args.curve_n,
            workers=args.workers,
        )
    except Stopped as e:
        print(f"ebgan: {e}; continue the comparison with the same command", file=sys.stderr)
        return 128 + e.signum
    out = Path(args.out)
    sys.stdout.write((out / "results.md").read_text())
    curves = " and curves.png (quality against wall-clock and steps)" if (out / "curves.png").is_file() else ""
    print(f"wrote {out / 'results.md'}, {out / 'results.json'}, {out / 'samples.png'}{curves}")
    return 0
