"""Download a file from a list of mirrors, verify it, and move it into place atomically."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm


def download_verified(
    urls: list[str],
    destination: Path,
    verify: Callable[[Path], str | None],
    timeout: float = 30.0,
) -> list[str]:
    """Try each URL in turn; keep the first download that ``verify`` accepts.

    ``verify(path)`` returns ``None`` when the file is good, else a reason. The file appears at
    ``destination`` only once verified (temp file + rename). Returns the failure reasons, one per
    URL tried (empty on success at the first mirror); raises nothing for network errors.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for url in urls:
        fd, tmp_name = tempfile.mkstemp(prefix=destination.name + ".", suffix=".part", dir=destination.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=destination.name, leave=False) as bar:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        bar.update(len(chunk))
            reason = verify(tmp)
            if reason is None:
                os.replace(tmp, destination)
                return failures
            failures.append(f"{url}: {reason}")
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            failures.append(f"{url}: {getattr(exc, 'reason', exc)}")
        finally:
            tmp.unlink(missing_ok=True)
    return failures


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
