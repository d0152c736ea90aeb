"""The convolutional models of the reference's CIFAR-10 / SVHN scripts (openai/improved-gan
``mnist_svhn_cifar10/train_cifar_feature_matching.py``, ``train_cifar_minibatch_discrimination.py``,
``train_svhn_*.py``) and of its deleted ``train_mnist_minibatch.py``, with widths as arguments so
that tests and small machines can shrink them.

* :class:`ConvDiscriminator`: weight-normalised 3×3 convs (hidden scales frozen), lrelu,
  Gaussian noise or dropout on the input, dropout 0.5 after each stride-2 block, a 3×3 valid
  conv and two NIN layers, global mean pool, optionally minibatch discrimination, and a
  weight-normalised dense layer to K logits with a trainable scale.
* :class:`ConvGenerator`: z ~ U(0, 1)^100 → dense (no bias) → reshape (w0, 4, 4) → two 5×5
  stride-2 deconvs (4 → 8 → 16), each followed by shift-only batch norm (or VBN) and ReLU →
  a weight-normalised 5×5 stride-2 deconv with a trainable scale → tanh.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from improved_gan.errors import ImprovedGANError
from improved_gan.models.generator import NoiseGenerator
from improved_gan.models.layers import (
    GaussianNoise,
    ShiftOnlyBatchNorm,
    WeightNormConv2d,
    WeightNormConvTranspose2d,
    WeightNormDense,
)
from improved_gan.techniques.virtual_batch_norm import VirtualBatchNorm1d, VirtualBatchNorm2d


class ConvDiscriminator(nn.Module):
    """The reference conv discriminator (CIFAR widths 96/192 by default), K logits.

    Args:
        in_channels, image_size: input geometry (3, 32 for CIFAR/SVHN; 1, 28 for MNIST).
        widths: (w1, w2), the channels of the two conv blocks (CIFAR 96/192, SVHN FM 64/128).
        num_classes: K (the "generated" logit is fixed at 0); 1 for an unsupervised GAN.
        first_padding: padding of the first conv (1; 3 in the MNIST script, 28 → 32).
        input_noise: σ of Gaussian noise on the input (0.2 in the MB scripts), or 0.
        input_dropout: dropout probability on the input (0.2 in the FM scripts), or 0.
        dropout: dropout after each stride-2 block (0.5).
        lrelu_slope: leaky-ReLU slope (0.2 at reference HEAD).
        minibatch: a :class:`~improved_gan.techniques.MinibatchDiscrimination` (or any module
            mapping (N, w2) to (N, out_features)) between the global pool and the output layer.

    ``forward(x, return_features=True)`` also returns the global-pool features (N, w2), the
    reference's feature-matching features; ``features(x)`` returns them alone. ``x`` may be
    (N, C·H·W) or (N, C, H, W).
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 32,
        widths: tuple[int, int] = (96, 192),
        num_classes: int = 10,
        first_padding: int = 1,
        input_noise: float = 0.0,
        input_dropout: float = 0.2,
        dropout: float = 0.5,
        lrelu_slope: float = 0.2,
        weight_std: float = 0.05,
        output_init_scale: float = 0.1,
        minibatch: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.image_size, self.lrelu_slope = in_channels, image_size, lrelu_slope
        w1, w2 = widths

        def conv(c_in: int, c_out: int, k: int = 3, stride: int = 1, padding: int = 1) -> WeightNormConv2d:
            return WeightNormConv2d(c_in, c_out, k, stride, padding, weight_std=weight_std)

        self.input_noise = GaussianNoise(input_noise)
        self.input_dropout = nn.Dropout(input_dropout)
        self.convs = nn.ModuleList(
            [
                conv(in_channels, w1, padding=first_padding),
                conv(w1, w1),
                conv(w1, w1, stride=2),
                conv(w1, w2),
                conv(w2, w2),
                conv(w2, w2, stride=2),
                conv(w2, w2, padding=0),
                conv(w2, w2, k=1, padding=0),  # NIN
                conv(w2, w2, k=1, padding=0),  # NIN
            ]
        )
        self.dropouts = nn.ModuleDict({"2": nn.Dropout(dropout), "5": nn.Dropout(dropout)})
        self.minibatch = minibatch
        out_in = getattr(minibatch, "out_features", w2) if minibatch is not None else w2
        self.output = WeightNormDense(
            out_in,
            num_classes,
            weight_std=weight_std,
            train_scale=True,
            init_scale=output_init_scale,
            eps=1e-6,
        )

    def _as_images(self, x: torch.Tensor) -> torch.Tensor:
        s, c = self.image_size, self.in_channels
        if x.dim() == 2 and x.shape[1] == c * s * s:
            return x.view(-1, c, s, s)
        if x.dim() == 4 and tuple(x.shape[1:]) == (c, s, s):
            return x
        raise ImprovedGANError(
            f"the discriminator expects ({c}, {s}, {s}) images, got shape {tuple(x.shape)}"
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Global-pool features (N, w2), before minibatch discrimination."""
        h = self.input_dropout(self.input_noise(self._as_images(x)))
        for i, layer in enumerate(self.convs):
            h = F.leaky_relu(layer(h), self.lrelu_slope)
            if str(i) in self.dropouts:
                h = self.dropouts[str(i)](h)
        return h.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor, return_features: bool = False):
        features = self.features(x)
        h = features if self.minibatch is None else self.minibatch(features)
        logits = self.output(h)
        return (logits, features) if return_features else logits


class ConvGenerator(NoiseGenerator):
    """The reference conv generator; output (N, C, S, S) in (−1, 1).

    Args:
        noise_dim: size of z ~ U(0, 1) (100).
        widths: (w0, w1, w2) channels at 4×4, 8×8, 16×16 (512, 256, 128).
        out_channels, image_size: 3 and 32 (CIFAR/SVHN) or 1 and 28 (MNIST). For 28 the last
            deconv has padding 4: the 16 → 32 deconv with two pixels cropped on each side (our
            choice; the deleted MNIST script's "16 → 28" deconv cannot be built with its 5×5
            stride-2 "half"-padded layer).
        norm: ``"bn"`` (shift-only batch norm, the reference) or ``"vbn"`` (shift-only virtual
            batch norm with a fixed reference batch of ``reference_size`` noise vectors, drawn
            at construction and stored as the buffer ``reference_noise``).
    """

    def __init__(
        self,
        noise_dim: int = 100,
        widths: tuple[int, int, int] = (512, 256, 128),
        out_channels: int = 3,
        image_size: int = 32,
        norm: str = "bn",
        weight_std: float = 0.05,
        reference_size: int = 100,
    ) -> None:
        super().__init__()
        if image_size not in (28, 32):
            raise ImprovedGANError(f"the conv generator makes 28×28 or 32×32 images, not {image_size}")
        self.noise_dim = noise_dim
        self.out_channels, self.image_size = out_channels, image_size
        w0, w1, w2 = widths

        def bn(n: int, maps: bool) -> nn.Module:
            if norm == "bn":
                return ShiftOnlyBatchNorm(n)
            return VirtualBatchNorm2d(n, scale=False) if maps else VirtualBatchNorm1d(n, scale=False)

        def deconv(c_in: int, c_out: int) -> nn.ConvTranspose2d:
            layer = nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=1, bias=False)
            nn.init.normal_(layer.weight, std=weight_std)
            return layer

        dense = nn.Linear(noise_dim, w0 * 16, bias=False)
        nn.init.normal_(dense.weight, std=weight_std)
        self.net = nn.Sequential(
            dense,
            bn(w0 * 16, maps=False),  # per unit, before the reshape, as the reference
            nn.ReLU(),
            nn.Unflatten(1, (w0, 4, 4)),
            deconv(w0, w1),
            bn(w1, maps=True),
            nn.ReLU(),
            deconv(w1, w2),
            bn(w2, maps=True),
            nn.ReLU(),
            WeightNormConvTranspose2d(
                w2,
                out_channels,
                5,
                stride=2,
                padding=2 if image_size == 32 else 4,
                output_padding=1,
                weight_std=weight_std,
                train_scale=True,
                init_scale=0.1,
            ),
            nn.Tanh(),
        )
        self._init_noise(norm, reference_size)

    def body(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
