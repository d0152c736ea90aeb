"""Replacing a file atomically: write a temporary file beside it, fsync, then rename it over the
old one, so a reader (or a kill) sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: str | Path, data: str | bytes, tmp: Path | None = None) -> Path:
    """Replace ``path`` by ``data`` (text is UTF-8) via ``tmp`` (default a hidden
    ``.<name>.<pid>.tmp`` beside it), removed again if anything fails. OSError propagates."""
    path = Path(path)
    tmp = tmp or path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with open(tmp, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
