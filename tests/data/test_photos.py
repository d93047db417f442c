"""CelebA and LSUN layouts, their crops, and the decoded cache (built once, rebuilt on change)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from ebgan.data import decoded, load_images
from ebgan.errors import EbganError

CENTRE, BORDER = (200, 40, 10), (10, 10, 250)


def face(path, w=178, h=218, inner=108):
    """A CelebA-sized image: the centre ``inner`` square one colour, the rest another."""
    a = np.empty((h, w, 3), np.uint8)
    a[:] = BORDER
    top, left = (h - inner) // 2, (w - inner) // 2
    a[top : top + inner, left : left + inner] = CENTRE
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path, **({"quality": 95} if path.suffix == ".jpg" else {}))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "ebgan" / "decoded"


def celeba(tmp_path, n=5, suffix=".jpg"):
    root = tmp_path / "data"
    for i in range(n):
        face(root / "celeba" / "img_align_celeba" / f"{i:06d}{suffix}")
    return root


def test_celeba_is_the_centre_108_square_resized(tmp_path, cache):
    """PNG (lossless): exactly the centre 108x108 is kept, so every pixel is the centre colour;
    one border pixel more on each side would blend the border in through the antialiased resize."""
    root = celeba(tmp_path, suffix=".png")
    data = load_images("celeba", data_root=root, image_size=16)
    assert data.images.shape == (5, 3, 16, 16) and data.images.dtype == torch.uint8
    assert torch.equal(data.images, torch.tensor(CENTRE, dtype=torch.uint8).view(1, 3, 1, 1).expand(5, 3, 16, 16))
    assert (data.labels == -1).all() and data.num_classes == 0


def test_the_cache_is_built_once_and_rebuilt_when_a_file_changes(tmp_path, cache, monkeypatch):
    root = celeba(tmp_path)
    load_images("celeba", data_root=root, image_size=16)
    [built] = list(cache.glob("*.npy"))

    def no_decoding(*a, **k):
        raise AssertionError("decoded again")

    with monkeypatch.context() as m:
        m.setattr(decoded, "_build", no_decoding)
        again = load_images("celeba", data_root=root, image_size=16)
    assert again.images.shape == (5, 3, 16, 16)
    # a changed image: another key, a new file, the stale one gone
    target = root / "celeba" / "img_align_celeba" / "000002.jpg"
    Image.new("RGB", (178, 218), (0, 255, 0)).save(target)
    os.utime(target, ns=(1, 1))
    changed = load_images("celeba", data_root=root, image_size=16)
    [rebuilt] = list(cache.glob("*.npy"))
    assert rebuilt != built
    assert changed.images[2, 1].float().mean() > 240 and changed.images[2, 0].float().mean() < 15


def test_a_torn_cache_file_is_rebuilt_not_trusted(tmp_path, cache, capsys):
    root = celeba(tmp_path, n=3)
    load_images("celeba", data_root=root, image_size=16)
    [built] = list(cache.glob("*.npy"))
    np.save(built, np.zeros((2, 3, 16, 16), np.uint8))  # right name, wrong shape
    data = load_images("celeba", data_root=root, image_size=16)
    assert "rebuilding" in capsys.readouterr().out
    assert data.images.shape == (3, 3, 16, 16) and data.images.float().mean() > 50


def test_a_truncated_jpeg_stops_the_build_naming_it(tmp_path, cache):
    root = celeba(tmp_path, n=3)
    bad = root / "celeba" / "img_align_celeba" / "000001.jpg"
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(EbganError, match="000001.jpg"):
        load_images("celeba", data_root=root, image_size=16)
    assert not list(cache.glob("*.npy")) and not list(cache.glob(".*tmp"))  # nothing half-written


def test_celeba_missing_says_where_it_looked_and_what_to_do(tmp_path, cache):
    with pytest.raises(EbganError, match=r"CelebA's aligned images not found .*--data-root DIR"):
        load_images("celeba", data_root=tmp_path, image_size=64)
    root = celeba(tmp_path, n=1)
    with pytest.raises(EbganError, match="would upscale"):
        load_images("celeba", data_root=root, image_size=128)


def test_lsun_folder_takes_the_largest_centred_square(tmp_path, cache):
    root = tmp_path / "data"
    a = np.zeros((60, 100, 3), np.uint8)
    a[:, :20] = a[:, 80:] = (255, 255, 255)  # white bands left and right, outside the centre 60x60
    a[:, 20:80] = (0, 128, 0)
    (root / "lsun" / "bedroom" / "sub").mkdir(parents=True)
    Image.fromarray(a).save(root / "lsun" / "bedroom" / "sub" / "a.png")
    Image.fromarray(a).save(root / "lsun" / "bedroom" / "b.png")
    data = load_images("lsun:bedroom", data_root=root, image_size=12)
    assert data.images.shape == (2, 3, 12, 12)
    assert torch.equal(data.images[:, 1], torch.full((2, 12, 12), 128, dtype=torch.uint8))
    assert int(data.images[:, 0].max()) == 0
    with pytest.raises(EbganError, match="LSUN kitchen not found"):
        load_images("lsun:kitchen", data_root=root, image_size=12)


def test_lsun_lmdb(tmp_path, cache):
    lmdb = pytest.importorskip("lmdb", reason="reading LSUN's LMDB export needs the lmdb package")
    folder = tmp_path / "data" / "lsun" / "bedroom_train_lmdb"
    folder.mkdir(parents=True)
    env = lmdb.open(str(folder), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i in range(3):
            buf = io.BytesIO()
            Image.new("RGB", (40, 30), (i * 100, 0, 0)).save(buf, format="PNG")
            txn.put(f"key{i}".encode(), buf.getvalue())
    env.close()
    data = load_images("lsun:bedroom", data_root=tmp_path / "data", image_size=8)
    assert sorted(int(v) for v in data.images[:, 0, 4, 4]) == [0, 100, 200]


def test_the_cache_key_changes_with_every_input():
    base = ("celeba", "/r", [("a.jpg", 10, 5)], 64, 108, 3)
    key = decoded.cache_key(*base)
    variants = [
        ("lsun", *base[1:]),
        (base[0], "/s", *base[2:]),
        (*base[:2], [("a.jpg", 11, 5)], *base[3:]),
        (*base[:2], [("a.jpg", 10, 6)], *base[3:]),
        (*base[:2], [("b.jpg", 10, 5)], *base[3:]),
        (*base[:3], 32, *base[4:]),
        (*base[:4], None, base[5]),
        (*base[:5], 1),
    ]
    assert len({decoded.cache_key(*v) for v in variants} | {key}) == len(variants) + 1


def test_the_celeba64_preset_trains_resumes_and_samples_from_the_cli(tmp_path, cache):
    """The paper's 64x64 EBGAN-PT setting at full width, a few steps of batch 4 on CelebA-layout files."""
    from ebgan.cli import main

    root = celeba(tmp_path, n=8)
    run = tmp_path / "run"
    common = ["--data-root", str(root), "--batch-size", "4", "--no-progress", "--device", "cpu"]
    assert main(["train", "--config", "celeba64-ebgan-pt", "--steps", "2", "--out", str(run), *common]) == 0
    assert main(["train", "--resume", str(run), "--steps", "3", "--no-progress"]) == 0
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3 and state["config"]["image_size"] == 64 and state["config"]["margin"] == 20.0
    assert state["D"]["encoder.6.running_mean"].shape == (256,)  # the 64-128-256 encoder, to 8x8
    out = tmp_path / "s.png"
    assert main(["sample", "--run", str(run), "--n", "4", "--out", str(out)]) == 0
    with Image.open(out) as im:
        assert min(im.size) >= 64


@pytest.mark.slow
def test_a_celeba_run_is_evaluated_by_inception_only(tmp_path, cache, capsys, monkeypatch):
    """The code path with random Inception weights (real ones cannot be downloaded here): no values checked."""
    import json

    import torch_fidelity.feature_extractor_inceptionv3 as fe
    from torchmetrics.image.fid import NoTrainInceptionV3

    from ebgan.cli import main

    with monkeypatch.context() as m:  # a state dict of the right layout, random values
        m.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
        state = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"]).state_dict()
    torch.save(state, tmp_path / "w.pth")
    root = celeba(tmp_path, n=12)
    run = tmp_path / "run"
    common = ["--data-root", str(root), "--batch-size", "4", "--no-progress", "--device", "cpu"]
    small = ["--model-args", "width_g=8,width_d=8,ae_bottom=8"]
    assert main(["train", "--config", "celeba64-ebgan-pt", "--steps", "1", "--out", str(run), *common, *small]) == 0
    capsys.readouterr()
    assert main(["eval", "--run", str(run), "--n", "4", "--data-root", str(root)]) == 2
    assert "--inception-weights" in capsys.readouterr().err
    argv = [
        "eval",
        "--run",
        str(run),
        "--n",
        "4",
        "--data-root",
        str(root),
        "--inception-weights",
        str(tmp_path / "w.pth"),
    ]
    assert main([*argv, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["evaluation"] == "inception" and r["reference_split"] == "train"
    assert r["inception"]["available"] and r["real_vs_real"]["n"] == 4
    assert main(argv) == 0
    assert "fid_inception" in capsys.readouterr().out


def test_an_image_too_small_for_the_crop_is_named(tmp_path, cache):
    root = celeba(tmp_path, n=3)
    small = root / "celeba" / "img_align_celeba" / "000003.jpg"
    Image.new("RGB", (100, 100)).save(small)  # under CelebA's 108x108 centre crop
    with pytest.raises(EbganError, match=r"000003\.jpg: cannot crop 108x108 from a 100x100 image"):
        load_images("celeba", data_root=root, image_size=16)
    assert not list(cache.glob("*.npy")) and not list(cache.glob(".*tmp"))


def test_a_resized_folder_is_decoded_once_into_the_cache_with_its_class_labels(tmp_path, cache, monkeypatch):
    """folder: with --fit resize (ImageNet's layout: one sub-folder per class, photos of mixed
    sizes) is cropped to each image's largest centred square and resized once, into the cache,
    not held at full resolution in memory. Labels number the sorted class folders."""
    root = tmp_path / "train"
    # a wide and a tall image whose centred square is one colour (the centre 40x40 of 60x40 / 40x60)
    face(root / "n02" / "a.png", w=60, h=40, inner=40)
    face(root / "n01" / "b.png", w=40, h=60, inner=40)
    face(root / "n01" / "c.png", w=40, h=40, inner=40)
    data = load_images(f"folder:{root}", image_size=16, fit="resize")
    assert data.images.shape == (3, 3, 16, 16) and data.images.dtype == torch.uint8
    assert torch.equal(data.images, torch.tensor(CENTRE, dtype=torch.uint8).view(1, 3, 1, 1).expand(3, 3, 16, 16))
    # files sorted by path: n01/b, n01/c, n02/a -> classes n01 = 0, n02 = 1
    assert data.labels.tolist() == [0, 0, 1] and data.num_classes == 2
    [built] = list(cache.glob("folder-*.npy"))
    assert np.load(built, mmap_mode="r").shape == (3, 3, 16, 16)

    def no_decoding(*a, **k):
        raise AssertionError("decoded again")

    with monkeypatch.context() as m:
        m.setattr(decoded, "_build", no_decoding)
        again = load_images(f"folder:{root}", image_size=16, fit="resize")
    assert torch.equal(again.images, data.images)


def test_a_small_image_in_a_resized_folder_is_enlarged_and_named(tmp_path, cache, capsys):
    """An image needing more than 2x enlargement is said by name (ImageNet has a few: refusing
    would block the whole set), and its pixels are still the image's, resized."""
    root = tmp_path / "imgs"
    face(root / "big.png", w=40, h=40, inner=40)
    face(root / "tiny.png", w=6, h=6, inner=6)
    data = load_images(f"folder:{root}", image_size=16, fit="resize")
    out = capsys.readouterr().out
    assert "1 image(s)" in out and "tiny.png" in out and "big.png" not in out
    assert torch.equal(data.images[1], torch.tensor(CENTRE, dtype=torch.uint8).view(3, 1, 1).expand(3, 16, 16))
    assert data.labels.tolist() == [-1, -1] and data.num_classes == 0


def test_a_padded_folder_still_loads_in_memory(tmp_path, cache):
    root = tmp_path / "imgs"
    face(root / "a.png", w=8, h=8, inner=8)
    data = load_images(f"folder:{root}", image_size=16, fit="pad")
    assert data.images.shape == (1, 3, 16, 16) and not cache.exists()
    assert data.images[:, :, 0, 0].tolist() == [[0, 0, 0]]  # padding: background 0, not resized


def test_a_missing_or_empty_resized_folder_is_refused(tmp_path, cache):
    with pytest.raises(EbganError, match="does not exist"):
        load_images(f"folder:{tmp_path / 'nope'}", image_size=16, fit="resize")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EbganError, match="no images"):
        load_images(f"folder:{tmp_path / 'empty'}", image_size=16, fit="resize")


def test_a_killed_build_s_partial_file_is_removed_by_the_next_build(tmp_path, cache):
    """A build killed mid-way leaves .<name>.<pid>.tmp; the next build of that file deletes it when
    its process is gone, and keeps one whose process still runs (another rank decoding)."""
    import subprocess
    import sys

    root = celeba(tmp_path, n=2)
    load_images("celeba", data_root=root, image_size=16)
    [built] = list(cache.glob("*.npy"))
    built.unlink()  # the next load builds again
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = cache / f".{built.name}.{int(dead.stdout)}.tmp"
    live = cache / f".{built.name}.{os.getppid()}.tmp"
    orphan.write_bytes(b"partial")
    live.write_bytes(b"partial")
    load_images("celeba", data_root=root, image_size=16)
    assert built.is_file() and not orphan.exists() and live.exists()


DECODE_ONE_SOURCE = """
import sys, time
from pathlib import Path
import torch
from ebgan.data.decoded import decoded_images

root, cache, log = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])

def read(name):
    with open(log, "a") as f:
        f.write(name + "\\n")
    time.sleep(0.2)  # slow enough that the two processes overlap
    return torch.full((3, 8, 8), 7, dtype=torch.uint8)

images = decoded_images("t", root, ["a", "b", "c"], lambda n: (1, 1), read, 8, None, 3, cache)
assert images.shape == (3, 3, 8, 8) and int(images.float().mean()) == 7
"""


def test_two_processes_needing_one_cache_decode_it_once(tmp_path):
    """torchrun starts every rank at once: one decodes, the others wait for its file."""
    import subprocess
    import sys

    script, log = tmp_path / "decode.py", tmp_path / "decoded.log"
    script.write_text(DECODE_ONE_SOURCE)
    argv = [sys.executable, str(script), str(tmp_path), str(tmp_path / "cache"), str(log)]
    procs = [subprocess.Popen(argv, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read() if p.stderr else ""
    assert sorted(log.read_text().split()) == ["a", "b", "c"]  # 3 decodes in all, not 3 per process


def test_grey_and_colour_caches_of_one_source_live_side_by_side(tmp_path, cache, monkeypatch):
    """Switching --channels between runs must not delete the other variant's cache each time."""
    root = celeba(tmp_path, n=2, suffix=".png")
    load_images("celeba", data_root=root, image_size=16, channels=3)
    load_images("celeba", data_root=root, image_size=16, channels=1)
    assert len(list(cache.glob("*.npy"))) == 2

    def no_decoding(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(decoded, "_build", no_decoding)
    assert load_images("celeba", data_root=root, image_size=16, channels=3).images.shape[1] == 3
