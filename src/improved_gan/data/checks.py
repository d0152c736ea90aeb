"""Small helpers for the checks at the data boundary and their one-line refusals: an exception
as a short reason, a path as a message shows it, sizes in MiB, integer tests."""

from __future__ import annotations

import numpy as np

MAX_REASON = 200


def brief(exc: BaseException) -> str:
    """``exc`` as ``Type: text`` on one line (whitespace collapsed, at most 200 characters)."""
    text = " ".join(str(exc).split())
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def mib(n: int) -> str:
    """A byte count in MiB, for size limits in messages."""
    return f"{n / (1 << 20):,.0f} MiB"


def shown(value: object) -> str:
    """A path or name as a message shows it: as is, or quoted with escapes when it holds
    characters (a newline, a NUL) that would break the one-line message."""
    text = str(value)
    return text if text.isprintable() else ascii(text)


def is_int(value: object) -> bool:
    """A Python or numpy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
