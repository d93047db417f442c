"""The feature classifier's splits, registry lookups and refusal of stale caches (tiny datasets, no real data)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from ebgan.errors import EbganError
from ebgan.metrics.classifier import (
    SPEC,
    WEIGHTS,
    check_dataset,
    classifier_dir,
    classifier_splits,
    input_shape,
    load_classifier,
    train_classifier,
)


def test_only_classifier_datasets_have_one():
    assert check_dataset("mnist").score_name == "mnist_cls" and input_shape("fashion-mnist") == (1, 32, 32)
    for name in ("toy:8gaussians", "folder:/x"):
        with pytest.raises(EbganError, match="classifiers exist for mnist, fashion-mnist"):
            check_dataset(name)


def test_trains_on_train_and_tests_on_test_when_the_train_split_exists(tiny_idx):
    root, _ = tiny_idx(splits={"train": 90, "test": 60})
    data = classifier_splits("tiny-digits", root)
    assert (data["split"], data["tested_on"]) == ("train", "test")
    assert (len(data["train"]), len(data["test"])) == (90, 60)


def test_without_a_train_split_it_uses_the_two_parts_of_the_test_split(tiny_idx):
    root, _ = tiny_idx(splits={"test": 60})
    data = classifier_splits("tiny-digits", root)
    assert (data["split"], data["tested_on"]) == ("test-fit", "test-heldout")
    assert (len(data["train"]), len(data["test"])) == (36, 24)  # 60 * 3 // 5 and the rest
    meta = train_classifier("tiny-digits", root, epochs=1, log=lambda m: None)
    assert meta["split_used"] == "test-fit" and meta["tested_on"] == "test-heldout" and meta["n_test"] == 24
    assert meta["name"] == "tiny_digits_cls" and meta["arch"]["num_classes"] == 3
    assert "train split is absent" in meta["split_note"]


@pytest.mark.parametrize("split_used, definition", [("test[6000]", None), ("test-fit", "some-older-division")])
def test_a_classifier_from_an_unknown_division_is_refused(tiny_idx, split_used, definition):
    root, _ = tiny_idx(splits={"test": 60})
    train_classifier("tiny-digits", root, epochs=1, log=lambda m: None)
    path = classifier_dir("tiny-digits") / SPEC
    meta = json.loads(path.read_text())
    path.write_text(json.dumps({**meta, "split_used": split_used, "split_definition": definition}))
    with pytest.raises(EbganError, match="--force") as e:
        load_classifier("tiny-digits")
    assert split_used in str(e.value)


def test_limit_and_threads_are_checked(tiny_idx, capsys):
    """--limit -5 trained on all but the last 5 images ("limited to its first ..."), --limit 0 on all of
    them; --threads -1 was an internal error."""
    from ebgan.cli import main

    root, _ = tiny_idx(splits={"train": 90, "test": 60})
    for limit in (0, -5):
        with pytest.raises(EbganError, match=f"--limit must be positive, got {limit}"):
            train_classifier("tiny-digits", root, epochs=1, limit=limit, log=lambda m: None)
    assert not (classifier_dir("tiny-digits") / SPEC).exists()
    argv = ["classifier", "train", "--dataset", "tiny-digits", "--data-root", str(root), "--epochs", "1"]
    assert main([*argv, "--threads", "-1"]) == 2
    assert "--threads must be >= 0" in capsys.readouterr().err
    assert main([*argv, "--limit", "0"]) == 2
    assert "--limit must be positive" in capsys.readouterr().err


def _damage(folder, case):
    """Damage a cached classifier the ways a copied or edited cache folder can be."""
    meta = json.loads((folder / SPEC).read_text())
    if case == "other dataset":  # another dataset's folder copied here: used silently, under its own name
        meta["dataset"] = "fashion-mnist"
    elif case == "no sha256":  # was an internal KeyError
        del meta["sha256"]
    elif case == "no arch":  # was an internal KeyError
        del meta["arch"]
    elif case == "not an object":  # was an internal AttributeError
        meta = [meta]
    elif case == "other weights":  # another classifier's weights: cached reference features no longer match
        weights = folder / WEIGHTS
        state = load_file(str(weights))
        state["head.bias"] = state["head.bias"] + 1
        save_file(state, str(weights))
    (folder / SPEC).write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "case, message",
    [
        ("other dataset", "describes a classifier for 'fashion-mnist', not tiny-digits"),
        ("no sha256", "lacks sha256"),
        ("no arch", "lacks arch"),
        ("not an object", "damaged (not a JSON object)"),
        ("other weights", "sha256 differs"),
    ],
)
def test_a_damaged_or_foreign_cached_classifier_is_one_clear_error(tiny_idx, case, message, capsys):
    from ebgan.cli import main

    root, _ = tiny_idx(splits={"test": 60})
    train_classifier("tiny-digits", root, epochs=1, log=lambda m: None)
    _damage(classifier_dir("tiny-digits"), case)
    with pytest.raises(EbganError, match=re.escape(message)) as e:
        load_classifier("tiny-digits")
    assert str(e.value).endswith("ebgan classifier train --dataset tiny-digits --force")
    images = np.zeros((10, 1, 32, 32), np.uint8)
    np.savez(root / "s.npz", images=images)
    assert main(["eval", "--samples", str(root / "s.npz"), "--dataset", "tiny-digits", "--data-root", str(root)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
