"""Mode coverage of a toy run's generator (for ``ebgan eval`` on toy:8gaussians / toy:25gaussians)."""

from __future__ import annotations

from pathlib import Path

from ebgan.data.toy import is_toy, mixture_of, mode_coverage
from ebgan.errors import EbganError

N_SAMPLES = 2500  # VEEGAN's sample count for the 2-D ring and grid


def toy_metrics(run: str | Path, n: int = N_SAMPLES, seed: int = 0, min_samples: int = 20, device: str = "cpu") -> dict:
    """``mode_coverage`` of n generator samples of the run; {} for toys without known modes.

    Keys: modes, n_modes, high_quality (share within 3 std of a mode), min_samples,
    per_mode, n_samples. Raises for runs that are not on a toy dataset.
    """
    import yaml

    from ebgan.generator_io import load_generator, sample_images
    from ebgan.train.run_dir import CONFIG

    folder = Path(run)
    cfg_path = folder / CONFIG
    if not cfg_path.is_file():
        raise EbganError(f"{folder} holds no run (no {CONFIG})")
    dataset = (yaml.safe_load(cfg_path.read_text()) or {}).get("dataset", "")
    if not is_toy(dataset):
        raise EbganError(f"{folder} is a {dataset!r} run; mode coverage is for toy:8gaussians and toy:25gaussians")
    mix = mixture_of(dataset)
    if mix is None:
        return {}
    samples = sample_images(load_generator(folder, device=device), n, seed=seed)
    return mode_coverage(samples, mix.centres, mix.std, min_samples=min_samples)
