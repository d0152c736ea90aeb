"""Feature matching (paper §3.1, Eq. 4): ‖E_x f(x) − E_z f(G(z))‖₂².

The generator matches the batch means of an intermediate discriminator layer f. The reference
code averages over units instead of summing (REFERENCE_IMPL.md §0.4): the MNIST script takes the
mean *squared* difference of batch means (``norm="l2"``), the CIFAR/SVHN scripts the mean
*absolute* difference (``norm="l1"``).
"""

from __future__ import annotations

import torch

from improved_gan.errors import ImprovedGANError


def feature_matching_loss(
    real_features: torch.Tensor, fake_features: torch.Tensor, norm: str = "l2"
) -> torch.Tensor:
    """mean_u (mean_i f_u(x_i) − mean_j f_u(G(z_j)))² for ``norm="l2"``, or |·| for ``"l1"``.

    Args:
        real_features: (N_real, ...) features of real data (flattened after the batch axis).
        fake_features: (N_fake, ...) features of generated data, same feature shape.
        norm: ``"l2"`` (squared, MNIST reference) or ``"l1"`` (CIFAR/SVHN reference).
    """
    real = real_features.flatten(1).mean(dim=0)
    fake = fake_features.flatten(1).mean(dim=0)
    if real.shape != fake.shape:
        raise ImprovedGANError(
            f"feature matching needs real and fake features of one shape, got {tuple(real_features.shape[1:])} "
            f"and {tuple(fake_features.shape[1:])}"
        )
    diff = real - fake
    if norm == "l2":
        return diff.square().mean()
    if norm == "l1":
        return diff.abs().mean()
    raise ImprovedGANError(f"unknown feature-matching norm {norm!r}; use 'l2' or 'l1'")
