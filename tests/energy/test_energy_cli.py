"""``ebgan energy`` and ``ebgan anomaly``: scoring inputs, and refusals with a non-zero exit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tests.conftest import TOY_TRAIN_ARGS, synthetic_images

from ebgan.cli import main
from ebgan.config import Config
from ebgan.energy import load_energy_model
from ebgan.files import save_png
from ebgan.train import Trainer

SMALL = {"n_layer_g": 2, "size_g": 32, "n_layer_d": 2, "size_d": 32}


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """A 16x16 grayscale mlp run (28x28 data resized), trained 2 steps: a checkpoint to score with."""
    folder = tmp_path_factory.mktemp("img") / "run"
    cfg = Config(
        dataset="fashion-mnist",
        model="mlp",
        model_args=SMALL,
        image_size=16,
        fit="resize",
        steps=2,
        batch_size=8,
        log_every=1,
        sample_every=0,
        checkpoint_every=0,
    ).resolve()
    Trainer(cfg, synthetic_images(32, size=16), run_dir=folder).train(progress=False)
    return folder


def _fails(argv, capsys, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err


def test_score_files_folder_and_npz(image_run, tmp_path, capsys):
    imgs = synthetic_images(3, size=16, seed=4)
    (tmp_path / "dir").mkdir()
    for i, im in enumerate(imgs):
        save_png(tmp_path / "dir" / f"{i}.png", im.numpy())
    np.savez(tmp_path / "batch.npz", images=imgs[:, 0].numpy())  # (N, H, W) is accepted
    assert (
        main(
            [
                "energy",
                "score",
                "--bn-stats",
                "saved",
                "--run",
                str(image_run),
                str(tmp_path / "dir"),
                str(tmp_path / "batch.npz"),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6
    expected = load_energy_model(image_run, bn_stats="saved").energies(imgs)
    printed = torch.tensor([float(line.split("\t")[0]) for line in lines])
    assert torch.allclose(printed[:3], expected, rtol=1e-4) and torch.allclose(printed[3:], expected, rtol=1e-4)
    assert lines[3].endswith("batch.npz[0]")
    out = tmp_path / "scores.json"
    assert (
        main(
            [
                "energy",
                "score",
                "--bn-stats",
                "saved",
                "--run",
                str(image_run),
                str(tmp_path / "batch.npz"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = json.loads(out.read_text())
    assert [r["input"].endswith(f"[{i}]") for i, r in enumerate(rows)] == [True] * 3


def test_score_wrong_size_needs_fit(image_run, tmp_path, capsys):
    save_png(tmp_path / "small.png", torch.randint(0, 256, (1, 12, 12), dtype=torch.uint8).numpy())
    _fails(
        ["energy", "score", "--bn-stats", "saved", "--run", str(image_run), str(tmp_path / "small.png")],
        capsys,
        "--fit resize",
    )
    assert (
        main(
            [
                "energy",
                "score",
                "--bn-stats",
                "saved",
                "--run",
                str(image_run),
                "--fit",
                "pad",
                str(tmp_path / "small.png"),
            ]
        )
        == 0
    )


def test_score_refusals(image_run, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    _fails(
        ["energy", "score", "--bn-stats", "saved", "--run", str(image_run), str(tmp_path / "empty")],
        capsys,
        "no images",
    )
    _fails(
        ["energy", "score", "--bn-stats", "saved", "--run", str(tmp_path / "nope"), str(tmp_path)],
        capsys,
        "does not exist",
    )
    _fails(
        ["energy", "score", "--bn-stats", "saved", "--run", str(tmp_path / "empty"), str(tmp_path)],
        capsys,
        "no checkpoint",
    )
    _fails(
        ["energy", "score", "--bn-stats", "saved", "--run", str(image_run), str(tmp_path / "missing.png")],
        capsys,
        "does not exist",
    )
    (tmp_path / "notes.txt").write_text("x")
    _fails(
        ["energy", "score", "--bn-stats", "saved", "--run", str(image_run), str(tmp_path / "notes.txt")],
        capsys,
        "unsupported file type",
    )
    np.savez(tmp_path / "wrong.npz", pictures=np.zeros((2, 16, 16), np.uint8))
    _fails(
        ["energy", "score", "--bn-stats", "saved", "--run", str(image_run), str(tmp_path / "wrong.npz")],
        capsys,
        "'images'",
    )


def test_output_names_are_checked_before_any_work(image_run, tmp_path, capsys, no_datasets):
    # no_datasets: each refusal comes before the run's data would be loaded (it cannot be here)
    run = ["--run", str(image_run)]
    for command in (["energy", "histogram", *run], ["energy", "surface", *run]):
        _fails([*command, "--out", str(tmp_path / "plot.txt")], capsys, "cannot write a figure as plot.txt")
        _fails([*command, "--out", str(tmp_path)], capsys, "is a folder")
    for extent in ("nan", "inf", "0"):  # NaN and inf were internal errors from matplotlib's axis limits
        _fails(["energy", "surface", *run, "--out", str(tmp_path / "s.png"), "--extent", extent], capsys, "--extent")
    (tmp_path / "scores.csv").mkdir()
    _fails(["energy", "score", *run, "--out", str(tmp_path / "scores.csv"), str(tmp_path)], capsys, "is a folder")
    _fails(["energy", "score", *run, "--out", str(tmp_path / "scores.txt"), str(tmp_path)], capsys, ".csv or .json")


def test_a_wrong_shape_is_met_with_the_fix_that_works(image_run, tmp_path, capsys):
    score = ["energy", "score", "--bn-stats", "saved"]
    np.savez(tmp_path / "rgb.npz", images=np.zeros((2, 3, 16, 16), np.uint8))
    _fails([*score, "--run", str(image_run), str(tmp_path / "rgb.npz")], capsys, "save them with 1 channel(s)")
    np.savez(tmp_path / "points.npz", points=np.zeros((2, 2), np.float32))
    _fails([*score, "--run", str(image_run), str(tmp_path / "points.npz")], capsys, "2-D points are scored by toy runs")
    # a run that padded its images: padding cannot shrink a larger image, resizing can
    padded = tmp_path / "padded"
    cfg = Config(
        dataset="fashion-mnist", model="mlp", model_args=SMALL, image_size=16, fit="pad", steps=1, batch_size=8
    ).resolve()
    Trainer(
        cfg.updated(log_every=1, sample_every=0, checkpoint_every=0).resolve(),
        synthetic_images(16, size=16),
        run_dir=padded,
    ).train(progress=False)
    save_png(tmp_path / "big.png", synthetic_images(1, size=20)[0].numpy())
    _fails([*score, "--run", str(padded), str(tmp_path / "big.png")], capsys, "pass --fit resize (padding cannot")
    assert main([*score, "--run", str(padded), "--fit", "resize", str(tmp_path / "big.png")]) == 0


def test_surface_refuses_image_runs_and_anomaly_refuses_toys(image_run, tmp_path, capsys, no_datasets):
    # no_datasets: the BatchNorm refusal below needs Fashion-MNIST to be absent everywhere the product looks
    _fails(["energy", "surface", "--run", str(image_run), "--out", str(tmp_path / "s.png")], capsys, "toy:NAME")
    _fails(["energy", "score", "--run", str(image_run), str(tmp_path)], capsys, "--bn-stats saved")
    _fails(["anomaly", "--dataset", "toy:8gaussians", "--normal-class", "0"], capsys, "not toy")
    _fails(["anomaly", "--normal-class", "0", "--models", "ebgan-pt,dae", "--objective", "gan"], capsys, "--models")
    _fails(["anomaly", "--normal-class", "0", "--models", "ebgan-pt,autoencoder", "--noise-std", "0.2"], capsys, "dae")
    _fails(["anomaly", "--normal-class", "0", "--models", " , "], capsys, "empty")
    _fails(["anomaly", "--normal-class", "0", "--models", "ebgan-pt,nope"], capsys, "unknown objective")


def test_anomaly_models_and_seeds_on_a_tiny_labelled_set(tiny_idx, capsys):
    root, _ = tiny_idx(splits={"train": 120, "test": 60})
    argv = ["anomaly", "--dataset", "tiny-digits", "--data-root", str(root), "--normal-class", "1"]
    argv += ["--models", "ebgan,dae,dsm", "--seeds", "2", "--steps", "2", "--batch-size", "8", "--quiet", "--json"]
    assert main([*argv, "--noise-std", "0.3", "--margin", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["models"] == ["ebgan", "dae", "dsm"] and result["seeds"] == [0, 1]
    # options reach the models that declare them, and only those
    assert result["configs"]["dae"]["noise_std"] == 0.3 and result["configs"]["dsm"]["noise_std"] == 0.3
    assert result["configs"]["ebgan"]["margin"] == 3 and "margin" not in result["configs"]["dae"]
    row = result["classes"][0]
    for m in result["models"]:
        runs = row[m]["runs"]
        assert [r["seed"] for r in runs] == [0, 1]
        values = [r["auroc"] for r in runs]
        assert row[m]["auroc"] == pytest.approx(np.mean(values))
        assert row[m]["auroc_std"] == pytest.approx(np.std(values))
        # one class: the mean over classes is that class's, per seed
        assert result["mean"][m]["auroc_per_seed"] == pytest.approx(values)
    # the two seeds are different trainings
    assert row["ebgan"]["runs"][0]["energy_normal"] != row["ebgan"]["runs"][1]["energy_normal"]


def test_anomaly_counts_a_repeated_class_once_and_refuses_taken_runs_before_training(tiny_idx, tmp_path, capsys):
    root, _ = tiny_idx(splits={"train": 120, "test": 60})
    argv = ["anomaly", "--dataset", "tiny-digits", "--data-root", str(root), "--models", "autoencoder"]
    argv += ["--steps", "2", "--batch-size", "8", "--quiet", "--json", "--runs-dir", str(tmp_path / "runs")]
    # a class named twice is one setting: one row, weighed once in the mean, one run folder
    assert main([*argv, "--normal-class", "1", "--normal-class", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["class"] for r in result["classes"]] == [1]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["class1-one-autoencoder-seed0"]
    # class 1's folder is taken: refused before class 0 is trained, whose scores would be lost
    _fails([*argv, "--normal-class", "0", "--normal-class", "1"], capsys, "already holds class1-one-autoencoder-seed0")
    assert not (tmp_path / "runs" / "class0-one-autoencoder-seed0").exists()
    # the training dataset as its own anomalies scores nothing
    _fails([*argv, "--cross", "tiny-digits"], capsys, "is the training dataset itself")


@pytest.mark.realdata
def test_histogram_of_real_generated_and_other_dataset(image_run, data_root, tmp_path, capsys):
    out = tmp_path / "hist.png"
    argv = [
        "energy",
        "histogram",
        "--run",
        str(image_run),
        "--data-root",
        str(data_root),
        "--other",
        "mnist",
        "--n",
        "50",
        "--out",
        str(out),
        "--json",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["mean_energy"]) == {"fashion-mnist test", "generated", "mnist test"}
    assert set(summary["auroc_vs_real_test"]) == {"generated", "mnist test"}
    assert out.stat().st_size > 1000


@pytest.mark.realdata
def test_anomaly_json_on_real_data(data_root, capsys):
    argv = [
        "anomaly",
        "--dataset",
        "fashion-mnist",
        "--data-root",
        str(data_root),
        "--normal-class",
        "1",
        "--steps",
        "3",
        "--json",
        "--quiet",
    ]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["models"] == ["ebgan-pt", "autoencoder"]
    row = result["classes"][0]
    assert row["class"] == 1 and row["normal_classes"] == [1]
    for m in result["models"]:
        assert 0 <= row[m]["auroc"] <= 1 and 0 < row[m]["auprc"] <= 1
        assert result["mean"][m]["auroc"] == pytest.approx(row[m]["auroc"])
    _fails(
        ["anomaly", "--dataset", "fashion-mnist", "--data-root", str(data_root), "--normal-class", "12"],
        capsys,
        "does not exist",
    )


def test_anomaly_refuses_flags_it_does_not_use(capsys):
    for flags in (["--eval-every", "5"], ["--data-split", "test"]):
        with pytest.raises(SystemExit) as e:
            main(["anomaly", "--normal-class", "0", *flags])
        assert e.value.code == 2
        assert "unrecognized arguments" in capsys.readouterr().err
    assert main(["anomaly", "--normal-class", "0", "--sample-every", "5"]) == 2
    assert "only matter with --runs-dir" in capsys.readouterr().err


def test_train_energy_frames_survive_a_resume_without_duplicates(tmp_path, capsys):
    from ebgan.energy.surface import load_frames
    from ebgan.files import save_npz

    run = tmp_path / "toy"
    toy = [*TOY_TRAIN_ARGS, "--log-every", "1", "--energy-frames", "2"]
    assert main(["train", "--out", str(run), *toy, "--steps", "4"]) == 0
    frames = load_frames(run)
    assert frames["steps"].tolist() == [1, 2, 4]
    # a frame recorded after the checkpoint by a run that was then killed: the resume records it again
    save_npz(
        run / "energy_frames.npz",
        steps=np.r_[frames["steps"], 5],
        grids=np.r_[frames["grids"], frames["grids"][-1:]],
        fakes=np.r_[frames["fakes"], frames["fakes"][-1:]],
        extent=frames["extent"],
    )
    assert main(["train", "--resume", str(run), "--steps", "8", "--no-progress", "--energy-frames", "2"]) == 0
    assert load_frames(run)["steps"].tolist() == [1, 2, 4, 6, 8]
    assert main(["energy", "surface", "--run", str(run), "--out", str(tmp_path / "s.png"), "--n", "50"]) == 0
    assert (tmp_path / "s_frames.png").is_file()
    assert main(["train", "--out", str(tmp_path / "img"), "--energy-frames", "2", "--dataset", "mnist"]) == 2
    assert "--energy-frames needs a toy:NAME dataset" in capsys.readouterr().err


def test_anomaly_gives_ebgan_the_papers_auto_margin_at_the_autoencoders_budget(tiny_idx, capsys):
    root, _ = tiny_idx(splits={"train": 120, "test": 60})
    argv = ["anomaly", "--dataset", "tiny-digits", "--data-root", str(root), "--normal-class", "0", "--quiet"]
    argv += ["--models", "ebgan-pt,autoencoder", "--steps", "6", "--batch-size", "8", "--json"]
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out)
    ebgan, ae = r["configs"]["ebgan-pt"], r["configs"]["autoencoder"]
    # D updates: 3 pretraining + 3 adversarial = the autoencoder's 6
    assert (ebgan["margin_schedule"], ebgan["pretrain_steps"], ebgan["steps"], ae["steps"]) == ("auto", 3, 3, 6)
    assert r["classes"][0]["ebgan-pt"]["runs"][0]["margin"] > 0  # set from the pretrained real energy
    # a margin option, or --ebgan-setup configured, keeps the config as given
    for extra in (["--margin-schedule", "constant"], ["--ebgan-setup", "configured"]):
        assert main([*argv, *extra]) == 0
        ebgan = json.loads(capsys.readouterr().out)["configs"]["ebgan-pt"]
        assert (ebgan["margin_schedule"], ebgan["steps"]) == ("constant", 6)


def test_anomaly_ebgan_setup_against_margin_options_and_presets(tiny_idx, capsys):
    root, _ = tiny_idx(splits={"train": 120, "test": 60})
    argv = ["anomaly", "--dataset", "tiny-digits", "--data-root", str(root), "--normal-class", "0", "--quiet"]
    argv += ["--models", "ebgan-pt,autoencoder", "--steps", "4", "--batch-size", "8", "--json"]
    _fails([*argv, "--ebgan-setup", "paper-auto", "--margin", "3"], capsys, "drop --margin")
    # a preset's margin is kept by default, replaced when paper-auto is asked for
    assert main([*argv, "--config", "mnist-mlp-ebgan-pt", "--model", "mlp"]) == 0
    assert json.loads(capsys.readouterr().out)["configs"]["ebgan-pt"]["margin_schedule"] == "constant"
    assert main([*argv, "--config", "mnist-mlp-ebgan-pt", "--ebgan-setup", "paper-auto"]) == 0
    cfg = json.loads(capsys.readouterr().out)["configs"]["ebgan-pt"]
    assert (cfg["margin_schedule"], cfg["pretrain_steps"], cfg["steps"]) == ("auto", 2, 2)


def test_a_diverged_d_draws_no_histogram(tiny_idx, tmp_path, capsys):
    """NaN energies were plotted (the file written) and then failed the AUROC; now nothing is drawn."""
    root, _ = tiny_idx(splits={"train": 60, "test": 30}, size=16)
    run = tmp_path / "run"
    data = ["--dataset", "tiny-digits", "--data-root", str(root), "--image-size", "16", "--batch-size", "8"]
    small = ["--model", "mlp", "--model-args", "n_layer_g=2,size_g=16,n_layer_d=2,size_d=16", "--latent-dim", "4"]
    assert main(["train", "--out", str(run), *data, *small, "--steps", "1", "--no-progress"]) == 0
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    for v in state["D"].values():
        if v.is_floating_point():
            v.fill_(float("nan"))
    torch.save(state, run / "checkpoint.pt")
    out = tmp_path / "hist.png"
    argv = ["energy", "histogram", "--run", str(run), "--out", str(out), "--n", "20", "--bn-stats", "saved"]
    _fails(argv, capsys, "D gives NaN or infinite energies to 20 of the 20 tiny-digits test images")
    assert not out.exists()


def test_anomaly_records_a_diverged_training_and_scores_the_rest(tiny_idx, tmp_path, capsys, monkeypatch):
    """One divergence among many trainings is a marked cell, not the loss of every score computed."""
    from ebgan.energy import anomaly
    from ebgan.train.trainer import Diverged

    trained = anomaly.train_energy_model
    calls = []

    def fourth_diverges(cfg, train, run_dir=None):  # order: class 0 seeds 0, 1; class 1 seeds 0, 1
        calls.append(cfg.seed)
        if len(calls) == 4:
            raise Diverged("training diverged at step 2: loss_d = nan")
        return trained(cfg, train, run_dir)

    monkeypatch.setattr(anomaly, "train_energy_model", fourth_diverges)
    root, _ = tiny_idx(splits={"train": 120, "test": 60})
    argv = ["anomaly", "--dataset", "tiny-digits", "--data-root", str(root), "--models", "autoencoder"]
    argv += [
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--quiet",
        "--seeds",
        "2",
        "--normal-class",
        "0",
        "--normal-class",
        "1",
    ]
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr()
    assert "1 training(s) diverged" in out.err
    result = json.loads(out.out)
    one, two = (r["autoencoder"] for r in result["classes"])
    assert one["diverged"] == 0 and two["diverged"] == 1
    assert two["runs"][1] == {"seed": 1, "status": "diverged", "message": "training diverged at step 2: loss_d = nan"}
    assert two["auroc"] == two["runs"][0]["auroc"] and two["auroc_std"] == 0.0  # the seed that trained
    mean = result["mean"]["autoencoder"]
    seed0 = (one["runs"][0]["auroc"] + two["runs"][0]["auroc"]) / 2  # seed 1 lacks class 1: left out
    assert mean["auroc_per_seed"] == [pytest.approx(seed0), None] and mean["auroc"] == pytest.approx(seed0)
    calls.clear()
    assert main(argv) == 0  # the table marks the cell
    table = capsys.readouterr().out
    assert "(1 diverged)" in table
