"""ebgan.report: the end-of-run summary reads metrics.jsonl as written."""

from __future__ import annotations

import json

from ebgan.config import Config
from ebgan.report import write_report


def test_report_lists_the_last_metrics_and_the_margin_in_force(tmp_path):
    lines = [
        {"step": 10, "loss_d": 3.0, "margin": 10.0, "images_per_s": 100.0},
        {"step": 20, "loss_d": 2.5, "margin": 7.5, "images_per_s": 300.0},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    cfg = Config(objective="ebgan", margin_schedule="linear", margin_decay_steps=40, steps=20).resolve()
    text = write_report(tmp_path, cfg, wall_seconds=12.0).read_text()
    assert "steps: 20 of 20" in text
    assert "margin: 7.5 at the last logged step (linear schedule)" in text
    assert "training speed: 300 images/s" in text  # the first interval (warm-up) is left out of the mean
    assert "| loss_d | 2.5 |" in text
    assert (tmp_path / "losses.png").read_bytes()[:4] == b"\x89PNG"


def test_no_metrics_still_gives_a_report_without_a_plot(tmp_path):
    text = write_report(tmp_path, Config(objective="gan", model="mlp").resolve()).read_text()
    assert "objective gan: gan_loss non-saturating" in text
    assert not (tmp_path / "losses.png").exists()


def test_the_report_says_which_generator_its_grids_and_export_are(tmp_path):
    """An EMA run's grids and generator.safetensors are the EMA generator's, not G's: the report says so."""
    from ebgan.cli import main
    from ebgan.files import save_png
    from tests.conftest import TOY_TRAIN_ARGS, synthetic_images

    for i, img in enumerate(synthetic_images(16)):
        save_png(tmp_path / "imgs" / f"{i}.png", img.numpy())
    run = tmp_path / "run"
    args = ["--dataset", f"folder:{tmp_path / 'imgs'}", "--channels", "1", "--batch-size", "8", "--latent-dim", "8"]
    assert main(["train", "--out", str(run), *args, "--steps", "3", "--ema-decay", "0.5", "--no-progress"]) == 0
    text = (run / "report.md").read_text()
    assert "- generator (generator.safetensors and the sample grids): ema (decay 0.5, from step 0), " in text
    assert "exported at step 3" in text and "## Samples at step 3" in text
    toy = tmp_path / "toy"  # no grids: points
    assert main(["train", "--out", str(toy), *TOY_TRAIN_ARGS, "--steps", "2"]) == 0
    assert "- generator (generator.safetensors): raw, exported at step 2\n" in (toy / "report.md").read_text()


def test_the_samples_shown_are_the_last_steps_grid(tmp_path):
    """Grids are chosen by step: past step 999,999 the names grow a digit and sort before the earlier
    ones; a file that only looks like a grid is not one."""
    (tmp_path / "samples").mkdir()
    for name in ("step_999999.png", "step_1000000.png", "step_notes.png"):
        (tmp_path / "samples" / name).write_bytes(b"")
    text = write_report(tmp_path, Config(objective="gan", model="mlp").resolve()).read_text()
    assert "## Samples at step 1000000\n\n![samples](samples/step_1000000.png)" in text
