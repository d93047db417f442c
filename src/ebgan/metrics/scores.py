"""Sample-quality scores as pure float64 NumPy functions (no torch, no I/O).

Inputs are feature matrices (N, D) or class log-probabilities (N, C); everything is
converted to float64 first so that scores do not depend on the network's precision.
"""

from __future__ import annotations

import numpy as np


def _as_f64(x, name: str, ndim: int = 2) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    return a


# --------------------------------------------------------------------- Frechet distance
def mean_cov(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (N - 1) of the rows of ``features``."""
    f = _as_f64(features, "features")
    if f.shape[0] < 2:
        raise ValueError(f"a covariance needs at least 2 samples, got {f.shape[0]}")
    mu = f.mean(axis=0)
    centred = f - mu
    return mu, centred.T @ centred / (f.shape[0] - 1)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (eigenvalues clipped at 0 against rounding)."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """d^2 = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians.

    Tr (S1 S2)^(1/2) = Tr (S1^(1/2) S2 S1^(1/2))^(1/2): the inner matrix is symmetric PSD,
    so symmetric eigendecompositions suffice (no complex sqrtm, no "imaginary component").
    """
    mu1, mu2 = _as_f64(mu1, "mu1", 1), _as_f64(mu2, "mu2", 1)
    s1, s2 = _as_f64(sigma1, "sigma1"), _as_f64(sigma2, "sigma2")
    if not (mu1.shape == mu2.shape and s1.shape == s2.shape == (mu1.size, mu1.size)):
        raise ValueError(f"shape mismatch: means {mu1.shape}, {mu2.shape}; covariances {s1.shape}, {s2.shape}")
    r1 = _psd_sqrt(s1)
    inner = r1 @ s2 @ r1
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
    d = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)
    return max(d, 0.0)  # rounding can leave -1e-12 for identical sets


def frechet_distance_features(f1, f2) -> float:
    return frechet_distance(*mean_cov(f1), *mean_cov(f2))


# --------------------------------------------------------------------- KID
def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, coef: float = 1.0) -> np.ndarray:
    """k(x, y) = (x.y / d + coef)^degree, the kernel of Binkowski et al. 2018."""
    return (x @ y.T / x.shape[1] + coef) ** degree


def mmd2_unbiased(x, y, degree: int = 3, coef: float = 1.0) -> float:
    """Unbiased MMD^2: within-set kernel means exclude the diagonal (i != j)."""
    x, y = _as_f64(x, "x"), _as_f64(y, "y")
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise ValueError("the unbiased MMD^2 needs at least 2 samples per set")
    kxx = polynomial_kernel(x, x, degree, coef)
    kyy = polynomial_kernel(y, y, degree, coef)
    kxy = polynomial_kernel(x, y, degree, coef)
    xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(xx + yy - 2 * kxy.mean())


def kid(f1, f2, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel distance: mean and std of the unbiased MMD^2 over random equal-size subsets.

    The subset size is capped at the smaller set; a fixed ``seed`` makes it deterministic.
    """
    f1, f2 = _as_f64(f1, "f1"), _as_f64(f2, "f2")
    size = min(subset_size, f1.shape[0], f2.shape[0])
    rng = np.random.default_rng(seed)
    values = np.array(
        [
            mmd2_unbiased(
                f1[rng.choice(f1.shape[0], size, replace=False)], f2[rng.choice(f2.shape[0], size, replace=False)]
            )
            for _ in range(subsets)
        ]
    )
    return float(values.mean()), float(values.std())


# --------------------------------------------------------------------- class-probability scores
def _check_log_probs(log_probs) -> np.ndarray:
    lp = _as_f64(log_probs, "log_probs")
    total = np.exp(lp).sum(axis=1)
    if lp.shape[0] == 0 or not np.allclose(total, 1.0, atol=1e-6):
        raise ValueError("log_probs must be non-empty rows of log-probabilities (each row's exp sums to 1)")
    return lp


def _log_marginal(lp: np.ndarray) -> np.ndarray:
    """log p(y) = log mean_x p(y|x), computed stably."""
    top = lp.max(axis=0)
    return top + np.log(np.exp(lp - top).mean(axis=0))


def inception_score(log_probs) -> float:
    """IS-style score exp E_x KL(p(y|x) || p(y)) with p(y) the samples' marginal (one split)."""
    lp = _check_log_probs(log_probs)
    p = np.exp(lp)
    with np.errstate(invalid="ignore"):  # 0 * -inf where p = 0: replaced by 0 log 0 = 0
        terms = np.where(p > 0, p * (lp - _log_marginal(lp)), 0.0)
    return float(np.exp(terms.sum(axis=1).mean()))


def i_prime(log_probs) -> float:
    """The EBGAN paper's I' = E_x KL(p(y) || p(y|x)): reversed KL, no exp (section 4.1).

    Infinite when some p(y|x) is exactly 0 where p(y) > 0; pass a classifier's float64
    log_softmax so that no probability underflows.
    """
    lp = _check_log_probs(log_probs)
    lpy = _log_marginal(lp)
    py = np.exp(lpy)
    with np.errstate(invalid="ignore"):
        terms = np.where(py > 0, py * (lpy - lp), 0.0)
    return float(terms.sum(axis=1).mean())


# --------------------------------------------------------------------- precision / recall
def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.clip(d, 0, None)  # the expansion can round a 0 to -1e-13


def knn_radii_sq(f: np.ndarray, k: int = 3, chunk: int = 1024) -> np.ndarray:
    """Squared distance of each row to its k-th nearest other row (the row itself excluded)."""
    if f.shape[0] <= k:
        raise ValueError(f"k-NN radii need more than k={k} samples, got {f.shape[0]}")
    out = np.empty(f.shape[0])
    for i in range(0, f.shape[0], chunk):
        d = _sq_dists(f[i : i + chunk], f)
        d[np.arange(d.shape[0]), np.arange(i, i + d.shape[0])] = -1.0  # self sorts first, then k more
        out[i : i + chunk] = np.partition(d, k, axis=1)[:, k]
    return out


def _fraction_inside(points: np.ndarray, centres: np.ndarray, radii_sq: np.ndarray, chunk: int = 1024) -> float:
    """Fraction of ``points`` inside at least one ball (centre, radius) of the manifold estimate."""
    inside = 0
    for i in range(0, points.shape[0], chunk):
        d = _sq_dists(points[i : i + chunk], centres)
        inside += int(np.any(d <= radii_sq[None, :], axis=1).sum())
    return inside / points.shape[0]


def precision_recall(real, fake, k: int = 3, real_radii_sq=None) -> tuple[float, float]:
    """k-NN precision and recall of Kynkaanniemi et al. 2019 (k = 3 as in the paper).

    precision: share of fake samples inside the real manifold (union of balls around real
    samples reaching their k-th real neighbour); recall: share of real samples inside the
    fake manifold built the same way. ``real_radii_sq``: ``knn_radii_sq(real, k)`` if already known.
    """
    real, fake = _as_f64(real, "real"), _as_f64(fake, "fake")
    radii = knn_radii_sq(real, k) if real_radii_sq is None else np.asarray(real_radii_sq, dtype=np.float64)
    precision = _fraction_inside(fake, real, radii)
    recall = _fraction_inside(real, fake, knn_radii_sq(fake, k))
    return precision, recall


# --------------------------------------------------------------------- mode coverage
def mode_coverage(predicted, num_classes: int, min_share: float = 0.1) -> dict:
    """Histogram of predicted classes, classes covered, and KL(histogram || uniform).

    A class counts as covered when it receives at least ``min_share`` of its uniform share
    n / C, so that a few misclassified samples do not make a collapsed generator look diverse.
    """
    pred = np.asarray(predicted)
    if pred.ndim != 1 or pred.size == 0:
        raise ValueError("predicted must be a non-empty 1-D array of class indices")
    if pred.min() < 0 or pred.max() >= num_classes:
        raise ValueError(f"predicted classes must lie in [0, {num_classes})")
    counts = np.bincount(pred, minlength=num_classes)
    q = counts / counts.sum()
    kl = float(np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0) * num_classes), 0.0)))
    covered = int(np.sum(counts >= min_share * counts.sum() / num_classes))
    return {"histogram": counts.tolist(), "modes": covered, "kl_uniform": kl}
