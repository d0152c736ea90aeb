"""The one resolver from a user's device string (``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``auto``)
to a :class:`torch.device` this machine really has, or a one-line :class:`ImprovedGANError`."""

from __future__ import annotations

import torch

from improved_gan.errors import ImprovedGANError

DEVICE_CHOICES = "cpu, cuda, cuda:N or auto"


def _spelled(flag: str, value: str) -> str:
    """``--device cuda`` for a command-line flag, ``device='cuda'`` for a parameter."""
    return f"{flag} {value}" if flag.startswith("-") else f"{flag}={value!r}"


def _parse(name: str, flag: str) -> torch.device:
    try:
        return torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ImprovedGANError(
            f"{_spelled(flag, name)}: unknown device; use one of {DEVICE_CHOICES}"
        ) from None


def resolve_device(name: str | torch.device, flag: str = "device") -> torch.device:
    """``name`` as a device that exists here. ``auto`` is ``cuda`` when a GPU is visible, else
    ``cpu``. ``flag`` is how errors spell the setting (``--device`` on the command line)."""
    text = str(name).strip()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = name if isinstance(name, torch.device) else _parse(text, flag)
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        return _check_cuda(device, text, flag)
    if device.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ImprovedGANError(
                f"{_spelled(flag, text)}: MPS is not available on this machine; use {_spelled(flag, 'cpu')}"
            )
        return device
    raise ImprovedGANError(f"{_spelled(flag, text)}: unsupported device; use one of {DEVICE_CHOICES}")


def _check_cuda(device: torch.device, text: str, flag: str) -> torch.device:
    if not torch.cuda.is_available():
        raise ImprovedGANError(
            f"{_spelled(flag, text)}: CUDA is not available on this machine; use {_spelled(flag, 'cpu')}"
        )
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ImprovedGANError(
            f"{_spelled(flag, text)}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}; "
            f"use {_spelled(flag, 'cuda:0')}"
        )
    return device
