"""Checkpoints as safetensors: written atomically (temp file + fsync + rename), read without
unpickling anything. A checkpoint is a flat ``name -> tensor`` map plus string metadata."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from improved_gan.errors import ImprovedGANError

FORMAT = "improved-gan/1"


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write ``tensors`` and ``metadata`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        save_file(contiguous, tmp, metadata={"format": FORMAT, **metadata})
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a checkpoint written by :func:`save_checkpoint`: (tensors, metadata)."""
    path = Path(path)
    if not path.is_file():
        raise ImprovedGANError(f"checkpoint {path} does not exist; train first or point at a run directory")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ImprovedGANError(f"checkpoint {path} is unreadable ({exc}); it is corrupt or not ours") from exc
    if metadata.get("format") != FORMAT:
        raise ImprovedGANError(
            f"checkpoint {path} is not an improved-gan checkpoint (format {metadata.get('format')})"
        )
    return tensors, metadata


def prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    start = prefix + "."
    return {k[len(start) :]: v for k, v in tensors.items() if k.startswith(start)}


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The optimizer's per-parameter state as flat tensors, keyed by parameter position."""
    out: dict[str, torch.Tensor] = {}
    index = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                out[f"{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
            index += 1
    return out


def load_optimizer_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    index = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = {
                k.split(".", 1)[1]: v.to(p.device)
                for k, v in tensors.items()
                if k.split(".", 1)[0] == str(index)
            }
            if state:
                optimizer.state[p] = state
            index += 1
