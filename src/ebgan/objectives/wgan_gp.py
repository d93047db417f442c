"""WGAN-GP (Gulrajani et al., NeurIPS 2017, Algorithm 1).

    L_D = E[C(G(z))] - E[C(x)] + gp_weight * E[(||grad_xh C(xh)||_2 - 1)^2]     (eq. 3)
    L_G = -E[C(G(z))]
    xh  = e x + (1 - e) G(z),  e ~ U[0, 1] per sample

The gradient norm is taken per sample over all of its pixels. ``n_critic`` critic steps
per generator step (the trainer's ``d_steps``). The penalty is per sample, so the critic
must not mix samples: a critic with BatchNorm is refused (the paper uses none, or
layer norm).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ebgan.errors import EbganError
from ebgan.objectives.base import Metrics, Objective, Option, at_least, check_no_batchnorm, critic_without_batchnorm


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor | None = None):
    """Returns (E[(||grad C(xh)|| - 1)^2], per-sample gradient norms) on random interpolates.

    ``eps`` (shape (N,)) fixes the interpolation weights; by default e ~ U[0, 1] from the
    global RNG (saved in checkpoints). The graph is kept so the penalty trains C.
    """
    if eps is None:
        eps = torch.rand(real.shape[0], device=real.device)
    eps = eps.to(real.dtype).view(-1, *([1] * (real.dim() - 1)))
    xh = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    score = D(xh).float()
    (grad,) = torch.autograd.grad(score.sum(), xh, create_graph=True)
    norms = torch.linalg.vector_norm(grad.float().flatten(1), dim=1)
    return (norms - 1).pow(2).mean(), norms


class WGANGP(Objective):
    name = "wgan-gp"
    discriminator_kind = "critic"
    input_gradients = True  # the penalty's gradient with respect to the interpolates
    options = (
        Option(
            "gp_weight",
            float,
            10.0,
            "gradient penalty weight lambda",
            # lambda = 0 leaves the critic unconstrained: its loss E C(G(z)) - E C(x) has no minimum
            check=lambda v: None if v > 0 else "must be > 0 (0 leaves the critic unbounded; the paper uses 10)",
        ),
        Option("n_critic", int, 5, "critic steps per generator step", check=at_least(1)),
    )

    @classmethod
    def resolve(cls, cfg) -> None:
        if cfg.compile:
            raise EbganError(
                "wgan-gp's gradient penalty needs a double backward, which torch.compile does not "
                "support; drop --compile"
            )
        critic_without_batchnorm(cfg, "its gradient penalty is per sample")

    def __init__(self, gp_weight: float = 10.0, n_critic: int = 5):
        self.check_options(gp_weight=gp_weight, n_critic=n_critic)
        self.gp_weight, self.d_steps = float(gp_weight), int(n_critic)

    def energy(self, D, x: torch.Tensor) -> torch.Tensor:
        return -D(x).float()  # the critic scores real data high

    def discriminator_loss(self, D, real, fake) -> tuple[torch.Tensor, Metrics]:
        check_no_batchnorm(D, "WGAN-GP's gradient penalty is per sample")
        c_real, c_fake = D(real).float(), D(fake).float()
        wasserstein = c_real.mean() - c_fake.mean()  # the critic's estimate of W(p_data, p_G)
        gp, norms = gradient_penalty(D, real, fake)
        loss = -wasserstein + self.gp_weight * gp
        return loss, {
            "loss_d": loss.detach(),
            "wasserstein": wasserstein.detach(),
            "gradient_penalty": gp.detach(),
            "grad_norm": norms.detach().mean(),
        }

    def generator_loss(self, D, fake) -> tuple[torch.Tensor, Metrics]:
        loss = -D(fake).float().mean()
        return loss, {"loss_g": loss.detach()}
