"""Speed options of the trainer for GPUs (``compile``, ``amp``, ``channels_last``), applied to a
model's forward passes without changing its parameters, state dict or checkpoints.

* ``amp: bf16``: ``forward`` (and ``features``) run under ``torch.autocast(dtype=bfloat16)``;
  their outputs are cast back to float32, so the losses, the optimizer and the EMA stay float32.
* ``compile: true``: ``forward`` (and ``features``) are wrapped by ``torch.compile`` with
  ``compile_backend`` (``inductor`` by default; ``eager`` only traces, for tests).
* ``channels_last: true``: 4-D weights are stored channels-last (faster convolutions on tensor
  cores; checkpoints are saved contiguous as before).
* ``tf32: true``: on a GPU, float32 matmuls and convolutions run in TF32 (a 10-bit mantissa;
  the tensor cores' float32 path, several times faster than full float32); the CPU ignores it.

The wrappers are set as instance attributes after the data-dependent init, so the init pass
runs uncompiled and without autocast. TF32, a process-wide torch setting, is on from the start
(the init included), so every run built in one process (batched members) starts alike.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from improved_gan.training.config import TrainConfig


def _to_float32(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, tuple):
        return tuple(_to_float32(v) for v in value)
    return value


def _autocast(fn: Callable, device_type: str) -> Callable:
    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast(device_type, dtype=torch.bfloat16):
            out = fn(*args, **kwargs)
        return _to_float32(out)

    return wrapped


def apply_runtime_options(module: nn.Module, config: TrainConfig, device: torch.device) -> nn.Module:
    """Apply ``config``'s ``channels_last``, ``amp`` and ``compile`` to ``module`` in place."""
    if config.channels_last:
        module.to(memory_format=torch.channels_last)
    for name in ("forward", "features"):
        original = getattr(module, name, None)
        if original is None:
            continue
        fn = original
        if config.amp == "bf16":
            fn = _autocast(fn, device.type)
        if config.compile:
            fn = torch.compile(fn, backend=config.compile_backend)
        if fn is not original:  # only a wrapped pass becomes an instance attribute
            setattr(module, name, fn)
    return module


def apply_float32_precision(config: TrainConfig, device: torch.device) -> None:
    """``tf32: true`` on a CUDA device: TF32 for float32 matmuls and cuDNN convolutions. Without
    it torch's defaults stay (full float32 matmuls). These are process-wide torch settings."""
    if device.type == "cuda" and config.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
