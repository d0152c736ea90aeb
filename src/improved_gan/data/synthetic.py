"""A synthetic dataset of random images in any shape, for smoke tests and benchmarks.

Deterministic (seeded by the split), 10 classes in a cycle (so any prefix is balanced), uint8 (N, C, H, W). Each class has its own
mean brightness per channel plus uniform noise, so a classifier can learn something.
"""

from __future__ import annotations

import numpy as np

from improved_gan.data.checks import is_int
from improved_gan.errors import ImprovedGANError

SIZES = {"train": 2000, "test": 500}
NUM_CLASSES = 10
MAX_SIDE = 1024


def _check(shape: tuple[int, ...], n: int | None) -> None:
    """Refuse shapes and counts that would crash numpy or exhaust memory, with a one-line fix."""
    ok = (
        isinstance(shape, (tuple, list))
        and len(shape) == 3
        and all(is_int(d) for d in shape)
        and 1 <= shape[0] <= 4
        and all(1 <= d <= MAX_SIDE for d in shape[1:])
    )
    if not ok:
        raise ImprovedGANError(
            f"synthetic images need a shape (C, H, W) with C in 1..4 and H, W in 1..{MAX_SIDE}, got {shape!r}"
        )
    if n is not None and (not is_int(n) or n < 0):
        raise ImprovedGANError(f"the number of synthetic images must be an integer >= 0, got {n!r}")


def load_synthetic(
    split: str, shape: tuple[int, int, int] = (3, 32, 32), n: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (default 2,000 train / 500 test) images of ``shape`` and int64 labels 0..9."""
    if split not in SIZES:
        raise ImprovedGANError(f"unknown split {split!r} for synthetic; choose one of {sorted(SIZES)}")
    _check(shape, n)
    shape = tuple(int(d) for d in shape)
    n = SIZES[split] if n is None else min(n, SIZES[split])
    rng = np.random.default_rng(0 if split == "train" else 1)
    labels = np.arange(n, dtype=np.int64) % NUM_CLASSES  # cyclic: every prefix is class-balanced
    means = np.random.default_rng(2).uniform(60, 196, size=(NUM_CLASSES, shape[0], 1, 1))
    noise = rng.random(size=(n, *shape), dtype=np.float32) * 120 - 60  # rows do not depend on n
    return np.clip(means[labels] + noise, 0, 255).astype(np.uint8), labels
