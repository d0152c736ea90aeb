"""The dataset registry: every dataset the trainer can use, with its facts (classes, training
set size, image shape, pixel scaling) in one place, and one loader for all of them
(openai/improved-gan ``mnist_svhn_cifar10/cifar10_data.py``, ``svhn_data.py``, ``imagenet/``).

| dataset | images | scaling to floats in [−1, 1] (tanh generators) |
|---|---|---|
| mnist, fashion-mnist | (N, 1, 28, 28) | (x − 127.5)/127.5 (sigmoid generators: x/255) |
| cifar10 | (N, 3, 32, 32) | (x − 127.5)/128, the reference's CIFAR scaling (→ [−0.996, 0.996]) |
| svhn | (N, 3, 32, 32) | (x − 127.5)/127.5 |
| imagefolder | (N, 3, S, S), S = 128 | (x − 127.5)/127.5 |
| synthetic | any shape | (x − 127.5)/127.5 |
| folder, npz (your own images) | converted to the model's (C, H, W) | (x − 127.5)/127.5 |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from improved_gan.data.cifar10 import load_cifar10
from improved_gan.data.datasets import load_idx_dataset
from improved_gan.data.imagefolder import load_image_folder
from improved_gan.data.own_data import load_own_split
from improved_gan.data.svhn import load_svhn
from improved_gan.data.synthetic import load_synthetic
from improved_gan.errors import ImprovedGANError

#: (split, data_dir, download, shape, max_examples) -> (uint8 images (N, C, H, W), int64 labels (N,))
Loader = Callable[..., tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class DatasetInfo:
    """What the package knows of one dataset.

    ``shape`` is the (C, H, W) its images come in (None: any shape asked for, the synthetic
    data); ``divisor`` maps uint8 to [−1, 1] as (x − 127.5)/divisor; ``has_classifier``: a dataset
    classifier (the "MNIST score", :mod:`improved_gan.metrics.classifier`) can be trained on it,
    and its splits can be scored by name (``mnist-test``); ``mirror_symmetric``: a left-right flip
    keeps an image's class (so the classifier may train on flipped images); ``class_names``: what
    each label means (``improved-gan predict`` prints them)."""

    name: str
    classes: int
    train_size: int
    shape: tuple[int, int, int] | None
    load: Loader
    divisor: float = 127.5
    has_classifier: bool = False
    mirror_symmetric: bool = False
    class_names: tuple[str, ...] | None = None

    def provides(self, shape: tuple[int, int, int]) -> bool:
        """Whether this dataset's images have (or can be made in) ``shape``."""
        return self.shape is None or self.shape == shape


def _idx(name: str) -> Loader:
    def load(split, data_dir, download, shape, max_examples):
        images, labels = load_idx_dataset(name, split, data_dir, download)
        return images[:, None], labels

    return load


DIGITS = tuple("0123456789")
# The label order of the datasets' own files (Fashion-MNIST's README, CIFAR-10's batches.meta).
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("mnist", 10, 60000, (1, 28, 28), _idx("mnist"), has_classifier=True, class_names=DIGITS),
        DatasetInfo(
            "fashion-mnist",
            10,
            60000,
            (1, 28, 28),
            _idx("fashion-mnist"),
            has_classifier=True,
            mirror_symmetric=True,
            class_names=FASHION_MNIST_CLASSES,
        ),
        DatasetInfo(
            "cifar10",
            10,
            50000,
            (3, 32, 32),
            lambda s, d, dl, shape, m: load_cifar10(s, d, dl),
            divisor=128.0,
            class_names=CIFAR10_CLASSES,
        ),
        DatasetInfo(
            "svhn", 10, 73257, (3, 32, 32), lambda s, d, dl, shape, m: load_svhn(s, d, dl), class_names=DIGITS
        ),
        DatasetInfo(  # ImageNet (ILSVRC2012 train) by default
            "imagefolder",
            1000,
            1281167,
            (3, 128, 128),
            lambda s, d, dl, shape, m: load_image_folder(s, d, shape[-1], m),
        ),
        DatasetInfo("synthetic", 10, 2000, None, lambda s, d, dl, shape, m: load_synthetic(s, shape, m)),
        # A user's own images (``--data folder:DIR`` / ``npz:FILE``, data_dir the path): classes and
        # size are the data's (0 here: unknown until read), converted to any model's input shape.
        DatasetInfo("folder", 0, 0, None, lambda s, d, dl, shape, m: load_own_split("folder", d, s, shape)),
        DatasetInfo("npz", 0, 0, None, lambda s, d, dl, shape, m: load_own_split("npz", d, s, shape)),
    )
}
#: The datasets that are a user's own images; ``data_dir`` is their folder or file.
OWN_DATASETS = ("folder", "npz")
#: The datasets with a dataset classifier: their splits can be scored by name (``mnist-test``).
CLASSIFIER_DATASETS = tuple(name for name, info in DATASETS.items() if info.has_classifier)
DATASET_SPLITS = tuple(f"{name}-{split}" for name in CLASSIFIER_DATASETS for split in ("train", "test"))


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ImprovedGANError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name]


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
    return dataset_info(name).load(split, data_dir, download, shape, max_examples)


def to_float(images: np.ndarray, dataset: str, value_range: tuple[float, float]) -> np.ndarray:
    """uint8 images -> float32 in the model's ``value_range``: (0, 1) is x/255; (−1, 1) is the
    reference's scaling of ``dataset``, (x − 127.5)/divisor."""
    x = images.astype(np.float32)
    if value_range == (0.0, 1.0):
        return x / 255.0
    if value_range != (-1.0, 1.0):
        raise ImprovedGANError(f"unsupported value range {value_range}")
    return (x - 127.5) / dataset_info(dataset).divisor
