"""Scoring uint8 image samples of an MNIST-family dataset with the project's classifier.

``evaluate_classifier_images`` returns one flat dict of scores for the samples plus the
same scores for real data (a train subset standing in for samples, or the classifier's
own training part when the train split is absent) under ``real_vs_real``: the floor.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import torch

from ebgan.data import load_images
from ebgan.errors import EbganError
from ebgan.files import save_npz, write_json
from ebgan.metrics import scores
from ebgan.metrics.classifier import (
    FIT,
    HOLDOUT_SEED,
    HOLDOUT_TRAIN,
    IMAGE_SHAPE,
    classifier_dir,
    classify,
    load_classifier,
)

KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # Binkowski et al.'s and torch-fidelity's defaults
PR_K = 3  # Kynkaanniemi et al. 2019
FLOOR_CACHE = "floor.json"
FLOOR_VERSION = 2  # bump when the cached entry changes form (old entries are then ignored)
_REFERENCE_MEMO: dict = {}  # (dataset, data_root, classifier sha256) -> (Reference, features, (mean, cov))


@dataclass
class Reference:
    """Real images a score compares against, and real images that stand in for samples."""

    test: torch.Tensor  # uint8 (N, C, H, W): the reference set every score is computed against
    floor: torch.Tensor  # uint8: real images scored like samples (the real-vs-real floor)
    description: str  # what the floor compares
    name: str = ""  # what the reference set is


def reference_sets(dataset: str, meta: dict, data_root, n: int, seed: int = 0) -> Reference:
    """The same split the classifier was tested on; the floor is n real images it was not tested on."""
    size = IMAGE_SHAPE[1]
    test = load_images(dataset, "test", data_root, image_size=size, fit=FIT, download=False)
    if meta["split_used"] == "train":
        if n == 0:  # no floor wanted: skip loading the train split
            return Reference(test.images, test.images[:0], "", f"{dataset} test split ({len(test)})")
        train = load_images(dataset, "train", data_root, image_size=size, fit=FIT, download=False)
        pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]
        return Reference(test.images, train.images[pick], f"{len(pick)} train images vs the test split",
                         f"{dataset} test split ({len(test)})")
    # The train split is absent: reproduce the classifier's division of the test split.
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(HOLDOUT_SEED))
    held_out, seen = order[HOLDOUT_TRAIN:], order[:HOLDOUT_TRAIN]
    seen = seen[torch.randperm(len(seen), generator=torch.Generator().manual_seed(seed))[:n]]
    return Reference(
        test.images[held_out], test.images[seen],
        f"{len(seen)} images of the test split's other part (the classifier's training images) vs the held-out part",
        f"{dataset} test split, held-out part ({len(held_out)} images; the train split is absent)",
    )


def check_images(images: torch.Tensor, where: str) -> None:
    """Samples must be uint8 (N, 1, 32, 32) like the classifier's input, else a one-line error."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        raise EbganError(f"{where}: images must be uint8 in [0, 255] (as 'ebgan sample' writes), got {getattr(images, 'dtype', type(images))}")
    if images.ndim != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE:
        raise EbganError(
            f"{where}: images have shape {tuple(images.shape)}, expected (N, {', '.join(map(str, IMAGE_SHAPE))}) "
            "(MNIST-family images padded to 32x32, as ebgan trains on them)"
        )
    if len(images) < 2 * PR_K + 2:
        raise EbganError(f"{where}: {len(images)} images are too few to score; use at least {2 * PR_K + 2} (10000 recommended)")


def _subsample(f: np.ndarray, n: int, seed: int) -> np.ndarray:
    if len(f) <= n:
        return f
    return f[np.sort(np.random.default_rng(seed).choice(len(f), n, replace=False))]


def score_features(feats, log_probs, ref_feats, ref_stats, num_classes: int, seed: int = 0,
                   ref_radii_sq=None) -> dict:
    """Every classifier-based score of one sample set against the reference features.

    ``ref_radii_sq``: the reference set's own k-NN radii, reused when it is not subsampled.
    """
    mu, cov = scores.mean_cov(feats)
    kid_mean, kid_std = scores.kid(feats, ref_feats, KID_SUBSETS, KID_SUBSET_SIZE, seed=seed)
    # Equal-size sets for k-NN precision/recall: the radii depend on the set sizes.
    m = min(len(feats), len(ref_feats))
    radii = ref_radii_sq if m == len(ref_feats) else None
    precision, recall = scores.precision_recall(_subsample(ref_feats, m, seed), _subsample(feats, m, seed), k=PR_K,
                                                real_radii_sq=radii)
    coverage = scores.mode_coverage(log_probs.argmax(axis=1), num_classes)
    return {
        "n": len(feats),
        "frechet": scores.frechet_distance(mu, cov, *ref_stats),
        "kid": kid_mean,
        "kid_std": kid_std,
        "is": scores.inception_score(log_probs),
        "i_prime": scores.i_prime(log_probs),
        "precision": precision,
        "recall": recall,
        "modes": coverage["modes"],
        "kl_uniform": coverage["kl_uniform"],
        "histogram": coverage["histogram"],
    }


def extractor_description(meta: dict) -> str:
    return (
        f"{meta['name']}: ebgan's CNN classifier for {meta['dataset']} ({meta['feature_dim']}-d penultimate "
        f"features), trained on {meta['split_used']}, held-out accuracy {meta['test_accuracy']:.4f}, "
        f"weights sha256 {meta['sha256'][:12]}"
    )


class ClassifierScorer:
    """Classifier + reference features, loaded once; scores any uint8 sample set."""

    def __init__(self, dataset: str, data_root=None, seed: int = 0):
        self.dataset, self.data_root, self.seed = dataset, data_root, seed
        self.net, self.meta = load_classifier(dataset)
        self.num_classes = self.meta["arch"]["num_classes"]
        key = (dataset, str(data_root), self.meta["sha256"])
        if key not in _REFERENCE_MEMO:  # one process scoring many sets (tests, a sweep) prepares the reference once
            ref = reference_sets(dataset, self.meta, data_root, n=0, seed=seed)
            feats, radii = self._reference_features(ref.test)
            _REFERENCE_MEMO[key] = (ref, feats, scores.mean_cov(feats), radii)
        self._ref, self.ref_feats, self.ref_stats, self.ref_radii = _REFERENCE_MEMO[key]

    def _reference_features(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Features and k-NN radii of the reference set, cached on disk beside the classifier (they never change)."""
        path = classifier_dir(self.dataset) / f"reference_{self.meta['sha256'][:16]}_k{PR_K}.npz"
        if path.is_file():
            with np.load(path) as f:
                if f["features"].shape[0] == len(images):
                    return f["features"], f["radii_sq"]
        feats, _ = classify(self.net, images)
        radii = scores.knn_radii_sq(feats, PR_K)
        save_npz(path, features=feats, radii_sq=radii)
        return feats, radii

    @property
    def names(self) -> dict:
        short = self.meta["name"]
        return {"frechet": f"fid_{short}", "kid": f"kid_{short}"}

    def score(self, images: torch.Tensor) -> dict:
        feats, log_probs = classify(self.net, images)
        return score_features(feats, log_probs, self.ref_feats, self.ref_stats, self.num_classes, self.seed,
                              ref_radii_sq=self.ref_radii)

    def floor(self, n: int) -> dict:
        """Real-vs-real scores for n real images; cached per classifier, n and seed (they never change)."""
        key = f"v{FLOOR_VERSION}:{self.meta['sha256']}:n={n}:seed={self.seed}:kid={KID_SUBSETS}x{KID_SUBSET_SIZE}:k={PR_K}"
        path = classifier_dir(self.dataset) / FLOOR_CACHE
        cache = json.loads(path.read_text()) if path.is_file() else {}
        if key not in cache:
            ref = reference_sets(self.dataset, self.meta, self.data_root, n=n, seed=self.seed)
            cache[key] = {**self.score(ref.floor), "description": ref.description}
            write_json(path, cache)
        return cache[key]


def _finite(v):
    """JSON has no infinity: a non-finite score becomes null (reported in the table as inf)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def evaluate_classifier_images(images: torch.Tensor, dataset: str, data_root=None, seed: int = 0,
                               inception_weights=None, log=print) -> dict:
    """All scores for uint8 samples of an MNIST-family dataset (the 'classifier-images' kind)."""
    from ebgan.metrics import inception

    check_images(images, "samples")
    weights = inception.find_weights(inception_weights)  # a wrong path fails before any scoring
    scorer = ClassifierScorer(dataset, data_root, seed)
    result = scorer.score(images)
    floor = scorer.floor(len(images))
    out = {
        "dataset": dataset,
        "feature_extractor": extractor_description(scorer.meta),
        "frechet_name": scorer.names["frechet"],
        "kid_name": scorer.names["kid"],
        "reference": scorer._ref.name,
        **{k: _finite(v) for k, v in result.items()},
        "modes_of": scorer.num_classes,
        "modes_rule": "classes receiving at least 10% of their uniform share n/C of predicted labels",
        "real_vs_real": {k: _finite(v) for k, v in floor.items()},
    }
    if weights is None:
        out["inception"] = inception.unavailable()
    else:
        ref = reference_sets(dataset, scorer.meta, data_root, n=len(images), seed=seed)
        out["inception"] = inception.inception_scores(images, ref, weights, log=log, seed=seed)
    return out
