"""Find, download and load the IDX datasets (MNIST, Fashion-MNIST).

A *data root* holds one folder per dataset (``mnist/``, ``fashion-mnist/``, later ``cifar10/``,
``svhn/``) with the files under their standard names. Places are tried in this order:

1. ``data_dir`` (the ``--data-dir`` option), 2. the ``IMPROVED_GAN_DATA`` environment variable,
3. the copy of MNIST shipped inside the package (``improved_gan/data/shipped/mnist``, in the
wheel too), 4. system folders
(``/usr/share/datasets/fashion-mnist`` from Debian's ``dataset-fashion-mnist``),
5. the user cache (``~/.cache/improved_gan/data``, or ``$XDG_CACHE_HOME``), 6. a download from
the canonical mirrors into the first of ``data_dir``, ``IMPROVED_GAN_DATA`` and the user cache,
verified by sha256.

A root named by 1. or 2. must be an existing folder: a mistyped ``--data-dir`` is an error naming
it (:class:`DataRootError`), never a silent fall back to the shipped MNIST.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from improved_gan.data.checks import shown as as_shown
from improved_gan.data.download import download_verified, sha256_of
from improved_gan.data.idx import IDXFormatError, parse_idx, read_idx_bytes
from improved_gan.data.idx_files import IDX_DATASETS, IDXDataset, IDXFile
from improved_gan.errors import ImprovedGANError

ENV_VAR = "IMPROVED_GAN_DATA"
#: The MNIST copy shipped inside the package (package data, so a wheel install has it too).
SHIPPED_DATA = Path(__file__).resolve().parent / "shipped"


class DatasetNotFoundError(ImprovedGANError):
    """No place holds the dataset and it could not be downloaded."""


class DataRootError(DatasetNotFoundError):
    """A data root the user named (``--data-dir``, ``$IMPROVED_GAN_DATA``) is missing or not a folder."""


ROOT_LAYOUT = "mnist/, fashion-mnist/, cifar10/, svhn/ or imagefolder/"


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "improved_gan" / "data"


def _checked_root(root: Path, shown: str) -> Path:
    """An explicitly given data root (``shown`` as the user gave it), refused unless it is an
    existing folder: a mistyped root must not silently fall back to the shipped MNIST."""
    if not root.exists():
        raise DataRootError(
            f"{shown} does not exist; create it (mkdir -p {as_shown(root)}) or pass the folder that holds "
            f"{ROOT_LAYOUT}"
        )
    if not root.is_dir():
        raise DataRootError(f"{shown} is not a directory; pass the folder that holds {ROOT_LAYOUT}")
    return root


def explicit_roots(data_dir: str | Path | None = None) -> list[Path]:
    """The data roots the user named, in order: ``data_dir`` (``--data-dir``), then
    ``$IMPROVED_GAN_DATA``; each must be an existing folder (:class:`DataRootError`)."""
    roots = []
    if data_dir is not None:
        if str(data_dir) == "":
            raise DataRootError(f"--data-dir is empty; pass the folder that holds {ROOT_LAYOUT}")
        roots.append(_checked_root(Path(data_dir), f"--data-dir {as_shown(data_dir)}"))
    if os.environ.get(ENV_VAR):
        value = os.environ[ENV_VAR]
        roots.append(_checked_root(Path(value), f"{ENV_VAR}={as_shown(value)}"))
    return roots


def _dataset_folder(root: Path, folder: str) -> Path:
    path = root / folder
    if path.exists() and not path.is_dir():
        raise DataRootError(
            f"{as_shown(path)} is not a directory; the data root must hold {folder}/ as a folder"
        )
    return path


def candidate_dirs(dataset: IDXDataset, data_dir: str | Path | None = None) -> list[Path]:
    """The folders searched for ``dataset``'s files, in order."""
    dirs = [_dataset_folder(root, dataset.folder) for root in explicit_roots(data_dir)]
    dirs.append(SHIPPED_DATA / dataset.folder)
    dirs.extend(Path(d) for d in dataset.system_dirs)
    dirs.append(default_cache_root() / dataset.folder)
    return dirs


def _download_dir(dataset: IDXDataset, data_dir: str | Path | None) -> Path:
    roots = explicit_roots(data_dir)
    return (roots[0] if roots else default_cache_root()) / dataset.folder


def _find_file(file: IDXFile, dirs: list[Path]) -> Path | None:
    for folder in dirs:
        for name in (file.name, file.name.removesuffix(".gz")):
            if (folder / name).is_file():
                return folder / name
    return None


def _verify_download(file: IDXFile):
    def verify(path: Path) -> str | None:
        try:
            data = read_idx_bytes(path)
        except IDXFormatError as exc:
            return str(exc)
        digest = sha256_of(data)
        if file.sha256 and digest != file.sha256:
            return f"sha256 mismatch (got {digest[:12]}..., expected {file.sha256[:12]}...)"
        return None

    return verify


def locate_idx_file(
    dataset: IDXDataset, file: IDXFile, data_dir: str | Path | None = None, download: bool = True
) -> Path:
    """Path of one of ``dataset``'s files, downloading it if allowed and needed."""
    dirs = candidate_dirs(dataset, data_dir)
    found = _find_file(file, dirs)
    if found is not None:
        return found
    failures: list[str] = []
    target = _download_dir(dataset, data_dir) / file.name
    if download:
        failures = download_verified([m + file.name for m in dataset.mirrors], target, _verify_download(file))
        if target.is_file():
            return target
    looked = ", ".join(str(d) for d in dirs)
    tried = "; download failed: " + " | ".join(failures) if failures else "; downloading was disabled"
    raise DatasetNotFoundError(
        f"{dataset.name}: {file.name} not found (looked in {looked}{tried}). "
        f"Fix: put the standard files in <root>/{dataset.folder}/ and pass --data-dir <root> "
        f"or set {ENV_VAR}=<root>"
        + (f", or install Debian's {dataset.system_package}" if dataset.system_package else "")
    )


def load_idx_dataset(
    name: str, split: str, data_dir: str | Path | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Load an IDX dataset split.

    Args:
        name: one of :data:`~improved_gan.data.idx_files.IDX_DATASETS` (MNIST, Fashion-MNIST).
        split: ``"train"`` (60,000) or ``"test"`` (10,000).
        data_dir: a data root holding ``<name>/`` with the standard file names.
        download: allow a download from the canonical mirrors when no local copy is found.

    Returns:
        ``(images, labels)``: uint8 array of shape (N, 28, 28) and int64 array of shape (N,).
    """
    if name not in IDX_DATASETS:
        raise ImprovedGANError(f"unknown dataset {name!r}; choose one of {sorted(IDX_DATASETS)}")
    dataset = IDX_DATASETS[name]
    if split not in dataset.splits:
        raise ImprovedGANError(f"unknown split {split!r} for {name}; choose one of {sorted(dataset.splits)}")
    image_file, label_file, count = dataset.splits[split]
    image_path = locate_idx_file(dataset, image_file, data_dir, download)
    label_path = locate_idx_file(dataset, label_file, data_dir, download)
    images = parse_idx(read_idx_bytes(image_path), str(image_path))
    labels = parse_idx(read_idx_bytes(label_path), str(label_path))
    if images.dtype != np.uint8 or images.shape[1:] != dataset.image_shape:
        raise IDXFormatError(
            f"{image_path}: expected uint8 images of shape (N, {', '.join(map(str, dataset.image_shape))}), "
            f"got {images.dtype} {images.shape}; the file is from another dataset, replace it"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise IDXFormatError(
            f"{label_path}: expected a 1-D uint8 label file, got {labels.dtype} {labels.shape}"
        )
    if len(images) != count or len(labels) != count:
        raise IDXFormatError(
            f"{name} {split}: expected {count} images and labels, found {len(images)} in {image_path} and "
            f"{len(labels)} in {label_path}; the files are incomplete or from another dataset"
        )
    if labels.size and int(labels.max()) >= dataset.num_classes:
        raise IDXFormatError(
            f"{label_path}: label {int(labels.max())} is out of range 0..{dataset.num_classes - 1}; "
            "the file is corrupt or from another dataset"
        )
    return images, labels.astype(np.int64)
