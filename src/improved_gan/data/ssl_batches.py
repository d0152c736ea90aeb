"""Labelled subset and per-epoch batch streams, as the reference code builds them.

openai/improved-gan `mnist_svhn_cifar10/train_mnist_feature_matching.py`: the whole training set is permuted with ``RandomState(seed_data)`` and
the first ``count`` examples of each class form a class-balanced labelled set; the unlabelled
set is the whole training set (labelled examples included). Every epoch the labelled stream is
the concatenation of ``R`` fresh permutations of the labelled set, the unlabelled set is
permuted, and an independent second permutation feeds the generator's real batch; iteration
``t`` takes the ``t``-th slice of ``batch_size`` from each stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from improved_gan.data.checks import is_int
from improved_gan.errors import ImprovedGANError


def _check_streams(
    x_lab: torch.Tensor, y_lab: torch.Tensor, x_unl: torch.Tensor, batch_size: int, tile: str
) -> None:
    """Refuse inputs that would divide by zero, index out of range or pair images with the wrong labels."""
    if not is_int(batch_size) or batch_size < 1:
        raise ImprovedGANError(
            f"batch_size must be an integer >= 1, got {batch_size!r}; the reference uses 100"
        )
    if tile not in ("floor", "ceil"):
        raise ImprovedGANError(f"tile must be 'floor' or 'ceil', got {tile!r}")
    for name, t in (("x_lab", x_lab), ("y_lab", y_lab), ("x_unl", x_unl)):
        if not torch.is_tensor(t) or t.dim() == 0:
            raise ImprovedGANError(f"{name} must be a tensor with a batch dimension, got {type(t).__name__}")
    if len(x_lab) != len(y_lab):
        raise ImprovedGANError(
            f"{len(x_lab)} labelled images but {len(y_lab)} labels; pass one label per image"
        )


def data_permutation(n: int, seed_data: int) -> np.ndarray:
    """The reference's permutation of the training set, ``RandomState(seed_data).permutation(n)``."""
    return np.random.RandomState(seed_data).permutation(n)


def balanced_labelled_subset(labels: np.ndarray, per_class: int, seed_data: int) -> np.ndarray:
    """Indices of a class-balanced labelled subset: the first ``per_class`` of each class in the
    ``seed_data`` permutation, grouped by class (class 0 first), as the reference selects them.
    Label −1 (an unlabelled image of a user's data) is never chosen."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or labels.size == 0:
        raise ImprovedGANError(
            f"labels must be a non-empty 1-D integer array, got {labels.dtype} of shape {labels.shape}"
        )
    if not is_int(per_class) or per_class < 1:
        raise ImprovedGANError(f"labels per class must be an integer >= 1, got {per_class!r}; raise --labels")
    if not is_int(seed_data) or not 0 <= seed_data < 2**32:
        raise ImprovedGANError(f"seed_data must be an integer in 0..2**32-1, got {seed_data!r}")
    classes = np.unique(labels[labels >= 0])  # label −1: an unlabelled image (own data)
    perm = data_permutation(len(labels), seed_data)
    chosen = []
    for c in classes:
        of_class = perm[labels[perm] == c]
        if len(of_class) < per_class:
            raise ImprovedGANError(
                f"class {c} has only {len(of_class)} training examples, fewer than the {per_class} "
                "labels per class asked for; lower --labels"
            )
        chosen.append(of_class[:per_class])
    return np.concatenate(chosen)


@dataclass
class Batch:
    """One D step's real data: labelled images and labels, unlabelled images, and the second
    unlabelled batch used as the real side of feature matching."""

    x_lab: torch.Tensor
    y_lab: torch.Tensor
    x_unl: torch.Tensor
    x_unl2: torch.Tensor


class SemiSupervisedBatches:
    """Per-epoch streams of (labelled, unlabelled, unlabelled-for-G) batches.

    Args:
        x_lab, y_lab: the labelled set, (L, ...) and (L,); L = 0 gives empty labelled batches
            (an unsupervised run).
        x_unl: the unlabelled set, (N, ...).
        batch_size: examples per batch in each stream (100 in the reference).
        tile: ``"floor"`` (MNIST script) or ``"ceil"`` (CIFAR/SVHN scripts): how many
            permutations of the labelled set make up one epoch's labelled stream.
    """

    def __init__(
        self,
        x_lab: torch.Tensor,
        y_lab: torch.Tensor,
        x_unl: torch.Tensor,
        batch_size: int = 100,
        tile: str = "floor",
    ) -> None:
        _check_streams(x_lab, y_lab, x_unl, batch_size, tile)
        if len(x_unl) < batch_size:
            raise ImprovedGANError(f"{len(x_unl)} unlabelled examples, fewer than one batch of {batch_size}")
        self.x_lab, self.y_lab, self.x_unl = x_lab, y_lab, x_unl
        self.batch_size = batch_size
        n_lab, n_unl = len(x_lab), len(x_unl)
        self.num_batches = n_unl // batch_size
        if n_lab == 0:  # an unsupervised run: every labelled batch is empty
            self.repeats = 0
            return
        self.repeats = max(1, n_unl // n_lab if tile == "floor" else -(-n_unl // n_lab))
        if self.repeats * n_lab < self.num_batches * batch_size:
            self.repeats = -(-self.num_batches * batch_size // n_lab)

    def __len__(self) -> int:
        return self.num_batches

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]:
        """One epoch of batches; all randomness is drawn from ``generator`` (in a fixed order).
        The epoch's orders move to the data's device once, so that data kept on a GPU is
        batched there without a host copy (and a wait for the GPU) per batch."""
        n_lab, n_unl = len(self.x_lab), len(self.x_unl)
        lab_order = torch.cat(
            [torch.randperm(n_lab, generator=generator) for _ in range(self.repeats)]
            or [torch.zeros(0, dtype=torch.int64)]
        ).to(self.x_lab.device)
        unl_order = torch.randperm(n_unl, generator=generator).to(self.x_unl.device)
        unl2_order = torch.randperm(n_unl, generator=generator).to(self.x_unl.device)
        b = self.batch_size
        for t in range(self.num_batches):
            sl = slice(t * b, (t + 1) * b)
            lab = lab_order[sl]
            yield Batch(
                self.x_lab[lab], self.y_lab[lab], self.x_unl[unl_order[sl]], self.x_unl[unl2_order[sl]]
            )
