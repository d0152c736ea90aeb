"""The ``improved-gan`` command: a thin layer over the library's public functions.

Each command group is a module of this package with a ``register(subparsers)`` function that
wraps public functions of the library (``train``, ``score``, ``turing``, ``analyze``, ``predict``); this file
only collects them and turns :class:`ImprovedGANError` into a one-line error. The commands import
the library inside their functions, so ``improved-gan --help`` starts without loading torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from improved_gan import __version__
from improved_gan.errors import ImprovedGANError

# Modules that add sub-commands; each defines ``register(subparsers) -> None``.
COMMAND_MODULES: list[str] = [
    "improved_gan.cli.train",
    "improved_gan.cli.analyze",
    "improved_gan.cli.turing",
    "improved_gan.cli.score",
    "improved_gan.cli.predict",
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


# Options whose values may start with "-" (``--value-range -1,1``), which argparse would take
# for an option: main() joins them to their value (``--value-range=-1,1``).
NEGATIVE_VALUE_OPTIONS = ("--value-range",)


def _join_negative_values(argv: list[str]) -> list[str]:
    out: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token in NEGATIVE_VALUE_OPTIONS:
            value = next(tokens, None)
            out.append(token if value is None else f"{token}={value}")
        else:
            out.append(token)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(sys.argv[1:] if argv is None else list(argv)))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except ImprovedGANError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("improved-gan: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `improved-gan presets | head`: the reader left; stop quietly, as Unix tools do
        _silence_stdout()
        return 0
    except MemoryError:
        return _fail("out of memory; use a smaller --set batch_size or fewer images, or free memory")
    except OSError as exc:
        # Disk full, read-only places, permissions: the OS names the problem and the path.
        return _fail(f"{_os_problem(exc)}; free space, fix the permissions or choose another path")
    except Exception as exc:  # noqa: BLE001 - the last net: a user never sees a traceback
        if os.environ.get(TRACEBACK_ENV):
            raise
        return _fail(
            f"internal error ({type(exc).__name__}: {_one_line(str(exc))}); this is a bug in "
            f"improved-gan: rerun with {TRACEBACK_ENV}=1 for the traceback and report it"
        )
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return int(result or 0)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a file (captured in tests): nothing to flush
        pass


# Set to show the traceback of an unexpected error instead of the one-line message.
TRACEBACK_ENV = "IMPROVED_GAN_TRACEBACK"


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _os_problem(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return _one_line(f"{exc.strerror or exc}{where}")


def _fail(message: str) -> int:
    print(f"improved-gan: error: {_one_line(message, 1000)}", file=sys.stderr)
    return 1
