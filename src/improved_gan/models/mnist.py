"""The permutation-invariant MNIST models of ``train_mnist_feature_matching.py``
(openai/improved-gan `mnist_svhn_cifar10/train_mnist_feature_matching.py`; paper §5.1, Table 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from improved_gan.models.generator import NoiseGenerator
from improved_gan.models.layers import (
    GaussianNoise,
    L2NormalizedDense,
    ShiftOnlyBatchNorm,
    WeightNormDense,
    glorot_linear,
)
from improved_gan.techniques.virtual_batch_norm import VirtualBatchNorm1d


class MnistDiscriminator(nn.Module):
    """784-1000-500-250-250-250-10 MLP: Gaussian noise σ=0.3 on the input and σ=0.5 after every
    hidden layer, weight-normalised layers (θ ~ N(0, 0.1), no eps, frozen hidden scales, a trainable
    scale on the output layer), ReLU. Returns K=10 logits; the "generated" logit is fixed at 0.

    ``forward(x, return_features=True)`` also returns the feature-matching features: the last
    hidden layer's ReLU output *before* its noise layer, shape (N, 250).

    ``minibatch``: an optional minibatch-discrimination layer between the last hidden layer (after
    its noise) and the output layer (not in the reference MNIST model; for ablations).
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: tuple[int, ...] = (1000, 500, 250, 250, 250),
        num_classes: int = 10,
        input_noise: float = 0.3,
        hidden_noise: float = 0.5,
        weight_std: float = 0.1,
        minibatch: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.input_noise = GaussianNoise(input_noise)
        sizes = (in_features, *hidden)
        self.hidden = nn.ModuleList(
            WeightNormDense(a, b, weight_std=weight_std, train_scale=False) for a, b in zip(sizes, sizes[1:])
        )
        self.noise = nn.ModuleList(GaussianNoise(hidden_noise) for _ in hidden)
        self.minibatch = minibatch
        out_in = minibatch.out_features if minibatch is not None else sizes[-1]
        self.output = WeightNormDense(out_in, num_classes, weight_std=weight_std, train_scale=True)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature-matching features alone (skips the last noise layer and the output layer)."""
        h = self.input_noise(x.flatten(1))
        for i, (layer, noise) in enumerate(zip(self.hidden, self.noise)):
            h = F.relu(layer(h))
            if i < len(self.hidden) - 1:
                h = noise(h)
        return h

    def forward(self, x: torch.Tensor, return_features: bool = False):
        h = self.input_noise(x.flatten(1))
        features = h
        for layer, noise in zip(self.hidden, self.noise):
            features = F.relu(layer(h))
            h = noise(features)
        if self.minibatch is not None:
            h = self.minibatch(h)
        logits = self.output(h)
        return (logits, features) if return_features else logits


class MnistGenerator(NoiseGenerator):
    """z ~ Uniform(0, 1)^100 -> dense 500 -> shift-only BN -> softplus -> dense 500 -> BN ->
    softplus -> column-normalised dense 784 -> sigmoid; output (N, 784) in (0, 1).

    ``norm="vbn"`` replaces both batch norms by shift-only virtual batch norm with a fixed
    reference batch of ``reference_size`` noise vectors (the buffer ``reference_noise``).
    """

    def __init__(
        self,
        noise_dim: int = 100,
        hidden: int = 500,
        out_features: int = 784,
        norm: str = "bn",
        reference_size: int = 100,
    ) -> None:
        super().__init__()
        self.noise_dim = noise_dim

        def bn(n: int) -> nn.Module:
            return ShiftOnlyBatchNorm(n) if norm == "bn" else VirtualBatchNorm1d(n, scale=False)

        self.net = nn.Sequential(
            glorot_linear(noise_dim, hidden),
            bn(hidden),
            nn.Softplus(),
            glorot_linear(hidden, hidden),
            bn(hidden),
            nn.Softplus(),
            L2NormalizedDense(hidden, out_features),
            nn.Sigmoid(),
        )
        self._init_noise(norm, reference_size)

    def body(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
