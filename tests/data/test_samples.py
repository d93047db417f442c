"""ebgan.data.samples: one reader, one set of shape rules, for every command that reads samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ebgan.data.samples import read_inputs, read_npz, read_sample_images
from ebgan.errors import EbganError
from ebgan.files import save_png


def test_npz_shapes_become_n_c_h_w(tmp_path):
    a = np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5)
    for name, arr in {"nhw": a, "nchw": a[:, None], "nhwc": a[..., None]}.items():
        np.savez(tmp_path / f"{name}.npz", images=arr)
        got = read_npz(tmp_path / f"{name}.npz")
        assert got.shape == (2, 1, 4, 5) and torch.equal(got[:, 0], torch.from_numpy(a)), name
    rgb = np.zeros((3, 6, 7, 3), np.uint8)
    rgb[..., 2] = 9  # channels-last blue
    np.savez(tmp_path / "rgb.npz", images=rgb)
    got = read_npz(tmp_path / "rgb.npz")
    assert got.shape == (3, 3, 6, 7) and got[:, 2].eq(9).all() and got[:, :2].eq(0).all()


def test_a_pickled_object_array_is_refused(tmp_path):
    np.savez(tmp_path / "evil.npz", images=np.array([object()], dtype=object))
    with pytest.raises(EbganError, match="cannot read"):
        read_npz(tmp_path / "evil.npz")


def test_float_images_and_bad_points_are_refused(tmp_path):
    np.savez(tmp_path / "f.npz", images=np.zeros((2, 1, 4, 4), np.float32))
    with pytest.raises(EbganError, match="uint8"):
        read_npz(tmp_path / "f.npz")
    np.savez(tmp_path / "p.npz", points=np.zeros((5, 3), np.float32))
    with pytest.raises(EbganError, match="\\(N, 2\\)"):
        read_npz(tmp_path / "p.npz")


def test_folders_are_read_whatever_the_extension_case(tmp_path):
    imgs = torch.randint(0, 256, (3, 1, 6, 6), dtype=torch.uint8)
    for i, name in enumerate(("00.PNG", "01.png", "02.Png")):
        save_png(tmp_path / "pngs" / name, imgs[i].numpy())
    (tmp_path / "pngs" / "notes.txt").write_text("not an image")
    got = read_sample_images(tmp_path / "pngs")
    assert torch.equal(got, imgs)
    names, items = read_inputs([str(tmp_path / "pngs")], channels=1)
    assert [n.rsplit("/", 1)[1] for n in names] == ["00.PNG", "01.png", "02.Png"]
    assert torch.equal(torch.cat(items), imgs)


def test_mixed_sizes_in_a_sample_folder_are_named(tmp_path):
    save_png(tmp_path / "s" / "a.png", np.zeros((1, 4, 4), np.uint8))
    save_png(tmp_path / "s" / "b.png", np.zeros((1, 5, 5), np.uint8))
    with pytest.raises(EbganError, match="b.png is \\(1, 5, 5\\) but a.png is \\(1, 4, 4\\)"):
        read_sample_images(tmp_path / "s")
