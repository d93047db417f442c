"""Scoring uint8 image samples of a classifier-evaluated dataset with the project's classifier.

``evaluate_classifier_images`` returns one flat dict of scores for the samples against a
reference split, plus the same scores for real data standing in for samples under
``real_vs_real`` (the floor). The reference is chosen by ``ebgan.data.splits.reference_split``:
disjoint from the classifier's training images and, when known, the generator's.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from dataclasses import dataclass

import numpy as np
import torch

from ebgan.data import load_images, splits
from ebgan.errors import EbganError
from ebgan.files import save_npz, write_json
from ebgan.metrics import scores
from ebgan.metrics.classifier import (
    FIT,
    IMAGE_SIZE,
    classifier_dir,
    classify,
    input_shape,
    load_classifier,
)

KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # Binkowski et al.'s and torch-fidelity's defaults
PR_K = 3  # Kynkaanniemi et al. 2019
FLOOR_CACHE = "floor.json"
FLOOR_VERSION = 3  # bump when the cached entry changes form (old entries are then ignored)
_REFERENCE_MEMO: dict = {}  # (dataset, data_root, classifier sha256, split, images sha256) -> features


@dataclass
class Reference:
    """Real images a score compares against, and real images that stand in for samples."""

    test: torch.Tensor  # uint8 (N, C, H, W): the reference set every score is computed against
    floor: torch.Tensor  # uint8: real images scored like samples (the real-vs-real floor)
    description: str  # what the floor compares
    name: str = ""  # what the reference set is
    split: str = ""  # its name in ebgan.data.splits


def images_digest(images: torch.Tensor) -> str:
    """sha256 of a uint8 image tensor's shape and bytes: cache keys follow the images themselves."""
    h = hashlib.sha256(str(tuple(images.shape)).encode())
    h.update(images.contiguous().numpy().tobytes())
    return h.hexdigest()


def _load(dataset: str, split: str, data_root):
    return load_images(dataset, split, data_root, image_size=IMAGE_SIZE, fit=FIT, download=False)


def reference_sets(dataset: str, reference: str, data_root, n: int, seed: int = 0) -> Reference:
    """The reference split's images; the floor is n real images of ``splits.FLOOR_SOURCE[reference]``."""
    ref = _load(dataset, reference, data_root)
    name = f"{dataset} {reference} split ({len(ref)} images; {splits.DESCRIPTIONS[reference]})"
    if n == 0:  # no floor wanted: skip loading its split
        return Reference(ref.images, ref.images[:0], "", name, reference)
    source = splits.FLOOR_SOURCE[reference]
    pool = _load(dataset, source, data_root)
    pick = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))[:n]
    return Reference(
        ref.images, pool.images[pick], f"{len(pick)} {source} images vs the {reference} split", name, reference
    )


def check_images(images: torch.Tensor, where: str, shape: tuple) -> None:
    """Samples must be uint8 (N, C, 32, 32) like the classifier's input, else a one-line error."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        raise EbganError(
            f"{where}: images must be uint8 in [0, 255] (as 'ebgan sample' writes), "
            f"got {getattr(images, 'dtype', type(images))}"
        )
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(shape):
        raise EbganError(
            f"{where}: images have shape {tuple(images.shape)}, expected (N, {', '.join(map(str, shape))}) "
            "(MNIST-family images padded to 32x32, as ebgan trains on them; 28x28 ones are padded when read)"
        )
    if len(images) < 2 * PR_K + 2:
        raise EbganError(
            f"{where}: {len(images)} images are too few to score; use at least {2 * PR_K + 2} (10000 recommended)"
        )
    if int(images.max()) == 1:  # no generator draws only 0s and 1s: [0, 1] floats cast to uint8 without * 255
        raise EbganError(
            f"{where}: every pixel is 0 or 1, as when images in [0, 1] are cast to uint8; "
            "multiply by 255 before the cast (uint8 images span [0, 255])"
        )


def _subsample(f: np.ndarray, n: int, seed: int) -> np.ndarray:
    if len(f) <= n:
        return f
    return f[np.sort(np.random.default_rng(seed).choice(len(f), n, replace=False))]


def score_features(feats, log_probs, ref_feats, ref_stats, num_classes: int, seed: int = 0, ref_radii_sq=None) -> dict:
    """Every classifier-based score of one sample set against the reference features.

    ``ref_radii_sq``: the reference set's own k-NN radii, reused when it is not subsampled.
    """
    mu, cov = scores.mean_cov(feats)
    kid_mean, kid_std = scores.kid(feats, ref_feats, KID_SUBSETS, KID_SUBSET_SIZE, seed=seed)
    # Equal-size sets for k-NN precision/recall: the radii depend on the set sizes.
    m = min(len(feats), len(ref_feats))
    radii = ref_radii_sq if m == len(ref_feats) else None
    precision, recall = scores.precision_recall(
        _subsample(ref_feats, m, seed), _subsample(feats, m, seed), k=PR_K, real_radii_sq=radii
    )
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
        f"features), trained on {meta['split_used']}, held-out accuracy {meta['test_accuracy']:.4f} "
        f"(on {meta.get('tested_on', '?')}), weights sha256 {meta['sha256'][:12]}"
    )


class ClassifierScorer:
    """Classifier + reference features, loaded once; scores any uint8 sample set.

    ``generator_split``: the split the samples' generator trained on (None: unknown). The
    reference is the first of test, test-heldout disjoint from it and from the classifier's
    training split; a generator that overlaps both is refused (``splits.reference_split``).
    """

    def __init__(self, dataset: str, data_root=None, seed: int = 0, generator_split: str | None = None):
        self.dataset, self.data_root, self.seed = dataset, data_root, seed
        self.net, self.meta = load_classifier(dataset)
        self.num_classes = self.meta["arch"]["num_classes"]
        self.generator_split = generator_split
        self.reference = splits.reference_split(generator_split, self.meta["split_used"])
        key = (dataset, str(data_root), self.meta["sha256"], self.reference)
        if key not in _REFERENCE_MEMO:  # one process scoring many sets (tests, a sweep) prepares the reference once
            ref = reference_sets(dataset, self.reference, data_root, n=0, seed=seed)
            digest = images_digest(ref.test)
            feats, radii = self._reference_features(ref.test, digest)
            _REFERENCE_MEMO[key] = (ref, digest, feats, scores.mean_cov(feats), radii)
        self._ref, self.ref_digest, self.ref_feats, self.ref_stats, self.ref_radii = _REFERENCE_MEMO[key]

    def _reference_features(self, images: torch.Tensor, digest: str) -> tuple[np.ndarray, np.ndarray]:
        """Features and k-NN radii of the reference set, cached on disk beside the classifier.

        The file name holds the classifier's hash, the split's name and the hash of the
        reference images: another split, division or copy of the data never reads it.
        """
        path = classifier_dir(self.dataset) / (
            f"reference_{self.meta['sha256'][:16]}_{self.reference}_{digest[:16]}_k{PR_K}.npz"
        )
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as f:
                    return f["features"], f["radii_sq"]
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # a damaged cache is recomputed
                pass
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
        return score_features(
            feats, log_probs, self.ref_feats, self.ref_stats, self.num_classes, self.seed, ref_radii_sq=self.ref_radii
        )

    def floor(self, n: int) -> dict:
        """Real-vs-real scores for n real images; cached per classifier, reference, n and seed."""
        source = splits.FLOOR_SOURCE[self.reference]
        key = (
            f"v{FLOOR_VERSION}:{self.meta['sha256']}:ref={self.reference}:{self.ref_digest}:"
            f"floor={source}:{splits.DIVISION}:n={n}:seed={self.seed}:kid={KID_SUBSETS}x{KID_SUBSET_SIZE}:k={PR_K}"
        )
        path = classifier_dir(self.dataset) / FLOOR_CACHE
        cache = _read_cache(path)
        if key not in cache:
            ref = reference_sets(self.dataset, self.reference, self.data_root, n=n, seed=self.seed)
            cache[key] = {**self.score(ref.floor), "description": ref.description}
            write_json(path, cache)
        return cache[key]

    def reference_note(self) -> str:
        """Why the reference is honest, or what could not be checked."""
        c, r = self.meta["split_used"], self.reference
        if self.generator_split is None:
            return (
                f"disjoint from the classifier's training images ({c}); the samples' training split is unknown, "
                f"so overlap with their generator's training images was not checked: the scores are honest only "
                f"if it did not train on {r} (pass --data-split to check)"
            )
        return f"disjoint from the generator's training images ({self.generator_split}) and the classifier's ({c})"


def _read_cache(path) -> dict:
    """A JSON cache file's entries; none when it is absent or damaged (they are then recomputed)."""
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def _finite(v):
    """JSON has no infinity: a non-finite score becomes null (reported in the table as inf)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def evaluate_classifier_images(
    images: torch.Tensor,
    dataset: str,
    data_root=None,
    seed: int = 0,
    inception_weights=None,
    log=print,
    data_split: str | None = None,
) -> dict:
    """All scores for uint8 samples of a classifier-evaluated dataset (evaluation kind 'classifier').

    ``data_split``: the split the samples' generator trained on; None when unknown.
    """
    from ebgan.metrics import inception

    check_images(images, "samples", input_shape(dataset))
    extractor = inception.find_extractor(inception_weights)  # a wrong or damaged file fails before any scoring
    scorer = ClassifierScorer(dataset, data_root, seed, generator_split=data_split)
    result = scorer.score(images)
    floor = scorer.floor(len(images))
    out = {
        "dataset": dataset,
        "feature_extractor": extractor_description(scorer.meta),
        "frechet_name": scorer.names["frechet"],
        "kid_name": scorer.names["kid"],
        "generator_split": data_split,
        "reference_split": scorer.reference,
        "reference": scorer._ref.name,
        "reference_note": scorer.reference_note(),
        **{k: _finite(v) for k, v in result.items()},
        "modes_of": scorer.num_classes,
        "modes_rule": "classes receiving at least 10% of their uniform share n/C of predicted labels",
        "real_vs_real": {k: _finite(v) for k, v in floor.items()},
    }
    if extractor is None:
        out["inception"] = inception.unavailable()
    else:
        ref = reference_sets(dataset, scorer.reference, data_root, n=len(images), seed=seed)
        out["inception"] = inception.inception_scores(images, ref, extractor, log=log, seed=seed)
    return out


INCEPTION_REFERENCE = 10000  # training images in the Inception reference set (all, when fewer)


def evaluate_inception_images(
    images: torch.Tensor,
    dataset: str,
    data_root=None,
    seed: int = 0,
    inception_weights=None,
    log=print,
    data_split: str | None = None,
) -> dict:
    """Inception FID/KID for an unlabelled colour dataset (evaluation kind 'inception': CelebA, LSUN).

    These sets have no labels (so no classifier of ours) and no held-out split: the reference
    is up to INCEPTION_REFERENCE of the training images at the samples' size, as published
    CelebA and LSUN FIDs use, and the floor is as many other training images as samples.
    """
    from ebgan.metrics import inception

    extractor = inception.find_extractor(inception_weights)
    if extractor is None:
        raise EbganError(
            f"ebgan eval scores {dataset} with Inception only (it has no labels for a feature classifier); "
            f"pass --inception-weights PATH (torch-fidelity's {inception.WEIGHTS_NAME})"
        )
    if images.dim() != 4 or images.dtype != torch.uint8:
        raise EbganError(f"samples must be uint8 (N, C, H, W) images, got {images.dtype} {tuple(images.shape)}")
    size = images.shape[-1]
    data = load_images(dataset, "train", data_root, image_size=size, channels=images.shape[1], download=False)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    n_floor = min(len(images), len(data) // 2)  # the floor never takes more than half the images
    n_ref = min(INCEPTION_REFERENCE, len(data) - n_floor)
    if n_floor < 2 or len(images) < 2:
        raise EbganError(
            f"Inception KID needs at least 2 samples and 4 {dataset} images; got {len(images)} and {len(data)}"
        )
    ref = Reference(
        data.images[order[:n_ref]],
        data.images[order[n_ref : n_ref + n_floor]],
        f"{n_floor} other training images vs the reference",
        f"{n_ref} {dataset} training images at {size}x{size}",
        "train",
    )
    scores_ = inception.inception_scores(images, ref, extractor, log=log, seed=seed)
    weights = extractor[0]
    return {
        "dataset": dataset,
        "n": len(images),
        "feature_extractor": f"InceptionV3 pool features (torch-fidelity weights {weights})",
        "generator_split": data_split,
        "reference_split": "train",
        "reference": ref.name,
        "reference_note": "training images: this dataset has no held-out split (published FIDs on it use training "
        "images too); comparable with papers only at their sample count (50,000) and reference",
        "inception": scores_,
        "real_vs_real": {"n": n_floor, "description": ref.description},
    }
