"""Mode coverage of a toy run's generator (for ``ebgan eval`` on toy:8gaussians / toy:25gaussians)."""

from __future__ import annotations

from pathlib import Path

from ebgan.data.toy import N_SAMPLES, is_toy, mixture_of, mode_coverage
from ebgan.errors import EbganError


def _run_dataset(folder: Path) -> str | None:
    from ebgan.config import load_config_file
    from ebgan.train.run_dir import CONFIG

    path = Path(folder) / CONFIG
    if not path.is_file():
        return None
    return load_config_file(path, check=False).get("dataset")


def is_toy_run(run: str | Path) -> bool:
    """True for a run folder trained on a toy:NAME dataset (for ``ebgan eval`` to branch on)."""
    return Path(run).is_dir() and is_toy(_run_dataset(Path(run)) or "")


def format_toy_metrics(m: dict) -> str:
    if not m:
        return "no known modes for this toy (mode coverage is defined for toy:8gaussians and toy:25gaussians)"
    return (
        f"modes captured: {m['modes']} of {m['n_modes']} (a mode counts with >= {m['min_samples']} "
        f"high-quality samples)\nhigh-quality samples: {100 * m['high_quality']:.1f}% of {m['n_samples']} "
        f"(within 3 std of the nearest mode)\nper mode: {m['per_mode']}"
    )


def toy_metrics(
    run: str | Path, n: int = N_SAMPLES, seed: int = 0, min_samples: int | None = None, device: str = "cpu"
) -> dict:
    """``mode_coverage`` of n generator samples of the run; {} for toys without known modes.

    Keys: modes, n_modes, high_quality (share within 3 std of a mode), min_samples (None: 20 per
    2500 samples, ``ebgan.data.toy.mode_coverage``), per_mode, n_samples. Raises for runs that are not on a toy dataset.
    """
    from ebgan.generator_io import load_generator, sample_images

    folder = Path(run)
    dataset = _run_dataset(folder)
    if dataset is None:
        raise EbganError(f"{folder} holds no run (no config.yaml)")
    if not is_toy(dataset):
        raise EbganError(f"{folder} is a {dataset!r} run; mode coverage is for toy:8gaussians and toy:25gaussians")
    mix = mixture_of(dataset)
    if mix is None:
        return {}
    samples = sample_images(load_generator(folder, device=device), n, seed=seed)
    return mode_coverage(samples, mix.centres, mix.std, min_samples=min_samples)
