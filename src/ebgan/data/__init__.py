"""Datasets in memory: MNIST-family IDX files, image folders, and batch sampling."""

from ebgan.data.idx import read_idx
from ebgan.data.memory import EpochBatches
from ebgan.data.sources import (
    IDX_DATASETS,
    ImageData,
    candidate_roots,
    fit_images,
    load_images,
    read_image,
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
    "read_image",
    "load_training_data",
    "to_uint8",
    "to_unit_range",
]


def load_training_data(cfg):
    """The training set a resolved Config names, as one tensor: uint8 (N, C, H, W) images,
    or float32 (N, 2) points for the toy:NAME manifolds (drawn with the config's seed)."""
    from ebgan.data.toy import is_toy, make_toy

    if is_toy(cfg.dataset):
        return make_toy(cfg.dataset, seed=cfg.seed)
    data = load_images(
        cfg.dataset, split=cfg.data_split, data_root=cfg.data_root,
        image_size=cfg.image_size, fit=cfg.fit, channels=cfg.channels,
    )
    return data.images
