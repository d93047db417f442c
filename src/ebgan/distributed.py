"""Training on several processes with PyTorch's DistributedDataParallel, launched by ``torchrun``.

``torchrun`` sets RANK, LOCAL_RANK and WORLD_SIZE (and the rendezvous); ``Distributed.from_env``
reads them, and without them everything here is the identity, so single-process training runs
the same code. The scheme:

- ``--batch-size`` is the global batch. Every rank draws the same global random numbers (the
  epoch permutation, the global z) and takes its own slice (``shard``), so a run's data and
  noise do not depend on the number of processes.
- Gradients are averaged by DDP; losses are means over each rank's slice, so the average is the
  gradient of the global batch mean.
- What an objective computes from a whole batch goes through ``gather`` (the pull-away term, on
  the embeddings of the global batch, with gradient), ``mean`` and ``sum`` (BEGAN's k_t,
  MAGAN's epoch means: detached statistics), so that an objective means the same at any
  process count.
- Control (stop on a signal, divergence, the barrier around a checkpoint) goes over a gloo
  group on CPU tensors, so it never forces a CUDA synchronisation.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from ebgan.errors import EbganError

BACKENDS = {"cpu": "gloo", "cuda": "nccl"}


@dataclass
class Distributed:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    _control: Any = None  # the gloo group of control collectives (None: the default group, gloo itself)

    @classmethod
    def from_env(cls) -> Distributed:
        """The process's place in a torchrun job; a single process when torchrun did not start it."""
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", "0"))
        except ValueError:
            raise EbganError(
                "WORLD_SIZE, RANK and LOCAL_RANK must be integers (torchrun sets them); unset them to train "
                "in one process"
            ) from None
        return cls(world, rank, local)

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ set-up
    def device(self, name: str) -> torch.device:
        """The rank's device for ``--device`` ``name``: cuda:LOCAL_RANK under torchrun with CUDA."""
        from ebgan.train.loop import pick_device

        device = pick_device(name)
        if self.active and device.type == "cuda" and device.index is not None:
            raise EbganError(
                f"--device {name} names one GPU, but under torchrun each process takes the GPU of its "
                "LOCAL_RANK; pass --device cuda (choose GPUs with CUDA_VISIBLE_DEVICES)"
            )
        if self.active and device.type == "cuda":
            if torch.cuda.device_count() <= self.local_rank:
                raise EbganError(
                    f"rank {self.rank} needs GPU {self.local_rank} but {torch.cuda.device_count()} are visible; "
                    "start at most one process per GPU (--nproc_per_node) or use --device cpu"
                )
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        return device

    def start(self, device: torch.device) -> None:
        """Join the process group (NCCL on CUDA, gloo on CPU) and open the gloo control group."""
        # The control group gets the timeout too: torch's default for a new gloo group is 30 minutes, and
        # ranks wait on it (at the per-step stop check) while rank 0 evaluates.
        if not self.active or torch.distributed.is_initialized():
            if self.active:
                self._control = torch.distributed.new_group(backend="gloo", timeout=collective_timeout())
            return
        backend = BACKENDS.get(device.type)
        if backend is None:
            raise EbganError(f"distributed training runs on cpu or cuda, not {device.type}; use --device cpu or cuda")
        timeout = collective_timeout()
        torch.distributed.init_process_group(backend, timeout=timeout)
        self._control = torch.distributed.new_group(backend="gloo", timeout=timeout) if backend != "gloo" else None

    def close(self) -> None:
        if self.active and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    def check_batch(self, batch_size: int) -> int:
        """The per-rank slice of the global batch; a world size that does not divide it is refused."""
        if batch_size % self.world_size:
            low = batch_size // self.world_size * self.world_size
            near = " or ".join(str(m) for m in (low, low + self.world_size) if m > 0)
            raise EbganError(
                f"--batch-size {batch_size} (the global batch) is not divisible by the {self.world_size} processes; "
                f"use --batch-size {near} (a multiple of {self.world_size}), or another --nproc_per_node"
            )
        return batch_size // self.world_size

    # ------------------------------------------------------------------ data
    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a global batch (dim 0): ranks in order make up the batch."""
        if not self.active:
            return batch
        n = batch.shape[0] // self.world_size
        return batch[self.rank * n : (self.rank + 1) * n]

    def gather(self, local: torch.Tensor) -> torch.Tensor:
        """The global batch from every rank's slice, in rank order, with gradient to each slice."""
        if not self.active:
            return local
        return _GatherSlices.apply(local, self.rank, self.world_size)

    @torch.no_grad()
    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """Sum over ranks of a detached statistic."""
        if not self.active:
            return value
        out = value.detach().clone()
        torch.distributed.all_reduce(out)
        return out

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """Mean over ranks of a detached statistic (a mean over equal slices: the global mean)."""
        return self.sum(value) / self.world_size if self.active else value

    # ------------------------------------------------------------------ control
    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on any rank."""
        if not self.active:
            return flag
        t = torch.tensor([int(flag)])
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX, group=self._control)
        return bool(t.item())

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier(group=self._control)

    def gather_cpu(self, t: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's copy of a CPU tensor of the same shape and dtype (RNG states), in rank order."""
        if not self.active:
            return [t]
        out = [torch.empty_like(t) for _ in range(self.world_size)]
        torch.distributed.all_gather(out, t.contiguous(), group=self._control)
        return out

    @torch.no_grad()
    def average_buffers(self, *modules: nn.Module) -> None:
        """Average floating buffers (BatchNorm running statistics) over ranks: without --sync-bn each
        rank's statistics follow its own slice; checkpoints, the exported generator, grids and
        evaluations use their mean (``TrainingLoop.sync_state``)."""
        if not self.active:
            return
        for module in modules:
            for b in module.buffers():
                if b.is_floating_point():
                    torch.distributed.all_reduce(b)
                    b.div_(self.world_size)

    def broadcast(self, module: nn.Module, objective=None) -> None:
        """Rank 0's parameters and buffers (and the objective's numeric state) on every rank: after a
        step each rank took alone (pretraining), which dropout may have made differ."""
        if not self.active:
            return
        with torch.no_grad():
            for t in (*module.parameters(), *module.buffers()):
                torch.distributed.broadcast(t.data, src=0)
        if objective is not None:
            state = objective.state_dict()
            keys = sorted(k for k, v in state.items() if isinstance(v, (int, float)))
            values = torch.tensor([float(state[k]) for k in keys], dtype=torch.float64)
            torch.distributed.broadcast(values, src=0, group=self._control)
            objective.load_state_dict({**state, **{k: type(state[k])(v) for k, v in zip(keys, values.tolist())}})

    # ------------------------------------------------------------------ models
    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """``module`` in DistributedDataParallel (itself when single-process).

        forward_sync_buffers=False (formerly broadcast_buffers=False): D is called on the real
        and the fake batch before one backward, and a buffer broadcast at the second call
        modifies BatchNorm buffers in place, the known DDP failure of that pattern. BatchNorm
        statistics are instead made global by --sync-bn (SyncBatchNorm) or averaged at
        checkpoints, grids and evaluations (``average_buffers``).
        """
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        return DDP(module, device_ids=ids, forward_sync_buffers=False)


def collective_timeout() -> datetime.timedelta:
    """How long a rank waits at a collective: EBGAN_DIST_TIMEOUT_MIN minutes (default 60). A rank
    evaluating (--eval-every, rank 0 only) keeps the others waiting at the next collective."""
    raw = os.environ.get("EBGAN_DIST_TIMEOUT_MIN", "60")
    try:
        minutes = float(raw)
    except ValueError:
        minutes = float("nan")
    if not (0 < minutes < 1e6):  # also NaN and inf, which timedelta refuses with an internal error
        raise EbganError(
            f"EBGAN_DIST_TIMEOUT_MIN must be a positive number of minutes, got {raw!r}; "
            "set it to e.g. 120, or unset it for the default 60"
        )
    return datetime.timedelta(minutes=minutes)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of ``module`` made to normalise over the global batch: torch's SyncBatchNorm
    on CUDA, ``GlobalBatchNorm`` on CPU (torch's SyncBatchNorm refuses CPU tensors)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return GlobalBatchNorm.convert(module)


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch over all ranks.

    The per-channel count, sum and sum of squares go through a differentiable all-reduce, so the
    gradient is that of BatchNorm on the whole batch; running statistics are updated as
    BatchNorm does (unbiased variance, ``momentum``). Outside a process group (or in eval mode)
    it is plain BatchNorm; its state dict is BatchNorm's.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected a batch of at least 2 dimensions, got {x.dim()}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and torch.distributed.is_available() and torch.distributed.is_initialized()):
            return super().forward(x)
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        xf = x.float()
        count = torch.tensor([x.numel() / c], device=x.device, dtype=torch.float32)
        stats = _SumOverRanks.apply(torch.cat([xf.sum(dims), (xf * xf).sum(dims), count]))
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                tracked = self.num_batches_tracked
                assert tracked is not None  # track_running_stats
                tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(tracked)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                unbiased = var * (n / (n - 1).clamp_min(1))
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)

    @classmethod
    def convert(cls, module: nn.Module) -> nn.Module:
        out = module
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, cls):
            out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
            if module.affine:
                with torch.no_grad():
                    out.weight = module.weight
                    out.bias = module.bias
            out.running_mean = module.running_mean
            out.running_var = module.running_var
            out.num_batches_tracked = module.num_batches_tracked
            out.training = module.training
        for name, child in module.named_children():
            out.add_module(name, cls.convert(child))
        return out


class _SumOverRanks(torch.autograd.Function):
    """y = sum over ranks of x; each rank's loss depends on y, so dL/dx is the sum over ranks of dL_r/dy."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        torch.distributed.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        g = grad.contiguous().clone()
        torch.distributed.all_reduce(g)
        return g


class _GatherSlices(torch.autograd.Function):
    """The ranks' slices concatenated in rank order; the gradient of a slice sums every rank's
    gradient of it (an all-reduce, then this rank's part: gloo has no reduce-scatter)."""

    @staticmethod
    def forward(ctx, local: torch.Tensor, rank: int, world: int) -> torch.Tensor:
        ctx.rank, ctx.n = rank, local.shape[0]
        parts = [torch.empty_like(local) for _ in range(world)]
        torch.distributed.all_gather(parts, local.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        g = grad.contiguous().clone()
        torch.distributed.all_reduce(g)
        return g[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n], None, None
