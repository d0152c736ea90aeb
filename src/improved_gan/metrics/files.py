"""Reading users' ``.npy`` / ``.npz`` files without trusting them, and writing ``.npz`` files
atomically. Nothing is unpickled (``allow_pickle=False``); whatever a corrupt, truncated or
hostile file makes numpy or zipfile raise becomes one :class:`ImprovedGANError` naming the file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from improved_gan.errors import ImprovedGANError
from improved_gan.utils.images import NPZ_READ_ERRORS

READ_ERRORS = NPZ_READ_ERRORS


def _brief(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def unreadable(path: Path, kind: str, exc: BaseException) -> ImprovedGANError:
    reason = _brief(exc)
    if "pickle" in reason or "Object arrays" in reason or "Python objects" in reason:
        reason = "it holds pickled Python objects or is no numpy file at all; pickles are never loaded"
    return ImprovedGANError(
        f"{path}: not a readable {kind} file ({reason}); re-save the arrays with numpy (np.save / np.savez)"
    )


def read_npy(path: str | Path) -> np.ndarray:
    """The array of an ``.npy`` file, memory-mapped (read lazily, read-only)."""
    path = Path(path)
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except READ_ERRORS as exc:
        raise unreadable(path, ".npy", exc) from None
    if not isinstance(array, np.ndarray):
        raise ImprovedGANError(f"{path}: holds no .npy array (an .npz archive?); give it the .npz suffix")
    return array


def _open_npz(path: Path) -> np.lib.npyio.NpzFile:
    """An open ``.npz`` archive (its zip directory read, no array yet), or a one-line error."""
    try:
        data = np.load(path, allow_pickle=False)
    except READ_ERRORS as exc:
        raise unreadable(path, ".npz", exc) from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ImprovedGANError(f"{path}: is not an .npz archive (an .npy array?); use the .npy suffix")
    return data


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read into memory."""
    path = Path(path)
    data = _open_npz(path)
    try:
        with data:
            return {name: data[name] for name in data.files}
    except READ_ERRORS as exc:
        raise unreadable(path, ".npz", exc) from None


def npz_names(path: str | Path) -> list[str]:
    """The array names of an ``.npz`` file (its zip directory only: no array is read)."""
    with _open_npz(Path(path)) as data:
        return list(data.files)


def read_npz_member(path: str | Path, name: str) -> np.ndarray:
    """One array of an ``.npz`` file, read into memory."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return data[name]
    except READ_ERRORS as exc:
        raise unreadable(path, ".npz", exc) from None


def write_npz_atomic(path: str | Path, **arrays: np.ndarray) -> Path:
    """Write ``arrays`` to ``path`` as an ``.npz``: a temporary file in the same folder, flushed to
    disk, then renamed over ``path``; a failure leaves ``path`` as it was."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ImprovedGANError(f"cannot write {path}: {exc.strerror or exc}; choose another path") from None
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise ImprovedGANError(
            f"cannot write {path}: {exc.strerror or exc}; free space or choose another path"
        ) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
