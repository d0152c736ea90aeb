"""Datasets and the semi-supervised batch streams of the reference code."""

from improved_gan.data.datasets import DatasetNotFoundError, candidate_dirs, load_idx_dataset
from improved_gan.data.idx import IDXFormatError, parse_idx, read_idx
from improved_gan.data.ssl_batches import SemiSupervisedBatches, balanced_labelled_subset

__all__ = [
    "DatasetNotFoundError",
    "IDXFormatError",
    "SemiSupervisedBatches",
    "balanced_labelled_subset",
    "candidate_dirs",
    "load_idx_dataset",
    "parse_idx",
    "read_idx",
]
