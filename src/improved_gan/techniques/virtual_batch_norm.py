"""Virtual batch normalisation (paper §3.5; openai/improved-gan `imagenet/model.py`, `imagenet/generator.py`).

Batch norm makes an example's output depend on the other examples of its minibatch. VBN
normalises each example x with the statistics of a *reference batch* chosen once at the start of
training, plus x itself; the reference batch is normalised with its own statistics only.

As in the reference (ImageNet code, after its 2016 and 2017 fixes), the reference batch is a
fixed set of *inputs* (a generator's noise) that is re-forwarded through the current network
every step, so its statistics move with the weights and gradients flow through them. Per
feature (per channel for maps, over N and H·W), with μ and q the mean and the mean of squares:

* reference rows: μ_ref, q_ref over the N reference examples;
* a live example x: μ = μ_x/(N+1) + N·μ_ref/(N+1), q = q_x/(N+1) + N·q_ref/(N+1), where μ_x, q_x
  are x's own (spatial) mean and mean of squares (x and x² for a dense layer), i.e. exactly the
  statistics of reference ∪ {x};
* y = γ·(x − μ)/sqrt(q − μ² + ε) + β.

Running both passes as one forward: :func:`forward_with_reference` (or the :class:`ReferenceBatch`
wrapper, which owns the fixed reference inputs as a buffer, so they are saved in checkpoints)
concatenates the reference batch in front of the live batch and tells every VBN layer how many
leading rows are the reference. Layers between VBN layers must treat examples independently.
Because each live example only meets the reference, its output does not depend on the rest of
the live batch. Cost: every forward also runs the reference batch (the paper uses VBN only in G
for that reason). With DDP every process has its own reference batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from improved_gan.errors import ImprovedGANError


class _VirtualBatchNorm(nn.Module):
    _stat_dims: tuple[int, ...] = (0,)

    def __init__(
        self, num_features: int, eps: float = 1e-5, scale: bool = True, gamma_init_std: float = 0.02
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        if scale:
            self.weight = nn.Parameter(1.0 + gamma_init_std * torch.randn(num_features))
        else:
            self.register_parameter("weight", None)
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.num_reference: int | None = None

    def _shape(self, t: torch.Tensor, ndim: int) -> torch.Tensor:
        return t.view(1, -1, *([1] * (ndim - 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.num_reference
        if n is None:
            raise ImprovedGANError(
                "VirtualBatchNorm needs a reference batch: call the network through "
                "forward_with_reference(net, reference, x) or a ReferenceBatch wrapper"
            )
        if x.dim() != len(self._stat_dims) + 1 or x.shape[1] != self.num_features:
            raise ImprovedGANError(
                f"{type(self).__name__}({self.num_features}) got input of shape {tuple(x.shape)}"
            )
        if not 0 < n <= len(x):
            raise ImprovedGANError(f"reference batch of {n} rows, but the input has only {len(x)} rows")
        ref, live = x[:n], x[n:]
        mean_ref = ref.mean(dim=self._stat_dims, keepdim=True)
        sq_ref = ref.square().mean(dim=self._stat_dims, keepdim=True)
        spatial = self._stat_dims[1:]
        mean_x = live.mean(dim=spatial, keepdim=True) if spatial else live
        sq_x = live.square().mean(dim=spatial, keepdim=True) if spatial else live.square()
        new = 1.0 / (n + 1)
        mean = new * mean_x + (1.0 - new) * mean_ref
        sq = new * sq_x + (1.0 - new) * sq_ref
        out = torch.cat(
            [
                (ref - mean_ref) * torch.rsqrt((sq_ref - mean_ref.square()).clamp_min(0) + self.eps),
                (live - mean) * torch.rsqrt((sq - mean.square()).clamp_min(0) + self.eps),
            ]
        )
        if self.weight is not None:
            out = out * self._shape(self.weight, x.dim())
        return out + self._shape(self.bias, x.dim())

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, scale={self.weight is not None}"


class VirtualBatchNorm1d(_VirtualBatchNorm):
    """VBN for (N_ref + N, F) input, statistics per feature. See the module docstring.

    Args:
        num_features: F.
        eps: added to the variance (1e-5 in the reference).
        scale: learn a per-feature γ (init N(1, 0.02) as the reference); ``False`` gives a
            shift-only VBN like the reference generators' shift-only batch norm.
    """

    _stat_dims = (0,)


class VirtualBatchNorm2d(_VirtualBatchNorm):
    """VBN for (N_ref + N, C, H, W) input, statistics per channel over (N, H, W)."""

    _stat_dims = (0, 2, 3)


def vbn_layers(model: nn.Module) -> list[_VirtualBatchNorm]:
    return [m for m in model.modules() if isinstance(m, _VirtualBatchNorm)]


@contextmanager
def reference_rows(model: nn.Module, num_reference: int) -> Iterator[None]:
    """Within this context every VBN layer of ``model`` treats the first ``num_reference`` rows
    of its input as the reference batch."""
    layers = vbn_layers(model)
    previous = [layer.num_reference for layer in layers]
    for layer in layers:
        layer.num_reference = num_reference
    try:
        yield
    finally:
        for layer, value in zip(layers, previous):
            layer.num_reference = value


def forward_with_reference(net: nn.Module, reference: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``net`` on the live batch ``x`` with VBN statistics from ``reference``, in one forward pass
    over cat([reference, x]); returns the live rows only (gradients reach the weights through
    the reference statistics too)."""
    n = len(reference)
    with reference_rows(net, n):
        out = net(torch.cat([reference.to(x.dtype), x]))
    return out[n:]


class ReferenceBatch(nn.Module):
    """Wraps a network with VBN layers and owns its fixed reference inputs.

    ``ReferenceBatch(net, reference_inputs)(z)`` = ``forward_with_reference(net, reference, z)``.
    The reference inputs are a buffer: they move with ``.to()`` and are saved in the state dict.
    """

    def __init__(self, net: nn.Module, reference_inputs: torch.Tensor) -> None:
        super().__init__()
        if not vbn_layers(net):
            raise ImprovedGANError("ReferenceBatch wraps a network without VirtualBatchNorm layers")
        self.net = net
        self.register_buffer("reference", reference_inputs.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return forward_with_reference(self.net, self.reference, x)
