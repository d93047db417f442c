"""A run folder's life: one writer at a time, dead starts reusable, resume that changes nothing
until it proceeds, metrics cut back to the checkpoint, no checkpoint of diverged weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch
from tests.conftest import TOY_TRAIN_ARGS, synthetic_images

from ebgan.cli import main
from ebgan.config import Config
from ebgan.errors import EbganError
from ebgan.objectives import EBGANPT
from ebgan.train import Trainer
from ebgan.train.trainer import Diverged

TOY = [*TOY_TRAIN_ARGS, "--log-every", "1"]


def toy(out, *extra, resume=False):
    where = ["--resume", str(out)] if resume else ["--out", str(out), *TOY]
    return main(["train", *where, *extra])


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def steps_logged(folder):
    return [json.loads(line)["step"] for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path, capsys):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "ebgan",
        "train",
        "--out",
        str(run),
        *TOY,
        "--steps",
        "1000000",
        "--checkpoint-every",
        "0",
    ]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / "metrics.jsonl").exists():
            time.sleep(0.1)
        before = (run / "config.yaml").read_bytes()
        assert toy(run, "--steps", "5") == 2  # a second fresh start into the same folder
        assert f"in use by another ebgan process (PID {proc.pid})" in capsys.readouterr().err
        assert (run / "config.yaml").read_bytes() == before
    finally:
        proc.kill()
        proc.wait()
    # the kernel released the dead process's lock: the folder (no checkpoint yet) is reusable at once
    assert toy(run, "--steps", "2") == 0


def test_a_start_that_died_before_its_first_checkpoint_is_reused_by_out(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text("12345")  # the first file a start makes
    (run / "config.yaml").write_text("dataset: toy:parabola\n")
    (run / "metrics.jsonl").write_text('{"step": 7, "loss_d": 1.0}\n')
    assert toy(run, "--steps", "1", resume=True) == 2
    assert f"start it again with --out {run}" in capsys.readouterr().err
    assert toy(run, "--steps", "2") == 0
    assert steps_logged(run) == [1, 2]


def test_out_never_deletes_files_of_those_names_that_no_run_wrote(tmp_path, capsys):
    """A folder of the user's own (a preset config.yaml, a samples/ folder) is not a dead start."""
    folder = tmp_path / "project"
    (folder / "samples").mkdir(parents=True)
    (folder / "samples" / "mine.png").write_bytes(b"precious")
    (folder / "config.yaml").write_text("steps: 3\n")
    before = snapshot(folder)
    assert toy(folder, "--steps", "1") == 2
    err = capsys.readouterr().err
    assert "holds config.yaml, samples that no ebgan run wrote" in err and "--out" in err
    assert snapshot(folder) == before and not (folder / ".lock").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("files of other names are not in a run's way")
    assert toy(other, "--steps", "1") == 0
    assert (other / "notes.txt").read_text() == "files of other names are not in a run's way"


def test_resume_cuts_metrics_back_to_its_checkpoint(tmp_path):
    run = tmp_path / "run"
    assert toy(run, "--steps", "3") == 0
    with open(run / "metrics.jsonl", "a") as f:  # what a run killed after its checkpoint leaves
        f.write('{"step": 4, "loss_d": 1.0}\n{"step": 5, "lo')
    assert toy(run, "--steps", "5", resume=True) == 0
    assert steps_logged(run) == [1, 2, 3, 4, 5]


def test_resume_drops_the_grids_of_steps_after_its_checkpoint(tmp_path):
    """A session killed after its checkpoint leaves grids of later steps; a resume that stops before
    them must not keep them, nor report.md show one as the run's last samples."""
    from ebgan.files import save_png

    for i, img in enumerate(synthetic_images(16)):
        save_png(tmp_path / "imgs" / f"{i}.png", img.numpy())
    run = tmp_path / "run"
    args = ["--dataset", f"folder:{tmp_path / 'imgs'}", "--channels", "1", "--batch-size", "8", "--latent-dim", "8"]
    assert main(["train", "--out", str(run), *args, "--steps", "2", "--sample-every", "1", "--no-progress"]) == 0
    grids = run / "samples"
    (grids / "step_000004.png").write_bytes((grids / "step_000002.png").read_bytes())  # the killed session's
    assert main(["train", "--resume", str(run), "--steps", "3", "--no-progress"]) == 0
    assert sorted(p.name for p in grids.iterdir()) == [f"step_00000{i}.png" for i in (1, 2, 3)]
    assert "## Samples at step 3" in (run / "report.md").read_text()


def test_a_resume_that_cannot_proceed_changes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    assert toy(run, "--steps", "4") == 0
    before = snapshot(run)
    assert toy(run, "--steps", "2", resume=True) == 2
    assert "has done 4 steps" in capsys.readouterr().err
    assert toy(run, "--steps", "6", "--batch-size", "8", resume=True) == 2
    assert snapshot(run) == before


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("keep me")
    assert toy(path, "--steps", "1") == 2
    assert "is a file, not a run folder" in capsys.readouterr().err
    assert path.read_text() == "keep me"


def test_divergence_stops_at_the_first_bad_step_keeping_the_last_good_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = EBGANPT.generator_loss

    def nan_at_third(self, D, fake):
        loss, m = original(self, D, fake)
        calls["n"] += 1
        if calls["n"] == 3:
            loss = loss * float("nan")
            m["loss_g"] = loss.detach()
        return loss, m

    monkeypatch.setattr(EBGANPT, "generator_loss", nan_at_third)
    cfg = Config(
        image_size=16, latent_dim=4, batch_size=8, steps=6, log_every=5, checkpoint_every=2, sample_every=0
    ).resolve()
    trainer = Trainer(cfg, synthetic_images(32, size=16), run_dir=tmp_path / "run")
    with pytest.raises(Diverged, match="diverged at step 3: loss_g = nan; the last good checkpoint \\(step 2\\)"):
        trainer.train(progress=False)
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 2
    assert isinstance(Diverged("x"), EbganError)  # so the CLI prints one line and exits 2
