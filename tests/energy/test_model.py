"""BatchNorm re-estimation (``recalibrate_batchnorm``): dropout stays in eval mode, statistics match a
hand computation, every module's mode and every RNG are left as found, and the energy-frames hook
does not change training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from ebgan import Config, Trainer, load_training_data
from ebgan.energy import EnergyFrames, recalibrate_batchnorm
from ebgan.nets.mlp import AutoencoderDiscriminator


def dropout_d(seed: int = 0) -> nn.Module:
    """The paper's mlp D on 2-D points with dropout: Dropout, Linear, BN, ReLU twice, then Dropout, Linear."""
    torch.manual_seed(seed)
    D = AutoencoderDiscriminator((2,), n_layer_d=3, size_d=8, dropout_d=True, init_std_d=0.5)
    for m in D.modules():
        if isinstance(m, nn.BatchNorm1d):  # non-trivial affine maps, so the second layer's statistics depend on them
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return D


def by_hand(D: nn.Module, x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Running (mean, unbiased var) each BN layer gets from one batch x, in float64 NumPy, dropout as identity."""
    linears = [m for m in D.encoder if isinstance(m, nn.Linear)]
    norms = [m for m in D.encoder if isinstance(m, nn.BatchNorm1d)]
    out, a = [], x.astype(np.float64)
    for lin, bn in zip(linears, norms):
        h = a @ lin.weight.detach().double().numpy().T + lin.bias.detach().double().numpy()
        out.append((h.mean(0), h.var(0, ddof=1)))
        normed = (h - h.mean(0)) / np.sqrt(h.var(0) + bn.eps)  # train-mode BN: biased batch variance
        a = np.maximum(normed * bn.weight.detach().double().numpy() + bn.bias.detach().double().numpy(), 0)
    return out


def test_statistics_are_those_of_eval_mode_dropout():
    D = dropout_d().train()
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    assert recalibrate_batchnorm(D, x, batch_size=64) == 1
    norms = [m for m in D.encoder if isinstance(m, nn.BatchNorm1d)]
    assert len(norms) == 2
    for bn, (mean, var) in zip(norms, by_hand(D, x.numpy())):
        assert np.allclose(bn.running_mean.double().numpy(), mean, rtol=1e-4, atol=1e-6)
        assert np.allclose(bn.running_var.double().numpy(), var, rtol=1e-4, atol=1e-6)


def test_several_batches_average_to_the_mean_of_all_samples():
    # Equal batches covering all the data: the first layer's mean is the data's, whatever the order.
    D = dropout_d()
    x = torch.randn(192, 2, generator=torch.Generator().manual_seed(2))
    assert recalibrate_batchnorm(D, x, batch_size=64) == 3
    first = next(m for m in D.encoder if isinstance(m, nn.BatchNorm1d))
    assert np.allclose(first.running_mean.double().numpy(), by_hand(D, x.numpy())[0][0], rtol=1e-4, atol=1e-6)


def test_every_module_keeps_its_mode():
    D = dropout_d().train()
    D.decoder[0].eval()  # a mixed state is restored as it was, module by module
    before = [m.training for m in D.modules()]
    recalibrate_batchnorm(D, torch.randn(64, 2), batch_size=32)
    assert [m.training for m in D.modules()] == before
    D.eval()
    recalibrate_batchnorm(D, torch.randn(64, 2), batch_size=32)
    assert not any(m.training for m in D.modules())


class Jitter(nn.Module):
    """Draws from the global RNG in any mode (as a noise layer would)."""

    def forward(self, x):
        return x + 0 * torch.randn_like(x)


def test_global_random_state_is_left_as_found():
    D = nn.Sequential(nn.Linear(2, 4), Jitter(), nn.Dropout(0.5), nn.BatchNorm1d(4))
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    recalibrate_batchnorm(D, torch.randn(64, 2, generator=torch.Generator().manual_seed(0)), batch_size=16)
    assert torch.equal(torch.get_rng_state(), cpu)
    if cuda is not None:
        assert all(torch.equal(a, b) for a, b in zip(torch.cuda.get_rng_state_all(), cuda))


def test_a_recalibration_error_restores_the_modes():
    D = dropout_d().train()
    with pytest.raises(RuntimeError):
        recalibrate_batchnorm(D, torch.randn(64, 3), batch_size=32)  # 3-D points into a 2-D D
    assert all(m.training for m in D.modules())
    assert all(m.momentum == 0.1 for m in D.modules() if isinstance(m, nn.BatchNorm1d))


def test_energy_frames_leave_a_dropout_run_bit_identical():
    cfg = Config(
        dataset="toy:parabola",
        model="mlp",
        latent_dim=4,
        steps=40,
        batch_size=64,
        lr_g=1e-3,
        lr_d=1e-3,
        model_args={"n_layer_g": 2, "size_g": 32, "n_layer_d": 3, "size_d": 32, "dropout_d": True},
        log_every=50,
        sample_every=0,
        checkpoint_every=0,
    ).resolve()
    watched = Trainer(cfg, load_training_data(cfg))
    frames = EnergyFrames(every=5, resolution=8, n_points=10)
    watched.hooks.append(frames)
    watched.train(progress=False)
    plain = Trainer(cfg, load_training_data(cfg))
    plain.train(progress=False)
    assert frames.steps == [1, 5, 10, 15, 20, 25, 30, 35, 40]  # the hook ran
    for net in ("G", "D"):
        a, b = getattr(watched, net).state_dict(), getattr(plain, net).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), net
