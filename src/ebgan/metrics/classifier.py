"""The project's own feature extractor: a small CNN classifier per MNIST-family dataset.

Inception weights cannot be downloaded everywhere, so scores are computed on the
penultimate layer of this classifier, trained on the dataset itself. The scores get the
classifier's name as qualifier (``fid_fmnist_cls``, from the dataset's registry entry),
never the bare name FID. Every registered dataset with ``evaluation="classifier"`` has one.

Splits (``ebgan.data.splits``): trained on ``train`` where that split exists, tested on
``test``; otherwise trained on ``test-fit`` and tested on ``test-heldout``.

Cache layout (``ebgan.data.sources.cache_dir()/classifiers/<dataset>/``):
    classifier.safetensors   the weights
    classifier.json          architecture, test accuracy, splits used, feature dim, sha256
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_bytes

from ebgan.data import load_images, splits, to_unit_range
from ebgan.data.registry import DatasetSpec, dataset_spec, registered_datasets
from ebgan.data.samples import fit_to
from ebgan.data.sources import cache_dir
from ebgan.errors import EbganError, one_line
from ebgan.files import write_bytes, write_json

WEIGHTS, SPEC = "classifier.safetensors", "classifier.json"
META_KEYS = ("name", "arch", "split_used", "test_accuracy", "feature_dim", "sha256")  # what scoring reads
IMAGE_SIZE = 32  # the training pipeline's default: 28x28 padded to 32x32
FIT = "pad"


class Classifier(nn.Module):
    """Three conv stages (32 -> 16 -> 8 -> 4) and a 128-d penultimate layer (the features)."""

    def __init__(self, num_classes: int = 10, channels: int = 1, width: int = 16, feature_dim: int = 128):
        super().__init__()

        def stage(cin, cout):
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        self.body = nn.Sequential(stage(channels, width), stage(width, 2 * width), stage(2 * width, 4 * width))
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(4 * width * 16, feature_dim), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(feature_dim, num_classes)
        self.arch = {"num_classes": num_classes, "channels": channels, "width": width, "feature_dim": feature_dim}

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(penultimate features, logits) for images in [-1, 1]."""
        f = self.features(self.body(x))
        return f, self.head(self.dropout(f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[1]


def classifier_dir(dataset: str) -> Path:
    return cache_dir() / "classifiers" / dataset


def classifier_datasets() -> list[str]:
    return [n for n in registered_datasets() if dataset_spec(n).evaluation == "classifier"]


def check_dataset(dataset: str) -> DatasetSpec:
    """The registry entry of a dataset that has a feature classifier, else a one-line error."""
    spec = dataset_spec(dataset)
    if spec.evaluation != "classifier":
        raise EbganError(
            f"no feature classifier for dataset {dataset!r}; classifiers exist for {', '.join(classifier_datasets())}"
        )
    return spec


def input_shape(dataset: str) -> tuple[int, int, int]:
    """(C, H, W) of the images the dataset's classifier (and so ebgan eval) takes."""
    return (check_dataset(dataset).channels or 1, IMAGE_SIZE, IMAGE_SIZE)


def check_fit_rule(fit: str | None, who: str) -> None:
    """Refuse images brought to size by another rule than the reference images' (``FIT``): resized
    samples beside padded references would put every score off. None: a run that does not say."""
    if fit not in (None, FIT):
        raise EbganError(
            f"{who} brings images to size by fit {fit!r}; the classifier and its reference images use {FIT!r}, "
            f"so the scores would not be comparable; retrain with --fit {FIT}"
        )


def check_run_makes_classifier_input(cfg, who: str) -> None:
    """For scorers that feed a training run's samples to the classifier as they come (``--eval-every``,
    compare's quality curves): the run's images have the classifier's shape and fit rule."""
    shape = (cfg.channels or 1, cfg.image_size, cfg.image_size)
    if shape != input_shape(cfg.dataset):
        raise EbganError(f"{who}: the classifier takes {input_shape(cfg.dataset)} images, this run makes {shape}")
    check_fit_rule(cfg.fit, f"{who}: this run")


def as_classifier_input(images: torch.Tensor, dataset: str) -> tuple[torch.Tensor, list[str]]:
    """Samples as other code commonly writes them, brought to ``input_shape`` without changing a
    pixel, and what was done: grey images saved with three equal channels (torchvision's
    ``save_image`` writes grey as RGB) back to one, and images at the dataset's native size (MNIST's
    28x28) padded to 32x32 as its reference images are. Anything else is left for the shape check."""
    spec = check_dataset(dataset)
    channels, _, _ = input_shape(dataset)
    done = []
    if images.ndim == 4 and images.shape[1] == 3 and channels == 1 and (images == images[:, :1]).all():
        images = images[:, :1]
        done.append("3 equal channels read as grey")
    if images.ndim == 4 and spec.native_size and tuple(images.shape[-2:]) == spec.native_size != (IMAGE_SIZE,) * 2:
        images = fit_to(images, IMAGE_SIZE, FIT)  # the rule the reference images went through
        done.append("{}x{} padded to {}x{} as the reference images are".format(*spec.native_size, *(IMAGE_SIZE,) * 2))
    return images, done


# --------------------------------------------------------------------- data splits
def classifier_splits(dataset: str, data_root) -> dict:
    """Training / testing data for the classifier, and which splits they are.

    ``train``/``test`` where the train split exists; else (offline MNIST has only t10k)
    ``test-fit``/``test-heldout``, the one division of ``ebgan.data.splits``.
    """
    kw = dict(data_root=data_root, image_size=IMAGE_SIZE, fit=FIT)
    test = load_images(dataset, splits.TEST, **kw)  # no test split: fail before trying a download
    try:  # torchvision may download it; offline that fails and the test split's parts are used
        train = load_images(dataset, splits.TRAIN, **kw)
        fit_split, test_split = splits.TRAIN, splits.TEST
    except EbganError:
        fit_split, test_split = splits.TEST_FIT, splits.TEST_HELDOUT
        train, test = load_images(dataset, fit_split, **kw), load_images(dataset, test_split, **kw)
    note = f"trained on {fit_split} ({splits.DESCRIPTIONS[fit_split]}), tested on {test_split}"
    if fit_split != splits.TRAIN:
        note = "the train split is absent: " + note
    return {
        "train": train.images,
        "train_labels": train.labels,
        "test": test.images,
        "test_labels": test.labels,
        "split": fit_split,
        "tested_on": test_split,
        "split_note": note,
    }


# --------------------------------------------------------------------- training
def train_classifier(
    dataset: str,
    data_root=None,
    epochs: int = 4,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    limit: int | None = None,
    log=print,
) -> dict:
    """Train, test and cache the classifier for ``dataset``; returns its metadata."""
    spec = check_dataset(dataset)
    if limit is not None and limit < 1:  # x[:-5] would drop the last five, x[:0] is falsy: no limit
        raise EbganError(f"--limit must be positive, got {limit}")
    data = classifier_splits(dataset, data_root)
    x, y = data["train"], data["train_labels"]
    if limit:  # quick runs for tests
        x, y = x[:limit], y[:limit]
    torch.manual_seed(seed)
    net = Classifier(num_classes=spec.num_classes, channels=spec.channels or 1)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps_per_epoch = max(1, len(x) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(steps_per_epoch):
            idx = order[i * batch_size : (i + 1) * batch_size]
            loss = F.cross_entropy(net(to_unit_range(x[idx])), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        log(f"epoch {epoch + 1}/{epochs}: train loss {total / steps_per_epoch:.4f}")
    acc = accuracy(net, data["test"], data["test_labels"])
    meta = {
        "dataset": dataset,
        "name": spec.score_name,
        "architecture": "ebgan.metrics.classifier.Classifier",
        "arch": net.arch,
        "image_shape": list(input_shape(dataset)),
        "fit": FIT,
        "test_accuracy": acc,
        "split_used": data["split"],  # one of ebgan.data.splits.SPLITS
        "tested_on": data["tested_on"],
        "split_definition": splits.DIVISION,
        "split_note": data["split_note"] + (f"; limited to its first {len(x)} images (--limit)" if limit else ""),
        "n_train": len(x),
        "n_test": len(data["test"]),
        "feature_dim": net.arch["feature_dim"],
        "epochs": epochs,
        "seed": seed,
        "train_seconds": round(time.perf_counter() - t0, 1),
    }
    save_classifier(net.eval(), meta, classifier_dir(dataset))
    return load_meta(dataset)


@torch.no_grad()
def accuracy(net: Classifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    was = net.training
    net.eval()
    correct = sum(
        int((net(to_unit_range(images[i : i + batch_size])).argmax(1) == labels[i : i + batch_size]).sum())
        for i in range(0, len(images), batch_size)
    )
    net.train(was)
    return correct / len(images)


# --------------------------------------------------------------------- cache
def save_classifier(net: Classifier, meta: dict, folder: Path) -> None:
    """Weights then JSON, each written atomically: a reader never sees half a file."""
    blob = safetensors_bytes({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()})
    write_bytes(folder / WEIGHTS, blob)
    write_json(folder / SPEC, {**meta, "sha256": hashlib.sha256(blob).hexdigest()}, indent=2)


def missing_message(dataset: str) -> str:
    return (
        f"no feature classifier cached for {dataset} (looked in {classifier_dir(dataset)}); "
        f"train it once with: ebgan classifier train --dataset {dataset}"
    )


def _retrain(dataset: str) -> str:
    return f"retrain it with: ebgan classifier train --dataset {dataset} --force"


def load_meta(dataset: str) -> dict:
    check_dataset(dataset)
    spec = classifier_dir(dataset) / SPEC
    if not spec.is_file() or not (classifier_dir(dataset) / WEIGHTS).is_file():
        raise EbganError(missing_message(dataset))
    try:
        meta = json.loads(spec.read_text())
    except ValueError as e:
        raise EbganError(f"{spec} is damaged ({e}); {_retrain(dataset)}") from e
    if not isinstance(meta, dict):
        raise EbganError(f"{spec} is damaged (not a JSON object); {_retrain(dataset)}")
    if meta.get("dataset") != dataset:  # a folder copied from another dataset's cache: its scores would be wrong
        raise EbganError(
            f"{spec} describes a classifier for {meta.get('dataset')!r}, not {dataset}; {_retrain(dataset)}"
        )
    return meta


def check_meta_split(meta: dict) -> None:
    """Refuse a classifier whose training images cannot be told apart from today's references."""
    used = meta.get("split_used")
    stale = used not in splits.SPLITS or (used in splits.PARTS and meta.get("split_definition") != splits.DIVISION)
    if stale:
        raise EbganError(
            f"the cached {meta['dataset']} classifier was trained on {used!r}, a split this version does not define "
            f"(its training images may overlap today's references); retrain it: "
            f"ebgan classifier train --dataset {meta['dataset']} --force"
        )


def load_classifier(dataset: str) -> tuple[Classifier, dict]:
    """The cached classifier for ``dataset`` (eval mode, CPU) and its metadata."""
    meta = load_meta(dataset)
    check_meta_split(meta)
    folder = classifier_dir(dataset)
    try:
        blob = (folder / WEIGHTS).read_bytes()
        state = safetensors_load(blob)  # never a pickle
        missing = [k for k in META_KEYS if k not in meta]
        if missing:
            raise ValueError(f"{SPEC} lacks {', '.join(missing)}")
        net = Classifier(**meta["arch"])
        net.load_state_dict(state)
    except Exception as e:
        raise EbganError(
            f"the cached classifier in {folder} cannot be loaded ({one_line(e)}); {_retrain(dataset)}"
        ) from e
    if hashlib.sha256(blob).hexdigest() != meta["sha256"]:  # cached reference features are keyed by this hash
        raise EbganError(
            f"the cached classifier in {folder}: {WEIGHTS} is not the file {SPEC} describes (sha256 differs); "
            f"{_retrain(dataset)}"
        )
    return net.eval(), meta


@torch.no_grad()
def classify(net: Classifier, images_uint8: torch.Tensor, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features (N, D) and float64 log p(y|x) (N, C) for uint8 images."""
    net.eval()
    feats, logps = [], []
    for i in range(0, len(images_uint8), batch_size):
        f, logits = net.forward_features(to_unit_range(images_uint8[i : i + batch_size]))
        feats.append(f.double().numpy())
        logps.append(torch.log_softmax(logits.double(), dim=1).numpy())  # float64: no p(y|x) underflows to 0
    return np.concatenate(feats), np.concatenate(logps)
