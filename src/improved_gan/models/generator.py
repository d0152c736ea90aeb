"""What every generator shares: its noise z (``sample_noise``) and, with virtual batch norm, the
fixed reference batch of noise (the buffer ``reference_noise``) run beside every live batch
(paper §3.5; openai/improved-gan ``imagenet/generator.py``)."""

from __future__ import annotations

import torch
from torch import nn

from improved_gan.errors import ImprovedGANError
from improved_gan.techniques.virtual_batch_norm import forward_with_reference


class NoiseGenerator(nn.Module):
    """Base of the generators. A subclass builds its layers, calls :meth:`_init_noise` last, and
    implements :meth:`body` (the network from noise to images); ``forward(z)`` runs the body,
    with VBN statistics from the reference batch when ``norm == "vbn"``.

    ``noise_low``: z ~ U(noise_low, 1)^noise_dim (0 for the Theano models, −1 for ImageNet).
    """

    noise_low: float = 0.0
    norm_choices: tuple[str, ...] = ("bn", "vbn")

    def _init_noise(self, norm: str, reference_size: int) -> None:
        """Check ``norm``; with VBN draw the reference noise (from the global torch RNG)."""
        if norm not in self.norm_choices:
            raise ImprovedGANError(
                f"unknown generator norm {norm!r}; use {' or '.join(map(repr, self.norm_choices))}"
            )
        self.norm = norm
        if norm == "vbn":
            self.register_buffer("reference_noise", self.sample_noise(reference_size))

    def sample_noise(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """(n, noise_dim) noise, uniform in [noise_low, 1)."""
        z = torch.rand(n, self.noise_dim, generator=generator, device=device)
        return z if self.noise_low == 0 else z * (1 - self.noise_low) + self.noise_low

    def body(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.norm == "vbn":
            return forward_with_reference(_Body(self), self.reference_noise, z)
        return self.body(z)


class _Body(nn.Module):
    """The generator's body as a module, so :func:`forward_with_reference` finds its VBN layers."""

    def __init__(self, generator: NoiseGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator.body(z)
