"""Training a run to a budget of wall-clock time or generator steps, resumably.

Budget: ``15m``, ``90s``, ``1h`` (training wall-clock, pretraining included, checked
after every step) or a bare number of generator steps (``2000``). A run trained this way
is an ordinary run folder plus ``budget.json``: the training seconds reached at each
checkpoint (so a resume after a kill continues the clock from its checkpoint) and
whether the budget is spent. Used by ``ebgan compare`` (and any later experiment).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ebgan.config import Config
from ebgan.errors import EbganError
from ebgan.files import write_json

BUDGET = "budget.json"
ENDLESS = 10**9  # cfg.steps of a wall-clock run: the budget, not the step count, ends it


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


def read_json(path: Path) -> dict:
    """A small JSON record, {} when absent."""
    return json.loads(path.read_text()) if path.is_file() else {}


def train_run(
    cfg: Config, data, folder: Path, budget: Budget, checkpoint_seconds: float = 60.0, log=print, curve=None
) -> dict:
    """Train one run to its budget, resuming it if a checkpoint exists; returns its budget record.

    ``curve``: a hook called after each step with (trainer, training seconds so far); the seconds
    it reports in ``curve.seconds`` (evaluation) do not count against the budget.
    """
    from ebgan.report import write_report
    from ebgan.train import Stopped, Trainer
    from ebgan.train.run_dir import CHECKPOINT

    folder = Path(folder)
    record = read_json(folder / BUDGET)
    if record.get("finished"):
        return {**record, "status": "skipped (finished)"}
    resume = (folder / CHECKPOINT).is_file()
    trainer = Trainer(cfg, data, run_dir=folder, resume=resume)
    done = {int(s): t for s, t in record.get("checkpoints", {}).items()}
    # training seconds reached at the checkpoint we resume from (time after it is lost with the kill)
    elapsed0 = max((t for s, t in done.items() if s <= trainer.step), default=0.0) if resume else 0.0
    status = f"resumed from step {trainer.step}" if resume else "trained"
    record = {"budget": str(budget), "checkpoints": {str(s): t for s, t in done.items() if s <= trainer.step}}
    t0 = time.perf_counter()
    state = {"last_save": elapsed0}
    if curve is not None:
        curve.start(trainer.step)

    def now() -> float:
        return elapsed0 + time.perf_counter() - t0 - (curve.seconds if curve is not None else 0.0)

    def save(finished: bool) -> None:
        trainer.save()
        record["checkpoints"][str(trainer.step)] = now()
        record.update(steps=trainer.step, train_seconds=now(), finished=finished)
        write_json(folder / BUDGET, record)

    def budget_hook(tr) -> None:
        if curve is not None:
            curve(tr, now())
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
