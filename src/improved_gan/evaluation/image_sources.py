"""Image sources for the visual Turing test: folders, ``.npz`` files, datasets and training runs.

Every source becomes a uint8 array of shape (N, H, W) (grayscale) or (N, H, W, 3) (colour), and
every image is re-encoded from its pixels into one PNG format (:func:`encode_png`), so nothing but
the pixels (no file name, metadata, colour profile or compression choice) can tell real from fake.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from improved_gan.errors import ImprovedGANError

DATASETS = ("mnist", "fashion-mnist")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class ImageSet:
    """Images of one source: ``images`` uint8 (N, H, W) or (N, H, W, 3); ``scores`` (N,) or None."""

    name: str
    origin: str
    images: np.ndarray
    scores: np.ndarray | None = None
    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        if self.indices.size == 0:
            self.indices = np.arange(len(self.images), dtype=np.int64)


def as_uint8_images(array: np.ndarray, origin: str) -> np.ndarray:
    """Check and normalise an image array to uint8 (N, H, W) or (N, H, W, 3)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ImprovedGANError(
            f"{origin}: images must be uint8 (0..255), got {array.dtype}; convert them first"
        )
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 4 and array.shape[-1] == 4:
        array = array[..., :3]
    if not (array.ndim == 3 or (array.ndim == 4 and array.shape[-1] == 3)):
        raise ImprovedGANError(
            f"{origin}: images must have shape N×H×W or N×H×W×C with C in 1, 3, 4; got {array.shape}"
        )
    if len(array) == 0:
        raise ImprovedGANError(f"{origin}: holds no images")
    return np.ascontiguousarray(array)


def load_folder(path: Path) -> np.ndarray:
    """All PNG/JPEG images directly in ``path``, sorted by name, as one uint8 array."""
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ImprovedGANError(f"{path}: no .png/.jpg images in this folder")
    pictures = []
    for file in files:
        try:
            with Image.open(file) as im:
                im.load()
                pictures.append(im.convert("RGB") if im.mode not in ("L", "RGB") else im.copy())
        except OSError as exc:
            raise ImprovedGANError(
                f"{file}: not a readable image ({exc}); remove it from the folder"
            ) from exc
    sizes = {im.size for im in pictures}
    if len(sizes) != 1:
        raise ImprovedGANError(f"{path}: images have different sizes {sorted(sizes)}; use one size per study")
    colour = any(im.mode == "RGB" for im in pictures)
    arrays = [np.asarray(im.convert("RGB") if colour else im, dtype=np.uint8) for im in pictures]
    return np.stack(arrays)


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``images`` (uint8) and optional ``scores`` (one float per image) from an ``.npz`` file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "images" not in data.files:
                raise ImprovedGANError(
                    f"{path}: no array named 'images' (found {data.files}); save with "
                    "np.savez(path, images=uint8_array)"
                )
            images = as_uint8_images(data["images"], str(path))
            scores = np.asarray(data["scores"], dtype=np.float64) if "scores" in data.files else None
    except (OSError, ValueError) as exc:
        raise ImprovedGANError(f"{path}: not a readable .npz file ({exc})") from exc
    if scores is not None and scores.shape != (len(images),):
        raise ImprovedGANError(f"{path}: 'scores' must have shape ({len(images)},), got {scores.shape}")
    return images, scores


def is_run_dir(path: Path) -> bool:
    """A training run directory (``config.yaml`` or ``checkpoints/``) rather than a folder of images."""
    return path.is_dir() and ((path / "config.yaml").is_file() or (path / "checkpoints").is_dir())


def parse_fake_spec(spec: str) -> tuple[str, str]:
    """``NAME=PATH`` or ``PATH`` -> (name, path); the default name is the folder or file stem."""
    if "=" in spec and not Path(spec).exists():
        name, _, path = spec.partition("=")
        if not _NAME.match(name):
            raise ImprovedGANError(f"--fake {spec!r}: model names use letters, digits, '_', '.', '-'")
        return name, path
    path = Path(spec)
    name = path.stem if path.suffix == ".npz" else path.resolve().name
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:64] or "model"
    return name, spec


def load_source(spec: str, name: str, count: int, seed: int, fake: bool) -> ImageSet:
    """Load up to ``count`` images of one source (a random subset, fixed by ``seed``).

    ``spec`` is a folder of images, an ``.npz`` (``images``, optional ``scores``), a dataset name
    (``mnist``, ``fashion-mnist``: their test split) or, for fakes, a training run directory.
    """
    if count <= 0:
        raise ImprovedGANError(f"the number of images per source must be positive, got {count}")
    path = Path(spec)
    scores = None
    if not fake and spec in DATASETS and not path.exists():
        from improved_gan.data import load_idx_dataset

        images, _ = load_idx_dataset(spec, split="test")
        images = as_uint8_images(images, spec)
    elif path.is_file() and path.suffix == ".npz":
        images, scores = load_npz(path)
    elif fake and is_run_dir(path):
        from improved_gan.training import sample_from_run

        return ImageSet(name, spec, as_uint8_images(sample_from_run(path, count, seed), spec))
    elif path.is_dir():
        images = load_folder(path)
    else:
        what = (
            "a folder of images, an .npz file or a training run directory"
            if fake
            else (f"a folder of images, an .npz file or one of {', '.join(DATASETS)}")
        )
        raise ImprovedGANError(f"{'--fake' if fake else '--real'} {spec!r} is not {what}")
    indices = np.arange(len(images))
    if len(images) > count:
        indices = np.sort(np.random.default_rng(seed).choice(len(images), size=count, replace=False))
    return ImageSet(name, spec, images[indices], None if scores is None else scores[indices], indices)


def harmonise(sets: Sequence[ImageSet]) -> list[ImageSet]:
    """Give every set the same image size and mode: colour for all if any set is colour.

    Sizes must already agree: resizing one side would leave traces that give the answer away.
    """
    shapes = {s.name: s.images.shape[1:3] for s in sets}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{n}: {h}×{w}" for n, (h, w) in shapes.items())
        raise ImprovedGANError(
            f"real and generated images must have the same size ({listed}); give sources of one size"
        )
    colour = any(s.images.ndim == 4 for s in sets)
    out = []
    for s in sets:
        images = s.images
        if colour and images.ndim == 3:
            images = np.repeat(images[..., None], 3, axis=-1)
        out.append(ImageSet(s.name, s.origin, np.ascontiguousarray(images), s.scores, s.indices))
    return out


def encode_png(pixels: np.ndarray) -> bytes:
    """One uint8 image (H, W) or (H, W, 3) as a PNG with no metadata: the bytes depend on the pixels
    only, whatever the image's source."""
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()
