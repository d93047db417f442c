"""EBGAN and EBGAN-PT (Zhao, Mathieu & LeCun, ICLR 2017), exactly as the paper defines them.

    D(x)     = || Dec(Enc(x)) - x ||                         (eq. 13: per-sample L2 norm)
    L_D(x,z) = D(x) + [m - D(G(z))]^+                        (eq. 1; hinge per sample)
    L_G(z)   = D(G(z)) + pt_weight * f_PT(Enc(G(z)))         (eq. 2, 14)

Both are averaged over the batch after the per-sample terms. The generator's gradient
flows through the reconstruction *and* the target G(z): nothing is detached.

Margin schedules (``margin_schedule``):
- ``constant``: m stays at ``margin``.
- ``linear``: m decays linearly from ``margin`` to 0 over ``margin_decay_steps`` (EBGAN-LN).
- ``auto``: the paper's appendix advice, "train the autoencoder alone on real data and
  start from its converged energy". Exact rule: before step 0 of a fresh run, D is
  trained for ``pretrain_steps`` Adam steps (lr_d, betas; a separate optimizer and a
  separate data order, so the adversarial run starts as it would without pretraining)
  to minimise the mean real energy; then m_0 = the mean energy of
  ``AUTO_MARGIN_BATCHES`` further real batches under the pretrained D (train mode, no
  update). ``margin`` is ignored. m then stays at m_0, or decays linearly from m_0 to
  0 if ``margin_decay_steps > 0``. m_0 and m are in the checkpoint, so a resume does
  not pretrain again.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from ebgan.errors import EbganError
from ebgan.objectives.base import Metrics, Objective, Option, at_least, positive

ENERGIES = ("l2", "l2sq", "mse")
PAPER_MARGIN_L2 = 10.0  # MNIST margin in the paper's units (eq. 13)


def reconstruction_energy(x: torch.Tensor, recon: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """Per-sample energy of the residual, shape (N,). Computed in float32 even under autocast.

    'l2' is the paper's ||r||; 'l2sq' is ||r||^2; 'mse' is ||r||^2 / (pixels), the unit of
    code that used ``nn.MSELoss`` (its margins are not the paper's).
    """
    r = (recon.float() - x.float()).flatten(1)
    if kind == "l2":
        return torch.linalg.vector_norm(r, dim=1)
    if kind == "l2sq":
        return r.pow(2).sum(dim=1)
    if kind == "mse":
        return r.pow(2).mean(dim=1)
    raise EbganError(f"unknown energy {kind!r}; use one of {ENERGIES}")


def margin_in_units(margin_l2: float, kind: str, image_shape) -> float:
    """Convert a margin on ||r|| into the same threshold in another energy's units."""
    if kind == "l2":
        return margin_l2
    if kind == "l2sq":
        return margin_l2**2
    if kind == "mse":
        return margin_l2**2 / math.prod(image_shape)
    raise EbganError(f"unknown energy {kind!r}; use one of {ENERGIES}")


def pull_away(embeddings: torch.Tensor) -> torch.Tensor:
    """f_PT(S) = 1/(N(N-1)) sum_{i != j} (S_i . S_j / (|S_i| |S_j|))^2   (eq. 14).

    Squared cosine similarity between the rows (samples), diagonal excluded. 0 for
    mutually orthogonal embeddings, 1 for a collapsed batch, invariant to each row's scale.
    """
    n = embeddings.shape[0]
    if n < 2:
        raise EbganError("the pull-away term needs at least 2 samples per batch; use --batch-size >= 2")
    s = F.normalize(embeddings.float().flatten(1), dim=1)
    cos2 = (s @ s.T).pow(2)
    return (cos2.sum() - cos2.diagonal().sum()) / (n * (n - 1))


def discriminator_hinge_loss(energy_real: torch.Tensor, energy_fake: torch.Tensor, margin: float) -> torch.Tensor:
    """mean_i D(x_i) + mean_i max(0, m - D(G(z_i))): the hinge is per fake sample."""
    return energy_real.mean() + F.relu(margin - energy_fake).mean()


AUTO_MARGIN_BATCHES = 10  # real batches averaged for the energy after pretraining
MARGIN_SCHEDULES = ("constant", "linear", "auto")


def check_schedule(schedule: str, decay_steps: int, pretrain_steps: int, margin, constructor: bool = False) -> None:
    """Refuse combinations of the margin options that would be silently ignored or cannot run."""
    if schedule == "linear" and decay_steps <= 0:
        raise EbganError("margin_schedule 'linear' needs margin_decay_steps > 0 (steps to reach 0)")
    if schedule == "constant" and decay_steps:
        raise EbganError("margin_decay_steps is used by margin_schedule linear or auto; drop it or set the schedule")
    if schedule == "auto" and pretrain_steps <= 0:
        raise EbganError("margin_schedule 'auto' needs pretrain_steps > 0 (autoencoder steps on real data, e.g. 500)")
    if schedule != "auto" and pretrain_steps:
        raise EbganError("pretrain_steps is used only by margin_schedule auto (and magan); drop it or set the schedule")
    if schedule == "auto" and margin is not None and not constructor:
        raise EbganError("margin_schedule 'auto' sets the margin from pretraining; drop margin")
    if schedule != "auto" and margin is None and constructor:
        raise EbganError("EBGAN needs a margin (or margin_schedule 'auto')")


def pretrain_autoencoder(trainer, steps: int, energy_fn, batches: int = AUTO_MARGIN_BATCHES) -> float:
    """Train ``trainer.D`` as an autoencoder on real data, return the mean real energy after.

    ``energy_fn(D, x)`` gives per-sample energies; their batch mean is minimised for
    ``steps`` Adam steps with the run's lr_d and betas. The optimizer and the data order
    (seed + 3) are private to pretraining, so the training run's own optimizer state and
    batch order are untouched. Returns the mean energy of ``batches`` more real batches.
    """
    from ebgan.data import EpochBatches

    cfg, D = trainer.cfg, trainer.D
    data = EpochBatches(trainer.batches.images, cfg.batch_size, seed=cfg.seed + 3, device=trainer.batches.device)
    opt = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    D.requires_grad_(True)
    for _ in range(steps):
        loss = energy_fn(D, data.next()).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        energies = torch.cat([energy_fn(D, data.next()).float() for _ in range(max(1, batches))])
    return float(energies.mean())


def _margin_default(cfg) -> float:
    """The paper's MNIST margin (10 on ||r||, eq. 13) in the configured energy's units; 2-D toys
    get TOY_MARGIN, since ||r|| of a 2-D point is O(0.1), not O(10)."""
    from ebgan.data.toy import TOY_MARGIN, is_toy

    if is_toy(cfg.dataset):
        return margin_in_units(TOY_MARGIN, cfg.options["energy"], (2,))
    # channels is the dataset's own by now; None is left for folder:PATH, which loads as RGB unless
    # --channels 1 (ebgan.data.sources.load_images), as the networks are built
    shape = (cfg.channels or 3, cfg.image_size, cfg.image_size)
    return margin_in_units(PAPER_MARGIN_L2, cfg.options["energy"], shape)


ENERGY_OPTION = Option(
    "energy", str, "l2", "units of the autoencoder energy: l2 (the paper's ||r||), l2sq, mse", choices=ENERGIES
)
PRETRAIN_OPTION = Option(
    "pretrain_steps", int, 0, "autoencoder pretraining steps on real data before step 0", check=at_least(0)
)
PT_WEIGHT_OPTION = Option("pt_weight", float, 0.1, "weight of the pull-away term f_PT (eq. 14)", check=positive)


class EBGAN(Objective):
    """EBGAN with an autoencoder discriminator; ``pt_weight > 0`` makes it EBGAN-PT."""

    name = "ebgan"
    state_metrics = ("margin",)
    discriminator_kind = "autoencoder"
    options: ClassVar[tuple[Option, ...]] = (
        ENERGY_OPTION,
        Option(
            "margin",
            float,
            None,
            "hinge margin m; default: 10 in L2 units (the paper's MNIST value) converted to the energy's units",
            check=at_least(0),
        ),
        Option(
            "margin_schedule",
            str,
            "constant",
            "constant, linear (to 0 over margin_decay_steps), auto (m from pretraining the autoencoder)",
            choices=MARGIN_SCHEDULES,
        ),
        Option(
            "margin_decay_steps", int, 0, "steps for the linear (or auto) schedule to bring m to 0", check=at_least(0)
        ),
        PRETRAIN_OPTION,
    )

    @classmethod
    def resolve(cls, cfg) -> None:
        o = cfg.options
        check_schedule(o["margin_schedule"], o["margin_decay_steps"], o["pretrain_steps"], o["margin"])
        if o["margin"] is None and o["margin_schedule"] != "auto":
            o["margin"] = _margin_default(cfg)

    def __init__(
        self,
        margin: float | None = None,
        pt_weight: float = 0.0,
        energy: str = "l2",
        margin_schedule: str = "constant",
        margin_decay_steps: int = 0,
        pretrain_steps: int = 0,
    ):
        EBGAN.check_options(
            margin=margin,
            energy=energy,
            margin_schedule=margin_schedule,
            margin_decay_steps=margin_decay_steps,
            pretrain_steps=pretrain_steps,
        )
        if pt_weight:
            PT_WEIGHT_OPTION.validate(pt_weight, "ebgan-pt")
        check_schedule(margin_schedule, margin_decay_steps, pretrain_steps, margin, constructor=True)
        self.name = "ebgan-pt" if pt_weight > 0 else "ebgan"
        self.initial_margin = self.margin = float(margin or 0.0)  # auto: set by prepare()
        self.pt_weight = float(pt_weight)
        self.energy_kind = energy
        self.margin_schedule = margin_schedule
        self.margin_decay_steps = margin_decay_steps
        self.pretrain_steps = int(pretrain_steps)

    def energy(self, D: nn.Module, x: torch.Tensor) -> torch.Tensor:
        recon, _ = D(x)
        return reconstruction_energy(x, recon, self.energy_kind)

    def discriminator_loss(self, D, real, fake) -> tuple[torch.Tensor, Metrics]:
        e_real = self.energy(D, real)
        e_fake = self.energy(D, fake)
        loss = discriminator_hinge_loss(e_real, e_fake, self.margin)
        return loss, {
            "loss_d": loss.detach(),
            "energy_real": e_real.detach().mean(),
            "energy_fake": e_fake.detach().mean(),
            # share of fake samples still pushed up by the hinge (0: the margin is met)
            "hinge_active": (e_fake.detach() < self.margin).float().mean(),
            "margin": torch.tensor(self.margin),
        }

    def generator_loss(self, D, fake) -> tuple[torch.Tensor, Metrics]:
        recon, embedding = D(fake)
        e_fake = reconstruction_energy(fake, recon, self.energy_kind)  # target not detached
        loss = e_fake.mean()
        metrics = {"energy_fake_g": e_fake.detach().mean()}
        if self.pt_weight > 0:
            pt = pull_away(self.dist.gather(embedding))  # over the global batch under torchrun
            loss = loss + self.pt_weight * pt
            metrics["pull_away"] = pt.detach()
        metrics["loss_g"] = loss.detach()
        return loss, metrics

    def prepare(self, trainer) -> None:
        if self.margin_schedule == "auto":
            self.initial_margin = self.margin = pretrain_autoencoder(trainer, self.pretrain_steps, self.energy)

    def end_step(self, step: int) -> None:
        decays = self.margin_schedule == "auto" and self.margin_decay_steps > 0
        if self.margin_schedule == "linear" or decays:
            self.margin = self.initial_margin * max(0.0, 1.0 - step / self.margin_decay_steps)

    def state_dict(self) -> dict:
        return {"margin": self.margin, "initial_margin": self.initial_margin}

    def load_state_dict(self, state: dict) -> None:
        self.margin = state["margin"]
        self.initial_margin = state["initial_margin"]


class EBGANPT(EBGAN):
    """EBGAN-PT: EBGAN plus the pull-away term on the encoder's embeddings of G(z) (eq. 14)."""

    name = "ebgan-pt"
    options = EBGAN.options + (PT_WEIGHT_OPTION,)

    @classmethod
    def resolve(cls, cfg) -> None:
        super().resolve(cfg)
        if cfg.batch_size < 2:
            raise EbganError(
                "the pull-away term is undefined for a batch of 1 (it averages over pairs); use --batch-size >= 2"
            )
