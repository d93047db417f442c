"""AUROC and AUPRC against hand computations and a brute-force pair count."""

from __future__ import annotations

import numpy as np
import pytest

from ebgan import EbganError
from ebgan.metrics.ranking import auprc, auroc


def test_auroc_by_hand_with_a_tie():
    # anomalies (1) score 0.9 and 0.4; normals 0.5, 0.1, 0.4.
    # pairs won by the anomaly: 0.9 beats all 3; 0.4 beats 0.1, ties 0.4 (1/2), loses to 0.5 -> 4.5 of 6
    assert auroc([0.9, 0.4, 0.5, 0.1, 0.4], [1, 1, 0, 0, 0]) == pytest.approx(0.75)


def test_auroc_matches_mann_whitney_pair_count():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 8, 60).astype(float)  # many ties
    labels = rng.integers(0, 2, 60)
    pos, neg = scores[labels == 1], scores[labels == 0]
    diff = pos[:, None] - neg[None, :]
    expected = ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size
    assert auroc(scores, labels) == pytest.approx(expected)


def test_auprc_by_hand():
    # ranked: 0.9 anomaly (P 1, R 1/2), 0.8 normal (P 1/2, R 1/2), 0.7 anomaly (P 2/3, R 1), 0.1 normal
    # AP = 1/2 * 1 + 0 * 1/2 + 1/2 * 2/3 = 5/6
    assert auprc([0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0]) == pytest.approx(5 / 6)
    assert auprc([0.5, 0.5], [1, 0]) == pytest.approx(0.5)  # one threshold for tied scores
    assert auprc([3, 2, 1], [1, 1, 0]) == pytest.approx(1.0)


def test_perfect_and_reversed_rankings():
    assert auroc([2, 3, 0, 1], [1, 1, 0, 0]) == 1.0
    assert auroc([0, 1, 2, 3], [1, 1, 0, 0]) == 0.0


def test_scores_refuse_one_class_and_nan():
    with pytest.raises(EbganError, match="both"):
        auroc([1, 2], [0, 0])
    with pytest.raises(EbganError, match="NaN"):
        auprc([np.nan, 1], [1, 0])
    with pytest.raises(EbganError, match="labels"):
        auroc([1, 2], [0, 2])
