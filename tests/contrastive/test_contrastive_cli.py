"""ebgan contrastive: every mistake is one line naming the problem and the fix, exit code 2."""

from __future__ import annotations

import pytest

from ebgan.cli import main


def fails(capsys, argv, message):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ebgan: error: ") and err.count("\n") == 1, err
    assert message in err, err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--loss", "hinge"], "unknown loss 'hinge'; use one of margin, cosine-bce, ntxent"),
        (["--loss", "ntxnt"], "did you mean 'ntxent'?"),
        (["--pairs", "views"], "--pairs views trains with --loss ntxent only; --loss margin needs labelled pairs"),
        (["--loss", "ntxent", "--pairs", "labels"], "--loss ntxent trains on --pairs views"),
        (["--temperature", "0.1"], "--loss margin does not use temperature (used by cosine-bce, ntxent)"),
        (["--loss", "ntxent", "--margin", "2"], "--loss ntxent does not use margin"),
        (["--loss", "ntxent", "--batch-pairs", "all"], "drop --batch-pairs"),
        (["--batch-pairs", "some"], "unknown batch_pairs 'some'"),
        (["--encoder", "small", "--width", "8"], "--encoder small has fixed widths"),
        (["--encoder", "big"], "unknown encoder 'big'"),
        (["--data-split", "test"], "evaluation needs a part of the test split the encoder never saw"),
        (["--dataset", "toy:8gaussians"], "holds 2-D points"),
        (["--dataset", "fashion"], "unknown dataset 'fashion'"),
        (["--batch-size", "1"], "batch_size must be at least 2"),
        (["--val-fraction", "0.9"], "val_fraction must be in (0, 0.5]"),
        (["--margin", "-1"], "margin must be > 0"),
        (["--no-flip"], "--no-flip applies to --pairs views; labelled pairs are not augmented"),
        (["--loss", "ntxent", "--temperature", "1e-40"], "temperature must be at least 0.001"),
        (["--loss", "cosine-bce", "--temperature", "0.0009"], "temperature must be at least 0.001"),
    ],
)
def test_bad_config_is_one_line(capsys, flags, message):
    fails(capsys, ["contrastive", "train", "--dry-run", *flags], message)


def test_no_output_folder(capsys):
    fails(capsys, ["contrastive", "train", "--steps", "1"], "say where the run goes: --out RUN_FOLDER")


def test_an_unlabelled_folder_needs_views(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    for n in range(12):
        Image.fromarray(np.full((16, 16), 10 * n, np.uint8)).save(tmp_path / "imgs" / f"{n}.png")
    argv = ["contrastive", "train", "--out", str(tmp_path / "run"), "--dataset", f"folder:{tmp_path / 'imgs'}"]
    fails(
        capsys,
        [*argv, "--image-size", "16", "--batch-size", "4"],
        "are unlabelled; pairs of same and different classes need labels",
    )
    assert not (tmp_path / "run").exists()  # refused before the folder is made


@pytest.fixture
def tiny_runs(tmp_path, tiny_idx, capsys):
    root, spec = tiny_idx(splits={"train": 60, "test": 30}, size=16)
    data = [
        "--dataset",
        spec.name,
        "--data-root",
        str(root),
        "--image-size",
        "16",
        "--batch-size",
        "8",
        "--no-progress",
    ]
    runs = {"contrastive": tmp_path / "c", "gan": tmp_path / "g", "critic": tmp_path / "w"}
    small = ["--width", "4", "--embedding-dim", "8", "--steps", "2", "--val-fraction", "0.3", "--device", "cpu"]
    assert main(["contrastive", "train", "--out", str(runs["contrastive"]), *data, *small]) == 0
    assert main(["train", "--out", str(runs["gan"]), *data, "--steps", "1", "--latent-dim", "4"]) == 0
    critic = ["--objective", "gan", "--model", "dcgan", "--latent-dim", "4"]
    assert main(["train", "--out", str(runs["critic"]), *data, "--steps", "1", *critic]) == 0
    return runs, data


def test_run_folder_mistakes(tiny_runs, tmp_path, capsys):
    runs, data = tiny_runs
    c, g, w = runs["contrastive"], runs["gan"], runs["critic"]
    before = {p: p.read_bytes() for p in sorted(c.rglob("*")) if p.is_file()}
    fails(capsys, ["contrastive", "train", "--resume", str(c), "--margin", "2"], "resume refuses a changed config")
    fails(capsys, ["contrastive", "train", "--resume", str(c), "--steps", "1"], "has done 2 steps")
    assert {p: p.read_bytes() for p in sorted(c.rglob("*")) if p.is_file()} == before  # nothing changed
    fails(capsys, ["contrastive", "train", "--resume", str(g)], "is not a contrastive run's config")
    # the run's --val-fraction: the default's 6 validation images of 60 miss pairs of a class, refused first
    fails(capsys, ["contrastive", "train", "--out", str(c), *data, "--val-fraction", "0.3"], f"{c} already holds a run")
    fails(capsys, ["contrastive", "eval", "--run", str(g)], "holds no encoder.safetensors")
    fails(capsys, ["contrastive", "eval", "--from-ebgan", str(w)], "critic with no embedding")
    fails(capsys, ["energy", "score", "--run", str(c), str(c)], "is a contrastive run")
    fails(capsys, ["contrastive", "eval", "--from-ebgan", str(c)], f"evaluated by: ebgan contrastive eval --run {c}")
    fails(capsys, ["contrastive", "eval", "--run", str(tmp_path / "nowhere")], "does not exist")
    fails(capsys, ["contrastive", "eval", "--run", str(c), "--val-fraction", "0.2"], "drop --val-fraction")
    fails(capsys, ["contrastive", "eval", "--run", str(c), "--pairs-count", "1"], "--pairs-count must be at least 2")


@pytest.mark.parametrize(
    "text, message",
    [
        ("margin: 1.0\nmargin: 2.0\n", "'margin' twice"),
        ("0\n", "must hold a mapping"),
        ("false\n", "must hold a mapping"),
    ],
)
def test_a_saved_config_with_a_repeated_key_or_no_mapping_is_refused(tmp_path, text, message):
    from ebgan.contrastive.config import ContrastiveConfig
    from ebgan.errors import EbganError

    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(EbganError, match=message):
        ContrastiveConfig.load(path)


def test_an_ebgan_discriminator_is_not_tested_on_images_it_trained_on(tmp_path, capsys):
    """A folder has no test split: its test part is carved from images the EBGAN's D trained on."""
    import numpy as np
    from PIL import Image

    for k in range(2):
        (tmp_path / "imgs" / f"c{k}").mkdir(parents=True)
        for n in range(12):
            Image.fromarray(np.full((16, 16), 100 * k + 5 * n, np.uint8)).save(tmp_path / "imgs" / f"c{k}" / f"{n}.png")
    run = tmp_path / "g"
    data = ["--dataset", f"folder:{tmp_path / 'imgs'}", "--image-size", "16", "--channels", "1", "--batch-size", "4"]
    assert main(["train", "--out", str(run), *data, "--steps", "1", "--latent-dim", "4", "--no-progress"]) == 0
    fails(capsys, ["contrastive", "eval", "--from-ebgan", str(run)], "no image is left to test its embedding on")
    assert not (run / "contrastive-eval").exists()


def _class_folder(root, per_class: int, classes: int = 3):
    """A labelled image folder: one sub-folder per class, class k a bright square at (4k, 4k)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for k in range(classes):
        (root / f"c{k}").mkdir(parents=True)
        for n in range(per_class):
            image = rng.integers(0, 40, (16, 16)).astype(np.uint8)
            image[4 * k : 4 * k + 4, 4 * k : 4 * k + 4] = 220
            Image.fromarray(image).save(root / f"c{k}" / f"{n:02d}.png")
    return root


TINY = ["--image-size", "16", "--width", "4", "--embedding-dim", "8", "--batch-size", "8", "--steps", "2"]
TINY += ["--no-progress", "--device", "cpu"]


def test_a_validation_part_that_cannot_make_pairs_is_refused_before_training(tmp_path, capsys):
    """Training used to finish and the evaluation then failed: an internal error on an empty validation part,
    or 'use a smaller --val-fraction' on one missing a class (smaller makes it worse)."""
    folder = _class_folder(tmp_path / "imgs", per_class=20)
    # 60 images: 12 are the test part; of the other 48, 10% is 5 validation images, none of them of class c1
    # (the hash ranking, which depends only on the count)
    argv = ["contrastive", "train", "--out", str(tmp_path / "run"), "--dataset", f"folder:{folder}", *TINY]
    fails(capsys, argv, "the validation images need 2 classes or more with 2 images or more each")
    fails(capsys, argv, "use a larger --val-fraction")
    fails(capsys, [*argv, "--val-fraction", "0.01"], "val_fraction 0.01 of the 48 images of the folder rounds to no")
    assert not (tmp_path / "run").exists()
    assert main([*argv, "--val-fraction", "0.3"]) == 0


def test_eval_of_an_encoder_of_unlabelled_images_names_what_is_missing(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    for n in range(12):
        Image.fromarray(np.full((16, 16), 10 * n, np.uint8)).save(tmp_path / "imgs" / f"{n}.png")
    run = tmp_path / "run"
    argv = ["contrastive", "train", "--out", str(run), "--dataset", f"folder:{tmp_path / 'imgs'}", "--loss", "ntxent"]
    assert main([*argv, *TINY, "--batch-size", "4"]) == 0  # the last --batch-size counts
    # it used to advise training on --pairs views --loss ntxent, which this run did
    fails(capsys, ["contrastive", "eval", "--run", str(run)], "images are unlabelled, and every measure here compares")


def test_an_empty_validation_part_of_an_ebgan_run_is_one_line(tmp_path, tiny_idx, capsys):
    """It was an internal error (torch.cat of no embeddings)."""
    root, spec = tiny_idx(splits={"train": 90, "test": 60}, size=16)
    run = tmp_path / "gan"
    common = ["--dataset", spec.name, "--data-root", str(root), "--image-size", "16", "--batch-size", "8"]
    assert main(["train", "--out", str(run), *common, "--steps", "1", "--latent-dim", "4", "--no-progress"]) == 0
    argv = ["contrastive", "eval", "--from-ebgan", str(run), "--val-fraction", "0.001"]
    fails(capsys, argv, "val_fraction 0.001 of the 90 images of the official train split rounds to no image")
    assert not (run / "contrastive-eval").exists()


def test_eval_refuses_a_folder_that_changed_since_training(tmp_path, capsys):
    """The parts are recomputed by image index: one image more (or renamed) reshuffles them, and the test
    part then holds images the encoder trained on; the evaluation used to score them silently."""
    import shutil

    folder = _class_folder(tmp_path / "imgs", per_class=40)
    run = tmp_path / "run"
    assert main(["contrastive", "train", "--out", str(run), "--dataset", f"folder:{folder}", *TINY]) == 0
    eval_argv = ["contrastive", "eval", "--run", str(run), "--pairs-count", "50"]
    assert main(eval_argv) == 0
    shutil.copy(folder / "c0" / "00.png", folder / "c0" / "00a.png")  # one more image, early in the order
    fails(capsys, eval_argv, "changed since the encoder trained on it")
    (folder / "c0" / "00a.png").unlink()
    (folder / "c0" / "00.png").rename(folder / "c0" / "99.png")  # the same images, in another order
    fails(capsys, eval_argv, "restore the dataset as it was, or train a new run on it")
    (folder / "c0" / "99.png").rename(folder / "c0" / "00.png")  # restored
    assert main(eval_argv) == 0


def test_a_resume_refuses_a_folder_that_changed(tmp_path, capsys):
    """The same count of images in another order passed the data order's size check and trained on a new
    training part, holding the old validation and test images; the export then vouched for it."""
    folder = _class_folder(tmp_path / "imgs", per_class=40)
    run = tmp_path / "run"
    assert main(["contrastive", "train", "--out", str(run), "--dataset", f"folder:{folder}", *TINY]) == 0
    (folder / "c0" / "00.png").rename(folder / "c0" / "99.png")
    before = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}
    resume = ["contrastive", "train", "--resume", str(run), "--steps", "4", "--no-progress"]
    fails(capsys, resume, "the dataset changed (images added, removed or renamed)")
    assert {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()} == before
    (folder / "c0" / "99.png").rename(folder / "c0" / "00.png")
    assert main(resume) == 0
