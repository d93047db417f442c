"""Everything a training run writes, in one place (and only on the main process).

Layout of a run folder:
    config.yaml          the resolved config
    checkpoint.pt        the latest full checkpoint (atomic)
    generator.safetensors, generator.json   the exported generator
    metrics.jsonl        one JSON object per logged step
    tb/                  TensorBoard events
    samples/step_NNNNNN.png   fixed-noise sample grids
    losses.png, report.md     written at the end
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torchvision.utils import save_image

from ebgan.config import Config
from ebgan.errors import EbganError
from ebgan.files import atomic_write

CONFIG, CHECKPOINT, METRICS = "config.yaml", "checkpoint.pt", "metrics.jsonl"


def holds_run(folder: Path) -> bool:
    return (Path(folder) / CONFIG).exists() or (Path(folder) / CHECKPOINT).exists()


class RunWriter:
    """Files of one run. ``enabled=False`` (non-main ranks) makes every method a no-op."""

    def __init__(self, folder: Path | None, enabled: bool = True):
        self.folder = Path(folder) if folder else None
        self.enabled = enabled and self.folder is not None
        self._tb = None

    def create(self, cfg: Config, resume: bool) -> None:
        if not self.enabled:
            return
        if not resume and holds_run(self.folder):
            raise EbganError(
                f"{self.folder} already holds a run; continue it with --resume {self.folder} or choose another --out"
            )
        (self.folder / "samples").mkdir(parents=True, exist_ok=True)
        cfg.save(self.folder / CONFIG)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.folder / METRICS, "a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        tb = self._tensorboard()
        if tb is not None:
            for k, v in metrics.items():
                tb.add_scalar(k, v, step)

    def _tensorboard(self):
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is a dependency, but keep training without it
                self._tb = False
                return None
            self._tb = SummaryWriter(str(self.folder / "tb"))
        return self._tb or None

    def save_grid(self, images: torch.Tensor, step: int, nrow: int = 8) -> Path | None:
        if not self.enabled or images.dim() != 4:  # 2-D toy points: see `ebgan energy surface`
            return None
        path = self.folder / "samples" / f"step_{step:06d}.png"
        atomic_write(path, lambda f: save_image(images.float(), f, format="PNG", nrow=nrow, normalize=True,
                                                value_range=(-1, 1)))
        return path

    def close(self) -> None:
        if self._tb:
            self._tb.close()
            self._tb = None


def read_metrics(folder: Path) -> list[dict]:
    path = Path(folder) / METRICS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
