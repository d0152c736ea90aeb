"""The ``improved-gan`` command: a thin layer over the library's public functions.

Each command group is a module of this package with a ``register(subparsers)`` function that
wraps public functions of the library (``train``, ``score``, ``turing``, ``analyze``); this file
only collects them and turns :class:`ImprovedGANError` into a one-line error. The commands import
the library inside their functions, so ``improved-gan --help`` starts without loading torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from improved_gan import __version__
from improved_gan.errors import ImprovedGANError

# Modules that add sub-commands; each defines ``register(subparsers) -> None``.
COMMAND_MODULES: list[str] = [
    "improved_gan.cli.train",
    "improved_gan.cli.analyze",
    "improved_gan.cli.turing",
    "improved_gan.cli.score",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="improved-gan",
        description="Improved Techniques for Training GANs (Salimans et al. 2016), in PyTorch.",
    )
    parser.add_argument("--version", action="version", version=f"improved-gan {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except ImprovedGANError as exc:
        print(f"improved-gan: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("improved-gan: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)
