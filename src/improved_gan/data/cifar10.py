"""CIFAR-10 from the "python version" of Krizhevsky's release (openai/improved-gan `mnist_svhn_cifar10/cifar10_data.py`).

Accepted layouts under ``<root>/cifar10/``: the extracted folder ``cifar-10-batches-py/``
(``data_batch_1`` … ``data_batch_5``, ``test_batch``) or the tarball ``cifar-10-python.tar.gz``
as downloaded (read in place, not extracted). Each batch is a pickled dict with ``b"data"``, a
uint8 array of shape (n, 3072) (1024 red, 1024 green, 1024 blue values, row-major 32×32), and
``b"labels"``, a list of n ints in 0..9. The pickles are read with a restricted unpickler that
only builds numpy arrays and plain containers, so a tampered file cannot run code.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

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


def _allowed_globals() -> dict[tuple[str, str], Any]:
    array = np.zeros(1, dtype=np.uint8)
    reconstruct = array.__reduce__()[0]  # numpy's _reconstruct, under whichever module path
    frombuffer = array.__reduce_ex__(5)[0]
    import codecs

    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = reconstruct
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(module, "_frombuffer")] = frombuffer
    allowed[("_codecs", "encode")] = codecs.encode  # how Python 3 writes bytes in protocol 2
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (not a numpy array)") from None


def parse_batch(data: bytes, name: str = "<bytes>") -> tuple[np.ndarray, np.ndarray]:
    """One pickled CIFAR-10 batch -> (uint8 images (n, 3, 32, 32), int64 labels (n,))."""
    try:
        batch = _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # pickle raises many types on corrupt input
        raise CIFARFormatError(
            f"{name}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc}); delete it and download "
            "cifar-10-python.tar.gz again"
        ) from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise CIFARFormatError(
            f"{name}: expected a dict with b'data' and b'labels', got {type(batch).__name__}"
        )
    images, labels = batch[b"data"], batch[b"labels"]
    if (
        not isinstance(images, np.ndarray)
        or images.dtype != np.uint8
        or images.ndim != 2
        or images.shape[1] != 3072
    ):
        shape = getattr(images, "shape", None)
        raise CIFARFormatError(f"{name}: b'data' must be a uint8 array of shape (n, 3072), got {shape}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise CIFARFormatError(f"{name}: b'labels' is not a list of integers") from None
    if labels.shape != (len(images),):
        raise CIFARFormatError(f"{name}: {len(images)} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise CIFARFormatError(f"{name}: labels out of range 0..9")
    return images.reshape(-1, 3, 32, 32).copy(), labels


def _read_members(path: Path, names: tuple[str, ...]) -> list[tuple[str, bytes]]:
    if path.is_dir():
        out = []
        for n in names:
            member = path / n
            if not member.is_file():
                raise CIFARFormatError(f"{path}: {n} is missing; the extracted folder is incomplete")
            out.append((str(member), member.read_bytes()))
        return out
    try:
        with tarfile.open(path, "r:gz") as tar:
            out = []
            for n in names:
                try:
                    f = tar.extractfile(f"{FOLDER}/{n}")
                except KeyError:
                    f = None
                if f is None:
                    raise CIFARFormatError(
                        f"{path}: the archive has no {FOLDER}/{n}; it is not CIFAR-10 python"
                    )
                out.append((f"{path}:{n}", f.read()))
            return out
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise CIFARFormatError(
            f"{path}: corrupt or truncated tar.gz ({exc}); delete it and download it again"
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
