"""ebgan: energy-based GANs exactly as Zhao, Mathieu & LeCun (ICLR 2017) define them.

from ebgan import Config, Trainer, load_training_data, load_generator, sample_images
cfg = Config(dataset="fashion-mnist", steps=500).resolve()
trainer = Trainer(cfg, load_training_data(cfg), run_dir="runs/x")
trainer.train()
images = sample_images(trainer.G, 64)          # float in [-1, 1]
"""

from ebgan.config import Config
from ebgan.data import load_images, load_training_data, to_uint8, to_unit_range
from ebgan.errors import EbganError
from ebgan.generator_io import export_generator, load_generator, sample_images
from ebgan.nets import build_discriminator, build_generator
from ebgan.objectives import EBGAN, build_objective, pull_away, reconstruction_energy
from ebgan.train import Trainer


def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ebgan")  # pyproject.toml's, the one place it is written
    except PackageNotFoundError:
        return "0+unknown"  # imported from a source tree that was never installed


__version__ = _installed_version()

__all__ = [
    "EBGAN",
    "Config",
    "EbganError",
    "Trainer",
    "build_discriminator",
    "build_generator",
    "build_objective",
    "export_generator",
    "load_generator",
    "load_images",
    "load_training_data",
    "pull_away",
    "reconstruction_energy",
    "sample_images",
    "to_uint8",
    "to_unit_range",
]
