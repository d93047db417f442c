"""Everything a training run writes, in one place (and only on the main process).

Layout of a run folder:
    .lock                held (flock) by the process training the run; holds its PID
    config.yaml          the resolved config
    checkpoint.pt        the latest full checkpoint (atomic)
    generator.safetensors, generator.json   the exported generator
    metrics.jsonl        one JSON object per logged step
    tb/                  TensorBoard events
    samples/step_NNNNNN.png   fixed-noise sample grids
    losses.png, report.md     written at the end
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Protocol

import torch
from torchvision.utils import save_image

from ebgan.errors import EbganError
from ebgan.files import atomic_write, explain_os_error, write_text

CONFIG, CHECKPOINT, METRICS, LOCK = "config.yaml", "checkpoint.pt", "metrics.jsonl", ".lock"
# What a run writes before its first checkpoint: a start that died before it is cleared on reuse.
EARLY_OUTPUTS = (CONFIG, METRICS, "tb", "samples", "report.md", "losses.png", "energy_frames.npz")


class SavesItself(Protocol):
    """A run's config: ebgan.config.Config, or another run kind's (ebgan.contrastive.ContrastiveConfig)."""

    def save(self, path: Path) -> None: ...


def holds_run(folder: Path) -> bool:
    """A run worth keeping: one that wrote a checkpoint (before it, nothing is lost by starting over)."""
    return (Path(folder) / CHECKPOINT).exists()


def check_resumable(folder: Path) -> None:
    """A folder can be resumed when it holds a checkpoint; before its first one it holds nothing to keep."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EbganError(f"run folder {folder} does not exist; start a run there with --out {folder}")
    if not (folder / CHECKPOINT).is_file():
        what = "stopped before its first checkpoint" if (folder / CONFIG).is_file() else "holds no run"
        raise EbganError(f"{folder} has no checkpoint to resume (it {what}); start it again with --out {folder}")


def check_not_foreign(folder: Path) -> None:
    """A fresh start clears ``EARLY_OUTPUTS``: refuse a folder whose files of those names ebgan did not
    write. A start of ebgan's own always left ``.lock`` (the first file it makes), so without it
    they are the user's (their own config.yaml or samples/), which must not be deleted."""
    folder = Path(folder)
    if not folder.is_dir() or (folder / LOCK).exists() or holds_run(folder):
        return
    theirs = [name for name in EARLY_OUTPUTS if (folder / name).exists()]
    if theirs:
        raise EbganError(
            f"{folder} holds {', '.join(theirs)} that no ebgan run wrote (no {LOCK}), and a new run would "
            "replace them; choose a new or empty folder for --out"
        )


class RunLock:
    """An exclusive OS lock on ``RUN/.lock`` for the life of a run; the kernel releases it when the
    process dies, so a killed run never leaves a stale lock. The file holds the owner's PID."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock (documented in the README)
            return
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(self._fd)
            self._fd = None
            raise EbganError(
                f"{self.path.parent} is in use by another ebgan process (PID {holder}); "
                "wait for it to finish or stop it, or choose another folder"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


class RunWriter:
    """Files of one run. ``enabled=False`` (non-main ranks) makes every method a no-op.

    Life of a run folder: ``open`` (lock it; check it is fit for a fresh start or a resume,
    changing nothing), then ``start`` once the resume is known to proceed (write config.yaml,
    cut metrics.jsonl back to the resumed step), then ``log``/``save_grid``, then ``close``.
    """

    def __init__(self, folder: Path | None, enabled: bool = True):
        self.enabled = enabled and folder is not None
        self.folder = Path(folder) if folder else Path()  # only used when enabled
        self._tb: Any = None  # SummaryWriter once opened; False once given up
        self._lock = RunLock(self.folder)
        self._purge_step: int | None = None

    def open(self, resume: bool) -> None:
        """Lock the folder and check it; nothing in it changes here."""
        if not self.enabled:
            return
        if self.folder.exists() and not self.folder.is_dir():
            raise EbganError(f"{self.folder} is a file, not a run folder; choose another --out")
        if resume:
            check_resumable(self.folder)
        else:
            check_not_foreign(self.folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EbganError(f"cannot create the run folder {self.folder}: {e.strerror}; choose another --out") from e
        self._lock.acquire()
        if not resume and holds_run(self.folder):
            self.close()
            raise EbganError(
                f"{self.folder} already holds a run; continue it with --resume {self.folder} or choose another --out"
            )

    def start(self, cfg: SavesItself, step: int) -> None:
        """Write config.yaml and make the folder's records agree with ``step`` (0 for a fresh run)."""
        if not self.enabled:
            return
        if step == 0:  # a fresh start, or the leftovers of one that died before its first checkpoint
            for name in EARLY_OUTPUTS:
                path = self.folder / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
        else:
            self._cut_metrics(step)
            self._purge_step = step + 1  # TensorBoard drops its events after the checkpoint too
            for grid in (self.folder / "samples").glob("step_*.png"):  # a killed session's, past the checkpoint
                if grid_step(grid) > step:
                    grid.unlink()
        cfg.save(self.folder / CONFIG)

    def _cut_metrics(self, step: int) -> None:
        """Keep the metric lines up to ``step``: a resume repeats the steps after its checkpoint."""
        path = self.folder / METRICS
        if not path.is_file():
            return
        lines = path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if line.strip() and _line_step(line) <= step]
        if len(kept) != len(lines):
            write_text(path, "".join(kept))  # atomic: a kill here leaves the old file or the cut one

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        path = self.folder / METRICS
        try:
            with open(path, "a") as f:
                f.write(json.dumps({"step": step, **metrics}) + "\n")
        except OSError as e:
            raise explain_os_error(e, path) from e
        tb = self._tensorboard()
        if tb is not None:
            try:
                for k, v in metrics.items():
                    tb.add_scalar(k, v, step)
            except Exception as e:  # TensorBoard is a view of metrics.jsonl: lose the view, not the run
                self._disable_tensorboard(e)

    def _disable_tensorboard(self, e: Exception) -> None:
        print(
            f"ebgan: warning: TensorBoard logging stopped ({e.__class__.__name__}: {e}); "
            f"metrics.jsonl keeps every metric",
            file=sys.stderr,
        )
        with contextlib.suppress(Exception):
            self._tb.close()
        self._tb = False

    def _tensorboard(self):
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is a dependency, but keep training without it
                self._tb = False
                return None
            self._tb = SummaryWriter(str(self.folder / "tb"), purge_step=self._purge_step)
        return self._tb or None

    def save_grid(self, images: torch.Tensor, step: int, nrow: int = 8) -> Path | None:
        if not self.enabled or images.dim() != 4:  # 2-D toy points: see `ebgan energy surface`
            return None
        path = self.folder / "samples" / f"step_{step:06d}.png"
        atomic_write(
            path, lambda f: save_image(images.float(), f, format="PNG", nrow=nrow, normalize=True, value_range=(-1, 1))
        )
        return path

    def close(self) -> None:
        """Flush TensorBoard and release the folder's lock."""
        if self._tb:
            try:
                self._tb.close()
            except Exception as e:
                self._disable_tensorboard(e)
            self._tb = None
        self._lock.release()


def _line_step(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return float("inf")  # a torn last line (killed mid-append) goes with the steps after the checkpoint


def grid_step(path: Path) -> int:
    """The step of a sample grid ``samples/step_NNNNNN.png`` (``save_grid``); -1 for a file not named so."""
    try:
        return int(path.stem.removeprefix("step_"))
    except ValueError:
        return -1


def read_metrics(folder: Path) -> list[dict]:
    path = Path(folder) / METRICS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
