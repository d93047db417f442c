"""``ebgan eval`` as functions: which reference a run or a sample set is scored against, refusals,
and the dispatch by the dataset's registry entry. A tiny registered dataset stands in for MNIST."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from ebgan import Config, Trainer, load_training_data
from ebgan.cli import main
from ebgan.data import load_images
from ebgan.errors import EbganError
from ebgan.metrics import evaluate_run_folder, evaluate_samples, evaluator_for, format_result, run_info, sample_run
from ebgan.metrics.classifier import train_classifier

SMALL = {"n_layer_g": 2, "size_g": 16, "n_layer_d": 2, "size_d": 16}


@pytest.fixture
def tiny(tiny_idx):
    """A tiny dataset with both official splits and its classifier (trained on train)."""
    root, _ = tiny_idx(splits={"train": 90, "test": 60})
    train_classifier("tiny-digits", root, epochs=1, log=lambda m: None)
    return root


def make_run(folder, root, split: str, **kw):
    cfg = Config(
        dataset="tiny-digits",
        data_root=str(root),
        data_split=split,
        model="mlp",
        model_args=SMALL,
        steps=2,
        batch_size=8,
        log_every=1,
        sample_every=0,
        checkpoint_every=0,
        **kw,
    ).resolve()
    trainer = Trainer(cfg, load_training_data(cfg), run_dir=folder)
    return cfg, trainer


def train_run(folder, root, split: str):
    make_run(folder, root, split)[1].train(progress=False)
    return folder


@pytest.mark.parametrize("split, reference", [("train", "test"), ("test-fit", "test-heldout")])
def test_a_run_is_scored_against_a_reference_disjoint_from_its_training_split(tiny, tmp_path, split, reference):
    run = train_run(tmp_path / "run", tiny, split)
    r = evaluate_run_folder(run, n=30)
    assert r["generator_split"] == split and r["reference_split"] == reference
    assert f"generator's training images ({split})" in r["reference_note"] and r["n"] == 30
    assert r["reference"].startswith(f"tiny-digits {reference} split")
    # the floor is real images from the other side of the same division
    floor_source = {"test": "train", "test-heldout": "test-fit"}[reference]
    assert r["real_vs_real"]["description"].startswith(f"30 {floor_source} images vs the {reference} split")
    assert f"vs tiny-digits {reference} split" in format_result(r)


def test_a_run_trained_on_the_whole_test_split_is_refused(tiny, tmp_path, capsys):
    run = train_run(tmp_path / "run", tiny, "test")
    with pytest.raises(EbganError, match="retrain it with --data-split test-fit"):
        evaluate_run_folder(run, n=30)
    assert main(["eval", "--run", str(run), "--n", "30"]) == 2
    err = capsys.readouterr().err
    assert "--data-split test-fit" in err and len(err.strip().splitlines()) == 1


def test_samples_say_which_reference_was_used_and_what_was_not_checked(tiny):
    images = load_images("tiny-digits", "train", tiny).images[:40]
    unknown = evaluate_samples(images, "tiny-digits", data_root=tiny)
    assert unknown["reference_split"] == "test" and unknown["generator_split"] is None
    assert "not checked" in unknown["reference_note"] and "--data-split" in unknown["reference_note"]
    declared = evaluate_samples(images, "tiny-digits", data_split="test-fit", data_root=tiny, n=30)
    assert declared["reference_split"] == "test-heldout" and declared["n"] == 30
    with pytest.raises(EbganError, match="--data-split test-fit"):
        evaluate_samples(images, "tiny-digits", data_split="test", data_root=tiny)
    with pytest.raises(EbganError, match="exceeds the 40 images"):
        evaluate_samples(images, "tiny-digits", data_root=tiny, n=41)


def test_cli_samples_with_data_split_and_run_without(tiny, tmp_path, capsys):
    import numpy as np

    np.savez(tmp_path / "s.npz", images=load_images("tiny-digits", "train", tiny).images[:30].numpy())
    argv = ["eval", "--samples", str(tmp_path / "s.npz"), "--dataset", "tiny-digits", "--data-root", str(tiny)]
    assert main([*argv, "--data-split", "test-fit", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reference_split"] == "test-heldout"
    run = train_run(tmp_path / "run", tiny, "train")
    assert main(["eval", "--run", str(run), "--data-split", "train"]) == 2
    assert "read from its config" in capsys.readouterr().err


def test_evaluator_for_keeps_the_form_compare_calls(tiny):
    images = load_images("tiny-digits", "train", tiny).images[:30]
    args = SimpleNamespace(data_root=tiny, seed=0, inception_weights=None)  # what ebgan compare passes
    r = evaluator_for("tiny-digits")(images, "tiny-digits", args)
    assert r["reference_split"] == "test" and r["frechet_name"] == "fid_tiny_digits_cls"
    r = evaluator_for("tiny-digits")(images, "tiny-digits", SimpleNamespace(**vars(args), data_split="test-fit"))
    assert r["reference_split"] == "test-heldout"
    with pytest.raises(EbganError, match="ebgan eval --run RUN"):
        evaluator_for("toy:8gaussians")
    with pytest.raises(EbganError, match="no evaluation for 'folder:/x'"):
        evaluator_for("folder:/x")
    with pytest.raises(EbganError, match="did you mean 'tiny-digits'"):
        evaluator_for("tiny-digit")


def test_run_info_of_a_run_and_of_its_best(tiny, tmp_path):
    from ebgan.metrics.hook import EvalHook

    cfg, trainer = make_run(tmp_path / "run", tiny, "test-fit", eval_every=1)
    trainer.hooks.append(EvalHook(cfg, tmp_path / "run", n=20))
    trainer.train(progress=False)
    info = run_info(tmp_path / "run")
    assert (info["dataset"], info["data_split"], info["data_root"], info["selected_on"]) == (
        "tiny-digits",
        "test-fit",
        str(tiny),
        None,
    )
    best = run_info(tmp_path / "run" / "best")
    assert best["data_split"] == "test-fit" and "own training images (test-fit" in best["selected_on"]
    r = evaluate_run_folder(tmp_path / "run" / "best", n=20)
    assert r["reference_split"] == "test-heldout" and "kept by --eval-every" in r["selection"]
    assert "selection: this generator was kept by --eval-every as the best on 20 of the run's own" in format_result(r)


def test_a_folder_without_a_generator_is_named(tmp_path, capsys):
    assert main(["eval", "--run", str(tmp_path)]) == 2
    assert f"no exported generator in {tmp_path} " in capsys.readouterr().err
    assert main(["eval", "--run", str(tmp_path / "nothing")]) == 2  # not its parent folder
    assert f"{tmp_path / 'nothing'} does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("generator.json", "[]", "generator.json is damaged or not an ebgan generator spec (TypeError: a JSON list"),
        ("generator.json", "{not json", "generator.json is damaged or not an ebgan generator spec (JSONDecodeError"),
        ("config.yaml", "dataset: [", "config.yaml is not valid YAML"),
        ("config.yaml", "- mnist", "config.yaml must hold a mapping"),
    ],
)
def test_a_damaged_run_folder_is_a_one_line_error(tmp_path, capsys, name, text, message):
    from ebgan.generator_io import export_generator
    from ebgan.nets import build_generator

    export_generator(build_generator("mlp", 4, (1, 8, 8), SMALL), tmp_path, "mlp", SMALL, extra={"dataset": "mnist"})
    (tmp_path / "config.yaml").write_text("dataset: mnist\n")
    (tmp_path / name).write_text(text)
    assert main(["eval", "--run", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "internal error" not in err, err


def test_a_misspelt_split_gets_a_suggestion(capsys, tmp_path):
    import numpy as np

    np.savez(tmp_path / "s.npz", images=np.zeros((20, 1, 32, 32), np.uint8))
    assert main(["eval", "--samples", str(tmp_path / "s.npz"), "--dataset", "mnist", "--data-split", "testfit"]) == 2
    assert "did you mean 'test-fit'" in capsys.readouterr().err


def test_sampling_a_run_is_deterministic(tiny, tmp_path):
    run = train_run(tmp_path / "run", tiny, "train")
    a, b = sample_run(run, 12, seed=3), sample_run(run, 12, seed=3)
    assert a.dtype.is_floating_point is False and a.shape == (12, 1, 32, 32) and (a == b).all()
    with pytest.raises(EbganError, match="--n must be positive"):
        sample_run(run, 0)


def test_toy_runs_get_mode_coverage(tmp_path, capsys):
    cfg = Config(
        dataset="toy:8gaussians",
        model="mlp",
        model_args=SMALL,
        latent_dim=2,
        steps=2,
        batch_size=16,
        log_every=1,
        sample_every=0,
        checkpoint_every=0,
    ).resolve()
    Trainer(cfg, load_training_data(cfg), run_dir=tmp_path / "toy").train(progress=False)
    r = evaluate_run_folder(tmp_path / "toy", n=100)
    assert r["evaluation"] == "toy-modes" and r["n_modes"] == 8 and r["n_samples"] == 100
    assert "modes captured:" in format_result(r)
    for flag in (["--dataset", "fashion-mnist"], ["--inception-weights", str(tmp_path / "absent.pth")]):
        assert main(["eval", "--run", str(tmp_path / "toy"), "--n", "100", *flag]) == 2  # was ignored silently
        err = capsys.readouterr().err
        assert "toy run" in err and "do not apply" in err and len(err.strip().splitlines()) == 1


def test_a_run_trained_on_resized_images_is_refused(tiny, tmp_path, capsys):
    """The classifier and its reference see images padded to 32x32; a --fit resize run's samples
    were scored against them without a word (--eval-every already refused such runs)."""
    folder = tmp_path / "run"
    make_run(folder, tiny, "train", fit="resize")[1].train(progress=False)
    assert main(["eval", "--run", str(folder), "--n", "30"]) == 2
    err = capsys.readouterr().err
    assert "fit 'resize'" in err and "--fit pad" in err and len(err.strip().splitlines()) == 1
    assert run_info(folder)["fit"] == "resize"


def test_the_training_time_scorers_refuse_resized_images_too(tiny, tmp_path):
    """--eval-every and compare's quality curve score samples against the same padded references
    as ebgan eval; the curve checked only the shape, so a --fit resize run's curve was off."""
    from ebgan.experiments.compare import QualityCurve
    from ebgan.metrics.hook import EvalHook

    cfg, _ = make_run(tmp_path / "run", tiny, "train", fit="resize")
    with pytest.raises(EbganError, match="fit 'resize'.*retrain with --fit pad"):
        EvalHook(cfg, tmp_path / "run")
    with pytest.raises(EbganError, match="fit 'resize'.*retrain with --fit pad"):
        QualityCurve(tmp_path / "run", cfg, n=10, every_steps=1)
