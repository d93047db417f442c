"""Training: the model-agnostic loop (``loop``), the GAN trainer, checkpoints and the run folder."""

from ebgan.train.loop import Stopped, TrainingLoop, pick_device
from ebgan.train.trainer import Trainer

__all__ = ["Stopped", "Trainer", "TrainingLoop", "pick_device"]
