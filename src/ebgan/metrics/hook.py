"""``--eval-every N``: score the generator during training and keep the best checkpoint.

Writes, in the run folder, when the classifier-feature Frechet distance improves:
    best.pt                       the full training checkpoint (atomic)
    best/generator.safetensors, best/generator.json, best/scores.json
so that ``ebgan sample --run RUN/best`` and ``ebgan eval --run RUN/best`` work on it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ebgan.data import to_uint8
from ebgan.errors import EbganError
from ebgan.files import save_torch, write_json
from ebgan.generator_io import export_generator, sample_images
from ebgan.metrics.classifier import FIT, IMAGE_SHAPE, check_dataset, load_meta

BEST_CKPT, BEST_DIR, BEST_SCORES = "best.pt", "best", "scores.json"
EVAL_N = 10000  # same n and seed as 'ebgan eval' defaults, so the numbers are comparable
EVAL_SEED = 0


class EvalHook:
    """``hook(trainer)``: every ``every`` steps, score EVAL_N samples of trainer.G.

    Metrics are written to the run's metrics.jsonl/TensorBoard directly, as their own
    line at the step they were computed for (returned metrics would be logged at the next
    multiple of log_every).
    """

    def __init__(self, cfg, run_dir, n: int = EVAL_N, seed: int = EVAL_SEED):
        check_dataset(cfg.dataset)
        load_meta(cfg.dataset)  # no classifier: fail now, before training starts
        shape = (cfg.channels or 1, cfg.image_size, cfg.image_size)
        if shape != IMAGE_SHAPE or cfg.fit != FIT:
            raise EbganError(
                f"--eval-every scores {IMAGE_SHAPE} images fitted by {FIT!r} (the classifier's input); "
                f"this run makes {shape} images with fit {cfg.fit!r}"
            )
        from ebgan.metrics.evaluate import ClassifierScorer

        self.scorer = ClassifierScorer(cfg.dataset, cfg.data_root, seed)
        self.every, self.n, self.seed = cfg.eval_every, n, seed
        self.folder = Path(run_dir)
        self.best = self._saved_best()

    def _saved_best(self) -> float:
        path = self.folder / BEST_DIR / BEST_SCORES
        if path.is_file():  # a resumed run keeps competing with its earlier best
            return json.loads(path.read_text())["frechet"]
        return math.inf

    def __call__(self, trainer) -> None:
        if trainer.step % self.every:
            return None
        images = to_uint8(sample_images(trainer.G, self.n, seed=self.seed))
        s = self.scorer.score(images)
        names = self.scorer.names
        metrics = {
            f"eval/{names['frechet']}": s["frechet"], f"eval/{names['kid']}": s["kid"],
            "eval/is": s["is"], "eval/i_prime": s["i_prime"], "eval/precision": s["precision"],
            "eval/recall": s["recall"], "eval/modes": float(s["modes"]), "eval/kl_uniform": s["kl_uniform"],
        }
        trainer.writer.log(trainer.step, metrics)
        if s["frechet"] < self.best and trainer.writer.enabled:
            self.best = s["frechet"]
            self._save_best(trainer, s)
        return None

    def _save_best(self, trainer, s: dict) -> None:
        cfg = trainer.cfg
        save_torch(self.folder / BEST_CKPT, trainer.state_dict())
        best = self.folder / BEST_DIR
        best.mkdir(exist_ok=True)
        export_generator(trainer.G, best, cfg.model, cfg.model_args,
                         extra={"dataset": cfg.dataset, "objective": cfg.objective, "step": trainer.step})
        record = {"step": trainer.step, "n": self.n, "seed": self.seed, "frechet_name": self.scorer.names["frechet"],
                  **{k: v for k, v in s.items() if k != "histogram"}}
        write_json(best / BEST_SCORES, record, indent=2)
