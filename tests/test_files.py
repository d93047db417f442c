"""ebgan.files: every write is all-or-nothing and leaves no temp file behind."""

from __future__ import annotations

import errno
import json
import os
import stat

import numpy as np
import pytest

from ebgan.errors import EbganError
from ebgan.files import atomic_dir, atomic_write, save_npz, write_json, write_text


def test_a_failed_write_keeps_the_old_file_and_removes_its_temp(tmp_path):
    path = write_text(tmp_path / "a.txt", "old")

    def half(f):
        f.write(b"new but incomp")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(path, half)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_disk_full_is_a_one_line_error_that_says_the_old_file_is_intact(tmp_path):
    path = write_text(tmp_path / "checkpoint.pt", "good")

    def full(f):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(EbganError, match="disk is full.*previous checkpoint.pt is intact"):
        atomic_write(path, full)
    assert path.read_text() == "good"
    assert os.listdir(tmp_path) == ["checkpoint.pt"]


def test_files_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_json(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert json.loads(path.read_text()) == {"a": 1}


def test_json_refuses_nan_instead_of_writing_invalid_json(tmp_path):
    with pytest.raises(ValueError):
        write_json(tmp_path / "x.json", {"a": float("nan")})
    assert not list(tmp_path.iterdir())


def test_npz_round_trip(tmp_path):
    save_npz(tmp_path / "s.npz", images=np.arange(6, dtype=np.uint8).reshape(1, 1, 2, 3))
    with np.load(tmp_path / "s.npz") as f:
        assert f["images"].tolist() == [[[[0, 1, 2], [3, 4, 5]]]]


def test_atomic_dir_appears_whole_or_not_at_all(tmp_path):
    out = tmp_path / "pngs"
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "0.png").write_bytes(b"x")
        raise RuntimeError("crash after the first file")
    assert not out.exists() and not list(tmp_path.iterdir())
    with atomic_dir(out) as tmp:
        (tmp / "0.png").write_bytes(b"x")
    assert sorted(p.name for p in out.iterdir()) == ["0.png"]
    with pytest.raises(EbganError, match="not an empty folder"), atomic_dir(out):
        pass
