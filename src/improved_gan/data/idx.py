"""Reader for the IDX format of MNIST and Fashion-MNIST (raw or gzip-compressed).

An IDX file is a 4-byte magic number ``0x00 0x00 <dtype code> <ndim>``, then ``ndim`` big-endian
uint32 dimension sizes, then the array in C order. Every malformed file raises
:class:`IDXFormatError` with a one-line reason, never a crash deep inside numpy.
"""

from __future__ import annotations

import gzip
import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from improved_gan.data.checks import brief, mib
from improved_gan.errors import ImprovedGANError

_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
#: The largest IDX file read (decompressed): MNIST's training images are 47 MB.
MAX_IDX_BYTES = 256 << 20
MAX_NDIM = 8


class IDXFormatError(ImprovedGANError):
    """The file is not a valid IDX file (bad magic, truncated, wrong size)."""


def _gunzip(raw: bytes, path: Path) -> bytes:
    """Decompress at most :data:`MAX_IDX_BYTES` (a gzip bomb is refused, not expanded)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            data = f.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise IDXFormatError(
            f"{path} is a corrupt or truncated gzip file ({brief(exc)}); delete it and download it again"
        ) from None
    if len(data) > MAX_IDX_BYTES:
        raise IDXFormatError(
            f"{path} decompresses to more than {mib(MAX_IDX_BYTES)}, far more than any MNIST file; "
            "it is not an IDX dataset file, delete it and download it again"
        )
    return data


def read_idx_bytes(path: str | Path) -> bytes:
    """The decompressed bytes of an IDX file (``.gz`` by suffix or by its gzip magic)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_IDX_BYTES:
            raise IDXFormatError(
                f"{path} is {size:,} bytes, more than {mib(MAX_IDX_BYTES)}; it is not an IDX dataset file"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise IDXFormatError(f"cannot read {path}: {exc.strerror or brief(exc)}") from None
    if raw[:2] == b"\x1f\x8b":
        return _gunzip(raw, path)
    if path.suffix == ".gz":
        raise IDXFormatError(f"{path} is named .gz but is not gzip data; delete it and download it again")
    return raw


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX ``data`` into a numpy array of its declared dtype (native byte order) and shape."""
    if len(data) < 4:
        raise IDXFormatError(f"{name}: only {len(data)} bytes, too short for an IDX header")
    zero, code, ndim = data[:2], data[2], data[3]
    if zero != b"\x00\x00" or code not in _DTYPES or ndim == 0:
        raise IDXFormatError(
            f"{name}: bad IDX magic number {data[:4].hex()} (expected 0000 08 01 or 0000 08 03 for MNIST); "
            "this is not an IDX file"
        )
    if ndim > MAX_NDIM:
        raise IDXFormatError(
            f"{name}: the header declares {ndim} dimensions (at most {MAX_NDIM}); it is corrupt"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError(f"{name}: truncated IDX header ({len(data)} bytes, {header} needed)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _DTYPES[code]
    expected = header + math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if expected > MAX_IDX_BYTES:
        raise IDXFormatError(
            f"{name}: the header declares shape {shape} ({expected:,} bytes, more than {mib(MAX_IDX_BYTES)}); "
            "the header is corrupt, delete the file and download it again"
        )
    if len(data) != expected:
        raise IDXFormatError(
            f"{name}: the header declares shape {shape} ({expected:,} bytes) but the file has {len(data):,} bytes; "
            "it is truncated or corrupt, delete it and download it again"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a numpy array."""
    return parse_idx(read_idx_bytes(path), name=str(path))
