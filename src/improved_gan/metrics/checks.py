"""Range checks of the numbers users pass to scoring and to the dataset classifiers, and the check
that an output file can be written, all before any work: each failure is one
:class:`ImprovedGANError` line naming the setting, the bad value and a good one. A ``name`` that
starts with ``--`` is a command-line flag (``--batch-size 100``), else a parameter
(``batch_size=100``)."""

from __future__ import annotations

import math
import numbers
import os
import tempfile
from pathlib import Path

from improved_gan.errors import ImprovedGANError

SEED_LIMIT = 2**32  # numpy.random.RandomState takes seeds in [0, 2**32)


def _example(name: str, value) -> str:
    return f"{name} {value}" if name.startswith("-") else f"{name}={value}"


def check_int(value, name: str, minimum: int = 1, example: int | None = None, maximum: int | None = None):
    """``value`` as an int in [minimum, maximum]; ``None`` passes through (the default applies)."""
    if value is None:
        return None
    bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    good = example if example is not None else minimum
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ImprovedGANError(
            f"{name} must be an integer {bounds}, got {value!r}; use e.g. {_example(name, good)}"
        )
    if value < minimum or (maximum is not None and value > maximum):
        raise ImprovedGANError(f"{name} must be {bounds}, got {value}; use e.g. {_example(name, good)}")
    return int(value)


def check_seed(value, name: str = "seed"):
    """A seed numpy's RandomState and torch both take: an integer in [0, 2**32 − 1]."""
    return check_int(value, name, 0, 0, SEED_LIMIT - 1)


def check_positive_float(value, name: str, example: float) -> float:
    """A finite float > 0 (a learning rate, say)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0:
        raise ImprovedGANError(
            f"{name} must be a finite number > 0, got {value!r}; use e.g. {_example(name, example)}"
        )
    return float(value)


def _nearest_existing(path: Path) -> Path:
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    return ancestor


def _can_create_in(folder: Path) -> bool:
    """Whether a file can really be made in ``folder`` (read-only mounts, ACLs): try one."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".improved-gan-probe.", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def check_output_file(path: str | Path, what: str, suffix: str | None = None) -> Path:
    """``path`` as a file that can be (re)written atomically: not a folder, a suffix of ``suffix``
    when given, and inside a folder that exists or can be made and is writable. ``what`` names
    the file in messages (e.g. ``"--save-reference"``)."""
    path = Path(path)
    if path.is_dir():
        raise ImprovedGANError(
            f"{what} {path} is a folder; give a file path such as {path / ('out' + (suffix or ''))}"
        )
    if path.exists() and not path.is_file():
        raise ImprovedGANError(f"{what} {path} exists and is not a regular file; choose another path")
    if suffix is not None and path.suffix.lower() != suffix:
        raise ImprovedGANError(f"{what} {path} must end in {suffix}; use e.g. {path.with_suffix(suffix)}")
    folder = _nearest_existing(path)
    if not folder.is_dir():
        raise ImprovedGANError(f"{what} {path}: {folder} is a file, not a folder; choose another path")
    if not os.access(folder, os.W_OK | os.X_OK) or not _can_create_in(folder):
        raise ImprovedGANError(f"{what} {path}: {folder} is not writable; choose a writable folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise ImprovedGANError(f"{what} {path} is read-only; make it writable or choose another path")
    return path
