"""ebgan.generator_io: the exported generator loads without the training code and samples reproducibly."""

from __future__ import annotations

import pytest
import torch

from ebgan.errors import EbganError
from ebgan.generator_io import export_generator, load_generator, sample_images
from ebgan.nets import build_generator, sample_latent

ARGS = {"n_layer_g": 2, "size_g": 16}


@pytest.fixture
def exported(tmp_path):
    torch.manual_seed(0)
    G = build_generator("mlp", 4, (1, 8, 8), ARGS)
    export_generator(G, tmp_path, "mlp", ARGS, extra={"dataset": "mnist"})
    return G.eval(), tmp_path


def test_round_trip_gives_the_same_images(exported):
    G, folder = exported
    z = torch.randn(3, 4)
    loaded = load_generator(folder)
    assert torch.equal(loaded(z), G(z))
    assert torch.equal(load_generator(folder / "generator.safetensors")(z), G(z))


def test_same_seed_same_samples_whatever_the_batch_size(exported):
    G, _ = exported
    a = sample_images(G, 10, seed=3, batch_size=4)
    # Same latents whatever the batch size: the images agree to float rounding, not bit for bit,
    # because BLAS may pick a different matmul kernel for 4 rows than for 10 (seen on AMD EPYC + MKL).
    z = torch.randn(10, G.latent_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        by_hand = G(z)
    torch.testing.assert_close(a, by_hand, rtol=0, atol=1e-6)
    torch.testing.assert_close(sample_images(G, 10, seed=3, batch_size=10), by_hand, rtol=0, atol=1e-6)
    assert not torch.equal(a, sample_images(G, 10, seed=4))
    # the first samples of a larger draw are the same draws
    assert torch.equal(sample_images(G, 4, seed=3), a[:4])


def test_missing_or_diverged_generators_are_refused(exported, tmp_path):
    G, folder = exported
    with pytest.raises(EbganError, match="does not exist"):
        load_generator(tmp_path / "nowhere")
    with torch.no_grad():
        next(G.parameters()).fill_(float("nan"))
    with pytest.raises(EbganError, match="not finite"):
        sample_images(G, 2)


@pytest.mark.parametrize(
    "spec, why",
    [
        ("[]", "TypeError: a JSON list, not an object"),
        ("null", "TypeError: a JSON NoneType, not an object"),
        ('{"model": "mlp", "model_args": {}, "latent_dim": -1, "image_shape": [1, 8, 8]}', "RuntimeError"),
    ],
)
def test_a_damaged_spec_is_named_not_an_internal_error(exported, spec, why):
    _, folder = exported
    (folder / "generator.json").write_text(spec)
    with pytest.raises(EbganError, match=f"generator.json is damaged or not an ebgan generator spec \\({why}"):
        load_generator(folder)


def test_an_export_cut_between_its_two_files_is_refused_not_mislabelled(exported, monkeypatch):
    """A kill after the weights and before the JSON left the next export's weights described by the
    previous one's JSON (its step, raw or EMA)."""
    import ebgan.files

    G, folder = exported
    newer = build_generator("mlp", 4, (1, 8, 8), ARGS)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ebgan.files, "write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        export_generator(newer, folder, "mlp", ARGS, extra={"dataset": "mnist", "step": 9})
    with pytest.raises(EbganError, match="generator.json does not describe .*generator.safetensors"):
        load_generator(folder)


def test_weights_of_another_network_name_the_first_mismatch(exported):
    """Not torch's heading alone ('Error(s) in loading state_dict for Generator:')."""
    from safetensors.torch import save_file

    _, folder = exported
    wider = build_generator("mlp", 4, (1, 8, 8), {**ARGS, "size_g": 32})
    save_file(wider.state_dict(), str(folder / "generator.safetensors"))
    with pytest.raises(EbganError, match=r"size mismatch for net\.0\.weight: .*\[32, 4\].*\[16, 4\]"):
        load_generator(folder)


def _as_an_older_export(folder):
    """The same tensors without the spec in their metadata, as exports before 2026-11-24 were."""
    from safetensors.torch import load_file, save_file

    weights = folder / "generator.safetensors"
    save_file(load_file(str(weights)), str(weights))


def test_weights_exported_without_their_spec_still_load(exported):
    G, folder = exported
    _as_an_older_export(folder)
    z = torch.randn(3, 4)
    assert torch.equal(load_generator(folder)(z), G(z))


def test_sample_latent_draws_the_named_distribution():
    gen = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    assert torch.equal(sample_latent(4, 3, "normal", gen()), torch.randn(4, 3, generator=gen()))
    u = sample_latent(20000, 8, "uniform", gen())
    assert u.min() >= -1 and u.max() <= 1
    # U[-1, 1]: mean 0, variance (b - a)^2 / 12 = 1/3; the standard error of the mean is 0.0018
    assert abs(u.mean().item()) < 0.01 and u.var().item() == pytest.approx(1 / 3, rel=0.02)
    with pytest.raises(EbganError, match="uniform"):
        sample_latent(2, 3, "gaussian")


def test_a_uniform_latent_generator_exports_and_samples_its_own_z(tmp_path):
    torch.manual_seed(0)
    G = build_generator("mlp", 4, (1, 8, 8), ARGS, latent="uniform")
    export_generator(G, tmp_path, "mlp", ARGS)
    loaded = load_generator(tmp_path)
    assert loaded.latent == "uniform"
    z = torch.rand(6, 4, generator=torch.Generator().manual_seed(2)) * 2 - 1  # U[-1, 1], by hand
    with torch.no_grad():
        by_hand = G.eval()(z)
    torch.testing.assert_close(sample_images(loaded, 6, seed=2), by_hand, rtol=0, atol=1e-6)


def test_an_export_without_a_latent_entry_samples_normal_z(exported):
    import json

    _, folder = exported
    _as_an_older_export(folder)
    spec = json.loads((folder / "generator.json").read_text())
    assert spec.pop("latent") == "normal"
    (folder / "generator.json").write_text(json.dumps(spec))  # as written before z's distribution was an option
    assert load_generator(folder).latent == "normal"
