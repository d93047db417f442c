"""Training a siamese encoder on the project's training loop (``ebgan.train.loop.TrainingLoop``).

A contrastive run folder has what every run has (config.yaml, checkpoint.pt, metrics.jsonl,
tb/, the lock) and, beside each checkpoint, ``encoder.safetensors`` + ``encoder.json`` (the
encoder alone, with its config and the sha256 of its training images: what ``ebgan contrastive eval``
reads, and how it knows the dataset's parts are still those the encoder trained and was held out on).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ebgan.contrastive.config import ContrastiveConfig
from ebgan.contrastive.encoders import build_encoder, embed
from ebgan.contrastive.losses import build_loss
from ebgan.contrastive.pairs import AugmentedViews, LabelledPairs
from ebgan.data.sources import ImageData
from ebgan.errors import EbganError
from ebgan.files import save_weights_and_spec, spec_disagrees
from ebgan.train.checkpoint import load_module_state
from ebgan.train.loop import TrainingLoop

ENCODER, ENCODER_JSON = "encoder.safetensors", "encoder.json"
LOSS_LR_FACTOR = 10.0


class ContrastiveTrainer(TrainingLoop):
    """A siamese encoder trained on pairs of ``data``: the training part of the run's split
    (``ebgan.contrastive.data.training_part``), never its validation part."""

    DIVERGENCE_KEYS = ("loss",)
    SHOWN = ("loss", "energy_pos", "energy_neg", "scale", "images_per_s")
    STATE_KEYS = ("encoder", "loss_fn", "opt", "sampler")
    COMMAND = "ebgan contrastive train"

    def __init__(
        self, cfg: ContrastiveConfig, data: ImageData, run_dir: Path | str | None = None, resume: bool = False
    ):
        super().__init__(cfg, run_dir)
        if cfg.batch_size > len(data):
            raise EbganError(
                f"batch_size {cfg.batch_size} exceeds the {len(data)} training images; "
                f"use --batch-size {len(data)} or less"
            )
        self.image_shape = data.image_shape
        from ebgan.metrics.evaluate import images_digest

        # the evaluation recomputes the parts from the dataset: this tells it whether they still are these
        self.train_images = {"count": len(data), "sha256": images_digest(data.images.cpu())}
        self.encoder = build_encoder(cfg, self.image_shape).to(self.device)
        self.loss_fn = build_loss(cfg).to(self.device)
        self._check_encoder()
        groups: list[dict[str, Any]] = [{"params": list(self.encoder.parameters())}]
        if any(True for _ in self.loss_fn.parameters()):
            # the learnt temperature and bias are scalars that must travel units (b ~ -5); Adam moves
            # each by about lr per step, so they get LOSS_LR_FACTOR times the encoder's rate
            groups.append({"params": list(self.loss_fn.parameters()), "lr": cfg.lr * LOSS_LR_FACTOR})
        self.opt = torch.optim.Adam(groups, lr=cfg.lr, fused=self.device.type in ("cpu", "cuda"))
        images = data.images.to(self.device)
        self.sampler: LabelledPairs | AugmentedViews
        if cfg.pairs == "labels":
            self.sampler = LabelledPairs(images, data.labels.to(self.device), cfg.batch_size, cfg.seed)
        else:
            self.sampler = AugmentedViews(images, cfg.batch_size, cfg.seed, cfg.flip)
        # every pair (a, b), a < b, of the 2B images of a batch, for batch_pairs "all"
        self._all_pairs = torch.triu_indices(2 * cfg.batch_size, 2 * cfg.batch_size, 1, device=self.device)
        self.open_run(resume)

    @torch.no_grad()
    def _check_encoder(self) -> None:
        """One forward in eval mode, so that an image size the encoder cannot take is a one-line error."""
        self.encoder.eval()
        try:
            self.encoder(torch.zeros(2, *self.image_shape, device=self.device))
        except RuntimeError as e:
            raise EbganError(
                f"encoder {self.cfg.encoder!r} cannot take {'x'.join(map(str, self.image_shape))} images "
                f"({str(e).splitlines()[0][:120]}); choose another --image-size or --encoder"
            ) from e
        finally:
            self.encoder.train()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return embed(self.encoder, x, self.cfg.normalize)

    def train_step(self) -> dict[str, torch.Tensor]:
        x, same, labels = self.sampler.next()
        e = self.embed(x)  # both sides in one forward: BatchNorm sees one batch
        if labels is not None and self.cfg.batch_pairs == "all":
            a, b = self._all_pairs
            loss, metrics = self.loss_fn(e[a], e[b], labels[a] == labels[b], balanced=True)
        else:
            e1, e2 = e.chunk(2)
            loss, metrics = self.loss_fn(e1, e2, same)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        return metrics

    def samples_per_step(self) -> int:
        return 2 * self.cfg.batch_size

    def divergence_advice(self) -> str:
        return f"Lower the learning rate (lr {self.cfg.lr:g}) and start again"

    # ------------------------------------------------------------------ state
    def model_state(self) -> dict:
        return {
            "encoder": self.encoder.state_dict(),
            "loss_fn": self.loss_fn.state_dict(),
            "opt": self.opt.state_dict(),
            "sampler": self.sampler.state_dict(),
            "train_images": self.train_images,
        }

    def load_model_state(self, state: dict, path: Path) -> None:
        saved = state.get("train_images")  # absent in checkpoints of older versions
        if saved is not None and saved["sha256"] != self.train_images["sha256"]:
            raise EbganError(
                f"{path} trained on other images than the training part of {self.cfg.dataset} now "
                f"({saved['count']} then, {self.train_images['count']} now): the dataset changed (images added, "
                "removed or renamed), and its validation and test parts would hold trained images; restore it "
                "as it was, or start a new run with --out"
            )
        load_module_state(self.encoder, state["encoder"], "encoder", path)
        load_module_state(self.loss_fn, state["loss_fn"], "loss", path)
        self.opt.load_state_dict(state["opt"])
        self.sampler.load_state_dict(state["sampler"])

    def export(self) -> None:
        folder = self.writer.folder
        learnt = {k: float(v) for k, v in self.loss_fn.state_dict().items()}
        info = {
            "config": self.cfg.to_dict(),
            "image_shape": list(self.image_shape),
            "step": self.step,
            "loss": learnt,
            "train_images": self.train_images,
        }
        save_weights_and_spec(folder / ENCODER, self.encoder.state_dict(), folder / ENCODER_JSON, info)


def load_encoder(run: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ContrastiveConfig, dict]:
    """The encoder of a contrastive run folder (eval mode), its config and encoder.json."""
    import json

    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(run)
    if not (folder / ENCODER_JSON).is_file() or not (folder / ENCODER).is_file():
        raise EbganError(
            f"{folder} holds no {ENCODER} and {ENCODER_JSON}: pass a run folder written by 'ebgan contrastive train' "
            "(an EBGAN run's encoder: --from-ebgan RUN)"
        )
    try:
        info = json.loads((folder / ENCODER_JSON).read_text())
        cfg = ContrastiveConfig.from_dict(info["config"], str(folder / ENCODER_JSON)).resolve()
        shape = tuple(int(s) for s in info["image_shape"])
        weights = load_file(folder / ENCODER)
        disagrees = spec_disagrees(folder / ENCODER, folder / ENCODER_JSON, info)
    except (ValueError, KeyError, TypeError, SafetensorError, OSError) as e:
        raise EbganError(f"{folder}'s encoder files are damaged ({e.__class__.__name__}: {str(e)[:120]})") from e
    if disagrees:  # encoders exported before 2026-11-24 carry no copy
        raise EbganError(
            f"{folder / ENCODER_JSON} does not describe {folder / ENCODER} (an export was interrupted between the "
            f"two files); export the encoder again: ebgan contrastive train --resume {folder}"
        )
    encoder = build_encoder(cfg, shape)
    load_module_state(encoder, weights, "encoder", folder / ENCODER)
    return encoder.to(device).eval(), cfg, info
