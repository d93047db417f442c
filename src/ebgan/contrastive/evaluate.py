"""Evaluating an encoder's embedding: verification on pairs, k-NN, linear probe, a 2-D projection.

On the parts of ``ebgan.contrastive.data`` (train / validation / test, no image shared):

- verification: a fixed, seeded, balanced set of validation pairs chooses the energy threshold
  (same class iff energy <= threshold) that maximises their accuracy; the accuracy at that
  threshold on a fixed, seeded, balanced set of test pairs is the score. AUROC of the test
  pairs' energies (different class = positive; ``ebgan.metrics.ranking.auroc``) needs no threshold;
- k-NN (k = 5, Euclidean on the embeddings, majority vote, ties to the nearest neighbour):
  each test image classified by its neighbours among the training part's embeddings;
- linear probe: multinomial logistic regression (L-BFGS, L2 1e-4) on the frozen, standardised
  embeddings of the training part, accuracy on the test split;
- the test embeddings projected on their first two principal components (PCA), coloured by class.

Encoders: a contrastive run's (``contrastive_source``), the autoencoder discriminator of an EBGAN
run (``ebgan_source``: ``recon, embedding = D(x)``), or either architecture freshly initialised
(``random=True``), for comparison. For the latter two the embeddings are L2-normalised and the
energy is their Euclidean distance (a monotone function of the cosine).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ebgan.contrastive.data import TEST_FIX, VAL_FIX, EvalData, evaluation_data
from ebgan.contrastive.losses import MarginLoss, pair_energy
from ebgan.contrastive.pairs import eval_pairs, unlabelled_share
from ebgan.data.registry import dataset_spec
from ebgan.data.sources import to_unit_range
from ebgan.errors import EbganError
from ebgan.metrics.ranking import auroc

K_NEIGHBOURS = 5
PROBE_L2 = 1e-4
VAL_FRACTION = 0.1  # the validation part of an EBGAN run's split (a contrastive run has its own)


@dataclass
class Source:
    """An encoder to evaluate and what it needs: embed (images in [-1, 1] -> embeddings) and
    energy (two embeddings -> distance), the config naming its data, a description."""

    module: nn.Module
    embed: Callable[[torch.Tensor], torch.Tensor]
    energy: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    cfg: object
    val_fraction: float
    description: str
    energy_name: str
    recalibrate: bool  # re-estimate BatchNorm statistics on the training part (not a trained encoder's own)
    trained_on_all: bool = False  # trained on the whole split, validation part included (an EBGAN's D)
    train_images: dict | None = None  # count and sha256 of the images it trained on (a contrastive run's)


# ---------------------------------------------------------------------- the measures
def best_threshold(energies, same) -> tuple[float, float]:
    """The threshold t maximising the accuracy of "same iff energy <= t", and that accuracy.
    t is midway between two consecutive distinct energies (the first best cut from low to high)."""
    e = np.asarray(energies, dtype=np.float64)
    s = np.asarray(same, dtype=bool)
    order = np.argsort(e, kind="mergesort")
    e, s = e[order], s[order]
    # cut k: the k lowest energies called "same"; only between distinct values (and at both ends)
    correct = np.concatenate([[(~s).sum()], (~s).sum() + np.cumsum(np.where(s, 1, -1))])
    allowed = np.concatenate([[True], np.r_[e[1:] != e[:-1], True]])
    k = int(np.argmax(np.where(allowed, correct, -1)))
    if k == 0:
        t = e[0] - 1.0
    elif k == e.size:
        t = e[-1] + 1.0
    else:
        t = (e[k - 1] + e[k]) / 2
    return float(t), float(correct[k] / e.size)


def verification_accuracy(energies, same, threshold: float) -> float:
    e = np.asarray(energies, dtype=np.float64)
    return float(np.mean((e <= threshold) == np.asarray(same, dtype=bool)))


def knn_predict(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, k: int = K_NEIGHBOURS):
    """Majority vote of the k nearest training embeddings (Euclidean); a tie goes to the tied class
    with the nearest neighbour (vote weight 1 + 2^-(rank + 1) / 1000 makes that exact)."""
    train, test = train.float(), test.float()
    num_classes = int(train_labels.max()) + 1
    bonus = 1 + 2.0 ** -(torch.arange(k, dtype=torch.float64) + 1) / 1000
    sq = train.pow(2).sum(1)
    out = []
    for chunk in test.split(1024):
        d2 = chunk.pow(2).sum(1, keepdim=True) - 2 * chunk @ train.T + sq
        nearest = d2.topk(k, dim=1, largest=False).indices  # sorted: rank 0 is the nearest
        votes = torch.zeros(chunk.shape[0], num_classes, dtype=torch.float64)
        votes.scatter_add_(1, train_labels[nearest], bonus.expand(chunk.shape[0], k).contiguous())
        out.append(votes.argmax(1))
    return torch.cat(out)


def linear_probe_predict(train, train_labels, test, l2: float = PROBE_L2, iterations: int = 200):
    """Multinomial logistic regression on standardised features (full-batch L-BFGS); test predictions."""
    train, test = train.double(), test.double()
    mean, std = train.mean(0), train.std(0).clamp_min(1e-8)
    x, xt = (train - mean) / std, (test - mean) / std
    num_classes = int(train_labels.max()) + 1
    w = torch.zeros(x.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=iterations, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, train_labels) + l2 * w.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        return (xt @ w + b).argmax(1)


def pca_2d(x: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """Coordinates on the first two principal components, and the share of variance each explains."""
    x = x.double() - x.double().mean(0)
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    share = (s.pow(2) / s.pow(2).sum()).tolist()
    return (x @ vh[:2].T).float(), [float(v) for v in share[:2]]


def plot_projection(coords, labels, class_names: list[str], title: str, out: Path) -> Path:
    from ebgan.plotting import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 6))
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for k, name in enumerate(class_names):
        mask = labels == k
        ax.scatter(coords[mask, 0], coords[mask, 1], s=3, alpha=0.6, color=cmap(k % cmap.N), label=name)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.legend(markerscale=4, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save_figure(fig, out, bbox_inches="tight")


@torch.no_grad()
def embeddings(embed: Callable, images: torch.Tensor, device, batch_size: int = 500) -> torch.Tensor:
    """Embeddings (N, D) float32 on the CPU of uint8 images, in batches."""
    out = [
        embed(to_unit_range(images[i : i + batch_size].to(device))).float().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out)


# ---------------------------------------------------------------------- one evaluation
def evaluate(
    source: Source,
    data: EvalData,
    device,
    n_pairs: int = 10_000,
    seed: int = 0,
    plot: Path | None = None,
) -> dict:
    """Every measure of the module docstring for one encoder, as a JSON-ready dict."""
    if n_pairs < 2:
        raise EbganError(f"--pairs-count must be at least 2 (a positive and a negative), got {n_pairs}")
    dataset = source.cfg.dataset  # type: ignore[attr-defined]
    parts = {"train": data.train, "val": data.val, "test": data.test}
    unlabelled = sum(int((part.labels < 0).sum()) for part in parts.values())
    if unlabelled:
        n = sum(len(part.labels) for part in parts.values())
        raise EbganError(
            f"{unlabelled_share(unlabelled, n)}{dataset}'s images are unlabelled, and every measure here compares "
            "an embedding with class labels; evaluate on labelled images (a folder with one sub-folder per class)"
        )
    # the pairs before the embeddings: a part too small for them is refused before the long part
    pairs = {
        "val": eval_pairs(data.val.labels, n_pairs, seed, "the validation images", VAL_FIX),
        "test": eval_pairs(data.test.labels, n_pairs, seed + 1, "the test images", TEST_FIX),
    }
    source.module.eval()
    emb = {name: embeddings(source.embed, part.images, device) for name, part in parts.items()}
    if not all(torch.isfinite(e).all() for e in emb.values()):
        raise EbganError(f"{source.description} gives NaN or infinite embeddings: its training diverged")
    scores = {}
    for part, (i, j, same) in pairs.items():
        scores[part] = (source.energy(emb[part][i], emb[part][j]).double().numpy(), same.numpy())
    threshold, val_acc = best_threshold(*scores["val"])
    test_e, test_same = scores["test"]
    train_y, test_y = data.train.labels.long(), data.test.labels.long()
    knn = (knn_predict(emb["train"], train_y, emb["test"]) == test_y).double().mean().item()
    probe = (linear_probe_predict(emb["train"], train_y, emb["test"]) == test_y).double().mean().item()
    coords, share = pca_2d(emb["test"])
    result = {
        "encoder": source.description,
        "dataset": dataset,
        "train": data.notes["train"],
        "validation": data.notes["validation"],
        "test": data.notes["test"],
        "energy": source.energy_name,
        "pairs": {"validation": n_pairs, "test": n_pairs, "balanced": True, "seed": seed},
        "threshold": threshold,
        "validation_accuracy": val_acc,
        "verification_accuracy": verification_accuracy(test_e, test_same, threshold),
        "auroc": auroc(test_e, ~test_same),
        "knn_accuracy": knn,
        "knn_k": K_NEIGHBOURS,
        "linear_probe_accuracy": probe,
        "projection": {"method": "PCA", "explained_variance": share, "file": None},
    }
    if plot is not None:
        names = dataset_spec(dataset).labels or [str(k) for k in range(int(test_y.max()) + 1)]
        if len(names) <= int(test_y.max()):
            names = [str(k) for k in range(int(test_y.max()) + 1)]
        title = (
            f"{source.description}\nPCA of {len(test_y)} test embeddings (explained variance "
            f"{share[0]:.0%} + {share[1]:.0%}); verification {result['verification_accuracy']:.1%}"
        )
        result["projection"]["file"] = str(plot_projection(coords.numpy(), test_y.numpy(), names, title, plot))
    return result


# ---------------------------------------------------------------------- the encoders
def _normalised(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: F.normalize(fn(x).flatten(1), dim=1)


def _recalibrate(module: nn.Module, images: torch.Tensor) -> None:
    """A fresh network's BatchNorm statistics are (0, 1); estimate them on training images, as for D."""
    from ebgan.energy.model import recalibrate_batchnorm

    recalibrate_batchnorm(module, images, min(256, len(images)))


def contrastive_source(run: str | Path, device, random: bool = False, seed: int = 0, data_root=None):
    """A contrastive run's encoder (or, ``random``, its architecture freshly initialised from ``seed``)."""
    from ebgan.contrastive.encoders import build_encoder
    from ebgan.contrastive.trainer import load_encoder

    encoder, cfg, info = load_encoder(run, device)
    if data_root:
        cfg = cfg.updated(data_root=data_root)
    what = f"{cfg.loss} loss, {cfg.encoder} encoder"
    description = f"contrastive run {run} ({what}, step {info.get('step')})"
    if random:
        torch.manual_seed(seed)
        encoder = build_encoder(cfg, tuple(info["image_shape"])).to(device)
        description = f"randomly initialised {cfg.encoder} encoder (seed {seed}) of run {run}"
    cosine = cfg.loss != "margin"
    norm = cfg.normalize or cosine  # a cosine run is measured by the cosine
    embed = (lambda x: F.normalize(encoder(x), dim=1)) if norm else encoder
    energy_name = (
        "1 - cosine of the embeddings"
        if cosine
        else f"Euclidean distance of the {'L2-normalised ' if cfg.normalize else ''}embeddings"
    )
    return Source(
        encoder,
        embed,
        pair_energy(cfg.loss),
        cfg,
        cfg.val_fraction,
        description,
        energy_name,
        recalibrate=random,
        train_images=None if random else info.get("train_images"),  # absent in runs of older versions
    )


def ebgan_source(
    run: str | Path, device, random: bool = False, seed: int = 0, data_root=None, val_fraction: float | None = None
):
    """The autoencoder discriminator of an EBGAN (or any autoencoder-D) run: ``recon, embedding = D(x)``."""
    from ebgan.energy.model import load_energy_model
    from ebgan.nets import build_discriminator

    model = load_energy_model(run, device, bn_stats="saved")  # a contrastive run is told to use --run
    cfg = model.cfg.updated(data_root=data_root) if data_root else model.cfg
    if model.objective.discriminator_kind != "autoencoder":
        raise EbganError(
            f"{run} trained objective {cfg.objective!r}, whose discriminator is a critic with no embedding; "
            "--from-ebgan needs an autoencoder discriminator (ebgan, ebgan-pt, began, magan, autoencoder)"
        )
    if model.is_toy:
        raise EbganError(f"{run} trained on 2-D points ({cfg.dataset}); the embedding evaluation needs images")
    D = model.D
    description = f"EBGAN discriminator of {run} ({cfg.objective}, {cfg.model}, step {model.step})"
    if random:
        torch.manual_seed(seed)
        D = build_discriminator(cfg.model, "autoencoder", model.input_shape, cfg.model_args).to(device)
        description = f"randomly initialised {cfg.model} autoencoder discriminator (seed {seed}) of run {run}"
    return Source(
        D,
        _normalised(lambda x: D(x)[1]),
        MarginLoss.energy,
        cfg,
        VAL_FRACTION if val_fraction is None else val_fraction,
        description,
        "Euclidean distance of the L2-normalised embeddings",
        recalibrate=True,  # a trained D's running averages mix real and generated batches
        trained_on_all=not random,
    )


def _check_training_part(source: Source, data: EvalData) -> None:
    """The parts are recomputed from the dataset, by image index: a folder that gained, lost or renamed an
    image since the run trained moves trained images into the validation and test parts."""
    from ebgan.metrics.evaluate import images_digest

    saved = source.train_images
    if saved is None or images_digest(data.train.images) == saved.get("sha256"):
        return
    raise EbganError(
        f"{source.cfg.dataset} changed since the encoder trained on it (its training part now holds other "  # type: ignore[attr-defined]
        f"images: {len(data.train)}, trained on {saved.get('count')}), so the validation and test parts would "
        "hold trained images; restore the dataset as it was, or train a new run on it"
    )


def evaluate_source(source: Source, device, n_pairs: int = 10_000, seed: int = 0, out: Path | None = None) -> dict:
    """Load the source's data, re-estimate BatchNorm statistics where they are not a trained run's own,
    evaluate, and write ``out/eval.json`` and ``out/projection.png`` when ``out`` is given."""
    from ebgan.files import write_json

    data = evaluation_data(source.cfg, source.val_fraction, trained_on_all=source.trained_on_all)
    _check_training_part(source, data)
    if source.recalibrate:
        _recalibrate(source.module, data.train.images.to(device))
    result = evaluate(source, data, device, n_pairs, seed, plot=out / "projection.png" if out else None)
    if out is not None:
        write_json(out / "eval.json", result)
    return result


def format_result(r: dict) -> str:
    pct = lambda v: f"{100 * v:.2f}%"  # noqa: E731
    rows = [
        ("encoder", r["encoder"]),
        ("dataset", r["dataset"]),
        ("trained on", r["train"]),
        ("threshold chosen on", f"{r['pairs']['validation']} pairs of {r['validation']}"),
        ("tested on", f"{r['pairs']['test']} pairs of {r['test']}"),
        ("energy", r["energy"]),
        (
            "verification accuracy",
            f"{pct(r['verification_accuracy'])} (threshold {r['threshold']:.4g}; "
            f"{pct(r['validation_accuracy'])} on validation)",
        ),
        ("AUROC", f"{r['auroc']:.4f}"),
        (f"k-NN accuracy (k={r['knn_k']})", pct(r["knn_accuracy"])),
        ("linear probe accuracy", pct(r["linear_probe_accuracy"])),
    ]
    p = r["projection"]
    share = " + ".join(f"{v:.0%}" for v in p["explained_variance"])
    rows.append(
        (
            "projection",
            f"{p['method']} of the test embeddings ({share} of the variance)" + (f": {p['file']}" if p["file"] else ""),
        )
    )
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
