"""``--eval-every N``: score the generator during training and keep the best checkpoint.

Model selection never looks at an evaluation reference: every ``every`` steps the
generator's samples are compared, on the dataset classifier's features, with a fixed
subset of the run's own training images (the validation set; ``ebgan eval`` scores
against a reference disjoint from those, see ``ebgan.data.splits``). The metric lines say
so in their names (``select/fid_fmnist_cls_vs_training_images``, ...). When that
Frechet distance improves, the run folder gets:
    best.pt                       the full training checkpoint (atomic)
    best/generator.safetensors, best/generator.json, best/scores.json
so that ``ebgan sample --run RUN/best`` and ``ebgan eval --run RUN/best`` work on it;
``best/scores.json`` records what the selection was done on (``selected_on``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ebgan.data import splits, to_uint8
from ebgan.errors import EbganError
from ebgan.files import save_torch, write_json
from ebgan.generator_io import export_generator, sample_images
from ebgan.metrics import scores
from ebgan.metrics.classifier import check_dataset, check_run_makes_classifier_input, classify, load_classifier
from ebgan.metrics.evaluate import PR_K, score_features

BEST_CKPT, BEST_DIR, BEST_SCORES = "best.pt", "best", "scores.json"
EVAL_N = 10000  # samples per evaluation, and at most this many training images as the validation set
EVAL_SEED = 0
SELECT = "select/"  # prefix of the hook's metric names
VS = "_vs_training_images"  # suffix of the scores that depend on the validation set


class EvalHook:
    """``hook(trainer)``: every ``every`` steps, score ``n`` samples of trainer.G against the validation set.

    Metrics are written to the run's metrics.jsonl/TensorBoard directly, as their own
    line at the step they were computed for (returned metrics would be logged at the next
    multiple of log_every).
    """

    def __init__(self, cfg, run_dir, n: int = EVAL_N, seed: int = EVAL_SEED):
        check_dataset(cfg.dataset)
        check_run_makes_classifier_input(cfg, "--eval-every")
        self.net, self.meta = load_classifier(cfg.dataset)  # no classifier: fail now, before training starts
        self.num_classes = self.meta["arch"]["num_classes"]
        self.data_split = cfg.data_split
        self.every, self.n, self.seed = cfg.eval_every, n, seed
        self.folder = Path(run_dir)
        self.fid_name = f"fid_{self.meta['name']}{VS}"
        self.validation: tuple | None = (
            None  # (features, (mean, cov), k-NN radii, size), from the trainer's data at the first call
        )
        self.best = self._saved_best()

    def _saved_best(self) -> float:
        path = self.folder / BEST_DIR / BEST_SCORES
        if path.is_file():  # a resumed run keeps competing with its earlier best
            try:
                record = json.loads(path.read_text())
                if record.get("selected_by") == self.fid_name:  # not a best chosen by another rule
                    return float(record["frechet"])
            except (ValueError, TypeError, KeyError, AttributeError) as e:  # not overwritten: it may be the best
                raise EbganError(
                    f"{path} is damaged ({e.__class__.__name__}); the best generator cannot compete with new "
                    f"evaluations: move {path.parent} away to start the selection over, then resume"
                ) from e
        return math.inf

    def selected_on(self) -> str:
        size = self.validation[3] if self.validation else "a fixed subset of"
        return (
            f"{size} of the run's own training images ({self.data_split}: {splits.DESCRIPTIONS[self.data_split]}; "
            f"fixed subset, seed {self.seed}), never an evaluation reference"
        )

    def _prepare_validation(self, images: torch.Tensor) -> None:
        if images.dtype != torch.uint8:
            raise EbganError("--eval-every needs image training data (uint8), not points")
        pick = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(self.seed))[: self.n]
        feats, _ = classify(self.net, images[pick.to(images.device)].cpu())
        self.validation = (feats, scores.mean_cov(feats), scores.knn_radii_sq(feats, PR_K), len(pick))

    def due(self, trainer) -> bool:
        """Whether this step is scored (the loop asks first: under torchrun it then averages BatchNorm
        statistics over the ranks, so that the scores and best/ see what the checkpoint holds)."""
        return trainer.step % self.every == 0

    def __call__(self, trainer) -> None:
        if not self.due(trainer):
            return None
        if self.validation is None:
            self._prepare_validation(trainer.batches.images)
        assert self.validation is not None
        feats_val, stats_val, radii_val, _ = self.validation
        images = to_uint8(sample_images(trainer.sampling_generator, self.n, seed=self.seed))
        feats, log_probs = classify(self.net, images)
        s = score_features(feats, log_probs, feats_val, stats_val, self.num_classes, self.seed, ref_radii_sq=radii_val)
        short = self.meta["name"]
        metrics = {
            f"{SELECT}fid_{short}{VS}": s["frechet"],
            f"{SELECT}kid_{short}{VS}": s["kid"],
            f"{SELECT}precision{VS}": s["precision"],
            f"{SELECT}recall{VS}": s["recall"],
            f"{SELECT}is": s["is"],
            f"{SELECT}i_prime": s["i_prime"],
            f"{SELECT}modes": float(s["modes"]),
            f"{SELECT}kl_uniform": s["kl_uniform"],
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
        export_generator(
            trainer.sampling_generator,
            best,
            cfg.model,
            cfg.model_args,
            extra={
                "dataset": cfg.dataset,
                "objective": cfg.objective,
                "step": trainer.step,
                "data_split": cfg.data_split,
                "selected_on": self.selected_on(),
                "generator": trainer.generator_kind,
            },
        )
        record = {
            "step": trainer.step,
            "n": self.n,
            "seed": self.seed,
            "selected_by": self.fid_name,
            "selected_on": self.selected_on(),
            "data_split": cfg.data_split,
            "frechet_name": self.fid_name,
            "kid_name": f"kid_{self.meta['name']}{VS}",
            **{k: v for k, v in s.items() if k != "histogram"},
        }
        write_json(best / BEST_SCORES, record, indent=2)
