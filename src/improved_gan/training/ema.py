"""Test-time exponential moving average of the discriminator's parameters (openai/improved-gan `mnist_svhn_cifar10/train_*.py`).

This is the reference's ``disc_param_avg``, *not* the paper's historical averaging: a shadow
a ← a + (1 − decay)·(p − a) after every D step, from the parameters before that step. The
reference starts the shadow at zero without bias correction, so early evaluations use shrunken
weights; with ``bias_correction=True`` (our default) the average is divided by 1 − decay^t.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class ParameterEMA:
    """Zero-initialised EMA of a module's trainable parameters (frozen buffers are not averaged)."""

    def __init__(self, module: nn.Module, decay: float = 0.9999, bias_correction: bool = True) -> None:
        self.module = module
        self.decay = decay
        self.bias_correction = bias_correction
        self.names = [n for n, p in module.named_parameters() if p.requires_grad]
        params = dict(module.named_parameters())
        self.shadow = [torch.zeros_like(params[n]) for n in self.names]
        self.num_updates = 0

    def params(self) -> list[torch.Tensor]:
        """The module's averaged parameters (detached), in ``self.names`` order."""
        params = dict(self.module.named_parameters())
        return [params[n].detach() for n in self.names]

    @torch.no_grad()
    def update(self) -> None:
        """Move the shadow toward the module's current parameters."""
        torch._foreach_lerp_(self.shadow, self.params(), 1 - self.decay)
        self.num_updates += 1

    def averaged(self) -> list[torch.Tensor]:
        """The averaged parameters (bias-corrected if enabled), in ``self.names`` order."""
        if self.bias_correction and self.num_updates > 0:
            correction = 1 - self.decay**self.num_updates
            return [s / correction for s in self.shadow]
        return list(self.shadow)

    @contextmanager
    @torch.no_grad()
    def swapped_in(self) -> Iterator[nn.Module]:
        """Temporarily load the averaged parameters into the module (e.g. for a test pass)."""
        params = self.params()
        backup = [p.clone() for p in params]
        torch._foreach_copy_(params, self.averaged())
        try:
            yield self.module
        finally:
            torch._foreach_copy_(params, backup)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {f"shadow.{n}": s for n, s in zip(self.names, self.shadow)}
        state["num_updates"] = torch.tensor(self.num_updates, dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for n, s in zip(self.names, self.shadow):
            s.copy_(state[f"shadow.{n}"])
        self.num_updates = int(state["num_updates"])
