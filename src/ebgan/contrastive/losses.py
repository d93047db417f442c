"""The three pair losses, each an ``nn.Module`` ``loss(e1, e2, same) -> (loss, metrics)``.

``e1``, ``e2``: embeddings (B, D) of the two sides of B pairs; ``same``: bool (B,), True for a
compatible pair (same class), or None for views (pair i is two views of image i). The margin and
BCE losses average over the pairs; ``balanced=True`` averages the compatible and the incompatible
pairs separately and weighs the two means equally (every pair of a batch, where the compatible
ones are a minority).

- ``MarginLoss`` (Hadsell, Chopra & LeCun 2006): the energy is the Euclidean distance
  E = ||e1 - e2||; L = mean( y E^2 + (1 - y) max(0, m - E)^2 ).
- ``CosineBCE``: BCE with logit = cos(e1, e2) * exp(t) + b, t and b learnt (``learn=True``), or
  fixed logit = cos / temperature (``learn=False``; temperature 1 is the first attempt, whose
  logits stay in [-1, 1]: see ``bce_floor``). The energy is 1 - cos.
- ``NTXent`` (SimCLR, Chen et al. 2020): over the 2B views, each view's positive is the other
  view of its image and its negatives the other 2B - 2 views; cross-entropy of the
  temperature-scaled cosine similarities, averaged over the 2B views.

``energy(e1, e2)`` is each loss's pair energy (low: compatible), used by the evaluation.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

Metrics = dict[str, torch.Tensor]


def _split_means(energy: torch.Tensor, same: torch.Tensor) -> Metrics:
    with torch.no_grad():
        return {"energy_pos": energy[same].mean(), "energy_neg": energy[~same].mean()}


def _reduce(per_pair: torch.Tensor, same: torch.Tensor, balanced: bool) -> torch.Tensor:
    if not balanced:
        return per_pair.mean()
    return 0.5 * per_pair[same].mean() + 0.5 * per_pair[~same].mean()


class MarginLoss(nn.Module):
    def __init__(self, margin: float):
        super().__init__()
        self.margin = margin

    @staticmethod
    def energy(e1: torch.Tensor, e2: torch.Tensor) -> torch.Tensor:
        # clamped under the root: E = 0 (a pair of identical embeddings) has no finite gradient
        return (e1 - e2).pow(2).sum(1).clamp_min(1e-12).sqrt()

    def forward(
        self, e1: torch.Tensor, e2: torch.Tensor, same: torch.Tensor, balanced: bool = False
    ) -> tuple[torch.Tensor, Metrics]:
        d2 = (e1 - e2).pow(2).sum(1)  # E^2 without the root: exact, and differentiable at 0
        d = d2.clamp_min(1e-12).sqrt()
        loss = _reduce(torch.where(same, d2, F.relu(self.margin - d).pow(2)), same, balanced)
        return loss, {"loss": loss.detach(), **_split_means(d.detach(), same)}


class CosineBCE(nn.Module):
    def __init__(self, temperature: float, learn: bool):
        super().__init__()
        log_scale = torch.tensor(-math.log(temperature))
        if learn:
            self.log_scale = nn.Parameter(log_scale)
            self.bias = nn.Parameter(torch.zeros(()))
        else:
            self.register_buffer("log_scale", log_scale)
            self.register_buffer("bias", torch.zeros(()))

    @staticmethod
    def energy(e1: torch.Tensor, e2: torch.Tensor) -> torch.Tensor:
        return 1 - F.cosine_similarity(e1, e2, dim=1)

    def forward(
        self, e1: torch.Tensor, e2: torch.Tensor, same: torch.Tensor, balanced: bool = False
    ) -> tuple[torch.Tensor, Metrics]:
        cos = F.cosine_similarity(e1, e2, dim=1)
        logit = cos * self.log_scale.exp() + self.bias
        per_pair = F.binary_cross_entropy_with_logits(logit, same.float(), reduction="none")
        loss = _reduce(per_pair, same, balanced)
        metrics = {"loss": loss.detach(), "scale": self.log_scale.detach().exp(), "bias": self.bias.detach()}
        return loss, {**metrics, **_split_means(1 - cos.detach(), same)}


class NTXent(nn.Module):
    def __init__(self, temperature: float):
        super().__init__()
        self.temperature = temperature

    @staticmethod
    def energy(e1: torch.Tensor, e2: torch.Tensor) -> torch.Tensor:
        return 1 - F.cosine_similarity(e1, e2, dim=1)

    def forward(self, e1: torch.Tensor, e2: torch.Tensor, same: torch.Tensor | None = None, balanced: bool = False):
        n = e1.shape[0]
        z = F.normalize(torch.cat([e1, e2]), dim=1)
        sim = z @ z.T
        eye = torch.eye(2 * n, dtype=torch.bool, device=z.device)
        logits = (sim / self.temperature).masked_fill(eye, float("-inf"))  # a view is not its own negative
        target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
        loss = F.cross_entropy(logits, target)
        with torch.no_grad():
            pos = 1 - sim[torch.arange(2 * n, device=z.device), target]
            others = ~eye
            others[torch.arange(2 * n, device=z.device), target] = False
            neg = 1 - sim[others]
        return loss, {"loss": loss.detach(), "energy_pos": pos.mean(), "energy_neg": neg.mean()}


def build_loss(cfg) -> nn.Module:
    if cfg.loss == "margin":
        return MarginLoss(cfg.margin)
    if cfg.loss == "cosine-bce":
        return CosineBCE(cfg.temperature, cfg.learn_temperature)
    return NTXent(cfg.temperature)


def pair_energy(loss: str):
    """The energy a loss trains (``MarginLoss.energy``, or 1 - cos for the cosine losses)."""
    return MarginLoss.energy if loss == "margin" else CosineBCE.energy


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def bce_floor(num_classes: int | None = None) -> float:
    """The least mean BCE the fixed first-attempt loss (logit = cos, no scale, no bias) can reach.

    A positive pair costs softplus(-cos) >= softplus(-1), a negative softplus(cos) >= softplus(-1):
    each pair costs at least log(1 + e^-1) = 0.3133, so no batch averages less (``num_classes``
    None). With K classes drawn in balanced pairs (half positive; negatives a uniform pair of
    distinct classes) the negatives cannot all reach cos = -1: with class means mu_k of unit
    embeddings, the mean cosine over pairs of distinct classes is
    (|sum mu_k|^2 - sum |mu_k|^2) / (K (K - 1)) >= -1 / (K - 1), and softplus is convex (Jensen), so
    the expected loss is at least (softplus(-1) + softplus(-1 / (K - 1))) / 2.
    """
    if num_classes is None or num_classes <= 2:
        return softplus(-1.0)
    return (softplus(-1.0) + softplus(-1.0 / (num_classes - 1))) / 2
