"""An ImageNet-style image folder: ``<root>/imagefolder/<split>/<class>/<image files>``
(openai/improved-gan `imagenet/train_imagenet.py`).

Classes are the sorted sub-folder names (label = index). Each image is converted to RGB (grey
images are colourised by repeating the channel), centre-cropped to its shortest side and resized
to ``image_size`` (128 for the ImageNet experiment) with bilinear interpolation, as the
reference's ``convert_imagenet_to_records.py`` did with scipy's ``imresize``. The test split is
the ``test/`` folder, or ``val/`` (ImageNet's name) if there is no ``test/``. Point ``imagefolder``
at ImageNet with a symlink: ``ln -s /data/ILSVRC2012 <root>/imagefolder``.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np

from improved_gan.data.datasets import DatasetNotFoundError, default_cache_root
from improved_gan.data.files import FileDataset, find_in_roots
from improved_gan.errors import ImprovedGANError

IMAGEFOLDER = FileDataset(name="imagefolder", folder="imagefolder")
EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff"}
SPLIT_FOLDERS = {"train": ("train",), "test": ("test", "val")}


class ImageFolderError(ImprovedGANError):
    """The folder has no class sub-folders, or an image cannot be decoded."""


def center_crop_resize(image, size: int) -> np.ndarray:
    """A PIL image -> uint8 (3, size, size): RGB, centre crop to the shortest side, bilinear resize."""
    from PIL import Image

    image = image.convert("RGB")
    w, h = image.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    image = image.crop((left, top, left + s, top + s)).resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()


def list_image_folder(folder: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """(image paths, int64 labels, class names) of a ``<class>/<image>`` folder, sorted."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise ImageFolderError(f"{folder}: no class sub-folders (expected <class>/<image files>)")
    paths: list[Path] = []
    labels: list[int] = []
    for k, name in enumerate(classes):
        files = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in EXTENSIONS)
        paths.extend(files)
        labels.extend([k] * len(files))
    if not paths:
        raise ImageFolderError(
            f"{folder}: the class folders hold no images ({', '.join(sorted(EXTENSIONS))})"
        )
    return paths, np.asarray(labels, dtype=np.int64), classes


def read_image_folder(
    folder: str | Path, image_size: int = 128, max_examples: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """All images of ``folder`` as uint8 (N, 3, image_size, image_size) and int64 labels (N,).

    With ``max_examples``, the first N images in a seeded shuffle (so every class can appear)."""
    from PIL import Image, UnidentifiedImageError

    paths, labels, _ = list_image_folder(Path(folder))
    order = np.arange(len(paths))
    if max_examples is not None and max_examples < len(paths):
        order = np.sort(np.random.default_rng(0).permutation(len(paths))[:max_examples])
    out = np.empty((len(order), 3, image_size, image_size), dtype=np.uint8)
    for i, j in enumerate(order):
        try:
            with Image.open(paths[j]) as image:
                out[i] = center_crop_resize(image, image_size)
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise ImageFolderError(f"{paths[j]}: cannot decode the image ({exc})") from None
    return out, labels[order]


def _cache_path(folder: Path, image_size: int, max_examples: int | None, paths: list[Path]) -> Path:
    digest = hashlib.sha256(f"{folder.resolve()}|{image_size}|{max_examples}".encode())
    for p in paths:  # names, sizes and modification times: any changed file gives a new key
        st = p.stat()
        digest.update(f"\n{p.relative_to(folder)}|{st.st_size}|{st.st_mtime_ns}".encode())
    digest = digest.hexdigest()[:16]
    return default_cache_root() / "imagefolder" / f"{folder.name}-{image_size}px-{digest}.npz"


def cached_read_image_folder(
    folder: Path, image_size: int = 128, max_examples: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`read_image_folder`, with the decoded arrays kept in the user cache
    (``~/.cache/improved_gan/data/imagefolder/``), keyed by the folder, size, limit and every
    file's name, size and modification time, so that later runs skip decoding (the reference
    also converted ImageNet once, to a TFRecord)."""
    paths, _, _ = list_image_folder(folder)
    cache = _cache_path(folder, image_size, max_examples, paths)
    if cache.is_file():
        try:
            with np.load(cache) as data:
                return data["images"], data["labels"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            cache.unlink(missing_ok=True)  # a broken cache is rebuilt
    images, labels = read_image_folder(folder, image_size, max_examples)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, images=images, labels=labels)
        os.replace(tmp, cache)
    except OSError:
        pass  # no cache (read-only home, full disk): decode again next time
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
