"""An ImageNet-style image folder: ``<root>/imagefolder/<split>/<class>/<image files>``
(openai/improved-gan `imagenet/train_imagenet.py`).

Classes are the sorted sub-folder names (label = index). Each image is decoded with
:func:`improved_gan.utils.images.decode_image` (unreadable files and decompression bombs are a
one-line :class:`ImageFolderError`), converted to RGB (grey images are colourised by repeating
the channel), centre-cropped to its shortest side and resized
to ``image_size`` (128 for the ImageNet experiment) with bilinear interpolation, as the
reference's ``convert_imagenet_to_records.py`` did with scipy's ``imresize``. The test split is
the ``test/`` folder, or ``val/`` (ImageNet's name) if there is no ``test/``. Point ``imagefolder``
at ImageNet with a symlink: ``ln -s /data/ILSVRC2012 <root>/imagefolder``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from improved_gan.data.checks import brief, is_int, shown
from improved_gan.data.datasets import DatasetNotFoundError, default_cache_root
from improved_gan.data.files import FileDataset, find_in_roots
from improved_gan.errors import ImprovedGANError
from improved_gan.utils.images import NPZ_READ_ERRORS, decode_image

IMAGEFOLDER = FileDataset(name="imagefolder", folder="imagefolder")
EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff"}
SPLIT_FOLDERS = {"train": ("train",), "test": ("test", "val")}
MAX_IMAGE_SIZE = 1024
_CACHE_ERRORS = NPZ_READ_ERRORS  # a broken cache file is rebuilt, whatever numpy or zipfile make of it


class ImageFolderError(ImprovedGANError):
    """The folder has no class sub-folders, or an image cannot be decoded."""


def center_crop_resize(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> uint8 (3, size, size): centre crop to the shortest side, bilinear resize."""
    from PIL import Image

    h, w = image.shape[:2]
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    square = Image.fromarray(image).crop((left, top, left + s, top + s))
    return np.asarray(square.resize((size, size), Image.BILINEAR), dtype=np.uint8).transpose(2, 0, 1).copy()


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        raise ImageFolderError(f"cannot list {shown(folder)}: {exc.strerror or brief(exc)}") from None


def list_image_folder(folder: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """(image paths, int64 labels, class names) of a ``<class>/<image>`` folder, sorted. Only
    regular files with an image suffix count (a pipe or device named ``x.png`` is never read)."""
    classes = [p.name for p in _entries(folder) if p.is_dir()]
    if not classes:
        raise ImageFolderError(f"{shown(folder)}: no class sub-folders (expected <class>/<image files>)")
    paths: list[Path] = []
    labels: list[int] = []
    for k, name in enumerate(classes):
        files = [p for p in _entries(folder / name) if p.suffix.lower() in EXTENSIONS and p.is_file()]
        paths.extend(files)
        labels.extend([k] * len(files))
    if not paths:
        raise ImageFolderError(
            f"{shown(folder)}: the class folders hold no images ({', '.join(sorted(EXTENSIONS))})"
        )
    return paths, np.asarray(labels, dtype=np.int64), classes


def _check_sizes(image_size: int, max_examples: int | None) -> None:
    if not is_int(image_size) or not 1 <= image_size <= MAX_IMAGE_SIZE:
        raise ImprovedGANError(
            f"image size must be an integer in 1..{MAX_IMAGE_SIZE}, got {image_size!r}; ImageNet uses 128"
        )
    if max_examples is not None and (not is_int(max_examples) or max_examples < 0):
        raise ImprovedGANError(f"max_examples must be an integer >= 0 or None, got {max_examples!r}")


def decode_resized(path: Path, image_size: int) -> np.ndarray:
    """One image file -> uint8 (3, image_size, image_size); unreadable files, decode errors and
    decompression bombs are an :class:`ImageFolderError` naming the file."""
    try:
        rgb = decode_image(path, "RGB")
    except ImprovedGANError as exc:
        raise ImageFolderError(f"cannot decode an image of the folder: {exc}") from None
    return center_crop_resize(rgb, image_size)


def read_image_folder(
    folder: str | Path, image_size: int = 128, max_examples: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """All images of ``folder`` as uint8 (N, 3, image_size, image_size) and int64 labels (N,).

    With ``max_examples``, the first N images in a seeded shuffle (so every class can appear)."""
    _check_sizes(image_size, max_examples)
    paths, labels, _ = list_image_folder(Path(folder))
    order = np.arange(len(paths))
    if max_examples is not None and max_examples < len(paths):
        order = np.sort(np.random.default_rng(0).permutation(len(paths))[:max_examples])
    out = np.empty((len(order), 3, image_size, image_size), dtype=np.uint8)
    for i, j in enumerate(order):
        out[i] = decode_resized(paths[j], image_size)
    return out, labels[order]


def _cache_path(folder: Path, image_size: int, max_examples: int | None, paths: list[Path]) -> Path:
    digest = hashlib.sha256(f"{folder.resolve()}|{image_size}|{max_examples}".encode())
    for p in paths:  # names, sizes and modification times: any changed file gives a new key
        st = p.stat()
        digest.update(f"\n{p.relative_to(folder)}|{st.st_size}|{st.st_mtime_ns}".encode())
    digest = digest.hexdigest()[:16]
    return default_cache_root() / "imagefolder" / f"{folder.name}-{image_size}px-{digest}.npz"


def _read_cache(cache: Path, n: int, image_size: int, classes: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays if the file holds exactly what decoding would give (shape, dtype, label
    range); None for a missing, broken or tampered cache (it is then rebuilt)."""
    try:
        with np.load(cache, allow_pickle=False) as data:
            images, labels = data["images"], data["labels"]
    except _CACHE_ERRORS:
        return None
    ok = (
        images.dtype == np.uint8
        and images.shape == (n, 3, image_size, image_size)
        and labels.dtype == np.int64
        and labels.shape == (n,)
        and (n == 0 or (labels.min() >= 0 and labels.max() < classes))
    )
    return (images, labels) if ok else None


def _write_cache(cache: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write the cache atomically (a temporary file, then a rename); silently skipped when the
    cache folder is not writable (read-only home, full disk): decode again next time."""
    tmp = cache.with_name(f"{cache.stem}.{os.getpid()}.tmp.npz")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, images=images, labels=labels)
        os.replace(tmp, cache)
    except OSError:
        tmp.unlink(missing_ok=True)


def cached_read_image_folder(
    folder: Path, image_size: int = 128, max_examples: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`read_image_folder`, with the decoded arrays kept in the user cache
    (``~/.cache/improved_gan/data/imagefolder/``), keyed by the folder, size, limit and every
    file's name, size and modification time, so that later runs skip decoding (the reference
    also converted ImageNet once, to a TFRecord)."""
    _check_sizes(image_size, max_examples)
    paths, _, classes = list_image_folder(folder)
    cache = _cache_path(folder, image_size, max_examples, paths)
    n = len(paths) if max_examples is None else min(max_examples, len(paths))
    cached = _read_cache(cache, n, image_size, len(classes)) if cache.is_file() else None
    if cached is not None:
        return cached
    images, labels = read_image_folder(folder, image_size, max_examples)
    _write_cache(cache, images, labels)
    return images, labels


def load_image_folder(
    split: str, data_dir: str | Path | None = None, image_size: int = 128, max_examples: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``<root>/imagefolder/<split>`` (see the module docstring); nothing is downloaded. The
    decoded images are cached (:func:`cached_read_image_folder`)."""
    if split not in SPLIT_FOLDERS:
        raise ImprovedGANError(
            f"unknown split {split!r} for imagefolder; choose one of {sorted(SPLIT_FOLDERS)}"
        )
    found = find_in_roots(IMAGEFOLDER, SPLIT_FOLDERS[split], data_dir)
    if found is None or not found.is_dir():
        raise DatasetNotFoundError(
            f"imagefolder: no {' or '.join(SPLIT_FOLDERS[split])}/ folder under <root>/imagefolder/ "
            "(pass --data-dir <root> or set IMPROVED_GAN_DATA; ImageNet: ln -s /path/to/ILSVRC2012 <root>/imagefolder)"
        )
    return cached_read_image_folder(found, image_size, max_examples)
