"""utils.atomic: a replaced file is the old one or the new one, and no temporary file is left."""

from __future__ import annotations

import pytest

import improved_gan.utils.atomic as atomic


def test_text_and_bytes_replace_the_file_and_leave_no_temporary(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("old")
    assert atomic.write_atomically(path, "näw\n") == path and path.read_bytes() == "näw\n".encode()
    atomic.write_atomically(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01" and sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]


def test_a_failed_rename_keeps_the_old_file_and_removes_the_temporary(tmp_path, monkeypatch):
    path = tmp_path / "a.csv"
    path.write_text("old")

    def full_disk(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        atomic.write_atomically(path, "new", tmp_path / "a.csv.tmp")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]
