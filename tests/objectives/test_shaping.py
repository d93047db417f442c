"""Energies shaped without a generator: each checked on a case whose answer is known."""

import math

import pytest
import torch
import torch.nn as nn
from tests.conftest import synthetic_images

from ebgan.config import Config
from ebgan.data.toy import make_toy, manifold_distance
from ebgan.errors import EbganError
from ebgan.nets.mlp import AutoencoderDiscriminator
from ebgan.objectives import build_objective
from ebgan.objectives.regularised_autoencoders import (
    ContractiveAutoencoder,
    SparseAutoencoder,
    reconstruction_and_jacobian_sq,
)
from ebgan.objectives.scalar_energies import ContrastiveDivergence, GridLikelihood
from ebgan.train import Trainer

TOY = dict(
    model="mlp",
    model_args={"n_layer_g": 2, "size_g": 16, "n_layer_d": 3, "size_d": 64},
    latent_dim=2,
    batch_size=128,
    lr_d=1e-3,
    lr_g=1e-3,
    log_every=50,
    sample_every=0,
    checkpoint_every=0,
    device="cpu",
)


def _train(data, **kw) -> Trainer:
    cfg = Config.from_dict({**TOY, "dataset": "toy:parabola", **kw}, "test").resolve()
    trainer = Trainer(cfg, data)
    trainer.train(progress=False)
    return trainer


def _gaussian(n=4000, mean=(0.2, -0.1), std=0.15, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.tensor(mean) + std * torch.randn(n, 2, generator=g)


def test_grid_likelihood_density_integrates_to_one_on_a_finer_grid_and_finds_the_mean():
    data = _gaussian()
    trainer = _train(data, objective="grid-likelihood", steps=400, grid_resolution=48)
    obj, D = trainer.objective, trainer.D
    # Normalised on the training grid (48^2 cells), integrated with the midpoint rule on a 4x finer grid:
    # a wrong cell area or an off-by-one grid would miss 1 by far more than the quadrature error.
    fine = GridLikelihood(grid_resolution=192)
    points, area = fine.grid("cpu")
    with torch.no_grad():
        log_z = obj.log_partition(D, "cpu")
        density = torch.exp(-obj.energy(D, points) - log_z)
    assert float(density.sum() * area) == pytest.approx(1.0, abs=0.02)
    mean = (density[:, None] * points).sum(0) * area
    assert torch.allclose(mean, torch.tensor([0.2, -0.1]), atol=0.03)


def test_grid_likelihood_refuses_images():
    with pytest.raises(EbganError, match="2-D dataset"):
        Config.from_dict({"dataset": "fashion-mnist", "objective": "grid-likelihood", "model": "mlp"}).resolve()


class Quadratic(nn.Module):
    """E(x) = ||x - c||^2 / (2 v): the energy of an isotropic Gaussian, mean c and variance v learnt."""

    def __init__(self):
        super().__init__()
        self.c = nn.Parameter(torch.zeros(2))
        self.log_v = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return (x - self.c).pow(2).sum(1) / (2 * self.log_v.exp())


def test_denoising_score_matching_recovers_a_gaussians_score():
    # Data N(mu, s^2 I) smoothed by the noise N(0, sigma^2 I) is N(mu, (s^2 + sigma^2) I): its score is
    # -(x - mu) / (s^2 + sigma^2), so the DSM loss's minimiser among Gaussian energies is c = mu and
    # v = s^2 + sigma^2 (not s^2: DSM fits the smoothed density).
    from ebgan.objectives.scalar_energies import DenoisingScoreMatching

    torch.manual_seed(0)
    s, sigma = 0.15, 0.1
    data = _gaussian(20000, mean=(0.2, -0.1), std=s)
    E, dsm = Quadratic(), DenoisingScoreMatching(noise_std=sigma)
    opt = torch.optim.Adam(E.parameters(), lr=0.02)
    for _step in range(1500):
        batch = data[torch.randint(len(data), (512,))]
        loss, _ = dsm.discriminator_loss(E, batch, None)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.allclose(E.c.detach(), torch.tensor([0.2, -0.1]), atol=0.01)
    assert float(E.log_v.detach().exp()) == pytest.approx(s**2 + sigma**2, rel=0.05)


def test_denoising_autoencoder_reconstruction_points_toward_the_manifold():
    data = make_toy("toy:parabola", 6000, seed=0)
    trainer = _train(data, objective="dae", steps=1500, noise_std=0.05)
    g = torch.Generator().manual_seed(3)
    on = make_toy("toy:parabola", 500, seed=1)
    off = on + 0.06 * torch.randn(500, 2, generator=g)  # points pushed off the curve
    D = trainer.D.eval()
    with torch.no_grad():
        recon, _ = D(off)
    before, after = manifold_distance("toy:parabola", off), manifold_distance("toy:parabola", recon)
    moved = before > 0.03
    assert (after[moved] < before[moved]).float().mean() > 0.8
    assert after[moved].mean() < 0.6 * before[moved].mean()


def test_contractive_penalty_is_the_jacobians_frobenius_norm():
    torch.manual_seed(0)
    D = AutoencoderDiscriminator((2,), n_layer_d=3, size_d=16, init_std_d=0.3).eval()  # eval: no batch coupling
    x = torch.randn(5, 2)
    recon, jac = reconstruction_and_jacobian_sq(D, x)
    for i in range(5):
        J = torch.autograd.functional.jacobian(lambda v: D(v.unsqueeze(0))[1][0], x[i])
        assert float(jac[i].detach()) == pytest.approx(float(J.pow(2).sum()), rel=1e-4)
    assert torch.allclose(recon, D(x)[0])
    # Inputs above EXACT_JACOBIAN_DIMS: one Hutchinson draw, unbiased: its mean over draws is the norm.
    D16 = AutoencoderDiscriminator((16,), n_layer_d=2, size_d=8, init_std_d=0.3).eval()
    x16 = torch.randn(1, 16)
    exact = torch.autograd.functional.jacobian(lambda v: D16(v)[1], x16).pow(2).sum()
    draws = torch.stack([reconstruction_and_jacobian_sq(D16, x16)[1][0] for _ in range(3000)])
    assert float(draws.detach().mean()) == pytest.approx(float(exact), rel=0.06)


def test_contractive_penalty_survives_batchnorm_in_train_mode():
    # Train mode, as in training: BatchNorm subtracts the batch mean, so a direction shared by every
    # sample is invisible to it and the penalty was 0. The intended quantity is each sample's row of
    # the whole batch's Jacobian, sum_j ||d Enc(x_i) / d x_j||_F^2, here from autograd on the batch.
    torch.manual_seed(0)
    D = AutoencoderDiscriminator((2,), n_layer_d=3, size_d=16, init_std_d=0.3).train()
    x = torch.randn(16, 2)
    full = torch.autograd.functional.jacobian(lambda v: D(v)[1], x)  # (16, 16, 16, 2): code_i by x_j
    rows = full.pow(2).sum((1, 2, 3))
    draws = torch.stack([reconstruction_and_jacobian_sq(D, x)[1].detach() for _ in range(300)])
    assert torch.allclose(draws.mean(0), rows, rtol=0.1)


def test_contractive_penalty_counts_the_batch_once_in_batchnorms_running_statistics():
    # One forward pass per input axis: each updated the running statistics, so eval-mode energies
    # came from statistics weighted as if every batch had been seen twice (2-D inputs). They must
    # move exactly as under one plain forward pass of the same batch.
    torch.manual_seed(0)
    D = AutoencoderDiscriminator((2,), n_layer_d=3, size_d=16, init_std_d=0.3).train()
    plain = AutoencoderDiscriminator((2,), n_layer_d=3, size_d=16, init_std_d=0.3).train()
    plain.load_state_dict(D.state_dict())
    x = torch.randn(32, 2) * 3 + 5  # far from the initial statistics (mean 0, var 1)
    reconstruction_and_jacobian_sq(D, x)
    with torch.no_grad():
        plain(x)
    buffers = dict(D.named_buffers())
    assert any("running_mean" in k for k in buffers)
    for k, b in plain.named_buffers():
        assert torch.equal(buffers[k], b), k


def test_sparse_and_contractive_losses_add_their_penalty_to_the_energy():
    torch.manual_seed(0)
    D = AutoencoderDiscriminator((2,), n_layer_d=3, size_d=8, init_std_d=0.3)
    x = torch.randn(16, 2)
    recon, code = D(x)
    energy = (recon - x).norm(dim=1)
    loss, m = SparseAutoencoder(sparsity_weight=0.5).discriminator_loss(D, x, None)
    assert float(loss.detach()) == pytest.approx(float((energy + 0.5 * code.abs().sum(1)).mean().detach()), rel=1e-5)
    loss0, _ = ContractiveAutoencoder(contraction_weight=0.0).discriminator_loss(D, x, None)
    assert float(loss0.detach()) == pytest.approx(float(D(x)[0].sub(x).norm(dim=1).mean().detach()), rel=1e-5)


class Bowl(nn.Module):
    """E(x) = ||x - c||^2: Langevin steps without noise must walk down to c."""

    def __init__(self):
        super().__init__()
        self.c = nn.Parameter(torch.tensor([0.3, -0.2]))

    def forward(self, x):
        return (x - self.c).pow(2).sum(1)


def test_langevin_descends_the_energy_and_stays_in_bounds():
    cd = ContrastiveDivergence(langevin_steps=200, langevin_step_size=0.05, langevin_noise=0.0, bound=1.0)
    start = torch.rand(64, 2) * 2 - 1
    end = cd.langevin(Bowl(), start)
    assert torch.allclose(end, torch.tensor([0.3, -0.2]).expand(64, 2), atol=1e-3)
    noisy = ContrastiveDivergence(langevin_steps=50, langevin_step_size=1.0, langevin_noise=1.0, bound=0.5)
    assert noisy.langevin(Bowl(), start).abs().max() <= 0.5


def test_contrastive_divergence_resumes_exactly_with_its_replay_buffer(tmp_path):
    data = make_toy("toy:parabola", 600, seed=0)
    kw = dict(TOY, dataset="toy:parabola", objective="cd", steps=6, langevin_steps=3, buffer_size=300)
    cfg = Config.from_dict(kw, "test").resolve()
    whole = Trainer(cfg, data, run_dir=tmp_path / "whole")
    whole.train(progress=False)
    first = Trainer(cfg, data, run_dir=tmp_path / "halves")
    first.train(steps=3, progress=False)
    torch.manual_seed(999)  # a new process's RNG
    second = Trainer(cfg, data, run_dir=tmp_path / "halves", resume=True)
    second.train(progress=False)
    assert torch.equal(whole.objective.buffer, second.objective.buffer)
    for k, v in whole.D.state_dict().items():
        assert torch.equal(v, second.D.state_dict()[k]), k


@pytest.mark.parametrize("objective", ["autoencoder", "dae", "sparse-ae", "contractive-ae", "dsm", "cd"])
def test_energies_without_a_generator_never_run_or_change_G(objective):
    images = synthetic_images(64, size=16)
    cfg = Config.from_dict(
        {
            **TOY,
            "dataset": "folder:unused",
            "image_size": 16,
            "objective": objective,
            "steps": 3,
            "batch_size": 16,
            **({"langevin_steps": 2} if objective == "cd" else {}),
        },
        "test",
    ).resolve()
    trainer = Trainer(cfg, images)
    assert not build_objective(cfg).trains_generator
    before = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    noise_state = trainer.noise.get_state()
    trainer.train(progress=False)
    assert all(torch.equal(before[k], v) for k, v in trainer.G.state_dict().items())
    assert torch.equal(trainer.noise.get_state(), noise_state)  # no z drawn
    with torch.no_grad():
        energy = trainer.objective.energy(trainer.D.eval(), images[:4].float() / 127.5 - 1)
    assert math.isfinite(float(energy.sum()))


@pytest.mark.parametrize("objective", ["dsm", "cd"])
def test_scalar_energies_refuse_a_batchnorm_critic(objective):
    # With BatchNorm in train mode, d(sum_i E(x_i))/dx_j is not dE(x_j)/dx_j (measured: 27% off for a
    # dcgan critic at batch 64), so the score DSM regresses and the Langevin drift would be wrong.
    from ebgan.nets import build_discriminator

    C = build_discriminator("dcgan", "critic", (1, 16, 16), {"width_d": 4, "batchnorm_d": True})
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    with pytest.raises(EbganError, match="BatchNorm"):
        build_objective(Config(objective=objective, model="dcgan").resolve()).discriminator_loss(C, x, None)
    with pytest.raises(EbganError, match="batchnorm_d=false"):
        Config(objective=objective, model="dcgan", model_args={"batchnorm_d": True}).resolve()
    assert Config(objective=objective, model="dcgan").resolve().model_args["batchnorm_d"] is False


def test_contractive_penalty_prints_no_torch_deprecation_warning():
    """forward-mode AD's first use imports torch's jvp decompositions, which warn that torch.jit.script
    is deprecated: a torch-internal line on stderr of every contractive-ae run (anomaly, energy shapes).
    A fresh process, since the import happens once."""
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from ebgan.nets.mlp import AutoencoderDiscriminator\n"
        "from ebgan.objectives.regularised_autoencoders import reconstruction_and_jacobian_sq\n"
        "reconstruction_and_jacobian_sq(AutoencoderDiscriminator((2,), n_layer_d=2, size_d=4), torch.zeros(3, 2))\n"
    )
    done = subprocess.run([sys.executable, "-W", "error::FutureWarning", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
