"""Adam exactly as the reference's hand-written ``nn.adam_updates`` (openai/improved-gan `mnist_svhn_cifar10/nn.py`).

m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  p ← p − lr·m̂ / sqrt(v̂ + ε)
with m̂ = m/(1−β1^t), v̂ = v/(1−β2^t), t starting at 1. The ε sits *inside* the square root,
unlike :class:`torch.optim.Adam`. No weight decay. Uses the ``torch._foreach`` kernels.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class ReferenceAdam(torch.optim.Optimizer):
    """Adam with ε inside the square root; defaults are the paper's β1=0.5, β2=0.999, ε=1e-8."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float | None = 3e-3,
        betas: tuple[float, float] = (0.5, 0.999),
        eps: float = 1e-8,
    ) -> None:
        """``lr=None``: set ``param_groups[i]["lr"]`` before the first step (a schedule's job)."""
        if (lr is not None and lr < 0) or not 0 <= betas[0] < 1 or not 0 <= betas[1] < 1 or eps < 0:
            raise ValueError(f"invalid Adam settings lr={lr}, betas={betas}, eps={eps}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if group["lr"] is None:
                raise RuntimeError(
                    "ReferenceAdam was built without a learning rate; set param_groups' lr first"
                )
            beta1, beta2 = group["betas"]
            grads = [p.grad for p in params]
            ms, vs = [], []
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float64)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                ms.append(state["exp_avg"])
                vs.append(state["exp_avg_sq"])
            t = float(self.state[params[0]]["step"])
            torch._foreach_lerp_(ms, grads, 1 - beta1)
            torch._foreach_mul_(vs, beta2)
            torch._foreach_addcmul_(vs, grads, grads, value=1 - beta2)
            # sqrt(v/(1−β2^t) + ε) = sqrt(v + ε·(1−β2^t)) / sqrt(1−β2^t): one pass fewer.
            bc2 = 1 - beta2**t
            denom = torch._foreach_add(vs, group["eps"] * bc2)
            torch._foreach_sqrt_(denom)
            torch._foreach_addcdiv_(params, ms, denom, value=-group["lr"] * bc2**0.5 / (1 - beta1**t))
        return loss
