"""The data splits, defined once: what a run trains on and what it is scored against.

    train         the dataset's official train split
    test          the official test split
    test-fit      the fitting part of the test split: 3/5 of it (6,000 of MNIST's 10,000)
    test-heldout  the rest (4,000): never trained on by anything, the reference for
                  generators trained on test-fit

``test-fit``/``test-heldout`` exist for machines that have only a test split (the
project's offline copy of MNIST): generators and the feature classifier train on
``test-fit``, scores are computed against ``test-heldout``.

The division (``DIVISION``): image i of the test split is ranked by the hex digest
sha256("ebgan-split-v1:<i>"); the lowest n * 3 // 5 ranks are test-fit, the others
test-heldout, each kept in file order. It depends on nothing but n (no RNG, no library
version) and can be recomputed in any language.

Honest scores (``reference_split``): the reference a sample set is scored against must be
disjoint from the generator's training images and from the classifier's.
"""

from __future__ import annotations

import difflib
import hashlib
from functools import lru_cache

import torch

from ebgan.errors import EbganError

TRAIN, TEST, TEST_FIT, TEST_HELDOUT = "train", "test", "test-fit", "test-heldout"
SPLITS = (TRAIN, TEST, TEST_FIT, TEST_HELDOUT)
DIVISION = "ebgan-split-v1"  # the seed of the hash ranking; change it only with a new name
FIT_NUM, FIT_DEN = 3, 5  # test-fit holds n * 3 // 5 images of a test split of n
PARTS = (TEST_FIT, TEST_HELDOUT)  # the two parts of the test split
# Real images that stand in for samples in the real-vs-real floor of a reference:
# images of the same distribution the reference does not contain.
FLOOR_SOURCE = {TEST: TRAIN, TEST_HELDOUT: TEST_FIT}

DESCRIPTIONS = {
    TRAIN: "the official train split",
    TEST: "the official test split",
    TEST_FIT: f"the test split's fitting part ({FIT_NUM}/{FIT_DEN} of it, {DIVISION} division)",
    TEST_HELDOUT: f"the test split's held-out part ({FIT_DEN - FIT_NUM}/{FIT_DEN} of it, {DIVISION} division)",
}


def check_split(name) -> str:
    """``name`` if it is one of SPLITS, else a one-line error naming the valid ones."""
    if name in SPLITS:
        return name
    close = difflib.get_close_matches(str(name), SPLITS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise EbganError(
        f"unknown data split {name!r}; {hint}use one of {', '.join(SPLITS)} "
        f"(test-fit/test-heldout divide the test split for machines without the train split)"
    )


def official_split(name: str) -> str:
    """The dataset file split a split's images come from: 'train' or 'test'."""
    return TRAIN if check_split(name) == TRAIN else TEST


def fit_size(n_test: int) -> int:
    return n_test * FIT_NUM // FIT_DEN


@lru_cache(maxsize=8)
def _division(n_test: int) -> tuple[torch.Tensor, torch.Tensor]:
    keys = [hashlib.sha256(f"{DIVISION}:{i}".encode()).hexdigest() for i in range(n_test)]
    ranked = sorted(range(n_test), key=keys.__getitem__)
    k = fit_size(n_test)
    return torch.tensor(sorted(ranked[:k]), dtype=torch.long), torch.tensor(sorted(ranked[k:]), dtype=torch.long)


def part_indices(name: str, n_official: int) -> torch.Tensor | None:
    """Indices of ``name``'s images within its official split of n images; None: all of them."""
    if check_split(name) not in PARTS:
        return None
    fit, heldout = _division(n_official)
    return (fit if name == TEST_FIT else heldout).clone()


def overlaps(a: str, b: str) -> bool:
    """True when two splits share images: the same official split and not its two disjoint parts."""
    if official_split(a) != official_split(b):
        return False
    return not (a in PARTS and b in PARTS and a != b)


def reference_split(generator_split: str | None, classifier_split: str) -> str:
    """The split to score samples against: test if it is disjoint from both training sets, else test-heldout.

    ``generator_split`` None means unknown (sample files): only the classifier is checked.
    Raises when no reference is disjoint from the generator's training images.
    """
    check_split(classifier_split)
    if generator_split is not None:
        check_split(generator_split)
    for candidate in (TEST, TEST_HELDOUT):
        if overlaps(candidate, classifier_split):
            continue
        if generator_split is not None and overlaps(candidate, generator_split):
            continue
        return candidate
    if any(not overlaps(c, classifier_split) for c in (TEST, TEST_HELDOUT)):  # the generator's split is to blame
        raise EbganError(
            f"the generator trained on the {generator_split!r} split, which overlaps every reference a score could "
            f"use ({TEST}, {TEST_HELDOUT}); retrain it with --data-split {TEST_FIT} (or {TRAIN} where the train "
            "split exists) and evaluate that run"
        )
    raise EbganError(
        f"the classifier trained on {classifier_split!r}, which leaves no disjoint reference; "
        "retrain it with: ebgan classifier train --force"
    )
