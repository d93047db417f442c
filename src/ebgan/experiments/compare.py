"""Comparing objectives: each trained for the same wall-clock or step budget, then scored.

Each (objective, seed) is an ordinary run folder ``OUT/<objective>/seed<k>`` trained by
``ebgan.train.Trainer`` from the objective's preset (``<prefix>-<objective>`` among the
presets shipped with ebgan, or in ``preset_dir``; ``ebgan`` without a preset of its own
uses the ``ebgan-pt`` preset without the pull-away term, a pure ablation). Every run is
then scored with ``ebgan.metrics.evaluate_run_folder`` (against a reference disjoint from
its training split), and the comparison is written as ``results.md``, ``results.json`` and
``samples.png`` (a sample grid per objective, side by side).

Resumable: a run whose ``budget.json`` says finished is skipped; an interrupted run
resumes from its last checkpoint; scores are cached in each run's ``eval.json``.

    from ebgan.experiments import compare
    results = compare(dataset="fashion-mnist", objectives=["ebgan-pt", "gan"], budget="2m", out="runs/cmp")
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from ebgan.config import Config, load_config_file, presets
from ebgan.errors import EbganError
from ebgan.experiments.budget import BUDGET, ENDLESS, Budget, parse_budget, read_json, train_run, training_measures
from ebgan.files import write_json, write_text
from ebgan.plotting import pyplot, save_figure

PRESET_PREFIX = {"fashion-mnist": "fmnist", "mnist": "mnist"}
SPEC, EVAL = "compare.json", "eval.json"
SCORES = ("frechet", "kid", "is", "i_prime", "precision", "recall", "modes", "kl_uniform")


def preset_config(objective: str, dataset: str, preset_dir=None, prefix: str | None = None) -> tuple[dict, str]:
    """The preset values for one objective and where they came from: ``<prefix>-<objective>`` in
    ``preset_dir`` or among the shipped presets; ``ebgan`` falls back to ``ebgan-pt``'s without
    the pull-away term; otherwise the config defaults."""
    prefix = prefix or PRESET_PREFIX.get(dataset, dataset)
    found = {p.stem: p for p in Path(preset_dir).glob("*.yaml")} if preset_dir else presets()
    if f"{prefix}-{objective}" in found:
        path = found[f"{prefix}-{objective}"]
        return load_config_file(path), path.name
    if objective == "ebgan" and f"{prefix}-ebgan-pt" in found:
        path = found[f"{prefix}-ebgan-pt"]
        values = {k: v for k, v in load_config_file(path).items() if k != "pt_weight"}
        return {**values, "objective": "ebgan"}, f"{path.name} without the pull-away term"
    return {"objective": objective}, "defaults"


def run_config(
    objective: str,
    seed: int,
    budget: Budget,
    dataset: str,
    data_root=None,
    preset_dir=None,
    preset_prefix: str | None = None,
    device: str = "auto",
) -> tuple[Config, str]:
    values, source = preset_config(objective, dataset, preset_dir, preset_prefix)
    values = {
        **values,
        "objective": objective,
        "dataset": dataset,
        "data_root": data_root,
        "seed": seed,
        "steps": int(budget.amount) if budget.kind == "steps" else ENDLESS,
        "sample_every": 0,
        "checkpoint_every": 0,
        "device": device,  # compare saves by time, grids at the end
        "log_every": min(int(values.get("log_every", 10)), 10),  # slow runs still log their curves
    }
    try:
        return Config.from_dict(values, source).resolve(), source
    except EbganError as e:
        raise EbganError(f"objective {objective!r} ({source}): {e}") from e


def evaluate_run(folder: Path, n: int, seed: int = 0, data_root=None, log=print) -> dict:
    """Scores of a run's exported generator (``ebgan.metrics.evaluate_run_folder``: the reference is
    disjoint from the run's training split), cached in eval.json. Returns {"error": message} when
    evaluation is unavailable (no classifier yet), so the table still shows training measures."""
    from ebgan.metrics import evaluate_run_folder

    folder = Path(folder)
    step = read_json(folder / BUDGET).get("steps")
    cached = read_json(folder / EVAL)
    if cached.get("step") == step and cached.get("n") == n and "error" not in cached:
        return cached
    t0 = time.perf_counter()
    try:
        scores = evaluate_run_folder(folder, n=n, seed=seed, data_root=data_root, log=log)
    except EbganError as e:
        return {"error": str(e)}
    result = {**scores, "step": step, "n": n, "seconds": time.perf_counter() - t0}
    write_json(folder / EVAL, result)
    log(f"  scored {folder} in {result['seconds']:.1f} s")
    return result


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
    head = [
        "objective",
        "model",
        "seeds",
        "steps",
        "train s",
        "images/s",
        fid,
        kid,
        "IS",
        "I'",
        "precision",
        "recall",
        "modes",
        "KL(modes‖uniform)",
    ]
    specs = {
        "frechet": ".2f",
        "kid": ".4f",
        "is": ".2f",
        "i_prime": ".3f",
        "precision": ".3f",
        "recall": ".3f",
        "modes": ".1f",
        "kl_uniform": ".3f",
    }
    lines = [
        f"Budget per run: {budget}. Cells: mean ± standard deviation over seeds. images/s: real images "
        "through D per second of training (pretraining included).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        cells = [
            r["objective"],
            r["model"],
            str(r["seeds"]),
            _cell(r["steps"], ".0f"),
            _cell(r["train_seconds"], ".0f"),
            _cell(r["images_per_s"], ".0f"),
        ]
        cells += [_cell(r[k], specs[k]) for k in SCORES]
        lines.append("| " + " | ".join(cells) + " |")
    if floor:
        cells = ["real data (floor)", "", "", "", "", ""] + [
            format(floor[k], specs[k]) if floor.get(k) is not None else "" for k in SCORES
        ]
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

    firsts: dict[str, dict] = {}
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


def margin_histories(runs: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """(step, margin) as logged, per run that logs a margin whose value moves (MAGAN's epoch-end rule,
    margin schedules), keyed 'objective seed k'. Constant margins are left out: nothing to show."""
    from ebgan.train.run_dir import read_metrics

    histories = {}
    for r in runs:
        points = [(row["step"], row["margin"]) for row in read_metrics(Path(r["folder"])) if "margin" in row]
        if len({m for _, m in points}) > 1:
            histories[f"{r['objective']} seed {r['seed']}"] = points
    return histories


def margin_lines(histories: dict[str, list[tuple[int, float]]]) -> list[str]:
    """One line per run: the margin's first and last logged values and how often it moved."""
    lines = []
    for name, points in histories.items():
        moves = sum(1 for (_, a), (_, b) in zip(points, points[1:]) if a != b)
        lines.append(
            f"- {name}: m {points[0][1]:.4g} at step {points[0][0]} -> {points[-1][1]:.4g} at step "
            f"{points[-1][0]}, changed {moves} time(s) between logged steps"
        )
    return lines


def margins_figure(histories: dict[str, list[tuple[int, float]]], out: Path) -> Path | None:
    """The margin against generator steps, one line per run whose margin moves."""
    if not histories:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, points in histories.items():
        steps, margins = zip(*points)
        ax.step(steps, margins, where="post", label=name)
    ax.set_xlabel("generator steps")
    ax.set_ylabel("margin m in force")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out, dpi=110)


def check_spec(out: Path, dataset: str, budget: Budget, write: bool = True) -> None:
    """A comparison folder keeps its dataset and budget; objectives and seeds may be added.
    ``write``: record them (else only check, as a dry run does)."""
    if out.exists() and not out.is_dir():
        raise EbganError(f"--out {out} is a file; pass a folder (created, or continued when it exists)")
    spec = read_json(out / SPEC)
    want = {"dataset": dataset, "budget": str(budget)}
    if spec and {k: spec.get(k) for k in want} != want:
        raise EbganError(
            f"{out} holds a comparison of {spec.get('dataset')} at a budget of {spec.get('budget')}; "
            f"continue it with those, or choose another --out for {dataset} at {budget}"
        )
    if not write:
        return
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SPEC, want)


def check_scoring(eval_n: int, curve_points: int, curve_n: int) -> None:
    """Sample counts the scoring accepts, checked before any training (after it, a final score
    would be 'not scored' and a curve point would stop the run)."""
    from ebgan.metrics.evaluate import PR_K

    least = 2 * PR_K + 2
    if curve_points < 0:
        raise EbganError(f"--curve-points must be >= 0 (0: none), got {curve_points}")
    for flag, n, used in (("--eval-n", eval_n, True), ("--curve-n", curve_n, curve_points > 0)):
        if used and n < least:
            raise EbganError(f"{flag} {n} is too few samples to score; use at least {least} (or --no-eval)")


def _check_saved_config(folder: Path, cfg: Config) -> None:
    """A run folder of an earlier invocation must hold this run: a finished one is reused as it is,
    so one trained from another preset (or --preset-dir) would pass for this one."""
    from ebgan.config import config_diff
    from ebgan.train.run_dir import CONFIG, holds_run

    if not holds_run(folder):
        return  # nothing kept yet: the run starts over
    try:
        saved = Config.from_dict(load_config_file(folder / CONFIG), str(folder / CONFIG), saved=True)
        changed = config_diff(saved, cfg)
    except EbganError:
        changed = {"config.yaml": (None, None)}
    if changed:
        raise EbganError(
            f"{folder} was trained with another config ({', '.join(sorted(changed))} differ); continue the "
            "comparison with the presets it was started with, or choose another --out"
        )


def _objective_list(objectives) -> list[str]:
    names = [o.strip() for o in (objectives.split(",") if isinstance(objectives, str) else objectives) if o.strip()]
    if not names:
        raise EbganError("--objectives is empty; name at least one, e.g. ebgan-pt,gan")
    if len(set(names)) != len(names):
        raise EbganError(f"--objectives names one twice: {', '.join(names)}")
    return names


def plan(
    dataset: str,
    objectives,
    budget: str,
    out: str | Path,
    seeds: int = 1,
    data_root=None,
    preset_dir=None,
    preset_prefix: str | None = None,
    device: str = "auto",
) -> list[dict]:
    """The runs a comparison trains, each resolved (every config error is raised here, before any
    training): objective, seed, preset, model, folder, config and whether it is already finished."""
    spent = parse_budget(budget)
    if seeds < 1:
        raise EbganError(f"--seeds must be at least 1, got {seeds}")
    check_spec(Path(out), dataset, spent, write=False)  # a dry run of another budget is refused as the run is
    runs = []
    for objective in _objective_list(objectives):
        for seed in range(seeds):
            cfg, source = run_config(objective, seed, spent, dataset, data_root, preset_dir, preset_prefix, device)
            folder = Path(out) / objective / f"seed{seed}"
            _check_saved_config(folder, cfg)
            runs.append(
                {
                    "objective": objective,
                    "seed": seed,
                    "preset": source,
                    "model": cfg.model,
                    "folder": str(folder),
                    "config": cfg,
                    "finished": bool(read_json(folder / BUDGET).get("finished")),
                }
            )
    return runs


def estimate(planned: list[dict], budget: str, curve_points: int, curve_n: int, eval_n: int, steps: int = 4) -> dict:
    """Time ``steps`` training steps of each objective with runs still to train (after one warm-up
    step, on random images of the run's shape, nothing written) and one scoring pass, and
    extrapolate to the budget.

    Returns {"objectives": {objective: {"s_per_step", "prepare_s", "steps", "train_s", "eval_s"}},
    "total_s": the runs still to train, one after the other}. ``prepare_s`` is the objective's
    pretraining (MAGAN's autoencoder steps), which the warm-up runs in full: it is part of
    ``train_s`` and, under a wall-clock budget, leaves fewer steps. An estimate, not a promise: the
    first steps of a run are not its average (caches), and the scoring share assumes the cost grows
    linearly with the number of samples.
    """
    import dataclasses

    import torch

    from ebgan.data import to_uint8
    from ebgan.data.toy import is_toy
    from ebgan.generator_io import sample_images
    from ebgan.train import Trainer

    spent = parse_budget(budget)
    per_objective: dict = {}
    to_train = [r for r in planned if not r["finished"]]
    score_s_per_image = _scoring_seconds_per_image(to_train[0]["config"]) if to_train else None
    for r in to_train:
        if r["objective"] in per_objective:
            continue
        cfg = dataclasses.replace(r["config"], steps=steps + 1, log_every=1)
        n = max(2 * cfg.batch_size, 64)
        if is_toy(cfg.dataset):  # 2-D points, float
            images = torch.rand(n, 2) * 2 - 1
        else:  # images as the loaders give them: uint8
            images = torch.randint(0, 256, (n, cfg.channels or 1, cfg.image_size, cfg.image_size), dtype=torch.uint8)
        trainer = Trainer(cfg, images)
        trainer.train(steps=1, progress=False)  # warm-up: pretraining, allocations, first-call costs
        prepare_s = trainer.prepare_seconds
        t0 = time.perf_counter()
        trainer.train(steps=steps + 1, progress=False)
        s_per_step = (time.perf_counter() - t0) / steps
        if spent.kind == "steps":
            run_steps = int(spent.amount)
            train_s = prepare_s + run_steps * s_per_step
        else:  # the clock includes pretraining (ebgan.experiments.budget)
            run_steps = max(0, int((spent.amount - prepare_s) / s_per_step))
            train_s = spent.amount
        eval_s = 0.0
        if score_s_per_image is not None and trainer.objective.trains_generator:
            t0 = time.perf_counter()
            to_uint8(sample_images(trainer.sampling_generator, 500))
            sample_s_per_image = (time.perf_counter() - t0) / 500
            eval_s = (curve_points * curve_n + eval_n) * (sample_s_per_image + score_s_per_image)
        per_objective[r["objective"]] = {
            "s_per_step": s_per_step,
            "prepare_s": prepare_s,
            "steps": run_steps,
            "train_s": train_s,
            "eval_s": eval_s,
        }
    total = sum(per_objective[r["objective"]]["train_s"] + per_objective[r["objective"]]["eval_s"] for r in to_train)
    return {"objectives": per_objective, "total_s": total}


def _scoring_seconds_per_image(cfg: Config) -> float | None:
    """Seconds per image of the project's classifier on this machine; None when it has none yet."""
    import torch

    from ebgan.metrics.classifier import classify, input_shape, load_classifier

    try:
        net, _ = load_classifier(cfg.dataset)
    except EbganError:  # no classifier for this dataset (yet), or not trained here
        return None
    images = torch.randint(0, 256, (1000, *input_shape(cfg.dataset)), dtype=torch.uint8)
    classify(net, images[:100])  # warm-up
    t0 = time.perf_counter()
    classify(net, images)
    return (time.perf_counter() - t0) / 1000


def compare(
    dataset: str,
    objectives,
    budget: str,
    out: str | Path,
    seeds: int = 1,
    data_root=None,
    preset_dir=None,
    preset_prefix: str | None = None,
    eval_n: int = 10000,
    no_eval: bool = False,
    device: str = "auto",
    checkpoint_seconds: float = 60.0,
    log=print,
    curve_points: int = 10,
    curve_n: int = 2000,
    workers: int = 1,
) -> dict:
    """Train every planned run to the budget (``workers`` at once), score them, write results.md/.json,
    samples.png and curves.png."""
    if workers < 1:
        raise EbganError(f"--workers must be at least 1, got {workers}")
    if not no_eval:
        check_scoring(eval_n, curve_points, curve_n)
    spent = parse_budget(budget)
    planned = plan(dataset, objectives, budget, out, seeds, data_root, preset_dir, preset_prefix, device)
    out = Path(out)
    # A missing dataset is one error before the folder is made: a folder holding only the spec of a
    # comparison that never trained would refuse the next attempt at another budget.
    for r in planned:
        if not r["finished"]:
            _training_data(r["config"])
    check_spec(out, dataset, spent)
    jobs = [(r, spent, checkpoint_seconds, 0 if no_eval else curve_points, curve_n) for r in planned]
    if workers <= 1:
        runs = [_train_planned(*job, log=log) for job in jobs]
    else:  # each run in its own process, the CPU threads split between them; every run stays resumable
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor

        threads = max(1, (os.cpu_count() or 1) // workers)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_set_threads, initargs=(threads,)) as pool:
            runs = list(pool.map(_train_planned, *zip(*jobs)))
    names: dict = {}
    floor, eval_note = None, None
    if no_eval:
        eval_note = "not computed (--no-eval); the table holds training measures only"
    else:
        errors = set()
        for run in runs:
            scores = evaluate_run(Path(run["folder"]), eval_n, data_root=data_root, log=log)
            if "error" in scores:
                errors.add(scores["error"])
                continue
            run.update({k: scores.get(k) for k in SCORES})
            names = {"frechet": scores.get("frechet_name", "frechet"), "kid": scores.get("kid_name", "kid")}
            floor = scores.get("real_vs_real")
            parts = [f"{eval_n} samples per run"]  # toy runs are scored by mode coverage: no reference or features
            if scores.get("reference"):
                parts[0] += f" against {scores['reference']}"
            if scores.get("feature_extractor"):
                parts.append(f"features: {scores['feature_extractor']}")
            eval_note = "; ".join(parts)
        if errors:
            eval_note = (eval_note + "; " if eval_note else "") + "not scored: " + " | ".join(sorted(errors))
    rows = summarise(runs)
    results = {
        "dataset": dataset,
        "budget": str(spent),
        "rows": rows,
        "runs": runs,
        "real_vs_real": floor,
        "score_names": names,
        "scores_note": eval_note,
    }
    histories = margin_histories(runs)
    table = markdown_table(rows, spent, names, floor, eval_note)
    if histories:  # MAGAN's epoch-end rule (or a schedule) moved the margin: say when, and plot it
        table += "\nMargins that moved during training (margins.png):\n" + "\n".join(margin_lines(histories)) + "\n"
        results["margins"] = {name: [list(p) for p in points] for name, points in histories.items()}
        results["margins_figure"] = str(margins_figure(histories, out / "margins.png"))
    write_json(out / "results.json", results)
    write_text(out / "results.md", table)
    samples_figure(runs, out / "samples.png")
    figure = curves_figure(runs, out / "curves.png")
    if figure is not None:
        results["curves"] = str(figure)
        write_json(out / "results.json", results)
    return results


_DATA: dict = {}  # training sets loaded in this process, shared by its runs


def _training_data(cfg: Config):
    from ebgan.data import load_training_data, training_data_key

    key = training_data_key(cfg)
    if key not in _DATA:
        _DATA[key] = load_training_data(cfg)
    return _DATA[key]


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _train_planned(
    r: dict, spent: Budget, checkpoint_seconds: float, curve_points: int, curve_n: int, log=print
) -> dict:
    """Train one planned run to the budget (resuming it, or skipping it when finished); its table row."""
    cfg, folder = r["config"], Path(r["folder"])
    log(f"{r['objective']} seed {r['seed']} ({r['preset']}, {cfg.model}) -> {folder}")
    data, curve = None, None
    if not read_json(folder / BUDGET).get("finished"):
        data = _training_data(cfg)
        if curve_points:
            curve = _curve_for(folder, cfg, spent, curve_points, curve_n, log)
    record = train_run(cfg, data, folder, spent, checkpoint_seconds, log, curve=curve)
    return {
        **{k: v for k, v in r.items() if k not in ("config", "finished")},
        "steps": record["steps"],
        "train_seconds": record["train_seconds"],
        **training_measures(folder, cfg, record),
    }


def _curve_for(folder: Path, cfg: Config, spent: Budget, points: int, n: int, log) -> QualityCurve | None:
    """``points`` evaluations spread over the budget (by steps or by training seconds), or None
    when the dataset cannot be scored (no classifier yet: said once, the table says it too)."""
    try:
        if spent.kind == "steps":
            return QualityCurve(folder, cfg, n, every_steps=max(1, int(spent.amount) // points))
        return QualityCurve(folder, cfg, n, every_seconds=spent.amount / points)
    except EbganError as e:
        log(f"  no quality curve for {folder}: {e}")
        return None


# ------------------------------------------------------------------ quality over training
CURVE = "curve.jsonl"


class QualityCurve:
    """Scores ``n`` samples of the run's generator (the EMA one when on) every ``every_steps``
    generator steps or every ``every_seconds`` of training, against the honest reference of
    ``ebgan eval``, and appends a line to ``RUN/curve.jsonl``. Its own time is excluded from the
    run's training clock (``seconds``), so evaluating does not eat the budget."""

    def __init__(
        self, folder: Path, cfg: Config, n: int, every_steps: int = 0, every_seconds: float = 0.0, seed: int = 0
    ):
        from ebgan.metrics.classifier import check_run_makes_classifier_input
        from ebgan.metrics.evaluate import ClassifierScorer

        check_run_makes_classifier_input(cfg, "quality curve")
        self.path, self.n, self.seed = Path(folder) / CURVE, n, seed
        self.every_steps, self.every_seconds = every_steps, every_seconds
        self.scorer = ClassifierScorer(cfg.dataset, cfg.data_root, seed, generator_split=cfg.data_split)
        self.seconds = 0.0
        self._next_time = every_seconds

    def start(self, step: int) -> None:
        """Keep the lines up to ``step`` (a resumed run repeats the steps after its checkpoint)."""
        if self.path.is_file():
            kept = [
                line
                for line in self.path.read_text().splitlines(keepends=True)
                if line.strip() and json.loads(line)["step"] <= step
            ]
            write_text(self.path, "".join(kept))
            if kept and self.every_seconds:
                self._next_time = json.loads(kept[-1])["train_seconds"] + self.every_seconds

    def __call__(self, trainer, train_seconds: float) -> None:
        due = (self.every_steps and trainer.step % self.every_steps == 0) or (
            self.every_seconds and train_seconds >= self._next_time
        )
        if not due:
            return
        from ebgan.data import to_uint8
        from ebgan.generator_io import sample_images

        t0 = time.perf_counter()
        images = to_uint8(sample_images(trainer.sampling_generator, self.n, seed=self.seed))
        s = self.scorer.score(images)
        row = {
            "step": trainer.step,
            "train_seconds": round(train_seconds, 2),
            **{k: s[k] for k in ("frechet", "precision", "recall", "modes", "kl_uniform", "i_prime")},
            "frechet_name": self.scorer.names["frechet"],
            "n": self.n,
            "generator": trainer.generator_kind,
        }
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        self._next_time = train_seconds + self.every_seconds
        self.seconds += time.perf_counter() - t0


def read_curve(folder: str | Path) -> list[dict]:
    path = Path(folder) / CURVE
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def curves_figure(runs: list[dict], out: Path, key: str = "frechet") -> Path | None:
    """Quality against training wall-clock and against generator steps, one line per objective: the
    median over seeds at each evaluation, with the range of the seeds as a band."""
    import numpy as np

    by_objective: dict[str, list[list[dict]]] = {}
    for r in runs:
        curve = read_curve(r["folder"])
        if curve:
            by_objective.setdefault(r["objective"], []).append(curve)
    if not by_objective:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    name = key
    for objective, curves in by_objective.items():
        m = min(len(c) for c in curves)  # seeds evaluated the same number of times (resumes included)
        values = np.array([[row[key] for row in c[:m]] for c in curves], dtype=np.float64)
        seconds = np.median([[row["train_seconds"] for row in c[:m]] for c in curves], axis=0)
        steps = np.median([[row["step"] for row in c[:m]] for c in curves], axis=0)
        name = curves[0][0].get("frechet_name", key) if key == "frechet" else key
        for ax, x in zip(axes, (seconds, steps)):
            (line,) = ax.plot(x, np.median(values, axis=0), marker=".", label=f"{objective} ({len(curves)} seeds)")
            ax.fill_between(x, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.15)
    for ax, label in zip(axes, ("training wall-clock (s)", "generator steps")):
        ax.set_xlabel(label)
        ax.set_ylabel(f"{name} (lower is better)" if key == "frechet" else key)
        ax.grid(alpha=0.3)
        if key == "frechet":
            ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out, dpi=110)
