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

Floats are mapped to uint8 by rounding (x·255 rounded), not truncation as torchmetrics'
``(x * 255).byte()`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from improved_gan.data import DATASET_SPLITS, load_idx_dataset
from improved_gan.errors import ImprovedGANError
from improved_gan.utils.images import ImageFolder, ValueRange, read_npz_images, to_uint8_nchw


@dataclass
class ImageSource:
    """``count`` images, produced as uint8 (B, C, H, W) batches by ``batches(batch_size)``."""

    description: str
    count: int
    batches: Callable[[int], Iterator[torch.Tensor]]


def array_source(
    array, description: str, n: int | None = None, value_range: ValueRange = "auto"
) -> ImageSource:
    """The first ``n`` (default all) images of an array or tensor."""
    count = len(array)
    if n is not None:
        if n > count:
            raise ImprovedGANError(f"{description} holds {count} images, fewer than the {n} asked for")
        count = n

    def batches(batch_size: int) -> Iterator[torch.Tensor]:
        for i in range(0, count, batch_size):
            yield to_uint8_nchw(array[i : min(i + batch_size, count)], value_range)

    return ImageSource(description, count, batches)


def _folder_source(path: Path, n: int | None) -> ImageSource:
    folder = ImageFolder(path)
    count = len(folder)
    if n is not None:
        if n > count:
            raise ImprovedGANError(f"{path} holds {count} images, fewer than the {n} asked for")
        count = n

    def batches(batch_size: int) -> Iterator[torch.Tensor]:
        for i in range(0, count, batch_size):
            yield to_uint8_nchw(folder.samples(i, min(i + batch_size, count)))

    return ImageSource(f"folder {path} ({count} images)", count, batches)


def open_source(source, n: int | None = None, value_range: ValueRange = "auto") -> ImageSource:
    """An :class:`ImageSource` for any accepted input (see the module docstring); ``n`` takes
    the first ``n`` images (an error when fewer exist)."""
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
    if path.suffix == ".npz":
        return array_source(read_npz_images(path)[0], str(path), n, value_range)
    if path.suffix == ".npy":
        return array_source(np.load(path, mmap_mode="r", allow_pickle=False), str(path), n, value_range)
    raise ImprovedGANError(
        f"cannot score {path}: give a run directory, a folder of images or an .npz/.npy file"
    )
