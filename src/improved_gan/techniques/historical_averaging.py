"""Historical averaging (paper §3.3).

Each player adds ‖θ − (1/t) Σ_{i=1}^t θ[i]‖² to its cost, where θ[i] is the value of its
parameters at past time i. The paper motivates it by fictitious play and gives no weight and no
implementation; no public code of the paper has it (none in openai/improved-gan; its issue #45 asks for it). Our design:

* ``penalty()`` = λ · Σ_p ‖p − p̄‖², the sum over the player's trainable parameters, with the
  running mean p̄ a constant (no gradient flows into the history);
* ``update()`` appends the current values to the history: p̄ ← p̄ + (p − p̄)/t, so p̄ is the
  arithmetic mean of every value recorded so far, kept online in O(#params) memory;
* the trainer records the parameters once after initialisation and again after each optimiser
  step, so the history holds every value the player has had;
* p̄ is kept in float64 by default: over 10⁵ steps the increments (p − p̄)/t fall below float32
  resolution and a float32 mean would stall.

The default weight λ = 0.001 (``DEFAULT_WEIGHT``) is the best of {0.001, 0.01, 0.1, 1} on the
2-D mixture benchmark (``benchmarks/mode_coverage.py``, BENCHMARKS.md), where larger weights
anchor the players to their early parameters and the samples never reach the modes. There it did
not beat training without it: treat it as a starting point. The penalty sums over parameters, so
a model with more parameters wants a smaller λ.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from improved_gan.errors import ImprovedGANError

DEFAULT_WEIGHT = 0.001


class HistoricalAveraging:
    """λ·Σ‖θ − θ̄‖² with θ̄ the running mean of the recorded parameter values.

    Args:
        parameters: the player's parameters (an iterable of tensors, or a module whose
            trainable parameters are taken).
        weight: λ ≥ 0.
        dtype: dtype of the running mean (float64 by default; ``None`` = the parameters' dtype).

    Usage, per training step of one player::

        loss = player_loss + ha.penalty()
        loss.backward(); optimizer.step(); ha.update()
    """

    def __init__(
        self,
        parameters: Iterable[torch.Tensor] | nn.Module,
        weight: float = DEFAULT_WEIGHT,
        dtype: torch.dtype | None = torch.float64,
    ) -> None:
        if isinstance(parameters, nn.Module):
            parameters = [p for p in parameters.parameters() if p.requires_grad]
        self.params = list(parameters)
        if not self.params:
            raise ImprovedGANError("historical averaging needs at least one parameter")
        if weight < 0:
            raise ImprovedGANError(f"historical-averaging weight must be ≥ 0, got {weight}")
        self.weight = float(weight)
        self.means = [torch.zeros_like(p, dtype=dtype or p.dtype) for p in self.params]
        self.count = 0

    @torch.no_grad()
    def update(self) -> None:
        """Add the parameters' current values to the history (running arithmetic mean)."""
        self.count += 1
        current = [p.detach().to(m.dtype) for p, m in zip(self.params, self.means)]
        torch._foreach_lerp_(self.means, current, 1.0 / self.count)

    def penalty(self) -> torch.Tensor:
        """λ·Σ_p ‖p − p̄‖² (a scalar with gradient w.r.t. the parameters); 0 before any update."""
        device = self.params[0].device
        if self.count == 0 or self.weight == 0:
            return torch.zeros((), device=device)
        total = sum((p - m.to(p.dtype)).square().sum() for p, m in zip(self.params, self.means))
        return self.weight * total

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {f"mean.{i}": m for i, m in enumerate(self.means)}
        state["count"] = torch.tensor(self.count, dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if len([k for k in state if k.startswith("mean.")]) != len(self.means):
            raise ImprovedGANError("historical-averaging state does not match the parameters")
        for i, m in enumerate(self.means):
            m.copy_(state[f"mean.{i}"])
        self.count = int(state["count"])
