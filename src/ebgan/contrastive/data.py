"""Which images a contrastive run trains on, chooses its threshold on, and is tested on.

    train       the run's split (train, or test-fit) without its validation part: all that
                training ever draws from
    validation  ``val_fraction`` of the run's split, by a fixed hash ranking (``pairs.holdout``):
                the pairs that choose the verification threshold
    test        the test split (test-heldout for a run on test-fit): the test pairs, k-NN and
                linear-probe accuracy

An image folder has no splits: 20% of it (another hash ranking) is its test part, and the
validation part comes out of the rest. The three parts never share an image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ebgan.contrastive.pairs import ClassIndex, holdout
from ebgan.data import splits
from ebgan.data.registry import dataset_spec
from ebgan.data.sources import ImageData, load_images
from ebgan.errors import EbganError

FOLDER_TEST_FRACTION = 0.2
FOLDER_TEST = "ebgan-contrastive-folder-test-v1"
# how to get more images of each class into a part whose pairs cannot be drawn
VAL_FIX = "use a larger --val-fraction (a contrastive run's is set when it trains)"
TEST_FIX = f"use a larger dataset (a folder's test part is {FOLDER_TEST_FRACTION:.0%} of it)"


@dataclass
class EvalData:
    train: ImageData
    val: ImageData
    test: ImageData
    # indices of each part within the run's split; test_indices None: the test part is another split
    train_indices: torch.Tensor
    val_indices: torch.Tensor
    test_indices: torch.Tensor | None
    notes: dict[str, str]


def _subset(data: ImageData, idx) -> ImageData:
    return ImageData(data.images[idx], data.labels[idx], data.name, data.num_classes)


def reference_split(data_split: str) -> str:
    """The split a run is tested on: the first of test, test-heldout that shares no image with its split."""
    for candidate in (splits.TEST, splits.TEST_HELDOUT):
        if not splits.overlaps(candidate, data_split):
            return candidate
    raise EbganError(
        f"the encoder trained on the {data_split!r} split, which overlaps every test split (test, test-heldout); "
        f"train on {splits.TRAIN} or {splits.TEST_FIT}"
    )


def load_split(cfg, split: str | None = None) -> ImageData:
    """A split (default: the config's) of the config's dataset, fitted as the config says."""
    return load_images(
        cfg.dataset,
        split=split or cfg.data_split,
        data_root=cfg.data_root,
        image_size=cfg.image_size,
        fit=cfg.fit,
        channels=cfg.channels,
    )


def evaluation_data(
    cfg, val_fraction: float, data: ImageData | None = None, with_test: bool = True, trained_on_all: bool = False
) -> EvalData:
    """The train / validation / test parts for a config (a ContrastiveConfig, or an EBGAN run's Config:
    the fields dataset, data_split, data_root, image_size, fit, channels). ``data``: the run's split,
    if already loaded; ``with_test=False`` skips loading the test split (training needs none).
    ``trained_on_all``: the encoder trained on the whole split (an EBGAN discriminator), validation
    part included, so an image folder holds no image it has not seen."""
    data = load_split(cfg) if data is None else data
    folder = dataset_spec(cfg.dataset).loader == "folder"
    if folder and trained_on_all:
        raise EbganError(
            f"the discriminator trained on every image of {cfg.dataset}, which has no test split: no image is "
            "left to test its embedding on; evaluate a run of a dataset with a test split (e.g. fashion-mnist)"
        )
    test_idx: torch.Tensor | None = None
    where = splits.DESCRIPTIONS.get(cfg.data_split, cfg.data_split)
    if folder:
        kept, test_idx = holdout(len(data), FOLDER_TEST_FRACTION, FOLDER_TEST)
        test = _subset(data, test_idx)
        keep, val = holdout(len(kept), val_fraction)
        train_idx, val_idx = kept[keep], kept[val]
        test_note = f"{FOLDER_TEST_FRACTION:.0%} of the folder ({len(test)} images, {FOLDER_TEST} ranking)"
        where = "the folder"
    else:
        train_idx, val_idx = holdout(len(data), val_fraction)
        ref = reference_split(cfg.data_split)
        test = load_split(cfg, ref) if with_test else _subset(data, val_idx[:0])
        test_note = f"{ref} ({splits.DESCRIPTIONS[ref]}, {len(test)} images)"
    if len(val_idx) == 0:
        raise EbganError(
            f"val_fraction {val_fraction:g} of the {len(train_idx) + len(val_idx)} images of {where} rounds to no "
            f"image, and the verification threshold is chosen on validation pairs; {VAL_FIX}"
        )
    notes = {
        "train": f"{where} without its validation part ({len(train_idx)} images)"
        + ("; the discriminator trained on all of it" if trained_on_all else ""),
        "validation": f"{val_fraction:g} of {where}"
        + (", which the discriminator trained on too" if trained_on_all else " that training never draws from")
        + f" ({len(val_idx)} images)",
        "test": test_note,
    }
    return EvalData(_subset(data, train_idx), _subset(data, val_idx), test, train_idx, val_idx, test_idx, notes)


def training_part(cfg, data: ImageData | None = None) -> ImageData:
    """The images a contrastive run trains on: its split without the validation (and folder test) part.
    Refuses, before any training, labelled parts the evaluation could not draw its pairs from."""
    parts = evaluation_data(cfg, cfg.val_fraction, data, with_test=False)
    if bool((parts.val.labels >= 0).all()):  # unlabelled (views on a plain folder): no pairs to draw
        ClassIndex(parts.val.labels, "the validation images", VAL_FIX)
        if parts.test_indices is not None:  # a folder's test part (a test split is checked when evaluated)
            ClassIndex(parts.test.labels, "the test images", TEST_FIX)
    return parts.train
