"""Property-based fuzzing of the data loaders: random bytes, and valid files (written here in
the real formats) with bytes flipped, cut or inserted, either load validly or raise
:class:`ImprovedGANError`; never any other exception."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
from collections.abc import Callable

import numpy as np
import pytest
from conftest import idx_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from improved_gan.data import cifar10 as cifar
from improved_gan.data import load_cifar10, parse_idx, read_idx, read_svhn_mat
from improved_gan.data.imagefolder import read_image_folder
from improved_gan.errors import ImprovedGANError
from improved_gan.utils.images import ImageFolder, decode_image, open_image, read_npz_images

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@st.composite
def mutated(draw, valid: bytes) -> bytes:
    """``valid`` with up to four edits: a byte flipped, the tail cut, or bytes inserted."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del data[pos:]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


def hostile(valid: bytes, magic: bytes = b"") -> st.SearchStrategy[bytes]:
    """Random bytes, random bytes behind the format's magic, and mutations of ``valid``."""
    return st.one_of(
        st.binary(max_size=512),
        st.binary(max_size=512).map(lambda b: magic + b),
        mutated(valid),
    )


def loads_or_refuses(load: Callable[[], object]) -> None:
    """The property: a valid result, or ImprovedGANError (anything else fails the test)."""
    try:
        load()
    except ImprovedGANError as exc:
        assert "\n" not in str(exc)


# --- IDX -------------------------------------------------------------------------------------

IDX = idx_bytes(np.arange(2 * 5 * 5, dtype=np.uint8).reshape(2, 5, 5))


@FUZZ
@given(data=hostile(IDX, magic=b"\x00\x00\x08\x03"))
def test_fuzz_idx_raw(tmp_path, data):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(data)
    loads_or_refuses(lambda: read_idx(path))
    loads_or_refuses(lambda: parse_idx(data))


@FUZZ
@given(data=hostile(gzip.compress(IDX), magic=b"\x1f\x8b\x08\x00"))
def test_fuzz_idx_gzip(tmp_path, data):
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(data)
    loads_or_refuses(lambda: read_idx(path))


# --- CIFAR-10 --------------------------------------------------------------------------------


def _batch(protocol: int = 2) -> bytes:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, size=(2, 3072), dtype=np.uint8)
    return pickle.dumps({b"batch_label": b"b", b"labels": [3, 7], b"data": data}, protocol=protocol)


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return buf.getvalue()


@FUZZ
@given(data=hostile(_batch(2), magic=b"\x80\x02}"))
def test_fuzz_cifar_batch_protocol2(tmp_path, data):
    """Through the extracted folder, as ``load_cifar10`` reads it."""
    path = tmp_path / "cifar10" / "cifar-10-batches-py" / "test_batch"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    loads_or_refuses(lambda: load_cifar10("test", data_dir=tmp_path, download=False))


@FUZZ
@given(data=hostile(_batch(5), magic=b"\x80\x05\x95"))
def test_fuzz_cifar_batch_protocol5(data):
    loads_or_refuses(lambda: cifar.parse_batch(data, "batch"))


@FUZZ
@given(data=hostile(_tar({"test_batch": _batch(2)}), magic=b"\x1f\x8b\x08\x00"))
def test_fuzz_cifar_tarball(tmp_path, data):
    path = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    loads_or_refuses(lambda: load_cifar10("test", data_dir=tmp_path, download=False))


@FUZZ
@given(data=mutated(gzip.decompress(_tar({"test_batch": _batch(2)}))))
def test_fuzz_cifar_tar_inside_valid_gzip(tmp_path, data):
    """Mutations of the tar itself (headers, sizes, types), re-compressed so gzip accepts them."""
    path = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(gzip.compress(data))
    loads_or_refuses(lambda: load_cifar10("test", data_dir=tmp_path, download=False))


class _Reduce:
    """Pickles as ``func(*args)`` then ``__setstate__(state)``, without building the object here."""

    def __init__(self, func, args, state):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args, self.state)


CODES = ["u1", "i1", "<i8", ">f4", "f8", "O8", "V8", "V3072", "U1", "S4", "b1", "c16", "M8[s]", "u1x"]


@st.composite
def numpy_looking_pickles(draw) -> bytes:
    """Pickles that use only the allowed globals (numpy's array and dtype reconstruction) with
    random dtype codes, dtype states, shapes, byte orders and raw bytes."""
    state = (
        3,
        draw(st.sampled_from(["|", "<", ">", "=", "x"])),
        None,
        draw(st.sampled_from([None, ("a",)])),
        draw(st.sampled_from([None, {"a": (np.dtype("O"), 0)}])),
        -1,
        -1,
        draw(st.sampled_from([0, 0, 1, 63])),
    )
    dtype = _Reduce(np.dtype, (draw(st.sampled_from(CODES)), False, True), state)
    shape = tuple(draw(st.lists(st.integers(-2, 3072), min_size=1, max_size=3)))
    raw = draw(st.binary(max_size=64)) if draw(st.booleans()) else bytes(3072 * 2)
    array = _Reduce(np.zeros(1).__reduce__()[0], (np.ndarray, (0,), b"b"), (1, shape, dtype, False, raw))
    labels = draw(st.sampled_from(["array", "list", "ints"]))
    batch = {
        b"data": array,
        b"labels": array
        if labels == "array"
        else [0, 1]
        if labels == "list"
        else draw(st.lists(st.integers())),
    }
    return pickle.dumps(batch, protocol=draw(st.sampled_from([2, 5])))


@FUZZ
@given(data=numpy_looking_pickles())
def test_fuzz_cifar_numpy_looking_pickles(data):
    loads_or_refuses(lambda: cifar.parse_batch(data, "batch"))


# --- SVHN ------------------------------------------------------------------------------------


def _svhn(compress: bool) -> bytes:
    import scipy.io

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    x = rng.integers(0, 256, size=(32, 32, 3, 2), dtype=np.uint8)
    scipy.io.savemat(buf, {"X": x, "y": np.array([[1], [10]], np.uint8)}, do_compression=compress)
    return buf.getvalue()


@FUZZ
@given(data=hostile(_svhn(False), magic=b"MATLAB 5.0 MAT-file" + b" " * 97 + b"\x00\x01IM"))
def test_fuzz_svhn_mat(tmp_path, data):
    path = tmp_path / "test_32x32.mat"
    path.write_bytes(data)
    loads_or_refuses(lambda: read_svhn_mat(path))


@FUZZ
@given(data=mutated(_svhn(True)))
def test_fuzz_svhn_mat_compressed(tmp_path, data):
    path = tmp_path / "test_32x32.mat"
    path.write_bytes(data)
    loads_or_refuses(lambda: read_svhn_mat(path))


# --- images ----------------------------------------------------------------------------------


def _image(fmt: str) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


MAGIC = {"PNG": b"\x89PNG\r\n\x1a\n", "JPEG": b"\xff\xd8\xff", "BMP": b"BM"}


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP"])
def test_fuzz_image_files(tmp_path, fmt):
    @FUZZ
    @given(data=hostile(_image(fmt), magic=MAGIC[fmt]))
    def check(data):
        path = tmp_path / f"x.{fmt.lower()}"
        path.write_bytes(data)
        loads_or_refuses(lambda: open_image(path).close())
        loads_or_refuses(lambda: decode_image(path, "RGB"))
        loads_or_refuses(lambda: decode_image(path, "L"))

    check()


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=mutated(_image("PNG")))
def test_fuzz_image_folders(tmp_path, data):
    """A folder with one good and one mutated image: utils' ImageFolder and the dataset reader."""
    flat = tmp_path / "flat"
    classes = tmp_path / "classes" / "a"
    for folder in (flat, classes):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "a.png").write_bytes(_image("PNG"))
        (folder / "b.png").write_bytes(data)
    loads_or_refuses(lambda: ImageFolder(flat).samples())
    loads_or_refuses(lambda: read_image_folder(tmp_path / "classes", image_size=4))


# --- .npz ------------------------------------------------------------------------------------


def _npz(compressed: bool) -> bytes:
    buf = io.BytesIO()
    save = np.savez_compressed if compressed else np.savez
    save(buf, images=np.zeros((2, 4, 4), np.uint8), scores=np.array([0.5, 1.0]))
    return buf.getvalue()


@pytest.mark.parametrize("compressed", [False, True], ids=["stored", "deflated"])
def test_fuzz_npz_images(tmp_path, compressed):
    @FUZZ
    @given(data=hostile(_npz(compressed), magic=b"PK\x03\x04"))
    def check(data):
        path = tmp_path / "x.npz"
        path.write_bytes(data)
        loads_or_refuses(lambda: read_npz_images(path))

    check()
