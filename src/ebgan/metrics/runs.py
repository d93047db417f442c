"""Evaluating a run folder or a set of samples: what ``ebgan eval`` does, usable from Python.

    from ebgan.metrics import evaluate_run_folder, evaluate_samples, format_result
    print(format_result(evaluate_run_folder("runs/fmnist", n=10000)))

How a dataset is evaluated is its registry entry's ``evaluation`` (``ebgan.data.registry``):
``classifier`` scores images with the dataset's feature classifier against a reference
split chosen by ``ebgan.data.splits.reference_split``; ``toy-modes`` counts the modes a
toy run's generator covers (``ebgan.metrics.toy``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from ebgan.data.registry import dataset_spec
from ebgan.errors import EbganError

DEFAULT_N = 10000


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


# ------------------------------------------------------------------ samples
def evaluate_samples(
    images: torch.Tensor,
    dataset: str,
    data_split: str | None = None,
    data_root=None,
    n: int | None = None,
    seed: int = 0,
    inception_weights=None,
    source: str | None = None,
    log=_stderr,
) -> dict:
    """Every score of uint8 samples (N, C, H, W) of ``dataset``.

    ``data_split``: the split their generator trained on (one of ``ebgan.data.SPLITS``), used
    to pick a reference disjoint from it; None when unknown (the result says it was not checked).
    ``n``: score only the first n samples.
    """
    kind = _image_evaluation(dataset)
    if kind == "classifier":
        from ebgan.metrics.classifier import as_classifier_input

        images, converted = as_classifier_input(images, dataset)
        if converted:
            source = f"{source or f'{len(images)} samples'} ({'; '.join(converted)})"
    if n is not None:
        if n < 1:
            raise EbganError(f"--n must be positive, got {n}")
        if n > len(images):
            raise EbganError(f"--n {n} exceeds the {len(images)} images{f' in {source}' if source else ''}")
        images = images[:n]
    if data_split is not None:
        from ebgan.data.splits import check_split

        check_split(data_split)
    result = EVALUATORS[kind](
        images,
        dataset,
        data_root=data_root,
        seed=seed,
        inception_weights=inception_weights,
        log=log,
        data_split=data_split,
    )
    return {"source": source or f"{len(images)} samples", "evaluation": kind, **result}


def _classifier_images(images, dataset, **kw) -> dict:
    from ebgan.metrics.evaluate import evaluate_classifier_images

    return evaluate_classifier_images(images, dataset, **kw)


def _inception_images(images, dataset, **kw) -> dict:
    from ebgan.metrics.evaluate import evaluate_inception_images

    return evaluate_inception_images(images, dataset, **kw)


EVALUATORS = {"classifier": _classifier_images, "inception": _inception_images}  # evaluation kind -> function


def _image_evaluation(dataset: str) -> str:
    """The dataset's evaluation kind when it scores images, else a one-line error."""
    spec = dataset_spec(dataset)
    if spec.evaluation == "toy-modes":
        raise EbganError(f"{dataset} holds 2-D points: evaluate a toy run from its folder with ebgan eval --run RUN")
    if spec.evaluation not in EVALUATORS:
        from ebgan.metrics.classifier import classifier_datasets

        raise EbganError(
            f"ebgan eval has no evaluation for {dataset!r}; it evaluates {', '.join(classifier_datasets())} "
            "with its classifiers, celeba and lsun:CATEGORY with Inception (--inception-weights), and toy runs"
        )
    return spec.evaluation


def evaluator_for(dataset: str):
    """``f(images, dataset, args)`` for ``dataset``; ``args`` carries data_root, seed and optionally
    inception_weights and data_split (the generator's training split; absent: unknown).

    The form ``ebgan compare`` calls; new code can call ``evaluate_samples`` directly.
    """
    _image_evaluation(dataset)

    def evaluate(images, dataset, args) -> dict:
        return evaluate_samples(
            images,
            dataset,
            data_split=getattr(args, "data_split", None),
            data_root=getattr(args, "data_root", None),
            seed=getattr(args, "seed", 0),
            inception_weights=getattr(args, "inception_weights", None),
        )

    return evaluate


# ------------------------------------------------------------------ runs
def run_info(run: str | Path) -> dict:
    """What a run folder (or RUN/best, or a generator.safetensors path) records about its generator.

    Keys: folder, dataset, data_split and fit (None when no config says), data_root, step, and
    selected_on (the --eval-every validation set, for RUN/best).
    """
    from ebgan.config import load_config_file
    from ebgan.generator_io import SPEC, read_spec
    from ebgan.metrics.hook import BEST_DIR, BEST_SCORES
    from ebgan.train.run_dir import CONFIG

    path = Path(run)
    if not path.exists():
        raise EbganError(f"{path} does not exist; pass a run folder written by 'ebgan train' (or RUN/best)")
    folder = path if path.is_dir() else path.parent
    if not (folder / SPEC).is_file():
        raise EbganError(
            f"no exported generator in {folder} (expected {SPEC}); pass a run folder written by "
            "'ebgan train' (or RUN/best)"
        )
    spec = read_spec(folder)
    config_path = folder / CONFIG
    if not config_path.is_file() and folder.name == BEST_DIR:  # RUN/best: the run's config is one folder up
        config_path = folder.parent / CONFIG
    cfg = load_config_file(config_path, check=False) if config_path.is_file() else {}
    best = folder / BEST_SCORES
    selected_on = spec.get("selected_on") or (
        json.loads(best.read_text()).get("selected_on") if best.is_file() else None
    )
    return {
        "folder": folder,
        "dataset": spec.get("dataset") or cfg.get("dataset"),
        "data_split": spec.get("data_split") or cfg.get("data_split"),
        "data_root": cfg.get("data_root"),
        "fit": cfg.get("fit"),  # how training images reached image_size (None when no config says)
        "generator": spec.get("generator", "raw"),  # raw, or the EMA with its decay
        "step": spec.get("step", "?"),
        "selected_on": selected_on,
    }


def sample_run(run: str | Path, n: int = DEFAULT_N, seed: int = 0, device: str = "cpu") -> torch.Tensor:
    """n uint8 samples (N, C, H, W, on the CPU) of a run's exported generator, from noise seed ``seed``."""
    from ebgan.data import to_uint8
    from ebgan.generator_io import load_generator, sample_images

    if n < 1:
        raise EbganError(f"--n must be positive, got {n}")
    return to_uint8(sample_images(load_generator(run, device=device), n, seed=seed)).cpu()


def evaluate_run_folder(
    run: str | Path,
    n: int | None = None,
    seed: int = 0,
    dataset: str | None = None,
    data_root=None,
    inception_weights=None,
    device: str = "cpu",
    log=_stderr,
) -> dict:
    """Every score of a run's generator (RUN or RUN/best); a toy run gets its mode coverage.

    The reference is disjoint from the split the run trained on (its config's data_split);
    a run trained on the whole test split is refused. ``data_root`` defaults to the run's.
    """
    from ebgan.metrics.toy import N_SAMPLES, is_toy_run, toy_metrics

    if n is not None and n < 1:
        raise EbganError(f"--n must be positive, got {n}")
    if is_toy_run(run):
        if dataset or inception_weights:  # they were ignored without a word
            raise EbganError(
                f"{run} is a toy run, scored by its mode coverage: --dataset and --inception-weights do not apply"
            )
        return {
            "source": f"run {run}",
            "evaluation": "toy-modes",
            **toy_metrics(run, n=n or N_SAMPLES, seed=seed, device=device),
        }
    if dataset:
        _image_evaluation(dataset)  # unknown dataset: fail before sampling
    info = run_info(run)
    dataset = dataset or info["dataset"]
    if not dataset:
        raise EbganError(f"{run} does not record its dataset; pass --dataset")
    if _image_evaluation(dataset) == "classifier":
        from ebgan.metrics.classifier import check_fit_rule

        check_fit_rule(info["fit"], str(run))
    images = sample_run(run, n or DEFAULT_N, seed=seed, device=device)
    result = evaluate_samples(
        images,
        dataset,
        data_split=info["data_split"],
        data_root=data_root or info["data_root"],
        seed=seed,
        inception_weights=inception_weights,
        log=log,
        source=f"run {run} (step {info['step']}, {info['generator']} generator, noise seed {seed})",
    )
    if info["selected_on"]:
        result["selection"] = f"this generator was kept by --eval-every as the best on {info['selected_on']}"
    return result
