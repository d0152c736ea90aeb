"""CIFAR-10 from the "python version" of Krizhevsky's release (openai/improved-gan `mnist_svhn_cifar10/cifar10_data.py`).

Accepted layouts under ``<root>/cifar10/``: the extracted folder ``cifar-10-batches-py/``
(``data_batch_1`` … ``data_batch_5``, ``test_batch``) or the tarball ``cifar-10-python.tar.gz``
as downloaded (read in place, not extracted). Each batch is a pickled dict with ``b"data"``, a
uint8 array of shape (n, 3072) (1024 red, 1024 green, 1024 blue values, row-major 32×32), and
``b"labels"``, a list of n ints in 0..9.

The pickles are read with a restricted unpickler that builds plain containers and, for numpy's
array and dtype globals, inert stand-ins that only record what the pickle says. An array is made
from a stand-in only when its dtype is a plain number type and its raw bytes match its shape, so a
tampered file can neither run code nor hand numpy fake object pointers (an object- or
void-dtype array over raw bytes); every refusal is a :class:`CIFARFormatError`.
"""

from __future__ import annotations

import codecs
import io
import math
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np

from improved_gan.data.checks import brief, mib
from improved_gan.data.files import FileDataset, RemoteFile, locate_file
from improved_gan.errors import ImprovedGANError

CIFAR10 = FileDataset(name="cifar10", folder="cifar10")
TARBALL = RemoteFile(
    "cifar-10-python.tar.gz",
    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    "c58f30108f718f92721af3b95e74349a",
)
FOLDER = "cifar-10-batches-py"
SPLITS = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class CIFARFormatError(ImprovedGANError):
    """A CIFAR-10 file is truncated, corrupt or not in the python-pickle format."""


#: A real batch pickle is 31 MB; anything much larger is not one (and is not read into memory).
MAX_BATCH_BYTES = 64 << 20
#: How far into the decompressed tarball the batches are looked for (the real one is 178 MB).
MAX_ARCHIVE_BYTES = 512 << 20
#: The dtypes an array in a batch may have: plain numbers (no object, void, structured, strings).
NUMBER_CODES = frozenset({"u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8"})
BYTE_ORDERS = frozenset({"|", "<", ">", "="})
MAX_NDIM = 8


class _DTypeStub:
    """What a pickle says a numpy dtype is: its type code and its ``__setstate__`` state."""

    __slots__ = ("code", "state")

    def __init__(self, code: object) -> None:
        self.code, self.state = code, None

    def __setstate__(self, state: object) -> None:
        self.state = state


class _ArrayStub:
    """What a pickle says a numpy array is: ``(version, shape, dtype, is_fortran, raw bytes)``."""

    __slots__ = ("state",)

    def __init__(self, state: object = None) -> None:
        self.state = state

    def __setstate__(self, state: object) -> None:
        self.state = state


_NDARRAY = object()  # stands for numpy.ndarray, the class argument of _reconstruct


def _dtype(code: object, align: object = False, copy: object = True) -> _DTypeStub:
    return _DTypeStub(code)


def _reconstruct(cls: object, shape: object, typecode: object) -> _ArrayStub:
    if cls is not _NDARRAY:
        raise pickle.UnpicklingError("_reconstruct may only rebuild a numpy.ndarray")
    return _ArrayStub()


def _frombuffer(buffer: object, dtype: object, shape: object, order: object) -> _ArrayStub:
    return _ArrayStub((1, shape, dtype, order == "F", buffer))


def _latin1(text: object, encoding: object = "latin1") -> bytes:
    """``_codecs.encode`` as protocol 2 uses it for bytes: a str encoded as latin-1, nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is allowed only to turn a str into latin-1 bytes")
    return codecs.encode(text, "latin1")


_ALLOWED: dict[tuple[str, str], object] = {
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _latin1,
    **{(m, "_reconstruct"): _reconstruct for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "_frombuffer"): _frombuffer for m in ("numpy.core.numeric", "numpy._core.numeric")},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (not a numpy array)") from None

    def persistent_load(self, pid: object) -> object:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def _corrupt(where: str, problem: str) -> CIFARFormatError:
    return CIFARFormatError(
        f"{where}: {problem}; the file is corrupt or not CIFAR-10 python, delete it and download "
        "cifar-10-python.tar.gz again"
    )


def _text(value: object) -> str | None:
    if isinstance(value, bytes):  # Python 2 pickles read with encoding="bytes"
        return value.decode("latin1")
    return value if isinstance(value, str) else None


def _to_dtype(stub: object, where: str) -> np.dtype:
    """A real dtype for a stand-in that names a plain number type, else a refusal."""
    if not isinstance(stub, _DTypeStub):
        raise _corrupt(where, "the array's dtype is not a numpy dtype")
    code, state = _text(stub.code), stub.state
    order: str | None = "|"
    if state is not None:
        plain = (  # no subarray, names or fields; no flags (numpy's flags say "holds objects")
            isinstance(state, tuple)
            and len(state) >= 5
            and all(v is None for v in state[2:5])
            and (len(state) < 8 or state[7] == 0)
        )
        order = _text(state[1]) if plain else None
    if code not in NUMBER_CODES or order not in BYTE_ORDERS:
        raise CIFARFormatError(
            f"{where}: refusing an array of dtype {code!r} (only plain number dtypes, no object, void or "
            "structured arrays); the file is corrupt or tampered with, delete it and download "
            "cifar-10-python.tar.gz again"
        )
    return np.dtype(code).newbyteorder(order)


def _to_array(stub: object, where: str) -> np.ndarray:
    """A numpy array for a stand-in whose shape, dtype and raw bytes agree, else a refusal."""
    state = stub.state if isinstance(stub, _ArrayStub) else None
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise _corrupt(where, "not a numpy array (or a corrupt one)")
    shape, dtype, fortran, raw = state[-4:]
    if (
        not isinstance(shape, tuple)
        or len(shape) > MAX_NDIM
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise _corrupt(where, f"the array's shape {shape!r} is not a tuple of sizes")
    dtype = _to_dtype(dtype, where)
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != math.prod(shape) * dtype.itemsize:
        size = len(raw) if isinstance(raw, (bytes, bytearray)) else type(raw).__name__
        raise _corrupt(where, f"the array declares shape {shape} of {dtype} but holds {size} bytes")
    order = "F" if type(fortran) in (bool, int) and fortran else "C"
    return np.frombuffer(bytes(raw), dtype=dtype).reshape(shape, order=order).copy()


def _to_labels(value: object, n: int, name: str) -> np.ndarray:
    """int64 labels (n,) in 0..9 from a list of ints or an integer array."""
    if isinstance(value, _ArrayStub):
        array = _to_array(value, f"{name}: b'labels'")
        ok = array.dtype.kind in "iu" and array.ndim == 1
        values = array.tolist() if ok else []
    else:
        ok = isinstance(value, (list, tuple)) and all(type(v) is int for v in value)
        values = list(value) if ok else []
    if not ok:
        raise _corrupt(name, "b'labels' is not a list of integers")
    if len(values) != n:
        raise _corrupt(name, f"{n} images but {len(values)} labels")
    if not all(0 <= v <= 9 for v in values):
        raise _corrupt(name, "labels out of range 0..9")
    return np.asarray(values, dtype=np.int64)


def _unpickle(data: bytes, name: str) -> object:
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # pickle raises many types on corrupt input; nothing it built is used
        raise CIFARFormatError(
            f"{name}: not a CIFAR-10 python batch ({brief(exc)}); delete it and download "
            "cifar-10-python.tar.gz again"
        ) from None


def parse_batch(data: bytes, name: str = "<bytes>") -> tuple[np.ndarray, np.ndarray]:
    """One pickled CIFAR-10 batch -> (uint8 images (n, 3, 32, 32), int64 labels (n,))."""
    batch = _unpickle(data, name)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise _corrupt(name, f"expected a dict with b'data' and b'labels', got {type(batch).__name__}")
    images = _to_array(batch[b"data"], f"{name}: b'data'") if isinstance(batch[b"data"], _ArrayStub) else None
    if images is None or images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3072:
        shape = getattr(images, "shape", None)
        raise _corrupt(name, f"b'data' must be a uint8 array of shape (n, 3072), got {shape}")
    labels = _to_labels(batch[b"labels"], len(images), name)
    return images.reshape(-1, 3, 32, 32).copy(), labels


def _too_big(where: str, size: int) -> CIFARFormatError:
    return CIFARFormatError(
        f"{where}: {size:,} bytes, more than a CIFAR-10 batch can be ({mib(MAX_BATCH_BYTES)}); "
        "it is not CIFAR-10 python, delete it and download cifar-10-python.tar.gz again"
    )


def _read_folder(path: Path, names: tuple[str, ...]) -> list[tuple[str, bytes]]:
    out = []
    for n in names:
        member = path / n
        if not member.is_file():
            raise CIFARFormatError(f"{path}: {n} is missing; the extracted folder is incomplete")
        try:
            size = member.stat().st_size
            if size > MAX_BATCH_BYTES:
                raise _too_big(str(member), size)
            out.append((str(member), member.read_bytes()))
        except OSError as exc:
            raise CIFARFormatError(f"cannot read {member}: {exc.strerror or exc}") from None
    return out


def _read_tar(path: Path, names: tuple[str, ...]) -> list[tuple[str, bytes]]:
    """The members ``cifar-10-batches-py/<name>`` of the tarball, read in one streaming pass."""
    wanted = {f"{FOLDER}/{n}": n for n in names}
    found: dict[str, bytes] = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            if member.offset > MAX_ARCHIVE_BYTES:
                break
            n = wanted.get(member.name)
            if n is None or n in found:
                continue
            where = f"{path}:{n}"
            if not member.isfile():
                raise CIFARFormatError(
                    f"{where}: not a regular file in the archive; it is not CIFAR-10 python"
                )
            if member.size > MAX_BATCH_BYTES:
                raise _too_big(where, member.size)
            found[n] = tar.extractfile(member).read()  # type: ignore[union-attr]
            if len(found) == len(wanted):
                break
    missing = [n for n in names if n not in found]
    if missing:
        raise CIFARFormatError(f"{path}: the archive has no {FOLDER}/{missing[0]}; it is not CIFAR-10 python")
    return [(f"{path}:{n}", found[n]) for n in names]


def _read_members(path: Path, names: tuple[str, ...]) -> list[tuple[str, bytes]]:
    if path.is_dir():
        return _read_folder(path, names)
    try:
        return _read_tar(path, names)
    except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError) as exc:
        raise CIFARFormatError(
            f"{path}: corrupt or truncated tar.gz ({brief(exc)}); delete it and download it again"
        ) from None


def load_cifar10(
    split: str, data_dir: str | Path | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 ``split`` (``"train"`` 50,000 or ``"test"`` 10,000) as uint8 (N, 3, 32, 32) and
    int64 labels (N,), read from ``<root>/cifar10/`` (extracted folder or tarball)."""
    if split not in SPLITS:
        raise ImprovedGANError(f"unknown split {split!r} for cifar10; choose one of {sorted(SPLITS)}")
    path = locate_file(CIFAR10, TARBALL, data_dir, download, alternatives=(FOLDER,))
    parts = [parse_batch(data, name) for name, data in _read_members(path, SPLITS[split])]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
