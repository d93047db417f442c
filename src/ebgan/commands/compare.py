"""``ebgan compare``: train several objectives for the same wall-clock or step budget, then score them.

Each (objective, seed) is an ordinary run folder ``OUT/<objective>/seed<k>`` trained by
``ebgan.train.Trainer`` from the objective's preset (``configs/<prefix>-<objective>.yaml``;
``ebgan`` without a preset of its own uses the ``ebgan-pt`` preset with pt_weight 0, a
pure ablation of the pull-away term). Then every run is scored with ``ebgan eval``'s
Python API, and the comparison is written as ``results.md``, ``results.json`` and
``samples.png`` (a sample grid per objective, side by side).

Budget: ``15m``, ``90s``, ``1h`` (training wall-clock per run, pretraining included,
checked after every step) or a bare number of generator steps (``2000``).

Resumable: a run whose ``budget.json`` says finished is skipped; an interrupted run
resumes from its last checkpoint (written every ``checkpoint_seconds`` of training) with
the training time it had reached then; scores are cached in each run's ``eval.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from ebgan.config import Config, load_config_file
from ebgan.errors import EbganError
from ebgan.files import write_json, write_text
from ebgan.plotting import pyplot, save_figure

REPO_CONFIGS = Path(__file__).resolve().parents[3] / "configs"
PRESET_PREFIX = {"fashion-mnist": "fmnist", "mnist": "mnist"}
SPEC, BUDGET, EVAL = "compare.json", "budget.json", "eval.json"
ENDLESS = 10**9  # cfg.steps of a wall-clock run: the budget, not the step count, ends it
SCORES = ("frechet", "kid", "is", "i_prime", "precision", "recall", "modes", "kl_uniform")


def register(sub) -> None:
    p = sub.add_parser("compare", help="train objectives for equal time or steps and compare their scores",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist", help="dataset for every run")
    p.add_argument("--data-root", help="folder with one sub-folder per dataset")
    p.add_argument("--objectives", default="ebgan-pt,ebgan,began,dcgan,wgan-gp,gan", help="comma-separated")
    p.add_argument("--budget", required=True, help="per run: wall-clock (15m, 90s, 1h) or generator steps (2000)")
    p.add_argument("--seeds", type=int, default=1, help="runs per objective, seeds 0..N-1")
    p.add_argument("--out", required=True, help="folder of the comparison (created, or continued when it exists)")
    p.add_argument("--preset-dir", default=str(REPO_CONFIGS), help="folder of the <prefix>-<objective>.yaml presets")
    p.add_argument("--preset-prefix", help="preset name prefix (default: fmnist for fashion-mnist, else the dataset)")
    p.add_argument("--eval-n", type=int, default=10000, help="samples scored per run")
    p.add_argument("--no-eval", action="store_true", help="skip scoring: the table holds training measures only")
    p.add_argument("--device", default="auto", help="training device for every run")
    p.set_defaults(func=run)


# ------------------------------------------------------------------ budget
@dataclass(frozen=True)
class Budget:
    kind: str  # "seconds" or "steps"
    amount: float

    def __str__(self) -> str:
        return f"{self.amount:g} s" if self.kind == "seconds" else f"{int(self.amount)} steps"


def parse_budget(text: str) -> Budget:
    """'15m', '90s', '1h', '1h30m' -> seconds; '2000' -> generator steps."""
    text = str(text).strip().lower()
    if re.fullmatch(r"\d+", text):
        if int(text) <= 0:
            raise EbganError(f"--budget must be positive, got {text}")
        return Budget("steps", int(text))
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", text)
    if not parts or "".join(a + u for a, u in parts) != text:
        raise EbganError(f"cannot read --budget {text!r}; use a duration (15m, 90s, 1h30m) or a step count (2000)")
    seconds = sum(float(a) * {"h": 3600, "m": 60, "s": 1}[u] for a, u in parts)
    if seconds <= 0:
        raise EbganError(f"--budget must be positive, got {text}")
    return Budget("seconds", seconds)


class BudgetReached(Exception):
    """Raised by the budget hook after a completed step: the run stops cleanly there."""


# ------------------------------------------------------------------ configs
def preset_config(objective: str, dataset: str, preset_dir, prefix: str | None) -> tuple[dict, str]:
    """The preset values for one objective and where they came from."""
    prefix = prefix or PRESET_PREFIX.get(dataset, dataset)
    folder = Path(preset_dir) if preset_dir else None
    path = folder / f"{prefix}-{objective}.yaml" if folder else None
    if path and path.is_file():
        return load_config_file(path), path.name
    pt_path = folder / f"{prefix}-ebgan-pt.yaml" if folder else None
    if objective == "ebgan" and pt_path and pt_path.is_file():
        values = {k: v for k, v in load_config_file(pt_path).items() if k != "pt_weight"}
        return {**values, "objective": "ebgan"}, f"{pt_path.name} without the pull-away term"
    return {"objective": objective}, "defaults"


def run_config(objective, seed, budget: Budget, args) -> tuple[Config, str]:
    values, source = preset_config(objective, args.dataset, args.preset_dir, args.preset_prefix)
    values = {
        **values, "objective": objective, "dataset": args.dataset, "data_root": args.data_root, "seed": seed,
        "steps": int(budget.amount) if budget.kind == "steps" else ENDLESS,
        "sample_every": 0, "checkpoint_every": 0, "device": args.device,  # compare saves by time, grids at the end
        "log_every": min(int(values.get("log_every", 10)), 10),  # slow runs still log their curves
    }
    try:
        return Config.from_dict(values, source).resolve(), source
    except EbganError as e:
        raise EbganError(f"objective {objective!r} ({source}): {e}") from e


# ------------------------------------------------------------------ one run
def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def train_run(cfg: Config, data, folder: Path, budget: Budget, checkpoint_seconds: float = 60.0, log=print) -> dict:
    """Train one run to its budget, resuming it if a checkpoint exists; returns its budget record."""
    from ebgan.report import write_report
    from ebgan.train import Stopped, Trainer
    from ebgan.train.run_dir import CHECKPOINT, holds_run

    folder = Path(folder)
    record = _read_json(folder / BUDGET)
    if record.get("finished"):
        return {**record, "status": "skipped (finished)"}
    resume = (folder / CHECKPOINT).is_file()
    if not resume and holds_run(folder):
        shutil.rmtree(folder)  # killed before its first checkpoint: nothing to keep
    trainer = Trainer(cfg, data, run_dir=folder, resume=resume)
    done = {int(s): t for s, t in record.get("checkpoints", {}).items()}
    # training seconds reached at the checkpoint we resume from (time after it is lost with the kill)
    elapsed0 = max((t for s, t in done.items() if s <= trainer.step), default=0.0) if resume else 0.0
    status = f"resumed from step {trainer.step}" if resume else "trained"
    record = {"budget": str(budget), "checkpoints": {str(s): t for s, t in done.items() if s <= trainer.step}}
    t0 = time.perf_counter()
    state = {"last_save": elapsed0}

    def now() -> float:
        return elapsed0 + time.perf_counter() - t0

    def save(finished: bool) -> None:
        trainer.save()
        record["checkpoints"][str(trainer.step)] = now()
        record.update(steps=trainer.step, train_seconds=now(), finished=finished)
        write_json(folder / BUDGET, record)

    def budget_hook(tr) -> None:
        if budget.kind == "seconds" and now() >= budget.amount:
            raise BudgetReached
        if now() - state["last_save"] >= checkpoint_seconds:
            save(False)
            state["last_save"] = now()

    trainer.hooks.append(budget_hook)
    try:
        if trainer.step < cfg.steps:
            trainer.train(progress=False)
    except BudgetReached:
        pass
    except Stopped:
        record["checkpoints"][str(trainer.step)] = now()  # the trainer wrote this checkpoint
        record.update(steps=trainer.step, train_seconds=now(), finished=False)
        write_json(folder / BUDGET, record)
        raise
    save(True)
    trainer.writer.save_grid(trainer.fixed_samples(), trainer.step)
    write_report(folder, cfg, now() - elapsed0)
    log(f"  {status}: {trainer.step} steps in {now():.1f} s of training")
    return {**record, "status": status}


def training_measures(folder: Path, cfg: Config, record: dict) -> dict:
    """Throughput over the whole training time (pretraining and checkpoints included) and last metrics.

    images/s counts real images through D: steps * batch_size * d_steps (n_critic for WGAN-GP).
    """
    from ebgan.objectives import build_objective
    from ebgan.train.run_dir import read_metrics

    rows = read_metrics(folder)
    last = rows[-1] if rows else {}
    seconds = record.get("train_seconds") or 0.0
    images = record.get("steps", 0) * cfg.batch_size * build_objective(cfg).d_steps
    return {
        "images_per_s": images / seconds if seconds > 0 else None,
        "steps_per_s": record.get("steps", 0) / seconds if seconds > 0 else None,
        "last": {k: v for k, v in last.items() if k not in ("step", "images_per_s")},
    }


# ------------------------------------------------------------------ evaluation (ebgan eval's Python API)
def evaluate_run(folder: Path, dataset: str, data_root, n: int, seed: int = 0, log=print) -> dict:
    """Scores of a run's exported generator with ``ebgan eval``'s evaluator, cached in eval.json.

    Returns {"error": message} when evaluation is unavailable (no classifier yet, or an
    evaluation package without this API), so the table still shows training measures.
    """
    folder = Path(folder)
    step = _read_json(folder / BUDGET).get("steps")
    cached = _read_json(folder / EVAL)
    if cached.get("step") == step and cached.get("n") == n and "error" not in cached:
        return cached
    try:
        from ebgan.commands.eval import evaluator_for
        from ebgan.data import to_uint8
        from ebgan.generator_io import load_generator, sample_images
    except ImportError as e:
        return {"error": f"ebgan eval is not available ({e})"}
    t0 = time.perf_counter()
    try:
        G = load_generator(folder)
        images = to_uint8(sample_images(G, n, seed=seed)).cpu()
        eval_args = SimpleNamespace(data_root=data_root, seed=seed, inception_weights=None)
        scores = evaluator_for(dataset)(images, dataset, eval_args)
    except EbganError as e:
        return {"error": str(e)}
    result = {"step": step, "n": n, "seconds": time.perf_counter() - t0, **scores}
    write_json(folder / EVAL, result)
    log(f"  scored {folder} in {result['seconds']:.1f} s")
    return result


# ------------------------------------------------------------------ table and image
def _mean_std(values: list) -> tuple[float | None, float | None]:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return None, None
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return mean, std


def summarise(runs: list[dict]) -> list[dict]:
    """One row per objective: mean and sample standard deviation over seeds."""
    rows = []
    for objective in dict.fromkeys(r["objective"] for r in runs):
        mine = [r for r in runs if r["objective"] == objective]
        row = {"objective": objective, "preset": mine[0]["preset"], "model": mine[0]["model"], "seeds": len(mine)}
        for key in ("steps", "train_seconds", "images_per_s", "steps_per_s") + SCORES:
            mean, std = _mean_std([r.get(key) for r in mine])
            row[key] = {"mean": mean, "std": std}
        rows.append(row)
    return rows


def _cell(stat: dict, spec: str) -> str:
    if stat["mean"] is None:
        return "n/a"
    if stat["std"]:
        return f"{stat['mean']:{spec}} ± {stat['std']:{spec}}"
    return f"{stat['mean']:{spec}}"


def markdown_table(rows: list[dict], budget: Budget, names: dict, floor: dict | None, eval_note: str | None) -> str:
    fid = names.get("frechet", "frechet")
    kid = names.get("kid", "kid")
    head = ["objective", "model", "seeds", "steps", "train s", "images/s", fid, kid, "IS", "I'", "precision",
            "recall", "modes", "KL(modes‖uniform)"]
    specs = {"frechet": ".2f", "kid": ".4f", "is": ".2f", "i_prime": ".3f", "precision": ".3f", "recall": ".3f",
             "modes": ".1f", "kl_uniform": ".3f"}
    lines = [f"Budget per run: {budget}. Cells: mean ± standard deviation over seeds. images/s: real images "
             "through D per second of training (pretraining included).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["objective"], r["model"], str(r["seeds"]), _cell(r["steps"], ".0f"), _cell(r["train_seconds"], ".0f"),
                 _cell(r["images_per_s"], ".0f")]
        cells += [_cell(r[k], specs[k]) for k in SCORES]
        lines.append("| " + " | ".join(cells) + " |")
    if floor:
        cells = ["real data (floor)", "", "", "", "", ""] + [
            format(floor[k], specs[k]) if floor.get(k) is not None else "" for k in SCORES]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Presets: " + "; ".join(f"{r['objective']}: {r['preset']}" for r in rows)]
    if eval_note:
        lines += ["", f"Scores: {eval_note}"]
    return "\n".join(lines) + "\n"


def samples_figure(runs: list[dict], out: Path, n: int = 64) -> Path:
    """One panel per objective (its first seed's run): n samples from noise seed 0."""
    plt = pyplot()
    from torchvision.utils import make_grid

    from ebgan.generator_io import load_generator, sample_images

    firsts = {}
    for r in runs:
        firsts.setdefault(r["objective"], r)
    fig, axes = plt.subplots(1, len(firsts), figsize=(3.2 * len(firsts), 3.6), squeeze=False)
    for ax, (objective, r) in zip(axes[0], firsts.items()):
        images = sample_images(load_generator(r["folder"]), n, seed=0)
        grid = make_grid(images, nrow=int(math.sqrt(n)), normalize=True, value_range=(-1, 1), padding=1)
        ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(f"{objective}\n{r['steps']} steps", fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, out, dpi=110, bbox_inches="tight")  # keep the titles inside the image
    return out


# ------------------------------------------------------------------ the command
def check_spec(out: Path, dataset: str, budget: Budget) -> None:
    """A comparison folder keeps its dataset and budget; objectives and seeds may be added."""
    spec = _read_json(out / SPEC)
    want = {"dataset": dataset, "budget": str(budget)}
    if spec and {k: spec.get(k) for k in want} != want:
        raise EbganError(
            f"{out} holds a comparison of {spec.get('dataset')} at a budget of {spec.get('budget')}; "
            f"continue it with those, or choose another --out for {dataset} at {budget}"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SPEC, want)


def compare(args, checkpoint_seconds: float = 60.0, log=print) -> dict:
    """Train, score, tabulate. ``args`` carries the CLI's fields; returns the results dict."""
    from ebgan.data import load_training_data

    budget = parse_budget(args.budget)
    objectives = [o.strip() for o in args.objectives.split(",") if o.strip()]
    if not objectives:
        raise EbganError("--objectives is empty; name at least one, e.g. ebgan-pt,gan")
    if len(set(objectives)) != len(objectives):
        raise EbganError(f"--objectives names one twice: {args.objectives}")
    if args.seeds < 1:
        raise EbganError(f"--seeds must be at least 1, got {args.seeds}")
    configs = {(o, s): run_config(o, s, budget, args) for o in objectives for s in range(args.seeds)}  # all errors first
    out = Path(args.out)
    check_spec(out, args.dataset, budget)
    datasets, runs = {}, []
    for (objective, seed), (cfg, source) in configs.items():
        folder = out / objective / f"seed{seed}"
        log(f"{objective} seed {seed} ({source}, {cfg.model}) -> {folder}")
        if not _read_json(folder / BUDGET).get("finished"):
            key = (cfg.dataset, cfg.data_split, cfg.image_size, cfg.fit, cfg.channels)
            if key not in datasets:
                datasets[key] = load_training_data(cfg)
            data = datasets[key]
        else:
            data = None
        record = train_run(cfg, data, folder, budget, checkpoint_seconds, log)
        runs.append({"objective": objective, "seed": seed, "preset": source, "model": cfg.model, "folder": str(folder),
                     "steps": record["steps"], "train_seconds": record["train_seconds"],
                     **training_measures(folder, cfg, record)})
    names, floor, eval_note = {}, None, None
    if args.no_eval:
        eval_note = "not computed (--no-eval); the table holds training measures only"
    else:
        errors = set()
        for r in runs:
            scores = evaluate_run(Path(r["folder"]), args.dataset, args.data_root, args.eval_n, log=log)
            if "error" in scores:
                errors.add(scores["error"])
                continue
            r.update({k: scores.get(k) for k in SCORES})
            names = {"frechet": scores.get("frechet_name", "frechet"), "kid": scores.get("kid_name", "kid")}
            floor = scores.get("real_vs_real")
            eval_note = f"{args.eval_n} samples per run; features: {scores.get('feature_extractor')}"
        if errors:
            eval_note = (eval_note + "; " if eval_note else "") + "not scored: " + " | ".join(sorted(errors))
    rows = summarise(runs)
    results = {"dataset": args.dataset, "budget": str(budget), "rows": rows, "runs": runs,
               "real_vs_real": floor, "score_names": names, "scores_note": eval_note}
    write_json(out / "results.json", results)
    write_text(out / "results.md", markdown_table(rows, budget, names, floor, eval_note))
    samples_figure(runs, out / "samples.png")
    return results


def run(args) -> int:
    from ebgan.train import Stopped

    try:
        compare(args)
    except Stopped as e:
        print(f"ebgan: {e}; continue the comparison with the same command", file=sys.stderr)
        return 128 + e.signum
    out = Path(args.out)
    sys.stdout.write((out / "results.md").read_text())
    print(f"wrote {out / 'results.md'}, {out / 'results.json'} and {out / 'samples.png'}")
    return 0


__all__ = ["Budget", "compare", "evaluate_run", "parse_budget", "train_run"]
