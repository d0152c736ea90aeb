"""The ImageNet 128×128 models of the reference's TensorFlow code (openai/improved-gan `imagenet/train_imagenet.py`, `imagenet/discriminator.py`, `imagenet/model.py`, `imagenet/generator.py`; paper §6.3, Fig. 6).

* :class:`ImagenetGenerator`: z ~ U[−1, 1]^8192 → linear → 4×4×512 → VBN → ReLU, then five 5×5
  stride-2 deconvolutions (→ 8, 16, 32, 64, 128) each followed by VBN and ReLU, with a U[−1, 1]
  noise map concatenated (as extra channels) to the input of every deconvolution
  (64, 64, 32, 16, 8, 8 channels), and a 5×5 stride-1 deconvolution to 3 channels (W ~ N(0,
  0.075), bias −0.45) → tanh. Hidden weights N(0, 0.02). All noise (z and the six maps) is one
  flat vector per example, so the VBN reference batch fixes every noise input, as the
  reference's ``is_ref`` generator does.
* :class:`ImagenetDiscriminator`: N(0, 0.1²) input noise, seven 3×3 convs (s2 64, s2 128, s2 256,
  s1 256, s1 256, s2 512, s2 512 → 4×4) each with cross-batch norm and lrelu 0.2, linear 8192 →
  2560 with cross-batch norm and lrelu, the joint minibatch features (300 kernels × 50), and a
  linear layer to K + 1 logits with an **explicit generated logit** (index K).

The reference D sees the joint batch ``[real; fake]`` (its cross-batch norm and minibatch
features compare the halves), so ``forward(x, num_real)`` takes it; with ``num_real = len(x)``
(the default: test batches, all real) the fake-half statistics fall back to the real ones and
the fake minibatch features are 0. ``forward`` returns the K logits l_k − l_gen, which equal the
reference's K + 1 logits up to a constant shift per example, so the trainer's K-logit losses
(generated logit fixed at 0) give the same GAN logit lse(l_1..K) − l_gen;
``explicit_logits`` returns all K + 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from improved_gan.errors import ImprovedGANError
from improved_gan.models.generator import NoiseGenerator
from improved_gan.models.layers import GaussianNoise
from improved_gan.techniques.minibatch_discrimination import JointMinibatchDiscrimination
from improved_gan.techniques.virtual_batch_norm import VirtualBatchNorm2d

#: Channels of the noise map concatenated before each of the six deconvolutions (``imagenet/generator.py``).
NOISE_CHANNELS = (64, 64, 32, 16, 8, 8)


class ImagenetGenerator(NoiseGenerator):
    """The reference ImageNet generator (see the module docstring); output (N, 3, S, S) in (−1, 1).

    Args:
        z_dim: size of z (8192).
        widths: channels after the linear layer and after each stride-2 deconv
            ((512, 256, 128, 64, 64, 64) for 4, 8, 16, 32, 64, 128 pixels).
        noise_channels: channels of the per-layer U[−1, 1] noise maps (``NOISE_CHANNELS``).
        reference_size: the VBN reference batch (16, the reference's per-GPU batch).
        norm: ``"vbn"`` (the reference) or ``"bn"`` (ordinary batch norm with scale, for the
            "−VBN+BN" ablation).
    """

    noise_low = -1.0
    norm_choices = ("vbn", "bn")

    def __init__(
        self,
        z_dim: int = 8192,
        widths: tuple[int, ...] = (512, 256, 128, 64, 64, 64),
        noise_channels: tuple[int, ...] = NOISE_CHANNELS,
        reference_size: int = 16,
        norm: str = "vbn",
    ) -> None:
        super().__init__()
        if len(widths) != 6 or len(noise_channels) != 6:
            raise ImprovedGANError("the ImageNet generator needs 6 widths and 6 noise-map channel counts")
        self.z_dim, self.widths, self.noise_channels = z_dim, tuple(widths), tuple(noise_channels)
        self.image_size = 4 * 2**5
        self.sizes = tuple(4 * 2**i for i in range(6))  # spatial size of each noise map
        self.linear = nn.Linear(z_dim, widths[0] * 16)
        nn.init.normal_(self.linear.weight, std=0.02)
        nn.init.zeros_(self.linear.bias)

        def make_norm(c: int) -> nn.Module:
            return VirtualBatchNorm2d(c) if norm == "vbn" else nn.BatchNorm2d(c, eps=1e-5)

        self.norms = nn.ModuleList([make_norm(c) for c in widths])
        self.deconvs = nn.ModuleList()
        for i in range(5):
            layer = nn.ConvTranspose2d(
                widths[i] + noise_channels[i], widths[i + 1], 5, stride=2, padding=2, output_padding=1
            )
            nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)
            self.deconvs.append(layer)
        self.output = nn.ConvTranspose2d(widths[5] + noise_channels[5], 3, 5, stride=1, padding=2)
        nn.init.normal_(self.output.weight, std=0.075)
        nn.init.constant_(self.output.bias, -0.45)
        self._init_noise(norm, reference_size)

    @property
    def noise_dim(self) -> int:
        """Length of the flat noise vector: z plus every noise map."""
        return self.z_dim + sum(c * s * s for c, s in zip(self.noise_channels, self.sizes))

    def body(self, noise: torch.Tensor) -> torch.Tensor:
        """The network on flat noise (n, noise_dim), uniform in [−1, 1]: z and the six noise maps."""
        n = len(noise)
        sizes = [self.z_dim] + [c * s * s for c, s in zip(self.noise_channels, self.sizes)]
        z, *maps = noise.split(sizes, dim=1)
        h = F.relu(self.norms[0](self.linear(z).view(n, self.widths[0], 4, 4)))
        maps = [m.view(n, c, s, s) for m, c, s in zip(maps, self.noise_channels, self.sizes)]
        for i in range(5):
            h = F.relu(self.norms[i + 1](self.deconvs[i](torch.cat([h, maps[i]], dim=1))))
        return torch.tanh(self.output(torch.cat([h, maps[5]], dim=1)))

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        if noise.dim() != 2 or noise.shape[1] != self.noise_dim:
            raise ImprovedGANError(
                f"the ImageNet generator takes (N, {self.noise_dim}) noise from sample_noise, got {tuple(noise.shape)}"
            )
        return super().forward(noise)


def is_joint(D: nn.Module) -> bool:
    """True for a discriminator that takes the joint batch ``[real; fake]`` with ``num_real``
    (the ImageNet D, whose batch norm and minibatch features compare the two halves)."""
    return bool(getattr(D, "joint_batch", False))


class CrossBatchNorm(nn.Module):
    """The reference's ``batch_norm_cross`` (``imagenet/discriminator.py``): on a joint batch ``[real; fake]``, the first
    half of the channels is normalised with the statistics of the real rows, the second half
    with those of the fake rows (biased variance, ε = 1e-5); γ ~ N(1, 0.02) and β = 0 per
    channel. Input (N, C) or (N, C, H, W); statistics per channel over the rows (and H, W)."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight = nn.Parameter(1.0 + 0.02 * torch.randn(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor, num_real: int) -> torch.Tensor:
        dims = (0,) if x.dim() == 2 else (0, 2, 3)
        half = self.num_features // 2
        real = x[:num_real]
        fake = x[num_real:] if num_real < len(x) else real  # all-real batches (test): real stats
        var_r, mean_r = torch.var_mean(real[:, :half], dim=dims, correction=0, keepdim=True)
        var_f, mean_f = torch.var_mean(fake[:, half:], dim=dims, correction=0, keepdim=True)
        mean, var = torch.cat([mean_r, mean_f], dim=1), torch.cat([var_r, var_f], dim=1)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight.view(shape) + self.bias.view(shape)


class ImagenetDiscriminator(nn.Module):
    """The reference ImageNet discriminator (see the module docstring).

    Args:
        num_classes: K real classes (1000); the output layer has K + 1 logits.
        widths: channels of the seven 3×3 convs ((64, 128, 256, 256, 256, 512, 512)).
        hidden: width of the dense layer (2560).
        minibatch_kernels, minibatch_kernel_dim: the joint minibatch features (300 × 50).
        input_noise: σ of the Gaussian noise on the input (0.1).
        image_size: 128 (the strides reduce it by 32).
    """

    cross_example = True
    joint_batch = True

    def __init__(
        self,
        num_classes: int = 1000,
        widths: tuple[int, ...] = (64, 128, 256, 256, 256, 512, 512),
        hidden: int = 2560,
        minibatch_kernels: int = 300,
        minibatch_kernel_dim: int = 50,
        input_noise: float = 0.1,
        image_size: int = 128,
        lrelu_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if len(widths) != 7:
            raise ImprovedGANError("the ImageNet discriminator needs 7 conv widths")
        self.num_classes, self.image_size, self.lrelu_slope = num_classes, image_size, lrelu_slope
        strides = (2, 2, 2, 1, 1, 2, 2)
        self.noise = GaussianNoise(input_noise)
        self.convs = nn.ModuleList()
        self.conv_norms = nn.ModuleList()
        c_in = 3
        for c, s in zip(widths, strides):
            conv = nn.Conv2d(c_in, c, 3, stride=s, padding=1)
            nn.init.trunc_normal_(conv.weight, std=0.02, a=-0.04, b=0.04)
            nn.init.zeros_(conv.bias)
            self.convs.append(conv)
            self.conv_norms.append(CrossBatchNorm(c))
            c_in = c
        final = image_size // 32
        self.dense = nn.Linear(widths[-1] * final * final, hidden)
        nn.init.normal_(self.dense.weight, std=0.02)
        nn.init.zeros_(self.dense.bias)
        self.dense_norm = CrossBatchNorm(hidden)
        self.minibatch = JointMinibatchDiscrimination(hidden, minibatch_kernels, minibatch_kernel_dim)
        self.output = nn.Linear(self.minibatch.out_features, num_classes + 1)
        nn.init.normal_(self.output.weight, std=0.02)
        nn.init.zeros_(self.output.bias)

    def _as_images(self, x: torch.Tensor) -> torch.Tensor:
        s = self.image_size
        if x.dim() == 2 and x.shape[1] == 3 * s * s:
            return x.view(-1, 3, s, s)
        if x.dim() == 4 and tuple(x.shape[1:]) == (3, s, s):
            return x
        raise ImprovedGANError(f"the discriminator expects (3, {s}, {s}) images, got shape {tuple(x.shape)}")

    def features(self, x: torch.Tensor, num_real: int | None = None) -> torch.Tensor:
        """The 2,560 dense features (after cross-batch norm and lrelu), (N, hidden)."""
        h = self.noise(self._as_images(x))
        num_real = len(h) if num_real is None else num_real
        for conv, norm in zip(self.convs, self.conv_norms):
            h = F.leaky_relu(norm(conv(h), num_real), self.lrelu_slope)
        return F.leaky_relu(self.dense_norm(self.dense(h.flatten(1)), num_real), self.lrelu_slope)

    def explicit_logits(self, x: torch.Tensor, num_real: int | None = None) -> torch.Tensor:
        """All K + 1 logits (the last is the generated class), (N, K + 1)."""
        num_real = len(x) if num_real is None else num_real
        h = self.features(x, num_real)
        return self.output(self.minibatch(h, num_real=num_real))

    def forward(self, x: torch.Tensor, num_real: int | None = None) -> torch.Tensor:
        """K logits l_k − l_gen (generated logit moved to 0), (N, K)."""
        logits = self.explicit_logits(x, num_real)
        return logits[:, :-1] - logits[:, -1:]
