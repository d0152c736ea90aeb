"""Images as the package passes them around: uint8 arrays, their layouts, files and grids.

The one place that converts floats to uint8 (``round((x − lo)/(hi − lo)·255)``, clamped), that
reads image folders and ``.npz`` files, and that tiles sample grids. Layouts: *samples* are
(N, H, W) grey or (N, H, W, 3) colour (what PIL and the Turing test show); *batches* for
feature extractors are (N, C, H, W).
"""

from __future__ import annotations

import math
import struct
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from improved_gan.errors import ImprovedGANError

ValueRange = Literal["auto", "-1,1", "0,1"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
GREY_MODES = ("L", "1", "I;16", "I")
_TOL = 1e-3


def float_to_uint8(x: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Floats in ``value_range`` -> uint8 by rounding ``(x − lo)/(hi − lo)·255`` (clamped to [0, 255])."""
    lo, hi = value_range
    x = ((x.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    return (x * 255).round().to(torch.uint8)


def to_uint8_images(x: torch.Tensor, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Generator output -> uint8 samples: (N, C, H, W) colour -> (N, H, W, 3); (N, 1, H, W),
    (N, H, W) or flat square (N, H·W) grey -> (N, H, W)."""
    if x.dim() == 4 and x.shape[1] == 3:
        return float_to_uint8(x, value_range).permute(0, 2, 3, 1).numpy()
    return float_to_uint8(to_nchw(x), value_range)[:, 0].numpy()


def to_nchw(t: torch.Tensor) -> torch.Tensor:
    """Any accepted image layout -> (N, C, H, W): (N, H·W) square grey, (N, H, W), (N, C, H, W)
    or (N, H, W, C) with C ∈ {1, 3}."""
    if t.dim() == 2:
        side = math.isqrt(t.shape[1])
        if side * side != t.shape[1]:
            raise ImprovedGANError(
                f"flat images of {t.shape[1]} values are not square grey images; reshape to (N, C, H, W)"
            )
        return t.reshape(t.shape[0], 1, side, side)
    if t.dim() == 3:
        return t.unsqueeze(1)
    if t.dim() == 4:
        if t.shape[1] in (1, 3):
            return t
        if t.shape[3] in (1, 3):
            return t.permute(0, 3, 1, 2)
    raise ImprovedGANError(
        f"cannot read images of shape {tuple(t.shape)}; expected (N, H, W), (N, C, H, W) or (N, H, W, C) with C 1 or 3"
    )


def to_uint8_nchw(images, value_range: ValueRange = "auto") -> torch.Tensor:
    """Images as uint8 (N, C, H, W).

    uint8 input is kept as is (integer dtypes must lie in [0, 255]). Float input is mapped from
    ``value_range``; with ``"auto"``, a minimum below 0 means [−1, 1], otherwise [0, 1]; values
    outside the range by more than 1e-3 are an error. Auto-detection misreads a [−1, 1] batch
    whose values are all ≥ 0 (e.g. all-white images) as [0, 1]: pass ``value_range`` when you
    know it (generators with ``tanh`` output: ``"-1,1"``).
    """
    t = (
        images if torch.is_tensor(images) else torch.from_numpy(np.array(images))
    )  # a copy: memmaps are read-only
    t = to_nchw(t.detach().cpu())
    if t.dtype == torch.uint8:
        return t.contiguous()
    if t.dtype == torch.bool or not (
        t.is_floating_point() or t.dtype in (torch.int16, torch.int32, torch.int64)
    ):
        raise ImprovedGANError(f"unsupported image dtype {t.dtype}; give uint8 or float images")
    if not t.is_floating_point():
        if t.numel() and (t.min() < 0 or t.max() > 255):
            raise ImprovedGANError("integer images must lie in [0, 255]")
        return t.to(torch.uint8).contiguous()
    t = t.float()
    if t.numel() and not torch.isfinite(t).all():
        raise ImprovedGANError("images contain NaN or infinite values")
    lo_v, hi_v = (float(t.min()), float(t.max())) if t.numel() else (0.0, 1.0)
    if value_range == "auto":
        value_range = "-1,1" if lo_v < 0 else "0,1"
    lo, hi = {"-1,1": (-1.0, 1.0), "0,1": (0.0, 1.0)}[value_range]
    if lo_v < lo - _TOL or hi_v > hi + _TOL:
        raise ImprovedGANError(
            f"float images span [{lo_v:.3g}, {hi_v:.3g}], outside [{lo:g}, {hi:g}]; give uint8 images, "
            "or floats in [-1, 1] or [0, 1]"
        )
    return float_to_uint8(t, (lo, hi)).contiguous()


def as_uint8_samples(array: np.ndarray, origin: str) -> np.ndarray:
    """Check and normalise a uint8 image array to samples: (N, H, W) or (N, H, W, 3)."""
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


# Images larger than this (width × height) are refused before decoding: a few-KB PNG can declare
# gigapixels ("decompression bomb"). 64 Mpx is 8192², far above any GAN's input.
MAX_IMAGE_PIXELS = 64 * 1024 * 1024


def open_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Open an image file lazily (headers only), refusing missing files, non-files (a pipe would
    block), unreadable files and decompression bombs with an :class:`ImprovedGANError` that names
    the file. Decode errors can still surface on ``convert``/``load``: see :func:`decode_image`."""
    path = Path(path)
    if not path.is_file():
        what = "is not a regular file" if path.exists() else "does not exist"
        raise ImprovedGANError(f"{_shown(path)} {what}; pass a PNG, JPEG or BMP file")
    try:
        img = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ImprovedGANError(
            f"{_shown(path)}: refused, the image declares too many pixels ({_brief(exc)})"
        ) from None
    except Exception as exc:  # PIL's plugins raise OSError, ValueError, SyntaxError, struct.error, ...
        raise ImprovedGANError(
            f"{_shown(path)}: not a readable image ({_brief(exc)}); remove it or replace it with a PNG, JPEG or BMP"
        ) from None
    w, h = img.size
    if w * h > max_pixels:
        img.close()
        raise ImprovedGANError(
            f"{_shown(path)}: refused, {w}×{h} pixels is above the {max_pixels:,}-pixel limit "
            "(a decompression bomb or a wrong file); resize it"
        )
    return img


def decode_image(path: str | Path, mode: str, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """One image file decoded to uint8 in PIL ``mode`` ("L" or "RGB"), or a one-line
    :class:`ImprovedGANError` naming the file (unreadable, truncated, or a decompression bomb)."""
    with open_image(path, max_pixels) as img:
        try:
            return np.asarray(img.convert(mode), dtype=np.uint8)
        except Exception as exc:  # truncated or corrupt data: PIL raises many types while decoding
            raise ImprovedGANError(
                f"{_shown(path)}: the image cannot be decoded ({_brief(exc)}); remove it or re-save it"
            ) from None


def _shown(path: Path) -> str:
    text = str(path)
    return text if text.isprintable() else ascii(text)


def _brief(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


class ImageFolder:
    """The images directly in a folder (PNG, JPEG, BMP; sorted by name, not recursive), all of
    one size, read one at a time. ``grey`` is True when every image is grey (modes L, 1, I;16,
    I); otherwise every image is read as RGB. Opening reads only the files' headers."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ImprovedGANError(f"{_shown(self.folder)} is not a folder of images; pass a folder")
        try:
            entries = list(self.folder.iterdir())
        except OSError as exc:
            raise ImprovedGANError(
                f"cannot list {_shown(self.folder)}: {exc.strerror or _brief(exc)}"
            ) from None
        self.files = sorted(p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise ImprovedGANError(f"{self.folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        sizes, grey = set(), True
        for path in self.files:
            with self._open(path) as img:
                sizes.add(img.size)
                grey = grey and img.mode in GREY_MODES
        if len(sizes) != 1:
            raise ImprovedGANError(
                f"{self.folder}: images have different sizes {sorted(sizes)}; use images of one size"
            )
        self.grey, self.size = grey, sizes.pop()

    @staticmethod
    def _open(path: Path) -> Image.Image:
        return open_image(path)

    def __len__(self) -> int:
        return len(self.files)

    def read(self, path: Path) -> np.ndarray:
        """One image as uint8 (H, W) when the folder is grey, else (H, W, 3)."""
        return decode_image(path, "L" if self.grey else "RGB")

    def samples(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Images ``start:stop`` as uint8 samples (N, H, W) or (N, H, W, 3)."""
        return np.stack([self.read(p) for p in self.files[start:stop]])


# The largest array an .npz may hold (uncompressed): 50,000 ImageNet images at 128² are 2.4 GB.
MAX_NPZ_BYTES = 8 << 30
#: What numpy's format reader and zipfile raise on bad bytes (a header that does not parse, a
#: truncated member, a bad CRC, an encrypted or unsupported member, a declared size beyond memory).
NPZ_READ_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    KeyError,
    TypeError,
    IndexError,
    OverflowError,
    MemoryError,
    SyntaxError,
    NotImplementedError,
    RuntimeError,
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    tokenize.TokenError,  # numpy tokenizes the .npy header
)


def _npy_declared_bytes(archive: zipfile.ZipFile, member: str) -> int | None:
    """The data size an .npy member's header declares (None: the member is not an .npy)."""
    with archive.open(member) as f:
        if f.read(6) != b"\x93NUMPY":
            return None
        f.seek(0)
        version = np.lib.format.read_magic(f)
        read = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read(f)
    return math.prod(shape) * dtype.itemsize


def _npz_array(data: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    """One array of an open .npz, its declared size checked first (a zip bomb is not expanded)."""
    member = f"{key}.npy" if f"{key}.npy" in data.zip.namelist() else key
    size = data.zip.getinfo(member).file_size
    declared = _npy_declared_bytes(data.zip, member)
    if declared is not None and declared > size:
        raise ImprovedGANError(
            f"{_shown(path)}: {key!r} declares {declared:,} bytes of data but holds {size:,}; the file is "
            "corrupt, save it again"
        )
    if size > MAX_NPZ_BYTES:
        raise ImprovedGANError(
            f"{_shown(path)}: {key!r} is {size:,} bytes uncompressed, above the {MAX_NPZ_BYTES >> 30} GiB "
            "limit; save fewer or smaller images"
        )
    array = data[key]
    if not isinstance(array, np.ndarray):
        raise ImprovedGANError(f"{_shown(path)}: {key!r} is not a numpy array; save it with np.savez")
    return array


def _npz_contents(data: np.lib.npyio.NpzFile, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    if "mu" in data.files and "sigma" in data.files:
        raise ImprovedGANError(
            f"{_shown(path)} holds feature statistics (mu, sigma), not images; use it as --reference for FID"
        )
    names = [k for k in ("images", "x", "arr_0") if k in data.files]
    if not names and len(data.files) == 1:
        names = data.files
    if not names:
        raise ImprovedGANError(
            f"{_shown(path)} has arrays {data.files} and none named 'images'; "
            "save them as np.savez(path, images=uint8_array)"
        )
    images = _npz_array(data, names[0], path)
    scores = None
    if "scores" in data.files:
        scores = np.asarray(_npz_array(data, "scores", path), dtype=np.float64)
    return images, scores


def read_npz_images(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``(images, scores or None)`` of an ``.npz``: the array ``images``, ``x`` or ``arr_0`` (or
    its only array), and the optional ``scores`` (one float per image). A file that is not an
    ``.npz`` (truncated, garbage, a pickle, a bare ``.npy``) is a one-line :class:`ImprovedGANError`."""
    path = Path(path)
    if not path.is_file():
        what = "is not a regular file" if path.exists() else "does not exist"
        raise ImprovedGANError(f"{_shown(path)} {what}; pass an .npz file")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):  # a bare .npy array
            raise ImprovedGANError(
                f"{_shown(path)} is a .npy array, not an .npz archive; save images as "
                "np.savez(path, images=uint8_array)"
            )
        with data:
            images, scores = _npz_contents(data, path)
    except NPZ_READ_ERRORS as exc:
        raise ImprovedGANError(f"{_shown(path)}: not a readable .npz file ({_brief(exc)})") from None
    if scores is not None and scores.shape != (len(images),):
        raise ImprovedGANError(
            f"{_shown(path)}: 'scores' must have shape ({len(images)},), got {scores.shape}"
        )
    return images, scores


#: Sample grids are enlarged (nearest neighbour, whole factors) to about this many pixels a side.
GRID_TARGET_SIDE = 640


def tile_images(
    images: np.ndarray, rows: int | None = None, pad: int = 1, scale: int | None = None
) -> np.ndarray:
    """Tile uint8 images (N, H, W) or (N, H, W, 3) into one grid (``rows`` × ceil(N/rows)) on a
    white background; ``scale`` enlarges it by pixel repetition (default: a whole factor that
    brings it near :data:`GRID_TARGET_SIDE`, so a 10×10 grid of 28 px digits is 582 px, not 291)."""
    n, h, w = images.shape[:3]
    rows = rows or int(np.ceil(np.sqrt(n)))
    cols = int(np.ceil(n / rows))
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, *images.shape[3:]), 255, dtype=np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = (
            img
        )
    if scale is None:
        scale = max(1, round(GRID_TARGET_SIDE / max(grid.shape[:2])))
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    return grid


def save_grid(
    images: np.ndarray, path: str | Path, rows: int | None = None, pad: int = 1, scale: int | None = None
) -> Path:
    """:func:`tile_images` written as one PNG."""
    grid = tile_images(images, rows, pad, scale)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)
    return path
