"""The dataset registry: built-in entries, lookups and errors, and that a new IDX dataset
is one ``register_dataset`` call away from training, the classifier and ``ebgan eval``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ebgan import Config, Trainer, load_training_data
from ebgan.cli import main
from ebgan.data import load_images
from ebgan.data.registry import DatasetSpec, dataset_spec, register_dataset, registered_datasets
from ebgan.errors import EbganError


def test_builtin_entries():
    assert registered_datasets()[:2] == ["mnist", "fashion-mnist"]
    fm = dataset_spec("fashion-mnist")
    assert (fm.loader, fm.torchvision, fm.channels, fm.native_size, fm.num_classes) == (
        "idx",
        "FashionMNIST",
        1,
        (28, 28),
        10,
    )
    assert fm.class_names[1] == "Trouser" and fm.score_name == "fmnist_cls" and fm.evaluation == "classifier"
    assert fm.system_package == "dataset-fashion-mnist"
    m = dataset_spec("mnist")
    assert m.labels == [str(i) for i in range(10)] and m.score_name == "mnist_cls" and m.idx_prefix("test") == "t10k"


def test_folder_and_toy_families():
    folder = dataset_spec("folder:/any/where")
    assert (folder.loader, folder.channels, folder.evaluation) == ("folder", None, "none")
    toy = dataset_spec("toy:8gaussians")
    assert (toy.loader, toy.evaluation) == ("toy", "toy-modes")
    with pytest.raises(EbganError, match="unknown toy dataset"):
        dataset_spec("toy:9gaussians")
    for empty in ("folder:", "folder: "):  # not the working directory's images
        with pytest.raises(EbganError, match="needs the folder's path after the colon"):
            dataset_spec(empty)


def test_unknown_name_suggests_the_closest_on_one_line():
    with pytest.raises(EbganError) as e:
        dataset_spec("fashion_mnist")
    msg = str(e.value)
    assert "did you mean 'fashion-mnist'?" in msg and "folder:PATH" in msg and len(msg.splitlines()) == 1


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(name="x", num_classes=2, class_names=("a",), score_name="x_cls"), "1 class names for 2 classes"),
        (dict(name="x", num_classes=10), "needs a labelled dataset"),  # a classifier needs a score name
        (dict(name="x:y", num_classes=10, score_name="x_cls"), "contain no ':'"),
        (dict(name="x", loader="tfrecord", evaluation="none"), "loader must be one of"),
    ],
)
def test_invalid_specs_are_refused(kw, message):
    with pytest.raises(EbganError, match=message):
        DatasetSpec(**kw)


def test_names_and_score_names_are_unique(tiny_idx):
    tiny_idx("tiny-a")
    with pytest.raises(EbganError, match="already registered"):
        register_dataset(DatasetSpec("tiny-a", num_classes=3, score_name="other_cls"))
    with pytest.raises(EbganError, match="taken by 'tiny-a'"):
        register_dataset(DatasetSpec("tiny-b", num_classes=3, score_name="tiny_a_cls"))
    assert "tiny-b" not in registered_datasets()


def test_a_new_idx_dataset_is_one_entry(tiny_idx, tmp_path, capsys):
    """Files written here, one register_dataset call (inside tiny_idx), then everything finds it."""
    root, spec = tiny_idx("tiny-digits", splits={"train": 90, "test": 60})
    # loading, every split
    train = load_images("tiny-digits", "train", data_root=root)
    assert train.images.shape == (90, 1, 32, 32) and train.num_classes == 3
    assert [len(load_images("tiny-digits", s, data_root=root)) for s in ("test", "test-fit", "test-heldout")] == [
        60,
        36,
        24,
    ]
    # a run's config and networks (channels and input shape come from the entry)
    from ebgan.energy.model import input_shape_of

    cfg = Config(
        dataset="tiny-digits",
        data_root=str(root),
        data_split="test-fit",
        model="mlp",
        steps=1,
        batch_size=8,
        model_args={"n_layer_g": 2, "size_g": 16, "n_layer_d": 2, "size_d": 16},
        log_every=1,
        sample_every=0,
        checkpoint_every=0,
    ).resolve()
    assert input_shape_of(cfg) == (1, 32, 32)
    Trainer(cfg, load_training_data(cfg), run_dir=tmp_path / "run").train(progress=False)
    # the anomaly tables' class names
    from ebgan.energy.anomaly import CLASS_NAMES

    assert CLASS_NAMES["tiny-digits"] == ["square0", "square1", "square2"]
    # the feature classifier, through the CLI
    assert main(["classifier", "train", "--dataset", "tiny-digits", "--data-root", str(root), "--epochs", "1"]) == 0
    assert "tiny_digits_cls" in capsys.readouterr().out
    # ebgan eval of the run (trained on test-fit: scored against test-heldout) and of sample files
    assert main(["eval", "--run", str(tmp_path / "run"), "--n", "40", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["frechet_name"] == "fid_tiny_digits_cls" and result["reference_split"] == "test-heldout"
    np.savez(tmp_path / "s.npz", images=train.images[:20].numpy())
    assert (
        main(["eval", "--samples", str(tmp_path / "s.npz"), "--dataset", "tiny-digits", "--data-root", str(root)]) == 0
    )
    assert "fid_tiny_digits_cls" in capsys.readouterr().out
