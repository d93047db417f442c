"""The package as users install it: a wheel with its presets, working outside the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_carries_its_presets_and_runs_outside_the_source_tree(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
        cwd=tmp_path,
        capture_output=True,
    )
    (wheel,) = wheels.glob("ebgan-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "ebgan/presets/fmnist-ebgan-pt.yaml" in names and "ebgan/presets/demo.yaml" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # The wheel goes into the fresh venv; its dependencies are borrowed from this interpreter's
    # site-packages through a .pth (appended after the venv's own site-packages, so the wheel wins
    # over the editable install of the source tree). Nothing is downloaded.
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    outside = tmp_path / "elsewhere"
    outside.mkdir()

    def ebgan(*args):
        return subprocess.run([str(py), "-m", "ebgan", *args], cwd=outside, env=env, capture_output=True, text=True)

    where = subprocess.run(
        [str(py), "-c", "import ebgan; print(ebgan.__file__)"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(site) in where and str(REPO) not in where
    train = ebgan("train", "--config", "fmnist-ebgan-pt", "--dry-run")
    assert train.returncode == 0, train.stderr
    assert "pt_weight: 0.1" in train.stdout and "dataset: fashion-mnist" in train.stdout
    dry = ebgan("compare", "--objectives", "ebgan-pt,gan", "--budget", "100", "--out", "cmp", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "fmnist-ebgan-pt.yaml" in dry.stdout and "fmnist-gan.yaml" in dry.stdout
    assert not (outside / "cmp").exists()
