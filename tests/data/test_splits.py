"""The split names, the one division of the test split, and which reference is honest."""

from __future__ import annotations

import hashlib
import heapq

import numpy as np
import pytest
import torch

from ebgan import Config
from ebgan.data import load_images
from ebgan.data.splits import (
    SPLITS,
    check_split,
    official_split,
    overlaps,
    part_indices,
    reference_split,
)
from ebgan.errors import EbganError


def documented_division(n: int) -> tuple[set, set]:
    """The module docstring's rule, written independently: rank by sha256 hex digest, lowest 3/5 fit."""
    lowest = heapq.nsmallest(
        n * 3 // 5, range(n), key=lambda i: hashlib.sha256(f"ebgan-split-v1:{i}".encode()).hexdigest()
    )
    return set(lowest), set(range(n)) - set(lowest)


def test_split_names():
    assert SPLITS == ("train", "test", "test-fit", "test-heldout")
    assert [official_split(s) for s in SPLITS] == ["train", "test", "test", "test"]


@pytest.mark.parametrize(
    "bad, hint", [("test_fit", "did you mean 'test-fit'"), ("holdout", "use one of"), ("", "use one of")]
)
def test_unknown_split_is_one_line_naming_the_valid_ones(bad, hint):
    with pytest.raises(EbganError) as e:
        check_split(bad)
    assert hint in str(e.value) and "test-heldout" in str(e.value) and len(str(e.value).splitlines()) == 1


def test_mnist_sized_division_is_6000_and_4000_disjoint_and_complete():
    fit, heldout = part_indices("test-fit", 10000), part_indices("test-heldout", 10000)
    assert (len(fit), len(heldout)) == (6000, 4000)
    assert set(fit.tolist()).isdisjoint(heldout.tolist())
    assert set(fit.tolist()) | set(heldout.tolist()) == set(range(10000))
    assert torch.equal(fit, fit.sort().values)  # file order kept within a part
    assert part_indices("test", 10000) is None and part_indices("train", 60000) is None


@pytest.mark.parametrize("n", [5, 60, 10000])
def test_division_follows_the_documented_rule(n):
    fit, heldout = documented_division(n)
    assert set(part_indices("test-fit", n).tolist()) == fit
    assert set(part_indices("test-heldout", n).tolist()) == heldout


def test_five_images_by_hand():
    # sha256("ebgan-split-v1:i") hex digests start with: 0 -> 'c6d4', 1 -> '1293', 2 -> '25c8',
    # 3 -> '9fd1', 4 -> '83b6'; the 5 * 3 // 5 = 3 lowest are 1, 2, 4.
    starts = [hashlib.sha256(f"ebgan-split-v1:{i}".encode()).hexdigest()[:4] for i in range(5)]
    assert starts == ["c6d4", "1293", "25c8", "9fd1", "83b6"]
    assert part_indices("test-fit", 5).tolist() == [1, 2, 4]
    assert part_indices("test-heldout", 5).tolist() == [0, 3]


def test_overlap_rules():
    disjoint = {("train", "test"), ("train", "test-fit"), ("train", "test-heldout"), ("test-fit", "test-heldout")}
    for a in SPLITS:
        for b in SPLITS:
            expected = not ({(a, b), (b, a)} & disjoint)
            assert overlaps(a, b) == expected, (a, b)


@pytest.mark.parametrize(
    "generator, classifier, reference",
    [
        ("train", "train", "test"),
        (None, "train", "test"),
        ("test-fit", "train", "test-heldout"),
        ("test-fit", "test-fit", "test-heldout"),
        (None, "test-fit", "test-heldout"),
        ("train", "test-fit", "test-heldout"),
    ],
)
def test_reference_is_disjoint_from_both_training_sets(generator, classifier, reference):
    assert reference_split(generator, classifier) == reference


@pytest.mark.parametrize("generator", ["test", "test-heldout"])
def test_generator_trained_on_every_reference_is_refused_with_the_fix(generator):
    for classifier in ("train", "test-fit"):
        with pytest.raises(EbganError) as e:
            reference_split(generator, classifier)
        assert "--data-split test-fit" in str(e.value) and len(str(e.value).splitlines()) == 1


def test_loaded_parts_are_the_indexed_test_images(tiny_idx):
    root, _ = tiny_idx(splits={"train": 20, "test": 60})
    kw = dict(data_root=root, image_size=12, download=False)
    test = load_images("tiny-digits", "test", **kw)
    fit_ids, heldout_ids = documented_division(60)
    for split, ids in (("test-fit", fit_ids), ("test-heldout", heldout_ids)):
        part = load_images("tiny-digits", split, **kw)
        order = sorted(ids)
        assert len(part) == len(ids)
        assert torch.equal(part.images, test.images[order]) and torch.equal(part.labels, test.labels[order])
    assert np.array_equal(load_images("tiny-digits", "train", **kw).images.shape, (20, 1, 12, 12))


def test_config_accepts_the_split_names_and_refuses_others():
    assert Config(data_split="test-fit").resolve().data_split == "test-fit"
    with pytest.raises(EbganError, match="did you mean 'test-heldout'"):
        Config(data_split="test-held-out").resolve()
