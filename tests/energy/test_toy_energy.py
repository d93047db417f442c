"""A trained toy model's energy is low on the manifold and high off it; frames and surfaces."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from ebgan import Config, Trainer, load_training_data
from ebgan.data.toy import make_toy, mixture_of
from ebgan.energy import (
    EnergyFrames,
    load_energy_model,
    model_from_modules,
    plot_surface,
    recalibrate_batchnorm,
)

FAST = dict(
    dataset="toy:8gaussians",
    model="mlp",
    model_args={"n_layer_g": 3, "size_g": 64, "n_layer_d": 3, "size_d": 64},
    latent_dim=4,
    margin=0.2,
    batch_size=128,
    lr_g=1e-3,
    lr_d=1e-3,
    log_every=50,
    sample_every=0,
    checkpoint_every=0,
)


def far_points(n: int = 2000) -> torch.Tensor:
    """Points of [-1, 1]^2 at least 0.25 from every mode: off the manifold, inside the plotted plane."""
    pts = torch.rand(4 * n, 2, generator=torch.Generator().manual_seed(7)) * 2 - 1
    centres = mixture_of("toy:8gaussians").centres
    return pts[torch.cdist(pts, centres).min(dim=1).values > 0.25][:n]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy") / "run"
    cfg = Config(steps=300, **FAST).resolve()
    trainer = Trainer(cfg, load_training_data(cfg), run_dir=folder)
    trainer.hooks.append(EnergyFrames(every=100, resolution=32, n_points=50))
    trainer.train(progress=False)
    return folder, trainer


def test_trained_energy_is_lower_on_the_manifold_than_off_it(trained_run):
    folder, _ = trained_run
    model = load_energy_model(folder)
    on = model.energies(make_toy("toy:8gaussians", 2000, seed=123)).mean()
    off = model.energies(far_points()).mean()
    # Untrained, D reconstructs ~0 and the energy is ~|x|: 0.8 on the ring, less off it. Training reverses that.
    assert on * 1.5 < off, (float(on), float(off))


def test_untrained_model_fails_the_same_check():
    # Guards the test above: it is not passed by the initialisation alone.
    cfg = Config(steps=1, **FAST).resolve()
    trainer = Trainer(cfg, load_training_data(cfg))
    model = model_from_modules(trainer.D, trainer.objective, cfg, (2,))
    assert (
        not model.energies(make_toy("toy:8gaussians", 2000, seed=123)).mean() * 1.5
        < model.energies(far_points()).mean()
    )


def test_loaded_energies_match_the_trainers_d_in_eval_mode(trained_run):
    folder, trainer = trained_run
    x = make_toy("toy:8gaussians", 100, seed=9)
    in_memory = model_from_modules(trainer.D, trainer.objective, trainer.cfg, (2,)).energies(x)
    assert torch.allclose(load_energy_model(folder, bn_stats="saved").energies(x), in_memory, atol=1e-6)
    assert trainer.D.training  # scoring restores train mode


def test_frames_recorded_and_training_unchanged_by_the_hook(trained_run):
    folder, trainer = trained_run
    with np.load(folder / "energy_frames.npz") as f:
        assert f["steps"].tolist() == [1, 100, 200, 300]
        assert f["grids"].shape == (4, 32, 32) and f["fakes"].shape == (4, 50, 2)
    # The hook uses its own noise and eval mode only: a run without it ends with the same G.
    cfg = Config(steps=300, **FAST).resolve()
    plain = Trainer(cfg, load_training_data(cfg))
    plain.train(progress=False)
    for a, b in zip(plain.G.state_dict().values(), trainer.G.state_dict().values()):
        assert torch.equal(a, b)


def test_surface_plot_is_written(trained_run, tmp_path):
    folder, _ = trained_run
    out = plot_surface(
        load_energy_model(folder), tmp_path / "s.png", real=make_toy("toy:8gaussians", 50).numpy(), resolution=24
    )
    assert out.stat().st_size > 1000


def test_batchnorm_recalibration_keeps_weights_and_the_energy_ordering(trained_run):
    folder, _ = trained_run
    model = load_energy_model(folder)
    weights = {k: v.clone() for k, v in model.D.state_dict().items() if "running" not in k and "num_batches" not in k}
    data = make_toy("toy:8gaussians", 5000, seed=0)
    assert recalibrate_batchnorm(model.D, data, batch_size=128, max_batches=20) == 20
    assert not model.D.training
    for k, v in weights.items():
        assert torch.equal(model.D.state_dict()[k], v)
    assert model.energies(data[:2000]).mean() * 1.5 < model.energies(far_points()).mean()
    # Statistics recomputed on exactly one batch are that batch's own: once the running
    # variance (unbiased, /127) is brought to the biased one (/128) that training mode uses,
    # eval-mode energies equal the train-mode (batch-statistics) energies.
    one_batch = data[:128]
    assert recalibrate_batchnorm(model.D, one_batch, batch_size=128) == 1
    for m in model.D.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_var.mul_(127 / 128)
    in_train_mode = copy.deepcopy(model.D).train()  # a train-mode pass would move D's running stats
    with torch.no_grad():
        batch_energies = model.objective.energy(in_train_mode, one_batch)
    assert torch.allclose(model.energies(one_batch), batch_energies, rtol=1e-4, atol=1e-5)


def test_toy_metrics_of_a_run(trained_run, tmp_path):
    from ebgan import EbganError
    from ebgan.metrics.toy import is_toy_run, toy_metrics

    folder, _ = trained_run
    assert is_toy_run(folder) and not is_toy_run(tmp_path)
    m = toy_metrics(folder, n=500)
    assert m["n_modes"] == 8 and m["n_samples"] == 500 and 0 <= m["modes"] <= 8 and 0 <= m["high_quality"] <= 1
    with pytest.raises(EbganError, match="no config.yaml"):
        toy_metrics(tmp_path)


def test_ebgan_eval_prints_toy_mode_coverage(trained_run, capsys):
    import json

    from ebgan.cli import main

    folder, _ = trained_run
    assert main(["eval", "--run", str(folder), "--n", "500", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_modes"] == 8 and result["n_samples"] == 500 and "high_quality" in result
    assert main(["eval", "--run", str(folder), "--n", "500"]) == 0
    assert "modes captured:" in capsys.readouterr().out


def test_python_loader_recomputes_batchnorm_statistics_as_the_cli_does(trained_run):
    folder, _ = trained_run
    x = make_toy("toy:8gaussians", 200, seed=5)
    saved = load_energy_model(folder, bn_stats="saved")
    manual = load_energy_model(folder, bn_stats="saved")
    manual.recalibrate()
    default = load_energy_model(folder)
    assert torch.allclose(default.energies(x), manual.energies(x))
    # the saved running averages mix real and generated batches, so they differ
    assert not torch.allclose(default.energies(x), saved.energies(x), atol=1e-4)
