"""Minibatch discrimination (paper §3.2, Fig. 1; openai/improved-gan `mnist_svhn_cifar10/nn.py`, `imagenet/discriminator.py`).

A discriminator layer that lets D look at a whole minibatch: features f(x_i) ∈ R^A are
multiplied by a tensor T ∈ R^{A×B×C} to give M_i ∈ R^{B×C}; for each of the B kernels the
closeness of two examples is c_b(x_i, x_j) = exp(−‖M_{i,b} − M_{j,b}‖₁), and the layer outputs
o(x_i)_b = Σ_{j≠i} c_b(x_i, x_j) concatenated to f(x_i).

Two variants:

* :class:`MinibatchDiscrimination`: the Theano ``nn.MinibatchLayer`` of the CIFAR/SVHN scripts
  (``mnist_svhn_cifar10/nn.py``): T weight-normalised per (b, c) column with a trainable *log* scale, the self pair
  excluded, a per-kernel bias, and a data-dependent init. Real and generated data must go
  through it in **separate** forward passes (the paper requires it).
* :class:`JointMinibatchDiscrimination`: the TensorFlow ImageNet discriminator's variant (``imagenet/discriminator.py``):
  a plain linear map with bias, applied to a joint batch ``[real; fake]``, giving two features per
  kernel (closeness to the real half, closeness to the fake half).

Cost: for a batch of N examples, computing M costs N·A·B·C multiply-adds, and the pairwise L1
distances N²·B·C. Memory is O(N²·B): :func:`pairwise_l1` accumulates the distance over the C
dimensions one at a time and recomputes the signs in its backward pass, so no N×N×B×C tensor is
ever formed (the naive broadcast, and ``torch.cdist``'s GPU backward, both form one). For the
reference sizes (N = 100, B = 100, C = 5) that is 1M floats per N×N×B tensor instead of 5M.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from improved_gan.errors import ImprovedGANError


class _PairwiseL1(torch.autograd.Function):
    """d[i, j, b] = Σ_c |m[i, b, c] − m[j, b, c]| with O(N²·B) memory in forward and backward."""

    @staticmethod
    def forward(ctx, m: torch.Tensor) -> torch.Tensor:  # noqa: D102
        ctx.save_for_backward(m)
        n, b, c = m.shape
        d = m.new_zeros(n, n, b)
        for k in range(c):
            col = m[:, :, k]
            d.add_((col.unsqueeze(1) - col.unsqueeze(0)).abs_())
        return d

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        (m,) = ctx.saved_tensors
        # ∂d[i,j,b]/∂m[i,b,c] = sign(m[i,b,c] − m[j,b,c]) and ∂d[j,i,b]/∂m[i,b,c] the same sign, so
        # grad_m[i,b,c] = Σ_j (g[i,j,b] + g[j,i,b])·sign(m[i,b,c] − m[j,b,c]).
        sym = grad + grad.transpose(0, 1)
        out = torch.empty_like(m)
        for k in range(m.shape[2]):
            col = m[:, :, k]
            out[:, :, k] = ((col.unsqueeze(1) - col.unsqueeze(0)).sign_().mul_(sym)).sum(dim=1)
        return out


def pairwise_l1(m: torch.Tensor) -> torch.Tensor:
    """Pairwise L1 distances per kernel: (N, B, C) -> (N, N, B), d[i, j, b] = ‖m[i,b] − m[j,b]‖₁.

    Memory O(N²·B) including the backward pass (see the module docstring)."""
    if m.dim() != 3:
        raise ImprovedGANError(f"pairwise_l1 needs an (N, B, C) tensor, got shape {tuple(m.shape)}")
    return _PairwiseL1.apply(m)


def closeness(distances: torch.Tensor, exclude_self: bool = True) -> torch.Tensor:
    """c[i, j, b] = exp(−d[i, j, b]), with the diagonal (j = i) set to 0 when ``exclude_self``."""
    c = torch.exp(-distances)
    if exclude_self:
        n = distances.shape[0]
        eye = torch.eye(n, dtype=torch.bool, device=distances.device).unsqueeze(-1)
        c = c.masked_fill(eye, 0.0)
    return c


def has_cross_example_layers(model: nn.Module) -> bool:
    """True if some layer of ``model`` makes one example's output depend on the others in its
    batch (it has ``cross_example = True``), so real and fake batches need separate passes."""
    return any(getattr(m, "cross_example", False) for m in model.modules())


class MinibatchDiscrimination(nn.Module):
    """The reference minibatch layer (openai/improved-gan `mnist_svhn_cifar10/nn.py`; paper §3.2).

    T = θ · exp(log_scale) / ‖θ‖, normalised over the A axis for each (b, c) column;
    M = f·T ∈ R^{N×B×C}; o[i, b] = Σ_{j≠i} exp(−‖M[i,b] − M[j,b]‖₁) + bias[b] (a sum over the other
    examples of the same forward batch, not an average); output concat[f, o] ∈ R^{N×(A+B)}.

    Args:
        in_features: A, the size of f (conv maps are flattened: A = C·H·W).
        num_kernels: B (reference 100).
        kernel_dim: C (reference 5).
        weight_std: std of the normal init of θ (0.05 at reference HEAD; 0.1 in the deleted MNIST
            script).

    Data-dependent init (inside :func:`improved_gan.models.data_dependent_init`): with μ_b half
    the mean nearest-neighbour distance of the batch for kernel b, log_scale[b, :] −= log μ_b (so
    nearest-neighbour distances become ≈ 2), then bias = −mean_i o[i, b] (o starts at zero mean).

    Input (N, A) or (N, ...) (flattened); output (N, A + B). The output of example i depends on
    every other example of the batch, so feed real and generated data in separate calls.
    """

    cross_example = True

    def __init__(
        self, in_features: int, num_kernels: int = 100, kernel_dim: int = 5, weight_std: float = 0.05
    ) -> None:
        super().__init__()
        if min(in_features, num_kernels, kernel_dim) <= 0:
            raise ImprovedGANError(
                f"minibatch discrimination needs positive sizes, got in_features={in_features}, "
                f"num_kernels={num_kernels}, kernel_dim={kernel_dim}"
            )
        self.in_features, self.num_kernels, self.kernel_dim = in_features, num_kernels, kernel_dim
        self.theta = nn.Parameter(torch.randn(in_features, num_kernels, kernel_dim) * weight_std)
        self.log_scale = nn.Parameter(torch.zeros(num_kernels, kernel_dim))
        self.bias = nn.Parameter(torch.full((num_kernels,), -1.0))
        self.initializing = False

    @property
    def out_features(self) -> int:
        return self.in_features + self.num_kernels

    def kernel_tensor(self) -> torch.Tensor:
        """T, shape (A, B, C): θ with every (b, c) column scaled to norm exp(log_scale[b, c])."""
        norm = torch.linalg.vector_norm(self.theta, dim=0)
        return self.theta * (self.log_scale.exp() / norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = x.flatten(1)
        if f.shape[1] != self.in_features:
            raise ImprovedGANError(
                f"minibatch discrimination expects {self.in_features} features per example, got {f.shape[1]}"
            )
        if len(f) < 2:
            raise ImprovedGANError("minibatch discrimination needs a batch of at least 2 examples")
        m = torch.einsum("na,abc->nbc", f, self.kernel_tensor())
        d = pairwise_l1(m)
        if self.initializing:
            return self._data_init(f, d)
        o = closeness(d).sum(dim=1) + self.bias
        return torch.cat([f, o], dim=1)

    @torch.no_grad()
    def _data_init(self, f: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        n = len(f)
        off_diag = d.masked_fill(torch.eye(n, dtype=torch.bool, device=d.device).unsqueeze(-1), math.inf)
        mu = 0.5 * off_diag.min(dim=1).values.mean(dim=0)  # (B,)
        self.log_scale.sub_(mu.log().unsqueeze(1))
        o = closeness(d / mu).sum(dim=1)
        mean = o.mean(dim=0)
        self.bias.copy_(-mean)
        return torch.cat([f, o - mean], dim=1)

    def extra_repr(self) -> str:
        return f"{self.in_features}, num_kernels={self.num_kernels}, kernel_dim={self.kernel_dim}"


class JointMinibatchDiscrimination(nn.Module):
    """The ImageNet discriminator's minibatch features (openai/improved-gan `imagenet/discriminator.py`).

    M = f·W + b (a plain linear map to B·C, no weight norm, no data init) on a *joint* batch
    ``[real; fake]`` of N = 2n examples. With c[i, j, b] = exp(−‖M[i,b] − M[j,b]‖₁)·[i ≠ j]:
    f_real[i, b] = Σ_{j real} c[i, j, b] / K and f_fake[i, b] = Σ_{j fake} c[i, j, b] / K, where
    K = n·N − n is the number of off-diagonal entries in one half of the N×N mask (496 for
    N = 32), one scalar for all rows. Output concat[f, f_real, f_fake] ∈ R^{N×(A+2B)}.

    ``forward(x, num_real)``: the first ``num_real`` rows of ``x`` are real (default: half);
    ``num_real = len(x)`` (only real rows, e.g. at test time) gives fake features of 0.
    """

    cross_example = True

    def __init__(
        self, in_features: int, num_kernels: int = 300, kernel_dim: int = 50, weight_std: float = 0.02
    ) -> None:
        super().__init__()
        self.in_features, self.num_kernels, self.kernel_dim = in_features, num_kernels, kernel_dim
        self.linear = nn.Linear(in_features, num_kernels * kernel_dim)
        nn.init.normal_(self.linear.weight, std=weight_std)
        nn.init.zeros_(self.linear.bias)

    @property
    def out_features(self) -> int:
        return self.in_features + 2 * self.num_kernels

    def forward(self, x: torch.Tensor, num_real: int | None = None) -> torch.Tensor:
        f = x.flatten(1)
        n = len(f)
        num_real = n // 2 if num_real is None else num_real
        if not 0 < num_real <= n or n < 2:
            raise ImprovedGANError(
                f"the joint batch of {n} needs real (and fake) rows, got num_real={num_real}"
            )
        m = self.linear(f).view(n, self.num_kernels, self.kernel_dim)
        c = closeness(pairwise_l1(m))
        # The reference divides each half by its count of unmasked entries, n_half·N − n_half.
        f_real = c[:, :num_real].sum(dim=1) / (num_real * n - num_real)
        if num_real == n:  # a batch of real rows only (test time): no fake half to compare with
            f_fake = torch.zeros_like(f_real)
        else:
            f_fake = c[:, num_real:].sum(dim=1) / ((n - num_real) * n - (n - num_real))
        return torch.cat([f, f_real, f_fake], dim=1)

    def extra_repr(self) -> str:
        return f"{self.in_features}, num_kernels={self.num_kernels}, kernel_dim={self.kernel_dim}"
