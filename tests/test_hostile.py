"""Hostile but realistic input, as a careless or malicious user gives it (issue: "Hostile input
and failures"). Each case: the command, inputs made here, the exit code, a fragment of the
one-line message, and a check that nothing in the run folder changed."""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import torch
import yaml

from ebgan.cli import main
from ebgan.config import Config
from ebgan.errors import EbganError
from ebgan.files import save_png
from ebgan.train import Trainer
from tests.conftest import TOY_TRAIN_ARGS, CodeRunningPayload, synthetic_images

TOY = TOY_TRAIN_ARGS


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> pathlib.Path:
    """A finished 2-step toy run to damage copies of."""
    folder = tmp_path_factory.mktemp("toy") / "run"
    assert main(["train", "--out", str(folder), *TOY, "--steps", "2"]) == 0
    return folder


@pytest.fixture
def run(toy_run, tmp_path) -> pathlib.Path:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(toy_run, copy)
    return copy


@dataclass
class Case:
    name: str
    args: Callable[[pathlib.Path, pathlib.Path], list[str]]  # (run folder, tmp) -> argv
    code: int
    message: str
    prepare: Callable[[pathlib.Path, pathlib.Path], None] = field(default=lambda run, tmp: None)


def _folder_train(t: pathlib.Path, *extra: str) -> list[str]:
    return ["train", "--out", str(t / "new"), "--dataset", f"folder:{t / 'imgs'}", "--channels", "1", *extra]


def _yaml(tmp, values):
    path = tmp / "preset.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def _write(path: pathlib.Path, data: bytes | str):
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _mixed_folder(t: pathlib.Path):
    for i, im in enumerate(synthetic_images(8)):
        save_png(t / "imgs" / f"{i}.png", im.numpy())
    save_png(t / "imgs" / "strip.png", torch.zeros(1, 1, 200, dtype=torch.uint8).numpy())


def _bomb_folder(t: pathlib.Path):
    from PIL import Image

    (t / "imgs").mkdir()
    Image.new("1", (20000, 20000)).save(t / "imgs" / "bomb.png")  # 400 Mpixel, a few kB on disk


def _evil(path: pathlib.Path, marker: pathlib.Path):
    torch.save({"G": CodeRunningPayload(marker)}, path)


CASES = [
    # --- config values: type, finiteness, range, checked before any folder is made
    Case(
        "float steps",
        lambda r, t: ["train", "--out", str(t / "new"), "--config", _yaml(t, {"steps": 3.7})],
        2,
        "steps must be a whole number, got 3.7",
    ),
    Case(
        "string bool",
        lambda r, t: ["train", "--out", str(t / "new"), "--config", _yaml(t, {"amp": "false"})],
        2,
        "amp must be true or false, got 'false'",
    ),
    Case(
        "float batch",
        lambda r, t: ["train", "--out", str(t / "new"), "--config", _yaml(t, {"batch_size": 8.5})],
        2,
        "batch_size must be a whole number",
    ),
    Case("inf margin", lambda r, t: ["train", "--out", str(t / "new"), "--margin", "inf"], 2, "finite number"),
    Case("inf pt weight", lambda r, t: ["train", "--out", str(t / "new"), "--pt-weight", "inf"], 2, "finite number"),
    Case(
        "negative lr",
        lambda r, t: ["train", "--out", str(t / "new"), "--lr-d", "-0.001"],
        2,
        "lr_d must be a positive learning rate",
    ),
    Case(
        "option of another objective",
        lambda r, t: ["train", "--out", str(t / "new"), "--gp-weight", "5"],
        2,
        "objective 'ebgan-pt' does not use gp_weight",
    ),
    Case(
        "broken preset",
        lambda r, t: ["train", "--out", str(t / "new"), "--config", str(t / "bad.yaml")],
        2,
        "is not valid YAML",
        lambda r, t: _write(t / "bad.yaml", "steps: [1,\n"),
    ),
    # --- networks and data that cannot work together
    Case(
        "batch of one with pull-away",
        lambda r, t: ["train", "--out", str(t / "new"), *TOY, "--batch-size", "1"],
        2,
        "batch of 1",
    ),
    Case(
        "batch of one with BatchNorm",
        lambda r, t: ["train", "--out", str(t / "new"), *TOY, "--objective", "ebgan", "--batch-size", "1"],
        2,
        "has BatchNorm, which needs batches of 2 or more",
    ),
    Case(
        "batch larger than the data",
        lambda r, t: [
            "train",
            "--out",
            str(t / "new"),
            "--dataset",
            f"folder:{t / 'imgs'}",
            "--channels",
            "1",
            "--batch-size",
            "64",
        ],
        2,
        "exceeds the 8 training samples",
        lambda r, t: [save_png(t / "imgs" / f"{i}.png", im.numpy()) for i, im in enumerate(synthetic_images(8))],
    ),
    Case(
        "image size the network cannot take",
        lambda r, t: [
            "train",
            "--out",
            str(t / "new"),
            "--dataset",
            f"folder:{t / 'imgs'}",
            "--channels",
            "1",
            "--image-size",
            "18",
            "--fit",
            "resize",
            "--steps",
            "1",
            "--batch-size",
            "4",
        ],
        2,
        "needs square images with a side divisible by 4, got 18x18",
        lambda r, t: [save_png(t / "imgs" / f"{i}.png", im.numpy()) for i, im in enumerate(synthetic_images(8))],
    ),
    Case(
        "one tiny image in a folder",
        lambda r, t: _folder_train(t, "--batch-size", "4"),
        2,
        "less than 1/2 of the folder's common size 32x32 (e.g. ",
        lambda r, t: _mixed_folder(t),
    ),
    Case(
        "decompression bomb",
        lambda r, t: _folder_train(t, "--batch-size", "4"),
        2,
        "decompression bomb",
        lambda r, t: _bomb_folder(t),
    ),
    Case(
        "unknown device",
        lambda r, t: ["train", "--out", str(t / "new"), *TOY, "--device", "tpu7"],
        2,
        "unknown device 'tpu7'",
    ),
    # --- run folders
    Case(
        "out is a file",
        lambda r, t: ["train", "--out", str(t / "file"), *TOY],
        2,
        "is a file, not a run folder",
        lambda r, t: _write(t / "file", "mine"),
    ),
    Case("out holds a run", lambda r, t: ["train", "--out", str(r), *TOY], 2, "already holds a run"),
    Case("resume with fewer steps", lambda r, t: ["train", "--resume", str(r), "--steps", "1"], 2, "has done 2 steps"),
    Case(
        "resume a missing folder",
        lambda r, t: ["train", "--resume", str(t / "nowhere")],
        2,
        "does not exist; start a run there with --out",
    ),
    Case(
        "broken config.yaml",
        lambda r, t: ["train", "--resume", str(r), "--steps", "4"],
        2,
        "is not valid YAML",
        lambda r, t: _write(r / "config.yaml", "dataset: [\n"),
    ),
    Case(
        "checkpoint without its keys",
        lambda r, t: ["train", "--resume", str(r), "--steps", "4"],
        2,
        "lacks",
        lambda r, t: torch.save({"format": 1, "config": {}}, r / "checkpoint.pt"),
    ),
    Case(
        "checkpoint that would run code",
        lambda r, t: ["train", "--resume", str(r), "--steps", "4"],
        2,
        "cannot read checkpoint",
        lambda r, t: _evil(r / "checkpoint.pt", t / "marker"),
    ),
    Case(
        "broken generator.json",
        lambda r, t: ["sample", "--run", str(r), "--out", str(t / "s.npz")],
        2,
        "generator.json is damaged",
        lambda r, t: _write(r / "generator.json", "{not json"),
    ),
    Case(
        "model_args of the wrong type",
        lambda r, t: ["train", "--out", str(t / "new"), *TOY, "--model-args", "n_layer_g=abc"],
        2,
        "model_args of 'mlp': n_layer_g must be a whole number, got 'abc'",
    ),
    Case(
        "negative seed", lambda r, t: ["train", "--out", str(t / "new"), *TOY, "--seed", "-1"], 2, "seed must be >= 0"
    ),
    Case(
        "seed beyond torch's 64 bits",
        lambda r, t: ["train", "--out", str(t / "new"), *TOY, "--seed", str(2**64)],
        2,
        "seed must be >= 0 and below 2^63, got 18446744073709551616",
    ),
    Case(
        "sample with a negative seed",
        lambda r, t: ["sample", "--run", str(r), "--seed", "-1", "--out", str(t / "new")],
        2,
        "--seed must be >= 0 and below 2^63, got -1",
    ),
    Case(
        "eval with a negative seed (numpy refuses it)",
        lambda r, t: ["eval", "--samples", str(t / "s.npz"), "--dataset", "mnist", "--seed", "-1"],
        2,
        "--seed must be >= 0 and below 2^63, got -1",
    ),
    Case(
        "sample on an unknown device",
        lambda r, t: ["sample", "--run", str(r), "--device", "tpu7", "--out", str(t / "new")],
        2,
        "unknown device 'tpu7'",
    ),
    Case(
        "energy score with batch size 0",
        lambda r, t: ["energy", "score", "--run", str(r), "--batch-size", "0", str(t / "p.npz")],
        2,
        "--batch-size must be at least 1, got 0",
    ),
    Case(
        "sample from a missing run names the run",
        lambda r, t: ["sample", "--run", str(t / "gone"), "--out", str(t / "s.npz")],
        2,
        "gone does not exist",
    ),
    Case(
        "sample to a file name that is a folder, refused before sampling",
        lambda r, t: ["sample", "--run", str(r), "--out", str(t / "s.npz")],
        2,
        "s.npz is a folder; pass a file name such as",
        lambda r, t: (t / "s.npz").mkdir(),
    ),
    Case(
        "sample PNGs into a folder holding files",
        lambda r, t: ["sample", "--run", str(r), "--format", "png", "--out", str(t)],
        2,
        "exists and is not an empty folder",
    ),
    Case(
        "generator weights that would run code",
        lambda r, t: ["sample", "--run", str(r), "--out", str(t / "s.npz")],
        2,
        "generator.safetensors",
        lambda r, t: _evil(r / "generator.safetensors", t / "marker"),
    ),
]


def _snapshot(folder: pathlib.Path) -> dict:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_case(case: Case, run, tmp_path, capsys):
    case.prepare(run, tmp_path)
    before = _snapshot(run)
    argv = case.args(run, tmp_path)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == case.code, err
    assert case.message in err, err
    assert len(err.splitlines()) == 1 and err.startswith("ebgan: error:"), err
    assert _snapshot(run) == before
    assert not (tmp_path / "new").exists()
    assert not (tmp_path / "marker").exists()


def test_two_trainings_into_one_folder_exactly_one_runs(tmp_path):
    """Two processes start at once; one trains, the other is refused naming the first's PID."""
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "ebgan", "train", "--out", str(out), *TOY, "--steps", "30", "--log-every", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env) for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "in use by another ebgan process (PID" in refused or "already holds a run" in refused
    steps = [int(line.split('"step": ')[1].split(",")[0]) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 31))  # one writer: no interleaved lines


def test_a_config_object_of_the_wrong_type_fails_before_the_folder(tmp_path):
    with pytest.raises(Exception, match="steps must be a whole number"):
        Trainer(Config(steps=2.5).resolve(), synthetic_images(8), run_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_disk_full_in_tensorboard_loses_the_view_not_the_run(tmp_path, monkeypatch, capsys):
    import errno

    from torch.utils.tensorboard import SummaryWriter

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(SummaryWriter, "add_scalar", full)
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *TOY, "--steps", "3", "--log-every", "1"]) == 0
    assert "TensorBoard logging stopped" in capsys.readouterr().err
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3


def test_a_cached_classifier_that_would_run_code_runs_none(tmp_path, capsys):
    """The last place a weights file is read: the classifier cache (safetensors; a pickle is refused)."""
    from ebgan.metrics.classifier import SPEC, WEIGHTS, classifier_dir, load_classifier

    folder = classifier_dir("fashion-mnist")
    folder.mkdir(parents=True)
    torch.save({"body.0.0.weight": CodeRunningPayload(tmp_path / "marker")}, folder / WEIGHTS)
    arch = {"num_classes": 10, "channels": 1, "width": 16, "feature_dim": 128}
    (folder / SPEC).write_text(json.dumps({"dataset": "fashion-mnist", "arch": arch, "split_used": "train"}))
    with pytest.raises(EbganError, match=f"the cached classifier in {folder} cannot be loaded"):
        load_classifier("fashion-mnist")
    assert not (tmp_path / "marker").exists()
    (folder / SPEC).write_text("{broken")
    assert main(["classifier", "show", "--dataset", "fashion-mnist"]) == 2
    assert "classifier.json is damaged" in capsys.readouterr().err


@pytest.mark.skipif(not os.path.isdir("/sys/fs"), reason="no /sys (not Linux)")
def test_outputs_in_a_read_only_place_are_one_line_errors(toy_run, capsys):
    """/sys is read-only even for root (file permissions are not: the suite may run as root)."""
    for argv in (
        ["sample", "--run", str(toy_run), "--n", "4", "--out", "/sys/ebgan-samples.npz"],
        ["train", "--out", "/sys/ebgan-run", *TOY, "--steps", "1"],
        ["energy", "surface", "--run", str(toy_run), "--out", "/sys/ebgan-surface.png", "--n", "10"],
    ):
        assert main(argv) in (1, 2), argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("ebgan: error:") and "/sys/ebgan" in err, err


def test_disk_full_at_a_checkpoint_names_the_last_good_one(tmp_path, monkeypatch, capsys):
    import errno

    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *TOY, "--steps", "2"]) == 0
    before = (out / "checkpoint.pt").read_bytes()

    def full(obj, f, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    assert main(["train", "--resume", str(out), "--steps", "4"]) == 2
    err = capsys.readouterr().err
    assert "the disk is full" in err and "last checkpoint: step 2" in err
    assert (out / "checkpoint.pt").read_bytes() == before
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []
