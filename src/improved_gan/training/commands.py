"""CLI verbs for training: placeholder, filled in by the foundation work."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:  # noqa: ARG001
    return None
