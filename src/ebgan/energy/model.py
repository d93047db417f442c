"""A run's discriminator as an energy function: low on the data, high off it.

    from ebgan.energy import load_energy_model
    model = load_energy_model("runs/fmnist")          # D from checkpoint.pt, BN statistics recomputed
    e = model.energies(images)                        # uint8 or [-1, 1] float (N, C, H, W), or (N, 2) points

The energy is the run's objective's own ``energy`` (for EBGAN the paper's
||Dec(Enc(x)) - x||, eq. 13), computed with D in eval mode: BatchNorm uses its running
statistics, so a sample's energy does not depend on the rest of its batch. The running
statistics a run saves trail its last weights, so by default (``bn_stats="train"``, in
Python and the CLI alike) they are recomputed on the run's training data for the final
weights (``EnergyModel.recalibrate``); ``bn_stats="saved"`` keeps the checkpoint's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from ebgan.config import Config
from ebgan.errors import EbganError
from ebgan.nets.layers import batchnorm_layers
from ebgan.objectives import Objective, build_objective
from ebgan.train.checkpoint import load_checkpoint, load_module_state
from ebgan.train.run_dir import CHECKPOINT


@dataclass
class EnergyModel:
    D: nn.Module
    objective: Objective
    cfg: Config
    input_shape: tuple[int, ...]  # (C, H, W) for images, (2,) for toy points
    step: int
    device: torch.device

    @property
    def is_toy(self) -> bool:
        return len(self.input_shape) == 1

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Check the shape and bring uint8 images to [-1, 1]; floats are taken as they are."""
        x = torch.as_tensor(x)
        if tuple(x.shape[1:]) != self.input_shape:
            what = "points" if self.is_toy else "images"
            raise EbganError(
                f"the run's discriminator takes {what} of shape {self.input_shape}, got {tuple(x.shape[1:])}"
                + ("" if self.is_toy else "; fit them to the run's size first (ebgan energy score --fit pad|resize)")
            )
        if x.dtype == torch.uint8:
            return x.float().div(127.5).sub(1.0)
        return x.float()

    def recalibrate(self, data_root=None) -> int:
        """Recompute D's BatchNorm statistics on the run's training data; returns batches used."""
        from ebgan.data import load_training_data

        try:
            data = load_training_data(self.cfg.updated(data_root=data_root or self.cfg.data_root))
        except EbganError as e:
            raise EbganError(
                f"{e}\n(needed to recompute D's BatchNorm statistics; pass the data root, "
                "or bn_stats 'saved' (--bn-stats saved) to use the checkpoint's)"
            ) from e
        return recalibrate_batchnorm(self.D, data, self.cfg.batch_size)

    @torch.no_grad()
    def energies(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Per-sample energies (N,) as float32 on the CPU."""
        x = self.prepare(x)
        if x.shape[0] == 0:
            return torch.zeros(0)
        was_training = self.D.training
        self.D.eval()
        out = [
            self.objective.energy(self.D, x[i : i + batch_size].to(self.device)).float().cpu()
            for i in range(0, x.shape[0], batch_size)
        ]
        self.D.train(was_training)
        return torch.cat(out)


def model_from_modules(D: nn.Module, objective: Objective, cfg: Config, input_shape, step: int = 0) -> EnergyModel:
    """An EnergyModel around networks in memory (e.g. a Trainer's), without a run folder."""
    device = next(D.parameters()).device
    return EnergyModel(D, objective, cfg, tuple(input_shape), step, device)


def input_shape_of(cfg: Config) -> tuple[int, ...]:
    from ebgan.data.registry import dataset_spec

    spec = dataset_spec(cfg.dataset)
    if spec.loader == "toy":
        return (2,)
    # the config's channels, else the dataset's; image folders load as RGB unless channels is set
    return (cfg.channels or spec.channels or 3, cfg.image_size, cfg.image_size)


def load_energy_model(
    run: str | Path, device: str | torch.device = "cpu", bn_stats: str = "train", data_root=None
) -> EnergyModel:
    """D and the objective of a run folder (from its checkpoint.pt), ready to score.

    ``bn_stats``: 'train' recomputes D's BatchNorm statistics on the run's training data
    (found through ``data_root`` or the usual discovery); 'saved' keeps the checkpoint's.
    """
    if bn_stats not in ("train", "saved"):
        raise EbganError(f"bn_stats must be 'train' or 'saved', got {bn_stats!r}")
    from ebgan.nets import build_discriminator

    folder = Path(run)
    if not folder.is_dir():
        raise EbganError(f"run folder {folder} does not exist; pass a folder written by 'ebgan train'")
    from ebgan.contrastive.trainer import ENCODER_JSON

    if (folder / ENCODER_JSON).is_file():
        raise EbganError(
            f"{folder} is a contrastive run (a siamese encoder, no discriminator); its pair energy is "
            f"evaluated by: ebgan contrastive eval --run {folder}"
        )
    state = load_checkpoint(folder / CHECKPOINT)
    cfg = Config.from_dict(state["config"], str(folder / CHECKPOINT), saved=True)
    objective = build_objective(cfg)
    objective.load_state_dict(state.get("objective", {}))
    input_shape = input_shape_of(cfg)
    D = build_discriminator(cfg.model, objective.discriminator_kind, input_shape, cfg.model_args)
    load_module_state(D, state["D"], "discriminator", folder / CHECKPOINT)
    device = torch.device(device)
    D = D.to(device).eval()
    model = EnergyModel(D, objective, cfg, input_shape, int(state.get("step", 0)), device)
    try:  # an objective without an energy fails here, not at the first score
        model.energies(torch.zeros(2, *input_shape))
    except NotImplementedError as e:
        raise EbganError(f"objective {cfg.objective!r} of {folder} defines no energy to score with") from e
    if bn_stats == "train":
        model.recalibrate(data_root)
    return model


def energies(run_or_model, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Energies of a tensor under a run folder (path) or a loaded EnergyModel."""
    model = run_or_model if isinstance(run_or_model, EnergyModel) else load_energy_model(run_or_model)
    return model.energies(x, batch_size)


@torch.no_grad()
def recalibrate_batchnorm(
    D: nn.Module, data: torch.Tensor, batch_size: int, max_batches: int = 200, seed: int = 0
) -> int:
    """Recompute D's BatchNorm running statistics on real data for its final weights ("precise BN").

    During training the running averages (momentum 0.1) trail weights that keep moving, and
    for an EBGAN they mix real and generated batches; eval-mode energies then swing from one
    step to the next. Here each BN layer gets the plain average of the batch statistics over
    up to ``max_batches`` batches of ``batch_size`` real samples (in a fixed order from
    ``seed``). Only the BN layers run in train mode: dropout and every other layer stay in
    eval mode, as they are when the energies are computed, so the statistics match what BN
    then sees. Every RNG (torch's CPU generator, CUDA's when available) is left as it was,
    and every module's train/eval mode is restored. Returns the number of batches used.
    """
    norms = batchnorm_layers(D)
    if not norms:
        return 0
    if data.shape[0] < batch_size:
        raise EbganError(f"BatchNorm recalibration needs at least {batch_size} samples, got {data.shape[0]}")
    device = next(D.parameters()).device
    modes = [(m, m.training) for m in D.modules()]
    saved = [(m, m.momentum) for m in norms]
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        # A hook recalibrating a copy of D mid-training must not move the run's random streams.
        with torch.random.fork_rng(devices=cuda):
            D.eval()
            for m in norms:
                m.reset_running_stats()
                m.momentum = None  # None: cumulative average over the batches below
                m.train()
            order = torch.randperm(data.shape[0], generator=torch.Generator().manual_seed(seed))
            n_batches = min(max_batches, data.shape[0] // batch_size)
            for i in range(n_batches):
                batch = data[order[i * batch_size : (i + 1) * batch_size]].to(device)
                D(batch.float().div(127.5).sub(1.0) if batch.dtype == torch.uint8 else batch.float())
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        for module, training in modes:
            module.training = training
    return n_batches
