"""SVHN, cropped digits (``train_32x32.mat``, ``test_32x32.mat``; openai/improved-gan `mnist_svhn_cifar10/svhn_data.py`, `train_svhn_feature_matching.py`).

Each file is a MATLAB v5 file with ``X``, uint8 of shape (32, 32, 3, N), and ``y``, shape (N, 1)
with values 1..10, where **10 means the digit 0** (mapped to 0 here). The ``extra`` set is not
used, as in the reference. Reading needs scipy (``scipy.io.loadmat``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

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


class SVHNFormatError(ImprovedGANError):
    """An SVHN .mat file is truncated, corrupt or does not hold X (32, 32, 3, N) and y (N, 1)."""


def read_svhn_mat(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One SVHN .mat file -> (uint8 images (N, 3, 32, 32), int64 labels (N,) in 0..9)."""
    try:
        import scipy.io
    except ImportError as exc:  # pragma: no cover - scipy is a dependency
        raise ImprovedGANError("reading SVHN needs scipy: pip install scipy") from exc
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises ValueError, TypeError, MatReadError, ... on bad input
        raise SVHNFormatError(
            f"{path}: not a readable MATLAB file ({type(exc).__name__}: {exc}); delete it and download it again"
        ) from None
    if "X" not in mat or "y" not in mat:
        raise SVHNFormatError(
            f"{path}: expected variables X and y, found {sorted(k for k in mat if not k.startswith('__'))}"
        )
    x, y = mat["X"], mat["y"]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise SVHNFormatError(f"{path}: X must be uint8 of shape (32, 32, 3, N), got {x.dtype} {x.shape}")
    y = y.reshape(-1)
    if len(y) != x.shape[3]:
        raise SVHNFormatError(f"{path}: {x.shape[3]} images but {len(y)} labels")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() > 10):
        raise SVHNFormatError(f"{path}: labels must lie in 1..10 (10 = digit 0), got {y.min()}..{y.max()}")
    y[y == 10] = 0
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), y


def load_svhn(
    split: str, data_dir: str | Path | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """SVHN ``split`` (``"train"`` 73,257 or ``"test"`` 26,032) as uint8 (N, 3, 32, 32) and int64
    labels (N,), from ``<root>/svhn/``."""
    if split not in FILES:
        raise ImprovedGANError(f"unknown split {split!r} for svhn; choose one of {sorted(FILES)}")
    return read_svhn_mat(locate_file(SVHN, FILES[split], data_dir, download))
