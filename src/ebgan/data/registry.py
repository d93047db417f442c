"""Every dataset ebgan knows, one entry each.

Loading (``ebgan.data.sources``), the run config's channel count, the feature classifier
(``ebgan.metrics.classifier``), ``ebgan eval``'s choice of evaluation and the anomaly
tables' class names all read a dataset's ``DatasetSpec`` here. Adding an MNIST-family
IDX dataset is one call::

    register_dataset(DatasetSpec("kmnist", torchvision="KMNIST", num_classes=10,
                                 class_names=("o", "ki", ...), score_name="kmnist_cls"))

Two families are not entries but name prefixes: ``folder:PATH`` (any image folder) and
``toy:NAME`` (the 2-D manifolds of ``ebgan.data.toy``); ``dataset_spec`` describes them too.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ebgan.errors import EbganError

# cifar: the CIFAR-10 binary version (ebgan.data.cifar); celeba, lsun: ebgan.data.photos (decoded cache)
LOADERS = ("idx", "folder", "toy", "cifar", "celeba", "lsun")
# classifier: ebgan's own CNN features (fid_<score_name>, ...) against a real split;
# toy-modes: mode coverage of a toy run's Gaussian mixture; none: ebgan eval refuses.
LABELLED_LOADERS = ("idx", "cifar")  # loaders that give class labels: a feature classifier can be trained
EVALUATIONS = ("classifier", "inception", "toy-modes", "none")  # inception: unlabelled colour sets
MNIST_FILES = (("train", "train"), ("test", "t10k"))  # official split -> IDX file-name prefix


@dataclass(frozen=True)
class DatasetSpec:
    """What the code needs to know about one dataset."""

    name: str  # the --dataset value
    loader: str = "idx"  # idx (MNIST-family files), folder, toy, cifar
    torchvision: str | None = None  # torchvision.datasets class: download fallback and its <class>/raw/ layout
    channels: int | None = 1  # None: decided by the files / --channels
    native_size: tuple[int, int] | None = (28, 28)  # (H, W) the files must have; None: any
    num_classes: int = 0  # 0: unlabelled
    class_names: tuple[str, ...] = ()  # one per class (the anomaly tables); empty: "0", "1", ...
    score_name: str | None = None  # the feature classifier's qualifier: scores named fid_<score_name>, kid_...
    evaluation: str = "classifier"  # how ebgan eval scores it, one of EVALUATIONS
    system_package: str | None = None  # Debian package that installs it under /usr/share/datasets
    idx_files: tuple[tuple[str, str], ...] = MNIST_FILES  # (official split, file prefix) for loader idx

    def __post_init__(self):
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise EbganError(f"dataset spec {self.name!r}: {what}")

        need(
            bool(self.name) and ":" not in self.name,
            "the name must be non-empty and contain no ':' (folder: and toy: are prefixes)",
        )
        need(self.loader in LOADERS, f"loader must be one of {LOADERS}, got {self.loader!r}")
        need(self.evaluation in EVALUATIONS, f"evaluation must be one of {EVALUATIONS}, got {self.evaluation!r}")
        need(self.channels in (None, 1, 3), f"channels must be 1, 3 or None, got {self.channels!r}")
        need(
            not self.class_names or len(self.class_names) == self.num_classes,
            f"{len(self.class_names)} class names for {self.num_classes} classes",
        )
        if self.evaluation == "classifier":
            need(
                self.loader in LABELLED_LOADERS
                and self.channels is not None
                and self.num_classes >= 2
                and bool(self.score_name),
                f"evaluation 'classifier' needs a labelled dataset ({', '.join(LABELLED_LOADERS)} loader) with "
                "channels, >= 2 classes and a score_name "
                "(or set evaluation='none')",
            )

    @property
    def labels(self) -> list[str]:
        """Class names, or the class indices as strings when none are given."""
        return list(self.class_names) or [str(i) for i in range(self.num_classes)]

    def idx_prefix(self, split: str) -> str:
        """File-name prefix of an official split ('train' or 'test') of an IDX dataset."""
        return dict(self.idx_files)[split]


_REGISTRY: dict[str, DatasetSpec] = {}
PATTERNS = ("folder:PATH", "toy:NAME", "lsun:CATEGORY")


def register_dataset(spec: DatasetSpec, replace: bool = False) -> DatasetSpec:
    """Add ``spec`` under ``spec.name``; a second entry for a name needs ``replace=True``."""
    if not isinstance(spec, DatasetSpec):
        raise EbganError(f"register_dataset takes a DatasetSpec, got {type(spec).__name__}")
    if spec.name in _REGISTRY and not replace:
        raise EbganError(f"dataset {spec.name!r} is already registered; pass replace=True to change it")
    score_owner = {s.score_name: s.name for s in _REGISTRY.values() if s.score_name and s.name != spec.name}
    if spec.score_name in score_owner:
        raise EbganError(
            f"score name {spec.score_name!r} is taken by {score_owner[spec.score_name]!r}; "
            "scores of two datasets must not share a name"
        )
    _REGISTRY[spec.name] = spec
    return spec


def unregister_dataset(name: str) -> None:
    """Remove an entry (tests that register a dataset of their own clean up with this)."""
    _REGISTRY.pop(name, None)


def registered_datasets() -> list[str]:
    return list(_REGISTRY)


FOLDER = "folder:"


def folder_path(name: str) -> Path:
    """The folder of a ``folder:PATH`` dataset name, with ``~`` expanded."""
    path = name[len(FOLDER) :]
    if not path.strip():  # Path("") is the working directory: never what was meant
        raise EbganError("--dataset folder: needs the folder's path after the colon, e.g. folder:~/photos")
    return Path(path).expanduser()


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of a --dataset value: a registered name, folder:PATH or toy:NAME."""
    if not isinstance(name, str):
        raise EbganError(f"a dataset name is a string, got {name!r}")
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name.startswith(FOLDER):
        folder_path(name)  # an empty path: its own error
        return DatasetSpec(
            name="folder", loader="folder", channels=None, native_size=None, evaluation="none", idx_files=()
        )
    if name.startswith("lsun:"):
        return DatasetSpec(
            name="lsun", loader="lsun", channels=3, native_size=None, evaluation="inception", idx_files=()
        )
    if name.startswith("toy:"):
        from ebgan.data.toy import toy_key

        toy_key(name)  # unknown toy: its own error lists the toys
        return DatasetSpec(
            name="toy", loader="toy", channels=None, native_size=None, evaluation="toy-modes", idx_files=()
        )
    known = registered_datasets()
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise EbganError(f"unknown dataset {name!r}; {hint}use one of {', '.join(known + list(PATTERNS))}")


class ClassNames(Mapping):
    """Read-only {dataset: class names} over the registry, current at every lookup."""

    def __getitem__(self, name: str) -> list[str]:
        if name not in _REGISTRY:
            raise KeyError(name)
        return _REGISTRY[name].labels

    def __iter__(self):
        return iter(list(_REGISTRY))

    def __len__(self) -> int:
        return len(_REGISTRY)


register_dataset(
    DatasetSpec(
        "mnist",
        torchvision="MNIST",
        num_classes=10,
        class_names=tuple(str(i) for i in range(10)),
        score_name="mnist_cls",
    )
)
register_dataset(
    DatasetSpec(
        "fashion-mnist",
        torchvision="FashionMNIST",
        num_classes=10,
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        score_name="fmnist_cls",
        system_package="dataset-fashion-mnist",
    )
)
register_dataset(
    DatasetSpec(
        "cifar10",
        loader="cifar",
        channels=3,
        native_size=(32, 32),
        num_classes=10,
        class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        score_name="cifar10_cls",  # ebgan's own small CNN: not the Inception FID of the literature
        idx_files=(),
    )
)
register_dataset(
    DatasetSpec(
        "celeba",
        loader="celeba",
        channels=3,
        native_size=None,  # 178x218, centre-cropped to 108x108 (ebgan.data.photos)
        evaluation="inception",  # no labels for a classifier of ours: Inception FID/KID only
        idx_files=(),
    )
)
