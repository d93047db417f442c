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
