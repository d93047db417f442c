"""Ranking scores for anomaly detection, without scikit-learn.

Convention: ``labels`` are 1 for anomalies (the positives) and 0 for normal samples;
a higher score (energy) means "more anomalous".

- AUROC is the Mann-Whitney U statistic divided by n_pos * n_neg: the probability that a
  random anomaly scores higher than a random normal sample, ties counting one half.
- AUPRC is average precision, sum_k (R_k - R_{k-1}) P_k over the distinct score
  thresholds taken from high to low (the step-wise area, as scikit-learn's
  ``average_precision_score``; no linear interpolation, which would overstate it).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from ebgan.errors import EbganError


def _check(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise EbganError(f"{scores.size} scores but {labels.size} labels")
    if not np.isin(labels, (0, 1)).all():
        raise EbganError("labels must be 0 (normal) or 1 (anomaly)")
    labels = labels.astype(bool)
    if labels.all() or not labels.any():
        raise EbganError("AUROC/AUPRC need both anomalies (label 1) and normal samples (label 0)")
    if not np.isfinite(scores).all():
        raise EbganError("scores contain NaN or inf; the model diverged")
    return scores, labels


def auroc(scores, labels) -> float:
    scores, labels = _check(scores, labels)
    ranks = rankdata(scores)  # average ranks: ties count one half
    n_pos, n_neg = labels.sum(), (~labels).sum()
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def auprc(scores, labels) -> float:
    scores, labels = _check(scores, labels)
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    tp = np.cumsum(y)
    # one threshold per distinct score: the last index of each run of equal scores
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    tp, seen = tp[last], last + 1
    precision, recall = tp / seen, tp / labels.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
