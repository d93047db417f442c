"""ebgan.experiments: budgets, equal-budget runs as ordinary run folders, table, image, resume, dry run."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from PIL import Image
from tests.conftest import synthetic_images

from ebgan.cli import main
from ebgan.errors import EbganError
from ebgan.experiments import Budget, evaluate_run, parse_budget
from ebgan.experiments import compare as compare_runs
from ebgan.generator_io import load_generator

SMALL_MLP = {"n_layer_g": 2, "size_g": 16, "n_layer_d": 2, "size_d": 16}
PRESETS = {
    "gan": {"model": "mlp", "model_args": {"n_layer_g": 2, "size_g": 32, "n_layer_d": 2, "size_d": 32}},
    "began": {"model": "dcgan", "model_args": {"width_g": 4, "width_d": 4, "embedding_dim": 4}, "lambda_k": 0.05},
    "ebgan-pt": {"model": "dcgan", "model_args": {"width_g": 4, "width_d": 4}},
}


@pytest.fixture
def setup(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    for i, img in enumerate(synthetic_images(24, size=16)):
        Image.fromarray(img[0].numpy()).save(images / f"{i:02d}.png")
    presets = tmp_path / "presets"
    presets.mkdir()
    for objective, values in PRESETS.items():
        common = {"image_size": 16, "channels": 1, "latent_dim": 8, "batch_size": 8, "log_every": 1}
        (presets / f"tiny-{objective}.yaml").write_text(yaml.safe_dump({**common, **values}))
    return SimpleNamespace(
        dataset=f"folder:{images}",
        data_root=None,
        preset_dir=str(presets),
        preset_prefix="tiny",
        eval_n=16,
        no_eval=True,
        device="cpu",
        seeds=2,
        out=str(tmp_path / "cmp"),
    )


def args_for(setup, **kw):
    return SimpleNamespace(**{**vars(setup), **kw})


def compare(args, **kw):
    return compare_runs(**vars(args), **kw)


def test_parse_budget():
    assert parse_budget("15m") == Budget("seconds", 900)
    assert parse_budget("90s") == Budget("seconds", 90)
    assert parse_budget("1h30m") == Budget("seconds", 5400)
    assert parse_budget("2000") == Budget("steps", 2000)
    for bad in ("", "15 minutes", "0", "-5", "m15", "0s"):
        with pytest.raises(EbganError):
            parse_budget(bad)


def test_step_budget_table_image_and_skip(setup, capsys):
    args = args_for(setup, objectives="gan,began,ebgan", budget="3")
    results = compare(args)
    rows = {r["objective"]: r for r in results["rows"]}
    assert list(rows) == ["gan", "began", "ebgan"]
    assert rows["gan"]["seeds"] == 2 and rows["gan"]["steps"] == {"mean": 3.0, "std": 0.0}
    assert rows["ebgan"]["preset"] == "tiny-ebgan-pt.yaml without the pull-away term"  # ablation of the pull-away term
    assert rows["began"]["images_per_s"]["mean"] > 0
    out = setup.out
    run = f"{out}/began/seed1"
    assert load_generator(run).latent_dim == 8  # an ordinary run folder
    cfg = yaml.safe_load(Path(f"{run}/config.yaml").read_text())
    assert cfg["seed"] == 1 and cfg["objective"] == "began"
    assert "| began |" in Path(f"{out}/results.md").read_text()
    assert json.loads(Path(f"{out}/results.json").read_text())["budget"] == "3 steps"
    assert Path(f"{out}/samples.png").read_bytes()[:4] == b"\x89PNG"
    before = Path(f"{run}/checkpoint.pt").read_bytes()
    again = compare(args_for(setup, objectives="gan,began,ebgan", budget="3"), log=print)
    assert Path(f"{run}/checkpoint.pt").read_bytes() == before  # finished runs are skipped
    assert "skipped" not in json.dumps(again["rows"])
    with pytest.raises(EbganError, match="budget"):
        compare(args_for(setup, objectives="gan", budget="5"))  # same folder, other budget
    from ebgan.experiments.compare import plan

    with pytest.raises(EbganError, match="at a budget of 3 steps"):  # a dry run said "finished, ~0 s left"
        plan(setup.dataset, "gan", "5", out, preset_dir=setup.preset_dir, preset_prefix="tiny")


def test_wall_clock_budget_stops_cleanly(setup):
    args = args_for(setup, objectives="gan", budget="1s", seeds=1)
    results = compare(args)
    record = json.loads(Path(f"{setup.out}/gan/seed0/budget.json").read_text())
    assert record["finished"] and record["steps"] >= 1
    assert 1.0 <= record["train_seconds"] < 10.0
    assert results["runs"][0]["steps"] == record["steps"]


def test_interrupted_run_resumes_from_its_checkpoint(setup, monkeypatch):
    from ebgan.objectives.began import BEGAN

    original = BEGAN.end_step

    def killed_at_4(self, step):
        original(self, step)
        if step == 4:
            raise KeyboardInterrupt  # the process dies after step 4, before it is saved

    monkeypatch.setattr(BEGAN, "end_step", killed_at_4)
    args = args_for(setup, objectives="began", budget="6", seeds=1)
    with pytest.raises(KeyboardInterrupt):
        compare(args, checkpoint_seconds=0)  # a checkpoint after every step
    record = json.loads(Path(f"{setup.out}/began/seed0/budget.json").read_text())
    assert record["steps"] == 3 and not record["finished"]
    monkeypatch.setattr(BEGAN, "end_step", original)
    lines = []
    compare(args, checkpoint_seconds=0, log=lines.append)
    assert any("resumed from step 3" in line for line in lines)
    straight = compare(args_for(setup, objectives="began", budget="6", seeds=1, out=setup.out + "-b"))
    assert straight["runs"][0]["steps"] == 6
    a = torch.load(f"{setup.out}/began/seed0/checkpoint.pt", weights_only=True)
    b = torch.load(f"{setup.out}-b/began/seed0/checkpoint.pt", weights_only=True)
    assert a["objective"]["k"] == b["objective"]["k"]
    assert all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])


def test_scores_unavailable_is_reported_not_fatal(setup):
    compare(args_for(setup, objectives="gan", budget="2", seeds=1))
    scores = evaluate_run(f"{setup.out}/gan/seed0", 16)
    assert "error" in scores
    results = compare(args_for(setup, objectives="gan", budget="2", seeds=1, no_eval=False))
    assert "not scored" in results["scores_note"]


def test_cli_errors(setup, capsys):
    assert (
        main(
            [
                "compare",
                "--objectives",
                "gan,nope",
                "--budget",
                "2",
                "--out",
                setup.out,
                "--dataset",
                setup.dataset,
                "--preset-dir",
                setup.preset_dir,
                "--preset-prefix",
                "tiny",
            ]
        )
        == 2
    )
    assert "nope" in capsys.readouterr().err
    assert main(["compare", "--objectives", "gan", "--budget", "soon", "--out", setup.out]) == 2


def test_a_finished_run_of_another_preset_is_refused_not_reused(setup):
    """A finished run is skipped, so one trained from another preset would pass for this preset's."""
    compare(args_for(setup, objectives="gan", budget="2", seeds=1))
    wider = Path(setup.preset_dir) / "tiny-gan.yaml"
    values = yaml.safe_load(wider.read_text())
    values["model_args"]["size_g"] = 48
    wider.write_text(yaml.safe_dump(values))
    with pytest.raises(EbganError, match="gan/seed0 was trained with another config .model_args differ."):
        compare(args_for(setup, objectives="gan", budget="2", seeds=1))


def test_scoring_sample_counts_and_out_are_checked_before_training(setup, tmp_path, capsys):
    """Too few samples to score ends the command at once, not after training (a curve point of 3
    samples raised a ValueError mid-run); an --out that is a file is one line too."""
    base = ["compare", "--objectives", "gan", "--budget", "2", "--dataset", setup.dataset]
    base += ["--preset-dir", setup.preset_dir, "--preset-prefix", "tiny", "--out", setup.out]
    for flags, message in (
        (["--curve-points", "2", "--curve-n", "3"], "--curve-n 3 is too few samples to score; use at least 8"),
        (["--eval-n", "0"], "--eval-n 0 is too few samples to score"),
        (["--curve-points", "-1"], "--curve-points must be >= 0"),
    ):
        assert main(base + flags) == 2 and main(base + flags + ["--dry-run"]) == 2
        assert message in capsys.readouterr().err
    assert not Path(setup.out).exists()
    assert main(base + ["--eval-n", "0", "--no-eval", "--dry-run"]) == 0  # not scored: not checked
    (tmp_path / "file").write_text("x")
    assert main(base[:-1] + [str(tmp_path / "file"), "--no-eval"]) == 2
    assert "is a file; pass a folder" in capsys.readouterr().err


def test_a_missing_dataset_is_refused_before_the_folder_is_made(setup, tmp_path):
    """Else the folder, holding only the spec, pins the budget of a comparison that never trained:
    the next attempt at another budget was refused."""
    missing = tmp_path / "not-here"
    with pytest.raises(EbganError, match=f"image folder {missing} does not exist"):
        compare(args_for(setup, dataset=f"folder:{missing}", objectives="gan", budget="2", seeds=1))
    assert not Path(setup.out).exists()
    compare(args_for(setup, objectives="gan", budget="3", seeds=1))  # the next attempt, at another budget
    assert json.loads((Path(setup.out) / "compare.json").read_text())["budget"] == "3 steps"


def test_dry_run_lists_the_runs_and_writes_nothing(setup, capsys):
    assert (
        main(
            [
                "compare",
                "--objectives",
                "gan,ebgan",
                "--budget",
                "3",
                "--seeds",
                "2",
                "--out",
                setup.out,
                "--dataset",
                setup.dataset,
                "--preset-dir",
                setup.preset_dir,
                "--preset-prefix",
                "tiny",
                "--dry-run",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and "tiny-ebgan-pt.yaml without the pull-away term" in lines[2]
    assert all("to train: ~" in line and "(3 steps at" not in line and " 3 steps at " in line for line in lines[:4])
    assert not any("pretraining" in line for line in lines)  # neither objective pretrains
    assert lines[4].startswith("estimated time left: ~")
    import pathlib

    assert not pathlib.Path(setup.out).exists()


def test_estimate_extrapolates_timed_steps_to_the_budget(setup):
    from ebgan.experiments.compare import estimate, plan

    where = dict(dataset=setup.dataset, objectives="gan,ebgan", out=setup.out, preset_dir=setup.preset_dir)
    where["preset_prefix"] = "tiny"
    by_steps = plan(budget="40", seeds=2, **where)
    times = estimate(by_steps, "40", curve_points=0, curve_n=0, eval_n=0, steps=2)
    for t in times["objectives"].values():
        assert t["steps"] == 40 and t["eval_s"] == 0.0
        assert t["train_s"] == pytest.approx(t["prepare_s"] + 40 * t["s_per_step"])
    per_run = [times["objectives"][o]["train_s"] for o in ("gan", "ebgan")]
    assert times["total_s"] == pytest.approx(2 * sum(per_run))  # two seeds each
    for r in by_steps:  # finished runs are neither timed nor counted
        r["finished"] = r["objective"] == "gan"
    left = estimate(by_steps, "40", curve_points=0, curve_n=0, eval_n=0, steps=2)
    assert list(left["objectives"]) == ["ebgan"]
    assert left["total_s"] == pytest.approx(2 * left["objectives"]["ebgan"]["train_s"])
    by_time = estimate(plan(budget="90s", seeds=1, **where), "90s", curve_points=0, curve_n=0, eval_n=0, steps=2)
    for t in by_time["objectives"].values():
        assert t["train_s"] == 90.0 and t["steps"] == int((90.0 - t["prepare_s"]) / t["s_per_step"])


def test_estimate_counts_pretraining_in_the_budget(setup):
    """MAGAN pretrains its autoencoder before step 0: the estimate must add that time, and under a
    wall-clock budget (whose clock includes pretraining) leave fewer steps for it."""
    from ebgan.experiments.compare import estimate, plan

    magan = {"image_size": 16, "channels": 1, "latent_dim": 8, "batch_size": 8, "log_every": 1}
    magan.update(model="dcgan", model_args={"width_g": 4, "width_d": 4}, pretrain_steps=200)
    (Path(setup.preset_dir) / "tiny-magan.yaml").write_text(yaml.safe_dump(magan))
    where = dict(dataset=setup.dataset, objectives="gan,magan", out=setup.out, preset_dir=setup.preset_dir)
    where["preset_prefix"] = "tiny"
    times = estimate(plan(budget="40", seeds=1, **where), "40", curve_points=0, curve_n=0, eval_n=0, steps=4)
    gan, magan_t = times["objectives"]["gan"], times["objectives"]["magan"]
    assert gan["prepare_s"] < 0.1 and gan["train_s"] == pytest.approx(gan["prepare_s"] + 40 * gan["s_per_step"])
    # 200 autoencoder steps (a D step each, no G) cost far more than five full training steps:
    # a wide margin, so a busy machine's slow step cannot flip it
    assert magan_t["prepare_s"] > 5 * magan_t["s_per_step"]
    assert magan_t["train_s"] == pytest.approx(magan_t["prepare_s"] + 40 * magan_t["s_per_step"])
    assert times["total_s"] == pytest.approx(gan["train_s"] + magan_t["train_s"])
    by_time = estimate(plan(budget="90s", seeds=1, **where), "90s", curve_points=0, curve_n=0, eval_n=0, steps=2)
    t = by_time["objectives"]["magan"]
    assert t["train_s"] == 90.0 and t["steps"] == int((90.0 - t["prepare_s"]) / t["s_per_step"])


def test_shipped_presets_are_found_without_a_preset_dir(tmp_path):
    from ebgan.experiments.compare import plan

    runs = plan("fashion-mnist", "ebgan-pt,ebgan,wgan-gp", "10", tmp_path / "c")
    assert [r["preset"] for r in runs] == [
        "fmnist-ebgan-pt.yaml",
        "fmnist-ebgan-pt.yaml without the pull-away term",
        "fmnist-wgan-gp.yaml",
    ]


def test_quality_curves_over_training(tiny_idx, tmp_path):
    from ebgan.experiments.compare import read_curve
    from ebgan.metrics.classifier import train_classifier

    root, _ = tiny_idx("tiny-digits", splits={"train": 96, "test": 60}, size=16)
    train_classifier("tiny-digits", root, epochs=1, log=lambda m: None)
    presets = tmp_path / "presets"
    presets.mkdir()
    common = {"image_size": 32, "latent_dim": 8, "batch_size": 8, "log_every": 1}  # the classifier's input size
    for objective, values in PRESETS.items():
        (presets / f"tiny-{objective}.yaml").write_text(yaml.safe_dump({**common, **values}))
    results = compare_runs(
        dataset="tiny-digits",
        objectives="gan,ebgan-pt",
        budget="4",
        out=tmp_path / "c",
        seeds=2,
        data_root=str(root),
        preset_dir=str(presets),
        preset_prefix="tiny",
        eval_n=40,
        curve_points=2,
        curve_n=40,
        log=lambda m: None,
    )
    for run in results["runs"]:
        curve = read_curve(run["folder"])
        assert [row["step"] for row in curve] == [2, 4]  # 2 points spread over a 4-step budget
        assert curve[-1]["train_seconds"] <= run["train_seconds"] + 1e-6
        assert curve[-1]["frechet"] > 0 and curve[-1]["generator"] == "raw"
    assert Path(results["curves"]).read_bytes()[:4] == b"\x89PNG"
    assert "against" in results["scores_note"]  # the reference is named


def test_a_resumed_curve_drops_the_points_after_its_checkpoint(tmp_path):
    from ebgan.experiments.compare import QualityCurve, read_curve

    curve = QualityCurve.__new__(QualityCurve)  # only the file logic: no classifier needed
    curve.path, curve.every_seconds = tmp_path / "curve.jsonl", 0.0
    curve.path.write_text("".join(json.dumps({"step": s, "train_seconds": s}) + "\n" for s in (2, 4, 6)))
    curve.start(4)
    assert [row["step"] for row in read_curve(tmp_path)] == [2, 4]


@pytest.mark.slow
def test_workers_train_runs_in_parallel_processes_with_the_same_results(setup):
    """Two worker processes give, run for run, the weights one process gives (step budgets are exact)."""
    serial = compare(args_for(setup, objectives="gan,ebgan-pt", budget="3", seeds=1))
    parallel = compare(args_for(setup, objectives="gan,ebgan-pt", budget="3", seeds=1, out=setup.out + "-w"), workers=2)
    assert [r["steps"] for r in parallel["runs"]] == [r["steps"] for r in serial["runs"]] == [3, 3]
    for a, b in zip(serial["runs"], parallel["runs"]):
        wa = torch.load(Path(a["folder"]) / "checkpoint.pt", weights_only=True)["G"]
        wb = torch.load(Path(b["folder"]) / "checkpoint.pt", weights_only=True)["G"]
        assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_moving_margins_are_listed_and_plotted(tmp_path):
    from ebgan.experiments.compare import margin_histories, margin_lines, margins_figure
    from ebgan.train.run_dir import METRICS

    def run(name, margins):
        folder = tmp_path / name
        folder.mkdir()
        rows = [{"step": 10 * (i + 1), "loss_d": 1.0, "margin": m} for i, m in enumerate(margins)]
        (folder / METRICS).write_text("".join(json.dumps(r) + "\n" for r in rows))
        return {"objective": name, "seed": 0, "folder": str(folder)}

    runs = [run("magan", [5.0, 5.0, 3.5, 3.5, 2.25]), run("ebgan", [10.0, 10.0, 10.0]), run("gan", [])]
    histories = margin_histories(runs)
    assert list(histories) == ["magan seed 0"]  # a constant margin and no margin are left out
    assert histories["magan seed 0"][2] == (30, 3.5)
    (line,) = margin_lines(histories)
    assert line == "- magan seed 0: m 5 at step 10 -> 2.25 at step 50, changed 2 time(s) between logged steps"
    figure = margins_figure(histories, tmp_path / "margins.png")
    assert figure is not None and figure.read_bytes()[:4] == b"\x89PNG"
    assert margins_figure({}, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()


def test_a_toy_compare_notes_its_scores_without_a_reference(tmp_path):
    """Toy runs are scored by mode coverage: no image reference or feature extractor to name."""
    presets = tmp_path / "presets"
    presets.mkdir()
    common = {
        "model": "mlp",
        "latent_dim": 2,
        "batch_size": 16,
        "log_every": 1,
        "model_args": SMALL_MLP,
    }
    (presets / "toy-ebgan-pt.yaml").write_text(yaml.safe_dump({**common, "objective": "ebgan-pt"}))
    results = compare_runs(
        dataset="toy:8gaussians",
        objectives="ebgan-pt",
        budget="3",
        out=tmp_path / "c",
        seeds=1,
        preset_dir=str(presets),
        preset_prefix="toy",
        eval_n=200,
        curve_points=0,
        log=lambda m: None,
    )
    assert results["scores_note"] == "200 samples per run", results["scores_note"]


def test_each_seed_of_a_toy_compare_trains_on_its_own_points(tmp_path, monkeypatch):
    """A toy's training points are drawn with the run's seed: seed 1 trained on seed 0's points (the
    loaded data was shared by a key without the seed), so its resume by 'ebgan train' drew others."""
    import importlib

    import ebgan.data

    compare_module = importlib.import_module("ebgan.experiments.compare")  # the package's 'compare' is the function

    loaded = []
    real = ebgan.data.load_training_data
    monkeypatch.setattr(ebgan.data, "load_training_data", lambda cfg: loaded.append(cfg.seed) or real(cfg))
    monkeypatch.setattr(compare_module, "_DATA", {})
    presets = tmp_path / "presets"
    presets.mkdir()
    toy = {"model": "mlp", "objective": "ebgan-pt", "latent_dim": 2, "batch_size": 16, "model_args": SMALL_MLP}
    (presets / "toy-ebgan-pt.yaml").write_text(yaml.safe_dump(toy))
    args = dict(dataset="toy:8gaussians", objectives="ebgan-pt", budget="1", out=tmp_path / "c", seeds=2)
    compare_runs(**args, preset_dir=str(presets), preset_prefix="toy", no_eval=True, log=lambda m: None)
    assert sorted(loaded) == [0, 1]
