"""Reference sets and their caches: the floor's real images, and cache keys that follow the split and the data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ebgan.data import load_images
from ebgan.metrics import evaluate
from ebgan.metrics.classifier import classifier_dir, train_classifier
from ebgan.metrics.evaluate import ClassifierScorer, images_digest, reference_sets
from tests.conftest import class_images, write_idx_split


@pytest.fixture
def tiny(tiny_idx, monkeypatch):
    root, _ = tiny_idx(splits={"train": 90, "test": 60})
    train_classifier("tiny-digits", root, epochs=1, log=lambda m: None)
    monkeypatch.setattr(evaluate, "_REFERENCE_MEMO", {})  # this test's own in-process memo
    return root


def rows(images: torch.Tensor) -> set:
    return {r.tobytes() for r in images.flatten(1).numpy()}


@pytest.mark.parametrize("reference, pool", [("test", "train"), ("test-heldout", "test-fit")])
def test_floor_images_come_from_the_other_side_of_the_reference(tiny, reference, pool):
    ref = reference_sets("tiny-digits", reference, tiny, n=20, seed=0)
    assert ref.split == reference and len(ref.floor) == 20
    assert rows(ref.test) == rows(load_images("tiny-digits", reference, tiny).images)
    assert rows(ref.floor) <= rows(load_images("tiny-digits", pool, tiny).images)
    assert not rows(ref.floor) & rows(ref.test)


def test_digest_follows_every_pixel():
    a = torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
    b = a.clone()
    b[1, 0, 3, 3] = 1
    assert images_digest(a) != images_digest(b) and images_digest(a) == images_digest(a.clone())
    assert images_digest(a) != images_digest(a.view(1, 2, 4, 4))


def test_reference_caches_are_keyed_by_split_and_by_the_images(tiny):
    folder = classifier_dir("tiny-digits")
    samples = load_images("tiny-digits", "train", tiny).images[:20]
    whole = ClassifierScorer("tiny-digits", tiny)  # unknown generator: test
    part = ClassifierScorer("tiny-digits", tiny, generator_split="test-fit")  # test-heldout
    assert (whole.reference, part.reference) == ("test", "test-heldout")
    names = sorted(p.name for p in folder.glob("reference_*.npz"))
    assert len(names) == 2 and any("_test_" in n for n in names) and any("_test-heldout_" in n for n in names)
    assert len(whole.ref_feats) == 60 and len(part.ref_feats) == 24
    whole.floor(20)
    part.floor(20)
    keys = list(json.loads((folder / "floor.json").read_text()))
    assert len(keys) == 2 and any(":ref=test:" in k for k in keys) and any(":ref=test-heldout:" in k for k in keys)
    before = whole.score(samples)["frechet"]
    # Other files in the same place (a re-copied dataset): a new process must not reuse the old features.
    images, labels = class_images(60, seed=7)
    write_idx_split(tiny / "tiny-digits", "t10k", np.ascontiguousarray(images[:, ::-1]), labels)
    evaluate._REFERENCE_MEMO.clear()  # what a new process starts with
    again = ClassifierScorer("tiny-digits", tiny)
    assert len(list(folder.glob("reference_*_test_*.npz"))) == 2
    assert again.score(samples)["frechet"] != pytest.approx(before)
    again.floor(20)
    assert len(json.loads((folder / "floor.json").read_text())) == 3


def test_damaged_score_caches_are_recomputed(tiny):
    """A damaged reference-feature or floor cache (a disk error, a half-copied cache folder) was an
    internal error (BadZipFile, JSONDecodeError); it is recomputed, to the same scores."""
    folder = classifier_dir("tiny-digits")
    samples = load_images("tiny-digits", "train", tiny).images[:20]
    first = ClassifierScorer("tiny-digits", tiny)
    expected, floor = first.score(samples), first.floor(20)
    (cached,) = folder.glob("reference_*.npz")
    cached.write_bytes(cached.read_bytes()[:100])
    (folder / "floor.json").write_text('{"v3:')
    evaluate._REFERENCE_MEMO.clear()  # a new process
    again = ClassifierScorer("tiny-digits", tiny)
    assert again.score(samples)["frechet"] == pytest.approx(expected["frechet"])
    assert again.floor(20)["frechet"] == pytest.approx(floor["frechet"])
    with np.load(cached) as f:  # rewritten whole
        assert len(f["features"]) == 60
