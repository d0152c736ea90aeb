"""One entry point for every dataset the trainer can use, and each dataset's pixel scaling
(openai/improved-gan `mnist_svhn_cifar10/cifar10_data.py`, `svhn_data.py`, `imagenet/train_imagenet.py`).

| dataset | images | scaling to floats |
|---|---|---|
| mnist, fashion-mnist | (N, 1, 28, 28) | x/255 ([0, 1]) or (x − 127.5)/127.5 for tanh generators |
| cifar10 | (N, 3, 32, 32) | (x − 127.5)/128, the reference's CIFAR scaling (→ [−0.996, 0.996]) |
| svhn | (N, 3, 32, 32) | (x − 127.5)/127.5 (→ [−1, 1]) |
| imagefolder | (N, 3, S, S), S = 128 | x·2/255 − 1 (→ [−1, 1]) |
| synthetic | any shape | as svhn |
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from improved_gan.data.cifar10 import load_cifar10
from improved_gan.data.datasets import load_idx_dataset
from improved_gan.data.imagefolder import load_image_folder
from improved_gan.data.svhn import load_svhn
from improved_gan.data.synthetic import load_synthetic
from improved_gan.errors import ImprovedGANError

DATASETS = ("mnist", "fashion-mnist", "cifar10", "svhn", "imagefolder", "synthetic")


def load_images(
    name: str,
    split: str,
    data_dir: str | Path | None = None,
    download: bool = True,
    shape: tuple[int, int, int] = (3, 32, 32),
    max_examples: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: uint8 (N, C, H, W) and int64 (N,). ``shape`` sets the synthetic
    images' shape and the image folder's size; ``max_examples`` limits the image folder's
    decoding and the synthetic images made (other datasets are cut by the caller)."""
    if name in ("mnist", "fashion-mnist"):
        images, labels = load_idx_dataset(name, split, data_dir, download)
        return images[:, None], labels
    if name == "cifar10":
        return load_cifar10(split, data_dir, download)
    if name == "svhn":
        return load_svhn(split, data_dir, download)
    if name == "imagefolder":
        return load_image_folder(split, data_dir, shape[-1], max_examples)
    if name == "synthetic":
        return load_synthetic(split, shape, max_examples)
    raise ImprovedGANError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def to_float(images: np.ndarray, dataset: str, value_range: tuple[float, float]) -> np.ndarray:
    """uint8 images -> float32 in the model's ``value_range``: (0, 1) is x/255; (−1, 1) uses the
    reference's scaling of ``dataset`` (CIFAR-10 divides by 128, the others by 127.5)."""
    x = images.astype(np.float32)
    if value_range == (0.0, 1.0):
        return x / 255.0
    if value_range != (-1.0, 1.0):
        raise ImprovedGANError(f"unsupported value range {value_range}")
    return (x - 127.5) / (128.0 if dataset == "cifar10" else 127.5)
