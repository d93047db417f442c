"""Pair drawing, augmentation and the train / validation / test parts: what each part may contain."""

from __future__ import annotations

import hashlib

import pytest
import torch

from ebgan.contrastive.config import ContrastiveConfig
from ebgan.contrastive.data import evaluation_data, training_part
from ebgan.contrastive.pairs import ClassIndex, LabelledPairs, augment, eval_pairs, holdout
from ebgan.data import splits
from ebgan.errors import EbganError


def test_partners_are_of_the_same_class_but_not_the_anchor_or_of_another_class():
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0, 2])
    index = ClassIndex(labels)
    g = torch.Generator().manual_seed(0)
    anchors = torch.randint(0, 12, (4000,), generator=g)
    partners = index.partners(anchors, 2000, g)
    pos_a, pos_p = anchors[:2000], partners[:2000]
    assert (labels[pos_a] == labels[pos_p]).all() and (pos_a != pos_p).all()
    assert (labels[anchors[2000:]] != labels[partners[2000:]]).all()
    # every candidate is drawn: class 1 has images 1, 4, 7; from anchor 4 the positives are 1 and 7
    from_4 = pos_p[pos_a == 4]
    assert set(from_4.tolist()) == {1, 7}
    # negatives of class-0 anchors: the other two classes about equally often (uniform over classes, 1/2 each)
    other = labels[partners[2000:][labels[anchors[2000:]] == 0]]
    share_1 = (other == 1).float().mean().item()
    assert 0.4 < share_1 < 0.6


@pytest.mark.parametrize(
    "labels, message",
    [
        (torch.tensor([-1, -1, -1]), "^the training images are unlabelled"),
        # a folder with images beside its class sub-folders: how many, and where they are
        (torch.tensor([0, 0, -1, 1, 1]), "^1 of the 5 images, those outside the class sub-folders, of the training"),
        (torch.tensor([0, 0, 1]), "2 images or more each"),
        (torch.tensor([0, 0, 0]), "2 classes or more"),
    ],
)
def test_labels_that_cannot_make_pairs_are_refused(labels, message):
    with pytest.raises(EbganError, match=message):
        ClassIndex(labels)


def test_a_labelled_batch_is_balanced_and_its_labels_match_its_images():
    labels = torch.arange(30) % 3
    images = (labels.view(30, 1, 1, 1) * 100).expand(30, 1, 4, 4).to(torch.uint8).contiguous()  # class -> pixel value
    x, same, y = LabelledPairs(images, labels, batch_size=10, seed=0).next()
    assert x.shape == (20, 1, 4, 4) and same.tolist() == [True] * 5 + [False] * 5
    assert torch.equal((y[:10] == y[10:]), same)
    assert torch.equal(x[:, 0, 0, 0], y.float() * 100 / 127.5 - 1)  # the labels are those of the images drawn


def test_holdout_is_a_fixed_partition_by_hash_rank():
    kept, held = holdout(20, 0.25)
    assert len(held) == 5 and sorted(kept.tolist() + held.tolist()) == list(range(20))
    ranked = sorted(range(20), key=lambda i: hashlib.sha256(f"ebgan-contrastive-holdout-v1:{i}".encode()).hexdigest())
    assert held.tolist() == sorted(ranked[:5])
    torch.manual_seed(123)  # no RNG involved
    assert torch.equal(holdout(20, 0.25)[1], held)


def test_augmentation_is_per_image_in_range_and_reproducible():
    x = torch.rand(1, 3, 16, 16).mul(2).sub(1).expand(6, 3, 16, 16).contiguous()  # six copies of one image
    out = augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    assert all(not torch.equal(out[0], out[i]) for i in range(1, 6))  # each copy transformed its own way
    assert torch.equal(out, augment(x, torch.Generator().manual_seed(0)))


def _tiny_cfg(dataset, **kw):
    return ContrastiveConfig(dataset=dataset, image_size=16, val_fraction=0.2, **kw).resolve()


def test_validation_and_test_pairs_never_include_a_training_image(tiny_idx):
    root, spec = tiny_idx(splits={"train": 90, "test": 60}, size=16)
    cfg = _tiny_cfg(spec.name, data_root=str(root))
    data = evaluation_data(cfg, cfg.val_fraction)
    train, val = set(data.train_indices.tolist()), set(data.val_indices.tolist())
    assert not train & val and len(train | val) == 90 and len(val) == 18
    i, j, _ = eval_pairs(data.val.labels, 200, 0, "validation")
    assert not {int(data.val_indices[k]) for k in torch.cat([i, j])} & train
    # the test part is the other official split, which shares no image with the training split
    assert data.test_indices is None and len(data.test) == 60 and not splits.overlaps("test", cfg.data_split)
    # and what training draws from is exactly the training part
    assert torch.equal(training_part(cfg).images, data.train.images)


def test_a_run_on_test_fit_is_tested_on_test_heldout(tiny_idx):
    root, spec = tiny_idx(splits={"test": 100}, size=16)
    cfg = _tiny_cfg(spec.name, data_root=str(root), data_split="test-fit")
    data = evaluation_data(cfg, cfg.val_fraction)
    assert len(data.train) + len(data.val) == 60 and len(data.test) == 40
    assert data.notes["test"].startswith("test-heldout")


def test_an_image_folder_is_cut_into_three_disjoint_parts(tmp_path):
    import numpy as np
    from PIL import Image

    for k in range(2):
        (tmp_path / "imgs" / f"c{k}").mkdir(parents=True)
        for n in range(15):
            Image.fromarray(np.full((16, 16), 40 + 100 * k + n, np.uint8)).save(
                tmp_path / "imgs" / f"c{k}" / f"{n}.png"
            )
    cfg = _tiny_cfg(f"folder:{tmp_path / 'imgs'}", channels=1)
    data = evaluation_data(cfg, cfg.val_fraction)
    parts = [set(t.tolist()) for t in (data.train_indices, data.val_indices, data.test_indices)]
    assert sum(map(len, parts)) == 30 and len(set.union(*parts)) == 30  # disjoint, and all of the folder
    assert len(parts[2]) == 6
