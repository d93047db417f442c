"""Datasets in memory: MNIST-family IDX files, image folders, and batch sampling."""

from ebgan.data.idx import read_idx
from ebgan.data.memory import EpochBatches
from ebgan.data.sources import (
    IDX_DATASETS,
    ImageData,
    candidate_roots,
    fit_images,
    load_images,
    to_uint8,
    to_unit_range,
)

__all__ = [
    "IDX_DATASETS",
    "EpochBatches",
    "ImageData",
    "candidate_roots",
    "fit_images",
    "load_images",
    "read_idx",
    "load_training_data",
    "to_uint8",
    "to_unit_range",
]


def load_training_data(cfg):
    """The training set a resolved Config names, as one tensor: uint8 (N, C, H, W) images."""
    data = load_images(
        cfg.dataset, split=cfg.data_split, data_root=cfg.data_root,
        image_size=cfg.image_size, fit=cfg.fit, channels=cfg.channels,
    )
    return data.images
