"""The objective-agnostic training loop (see ``ebgan.objectives.base`` for the step order)."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from tqdm import tqdm

from ebgan.config import Config, config_diff
from ebgan.data import EpochBatches
from ebgan.errors import EbganError
from ebgan.files import save_torch
from ebgan.generator_io import export_generator
from ebgan.nets import build_discriminator, build_generator, check_networks
from ebgan.objectives import build_objective
from ebgan.train import checkpoint as ckpt
from ebgan.train.run_dir import CHECKPOINT, RunWriter


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise EbganError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EbganError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return device


def make_optimizer(kind: str, net: nn.Module, lr: float, cfg: Config, device: torch.device) -> torch.optim.Optimizer:
    """Adam with the config's betas, or plain SGD (the paper's MNIST grid searches over both)."""
    # Fused: one kernel for all parameters (CPU and CUDA; about 3% of a seed32 step on CPU).
    fused = device.type in ("cpu", "cuda")
    if kind == "sgd":
        return torch.optim.SGD(net.parameters(), lr=lr, fused=fused)
    return torch.optim.Adam(net.parameters(), lr=lr, betas=(cfg.beta1, cfg.beta2), fused=fused)


class Stopped(Exception):
    """Training stopped by SIGINT/SIGTERM after writing a checkpoint."""

    def __init__(self, signum: int, step: int):
        super().__init__(f"stopped by signal {signum} at step {step}; checkpoint written")
        self.signum, self.step = signum, step


class Trainer:
    """Builds networks, optimizers and objective from a resolved Config and trains them.

    ``data`` is the training set as one tensor: uint8 images (N, C, H, W) or float
    vectors (N, D) for the 2-D toys. ``run_dir=None`` trains without writing anything.
    """

    def __init__(self, cfg: Config, data: torch.Tensor, run_dir: Path | None = None, resume: bool = False):
        self.cfg = cfg
        self.device = pick_device(cfg.device)
        self.is_main = True  # rank-aware work (files, progress) is gated on this alone
        self.writer = RunWriter(run_dir, enabled=self.is_main)
        torch.manual_seed(cfg.seed)
        self.image_shape = tuple(data.shape[1:])
        self.objective = build_objective(cfg)
        self.G = build_generator(cfg.model, cfg.latent_dim, self.image_shape, cfg.model_args).to(self.device)
        self.D = build_discriminator(cfg.model, self.objective.discriminator_kind, self.image_shape, cfg.model_args)
        self.D = self.D.to(self.device)
        check_networks(cfg.model, self.G, self.D, self.objective.discriminator_kind, self.image_shape)
        if cfg.batch_size < 2 and any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for net in (self.G, self.D) for m in net.modules()
        ):
            raise EbganError(
                f"model {cfg.model!r} has BatchNorm, which needs batches of 2 or more; use --batch-size 2 or more"
            )
        if cfg.batch_size > data.shape[0]:
            raise EbganError(
                f"batch_size {cfg.batch_size} exceeds the {data.shape[0]} training samples; "
                f"use --batch-size {data.shape[0]} or less"
            )
        self.opt_g = make_optimizer(cfg.optim_g, self.G, cfg.lr_g, cfg, self.device)
        self.opt_d = make_optimizer(cfg.optim_d, self.D, cfg.lr_d, cfg, self.device)
        self.batches = EpochBatches(data.to(self.device), cfg.batch_size, seed=cfg.seed)
        self.noise = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.fixed_z = torch.randn(64, cfg.latent_dim, generator=torch.Generator().manual_seed(cfg.seed + 2))
        self.step = 0
        self.hooks: list[
            Callable[[Trainer], dict | None]
        ] = []  # callables hook(trainer) -> dict of metrics or None, run after each step
        # Compiled views for the hot path; checkpoints always use the plain modules.
        self.G_run: nn.Module = torch.compile(self.G) if cfg.compile else self.G  # type: ignore[assignment]
        self.D_run: nn.Module = torch.compile(self.D) if cfg.compile else self.D  # type: ignore[assignment]
        self._stop_signal = None
        self._divergence = Divergence(self.device)
        self.saved_step: int | None = None  # step of the last checkpoint written or resumed from
        self.writer.open(resume)  # lock and check the folder; nothing in it changes until start()
        try:
            if resume:
                self.load(self.writer.folder / CHECKPOINT)
                self.saved_step = self.step
                if cfg.steps < self.step:
                    raise EbganError(
                        f"{run_dir} has done {self.step} steps; steps (the run's total) must be at "
                        f"least {self.step}, got {cfg.steps}"
                    )
            self.writer.start(cfg, self.step)
        except BaseException:
            self.writer.close()
            raise

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {
            "format": ckpt.FORMAT_VERSION,
            "config": self.cfg.to_dict(),
            "step": self.step,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "objective": self.objective.state_dict(),
            "batches": self.batches.state_dict(),
            "noise": self.noise.get_state(),
            "rng": ckpt.rng_states(),
        }

    CHECKPOINT_KEYS = ("config", "step", "G", "D", "opt_g", "opt_d", "objective", "batches", "noise", "rng")

    def load(self, path: Path) -> None:
        state = ckpt.load_checkpoint(path)
        missing = [k for k in self.CHECKPOINT_KEYS if k not in state]
        if missing:
            raise EbganError(
                f"{path} lacks {', '.join(missing)}: it is damaged or not a training checkpoint; "
                "start a new run with --out"
            )
        try:
            changed = sorted(config_diff(Config.from_dict(state["config"], str(path), saved=True), self.cfg))
        except (EbganError, AttributeError, TypeError):
            changed = ["keys"]
        if changed:
            raise EbganError(
                f"{path} was written by a run with another config ({', '.join(changed)} differ): "
                "it comes from another model or run"
            )
        ckpt.load_module_state(self.G, state["G"], "generator", path)
        ckpt.load_module_state(self.D, state["D"], "discriminator", path)
        try:
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            self.objective.load_state_dict(state["objective"])
            self.batches.load_state_dict(state["batches"])
            self.noise.set_state(state["noise"])
            ckpt.set_rng_states(state["rng"])
            self.step = int(state["step"])
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as e:
            raise EbganError(
                f"{path} is damaged ({e.__class__.__name__}: {str(e)[:120]}); "
                "resume from a copy or start a new run with --out"
            ) from e

    def save(self) -> None:
        self._divergence.check(self)  # never a checkpoint of diverged weights
        if not self.writer.enabled:
            return
        try:
            save_torch(self.writer.folder / CHECKPOINT, self.state_dict())
        except EbganError as e:
            last = f"step {self.saved_step}" if self.saved_step is not None else "none written yet"
            raise EbganError(f"{e} (last checkpoint: {last}; training stopped at step {self.step})") from e
        self.saved_step = self.step
        export_generator(
            self.G,
            self.writer.folder,
            self.cfg.model,
            self.cfg.model_args,
            extra={"dataset": self.cfg.dataset, "objective": self.cfg.objective, "step": self.step},
        )

    # ------------------------------------------------------------------ one iteration
    def _autocast(self):
        if not self.cfg.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def sample_z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.latent_dim, generator=self.noise, device=self.device)

    def train_step(self) -> dict[str, torch.Tensor]:
        obj, metrics = self.objective, {}
        self.D.requires_grad_(True)
        for k in range(obj.d_steps):
            real = self.batches.next()
            keep_graph = k == obj.d_steps - 1  # only the last G(z) is reused by the G step
            with torch.set_grad_enabled(keep_graph), self._autocast():
                fake = self.G_run(self.sample_z(real.shape[0]))
            with self._autocast():
                loss_d, m = obj.discriminator_loss(self.D_run, real, fake.detach())
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            metrics.update(m)
            if self.batches.epoch_ended:
                obj.end_epoch(self.batches.epoch)
        self.D.requires_grad_(False)  # the G step needs gradients through D, not for D
        with self._autocast():
            loss_g, m = obj.generator_loss(self.D_run, fake)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        metrics.update(m)
        self.step += 1
        obj.end_step(self.step)
        self._divergence.record(self.step, metrics)
        return metrics

    # ------------------------------------------------------------------ the loop
    def _on_signal(self, signum, frame):
        self._stop_signal = signum

    def fixed_samples(self) -> torch.Tensor:
        self.G.eval()
        with torch.no_grad():
            images = self.G(self.fixed_z.to(self.device)).float().cpu()
        self.G.train()
        return images

    def train(self, steps: int | None = None, progress: bool = True) -> None:
        """Train until ``steps`` total iterations (default: the config's), checkpointing as configured."""
        cfg, total = self.cfg, steps or self.cfg.steps
        if self.step == 0:
            self.objective.prepare(self)
        # Signals can only be caught in the main thread; elsewhere they keep their default.
        catch = threading.current_thread() is threading.main_thread()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)} if catch else {}
        # Per-key sums and counts: a metric reported on some steps only (a hook's) is
        # averaged over the steps that reported it, not over the whole interval.
        sums: dict[str, Any] = {}
        counts: dict[str, int] = {}
        images_seen, t0 = 0, time.perf_counter()
        bar = tqdm(total=total, initial=self.step, disable=not (progress and self.is_main), dynamic_ncols=True)
        try:
            while self.step < total:
                metrics = self.train_step()
                for hook in self.hooks:
                    metrics.update(hook(self) or {})
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + (v.detach() if torch.is_tensor(v) else v)
                    counts[k] = counts.get(k, 0) + 1
                images_seen += cfg.batch_size * self.objective.d_steps
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == total:
                    self._divergence.check(self)
                    elapsed = time.perf_counter() - t0
                    line = {k: float(v) / counts[k] for k, v in sums.items()}
                    line["images_per_s"] = images_seen / max(elapsed, 1e-9)
                    self.writer.log(self.step, line)
                    bar.set_postfix({k: f"{line[k]:.3g}" for k in _SHOWN if k in line})
                    sums, counts, images_seen, t0 = {}, {}, 0, time.perf_counter()
                if cfg.sample_every and self.step % cfg.sample_every == 0:
                    self._divergence.check(self)
                    self.writer.save_grid(self.fixed_samples(), self.step)
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save()
                if self._stop_signal is not None:
                    self.save()
                    raise Stopped(self._stop_signal, self.step)
            self.save()
            self.writer.save_grid(self.fixed_samples(), self.step)
        finally:
            bar.close()
            self.writer.close()
            for s, handler in previous.items():
                signal.signal(s, handler)


class Diverged(EbganError):
    """A loss became NaN or infinite; the run stopped without checkpointing the diverged weights."""


class Divergence:
    """Watches the losses for NaN/inf without a device sync per step: the first bad step and its
    values are kept on the device, and ``check`` (at log, sample and checkpoint time) reads them."""

    KEYS = ("loss_d", "loss_g")

    def __init__(self, device: torch.device):
        self.first_step = torch.full((), -1, dtype=torch.long, device=device)
        self.values = torch.zeros(len(self.KEYS), device=device)

    @torch.no_grad()
    def record(self, step: int, metrics: dict) -> None:
        vals = torch.stack(
            [metrics[k].detach().float().reshape(()) if k in metrics else self.values.new_zeros(()) for k in self.KEYS]
        )
        first = (~torch.isfinite(vals).all()) & (self.first_step < 0)
        self.first_step = torch.where(first, step, self.first_step)
        self.values = torch.where(first, vals, self.values)

    def check(self, trainer) -> None:
        step = int(self.first_step)
        if step < 0:
            return
        bad = ", ".join(f"{k} = {float(v)}" for k, v in zip(self.KEYS, self.values.tolist()) if not math.isfinite(v))
        cfg = trainer.cfg
        kept = (
            f"the last good checkpoint (step {trainer.saved_step}) is intact"
            if trainer.saved_step is not None and trainer.writer.enabled
            else "no checkpoint was written"
        )
        raise Diverged(
            f"training diverged at step {step}: {bad}; {kept}. Lower the learning rates "
            f"(lr_d {cfg.lr_d:g}, lr_g {cfg.lr_g:g}) or the objective's weights and start again"
        )


_SHOWN = ("loss_d", "loss_g", "energy_real", "energy_fake", "hinge_active", "images_per_s")
