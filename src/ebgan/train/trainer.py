"""The GAN trainer: networks, optimizers and one iteration of any objective (see
``ebgan.objectives.base`` for the step order) on the loop of ``ebgan.train.loop``."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import torch
import torch.nn as nn

from ebgan.config import Config
from ebgan.data import EpochBatches
from ebgan.data.memory import place_images
from ebgan.distributed import convert_sync_batchnorm
from ebgan.errors import EbganError
from ebgan.generator_io import export_generator
from ebgan.nets import build_discriminator, build_generator, check_networks, sample_latent
from ebgan.nets.layers import batchnorm_layers
from ebgan.objectives import build_objective
from ebgan.train.checkpoint import load_module_state
from ebgan.train.ema import EMA
from ebgan.train.loop import Diverged, Divergence, Stopped, TrainingLoop, pick_device

__all__ = ["Diverged", "Divergence", "Stopped", "Trainer", "pick_device"]  # the loop's names, where they were


def make_optimizer(kind: str, net: nn.Module, lr: float, cfg: Config, device: torch.device) -> torch.optim.Optimizer:
    """Adam with the config's betas, or plain SGD (the paper's MNIST grid searches over both)."""
    # Fused: one kernel for all parameters (CPU and CUDA; about 3% of a seed32 step on CPU).
    fused = device.type in ("cpu", "cuda")
    if kind == "sgd":
        return torch.optim.SGD(net.parameters(), lr=lr, fused=fused)
    return torch.optim.Adam(net.parameters(), lr=lr, betas=(cfg.beta1, cfg.beta2), fused=fused)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX). Without it, bf16 autocast is
    emulated and slower than float32. torch's probes are private: any failure reads as no."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except Exception:
        return False


def amp_dtype(amp: bool, name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype in force: None without --amp. 'auto' is fp16 (with a gradient scaler) on
    CUDA, where fp16 runs on every GPU with tensor cores and bf16 only from Ampere on; bf16 on a CPU
    that computes it natively; float32 (None) on any other CPU, where autocast would slow it down."""
    if not amp:
        return None
    if name == "auto":
        if device.type == "cuda":
            name = "fp16"
        elif cpu_has_native_bf16():
            name = "bf16"
        else:
            return None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[name]


class Trainer(TrainingLoop):
    """Builds networks, optimizers and objective from a resolved Config and trains them.

    ``data`` is the training set as one tensor: uint8 images (N, C, H, W) or float
    vectors (N, D) for the 2-D toys. ``run_dir=None`` trains without writing anything.
    """

    DIVERGENCE_KEYS = ("loss_d", "loss_g")
    SHOWN = ("loss_d", "loss_g", "energy_real", "energy_fake", "hinge_active", "images_per_s")
    STATE_KEYS = ("G", "D", "opt_g", "opt_d", "objective", "batches", "noise")
    DISTRIBUTED = True  # torchrun: G and D in DDP (ebgan.distributed)

    def __init__(self, cfg: Config, data: torch.Tensor, run_dir: Path | None = None, resume: bool = False):
        super().__init__(cfg, run_dir)  # device, run writer, seed, step 0, hooks, signals, divergence watch
        self.image_shape = tuple(data.shape[1:])
        self.objective = build_objective(cfg)
        self.prepare_seconds = 0.0  # the objective's pretraining (before step 0 of a fresh run)
        self.G = build_generator(cfg.model, cfg.latent_dim, self.image_shape, cfg.model_args, cfg.latent)
        self.G = self.G.to(self.device)
        self.D = build_discriminator(cfg.model, self.objective.discriminator_kind, self.image_shape, cfg.model_args)
        self.D = self.D.to(self.device)
        check_networks(cfg.model, self.G, self.D, self.objective.discriminator_kind, self.image_shape)
        self.local_batch = self.dist.check_batch(cfg.batch_size)
        if cfg.sync_bn and self.dist.active:
            self.G = convert_sync_batchnorm(self.G, self.device)
            self.D = convert_sync_batchnorm(self.D, self.device)
        elif cfg.sync_bn and self.is_main:
            print("ebgan: note: --sync-bn has no effect in one process (it acts under torchrun)")
        if self.local_batch < 2 and batchnorm_layers(self.G, self.D):
            raise EbganError(
                f"model {cfg.model!r} has BatchNorm, which needs batches of 2 or more per process; "
                f"use --batch-size {2 * self.dist.world_size} or more"
            )
        if cfg.batch_size > data.shape[0]:
            raise EbganError(
                f"batch_size {cfg.batch_size} exceeds the {data.shape[0]} training samples; "
                f"use --batch-size {data.shape[0]} or less"
            )
        self.opt_g = make_optimizer(cfg.optim_g, self.G, cfg.lr_g, cfg, self.device)
        self.opt_d = make_optimizer(cfg.optim_d, self.D, cfg.lr_d, cfg, self.device)
        self.batches = EpochBatches(
            place_images(data, self.device),
            cfg.batch_size,
            seed=cfg.seed,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            device=self.device,
        )
        self.noise = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.fixed_z = sample_latent(64, cfg.latent_dim, cfg.latent, torch.Generator().manual_seed(cfg.seed + 2))
        self.ema = EMA(self.G, cfg.ema_decay, cfg.ema_start) if cfg.ema_decay > 0 else None
        self.amp_dtype = amp_dtype(cfg.amp, cfg.amp_dtype, self.device)
        if cfg.amp and self.amp_dtype is None and self.is_main:
            print(
                "ebgan: note: --amp (amp_dtype auto) trains in float32 here: this CPU has no native bf16 "
                "(AVX512-BF16 or AMX), where bf16 autocast is slower; --amp-dtype bf16 forces it"
            )
        # fp16 needs loss scaling (its gradients underflow); one scaler per optimizer, since D may step
        # n_critic times per G step and a scaler steps each optimizer at most once per update
        fp16 = self.amp_dtype == torch.float16
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self._lr_factor = 1.0  # the objective's learning-rate factor in force (restored with the optimizers)
        self.objective.dist = self.dist  # batch-wide terms (pull-away, k_t) over the global batch
        # The hot path's views: DDP-wrapped (under torchrun) and compiled; checkpoints use the
        # plain modules. The G step calls D unwrapped: D takes no gradient there, and a DDP
        # module whose parameters get none would wait for them forever.
        self.G_run = self._compiled(self.dist.wrap(self.G, self.device))
        self.D_run = self._compiled(self.dist.wrap(self.D, self.device))
        self.D_frozen = self._compiled(self.D) if self.dist.active else self.D_run
        self.open_run(resume)

    def _compiled(self, module: nn.Module) -> nn.Module:
        return torch.compile(module) if self.cfg.compile else module  # type: ignore[return-value]

    # ------------------------------------------------------------------ state
    def model_state(self) -> dict:
        return {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "objective": self.objective.state_dict(),
            "batches": self.batches.state_dict(),
            "noise": self.noise.get_state(),
            **({"G_ema": self.ema.state_dict()} if self.ema else {}),
            **(self._scaler_state() if self._scaling else {}),
            "precision": self.precision,
        }

    @property
    def precision(self) -> str:
        """The arithmetic the steps run in: "float32" or the autocast dtype ("bfloat16", "float16")."""
        return "float32" if self.amp_dtype is None else str(self.amp_dtype).removeprefix("torch.")

    @property
    def _scaling(self) -> bool:
        return self.scaler_d.is_enabled()

    def _scaler_state(self) -> dict:
        return {"scaler_d": self.scaler_d.state_dict(), "scaler_g": self.scaler_g.state_dict()}

    def load_model_state(self, state: dict, path: Path) -> None:
        load_module_state(self.G, state["G"], "generator", path)
        load_module_state(self.D, state["D"], "discriminator", path)
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.objective.load_state_dict(state["objective"])
        trained_in = state.get("precision", self.precision)  # older checkpoints do not say
        if trained_in != self.precision and self.is_main:
            # only amp_dtype auto gets here (a changed amp or amp_dtype is refused as another config):
            # it resolves per machine, e.g. bf16 on a CPU with AVX512-BF16 and float32 on one without
            print(
                f"ebgan: note: {path} was trained in {trained_in}; amp_dtype auto means {self.precision} on "
                "this machine, so the run continues in it and will not be bit-identical to an uninterrupted run"
            )
        self._lr_factor = self.objective.lr_factor  # the optimizers' state holds the scaled rates
        self.batches.load_state_dict(state["batches"])
        self.noise.set_state(state["noise"])
        if self.ema is not None:
            if "G_ema" not in state:
                raise EbganError(f"{path} holds no EMA generator (G_ema); it was written with ema_decay 0")
            load_module_state(self.ema.model, state["G_ema"], "EMA generator", path)
        if self._scaling:
            if "scaler_d" not in state:
                raise EbganError(
                    f"{path} holds no gradient-scaler state: it was written without fp16 autocast; resume it "
                    "with the precision it was trained with (--amp-dtype bf16, or --no-amp)"
                )
            self.scaler_d.load_state_dict(state["scaler_d"])
            self.scaler_g.load_state_dict(state["scaler_g"])

    @property
    def sampling_generator(self) -> nn.Module:
        """The generator that samples, grids, evaluation and export use: the EMA one when on."""
        return self.ema.model if self.ema is not None else self.G

    @property
    def generator_kind(self) -> str:
        if self.ema is None:
            return "raw"
        kind = f"ema (decay {self.cfg.ema_decay:g}, from step {self.cfg.ema_start}"
        # before its first averaging step the EMA is a plain copy of G: say so rather than call it an average
        return kind + ("; so far a copy of the raw generator)" if self.step < self.cfg.ema_start else ")")

    def export(self) -> None:
        export_generator(
            self.sampling_generator,
            self.writer.folder,
            self.cfg.model,
            self.cfg.model_args,
            extra={
                "dataset": self.cfg.dataset,
                "objective": self.cfg.objective,
                "step": self.step,
                "generator": self.generator_kind,
            },
        )

    # ------------------------------------------------------------------ one iteration
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    @staticmethod
    def _optimise(loss: torch.Tensor, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
        """backward and step, through the gradient scaler (a plain backward and step when it is off)."""
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def sample_z(self, n: int) -> torch.Tensor:
        return sample_latent(n, self.cfg.latent_dim, self.cfg.latent, self.noise, self.device)

    def batch_z(self) -> torch.Tensor:
        """This process's slice of the global batch's z (the same global z at any process count)."""
        return self.dist.shard(self.sample_z(self.cfg.batch_size))

    def train_step(self) -> dict[str, torch.Tensor]:
        obj, metrics = self.objective, {}
        self.D.requires_grad_(True)
        for k in range(obj.d_steps):
            real = self.batches.next()
            keep_graph = k == obj.d_steps - 1  # only the last G(z) is reused by the G step
            fake = None
            if obj.trains_generator:
                with torch.set_grad_enabled(keep_graph), self._autocast():
                    fake = self.G_run(self.batch_z())
            with self._autocast():
                loss_d, m = obj.discriminator_loss(self.D_run, real, None if fake is None else fake.detach())
            self._optimise(loss_d, self.opt_d, self.scaler_d)
            metrics.update(m)
            if self.batches.epoch_ended:
                obj.end_epoch(self.batches.epoch)
        if fake is not None:
            self.D.requires_grad_(False)  # the G step needs gradients through D, not for D
            with self._autocast():
                loss_g, m = obj.generator_loss(self.D_frozen, fake)
            self._optimise(loss_g, self.opt_g, self.scaler_g)
            self.D.requires_grad_(True)
            metrics.update(m)
        self.step += 1
        if self.ema is not None:
            self.ema.update(self.G, self.step)
        obj.end_step(self.step)
        if obj.lr_factor != self._lr_factor:
            self._set_lr_factor(obj.lr_factor)
        return metrics

    def _set_lr_factor(self, factor: float) -> None:
        for opt, lr in ((self.opt_g, self.cfg.lr_g), (self.opt_d, self.cfg.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * factor
        self._lr_factor = factor

    # ------------------------------------------------------------------ the loop's hooks
    def fixed_samples(self) -> torch.Tensor:
        G = self.sampling_generator
        was_training = G.training
        G.eval()
        with torch.no_grad():
            images = G(self.fixed_z.to(self.device)).float().cpu()
        G.train(was_training)
        return images

    def before_training(self) -> None:
        t0 = time.perf_counter()
        self.objective.prepare(self)
        self.prepare_seconds = time.perf_counter() - t0  # pretraining's share, for estimates
        self.dist.broadcast(self.D, self.objective)  # pretraining ran on each rank: keep rank 0's

    def _nets(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D, **({"G_ema": self.ema.model} if self.ema is not None else {})}

    def _floating_buffers(self) -> dict[str, torch.Tensor]:
        return {
            f"{n}.{k}": b for n, net in self._nets().items() for k, b in net.named_buffers() if b.is_floating_point()
        }

    def sync_state(self) -> dict:
        # Without --sync-bn each rank's BatchNorm statistics follow its slice: checkpoints, exports, grids
        # and evaluations use their mean.
        if not self.dist.active:
            return {}
        buffers = self._floating_buffers()
        own = {k: b.detach().cpu().clone() for k, b in buffers.items()}
        self.dist.average_buffers(*self._nets().values())
        return own

    def restore_own_state(self, own: dict) -> None:
        with torch.no_grad():
            for k, b in self._floating_buffers().items():
                b.copy_(own[k])

    def _grid_due(self) -> bool:
        return bool(self.cfg.sample_every) and self.step % self.cfg.sample_every == 0

    def looks_at_networks(self) -> bool:
        return self._grid_due() or super().looks_at_networks()

    def after_step(self) -> None:
        if self._grid_due():
            self._divergence.check(self)
            if self.is_main:
                self.writer.save_grid(self.fixed_samples(), self.step)

    def after_training(self) -> None:
        if self.is_main:
            self.writer.save_grid(self.fixed_samples(), self.step)

    def state_metrics(self) -> tuple[str, ...]:
        return self.objective.state_metrics

    def samples_per_step(self) -> int:
        return self.cfg.batch_size * self.objective.d_steps

    def divergence_advice(self) -> str:
        cfg = self.cfg
        return (
            f"Lower the learning rates (lr_d {cfg.lr_d:g}, lr_g {cfg.lr_g:g}) or the objective's weights "
            "and start again"
        )
