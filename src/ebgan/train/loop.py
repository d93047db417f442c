"""The model-agnostic part of training: run folder, step counter, metrics, signals, checkpoints.

A ``TrainingLoop`` subclass builds its networks and optimizers, then calls ``open_run``; it
implements ``train_step`` (one optimisation step, returning its metrics), ``model_state`` /
``load_model_state`` (what a checkpoint holds beyond config, step and the global RNG
states) and optionally the other hooks below. The GAN ``Trainer`` and the contrastive
``ContrastiveTrainer`` are the two subclasses.

What the loop guarantees to every subclass:
- the run folder is locked and checked before anything is written (``RunWriter``);
- a resume loads the checkpoint, refuses a config that differs in a key that is not in the
  config class's ``RESUMABLE``, and continues bit for bit (RNG states are checkpointed);
- metrics are averaged per key over the steps that reported them (those ``state_metrics()``
  names, a state in force, are logged at their last value), written to metrics.jsonl and
  TensorBoard every ``log_every`` steps and shown on the progress bar (``SHOWN``);
- the losses named in ``DIVERGENCE_KEYS`` are watched for NaN/inf without a device sync per
  step; diverged weights are never checkpointed;
- SIGINT/SIGTERM write a checkpoint and raise ``Stopped``;
- under torchrun (``ebgan.distributed``, for subclasses with ``DISTRIBUTED``): only rank 0
  writes files and shows progress, hooks run on rank 0, logged metrics are means over ranks, a
  signal or a divergence on any rank stops every rank at the same step, and a checkpoint holds
  every rank's RNG state.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from tqdm import tqdm

from ebgan.config import config_diff
from ebgan.distributed import Distributed
from ebgan.errors import EbganError
from ebgan.files import save_torch
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


class Stopped(Exception):
    """Training stopped by SIGINT/SIGTERM after writing a checkpoint."""

    def __init__(self, signum: int, step: int):
        super().__init__(f"stopped by signal {signum} at step {step}; checkpoint written")
        self.signum, self.step = signum, step


class TrainingLoop:
    """Base class of the trainers. ``cfg`` is a resolved config object with ``steps``, ``seed``,
    ``device``, ``batch_size``, ``log_every``, ``checkpoint_every``, ``to_dict``, ``save``, a
    ``from_dict(values, source, saved=True)`` class method and a ``RESUMABLE`` set of keys."""

    DIVERGENCE_KEYS: ClassVar[tuple[str, ...]] = ("loss",)  # losses watched for NaN/inf
    SHOWN: ClassVar[tuple[str, ...]] = ("loss", "images_per_s")  # metrics on the progress bar
    STATE_KEYS: ClassVar[tuple[str, ...]] = ()  # keys of model_state a checkpoint must hold
    DISTRIBUTED: ClassVar[bool] = False  # True: the subclass trains under torchrun (DDP)
    COMMAND: ClassVar[str] = "this training"  # named in the error when started by torchrun without DISTRIBUTED

    def __init__(self, cfg: Any, run_dir: Path | str | None = None):
        self.cfg = cfg
        self.dist = Distributed.from_env()
        if self.dist.active and not self.DISTRIBUTED:
            raise EbganError(f"{self.COMMAND} runs in one process; start it without torchrun")
        self.device = self.dist.device(cfg.device)
        self.dist.start(self.device)
        self.is_main = self.dist.is_main  # rank-aware work (files, progress) is gated on this alone
        self.writer = RunWriter(Path(run_dir) if run_dir is not None else None, enabled=self.is_main)
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank; see open_run
        self.step = 0
        # callables hook(trainer) -> dict of metrics or None, run after each step
        self.hooks: list[Callable[[Any], dict | None]] = []
        self._stop_signal: int | None = None
        self._divergence = Divergence(self.device, self.DIVERGENCE_KEYS)
        self.saved_step: int | None = None  # step of the last checkpoint written or resumed from
        self._own_state: dict = {}  # what sync_state replaced on this rank, put back before the next step
        # The metrics summed since the last log line (key -> sum, key -> steps): a checkpoint between
        # two log lines keeps them, so the first line after a resume averages the same steps.
        self._log_sums: dict[str, Any] = {}
        self._log_counts: dict[str, int] = {}
        self._log_step_keys: set[str] = set()  # train_step's keys: averaged over ranks when logged

    def open_run(self, resume: bool) -> None:
        """Lock and check the run folder, load the checkpoint on resume, then write config.yaml.
        Call once the networks and optimizers exist; nothing in the folder changes before a
        resume is known to proceed."""
        cfg = self.cfg
        self.writer.open(resume)
        if self.dist.rank:  # after the networks are built alike on every rank (rank 0 keeps the seed's stream)
            torch.manual_seed(cfg.seed + self.dist.rank)
        try:
            if resume:
                self.load(self.writer.folder / CHECKPOINT)
                self.saved_step = self.step
                if cfg.steps < self.step:
                    raise EbganError(
                        f"{self.writer.folder} has done {self.step} steps; steps (the run's total) must be at "
                        f"least {self.step}, got {cfg.steps}"
                    )
            self.writer.start(cfg, self.step)
        except BaseException:
            self.writer.close()
            raise

    # ------------------------------------------------------------------ what subclasses provide
    def train_step(self) -> dict[str, torch.Tensor]:
        """One optimisation step; increments ``self.step`` and returns its metrics."""
        raise NotImplementedError

    def model_state(self) -> dict:
        """Networks, optimizers, samplers, private generators: everything but config, step and global RNG."""
        raise NotImplementedError

    def load_model_state(self, state: dict, path: Path) -> None:
        raise NotImplementedError

    def before_training(self) -> None:
        """Called by ``train`` before the first step of a fresh run (not on resume)."""

    def after_step(self) -> None:
        """Called after each step's logging, before its checkpoint (e.g. sample grids)."""

    def after_training(self) -> None:
        """Called after the final checkpoint."""

    def export(self) -> None:
        """Write the run's deliverable beside each checkpoint (e.g. the generator)."""

    def samples_per_step(self) -> int:
        """Images per step, for the images_per_s metric."""
        return self.cfg.batch_size

    def divergence_advice(self) -> str:
        return "Lower the learning rate and start again"

    def looks_at_networks(self) -> bool:
        """Whether a hook with a ``due(trainer)`` (an evaluation, energy frames) reads the networks at
        this step; every rank asks, so that all take part in ``sync_state`` before rank 0 runs it."""
        return any(hook.due(self) for hook in self.hooks if hasattr(hook, "due"))

    def sync_state(self) -> dict:
        """Make the ranks' state agree before a checkpoint, a grid or an evaluation (e.g. average
        BatchNorm statistics); a collective. Returns this rank's own values it replaced (CPU tensors
        by name, the same names and shapes on every rank): the checkpoint keeps every rank's, and
        ``restore_own_state`` puts them back before the next step and on a resume with the same
        process count, so where checkpoints fall does not change the training (a resume stays
        bit-identical)."""
        return {}

    def restore_own_state(self, own: dict) -> None:
        """Put back what ``sync_state`` replaced on this rank."""

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {
            "format": ckpt.FORMAT_VERSION,
            "config": self.cfg.to_dict(),
            "step": self.step,
            **self.model_state(),
            "rng": ckpt.rng_states(self.device),
        }

    def _rng_of_every_rank(self, own: dict) -> dict:
        """Under DDP, ``rng_ranks`` (every rank's global RNG states), ``own_ranks`` (every rank's
        ``own``, from ``sync_state``) and ``world_size``, for ``save``. A collective: every rank
        calls it (``state_dict`` alone is this rank's, for the hooks that run on rank 0 only)."""
        if not self.dist.active:
            return {}
        ranks: list[dict] = [{} for _ in range(self.dist.world_size)]
        owns: list[dict] = [{} for _ in range(self.dist.world_size)]
        for out, values in ((ranks, ckpt.rng_states(self.device)), (owns, own)):
            for key, value in values.items():
                for r, v in enumerate(self.dist.gather_cpu(value)):
                    out[r][key] = v
        return {"rng_ranks": ranks, "world_size": self.dist.world_size, **({"own_ranks": owns} if own else {})}

    def _set_rng(self, state: dict, path: Path) -> None:
        saved_world = int(state.get("world_size", 1))
        if saved_world == self.dist.world_size and (saved_world == 1 or "rng_ranks" in state):
            ckpt.set_rng_states(state["rng_ranks"][self.dist.rank] if self.dist.active else state["rng"], self.device)
            if self.dist.active:
                self._own_state = dict(state.get("own_ranks", [{}] * saved_world)[self.dist.rank])
            return
        # Another process count: data order and noise are global (the same at any count), the
        # per-rank RNGs (dropout) cannot be split or merged, so they restart from the seed.
        torch.manual_seed(self.cfg.seed + self.dist.rank + 1_000_003 * int(state["step"]))
        if self.is_main:
            print(
                f"ebgan: note: {path} was written by {saved_world} process(es), this run has "
                f"{self.dist.world_size}; it continues the same data and noise, but not bit for bit "
                "(per-process random states, e.g. dropout, restart from the seed)"
            )

    def load(self, path: Path) -> None:
        state = ckpt.load_checkpoint(path)
        missing = [k for k in ("config", "step", *self.STATE_KEYS, "rng") if k not in state]
        if missing:
            raise EbganError(
                f"{path} lacks {', '.join(missing)}: it is damaged or not a training checkpoint; "
                "start a new run with --out"
            )
        try:
            saved = type(self.cfg).from_dict(state["config"], str(path), saved=True)
            changed = sorted(config_diff(saved, self.cfg))
        except (EbganError, AttributeError, TypeError):
            changed = ["keys"]
        if changed:
            raise EbganError(
                f"{path} was written by a run with another config ({', '.join(changed)} differ): "
                "it comes from another model or run"
            )
        try:
            self.load_model_state(state, path)
            self._set_rng(state, path)
            self.step = int(state["step"])
            self._restore_partial_log(state)
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as e:
            raise EbganError(
                f"{path} is damaged ({e.__class__.__name__}: {str(e)[:120]}); "
                "resume from a copy or start a new run with --out"
            ) from e

    def save(self) -> None:
        """Write the checkpoint (rank 0; every rank takes part and waits until it is written)."""
        self._divergence.check(self)  # never a checkpoint of diverged weights
        own = self._own_state or self.sync_state()  # already in sync at a step a grid or a hook looked at
        state = {**self.state_dict(), **self._rng_of_every_rank(own), **self._partial_log()}  # collectives under DDP
        if self.writer.enabled:
            try:
                save_torch(self.writer.folder / CHECKPOINT, state)
            except EbganError as e:
                last = f"step {self.saved_step}" if self.saved_step is not None else "none written yet"
                raise EbganError(f"{e} (last checkpoint: {last}; training stopped at step {self.step})") from e
            self.export()
        self.saved_step = self.step
        self._own_state = own  # put back before the next step: the final grid shows what was exported
        self.dist.barrier()  # no rank goes on (or exits) before the checkpoint is on disk

    def _partial_log(self) -> dict:
        """The metrics summed since the last log line, for the checkpoint (``log_partial``). The ranks'
        sums are averaged now (a collective): the mean of (averaged part + each rank's rest) at the
        log step is the mean the uninterrupted run logs."""
        if not self._log_counts:
            return {}
        self._average_over_ranks(self._log_sums, sorted(self._log_step_keys & self._log_sums.keys()))
        sums = {k: float(v) for k, v in self._log_sums.items()}
        counts, step_keys = dict(self._log_counts), sorted(self._log_step_keys)
        return {"log_partial": {"sums": sums, "counts": counts, "step_keys": step_keys}}

    def _restore_partial_log(self, state: dict) -> None:
        part = state.get("log_partial") or {}  # absent in checkpoints of older versions: a short first line
        self._log_sums = {str(k): float(v) for k, v in (part.get("sums") or {}).items()}
        self._log_counts = {str(k): int(v) for k, v in (part.get("counts") or {}).items()}
        self._log_step_keys = {str(k) for k in (part.get("step_keys") or [])}

    # ------------------------------------------------------------------ the loop
    def _average_over_ranks(self, sums: dict, keys: list[str]) -> None:
        """Replace ``sums[k]`` for ``keys`` by their mean over ranks: one all-reduce per log line."""
        if not self.dist.active or not keys:
            return
        stacked = torch.stack([torch.as_tensor(sums[k], dtype=torch.float32).to(self.device).reshape(()) for k in keys])
        sums.update(zip(keys, self.dist.mean(stacked)))

    def state_metrics(self) -> tuple[str, ...]:
        """Metrics that are a state in force (a margin, k_t): logged at the log step's value."""
        return ()

    def _on_signal(self, signum, frame):
        self._stop_signal = signum

    def train(self, steps: int | None = None, progress: bool = True) -> None:
        """Train until ``steps`` total steps (default: the config's), checkpointing as configured."""
        cfg, total = self.cfg, steps or self.cfg.steps
        if self.step == 0:
            self.before_training()
        # Signals can only be caught in the main thread; elsewhere they keep their default.
        catch = threading.current_thread() is threading.main_thread()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)} if catch else {}
        # Per-key sums and counts: a metric reported on some steps only (a hook's) is
        # averaged over the steps that reported it, not over the whole interval.
        sums, counts, step_keys = self._log_sums, self._log_counts, self._log_step_keys  # hooks': rank 0's
        in_force = set(self.state_metrics())  # a margin, k_t: logged as at the log step, not averaged
        images_seen, t0 = 0, time.perf_counter()
        bar = tqdm(total=total, initial=self.step, disable=not (progress and self.is_main), dynamic_ncols=True)
        try:
            while self.step < total:
                if self._own_state:
                    self.restore_own_state(self._own_state)
                    self._own_state = {}
                metrics = self.train_step()
                self._divergence.record(self.step, metrics)
                if self.dist.active and not self._own_state and self.looks_at_networks():
                    # grids and evaluations see the networks the checkpoint and the export hold
                    self._own_state = self.sync_state()
                step_keys.update(metrics)
                if self.is_main:  # evaluation, energy frames: rank 0 alone; the others wait at the next step
                    for hook in self.hooks:
                        metrics.update(hook(self) or {})
                for k, v in metrics.items():
                    v = v.detach() if torch.is_tensor(v) else v
                    if k in in_force:
                        sums[k], counts[k] = v, 1
                    else:
                        sums[k], counts[k] = sums.get(k, 0.0) + v, counts.get(k, 0) + 1
                images_seen += self.samples_per_step()
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == total:
                    self._divergence.check(self)
                    self._average_over_ranks(sums, sorted(step_keys & sums.keys()))
                    elapsed = time.perf_counter() - t0
                    line = {k: float(v) / counts[k] for k, v in sums.items()}
                    line["images_per_s"] = images_seen / max(elapsed, 1e-9)
                    self.writer.log(self.step, line)
                    bar.set_postfix({k: f"{line[k]:.3g}" for k in self.SHOWN if k in line})
                    sums.clear()
                    counts.clear()
                    step_keys.clear()
                    images_seen, t0 = 0, time.perf_counter()
                self.after_step()
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save()
                if self.dist.any(self._stop_signal is not None):  # every rank stops at the same step
                    self.save()
                    raise Stopped(self._stop_signal or signal.SIGTERM, self.step)
            self.save()
            self.after_training()
        finally:
            bar.close()
            self.writer.close()
            for s, handler in previous.items():
                signal.signal(s, handler)


class Diverged(EbganError):
    """A loss became NaN or infinite; the run stopped without checkpointing the diverged weights."""


class Divergence:
    """Watches the losses ``keys`` for NaN/inf without a device sync per step: the first bad step and
    its values are kept on the device, and ``check`` (at log, sample and checkpoint time) reads them."""

    def __init__(self, device: torch.device, keys: tuple[str, ...]):
        self.keys = tuple(keys)
        self.first_step = torch.full((), -1, dtype=torch.long, device=device)
        self.values = torch.zeros(len(self.keys), device=device)

    @torch.no_grad()
    def record(self, step: int, metrics: dict) -> None:
        vals = torch.stack(
            [metrics[k].detach().float().reshape(()) if k in metrics else self.values.new_zeros(()) for k in self.keys]
        )
        first = (~torch.isfinite(vals).all()) & (self.first_step < 0)
        self.first_step = torch.where(first, step, self.first_step)
        self.values = torch.where(first, vals, self.values)

    def check(self, loop: TrainingLoop) -> None:
        step = int(self.first_step)
        if not loop.dist.any(step >= 0):  # a rank's NaN reaches every rank's weights: all stop together
            return
        bad = ", ".join(f"{k} = {float(v)}" for k, v in zip(self.keys, self.values.tolist()) if not math.isfinite(v))
        if step < 0:
            step, bad = loop.step, "a loss on another process"
        kept = (
            f"the last good checkpoint (step {loop.saved_step}) is intact"
            if loop.saved_step is not None and loop.writer.enabled
            else "no checkpoint was written"
        )
        raise Diverged(f"training diverged at step {step}: {bad}; {kept}. {loop.divergence_advice()}")
