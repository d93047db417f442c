"""IDX reading and validation, dataset discovery order, fitting, and the in-memory sampler."""

import gzip

import numpy as np
import pytest
import torch
from tests.conftest import idx_bytes, write_idx_split

from ebgan.data import (
    EpochBatches,
    fit_images,
    load_images,
    read_idx,
    to_uint8,
    to_unit_range,
)
from ebgan.data.sources import ImageData
from ebgan.errors import EbganError


def write_split(folder, prefix, n, gz=True, size=28, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    write_idx_split(folder, prefix, images, labels, gz=gz)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_roundtrip(tmp_path, gz):
    images, labels = write_split(tmp_path, "train", 5, gz=gz)
    suffix = ".gz" if gz else ""
    assert np.array_equal(read_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", 3), images)
    assert np.array_equal(read_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", 1), labels)


def test_read_idx_rejects_truncated_and_foreign_files(tmp_path):
    good = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    (tmp_path / "short").write_bytes(good[:-10])
    with pytest.raises(EbganError, match="truncated or corrupt"):
        read_idx(tmp_path / "short", 3)
    (tmp_path / "short.gz").write_bytes(gzip.compress(good)[:-20])  # cut gzip stream
    with pytest.raises(EbganError, match="cannot read"):
        read_idx(tmp_path / "short.gz", 3)
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    with pytest.raises(EbganError, match="not an IDX file"):
        read_idx(tmp_path / "png", 3)
    with pytest.raises(EbganError, match="expected unsigned bytes with 1 dims"):
        (tmp_path / "img").write_bytes(good)
        read_idx(tmp_path / "img", 1)


def test_discovery_order_data_root_env_cache_system(tmp_path, monkeypatch):
    # Four places, each with its own images; removing the first that holds them reveals the next.
    places = {
        "root": tmp_path / "a",
        "env": tmp_path / "b",
        "cache": tmp_path / "xdg" / "ebgan",
        "system": tmp_path / "sys",
    }
    held = {k: write_split(p / "mnist", "t10k", 3 + i, seed=i)[0] for i, (k, p) in enumerate(places.items())}
    monkeypatch.setenv("EBGAN_DATA", str(places["env"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr("ebgan.data.sources.SYSTEM_DATA_DIR", places["system"])
    for place in ("root", "env", "cache", "system"):
        data = load_images("mnist", split="test", data_root=places["root"], image_size=28, download=False)
        assert np.array_equal(data.images[:, 0].numpy(), held[place]), place
        for f in (places[place] / "mnist").iterdir():
            f.unlink()
    with pytest.raises(EbganError, match="not found"):
        load_images("mnist", split="test", data_root=places["root"], download=False)


def test_not_found_names_the_places_and_the_debian_package(tmp_path, capsys, no_datasets):
    with pytest.raises(EbganError) as e:
        load_images("fashion-mnist", split="test", data_root=tmp_path / "d")
    msg = str(e.value)
    assert str(tmp_path / "d" / "fashion-mnist") in msg and "/FashionMNIST/raw" in msg and "EBGAN_DATA" in msg
    assert "apt-get install dataset-fashion-mnist" in msg and len(msg.splitlines()) == 1
    with pytest.raises(EbganError) as e:
        load_images("mnist", split="train", data_root=tmp_path / "d")
    assert "train-images-idx3-ubyte" in str(e.value) and "apt-get" not in str(e.value)


def test_torchvision_download_layout_is_found(tmp_path):
    images, _ = write_split(tmp_path / "FashionMNIST" / "raw", "train", 3, gz=False)
    data = load_images("fashion-mnist", data_root=tmp_path, image_size=28, download=False)
    assert data.num_classes == 10 and np.array_equal(data.images[:, 0].numpy(), images)


def test_wrong_image_size_and_count_mismatch(tmp_path):
    write_split(tmp_path / "mnist", "train", 3, size=20)
    with pytest.raises(EbganError, match="expected 28x28"):
        load_images("mnist", data_root=tmp_path, download=False)
    folder = tmp_path / "x" / "mnist"
    write_split(folder, "train", 3)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(4, np.uint8))))
    with pytest.raises(EbganError, match="3 images but"):
        load_images("mnist", data_root=tmp_path / "x", download=False)


def test_pad_to_32_centres_with_black_border():
    images = torch.full((2, 1, 28, 28), 200, dtype=torch.uint8)
    out = fit_images(ImageData(images, torch.zeros(2, dtype=torch.long), "t", 0), 32, "pad").images
    assert out.shape == (2, 1, 32, 32)
    assert torch.all(out[:, :, 2:30, 2:30] == 200)
    assert out.sum() == 2 * 28 * 28 * 200  # the 2-pixel border is 0
    resized = fit_images(ImageData(images, torch.zeros(2, dtype=torch.long), "t", 0), 32, "resize").images
    assert resized.shape == (2, 1, 32, 32) and torch.all(resized == 200)


def test_unit_range_roundtrip():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    f = to_unit_range(x)
    assert f.min() == -1 and f.max() == 1
    assert torch.equal(to_uint8(f), x)


def test_epoch_batches_visit_every_sample_once_per_epoch_and_restore():
    data = torch.arange(10, dtype=torch.float32).view(10, 1)
    sampler = EpochBatches(data, batch_size=3, seed=0)  # 3 batches per epoch, 1 sample left out
    epoch0 = torch.cat([sampler.next() for _ in range(3)]).flatten().tolist()
    assert len(set(epoch0)) == 9 and sampler.epoch_ended
    state = sampler.state_dict()
    following = [sampler.next() for _ in range(5)]
    assert sampler.epoch == 2  # batches 4-6 are epoch 1, 7-8 epoch 2
    clone = EpochBatches(data, batch_size=3, seed=99)
    clone.load_state_dict(state)
    assert all(torch.equal(a, clone.next()) for a in following)


@pytest.mark.realdata
def test_real_fashion_mnist_loads_as_documented(fmnist_root):
    data = load_images("fashion-mnist", data_root=fmnist_root)
    assert data.images.shape == (60000, 1, 32, 32) and data.images.dtype == torch.uint8
    assert sorted(data.labels.unique().tolist()) == list(range(10))
    test = load_images("fashion-mnist", split="test", data_root=fmnist_root)
    assert len(test) == 10000


@pytest.mark.realdata
def test_real_mnist_test_split_divides_into_6000_and_4000(mnist_test_root):
    test = load_images("mnist", split="test", data_root=mnist_test_root)
    fit = load_images("mnist", split="test-fit", data_root=mnist_test_root)
    heldout = load_images("mnist", split="test-heldout", data_root=mnist_test_root)
    assert (len(test), len(fit), len(heldout)) == (10000, 6000, 4000)

    # the two parts together are the test split's images, each once
    def rows(t):
        return sorted(r.tobytes() for r in t.flatten(1).numpy())

    assert rows(torch.cat([fit.images, heldout.images])) == rows(test.images)


def test_a_dataset_goes_on_the_gpu_only_with_room_to_spare(monkeypatch):
    from ebgan.data.memory import place_images

    images = torch.zeros(10, 1, 8, 8, dtype=torch.uint8)  # 640 bytes
    moved = []
    monkeypatch.setattr(torch.Tensor, "to", lambda self, device, *a, **k: moved.append(device) or self)
    gpu = torch.device("cuda", 0)
    for free, on_gpu in ((1280, True), (1279, False), (0, False)):  # the data may take half the free memory
        moved.clear()
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device, free=free: (free, 4096))
        assert place_images(images, gpu) is images
        assert moved == ([gpu] if on_gpu else []), free


def test_host_resident_images_give_the_same_batches_on_the_training_device():
    from ebgan.data import EpochBatches
    from ebgan.data.memory import place_images

    images = torch.randint(0, 256, (50, 1, 4, 4), dtype=torch.uint8)
    assert place_images(images, torch.device("cpu")) is images  # the CPU always holds them
    on_device = EpochBatches(images, 8, seed=3)
    host = EpochBatches(images, 8, seed=3, device="cpu")
    for _ in range(12):  # across an epoch boundary
        a, b = on_device.next(), host.next()
        assert torch.equal(a, b) and b.device == torch.device("cpu")


def test_a_16_bit_grey_png_keeps_its_tones(tmp_path):
    """16-bit PNGs open in Pillow as mode I;16, whose convert("L") clips every value above 255 to white."""
    from PIL import Image

    from ebgan.data.sources import read_image

    levels = np.array([[0, 10, 128, 255]], dtype=np.uint16)
    Image.fromarray(levels * 257).save(tmp_path / "deep.png")  # 8-bit level k is 16-bit k * 257
    assert Image.open(tmp_path / "deep.png").mode.startswith("I;16")
    assert read_image(tmp_path / "deep.png").tolist() == [levels.tolist()]
    assert read_image(tmp_path / "deep.png", channels=3).tolist() == [levels.tolist()] * 3


def test_gzip_is_told_by_content_not_by_name(tmp_path):
    images, labels = write_split(tmp_path / "src", "t10k", 4)
    raw, zipped = tmp_path / "a" / "mnist", tmp_path / "b" / "mnist"
    raw.mkdir(parents=True)
    zipped.mkdir(parents=True)
    for kind in ("images-idx3", "labels-idx1"):
        content = gzip.decompress((tmp_path / "src" / f"t10k-{kind}-ubyte.gz").read_bytes())
        (raw / f"t10k-{kind}-ubyte.gz").write_bytes(content)  # named .gz, stored raw
        (zipped / f"t10k-{kind}-ubyte").write_bytes(gzip.compress(content))  # gzipped, named raw
    for root in (tmp_path / "a", tmp_path / "b"):
        data = load_images("mnist", split="test", data_root=root, image_size=28, download=False)
        assert np.array_equal(data.images[:, 0].numpy(), images) and data.labels.tolist() == labels.tolist()


def test_a_damaged_gzip_stream_is_a_one_line_error(tmp_path):
    payload = bytearray(gzip.compress(idx_bytes(np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28) // 7)))
    payload[30] ^= 0xFF  # inside the deflate stream
    (tmp_path / "x.gz").write_bytes(bytes(payload))
    with pytest.raises(EbganError, match="cannot read .*x.gz"):
        read_idx(tmp_path / "x.gz", 3)


def test_labels_beyond_the_dataset_s_classes_are_refused(tmp_path):
    """EMNIST letters (labels 1-26) in an mnist folder: refused at load, not an IndexError in the classifier."""
    folder = tmp_path / "mnist"
    images = np.zeros((3, 28, 28), np.uint8)
    write_idx_split(folder, "t10k", images, np.array([0, 9, 26], np.uint8), gz=False)
    with pytest.raises(EbganError, match="holds label 26 but mnist has 10 classes"):
        load_images("mnist", split="test", data_root=tmp_path, download=False)


def test_a_sampler_state_of_another_dataset_size_is_refused():
    """A folder that lost images since the checkpoint: its saved order points past the data."""
    sampler = EpochBatches(torch.arange(16, dtype=torch.float32).view(16, 1), batch_size=4, seed=0)
    sampler.next()
    state = sampler.state_dict()
    for n in (6, 20):
        with pytest.raises(EbganError, match=f"covers 16 samples but the training data now has {n}"):
            EpochBatches(torch.zeros(n, 1), batch_size=4, seed=0).load_state_dict(state)


def test_an_image_folder_follows_linked_class_folders_once_and_skips_folders_named_like_images(tmp_path):
    from PIL import Image

    elsewhere, root = tmp_path / "elsewhere" / "cats", tmp_path / "ds"
    for folder, n in ((elsewhere, 3), (root / "dogs", 2)):
        folder.mkdir(parents=True)
        for i in range(n):
            Image.new("L", (8, 8), 10 * i).save(folder / f"{i}.png")
    (root / "cats").symlink_to(elsewhere)  # a class folder linked in, as datasets are often assembled
    (root / "dogs" / "loop").symlink_to(root)  # a link back up the tree: walked once, not forever
    (root / "dogs" / "x.png").mkdir()  # a folder, not an image
    data = load_images(f"folder:{root}", image_size=8, channels=1)
    assert data.labels.tolist() == [0, 0, 0, 1, 1] and data.num_classes == 2


@pytest.mark.parametrize("fit", ["pad", "resize"])  # in memory, and through the decoded cache
def test_an_image_folder_copied_from_a_mac_or_a_notebook_loads_its_images_only(tmp_path, fit):
    """macOS leaves ``._name.png`` metadata files (not images) beside each file on a foreign disk, and
    Jupyter a ``.ipynb_checkpoints`` folder inside the folder it browsed: neither is data."""
    from PIL import Image

    root = tmp_path / ".datasets" / "pets"  # a hidden folder the user names is still read
    for cls, n in (("cats", 2), ("dogs", 3)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.new("L", (8, 8), 40 * i).save(root / cls / f"{i}.png")
            (root / cls / f"._{i}.png").write_bytes(b"\x00\x05\x16\x07" + bytes(60))  # AppleDouble header
    (root / "cats" / ".ipynb_checkpoints").mkdir()
    Image.new("L", (8, 8), 255).save(root / "cats" / ".ipynb_checkpoints" / "0-checkpoint.png")
    data = load_images(f"folder:{root}", image_size=8, fit=fit, channels=1)
    assert data.labels.tolist() == [0, 0, 1, 1, 1] and data.num_classes == 2
    assert data.images[:, 0, 4, 4].tolist() == [0, 40, 0, 40, 80]  # no white checkpoint copy among them


def test_an_idx_file_of_no_images_is_named(tmp_path):
    """Not the trainer's 'batch_size 64 exceeds the 0 training samples; use --batch-size 0 or less'."""
    write_idx_split(tmp_path / "mnist", "t10k", np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8))
    with pytest.raises(EbganError, match="t10k-images-idx3-ubyte.gz holds no images"):
        load_images("mnist", split="test", data_root=tmp_path, download=False)


def test_a_photo_s_exif_orientation_is_applied(tmp_path):
    """A phone photo is stored sideways with an EXIF tag saying how to turn it; viewers show it turned."""
    from PIL import Image

    from ebgan.data.sources import read_image

    stored = np.zeros((20, 40), np.uint8)
    stored[:, :20] = 255  # 20 rows x 40 columns, left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation 6: rotate 90 degrees clockwise to display
    Image.fromarray(stored).save(tmp_path / "phone.png", exif=exif.tobytes())
    shown = read_image(tmp_path / "phone.png")
    assert shown.shape == (1, 40, 20)  # portrait, as displayed
    assert shown[0].tolist() == np.rot90(stored, k=-1).tolist()  # the white half now on top
