"""Image sources for the visual Turing test: folders, ``.npz`` files, datasets and training runs.

Every source becomes a uint8 array of shape (N, H, W) (grayscale) or (N, H, W, 3) (colour), and
every image is re-encoded from its pixels into one PNG format of one length (:func:`encode_png`), so
nothing but the pixels (no file name, metadata, colour profile, compression or size) can tell real
from fake.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from improved_gan.data import CLASSIFIER_DATASETS, load_idx_dataset
from improved_gan.errors import ImprovedGANError
from improved_gan.training import RunDir, sample_from_run
from improved_gan.utils.images import ImageFolder, as_uint8_samples, read_npz_images

#: The datasets ``--real`` takes by name (their test split).
DATASETS = CLASSIFIER_DATASETS
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
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
        images, _ = load_idx_dataset(spec, split="test")
        images = as_uint8_samples(images, spec)
    elif path.is_file() and path.suffix == ".npz":
        images, scores = read_npz_images(path)
        images = as_uint8_samples(images, str(path))
    elif fake and RunDir.find(path) is not None:
        return ImageSet(name, spec, as_uint8_samples(sample_from_run(path, count, seed), spec))
    elif path.is_dir():
        images = ImageFolder(path).samples()
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
    """One uint8 image (H, W) or (H, W, 3) as a PNG with no metadata, stored uncompressed
    (zlib level 0, no filters): its length depends on the image's size and mode only, so the bytes
    served carry nothing but the pixels (a compressed size would tell noisy fakes from clean reals)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)) or 0 in pixels.shape:
        raise ImprovedGANError(f"cannot encode an image of shape {pixels.shape}; give (H, W) or (H, W, 3)")
    height, width = pixels.shape[:2]
    rows = np.zeros((height, 1 + pixels[0].size), dtype=np.uint8)  # filter byte 0 (none) per row
    rows[:, 1:] = pixels.reshape(height, -1)
    header = struct.pack(">IIBBBBB", width, height, 8, 0 if pixels.ndim == 2 else 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 0))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def decode_png(data: bytes, shape: Sequence[int]) -> np.ndarray:
    """A PNG stored in a study file as uint8 pixels of ``shape`` ((H, W) or (H, W, 3)); refuses any
    other size before decoding (so a crafted file cannot be a decompression bomb)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != "PNG" or img.size != (shape[1], shape[0]):
                raise ValueError(f"a {img.format} of {img.size[0]}×{img.size[1]} pixels")
            pixels = np.asarray(img.convert("L" if len(shape) == 2 else "RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImprovedGANError(
            f"a stored image is not a {shape[1]}×{shape[0]} PNG ({' '.join(str(exc).split())[:120]}); "
            "the study file is damaged: restore it from a copy or start a new --db"
        ) from None
    return pixels
