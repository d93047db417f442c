"""Contrastive pair learning (``ebgan contrastive``): a siamese energy model E(x1, x2), the distance
between two embeddings, pushed down on compatible pairs and up, to a margin, on incompatible ones
(Chopra, Hadsell & LeCun 2005; Hadsell, Chopra & LeCun 2006), or trained with BCE on a scaled
cosine, or self-supervised with SimCLR's NT-Xent on augmented views.

    from ebgan.contrastive import ContrastiveConfig, ContrastiveTrainer, training_part
    cfg = ContrastiveConfig(dataset="fashion-mnist", loss="margin", steps=500).resolve()
    ContrastiveTrainer(cfg, training_part(cfg), run_dir="runs/c").train()
    from ebgan.contrastive import contrastive_source, evaluate_source
    print(evaluate_source(contrastive_source("runs/c", "cpu"), "cpu"))
"""

from ebgan.contrastive.config import ContrastiveConfig
from ebgan.contrastive.data import evaluation_data, training_part
from ebgan.contrastive.encoders import Conv4Encoder, SmallEncoder, build_encoder
from ebgan.contrastive.evaluate import contrastive_source, ebgan_source, evaluate, evaluate_source, format_result
from ebgan.contrastive.losses import CosineBCE, MarginLoss, NTXent, bce_floor, build_loss
from ebgan.contrastive.trainer import ContrastiveTrainer, load_encoder

__all__ = [
    "ContrastiveConfig",
    "ContrastiveTrainer",
    "Conv4Encoder",
    "CosineBCE",
    "MarginLoss",
    "NTXent",
    "SmallEncoder",
    "bce_floor",
    "build_encoder",
    "build_loss",
    "contrastive_source",
    "ebgan_source",
    "evaluate",
    "evaluate_source",
    "evaluation_data",
    "format_result",
    "load_encoder",
    "training_part",
]
