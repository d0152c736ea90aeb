"""Layers of the paper's models (openai/improved-gan `mnist_svhn_cifar10/nn.py`).

* :class:`WeightNormDense`: weight normalisation (Salimans & Kingma 2016) with the reference's
  data-dependent init and *frozen* hidden-layer scales.
* :class:`WeightNormConv2d`, :class:`WeightNormConvTranspose2d`: the same for the conv models'
  convolutions (norm per output filter) and the generators' last deconvolution (norm per output
  channel, PyTorch ``dim=1``), with ε = 1e-6 inside the square root as the reference's ``nn.weight_norm``.
* :class:`L2NormalizedDense`: the MNIST generator's output layer (column-normalised weights times a
  trainable per-unit scale, no data-dependent init).
* :class:`GaussianNoise`: additive N(0, σ²) noise in training mode.
* :class:`ShiftOnlyBatchNorm`: batch norm without a scale parameter that always normalises with
  the current batch's statistics (the reference generator never uses running averages).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn


class WeightNormDense(nn.Module):
    """y = s ⊙ (x Vᵀ) / ‖V‖_row + b, i.e. W = s·V/‖V‖ per output unit.

    Args:
        in_features, out_features: sizes.
        weight_std: std of the normal init of V (0.1 for the MNIST D, 0.05 for CIFAR/SVHN).
        train_scale: whether the per-unit scale ``s`` is trained. The reference freezes it in every
            hidden layer (a buffer here) and trains it only in the last layer of D.
        init_scale: the data-dependent init makes pre-activations have this std (``init_stdv``;
            1.0 for hidden layers, 0.1 for the CIFAR/SVHN output layers).
        eps: added to ‖V‖² inside the square root (0 in the MNIST "older" layer, 1e-6 in ``nn.py``).

    Data-dependent init (``nn.py``'s ``WeightNormLayer`` and ``DenseLayer``): inside :func:`data_dependent_init`, a forward pass computes
    t = x·W without bias, per-unit mean m and std σ over the batch, sets s ← s·init_scale/σ and
    b ← −m·init_scale/σ, and returns the normalised (t − m)·init_scale/σ, so one pass initialises
    the layers one after another.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        weight_std: float = 0.05,
        train_scale: bool = False,
        init_scale: float = 1.0,
        eps: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight_v = nn.Parameter(torch.randn(out_features, in_features) * weight_std)
        self.bias = nn.Parameter(torch.zeros(out_features))
        scale = torch.ones(out_features)
        if train_scale:
            self.scale = nn.Parameter(scale)
        else:
            self.register_buffer("scale", scale)
        self.init_scale = init_scale
        self.eps = eps
        self.initializing = False

    def unit_scale(self) -> torch.Tensor:
        """s / ‖V‖ per output unit, shape (out_features,)."""
        norm = torch.linalg.vector_norm(self.weight_v, dim=1)
        if self.eps:
            norm = (norm.square() + self.eps).sqrt()
        return self.scale / norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = F.linear(x, self.weight_v) * self.unit_scale()
        if not self.initializing:
            return t + self.bias
        with torch.no_grad():
            mean = t.mean(dim=0)
            std = (t - mean).square().mean(dim=0).sqrt()
            factor = self.init_scale / std
            self.scale.mul_(factor)
            self.bias.copy_(-mean * factor)
            return (t - mean) * factor

    def extra_repr(self) -> str:
        trained = isinstance(self.scale, nn.Parameter)
        return f"{self.in_features}, {self.out_features}, train_scale={trained}, eps={self.eps}"


class _WeightNormConvBase(nn.Module):
    """Shared by the weight-normalised (transposed) convolutions: W = s·V/sqrt(ε + ‖V‖²) per
    output channel, bias b, frozen ``s`` unless ``train_scale``; data-dependent init as
    :class:`WeightNormDense` with statistics over (N, H, W) per channel (openai/improved-gan `mnist_svhn_cifar10/nn.py`)."""

    _norm_dims: tuple[int, ...] = (1, 2, 3)

    def _setup(
        self,
        weight_shape: tuple[int, ...],
        out_channels: int,
        weight_std: float,
        train_scale: bool,
        init_scale: float,
        eps: float,
    ) -> None:
        self.out_channels = out_channels
        self.weight_v = nn.Parameter(torch.randn(weight_shape) * weight_std)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        scale = torch.ones(out_channels)
        if train_scale:
            self.scale = nn.Parameter(scale)
        else:
            self.register_buffer("scale", scale)
        self.init_scale, self.eps = init_scale, eps
        self.initializing = False

    def unit_scale(self) -> torch.Tensor:
        """s / sqrt(ε + ‖V‖²) per output channel, shape (out_channels,)."""
        return self.scale * torch.rsqrt(self.weight_v.square().sum(dim=self._norm_dims) + self.eps)

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self._conv(x) * self.unit_scale().view(1, -1, 1, 1)
        if not self.initializing:
            return t + self.bias.view(1, -1, 1, 1)
        with torch.no_grad():
            mean = t.mean(dim=(0, 2, 3))
            std = (t - mean.view(1, -1, 1, 1)).square().mean(dim=(0, 2, 3)).sqrt()
            factor = self.init_scale / std
            self.scale.mul_(factor)
            self.bias.copy_(-mean * factor)
            return (t - mean.view(1, -1, 1, 1)) * factor.view(1, -1, 1, 1)


class WeightNormConv2d(_WeightNormConvBase):
    """A weight-normalised ``Conv2d`` (weights (out, in, k, k), norm per output filter).

    Args: as ``nn.Conv2d`` for the geometry; ``weight_std`` (init of V, 0.05 in the reference),
    ``train_scale`` (False for hidden layers: frozen after the data-dependent init),
    ``init_scale`` (``init_stdv``), ``eps`` (1e-6). Input (N, C_in, H, W) -> (N, C_out, H', W').
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        weight_std: float = 0.05,
        train_scale: bool = False,
        init_scale: float = 1.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.stride, self.padding = stride, padding
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self._setup(shape, out_channels, weight_std, train_scale, init_scale, eps)

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight_v, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        c_out, c_in, k, _ = self.weight_v.shape
        trained = isinstance(self.scale, nn.Parameter)
        return f"{c_in}, {c_out}, kernel_size={k}, stride={self.stride}, padding={self.padding}, train_scale={trained}"


class WeightNormConvTranspose2d(_WeightNormConvBase):
    """A weight-normalised ``ConvTranspose2d`` (weights (in, out, k, k), norm per *output*
    channel, i.e. over axes (0, 2, 3) as the reference's deconvolution). The reference deconv
    (5×5, stride 2, "half" padding) is ``kernel_size=5, stride=2, padding=2, output_padding=1``.
    """

    _norm_dims = (0, 2, 3)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        output_padding: int = 0,
        weight_std: float = 0.05,
        train_scale: bool = False,
        init_scale: float = 1.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        shape = (in_channels, out_channels, kernel_size, kernel_size)
        self._setup(shape, out_channels, weight_std, train_scale, init_scale, eps)

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(
            x, self.weight_v, stride=self.stride, padding=self.padding, output_padding=self.output_padding
        )

    def extra_repr(self) -> str:
        c_in, c_out, k, _ = self.weight_v.shape
        trained = isinstance(self.scale, nn.Parameter)
        return (
            f"{c_in}, {c_out}, kernel_size={k}, stride={self.stride}, padding={self.padding}, "
            f"output_padding={self.output_padding}, train_scale={trained}"
        )


@contextmanager
def data_dependent_init(model: nn.Module) -> Iterator[None]:
    """Within this context, a forward pass of ``model`` runs the data-dependent init of every
    weight-normalised layer in it (in forward order) instead of an ordinary forward."""
    layers = [m for m in model.modules() if hasattr(m, "initializing")]
    for layer in layers:
        layer.initializing = True
    try:
        yield
    finally:
        for layer in layers:
            layer.initializing = False


class L2NormalizedDense(nn.Module):
    """The reference ``l2normalize(DenseLayer)``: W = s·V/sqrt(1e-6 + ‖V‖²) per output unit, V
    Glorot-uniform, trainable scale s (init 1) and bias (init 0); no data-dependent init."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = math.sqrt(6.0 / (in_features + out_features))
        self.weight_v = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
        self.scale = nn.Parameter(torch.ones(out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = (self.weight_v.square().sum(dim=1) + 1e-6).sqrt()
        return F.linear(x, self.weight_v) * (self.scale / norm) + self.bias


def glorot_linear(in_features: int, out_features: int, bias: bool = False) -> nn.Linear:
    """A dense layer with Lasagne's default Glorot-uniform weights (gain 1) and zero bias."""
    layer = nn.Linear(in_features, out_features, bias=bias)
    bound = math.sqrt(6.0 / (in_features + out_features))
    nn.init.uniform_(layer.weight, -bound, bound)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


class GaussianNoise(nn.Module):
    """x + N(0, σ²) in training mode; the identity in eval mode."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.sigma == 0:
            return x
        return torch.empty_like(x).normal_(0.0, self.sigma).add_(x)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


class ShiftOnlyBatchNorm(nn.Module):
    """(x − μ_B)/sqrt(σ²_B + eps) + b with batch statistics always (no scale, no running stats).

    Statistics run over the batch axis for (N, C) input and over (N, H, W) per channel for
    (N, C, H, W) input; σ² is the biased variance (openai/improved-gan `mnist_svhn_cifar10/nn.py`).
    """

    def __init__(self, num_features: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            var, mean = torch.var_mean(x, dim=0, correction=0)
            return (x - mean) * torch.rsqrt(var + self.eps) + self.bias
        var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0, keepdim=True)
        return (x - mean) * torch.rsqrt(var + self.eps) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"
