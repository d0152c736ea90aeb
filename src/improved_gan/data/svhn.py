"""SVHN, cropped digits (``train_32x32.mat``, ``test_32x32.mat``; openai/improved-gan `mnist_svhn_cifar10/svhn_data.py`, `train_svhn_feature_matching.py`).

Each file is a MATLAB v5 file with ``X``, uint8 of shape (32, 32, 3, N), and ``y``, shape (N, 1)
with values 1..10, where **10 means the digit 0** (mapped to 0 here). The ``extra`` set is not
used, as in the reference. Reading needs scipy (``scipy.io.loadmat``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from improved_gan.data.checks import brief, shown
from improved_gan.data.files import FileDataset, RemoteFile, locate_file
from improved_gan.errors import ImprovedGANError

SVHN = FileDataset(name="svhn", folder="svhn")
FILES = {
    "train": RemoteFile(
        "train_32x32.mat",
        ("http://ufldl.stanford.edu/housenumbers/train_32x32.mat",),
        "e26dedcc434d2e4c54c9b2d4a06d8373",
    ),
    "test": RemoteFile(
        "test_32x32.mat",
        ("http://ufldl.stanford.edu/housenumbers/test_32x32.mat",),
        "eb5a983be6a315427106f1b164d9cef3",
    ),
}


#: The most images a file may declare (train has 73,257, test 26,032; ``extra`` is not used).
MAX_IMAGES = 200_000
NUMBER_CLASSES = frozenset(
    {"double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"}
)


class SVHNFormatError(ImprovedGANError):
    """An SVHN .mat file is truncated, corrupt or does not hold X (32, 32, 3, N) and y (N, 1)."""


def _scipy_io():
    try:
        import scipy.io
    except ImportError as exc:  # pragma: no cover - scipy is a dependency
        raise ImprovedGANError("reading SVHN needs scipy: pip install scipy") from exc
    return scipy.io


def _unreadable(path: Path, exc: BaseException) -> SVHNFormatError:
    return SVHNFormatError(
        f"{shown(path)}: not a readable MATLAB file ({brief(exc)}); delete it and download it again"
    )


def _declared(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """The variables the file declares, ``name -> (shape, MATLAB class)``, read from the headers
    only: sizes are checked before anything is decompressed or allocated."""
    try:
        entries = _scipy_io().whosmat(str(path), appendmat=False)
    except Exception as exc:  # scipy raises ValueError, TypeError, MatReadError, ... on bad input
        raise _unreadable(path, exc) from None
    return {name: (tuple(shape), cls) for name, shape, cls in entries}


def _check_x(path: Path, x_shape: tuple[int, ...], x_class: str) -> int:
    """The number of images a declared X (32, 32, 3, N) uint8 holds, else a refusal."""
    if x_class != "uint8" or len(x_shape) != 4 or x_shape[:3] != (32, 32, 3):
        raise SVHNFormatError(
            f"{shown(path)}: X must be uint8 of shape (32, 32, 3, N), got {x_class} {x_shape}"
        )
    n = x_shape[3]
    if n > MAX_IMAGES:
        raise SVHNFormatError(
            f"{shown(path)}: X declares {n:,} images, more than {MAX_IMAGES:,} (SVHN train has 73,257); "
            "the file is corrupt, delete it and download it again"
        )
    return n


def _check_declared(path: Path, declared: dict[str, tuple[tuple[int, ...], str]]) -> int:
    """The number of images X (32, 32, 3, N) uint8 and y (N numbers) declare, else a refusal."""
    n = _check_x(path, *declared["X"]) if "X" in declared else None
    if n is None or "y" not in declared:
        _load(path, [k for k in ("X",) if k in declared])  # a truncated file says so here
        raise SVHNFormatError(
            f"{shown(path)}: expected variables X and y, found {sorted(declared)}; it is not an SVHN file"
        )
    y_shape, y_class = declared["y"]
    if y_class not in NUMBER_CLASSES or len(y_shape) > 2 or math.prod(y_shape) != n:
        raise SVHNFormatError(
            f"{shown(path)}: y must hold {n} numbers (shape (N, 1)), got {y_class} {y_shape}"
        )
    return n


def _load(path: Path, names: list[str]) -> dict:
    """The variables ``names`` of the file (whose declared sizes were checked)."""
    try:
        return _scipy_io().loadmat(str(path), appendmat=False, variable_names=names)
    except Exception as exc:  # the headers were fine but the data is not (truncated, corrupt)
        raise _unreadable(path, exc) from None


def _labels(path: Path, y: object, n: int) -> np.ndarray:
    """SVHN's labels 1..10 (10 = digit 0; 0 is read as 0 too) -> int64 0..9."""
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "uif" or y.size != n:
        raise SVHNFormatError(f"{shown(path)}: y must be {n} numbers, got {type(y).__name__}")
    y = y.reshape(-1)
    if y.dtype.kind == "f" and not (np.isfinite(y).all() and (y == np.round(y)).all()):
        raise SVHNFormatError(f"{shown(path)}: y must hold whole numbers 1..10, found fractions, NaN or inf")
    if y.size and (y.min() < 0 or y.max() > 10):
        raise SVHNFormatError(
            f"{shown(path)}: labels must lie in 1..10 (10 = digit 0), got {y.min():g}..{y.max():g}"
        )
    labels = y.astype(np.int64)
    labels[labels == 10] = 0
    return labels


def read_svhn_mat(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One SVHN .mat file -> (uint8 images (N, 3, 32, 32), int64 labels (N,) in 0..9).

    Corrupt, truncated, mis-shaped or mis-typed files are an :class:`SVHNFormatError`; the
    declared sizes are checked before the data is read."""
    path = Path(path)
    n = _check_declared(path, _declared(path))
    mat = _load(path, ["X", "y"])
    x = mat.get("X")
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.shape != (32, 32, 3, n):
        raise SVHNFormatError(
            f"{shown(path)}: X must be uint8 of shape (32, 32, 3, {n}); the file is corrupt"
        )
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), _labels(path, mat.get("y"), n)


def load_svhn(
    split: str, data_dir: str | Path | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """SVHN ``split`` (``"train"`` 73,257 or ``"test"`` 26,032) as uint8 (N, 3, 32, 32) and int64
    labels (N,), from ``<root>/svhn/``."""
    if split not in FILES:
        raise ImprovedGANError(f"unknown split {split!r} for svhn; choose one of {sorted(FILES)}")
    return read_svhn_mat(locate_file(SVHN, FILES[split], data_dir, download))
