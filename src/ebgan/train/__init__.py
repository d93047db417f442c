"""Training: the objective-agnostic loop, checkpoints and the run folder."""

from ebgan.train.trainer import Stopped, Trainer, pick_device

__all__ = ["Stopped", "Trainer", "pick_device"]
