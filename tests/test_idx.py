import gzip

import numpy as np
import pytest
from conftest import idx_bytes, write_idx

from improved_gan.data import IDXFormatError, parse_idx, read_idx


def test_idx_roundtrip_raw_and_gzip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    raw = write_idx(tmp_path / "x-idx3-ubyte", images, compress=False)
    gz = write_idx(tmp_path / "x-idx3-ubyte.gz", images)
    np.testing.assert_array_equal(read_idx(raw), images)
    np.testing.assert_array_equal(read_idx(gz), images)
    assert read_idx(gz).dtype == np.uint8


def test_idx_reads_big_endian_int32_as_native():
    values = np.array([1, -2, 70000], dtype=">i4")
    data = b"\x00\x00\x0c\x01" + (3).to_bytes(4, "big") + values.tobytes()
    out = parse_idx(data)
    assert out.dtype == np.dtype("int32") and out.dtype.isnative
    np.testing.assert_array_equal(out, [1, -2, 70000])


def test_bad_magic_is_a_clear_error():
    data = bytearray(idx_bytes(np.zeros((2, 3), np.uint8)))
    data[0] = 0x12
    with pytest.raises(IDXFormatError, match="bad IDX magic"):
        parse_idx(bytes(data), "f")


@pytest.mark.parametrize("cut", [2, 7, 30])
def test_truncated_file_is_a_clear_error(cut):
    data = idx_bytes(np.zeros((4, 5, 5), np.uint8))[:-cut] if cut != 2 else b"\x00\x00"
    with pytest.raises(IDXFormatError, match="truncated|too short"):
        parse_idx(data, "f")


def test_trailing_bytes_are_rejected():
    data = idx_bytes(np.zeros((2, 2), np.uint8)) + b"\x00"
    with pytest.raises(IDXFormatError, match="header declares shape"):
        parse_idx(data, "f")


def test_corrupt_gzip_is_a_clear_error(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((10, 28, 28), np.uint8)))
    path = tmp_path / "t-idx3-ubyte.gz"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(IDXFormatError, match="corrupt or truncated gzip"):
        read_idx(path)


def test_gz_name_without_gzip_data_is_rejected(tmp_path):
    path = tmp_path / "t-idx3-ubyte.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(IDXFormatError, match="not gzip"):
        read_idx(path)
