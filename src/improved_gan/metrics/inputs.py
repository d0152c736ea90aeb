"""Turn what users have into batches of uint8 images (N, C, H, W) for the feature extractors.

Accepted inputs (:func:`open_source`):

* a tensor or array of images: uint8 in [0, 255]; or float in [−1, 1] or [0, 1] (see
  :func:`to_uint8_nchw` for how the range is detected, and pass ``value_range`` to be explicit);
  shapes (N, H, W), (N, C, H, W), (N, H, W, C) with C ∈ {1, 3}, or flat (N, H·W) grey squares;
* a run directory (holds ``config.yaml``) or its ``checkpoints/*.safetensors``: ``n`` generator
  samples are drawn with :func:`improved_gan.training.evaluate.sample_from_run`;
* a folder of images (png, jpg, jpeg, bmp; sorted by name, not recursive), read lazily;
* an ``.npz`` (array ``images``, ``x`` or ``arr_0``, or its only array) or ``.npy`` file;
* a dataset split by name: ``mnist-train``, ``mnist-test``, ``fashion-mnist-train``,
  ``fashion-mnist-test``.

Floats are mapped to uint8 by rounding (x·255 rounded), not truncation as torchmetrics'
``(x * 255).byte()`` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from improved_gan.errors import ImprovedGANError

ValueRange = Literal["auto", "-1,1", "0,1"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
DATASET_SPLITS = ("mnist-train", "mnist-test", "fashion-mnist-train", "fashion-mnist-test")
_TOL = 1e-3


def _to_nchw(t: torch.Tensor) -> torch.Tensor:
    """Any accepted image layout -> (N, C, H, W)."""
    if t.dim() == 2:
        side = math.isqrt(t.shape[1])
        if side * side != t.shape[1]:
            raise ImprovedGANError(
                f"flat images of {t.shape[1]} values are not square grey images; reshape to (N, C, H, W)"
            )
        return t.reshape(t.shape[0], 1, side, side)
    if t.dim() == 3:
        return t.unsqueeze(1)
    if t.dim() == 4:
        if t.shape[1] in (1, 3):
            return t
        if t.shape[3] in (1, 3):
            return t.permute(0, 3, 1, 2)
    raise ImprovedGANError(
        f"cannot read images of shape {tuple(t.shape)}; expected (N, H, W), (N, C, H, W) or (N, H, W, C) with C 1 or 3"
    )


def to_uint8_nchw(images, value_range: ValueRange = "auto") -> torch.Tensor:
    """Images as uint8 (N, C, H, W).

    uint8 input is kept as is (integer dtypes must lie in [0, 255]). Float input is mapped from
    ``value_range``; with ``"auto"``, a minimum below 0 means [−1, 1], otherwise [0, 1]; values
    outside the range by more than 1e-3 are an error. Auto-detection misreads a [−1, 1] batch
    whose values are all ≥ 0 (e.g. all-white images) as [0, 1]: pass ``value_range`` when you
    know it (generators with ``tanh`` output: ``"-1,1"``).
    """
    t = (
        images if torch.is_tensor(images) else torch.from_numpy(np.array(images))
    )  # a copy: memmaps are read-only
    t = _to_nchw(t.detach().cpu())
    if t.dtype == torch.uint8:
        return t.contiguous()
    if t.dtype == torch.bool or not (
        t.is_floating_point() or t.dtype in (torch.int16, torch.int32, torch.int64)
    ):
        raise ImprovedGANError(f"unsupported image dtype {t.dtype}; give uint8 or float images")
    if not t.is_floating_point():
        if t.numel() and (t.min() < 0 or t.max() > 255):
            raise ImprovedGANError("integer images must lie in [0, 255]")
        return t.to(torch.uint8).contiguous()
    t = t.float()
    if t.numel() and not torch.isfinite(t).all():
        raise ImprovedGANError("images contain NaN or infinite values")
    lo_v, hi_v = (float(t.min()), float(t.max())) if t.numel() else (0.0, 1.0)
    if value_range == "auto":
        value_range = "-1,1" if lo_v < 0 else "0,1"
    lo, hi = {"-1,1": (-1.0, 1.0), "0,1": (0.0, 1.0)}[value_range]
    if lo_v < lo - _TOL or hi_v > hi + _TOL:
        raise ImprovedGANError(
            f"float images span [{lo_v:.3g}, {hi_v:.3g}], outside [{lo:g}, {hi:g}]; give uint8 images, "
            "or floats in [-1, 1] or [0, 1]"
        )
    return ((t - lo) / (hi - lo) * 255).round().clamp(0, 255).to(torch.uint8).contiguous()


@dataclass
class ImageSource:
    """``count`` images, produced as uint8 (B, C, H, W) batches by ``batches(batch_size)``."""

    description: str
    count: int
    batches: Callable[[int], Iterator[torch.Tensor]]


def _array_source(array, description: str, n: int | None, value_range: ValueRange) -> ImageSource:
    count = len(array)
    if n is not None:
        if n > count:
            raise ImprovedGANError(f"{description} holds {count} images, fewer than the {n} asked for")
        count = n

    def batches(batch_size: int) -> Iterator[torch.Tensor]:
        for i in range(0, count, batch_size):
            yield to_uint8_nchw(array[i : min(i + batch_size, count)], value_range)

    return ImageSource(description, count, batches)


def _folder_source(folder: Path, n: int | None) -> ImageSource:
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ImprovedGANError(
            f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}) and is not a run directory"
        )
    if n is not None:
        if n > len(files):
            raise ImprovedGANError(f"{folder} holds {len(files)} images, fewer than the {n} asked for")
        files = files[:n]
    with Image.open(files[0]) as first:
        grey = first.mode in ("L", "1", "I;16", "I")
        shape = first.size

    def read(path: Path) -> np.ndarray:
        with Image.open(path) as img:
            if img.size != shape:
                raise ImprovedGANError(
                    f"{path} is {img.size[0]}×{img.size[1]}, the first image {shape[0]}×{shape[1]}"
                )
            arr = np.asarray(img.convert("L" if grey else "RGB"))
        return arr[None] if grey else arr.transpose(2, 0, 1)

    def batches(batch_size: int) -> Iterator[torch.Tensor]:
        for i in range(0, len(files), batch_size):
            yield torch.from_numpy(np.stack([read(p) for p in files[i : i + batch_size]]))

    return ImageSource(f"folder {folder} ({len(files)} images)", len(files), batches)


def _npz_array(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as data:
            if "mu" in data.files and "sigma" in data.files:
                raise ImprovedGANError(
                    f"{path} holds feature statistics (mu, sigma), not images; use it as --reference for FID"
                )
            for key in ("images", "x", "arr_0"):
                if key in data.files:
                    return data[key]
            if len(data.files) == 1:
                return data[data.files[0]]
            raise ImprovedGANError(f"{path} has arrays {data.files}; name the images array 'images'")
    except (OSError, ValueError) as exc:
        raise ImprovedGANError(f"cannot read {path}: {exc}") from exc


def run_dir_of(path: Path) -> Path | None:
    """The run directory of ``path`` (a run directory or a checkpoint inside one), else None."""
    if path.is_dir() and (path / "config.yaml").is_file():
        return path
    if path.is_file() and path.suffix == ".safetensors" and (path.parent.parent / "config.yaml").is_file():
        return path.parent.parent
    return None


def open_source(
    source, n: int | None = None, value_range: ValueRange = "auto", seed: int = 0, run_samples: int = 50000
) -> ImageSource:
    """An :class:`ImageSource` for any accepted input (see the module docstring).

    ``n`` takes the first ``n`` images (an error when fewer exist); for a run directory it is the
    number of samples drawn (default ``run_samples``, the paper's 50,000) with noise ``seed``.
    """
    if torch.is_tensor(source) or isinstance(source, np.ndarray):
        return _array_source(source, f"tensor {tuple(source.shape)}", n, value_range)
    path = Path(source)
    if not path.exists() and str(source) in DATASET_SPLITS:
        from improved_gan.data import load_idx_dataset

        name, split = str(source).rsplit("-", 1)
        images, _ = load_idx_dataset(name, split)
        return _array_source(images, f"{name} {split} set", n, value_range)
    if not path.exists():
        raise ImprovedGANError(
            f"{source} does not exist; give a run directory, a folder of images, an .npz/.npy file "
            f"or one of {', '.join(DATASET_SPLITS)}"
        )
    run = run_dir_of(path)
    if run is not None:
        from improved_gan.training.evaluate import sample_from_run

        count = n if n is not None else run_samples
        images = sample_from_run(run, count, seed=seed)
        return _array_source(images, f"{count} samples of run {run}", None, "auto")
    if path.is_dir():
        return _folder_source(path, n)
    if path.suffix == ".npz":
        return _array_source(_npz_array(path), str(path), n, value_range)
    if path.suffix == ".npy":
        return _array_source(np.load(path, mmap_mode="r", allow_pickle=False), str(path), n, value_range)
    raise ImprovedGANError(
        f"cannot score {path}: give a run directory, a folder of images or an .npz/.npy file"
    )
