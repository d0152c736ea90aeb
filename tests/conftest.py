"""Shared fixtures: tiny IDX files written in the real format, and a tiny training config."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX (magic 0x0000 08 ndim, big-endian dims, data)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    data = idx_bytes(array)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test reads the user's data env var or cache."""
    monkeypatch.delenv("IMPROVED_GAN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


#: The CLI's ``--set`` flags of :func:`tiny_config`'s size limits (no TensorBoard).
TINY_SETS = [
    *("--set", "max_train_examples=300"),
    *("--set", "max_test_examples=200"),
    *("--set", "init_examples=100"),
    *("--set", "tensorboard=false"),
]


def tiny_config(tmp_path: Path, **overrides) -> dict:
    """A training config that runs in about a second on the shipped MNIST."""
    config = {
        "preset": "test",
        "labels": 20,
        "epochs": 1,
        "max_train_examples": 300,
        "max_test_examples": 200,
        "init_examples": 100,
        "tensorboard": False,
        "device": "cpu",
        "run_dir": str(tmp_path / "run"),
    }
    config.update(overrides)
    return config


@pytest.fixture
def one_thread():
    """One torch thread: small models on a shared 2-core machine run many times faster so."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def cli_error(capsys, argv: list[str]) -> str:
    """Run the CLI in-process on a hostile ``argv`` and return its one-line error message.

    Asserts what every refusal promises: exit status 1, exactly one line on stderr that starts
    ``improved-gan: error:``, no traceback, and not the catch-all "internal error" (a case that
    reaches it is a bug, not a clean refusal)."""
    from improved_gan.cli import main

    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert rc == 1, f"exit status {rc}, stderr: {err!r}"
    assert len(lines) == 1 and lines[0].startswith("improved-gan: error: "), err
    assert "Traceback" not in err and "internal error" not in err, err
    return lines[0].removeprefix("improved-gan: error: ")
