"""Datasets in memory: the dataset registry, the data splits, MNIST-family IDX files, image
folders, and batch sampling."""

from ebgan.data.idx import read_idx
from ebgan.data.memory import EpochBatches
from ebgan.data.registry import DatasetSpec, dataset_spec, register_dataset, registered_datasets
from ebgan.data.sources import (
    ImageData,
    candidate_roots,
    fit_images,
    load_images,
    read_image,
    to_uint8,
    to_unit_range,
)
from ebgan.data.splits import SPLITS, check_split

__all__ = [
    "SPLITS",
    "DatasetSpec",
    "EpochBatches",
    "ImageData",
    "candidate_roots",
    "check_split",
    "dataset_spec",
    "fit_images",
    "load_images",
    "read_idx",
    "read_image",
    "load_training_data",
    "register_dataset",
    "registered_datasets",
    "to_uint8",
    "to_unit_range",
    "training_data_key",
]


def training_data_key(cfg) -> tuple:
    """What ``load_training_data``'s result depends on: runs whose configs share this key may share
    one loaded copy (a toy's points are drawn with the run's seed, so there the seed is part of it)."""
    from ebgan.data.toy import is_toy

    seed = cfg.seed if is_toy(cfg.dataset) else None
    return (cfg.dataset, cfg.data_split, cfg.image_size, cfg.fit, cfg.channels, cfg.data_root, seed)


def load_training_data(cfg):
    """The training set a resolved Config names, as one tensor: uint8 (N, C, H, W) images,
    or float32 (N, 2) points for the toy:NAME manifolds (drawn with the config's seed)."""
    from ebgan.data.toy import is_toy, make_toy

    if is_toy(cfg.dataset):
        return make_toy(cfg.dataset, seed=cfg.seed)
    data = load_images(
        cfg.dataset,
        split=cfg.data_split,
        data_root=cfg.data_root,
        image_size=cfg.image_size,
        fit=cfg.fit,
        channels=cfg.channels,
    )
    return data.images
