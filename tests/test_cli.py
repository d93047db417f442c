"""The ``ebgan`` command itself: exit codes and one-line errors common to every command."""

from __future__ import annotations

import os
import subprocess
import sys


def test_a_reader_that_leaves_early_is_not_an_error():
    """``ebgan presets NAME | head -1``: stdout's reader is gone; SIGPIPE's exit, no error line."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout now fails with EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ebgan", "presets", "demo"], stdout=write_end, stderr=subprocess.PIPE, text=True
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (128 + 13, "")


def test_running_out_of_memory_is_the_environment_not_a_bug(monkeypatch, capsys):
    import ebgan.commands.presets as presets_command
    from ebgan.cli import main

    allocator = (
        "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
        "you tried to allocate 640000000000 bytes. Error code 12 (Cannot allocate memory)"
    )

    def fail(message):
        def run(args):
            raise RuntimeError(message)

        return run

    monkeypatch.setattr(presets_command, "run", fail(allocator))
    assert main(["presets"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ebgan: error: out of memory ([enforce fail") and "lower --batch-size" in err
    assert "a bug" not in err and len(err.splitlines()) == 1
    monkeypatch.setattr(presets_command, "run", fail("shape mismatch"))  # any other RuntimeError is still a bug
    assert main(["presets"]) == 1
    assert "internal error RuntimeError: shape mismatch (a bug;" in capsys.readouterr().err


def test_version_is_pyproject_s(capsys):
    import re
    from pathlib import Path

    import pytest
    import torch

    from ebgan.cli import main

    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()  # no tomllib on Python 3.10
    (written,) = re.findall(r'^version = "([^"]+)"$', pyproject, flags=re.M)
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"ebgan {written} (torch {torch.__version__})"


def test_argparse_refusals_are_one_line_too(capsys):
    """The README: every mistake is one line, ``ebgan: error: ...``, exit code 2. An unknown flag, a flag
    without its value or an unknown command is refused by argparse, which printed a usage block (the
    whole option list for ``train``) and ``ebgan train: error:`` instead."""
    import pytest

    from ebgan.cli import main

    cases = [
        (
            ["sample", "--run", "r", "--out", "x.npz", "--margin", "3"],
            "unrecognized arguments: --margin 3",
            "ebgan sample",
        ),
        (["train", "--steps"], "argument --steps: expected one argument", "ebgan train"),
        (
            ["classifier", "train", "--dataset", "mnist", "--epochs", "x"],
            "invalid int value: 'x'",
            "ebgan classifier train",
        ),
        (["bogus"], "invalid choice: 'bogus'", "ebgan"),
    ]
    for argv, what, prog in cases:
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1, err
        assert err.startswith("ebgan: error: ") and what in err and f"'{prog} --help'" in err, err
