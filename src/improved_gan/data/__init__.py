"""Datasets (MNIST, Fashion-MNIST, CIFAR-10, SVHN, image folders, synthetic) and the
semi-supervised batch streams of the reference code."""

from improved_gan.data.catalog import (
    CLASSIFIER_DATASETS,
    DATASET_SPLITS,
    DATASETS,
    DatasetInfo,
    dataset_info,
    load_images,
    to_float,
)
from improved_gan.data.cifar10 import CIFARFormatError, load_cifar10
from improved_gan.data.datasets import DataRootError, DatasetNotFoundError, candidate_dirs, load_idx_dataset
from improved_gan.data.idx import IDXFormatError, parse_idx, read_idx
from improved_gan.data.imagefolder import ImageFolderError, load_image_folder, read_image_folder
from improved_gan.data.ssl_batches import SemiSupervisedBatches, balanced_labelled_subset
from improved_gan.data.svhn import SVHNFormatError, load_svhn, read_svhn_mat
from improved_gan.data.synthetic import load_synthetic

__all__ = [
    "CLASSIFIER_DATASETS",
    "DATASETS",
    "DATASET_SPLITS",
    "DatasetInfo",
    "dataset_info",
    "CIFARFormatError",
    "ImageFolderError",
    "SVHNFormatError",
    "load_cifar10",
    "load_image_folder",
    "load_images",
    "load_svhn",
    "load_synthetic",
    "read_image_folder",
    "read_svhn_mat",
    "to_float",
    "DataRootError",
    "DatasetNotFoundError",
    "IDXFormatError",
    "SemiSupervisedBatches",
    "balanced_labelled_subset",
    "candidate_dirs",
    "load_idx_dataset",
    "parse_idx",
    "read_idx",
]
