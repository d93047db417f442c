"""Evaluation: float64 scores, the project's feature classifiers, and the eval hook.

- ``scores``: Frechet distance, KID, IS-style score, the paper's I', k-NN precision/recall,
  mode coverage (pure NumPy).
- ``classifier``: a small CNN per MNIST-family dataset whose penultimate layer gives the
  features (scores are named after it, e.g. ``fid_fmnist_cls``), cached in the ebgan cache.
- ``evaluate``: scoring uint8 samples against a reference split disjoint from their
  generator's and the classifier's training images, with the real-vs-real floor.
- ``runs``: ``ebgan eval`` as functions: ``evaluate_run_folder``, ``evaluate_samples``.
- ``table``: ``format_table`` / ``format_result``, the readable output.
- ``ranking``: AUROC and AUPRC (anomaly scores), ``toy``: mode coverage of 2-D toy runs.
- ``inception``: Inception FID/KID when weights are available offline.
- ``hook``: ``--eval-every`` during training, keeping the best checkpoint (selected on
  the run's own training images, never on an evaluation reference).
"""

from ebgan.metrics.ranking import auprc, auroc
from ebgan.metrics.runs import evaluate_run_folder, evaluate_samples, evaluator_for, run_info, sample_run
from ebgan.metrics.scores import (
    frechet_distance,
    frechet_distance_features,
    i_prime,
    inception_score,
    kid,
    mean_cov,
    mmd2_unbiased,
    mode_coverage,
    precision_recall,
)
from ebgan.metrics.table import format_result, format_table
from ebgan.metrics.toy import toy_metrics

__all__ = [
    "auprc",
    "auroc",
    "toy_metrics",
    "evaluate_run_folder",
    "evaluate_samples",
    "evaluator_for",
    "format_result",
    "format_table",
    "run_info",
    "sample_run",
    "frechet_distance",
    "frechet_distance_features",
    "i_prime",
    "inception_score",
    "kid",
    "mean_cov",
    "mmd2_unbiased",
    "mode_coverage",
    "precision_recall",
]
