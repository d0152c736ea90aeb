"""Words in messages and tables."""

from __future__ import annotations


def plural(n: object, word: str) -> str:
    """``1 epoch``, ``300 epochs`` (and ``? epochs`` for an unknown count)."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
