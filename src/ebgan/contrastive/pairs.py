"""Pairs drawn on the fly from a dataset held in memory, with no per-sample Python.

- ``ClassIndex``: the images of each class as one sorted index; draws, for a batch of anchors,
  a partner of the same class (never the anchor itself) or of a uniformly drawn other class.
- ``LabelledPairs``: balanced batches (first half positive, second half negative) whose
  anchors follow a per-epoch permutation (``EpochBatches``).
- ``AugmentedViews``: two augmentations of each image of a batch (self-supervised pairs).
- ``augment``: per-image random resized crop, flip and brightness/contrast (and, in colour,
  greyscale), as one ``affine_grid``/``grid_sample`` on the device. torchvision.transforms.v2
  draws one set of parameters per call, so on a batch it would transform every image alike.
- ``holdout`` divides a training split into the part trained on and the validation part that
  training never draws from; ``eval_pairs`` draws a fixed, seeded, balanced set of pairs.

Every random draw comes from the sampler's own generators, saved in checkpoints.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from ebgan.data import EpochBatches, to_unit_range
from ebgan.errors import EbganError

HOLDOUT = "ebgan-contrastive-holdout-v1"  # salt of the hash ranking below; change it only with a new name
TRAINING_FIX = "use a larger dataset or a smaller --val-fraction"


@lru_cache(maxsize=8)
def _ranking(n: int, salt: str) -> torch.Tensor:
    keys = [hashlib.sha256(f"{salt}:{i}".encode()).hexdigest() for i in range(n)]
    return torch.tensor(sorted(range(n), key=keys.__getitem__), dtype=torch.long)


def holdout(n: int, fraction: float, salt: str = HOLDOUT) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, held out) indices of n images, each sorted: image i is ranked by sha256("<salt>:<i>"),
    the round(n * fraction) lowest ranks are held out. Depends on nothing but n, fraction and salt."""
    ranked = _ranking(n, salt)
    k = round(n * fraction)
    return ranked[k:].sort().values, ranked[:k].sort().values


def unlabelled_share(unlabelled: int, n: int) -> str:
    """ "k of the n " when only some images lack a class: those that lie in the folder itself, outside
    the class sub-folders (a mixed folder reads as unlabelled, which surprises)."""
    return f"{unlabelled} of the {n} images, those outside the class sub-folders, of " if 0 < unlabelled < n else ""


class ClassIndex:
    """Images grouped by class: ``labels`` (N,) int64 in [0, K); every class needs 2 images or more.
    ``what`` names the images and ``fix`` says how to get more of each class, in the error."""

    def __init__(self, labels: torch.Tensor, what: str = "the training images", fix: str = TRAINING_FIX):
        labels = labels.long()
        unlabelled = int((labels < 0).sum())
        if labels.numel() == 0 or unlabelled:
            raise EbganError(
                f"{unlabelled_share(unlabelled, labels.numel())}{what} are unlabelled; pairs of same and different "
                "classes need labels (a folder with one sub-folder per class), or train on --pairs views --loss ntxent"
            )
        self.num_classes = int(labels.max()) + 1
        counts = torch.bincount(labels, minlength=self.num_classes)
        if self.num_classes < 2 or int(counts.min()) < 2:
            raise EbganError(
                f"{what} need 2 classes or more with 2 images or more each (class sizes: {counts.tolist()}); {fix}"
            )
        self.labels = labels
        self.counts = counts
        self.by_class = torch.argsort(labels, stable=True)  # the images of class 0, then of class 1, ...
        self.starts = torch.cumsum(counts, 0) - counts
        self.rank = torch.empty_like(labels)  # each image's position within its class
        self.rank[self.by_class] = (
            torch.arange(labels.numel(), device=labels.device) - self.starts[labels[self.by_class]]
        )

    def to(self, device) -> ClassIndex:
        for name in ("labels", "counts", "by_class", "starts", "rank"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def partners(self, anchors: torch.Tensor, n_pos: int, generator: torch.Generator) -> torch.Tensor:
        """A partner for each anchor: the first ``n_pos`` of the same class (not the anchor), the rest
        of a uniformly drawn other class; uniform within the class. Draws on the CPU ``generator``."""
        n = anchors.numel()
        device = self.labels.device
        u = torch.rand(n, generator=generator, dtype=torch.float64).to(device)
        shift = torch.randint(1, self.num_classes, (n,), generator=generator).to(device)
        y = self.labels[anchors]
        cls = torch.where(torch.arange(n, device=device) < n_pos, y, (y + shift) % self.num_classes)
        size = self.counts[cls]
        same = torch.arange(n, device=device) < n_pos
        # same class: one of the size - 1 others, skipping the anchor's own rank
        r = (u * torch.where(same, size - 1, size)).long()
        r = torch.minimum(r, torch.where(same, size - 2, size - 1))  # u < 1, but guard the float product
        r = r + (same & (r >= self.rank[anchors])).long()
        return self.by_class[self.starts[cls] + r]


class LabelledPairs:
    """Balanced labelled pairs: ``next()`` -> (x, same, labels)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int):
        self.images = images
        self.index = ClassIndex(labels).to(images.device)
        self.anchors = EpochBatches(images, batch_size, seed=seed)
        self.generator = torch.Generator().manual_seed(seed + 1)  # CPU: the same pairs on any device
        self.n_pos = batch_size // 2
        self.same = torch.arange(batch_size, device=images.device) < self.n_pos

    def next(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        i = self.anchors.next_indices()
        ij = torch.cat([i, self.index.partners(i, self.n_pos, self.generator)])
        return to_unit_range(self.images[ij]), self.same, self.index.labels[ij]

    def state_dict(self) -> dict:
        return {"anchors": self.anchors.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.anchors.load_state_dict(state["anchors"])
        self.generator.set_state(state["generator"])


class AugmentedViews:
    """Two augmented views of each image of a batch: ``next()`` -> (views, None, None)."""

    def __init__(self, images: torch.Tensor, batch_size: int, seed: int, flip: bool = True):
        self.batches = EpochBatches(images, batch_size, seed=seed)
        self.generator = torch.Generator(device=images.device).manual_seed(seed + 1)
        self.flip = flip

    def next(self) -> tuple[torch.Tensor, None, None]:
        x = self.batches.next()
        return torch.cat([augment(x, self.generator, self.flip), augment(x, self.generator, self.flip)]), None, None

    def state_dict(self) -> dict:
        return {"anchors": self.batches.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.batches.load_state_dict(state["anchors"])
        self.generator.set_state(state["generator"])


def augment(x: torch.Tensor, generator: torch.Generator, flip: bool = True) -> torch.Tensor:
    """Per-image random augmentation of images in [-1, 1] (N, C, H, W), drawn from ``generator``
    (on x's device): a crop of 35-100% of the area at aspect 3/4..4/3 resized back, a horizontal
    flip (p = 1/2, if ``flip``), contrast x0.6..1.4 and brightness +-0.2 (of the [0, 1] range)
    and, for colour images, greyscale with p = 0.2."""
    n, c = x.shape[:2]
    r = torch.rand(n, 8, generator=generator, device=x.device)
    area = 0.35 + 0.65 * r[:, 0]
    ratio = torch.exp((2 * r[:, 1] - 1) * math.log(4 / 3))
    sx, sy = (area * ratio).sqrt().clamp(max=1), (area / ratio).sqrt().clamp(max=1)
    tx, ty = (2 * r[:, 2] - 1) * (1 - sx), (2 * r[:, 3] - 1) * (1 - sy)
    mirror = torch.where(r[:, 4] < 0.5, -1.0, 1.0) if flip else torch.ones_like(sx)
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx * mirror, zero, tx], 1), torch.stack([zero, sy, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # in [0, 1], so that the area outside the image is black, as the datasets' backgrounds are
    out = F.grid_sample((x + 1) / 2, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    mean = out.mean((1, 2, 3), keepdim=True)
    contrast = (0.6 + 0.8 * r[:, 5]).view(n, 1, 1, 1)
    brightness = (0.4 * r[:, 6] - 0.2).view(n, 1, 1, 1)
    out = ((out - mean) * contrast + mean + brightness).clamp(0, 1)
    if c == 3:
        grey = (out * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        out = torch.where((r[:, 7] < 0.2).view(n, 1, 1, 1), grey.expand_as(out), out)
    return out * 2 - 1


def eval_pairs(
    labels: torch.Tensor, n_pairs: int, seed: int, what: str, fix: str = TRAINING_FIX
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fixed balanced set of pairs over images with ``labels``: (i, j, same), indices into them.
    Anchors are uniform (with replacement), half get a same-class partner, half another class's."""
    index = ClassIndex(labels.cpu(), what, fix)
    g = torch.Generator().manual_seed(seed)
    anchors = torch.randint(0, labels.numel(), (n_pairs,), generator=g)
    n_pos = n_pairs // 2
    partners = index.partners(anchors, n_pos, g)
    return anchors, partners, torch.arange(n_pairs) < n_pos
