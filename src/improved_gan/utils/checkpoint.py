"""Checkpoints as safetensors: written atomically (temp file + fsync + rename), read without
unpickling anything. A checkpoint is a flat ``name -> tensor`` map plus string metadata."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from improved_gan.errors import ImprovedGANError

FORMAT = "improved-gan/1"


#: The advice when a checkpoint holds NaN or infinite values.
DIVERGED_FIX = "the run diverged: train it again with a lower lr"


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


def _unreadable(path: Path, exc: BaseException) -> ImprovedGANError:
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    return ImprovedGANError(
        f"checkpoint {path} is unreadable ({detail}); it is truncated, corrupt or not ours: "
        "restore it from a backup or train again"
    )


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a checkpoint written by :func:`save_checkpoint` (no tensors read)."""
    path = Path(path)
    if path.is_dir():
        raise ImprovedGANError(f"checkpoint {path} is a directory, not a file; move it away or train again")
    if not path.is_file():
        raise ImprovedGANError(f"checkpoint {path} does not exist; train first or point at a run directory")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise _unreadable(path, exc) from None
    if metadata.get("format") != FORMAT:
        raise ImprovedGANError(
            f"checkpoint {path} is not an improved-gan checkpoint (format {metadata.get('format')!r}); "
            "point at a checkpoint that improved-gan wrote"
        )
    return metadata


def load_checkpoint(
    path: str | Path, fix: str = DIVERGED_FIX
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a checkpoint written by :func:`save_checkpoint`: (tensors, metadata). A checkpoint
    with NaN or infinite values (a diverged run) is refused, with ``fix`` as the advice."""
    path = Path(path)
    metadata = read_metadata(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise _unreadable(path, exc) from None
    _check_finite(path, tensors, fix)
    return tensors, metadata


def _names(names: list[str], shown: int = 3) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _check_finite(path: Path, tensors: dict[str, torch.Tensor], fix: str = DIVERGED_FIX) -> None:
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ImprovedGANError(
            f"checkpoint {path} holds NaN or infinite values in {len(bad)} of its {len(tensors)} tensors "
            f"({_names(bad)}), so its weights are unusable; {fix}"
        )


#: name -> (dtype, shape) of each tensor a checkpoint must hold.
Layout = dict[str, tuple[torch.dtype, tuple[int, ...]]]


def check_layout(
    path: str | Path, tensors: dict[str, torch.Tensor], expected: Layout, optional: list[set[str]] = ()
) -> None:
    """Refuse ``tensors`` unless they are exactly ``expected`` (names, dtypes, shapes); each set of
    ``optional`` names may be absent as a whole (e.g. the optimizer state of an unused parameter)."""
    may_lack = set().union(*optional) if optional else set()
    missing = [n for n in expected if n not in tensors and n not in may_lack]
    for group in optional:
        if any(n in tensors for n in group):
            missing += sorted(n for n in group if n not in tensors)
    extra = [n for n in tensors if n not in expected]
    advice = "it is from another config or version, or was altered: restore it or train again"
    if missing:
        raise ImprovedGANError(
            f"checkpoint {path} lacks {len(missing)} tensors the model needs ({_names(missing)}); {advice}"
        )
    if extra:
        raise ImprovedGANError(
            f"checkpoint {path} holds {len(extra)} tensors the model does not have ({_names(extra)}); {advice}"
        )
    for name, tensor in tensors.items():
        dtype, shape = expected[name]
        if tensor.dtype != dtype or tuple(tensor.shape) != shape:
            raise ImprovedGANError(
                f"checkpoint {path}: tensor {name} is {str(tensor.dtype).removeprefix('torch.')} "
                f"{tuple(tensor.shape)}, the model needs {str(dtype).removeprefix('torch.')} {shape}; {advice}"
            )


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
