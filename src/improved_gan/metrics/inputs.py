"""Turn what users have into batches of uint8 images (N, C, H, W) for the feature extractors.

Accepted inputs (:func:`open_source`):

* a tensor or array of images: uint8 in [0, 255]; or float in [−1, 1] or [0, 1] (see
  :func:`improved_gan.utils.images.to_uint8_nchw` for how the range is detected, and pass
  ``value_range`` to be explicit); shapes (N, H, W), (N, C, H, W), (N, H, W, C) with C ∈ {1, 3},
  or flat (N, H·W) grey squares;
* a folder of images (png, jpg, jpeg, bmp; sorted by name, not recursive), read lazily;
* an ``.npz`` (array ``images``, ``x`` or ``arr_0``, or its only array) or ``.npy`` file;
* a dataset split by name (:data:`~improved_gan.data.DATASET_SPLITS`: ``mnist-train``,
  ``mnist-test``, ``fashion-mnist-train``, ``fashion-mnist-test``);
* an :class:`ImageSource` made elsewhere, e.g. a run's samples
  (:func:`improved_gan.training.saved_run.run_source`).

Every input is checked when it is opened, before any image is scored: a file that numpy cannot
read without unpickling, an unsupported dtype or layout, NaN/inf or out-of-range values, or an
image that does not decode is one :class:`ImprovedGANError` naming the file. For float arrays
``value_range="auto"`` is decided once from the whole array's minimum.

Floats are mapped to uint8 by rounding (x·255 rounded), not truncation as torchmetrics'
``(x * 255).byte()`` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from improved_gan.data import DATASET_SPLITS, load_idx_dataset
from improved_gan.errors import ImprovedGANError
from improved_gan.metrics.checks import check_int
from improved_gan.metrics.files import npz_names, read_npy, read_npz_member
from improved_gan.utils.images import ImageFolder, ValueRange, to_nchw, to_uint8_nchw

VALUE_RANGES = ("auto", "-1,1", "0,1")
_RANGES = {"-1,1": (-1.0, 1.0), "0,1": (0.0, 1.0)}
_TOL = 1e-3  # as to_uint8_nchw: floats may overshoot their range by this much
_TORCH_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64) + (
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
)
_SCAN_ELEMENTS = 1 << 22  # values checked per chunk


@dataclass
class ImageSource:
    """``count`` images, produced as uint8 (B, C, H, W) batches by ``batches(batch_size)``;
    ``image_shape`` (C, H, W) when known before reading them."""

    description: str
    count: int
    batches: Callable[[int], Iterator[torch.Tensor]]
    image_shape: tuple[int, int, int] | None = None


def _take(total: int, n: int | None, description: str) -> int:
    """How many images to read: all ``total``, or the first ``n``."""
    check_int(n, "n", 1, min(total, 1000) or 1000)
    if total == 0:
        raise ImprovedGANError(f"{description} holds no images; give at least one")
    if n is not None and n > total:
        raise ImprovedGANError(f"{description} holds {total} images, fewer than the {n} asked for")
    return total if n is None else n


def _image_shape(array, description: str) -> tuple[int, int, int]:
    """(C, H, W) of an image array, refusing dtypes and layouts that are not images."""
    if not (torch.is_tensor(array) or isinstance(array, np.ndarray)):
        raise ImprovedGANError(
            f"{description}: holds {type(array).__name__}, not an array of images; "
            "save images with np.save or np.savez(path, images=uint8_array)"
        )
    dtype_ok = array.dtype in _TORCH_DTYPES if torch.is_tensor(array) else array.dtype.kind in "uif"
    if not dtype_ok:
        raise ImprovedGANError(
            f"{description}: images of dtype {array.dtype} are not supported; "
            "give uint8 (0..255) or float images in [-1, 1] or [0, 1]"
        )
    shape = tuple(array.shape)
    if len(shape) < 2:
        raise ImprovedGANError(
            f"{description}: an array of shape {shape} is not images; expected (N, H, W), (N, C, H, W) or (N, H, W, C)"
        )
    try:  # the layout of the real shape, on the meta device: nothing is allocated
        c, h, w = to_nchw(torch.empty(shape, dtype=torch.uint8, device="meta")).shape[1:]
    except ImprovedGANError as exc:
        raise ImprovedGANError(f"{description}: {exc}") from None
    if h * w == 0:
        raise ImprovedGANError(
            f"{description}: images of {h}×{w} pixels are empty; expected (N, H, W) images"
        )
    return int(c), int(h), int(w)


def _is_uint8(array) -> bool:
    return array.dtype == (torch.uint8 if torch.is_tensor(array) else np.uint8)


def _native(chunk) -> torch.Tensor:
    """A chunk of an image array as a CPU tensor of a dtype torch handles (numpy's big-endian,
    unsigned and long-double arrays included)."""
    if torch.is_tensor(chunk):
        chunk = chunk.detach().cpu()
        return chunk.long() if chunk.dtype == torch.int8 else chunk
    a = np.asarray(chunk)
    if a.dtype.kind in "iu" and a.dtype != np.uint8:
        a = a.astype(np.int64)  # uint64 above 2**63 turn negative: refused as out of range
    elif a.dtype.kind == "f" and (a.dtype.itemsize > 8 or not a.dtype.isnative):
        a = a.astype(np.float64)
    return torch.from_numpy(np.array(a))  # a copy: memmaps are read-only


def _scan_values(array, count: int, value_range: ValueRange, description: str) -> ValueRange:
    """Check every value of a non-uint8 array (finite; in [0, 255] for integers, in the float range
    otherwise) before any work, and resolve ``"auto"`` once for the whole array."""
    if _is_uint8(array):
        return value_range
    per_image = max(1, math.prod(array.shape[1:]))
    step = max(1, _SCAN_ELEMENTS // per_image)
    lo, hi, is_float = math.inf, -math.inf, True
    for i in range(0, count, step):
        t = _native(array[i : min(i + step, count)])
        is_float = t.is_floating_point()
        if is_float and not torch.isfinite(t).all():
            bad = i + int((~torch.isfinite(t.reshape(len(t), -1))).any(1).nonzero()[0])
            raise ImprovedGANError(
                f"{description}: images contain NaN or infinite values (first at image {bad}); fix or drop them"
            )
        lo, hi = min(lo, float(t.min())), max(hi, float(t.max()))
    if not is_float:
        if lo < 0 or hi > 255:
            raise ImprovedGANError(
                f"{description}: integer images must lie in [0, 255], got [{lo:g}, {hi:g}]"
            )
        return value_range
    chosen = ("-1,1" if lo < 0 else "0,1") if value_range == "auto" else value_range
    low, high = _RANGES[chosen]
    if lo < low - _TOL or hi > high + _TOL:
        raise ImprovedGANError(
            f"{description}: float images span [{lo:.3g}, {hi:.3g}], outside [{low:g}, {high:g}]; "
            "give uint8 images, or floats in [-1, 1] or [0, 1]"
        )
    return chosen


def _converted(chunk, value_range: ValueRange, description: str) -> torch.Tensor:
    try:
        return to_uint8_nchw(_native(chunk), value_range)
    except ImprovedGANError as exc:
        raise ImprovedGANError(f"{description}: {exc}") from None


def array_source(
    array, description: str, n: int | None = None, value_range: ValueRange = "auto"
) -> ImageSource:
    """The first ``n`` (default all) images of an array or tensor, checked before any batch is
    made: dtype, layout and every value (see :func:`_scan_values`)."""
    if value_range not in VALUE_RANGES:
        raise ImprovedGANError(f"value_range must be one of {', '.join(VALUE_RANGES)}, got {value_range!r}")
    shape = _image_shape(array, description)
    count = _take(len(array), n, description)
    value_range = _scan_values(array, count, value_range, description)

    def batches(batch_size: int) -> Iterator[torch.Tensor]:
        check_int(batch_size, "batch_size", 1, 100)
        for i in range(0, count, batch_size):
            yield _converted(array[i : min(i + batch_size, count)], value_range, description)

    return ImageSource(description, count, batches, shape)


def _folder_source(path: Path, n: int | None) -> ImageSource:
    try:
        folder = ImageFolder(path)
    except OSError as exc:
        raise ImprovedGANError(f"{path}: the folder cannot be read ({exc.strerror or exc})") from None
    count = _take(len(folder), n, f"folder {path}")
    width, height = folder.size

    def batches(batch_size: int) -> Iterator[torch.Tensor]:
        check_int(batch_size, "batch_size", 1, 100)
        for i in range(0, count, batch_size):
            yield to_uint8_nchw(folder.samples(i, min(i + batch_size, count)))

    return ImageSource(
        f"folder {path} ({count} images)", count, batches, (1 if folder.grey else 3, height, width)
    )


def _npz_images(path: Path):
    """The images of an ``.npz``: the array ``images``, ``x`` or ``arr_0``, or its only array."""
    names = npz_names(path)
    if "mu" in names and "sigma" in names:
        raise ImprovedGANError(
            f"{path} holds feature statistics (mu, sigma), not images; use it as --reference for FID"
        )
    chosen = [k for k in ("images", "x", "arr_0") if k in names] or (names if len(names) == 1 else [])
    if not chosen:
        raise ImprovedGANError(
            f"{path} has arrays {names[:10]} and none named 'images'; save them as np.savez(path, images=uint8_array)"
        )
    return read_npz_member(path, chosen[0])


def open_source(source, n: int | None = None, value_range: ValueRange = "auto") -> ImageSource:
    """An :class:`ImageSource` for any accepted input (see the module docstring); ``n`` takes
    the first ``n`` images (an error when fewer exist). Files are checked when opened: a corrupt
    or foreign file is one error naming it, before any image is scored."""
    if isinstance(source, ImageSource):
        return source
    if torch.is_tensor(source) or isinstance(source, np.ndarray):
        return array_source(source, f"tensor {tuple(source.shape)}", n, value_range)
    path = Path(source)
    if not path.exists() and str(source) in DATASET_SPLITS:
        name, split = str(source).rsplit("-", 1)
        images, _ = load_idx_dataset(name, split)
        return array_source(images, f"{name} {split} set", n, value_range)
    if not path.exists():
        raise ImprovedGANError(
            f"{source} does not exist; give a run directory, a folder of images, an .npz/.npy file "
            f"or one of {', '.join(DATASET_SPLITS)}"
        )
    if path.is_dir():
        return _folder_source(path, n)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return array_source(_npz_images(path), str(path), n, value_range)
    if suffix == ".npy":
        return array_source(read_npy(path), str(path), n, value_range)
    raise ImprovedGANError(
        f"cannot score {path}: give a run directory, a folder of images or an .npz/.npy file"
    )
