import numpy as np
import pytest
from conftest import write_idx

from improved_gan.data import DatasetNotFoundError, IDXFormatError, load_idx_dataset
from improved_gan.data import datasets as ds
from improved_gan.data.idx_files import IDX_DATASETS, IDXDataset
from improved_gan.errors import ImprovedGANError


def _write_split(root, folder, split, n, label_max=9, seed=0):
    rng = np.random.default_rng(seed)
    prefix = "train" if split == "train" else "t10k"
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, label_max + 1, size=n, dtype=np.uint8)
    write_idx(root / folder / f"{prefix}-images-idx3-ubyte.gz", images)
    write_idx(root / folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return images, labels


@pytest.fixture
def small_mnist(monkeypatch):
    """Shrink MNIST's expected test size so tiny files count as complete (checksums off)."""
    base = IDX_DATASETS["mnist"]
    (img, lab, _) = base.splits["test"]
    small = IDXDataset(
        name="mnist",
        folder="mnist",
        splits={"test": (type(img)(img.name, ""), type(lab)(lab.name, ""), 12)},
        mirrors=base.mirrors,
    )
    monkeypatch.setitem(IDX_DATASETS, "mnist", small)
    monkeypatch.setattr(ds, "SHIPPED_DATA", ds.SHIPPED_DATA.parent / "no-such-dir")
    return small


def test_shipped_mnist_loads_with_expected_shapes():
    x, y = load_idx_dataset("mnist", "test", download=False)
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.int64
    assert set(np.unique(y)) == set(range(10))


def test_data_dir_takes_precedence_over_env(tmp_path, monkeypatch, small_mnist):
    mine, _ = _write_split(tmp_path / "a", "mnist", "test", 12, seed=1)
    _write_split(tmp_path / "b", "mnist", "test", 12, seed=2)
    monkeypatch.setenv("IMPROVED_GAN_DATA", str(tmp_path / "b"))
    x, _ = load_idx_dataset("mnist", "test", data_dir=tmp_path / "a", download=False)
    np.testing.assert_array_equal(x, mine)


def test_env_var_is_used_when_no_data_dir(tmp_path, monkeypatch, small_mnist):
    theirs, _ = _write_split(tmp_path / "b", "mnist", "test", 12, seed=2)
    monkeypatch.setenv("IMPROVED_GAN_DATA", str(tmp_path / "b"))
    x, _ = load_idx_dataset("mnist", "test", download=False)
    np.testing.assert_array_equal(x, theirs)


def test_missing_everywhere_names_every_place(tmp_path, small_mnist):
    (tmp_path / "empty").mkdir()  # a data root that exists (a missing one is refused outright)
    with pytest.raises(DatasetNotFoundError) as err:
        load_idx_dataset("mnist", "test", data_dir=tmp_path / "empty", download=False)
    msg = str(err.value)
    assert str(tmp_path / "empty" / "mnist") in msg
    assert "IMPROVED_GAN_DATA" in msg and "--data-dir" in msg and "\n" not in msg


def test_labels_out_of_range_are_rejected(tmp_path, small_mnist):
    _write_split(tmp_path, "mnist", "test", 12, label_max=12)
    with pytest.raises(IDXFormatError, match="out of range"):
        load_idx_dataset("mnist", "test", data_dir=tmp_path, download=False)


def test_wrong_count_is_rejected(tmp_path, small_mnist):
    _write_split(tmp_path, "mnist", "test", 11)
    with pytest.raises(IDXFormatError, match="expected 12 images"):
        load_idx_dataset("mnist", "test", data_dir=tmp_path, download=False)


def test_unknown_dataset_and_split():
    with pytest.raises(ImprovedGANError, match="unknown dataset"):
        load_idx_dataset("cifar11", "train")
    with pytest.raises(ImprovedGANError, match="unknown split"):
        load_idx_dataset("mnist", "valid")


def test_download_verifies_checksum_and_installs_atomically(tmp_path, monkeypatch, small_mnist):
    """A file:// mirror stands in for the network: a good file is installed, a corrupt one is
    refused and leaves nothing behind."""
    import hashlib

    from improved_gan.data.idx_files import IDXFile

    mirror = tmp_path / "mirror" / "mnist"
    images, labels = _write_split(tmp_path / "mirror", "mnist", "test", 12)
    raw_img = (mirror / "t10k-images-idx3-ubyte.gz").read_bytes()
    import gzip

    sha_img = hashlib.sha256(gzip.decompress(raw_img)).hexdigest()
    sha_lab = hashlib.sha256(gzip.decompress((mirror / "t10k-labels-idx1-ubyte.gz").read_bytes())).hexdigest()
    good = IDXDataset(
        name="mnist",
        folder="mnist",
        splits={
            "test": (
                IDXFile("t10k-images-idx3-ubyte.gz", sha_img),
                IDXFile("t10k-labels-idx1-ubyte.gz", sha_lab),
                12,
            )
        },
        mirrors=("file:///definitely/not/here/", mirror.as_uri() + "/"),
    )
    monkeypatch.setitem(IDX_DATASETS, "mnist", good)
    (tmp_path / "root").mkdir()  # the data root must exist; its mnist/ folder is created
    (tmp_path / "root2").mkdir()
    x, y = load_idx_dataset("mnist", "test", data_dir=tmp_path / "root")
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    assert (tmp_path / "root" / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()

    bad = IDXDataset(
        name="mnist",
        folder="mnist",
        splits={"test": (IDXFile("t10k-images-idx3-ubyte.gz", "0" * 64), good.splits["test"][1], 12)},
        mirrors=(mirror.as_uri() + "/",),
    )
    monkeypatch.setitem(IDX_DATASETS, "mnist", bad)
    with pytest.raises(DatasetNotFoundError, match="sha256 mismatch"):
        load_idx_dataset("mnist", "test", data_dir=tmp_path / "root2")
    assert not any((tmp_path / "root2" / "mnist").glob("t10k-images*"))


def test_fashion_mnist_from_debian_package_if_installed():
    from pathlib import Path

    if not Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    x, y = load_idx_dataset("fashion-mnist", "test", download=False)
    assert x.shape == (10000, 28, 28) and np.bincount(y).tolist() == [1000] * 10


def test_the_shipped_mnist_is_package_data_so_a_wheel_install_has_it():
    """Every shipped file matches a ``package-data`` glob of pyproject.toml (setuptools puts
    exactly those into the wheel), and the files are the four IDX files of MNIST."""
    import fnmatch
    from pathlib import Path

    import improved_gan

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    package = Path(improved_gan.__file__).parent
    pyproject = package.parents[1] / "pyproject.toml"
    globs = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]["improved_gan"]
    shipped = [p.relative_to(package).as_posix() for p in ds.SHIPPED_DATA.rglob("*") if p.is_file()]
    assert {Path(p).name for p in shipped if p.endswith(".gz")} == {
        f.name for images, labels, _ in IDX_DATASETS["mnist"].splits.values() for f in (images, labels)
    }
    missing = [p for p in shipped if not any(fnmatch.fnmatch(p, g) for g in globs)]
    assert not missing, f"not in the wheel: {missing}"
