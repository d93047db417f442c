"""`ebgan train` and `ebgan sample` end to end on a small folder of PNGs."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from tests.conftest import TOY_TRAIN_ARGS, synthetic_images

from ebgan.cli import main
from ebgan.files import save_png
from ebgan.generator_io import load_generator

FAST = ["--batch-size", "8", "--latent-dim", "8", "--log-every", "1", "--sample-every", "2", "--no-progress"]


@pytest.fixture
def image_folder(tmp_path) -> Path:
    folder = tmp_path / "imgs"
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True)
    for i, img in enumerate(synthetic_images(24)):
        save_png(folder / ("a" if i % 2 else "b") / f"{i}.png", img.numpy())
    return folder


def train(folder, out, *extra):
    return main(["train", "--dataset", f"folder:{folder}", "--channels", "1", "--out", str(out), *FAST, *extra])


def test_train_writes_a_complete_run_and_resume_extends_it(image_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(image_folder, run, "--steps", "3", "--checkpoint-every", "2") == 0
    for name in (
        "config.yaml",
        "checkpoint.pt",
        "generator.safetensors",
        "generator.json",
        "metrics.jsonl",
        "losses.png",
        "report.md",
    ):
        assert (run / name).is_file(), name
    assert (run / "samples" / "step_000002.png").is_file()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["margin"] == 10.0 and saved["pt_weight"] == 0.1 and saved["steps"] == 3

    assert main(["train", "--resume", str(run), "--steps", "5", "--no-progress"]) == 0
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 5
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 5
    assert yaml.safe_load((run / "config.yaml").read_text())["steps"] == 5


def test_resume_refuses_a_changed_config(image_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(image_folder, run, "--steps", "2") == 0
    before = (run / "checkpoint.pt").read_bytes()
    assert main(["train", "--resume", str(run), "--steps", "4", "--batch-size", "4"]) == 2
    err = capsys.readouterr().err
    assert "batch_size: 8 -> 4" in err and "resume refuses" in err
    assert (run / "checkpoint.pt").read_bytes() == before  # nothing lost


def test_refuses_an_output_folder_holding_a_run(image_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(image_folder, run, "--steps", "1") == 0
    config_before = (run / "config.yaml").read_text()
    assert train(image_folder, run, "--steps", "1") == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (run / "config.yaml").read_text() == config_before


def test_refuses_a_checkpoint_from_another_model(image_folder, tmp_path, capsys):
    mlp_run, conv_run = tmp_path / "mlp", tmp_path / "conv"
    mlp_args = ["--model", "mlp", "--model-args", "n_layer_g=2,size_g=16,n_layer_d=2,size_d=16"]
    assert train(image_folder, mlp_run, "--steps", "1", *mlp_args) == 0
    assert train(image_folder, conv_run, "--steps", "1") == 0
    (conv_run / "checkpoint.pt").write_bytes((mlp_run / "checkpoint.pt").read_bytes())
    assert main(["train", "--resume", str(conv_run), "--steps", "2"]) == 2
    assert "another model" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config", "nope.yaml"], "no preset or file 'nope.yaml'"),
        (["--margin", "-1"], "margin must be >= 0"),
        (["--batch-size", "1"], "batch of 1"),
        (["--model", "seed33"], "did you mean 'seed32'"),
        (["--model-args", "n_layer_g=3"], "has no option"),
        # sizes below 1 and negative init scales: named, not an internal error (exit 1) from torch
        (["--model", "mlp", "--model-args", "size_g=-5"], "size_g must be at least 1, got -5"),
        (["--model", "mlp", "--model-args", "size_d=0"], "size_d must be at least 1, got 0"),
        (["--model", "mlp", "--model-args", "init_std_g=-1"], "init_std_g must be >= 0, got -1.0"),
        (["--model-args", "embedding_dim=0"], "embedding_dim must be at least 1, got 0"),
        (["--model-args", "init_std=-0.1"], "init_std must be >= 0, got -0.1"),
        (["--model", "dcgan", "--model-args", "width_g=0"], "width_g must be at least 1, got 0"),
        (["--model", "dcgan", "--model-args", "width_d=-2"], "width_d must be at least 1, got -2"),
        (["--model", "began", "--model-args", "width=-4"], "width must be at least 1, got -4"),
        (["--model", "began", "--model-args", "embedding_dim=0"], "embedding_dim must be at least 1, got 0"),
    ],
)
def test_bad_input_gets_a_one_line_error_and_writes_nothing(image_folder, tmp_path, capsys, args, message):
    out = tmp_path / "never"
    assert train(image_folder, out, "--steps", "1", *args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_unknown_key_in_preset(image_folder, tmp_path, capsys):
    preset = tmp_path / "p.yaml"
    preset.write_text("margni: 3\n")
    assert train(image_folder, tmp_path / "x", "--config", str(preset)) == 2
    assert "unknown config key 'margni'" in capsys.readouterr().err


def test_dry_run_prints_the_resolved_config(capsys, tmp_path):
    assert main(["train", "--dataset", "mnist", "--energy", "l2sq", "--dry-run"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["margin"] == 100.0 and cfg["dataset"] == "mnist" and cfg["channels"] == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "dcgan", "--image-size", "28"], "dcgan needs square images with a power-of-two side"),
        (["--model", "began", "--model-args", "width=0"], "width must be at least 1, got 0"),
    ],
)
def test_dry_run_refuses_networks_that_cannot_be_built(capsys, args, message):
    # a config --dry-run prints is one that trains: the networks are built (on the meta device) first
    assert main(["train", *args, "--dry-run"]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--amp-dtype", "bf16"], "--amp-dtype has no effect without --amp"),
        (["--ema-decay", "0", "--ema-start", "100"], "--ema-start has no effect without --ema-decay above 0"),
        (["--optim-g", "sgd", "--optim-d", "sgd", "--beta2", "0.9"], "--beta2 has no effect without an Adam"),
    ],
)
def test_a_typed_flag_the_run_would_ignore_is_refused(capsys, args, message):
    # fmnist-dcgan trains in float32: these flags were accepted and silently did nothing
    assert main(["train", "--config", "fmnist-dcgan", *args, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_preset_value_a_flag_switches_off_is_not_refused(capsys):
    # demo sets ema_start and amp; switching EMA or amp off leaves those values unread, and that is
    # what the user asked for
    assert main(["train", "--config", "demo", "--ema-decay", "0", "--no-amp", "--dry-run"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["ema_decay"] == 0 and cfg["amp"] is False
    assert main(["train", "--config", "fmnist-dcgan", "--optim-g", "sgd", "--beta1", "0.9", "--dry-run"]) == 0


def test_model_args_flag_changes_only_the_options_it_names(capsys):
    # fmnist-gan sets n_layer_d 3, size_d 512, dropout_d true, init_std_d 0.02; the mlp family's
    # defaults are 2, 1024, false, 0.002, which a flag that replaced the mapping would bring back.
    assert main(["train", "--config", "fmnist-gan", "--model-args", "dropout_d=false", "--dry-run"]) == 0
    args = yaml.safe_load(capsys.readouterr().out)["model_args"]
    assert (args["n_layer_d"], args["size_d"], args["init_std_d"], args["dropout_d"]) == (3, 512, 0.02, False)
    # another family: the preset's mlp options do not apply to it and are dropped, not refused
    assert main(["train", "--config", "fmnist-gan", "--model", "dcgan", "--dry-run"]) == 0
    assert "n_layer_d" not in yaml.safe_load(capsys.readouterr().out)["model_args"]


def test_missing_dataset_lists_where_it_looked(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("ebgan.data.sources._download_idx", lambda name, split: None)  # offline
    monkeypatch.setattr("ebgan.data.sources.SYSTEM_DATA_DIR", tmp_path / "system")
    out = tmp_path / "run"
    assert main(["train", "--dataset", "mnist", "--data-root", str(tmp_path / "d"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "d" / "mnist") in err and "EBGAN_DATA" in err
    assert not out.exists()


def test_sample_formats(image_folder, tmp_path):
    run = tmp_path / "run"
    assert train(image_folder, run, "--steps", "1") == 0
    assert main(["sample", "--run", str(run), "--n", "10", "--out", str(tmp_path / "s.npz")]) == 0
    images = np.load(tmp_path / "s.npz")["images"]
    assert images.shape == (10, 1, 32, 32) and images.dtype == np.uint8
    # same seed, same samples; another seed, others
    assert main(["sample", "--run", str(run), "--n", "10", "--out", str(tmp_path / "t.npz")]) == 0
    assert np.array_equal(images, np.load(tmp_path / "t.npz")["images"])
    assert main(["sample", "--run", str(run), "--n", "10", "--seed", "1", "--out", str(tmp_path / "u.npz")]) == 0
    assert not np.array_equal(images, np.load(tmp_path / "u.npz")["images"])
    assert main(["sample", "--run", str(run), "--n", "5", "--format", "png", "--out", str(tmp_path / "pngs")]) == 0
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == [f"{i}.png" for i in range(5)]
    assert main(["sample", "--run", str(run), "--n", "16", "--out", str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_sample_of_a_toy_run_writes_its_points_not_images(tmp_path, capsys):
    """A 2-D toy generator's samples are float points (N, 2): as .npz 'points', not [-1, 1] pixels."""
    run = tmp_path / "toy"
    assert main(["train", "--out", str(run), *TOY_TRAIN_ARGS, "--steps", "2"]) == 0
    assert main(["sample", "--run", str(run), "--n", "7", "--seed", "3", "--out", str(tmp_path / "p.npz")]) == 0
    saved = np.load(tmp_path / "p.npz")
    assert saved.files == ["points"] and saved["points"].dtype == np.float32
    G = load_generator(run)
    z = torch.randn(7, G.latent_dim, generator=torch.Generator().manual_seed(3))  # the run draws z ~ N(0, I)
    with torch.no_grad():
        expected = G(z).numpy()
    assert saved["points"].shape == (7, 2) and np.allclose(saved["points"], expected, atol=1e-6)
    capsys.readouterr()
    for out in ("grid.png", "pngs"):
        assert main(["sample", "--run", str(run), "--out", str(tmp_path / out)]) == 2
        assert "2-D toy run: its samples are points" in capsys.readouterr().err
        assert not (tmp_path / out).exists()


@pytest.mark.parametrize("damage", ["emptied", "deleted"])
def test_resume_reads_the_checkpoints_config_when_config_yaml_is_gone(tmp_path, capsys, damage):
    """An empty config.yaml meant every default (a fashion-mnist run, 'not found'), a missing one a dead end."""
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TOY_TRAIN_ARGS, "--steps", "2"]) == 0
    saved = (run / "config.yaml").read_text()
    if damage == "emptied":
        (run / "config.yaml").write_text("")
    else:
        (run / "config.yaml").unlink()
    assert main(["train", "--resume", str(run), "--steps", "3", "--batch-size", "8"]) == 2
    assert "batch_size: 16 -> 8" in capsys.readouterr().err  # compared with the run's own config
    assert main(["train", "--resume", str(run), "--steps", "3"]) == 0
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 3
    assert (run / "config.yaml").read_text() == saved.replace("steps: 2\n", "steps: 3\n")


def test_resume_of_a_finished_run_exports_its_generator_again(tmp_path, capsys):
    """What a damaged generator.json's error advises ('ebgan train --resume RUN') repairs it."""
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TOY_TRAIN_ARGS, "--steps", "2", "--ema-decay", "0.5"]) == 0
    exported = {name: (run / name).read_bytes() for name in ("generator.safetensors", "generator.json")}
    (run / "generator.json").write_text("[]")
    assert main(["sample", "--run", str(run), "--out", str(tmp_path / "p.npz")]) == 2
    assert "export the generator again (ebgan train --resume RUN)" in capsys.readouterr().err
    (run / "generator.safetensors").unlink()
    assert main(["sample", "--run", str(run), "--out", str(tmp_path / "p.npz")]) == 2
    assert f"export it again from the run's checkpoint: ebgan train --resume {run}" in capsys.readouterr().err
    assert main(["train", "--resume", str(run)]) == 0
    assert "already at step 2 of 2 (its generator exported again" in capsys.readouterr().out
    assert {name: (run / name).read_bytes() for name in exported} == exported  # the EMA one, as before
    assert main(["sample", "--run", str(run), "--out", str(tmp_path / "p.npz")]) == 0


def test_sigterm_writes_a_checkpoint_and_resume_finishes(image_folder, tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "ebgan",
        "train",
        "--dataset",
        f"folder:{image_folder}",
        "--channels",
        "1",
        "--out",
        str(run),
        "--steps",
        "100000",
        "--checkpoint-every",
        "0",
        *FAST,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "metrics.jsonl").exists():
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    step = torch.load(run / "checkpoint.pt", weights_only=True)["step"]
    assert step >= 1 and "--resume" in err
    assert main(["train", "--resume", str(run), "--steps", str(step + 2), "--no-progress"]) == 0
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == step + 2


def test_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    assert main(["train", "--config", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ebgan: error: no preset or file") and len(err.strip().splitlines()) == 1
    assert main(["--debug", "train", "--config", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().splitlines()[-1].startswith("ebgan: error:")

    def boom(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("ebgan.commands.sample.run", boom)
    monkeypatch.setenv("EBGAN_DEBUG", "0")
    assert main(["sample", "--run", "x", "--out", "y.npz"]) == 1
    assert "internal error ZeroDivisionError: division by zero (a bug" in capsys.readouterr().err
