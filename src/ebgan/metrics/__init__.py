"""Evaluation: float64 scores, the project's feature classifiers, and the eval hook.

- ``scores``: Frechet distance, KID, IS-style score, the paper's I', k-NN precision/recall,
  mode coverage (pure NumPy).
- ``classifier``: a small CNN per MNIST-family dataset whose penultimate layer gives the
  features (scores are named after it, e.g. ``fid_fmnist_cls``), cached in the ebgan cache.
- ``evaluate``: scoring uint8 samples against the test split, with the real-vs-real floor.
- ``inception``: Inception FID/KID when weights are available offline.
- ``hook``: ``--eval-every`` during training, keeping the best checkpoint.
"""

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

__all__ = [
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
