"""began: BEGAN's own networks (Berthelot et al. 2017, Figure 1)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from tests.conftest import synthetic_images

from ebgan.config import Config, load_preset
from ebgan.errors import EbganError
from ebgan.nets import build_discriminator, build_generator
from ebgan.train import Trainer


@pytest.mark.parametrize("side, n_scales", [(32, 3), (64, 4)])
def test_shapes_scales_and_channels(side, n_scales):
    args = {"width": 8, "embedding_dim": 16}
    G = build_generator("began", 64, (3, side, side), args)
    D = build_discriminator("began", "autoencoder", (3, side, side), args)
    x = G(torch.randn(2, 64))
    assert x.shape == (2, 3, side, side) and x.abs().max() <= 1
    recon, h = D(x)
    assert recon.shape == x.shape and h.shape == (2, 16)
    # the encoder's stride-2 convs: one fewer than the scales, channels n -> 2n -> 3n ...
    strided = [m for m in D.encoder.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert [(m.in_channels, m.out_channels) for m in strided] == [(8 * i, 8 * (i + 1)) for i in range(1, n_scales)]
    # nearest-neighbour up-sampling in the decoder and in G, one fewer than the scales
    for net in (D.decoder, G):
        ups = [m for m in net.modules() if isinstance(m, nn.Upsample)]
        assert len(ups) == n_scales - 1 and all(m.mode == "nearest" for m in ups)
    # 3x3 kernels and ELU throughout, fully connected h of 16 from an 8x8 map of n * scales channels
    assert all(m.kernel_size == (3, 3) for m in D.modules() if isinstance(m, nn.Conv2d))
    assert D.encoder.fc.in_features == 8 * 8 * 8 * n_scales and D.encoder.fc.out_features == 16
    assert not any(isinstance(m, (nn.ReLU, nn.LeakyReLU)) for m in [*G.modules(), *D.modules()])


def test_linear_output_as_in_the_paper():
    """tanh: false leaves G's last layer a convolution, so its output is not bounded to [-1, 1]."""
    G = build_generator("began", 8, (1, 16, 16), {"width": 4, "tanh": False})
    assert isinstance(list(G.modules())[-1], nn.Conv2d)
    with torch.no_grad():
        last = list(G.modules())[-1]
        last.bias.fill_(3.0)  # a linear output passes a bias of 3 through; tanh would cap it below 1
        last.weight.zero_()
        assert torch.allclose(G(torch.randn(2, 8)), torch.full((2, 1, 16, 16), 3.0))
    assert isinstance(list(build_generator("began", 8, (1, 16, 16), {"width": 4}).modules())[-1], nn.Tanh)


def test_no_batchnorm_anywhere():
    nets = [build_generator("began", 64, (1, 32, 32)), build_discriminator("began", "autoencoder", (1, 32, 32))]
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for net in nets for m in net.modules())


def test_sizes_it_cannot_take():
    with pytest.raises(EbganError, match="power-of-two side"):
        build_generator("began", 64, (1, 28, 28))


def test_the_preset_trains_began_on_its_networks():
    values = load_preset("fmnist-began")
    assert values["model"] == "began" and values["latent_dim"] == 64 and values["batch_size"] == 16
    tiny = {**values["model_args"], "width": 4, "embedding_dim": 8}  # the preset's other options (skip) kept
    cfg = Config(**{**values, "model_args": tiny, "steps": 2}).resolve()
    trainer = Trainer(cfg, synthetic_images(32))
    trainer.train(progress=False)
    assert trainer.step == 2 and 0.0 <= trainer.objective.k <= 1.0
    assert trainer.G.latent == "uniform"  # the paper's z, carried from the preset into the generator


def test_wgan_gp_preset_uses_algorithm_1s_adam():
    values = load_preset("fmnist-wgan-gp")
    assert (values["lr_g"], values["lr_d"], values["beta1"], values["beta2"]) == (1e-4, 1e-4, 0.0, 0.9)
    assert (values["gp_weight"], values["n_critic"]) == (10.0, 5)


def test_skip_connections_feed_h0_to_every_upsampled_scale():
    n = 4
    G = build_generator("began", 8, (1, 32, 32), {"width": n, "skip": True})
    D = build_discriminator("began", "autoencoder", (1, 32, 32), {"width": n, "embedding_dim": 8, "skip": True})
    for dec in (G.decoder, D.decoder):
        convs = [m for m in dec.body if isinstance(m, nn.Conv2d)]
        # two convs per scale; the first after each of the 2 up-samplings takes x and h0: 2n channels
        assert [m.in_channels for m in convs] == [n, n, 2 * n, n, 2 * n, n, n]
    seen = []
    convs = [m for m in G.decoder.body if isinstance(m, nn.Conv2d)]
    for i in (2, 4):
        convs[i].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    z = torch.randn(3, 8)
    G(z)
    h0 = G.decoder.fc(z).view(3, n, 8, 8)
    for x, factor in zip(seen, (2, 4)):
        # h0 up-sampled by repeating each pixel (nearest neighbour), written independently of the module
        up = h0.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)
        torch.testing.assert_close(x[:, n:], up)


def test_without_skip_the_state_dict_keys_are_unchanged():
    # runs saved before the skip option existed must still load
    D = build_discriminator("began", "autoencoder", (1, 32, 32), {"width": 4, "embedding_dim": 8})
    keys = [k for k in D.state_dict() if k.startswith("decoder.body")]
    assert keys == [f"decoder.body.{i}.{p}" for i in (0, 2, 5, 7, 10, 12, 14) for p in ("weight", "bias")]


def test_a_run_saved_before_skip_existed_still_resumes(tmp_path):
    # Its config.yaml and checkpoint hold model_args without "skip"; the resume check compares
    # resolved configs, so the missing option counts at its default (off, what the run had).
    import yaml

    from ebgan.cli import build_parser
    from ebgan.commands.train import resolve_config

    values = {**load_preset("fmnist-began"), "model_args": {"width": 4, "embedding_dim": 8}, "steps": 2}
    run = tmp_path / "run"
    Trainer(Config(**values).resolve(), synthetic_images(32), run_dir=run).train(progress=False)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model_args"].pop("skip") is False
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    del state["config"]["model_args"]["skip"]
    torch.save(state, run / "checkpoint.pt")
    args = build_parser().parse_args(["train", "--resume", str(run), "--steps", "3"])
    cfg = resolve_config(args)  # the CLI's check against config.yaml
    assert cfg.model_args["skip"] is False
    resumed = Trainer(cfg, synthetic_images(32), run_dir=run, resume=True)  # the check against the checkpoint
    resumed.train(progress=False)
    assert resumed.step == 3
    changed = build_parser().parse_args(["train", "--resume", str(run), "--model-args", "width=8,embedding_dim=8"])
    with pytest.raises(EbganError, match="resume refuses a changed config .model_args"):
        resolve_config(changed)  # a real change is still refused
