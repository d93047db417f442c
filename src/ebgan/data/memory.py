"""Batches drawn by index from a dataset held as one tensor on the training device.

No DataLoader, no per-sample Python: a batch is one ``index_select`` of the uint8 images
and one conversion to [-1, 1]. A dataset too large for the GPU (``place_images``) stays in
host memory (a memory-mapped decoded cache, ``ebgan.data.decoded``): each batch is then
gathered on the host into pinned memory and copied with ``non_blocking=True``, so the copy
overlaps the previous step's GPU work. The order is a fresh permutation each epoch from the
sampler's own generator, so its state (generator, permutation, position) is all a
checkpoint needs for an exact resume.
"""

from __future__ import annotations

import torch

from ebgan.data.sources import to_unit_range
from ebgan.errors import EbganError

DEVICE_SHARE = 0.5  # the dataset goes on the GPU when it takes at most this share of its free memory


def fits_on_device(nbytes: int, free_bytes: int, share: float = DEVICE_SHARE) -> bool:
    """Whether a dataset of ``nbytes`` leaves room for training in ``free_bytes`` of device memory."""
    return nbytes <= share * free_bytes


def place_images(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The images on ``device`` when they fit there (always on the CPU), else left on the host."""
    if device.type != "cuda":
        return images.to(device)
    free, _total = torch.cuda.mem_get_info(device)
    if fits_on_device(images.numel() * images.element_size(), free):
        return images.to(device)
    return images  # host-resident: EpochBatches copies each batch through pinned memory


class EpochBatches:
    """Endless batches over epochs; the last incomplete batch of an epoch is dropped."""

    def __init__(
        self,
        images: torch.Tensor,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str | None = None,
    ):
        """``batch_size`` is the global batch; with ``world_size`` > 1, ``next`` returns rank ``rank``'s
        slice of it (the permutation, from ``seed``, is the same on every rank). ``device``: where
        batches are used, when the images stay elsewhere (see ``place_images``); default: theirs."""
        if batch_size > images.shape[0]:
            raise ValueError(f"batch size {batch_size} exceeds the dataset's {images.shape[0]} samples")
        self.images = images
        self.device = torch.device(device) if device is not None else images.device
        self.batch_size = batch_size
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator().manual_seed(seed)  # CPU: same order on any device
        self.epoch = 0
        self.position = 0
        self.order = self._permutation()

    @property
    def batches_per_epoch(self) -> int:
        return self.images.shape[0] // self.batch_size

    def _permutation(self) -> torch.Tensor:
        return torch.randperm(self.images.shape[0], generator=self.generator).to(self.images.device)

    def next_indices(self) -> torch.Tensor:
        """Indices of the next batch; True in ``epoch_ended`` after the last batch of an epoch."""
        if self.position + self.batch_size > self.order.shape[0]:
            self.epoch += 1
            self.position = 0
            self.order = self._permutation()
        idx = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return idx

    @property
    def epoch_ended(self) -> bool:
        return self.position + self.batch_size > self.order.shape[0]

    def next(self) -> torch.Tensor:
        """The next batch as float in [-1, 1] (uint8 storage) or as stored (float storage)."""
        idx = self.next_indices()
        if self.world_size > 1:
            n = self.batch_size // self.world_size
            idx = idx[self.rank * n : (self.rank + 1) * n]
        batch = self.images.index_select(0, idx)
        if batch.device != self.device:  # host-resident data: gather, pin, copy without waiting
            if self.device.type == "cuda":
                batch = batch.pin_memory()
            batch = batch.to(self.device, non_blocking=True)
        return to_unit_range(batch) if batch.dtype == torch.uint8 else batch

    def state_dict(self) -> dict:
        return {
            "generator": self.generator.get_state(),
            "epoch": self.epoch,
            "position": self.position,
            "order": self.order.cpu(),
        }

    def load_state_dict(self, state: dict) -> None:
        saved, now = state["order"].shape[0], self.images.shape[0]
        if saved != now:  # its indices would point past the data, or skip the new images
            raise EbganError(
                f"the checkpoint's data order covers {saved} samples but the training data now has {now}: "
                "the dataset changed since the run started (images added or removed?); restore it, "
                "or start a new run with --out"
            )
        self.generator.set_state(state["generator"])
        self.epoch = state["epoch"]
        self.position = state["position"]
        self.order = state["order"].to(self.images.device)
