"""Every score against an independent computation: closed forms, SciPy, or numbers worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

from ebgan.metrics import scores


def _random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


# ------------------------------------------------------------------ Frechet
def test_frechet_of_a_set_with_itself_is_zero():
    f = np.random.default_rng(0).normal(size=(500, 16)) * 3 + 1
    assert scores.frechet_distance_features(f, f) == pytest.approx(0.0, abs=1e-8)


def test_frechet_diagonal_gaussians_by_hand():
    # sum (mu1-mu2)^2 + sum (sqrt(a) - sqrt(b))^2 = (1 + 4) + ((1-3)^2 + (2-4)^2) = 13
    d = scores.frechet_distance([0, 0], np.diag([1.0, 4.0]), [1, 2], np.diag([9.0, 16.0]))
    assert d == pytest.approx(13.0, abs=1e-10)


def test_frechet_matches_scipy_sqrtm_on_non_commuting_covariances():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = _random_spd(rng, 6), _random_spd(rng, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2) - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
    assert scores.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_frechet_from_samples_approaches_the_closed_form():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(200_000, 2)) * [1.0, 2.0]
    b = rng.normal(size=(200_000, 2)) * [3.0, 4.0] + [1.0, 2.0]
    assert scores.frechet_distance_features(a, b) == pytest.approx(13.0, rel=0.02)


def test_mean_cov_matches_numpy():
    f = np.random.default_rng(3).normal(size=(50, 4))
    mu, cov = scores.mean_cov(f)
    np.testing.assert_allclose(mu, f.mean(0))
    np.testing.assert_allclose(cov, np.cov(f, rowvar=False))


# ------------------------------------------------------------------ KID
def test_mmd2_unbiased_by_hand():
    # d = 1, k(x, y) = (xy + 1)^3. x = {1, -1}: k(1,-1) = 0 -> within-x mean 0.
    # y = {2, 0}: k(2,0) = 1 -> within-y mean 1. Cross: k(1,2)=27, k(1,0)=1, k(-1,2)=-1, k(-1,0)=1 -> mean 7.
    # MMD^2 = 0 + 1 - 2 * 7 = -13
    assert scores.mmd2_unbiased([[1.0], [-1.0]], [[2.0], [0.0]]) == pytest.approx(-13.0)


def test_kid_is_unbiased_on_identical_distributions():
    rng = np.random.default_rng(4)
    unbiased, biased = [], []
    for _ in range(200):
        x, y = rng.normal(size=(50, 8)), rng.normal(size=(50, 8))
        unbiased.append(scores.mmd2_unbiased(x, y))
        k = lambda a, b: (a @ b.T / 8 + 1) ** 3  # noqa: E731  the V-statistic keeps the diagonal
        biased.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
    se = np.std(unbiased) / np.sqrt(len(unbiased))
    assert abs(np.mean(unbiased)) < 3 * se
    assert np.mean(biased) > 10 * se  # the test can tell a biased estimator apart


def test_kid_subsets_are_deterministic_and_separate_distributions():
    rng = np.random.default_rng(5)
    a, b, c = rng.normal(size=(400, 8)), rng.normal(size=(400, 8)), rng.normal(size=(400, 8)) + 1
    assert scores.kid(a, b, subsets=10, subset_size=100) == scores.kid(a, b, subsets=10, subset_size=100)
    assert scores.kid(a, c, subsets=10, subset_size=100)[0] > 10 * abs(scores.kid(a, b, subsets=10, subset_size=100)[0])


# ------------------------------------------------------------------ IS and I'
def _log(p):
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(p, dtype=np.float64))


def test_inception_score_of_one_hot_uniform_predictions_is_the_number_of_classes():
    probs = np.tile(np.eye(10), (7, 1))
    assert scores.inception_score(_log(probs)) == pytest.approx(10.0)


def test_inception_score_of_identical_predictions_is_one():
    assert scores.inception_score(_log(np.full((5, 4), 0.25))) == pytest.approx(1.0)


P_SMALL = [[0.5, 0.5], [0.9, 0.1]]  # p(y) = (0.7, 0.3)


def test_inception_score_by_hand():
    kl1 = 0.5 * math.log(0.5 / 0.7) + 0.5 * math.log(0.5 / 0.3)  # 0.08718
    kl2 = 0.9 * math.log(0.9 / 0.7) + 0.1 * math.log(0.1 / 0.3)  # 0.11632
    assert scores.inception_score(_log(P_SMALL)) == pytest.approx(math.exp((kl1 + kl2) / 2))
    assert scores.inception_score(_log(P_SMALL)) == pytest.approx(1.10710, abs=1e-5)


def test_i_prime_by_hand():
    # I' = E_x KL(p(y) || p(y|x)) with p(y) = (0.7, 0.3); no exp.
    kl1 = 0.7 * math.log(0.7 / 0.5) + 0.3 * math.log(0.3 / 0.5)  # 0.08228
    kl2 = 0.7 * math.log(0.7 / 0.9) + 0.3 * math.log(0.3 / 0.1)  # 0.15366
    assert scores.i_prime(_log(P_SMALL)) == pytest.approx((kl1 + kl2) / 2)
    assert scores.i_prime(_log(P_SMALL)) == pytest.approx(0.11797, abs=1e-5)


def test_i_prime_is_zero_when_every_sample_predicts_the_marginal_and_inf_for_one_hot():
    assert scores.i_prime(_log(np.full((3, 5), 0.2))) == pytest.approx(0.0, abs=1e-12)
    assert scores.i_prime(_log(np.eye(3))) == math.inf  # KL(p(y) || one-hot) diverges


def test_class_scores_reject_rows_that_are_not_distributions():
    with pytest.raises(ValueError, match="log-probabilities"):
        scores.inception_score(_log([[0.5, 0.6]]))


# ------------------------------------------------------------------ precision / recall
def test_precision_recall_by_hand_with_k_1():
    # real {0,1,2,3}: 1-NN radii all 1; fake {0.5, 5}: radii 4.5.
    # precision: 0.5 is inside the ball of 0, 5 is 2 away from 3 (radius 1) -> 1/2.
    # recall: every real point is within 4.5 of 0.5 -> 1.
    real, fake = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([[0.5], [5.0]])
    assert scores.precision_recall(real, fake, k=1) == (0.5, 1.0)


def test_precision_recall_of_identical_sets_is_one():
    f = np.random.default_rng(6).normal(size=(300, 10))
    assert scores.precision_recall(f, f.copy(), k=3) == (1.0, 1.0)


def test_precision_recall_of_disjoint_far_sets_is_zero():
    rng = np.random.default_rng(7)
    real, fake = rng.normal(size=(300, 10)), rng.normal(size=(300, 10)) + 100
    assert scores.precision_recall(real, fake, k=3) == (0.0, 0.0)


def test_precision_recall_with_precomputed_radii_is_unchanged():
    rng = np.random.default_rng(9)
    real, fake = rng.normal(size=(200, 5)), rng.normal(size=(200, 5)) + 0.5
    radii = scores.knn_radii_sq(real, k=3)
    assert scores.precision_recall(real, fake, real_radii_sq=radii) == scores.precision_recall(real, fake)


def test_knn_radius_matches_brute_force():
    f = np.random.default_rng(8).normal(size=(40, 3))
    d = np.sqrt(((f[:, None] - f[None]) ** 2).sum(-1))
    expected = np.sort(d, axis=1)[:, 3]  # column 0 is the point itself
    np.testing.assert_allclose(np.sqrt(scores.knn_radii_sq(f, k=3, chunk=7)), expected, rtol=1e-9)


# ------------------------------------------------------------------ mode coverage
def test_mode_coverage_by_hand():
    r = scores.mode_coverage(np.array([0] * 50 + [1] * 50), num_classes=4)
    assert r["histogram"] == [50, 50, 0, 0] and r["modes"] == 2
    assert r["kl_uniform"] == pytest.approx(math.log(2))  # 2 * 0.5 * log(0.5 * 4)


def test_mode_coverage_ignores_a_few_stray_predictions():
    r = scores.mode_coverage(np.array([0] * 97 + [1, 2, 3]), num_classes=4)
    assert r["modes"] == 1  # 1 of 100 is below 10% of the uniform share 25
    assert r["kl_uniform"] == pytest.approx(0.97 * math.log(0.97 * 4) + 3 * 0.01 * math.log(0.01 * 4))


def test_mode_coverage_of_uniform_predictions():
    r = scores.mode_coverage(np.arange(100) % 10, num_classes=10)
    assert r["modes"] == 10 and r["kl_uniform"] == pytest.approx(0.0, abs=1e-12)
