"""Autoencoders whose energy is shaped by a regulariser instead of by contrastive samples.

All three keep EBGAN's energy, E(x) = ||Dec(Enc(x)) - x|| (eq. 13, ``energy``), and EBGAN's
autoencoder discriminator, and train on real data alone (no generator), so that each
differs from the plain ``autoencoder`` in exactly one term. They are LeCun's strategies
5 to 7 for keeping an autoencoder's energy from going flat (an over-complete autoencoder
that learns the identity reconstructs everything: zero energy everywhere):

- ``dae`` (strategy 5, Vincent et al. 2008): reconstruct x from x + sigma * eps. The
  reconstruction function learns to move points back toward the data, a dynamical system
  whose fixed points are the manifold (Alain & Bengio 2014: r(x) - x ~ sigma^2 * score).
      L = mean_i || Dec(Enc(x_i + sigma eps_i)) - x_i ||            (noise_std = sigma)
- ``sparse-ae`` (strategy 6): an L1 penalty on the code limits how much of the input
  space can be coded (and so reconstructed) well.
      L = mean_i [ E(x_i) + lambda * ||Enc(x_i)||_1 ]                 (sparsity_weight)
- ``contractive-ae`` (strategy 7, Rifai et al. 2011): penalise the encoder's Jacobian, so
  that Enc (and with it Dec(Enc(y))) is as constant as possible away from the data.
      L = mean_i [ E(x_i) + lambda * ||d Enc(x_i) / d x_i||_F^2 ]     (contraction_weight)
  The squared Frobenius norm is exact for inputs of up to ``EXACT_JACOBIAN_DIMS``
  dimensions (one forward-mode Jacobian-vector product per input axis) and otherwise
  Hutchinson's unbiased estimate E_v ||J v||^2 with one v ~ N(0, I) per sample and step.
  With BatchNorm in train mode (a sample's code depends on its batch) it is an unbiased
  estimate of sum_j ||d Enc(x_i) / d x_j||_F^2 (see ``reconstruction_and_jacobian_sq``).

The random draws (noise, projections) use torch's global generator, whose state the
checkpoint keeps: exact resume holds. Energies at evaluation time are the plain E(x):
the noise and the penalties are training-time terms only.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn as nn

from ebgan.nets.layers import batchnorm_layers
from ebgan.objectives.autoencoder import Autoencoder
from ebgan.objectives.base import Metrics, Option, at_least, positive
from ebgan.objectives.ebgan import ENERGY_OPTION, reconstruction_energy

EXACT_JACOBIAN_DIMS = 8  # up to this input size the Jacobian's norm is exact (one product per axis)

NOISE_OPTION = Option(
    "noise_std",
    float,
    0.1,
    "std of the Gaussian noise added to the input (data units: images in [-1, 1], toys in [-1, 1]^2)",
    check=positive,
)


def penalised(e: torch.Tensor, penalty: torch.Tensor, weight: float, name: str) -> tuple[torch.Tensor, Metrics]:
    """mean_i [E(x_i) + weight * penalty_i], with the energy and the penalty logged apart."""
    loss = (e + weight * penalty).mean()
    return loss, {"loss_d": loss.detach(), "energy_real": e.detach().mean(), name: penalty.detach().mean()}


class DenoisingAutoencoder(Autoencoder):
    name = "dae"
    options = (ENERGY_OPTION, NOISE_OPTION)

    def __init__(self, energy: str = "l2", noise_std: float = 0.1):
        self.check_options(energy=energy, noise_std=noise_std)
        self.energy_kind, self.noise_std = energy, noise_std

    def discriminator_loss(self, D: nn.Module, real, fake) -> tuple[torch.Tensor, Metrics]:
        noisy = real + self.noise_std * torch.randn_like(real)
        recon, _ = D(noisy)
        e = reconstruction_energy(real, recon, self.energy_kind)  # the clean x is the target
        loss = e.mean()
        return loss, {"loss_d": loss.detach(), "energy_real": e.detach().mean()}


class SparseAutoencoder(Autoencoder):
    name = "sparse-ae"
    options = (
        ENERGY_OPTION,
        Option("sparsity_weight", float, 1e-3, "weight lambda of the L1 norm of the code Enc(x)", check=at_least(0)),
    )

    def __init__(self, energy: str = "l2", sparsity_weight: float = 1e-3):
        self.check_options(energy=energy, sparsity_weight=sparsity_weight)
        self.energy_kind, self.sparsity_weight = energy, sparsity_weight

    def discriminator_loss(self, D: nn.Module, real, fake) -> tuple[torch.Tensor, Metrics]:
        recon, code = D(real)
        e = reconstruction_energy(real, recon, self.energy_kind)
        return penalised(e, code.float().flatten(1).abs().sum(1), self.sparsity_weight, "code_l1")


class ContractiveAutoencoder(Autoencoder):
    name = "contractive-ae"
    input_gradients = True  # the Jacobian of the code with respect to x
    options = (
        ENERGY_OPTION,
        Option(
            "contraction_weight",
            float,
            0.01,
            "weight lambda of ||dEnc(x)/dx||_F^2, the encoder Jacobian's squared Frobenius norm",
            check=at_least(0),
        ),
    )

    def __init__(self, energy: str = "l2", contraction_weight: float = 0.01):
        self.check_options(energy=energy, contraction_weight=contraction_weight)
        self.energy_kind, self.contraction_weight = energy, contraction_weight

    def discriminator_loss(self, D: nn.Module, real, fake) -> tuple[torch.Tensor, Metrics]:
        recon, jac = reconstruction_and_jacobian_sq(D, real)
        e = reconstruction_energy(real, recon, self.energy_kind)
        return penalised(e, jac, self.contraction_weight, "jacobian_sq")


def reconstruction_and_jacobian_sq(D: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """D's reconstruction of ``x`` and the per-sample ||d Enc(x_i) / d x_i||_F^2 (N,), both differentiable.

    Jacobian-vector products by forward-mode AD (a dual input), so that the penalty's
    gradient is a second derivative, which BatchNorm supports (the double-backward trick
    would need a third). Exact for inputs of up to EXACT_JACOBIAN_DIMS dimensions (one
    product per axis), else one Hutchinson sample v ~ N(0, I): E_v ||J v||^2 = ||J||_F^2.
    Each product is one forward pass. In train mode BatchNorm couples a batch: a direction
    shared by every sample is a shift of the batch mean, which BatchNorm subtracts, so
    J v would be 0. Each sample's axis direction therefore gets its own random sign; then
    E ||(J v)_i||^2 = sum_j ||d Enc(x_i) / d x_j||_F^2, the per-sample norm plus O(1/N)
    cross-sample terms (and exactly the per-sample norm when samples are not coupled).
    """
    flat = x.detach().flatten(1)
    if flat.shape[1] <= EXACT_JACOBIAN_DIMS:
        eye = torch.eye(flat.shape[1], device=x.device, dtype=x.dtype)
        signs = torch.randint(0, 2, (flat.shape[0], 1), device=x.device).to(x.dtype) * 2 - 1
        directions = [signs * eye[k] for k in range(flat.shape[1])]
    else:
        directions = [torch.randn_like(flat)]
    total = torch.zeros(x.shape[0], device=x.device)
    recon = None
    for i, v in enumerate(directions):
        # The passes see one batch: BatchNorm's running statistics count it once (the first pass),
        # as under any other objective's single forward pass, not once per input axis.
        with _running_statistics_frozen(D) if i else contextlib.nullcontext(), fwAD.dual_level():
            with warnings.catch_warnings():  # its first use imports torch's jvp decompositions, which
                # warn that torch.jit.script is deprecated: torch's own business, not the user's
                warnings.filterwarnings("ignore", message=".*torch.jit.script.* is deprecated", category=FutureWarning)
                dual = fwAD.make_dual(x.detach(), v.reshape(x.shape))
            recon_dual, code_dual = D(dual)
            jv = fwAD.unpack_dual(code_dual).tangent
            if recon is None:
                recon = fwAD.unpack_dual(recon_dual).primal
        total = total + jv.float().flatten(1).pow(2).sum(1)
    assert recon is not None
    return recon, total


@contextlib.contextmanager
def _running_statistics_frozen(D: nn.Module) -> Iterator[None]:
    """BatchNorm layers keep their running statistics: momentum 0 leaves them as they are (in
    place, so the autograd graph of an earlier pass stays valid), and the batch count is put back."""
    norms = batchnorm_layers(D)
    saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        with torch.no_grad():
            for m, (momentum, tracked) in zip(norms, saved, strict=True):
                m.momentum = momentum
                if tracked is not None and m.num_batches_tracked is not None:
                    m.num_batches_tracked.copy_(tracked)
