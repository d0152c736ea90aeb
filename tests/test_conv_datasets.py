"""CIFAR-10, SVHN, image-folder and synthetic datasets, read back from tiny files written in
the real formats."""

import io
import pickle
import tarfile

import numpy as np
import pytest

from improved_gan.data import (
    CIFARFormatError,
    DatasetNotFoundError,
    ImageFolderError,
    SVHNFormatError,
    load_cifar10,
    load_image_folder,
    load_images,
    load_svhn,
    load_synthetic,
    to_float,
)
from improved_gan.data import cifar10 as cifar_module
from improved_gan.data import datasets as ds
from improved_gan.data.files import md5_of_file


@pytest.fixture(autouse=True)
def _no_repo_data(monkeypatch):
    monkeypatch.setattr(ds, "SHIPPED_DATA", ds.SHIPPED_DATA.parent / "no-such-dir")


def _cifar_batch(n: int, seed: int) -> tuple[bytes, np.ndarray, list[int]]:
    """A batch exactly as the python release stores it: a protocol-2 pickled dict with bytes keys,
    b"data" a uint8 (n, 3072) array (R, G, B planes of a row-major 32×32), b"labels" a list."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    batch = {
        b"batch_label": b"training batch",
        b"labels": labels,
        b"data": data,
        b"filenames": [b"x.png"] * n,
    }
    return pickle.dumps(batch, protocol=2), data, labels


def _write_cifar(root, as_tar: bool, sizes=(3, 2, 2, 2, 1), test_size=4):
    folder = root / "cifar10"
    folder.mkdir(parents=True)
    members, expected = {}, {"train": [], "test": []}
    for i, n in enumerate(sizes, start=1):
        blob, data, labels = _cifar_batch(n, i)
        members[f"data_batch_{i}"] = blob
        expected["train"].append((data, labels))
    blob, data, labels = _cifar_batch(test_size, 99)
    members["test_batch"] = blob
    expected["test"].append((data, labels))
    if as_tar:
        with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
            for name, blob in members.items():
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    else:
        (folder / "cifar-10-batches-py").mkdir()
        for name, blob in members.items():
            (folder / "cifar-10-batches-py" / name).write_bytes(blob)
    return expected


@pytest.mark.parametrize("as_tar", [True, False], ids=["tarball", "extracted-folder"])
def test_cifar10_reads_python_batches_as_nchw_uint8(tmp_path, as_tar):
    expected = _write_cifar(tmp_path, as_tar)
    x, y = load_cifar10("train", data_dir=tmp_path, download=False)
    assert x.shape == (10, 3, 32, 32) and x.dtype == np.uint8
    assert y.shape == (10,) and y.dtype == np.int64
    data = np.concatenate([d for d, _ in expected["train"]])
    labels = sum((lab for _, lab in expected["train"]), [])
    np.testing.assert_array_equal(y, labels)
    # Row layout: the first 1024 values are the red plane, row-major.
    np.testing.assert_array_equal(x[0, 0], data[0, :1024].reshape(32, 32))
    np.testing.assert_array_equal(x[0, 2, 5, 7], data[0, 2048 + 5 * 32 + 7])
    xt, yt = load_cifar10("test", data_dir=tmp_path, download=False)
    assert xt.shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(yt, expected["test"][0][1])


def test_cifar10_truncated_tarball_is_a_clear_error(tmp_path):
    _write_cifar(tmp_path, as_tar=True)
    tar = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    tar.write_bytes(tar.read_bytes()[:200])
    with pytest.raises(CIFARFormatError, match="corrupt or truncated"):
        load_cifar10("train", data_dir=tmp_path, download=False)


def test_cifar10_wrong_pickles_are_refused(tmp_path):
    _write_cifar(tmp_path, as_tar=False)
    batch = tmp_path / "cifar10" / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=2))
    with pytest.raises(CIFARFormatError, match=r"\(n, 3072\)"):
        load_cifar10("test", data_dir=tmp_path, download=False)
    batch.write_bytes(b"not a pickle at all")
    with pytest.raises(CIFARFormatError, match="not a CIFAR-10 python batch"):
        load_cifar10("test", data_dir=tmp_path, download=False)


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_cifar10_unpickler_refuses_code(tmp_path, capsys):
    _write_cifar(tmp_path, as_tar=False)
    batch = tmp_path / "cifar10" / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(pickle.dumps({b"data": _Exploit(), b"labels": []}, protocol=2))
    with pytest.raises(CIFARFormatError, match=r"refusing to load (__builtin__|builtins)\.print"):
        load_cifar10("test", data_dir=tmp_path, download=False)
    assert "pwned" not in capsys.readouterr().out


def test_cifar10_missing_names_the_folder_and_url_when_offline(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(
        "improved_gan.data.files.download_verified", lambda urls, *a, **k: calls.append(urls) or ["offline"]
    )
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py or cifar-10-python.tar.gz"):
        load_cifar10("train", data_dir=tmp_path)
    assert calls == [["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]]
    assert cifar_module.TARBALL.md5 == "c58f30108f718f92721af3b95e74349a"


def test_download_is_verified_by_md5(tmp_path, monkeypatch):
    """The verify callback passed to the downloader accepts the right md5 only."""
    seen = {}

    def fake_download(urls, target, verify, timeout):
        target.parent.mkdir(parents=True, exist_ok=True)
        good = tmp_path / "blob"
        good.write_bytes(b"abc")
        seen["bad"] = verify(good)
        return ["checked"]

    monkeypatch.setattr("improved_gan.data.files.download_verified", fake_download)
    with pytest.raises(DatasetNotFoundError):
        load_cifar10("test", data_dir=tmp_path)
    assert seen["bad"].startswith("md5 mismatch (got 900150983cd24fb0d6963f7d28e17f72")
    assert md5_of_file(tmp_path / "blob") == "900150983cd24fb0d6963f7d28e17f72"


def _write_svhn(path, n, seed=0):
    import scipy.io

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    y = rng.integers(1, 11, size=(n, 1)).astype(np.uint8)
    y[0, 0] = 10
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {"X": x, "y": y})
    return x, y


def test_svhn_reads_mat_files_and_maps_label_10_to_0(tmp_path):
    x, y = _write_svhn(tmp_path / "svhn" / "train_32x32.mat", 7)
    images, labels = load_svhn("train", data_dir=tmp_path, download=False)
    assert images.shape == (7, 3, 32, 32) and images.dtype == np.uint8 and labels.dtype == np.int64
    np.testing.assert_array_equal(images[3, 1], x[:, :, 1, 3])  # (H, W, C, N) -> (N, C, H, W)
    assert labels[0] == 0 and set(labels) <= set(range(10))
    np.testing.assert_array_equal(labels, np.where(y[:, 0] == 10, 0, y[:, 0]))


def test_svhn_truncated_or_wrong_files_are_clear_errors(tmp_path):
    path = tmp_path / "svhn" / "test_32x32.mat"
    _write_svhn(path, 5)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(SVHNFormatError, match="not a readable MATLAB file"):
        load_svhn("test", data_dir=tmp_path, download=False)
    import scipy.io

    scipy.io.savemat(str(path), {"X": np.zeros((28, 28, 5), np.uint8), "y": np.ones((5, 1))})
    with pytest.raises(SVHNFormatError, match=r"X must be uint8 of shape \(32, 32, 3, N\)"):
        load_svhn("test", data_dir=tmp_path, download=False)


def test_image_folder_centre_crops_resizes_and_colourises(tmp_path, monkeypatch):
    from PIL import Image

    root = tmp_path / "imagefolder" / "val"
    (root / "cat").mkdir(parents=True)
    (root / "dog").mkdir()
    wide = np.zeros((20, 60, 3), np.uint8)
    wide[:, 20:40] = 255  # the centre square is white, the sides black
    Image.fromarray(wide).save(root / "cat" / "a.png")
    Image.fromarray(np.full((10, 10), 77, np.uint8), mode="L").save(root / "dog" / "b.png")
    (root / "dog" / "notes.txt").write_text("ignored")
    x, y = load_image_folder("test", data_dir=tmp_path, image_size=16)
    assert x.shape == (2, 3, 16, 16) and x.dtype == np.uint8
    np.testing.assert_array_equal(y, [0, 1])
    assert x[0].min() == 255  # only the centre square survived the crop
    assert (x[1] == 77).all()  # grey image repeated over RGB
    # The decoded arrays are cached; a changed folder (another file list) is decoded again.
    cached = list((tmp_path / "cache" / "improved_gan" / "data" / "imagefolder").glob("val-16px-*.npz"))
    assert len(cached) == 1
    Image.fromarray(np.full((10, 10), 99, np.uint8), mode="L").save(root / "dog" / "a.png")
    x_again, _ = load_image_folder("test", data_dir=tmp_path, image_size=16)
    assert x_again.shape[0] == 3 and (x_again[1] == 99).all()
    (root / "dog" / "a.png").unlink()
    with monkeypatch.context() as m:  # the same files as the first time: read from the cache
        m.setattr("improved_gan.data.imagefolder.read_image_folder", lambda *a: pytest.fail("decoded again"))
        x_cached, _ = load_image_folder("test", data_dir=tmp_path, image_size=16)
    np.testing.assert_array_equal(x_cached, x)
    (root / "dog" / "c.jpg").write_bytes(b"garbage")
    with pytest.raises(ImageFolderError, match="cannot decode"):
        load_image_folder("test", data_dir=tmp_path, image_size=16)
    with pytest.raises(DatasetNotFoundError, match="train"):
        load_image_folder("train", data_dir=tmp_path)


def test_synthetic_is_deterministic_in_any_shape_and_scaling_follows_the_reference():
    a, la = load_synthetic("train", (1, 28, 28))
    b, lb = load_synthetic("train", (1, 28, 28))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2000, 1, 28, 28) and set(la) == set(range(10))
    x, _ = load_images("synthetic", "test", shape=(3, 8, 8))
    assert x.shape == (500, 3, 8, 8)
    pixels = np.array([[0, 255]], np.uint8)
    np.testing.assert_allclose(to_float(pixels, "cifar10", (-1.0, 1.0)), [[-127.5 / 128, 127.5 / 128]])
    np.testing.assert_allclose(to_float(pixels, "svhn", (-1.0, 1.0)), [[-1.0, 1.0]])
    np.testing.assert_allclose(to_float(pixels, "mnist", (0.0, 1.0)), [[0.0, 1.0]])


SMALL_CONV = [
    "conv.d_widths=[8, 16]",
    "conv.g_widths=[16, 8, 8]",
    "batch_size=20",
    "init_examples=40",
    "tensorboard=false",
    "sample_grid=false",
    "device=cpu",
]


@pytest.mark.parametrize("dataset", ["cifar10", "svhn"])
def test_training_reads_the_real_formats_end_to_end(dataset, tmp_path):
    import json

    import torch

    from improved_gan.training import load_config, train
    from improved_gan.training.build import load_split

    torch.set_num_threads(1)
    if dataset == "cifar10":
        _write_cifar(tmp_path, as_tar=True, sizes=(20, 20, 20, 20, 20), test_size=30)
    else:
        _write_svhn(tmp_path / "svhn" / "train_32x32.mat", 100, seed=1)
        _write_svhn(tmp_path / "svhn" / "test_32x32.mat", 30, seed=2)
    overrides = {"labels": 20, "epochs": 1, "data_dir": str(tmp_path), "run_dir": str(tmp_path / "run")}
    config = load_config(f"{dataset}-fm", overrides, SMALL_CONV)
    x, y = load_split(config, "train")
    assert x.shape == (100, 3072) and x.dtype == torch.float32 and y.shape == (100,)
    # The reference's scaling: CIFAR-10 divides by 128 (max 0.996), SVHN by 127.5 (max 1).
    assert x.max().item() == pytest.approx(127.5 / 128 if dataset == "cifar10" else 1.0)
    run = train(config, progress=False)
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["epoch"] == 1 and np.isfinite(record["loss_generator"])
    assert 0 <= record["test_errors"] <= 30  # the 30 test images were read and classified
