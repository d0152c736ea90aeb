"""One-sided label smoothing (paper §3.4; openai/improved-gan `imagenet/build_model.py`).

D's target for real data becomes α (e.g. 0.9) while the target for generated data stays 0.
The optimal discriminator is then D*(x) = α·p_data(x) / (p_data(x) + p_model(x)); smoothing the
fake target too (β > 0) would put β·p_model/(p_data + p_model) in the numerator and reward
samples where p_data ≈ 0, which is why only the positive side is smoothed.

Two forms:

* binary GAN, D(x) = σ(l(x)): :func:`one_sided_binary_loss` for D and
  :func:`binary_generator_loss` for G (target 1, or α/2 as the ImageNet code, whose comment
  says one-sided smoothing moves the equilibrium to α/2);
* the K+1 semi-supervised D with the generated logit fixed at 0, D(x) = Z/(Z+1),
  Z = Σ_k exp l_k, lse = logsumexp(l): :func:`one_sided_unsupervised_loss` smooths the
  real-vs-generated part. With −log D = softplus(lse) − lse and −log(1−D) = softplus(lse),
  the real term −α·log D − (1−α)·log(1−D) = softplus(lse) − α·lse.

The ImageNet code computes the same cross-entropies minus the target's entropy (a constant that
changes no gradient). The paper's text uses α = 0.9 as its example; the only code uses 0.75.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from improved_gan.errors import ImprovedGANError


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha <= 1.0:
        raise ImprovedGANError(f"label-smoothing target α must lie in (0, 1], got {alpha}")


def one_sided_binary_loss(
    logits_real: torch.Tensor, logits_fake: torch.Tensor, alpha: float = 0.9
) -> torch.Tensor:
    """D's loss for D = σ(l): mean BCE(σ(l_real), α) + mean BCE(σ(l_fake), 0).

    Args:
        logits_real: (N_real,) or (N_real, 1) logits of real data.
        logits_fake: (N_fake,) or (N_fake, 1) logits of generated data.
        alpha: the real target α ∈ (0, 1]; 1 is the unsmoothed GAN loss.
    """
    _check_alpha(alpha)
    real = F.binary_cross_entropy_with_logits(logits_real, torch.full_like(logits_real, alpha))
    fake = F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))
    return real + fake


def binary_generator_loss(logits_fake: torch.Tensor, target: float = 1.0) -> torch.Tensor:
    """Non-saturating G loss mean BCE(σ(l_fake), target): −E log D(G(z)) for target 1; the
    ImageNet code uses target α/2 with one-sided smoothing."""
    if not 0.0 < target <= 1.0:
        raise ImprovedGANError(f"generator target must lie in (0, 1], got {target}")
    return F.binary_cross_entropy_with_logits(logits_fake, torch.full_like(logits_fake, target))


def one_sided_unsupervised_loss(
    logits_unl: torch.Tensor, logits_gen: torch.Tensor, alpha: float = 0.9
) -> torch.Tensor:
    """The K+1 unsupervised loss with real target α:
    ½·[mean(softplus(lse_unl) − α·lse_unl) + mean softplus(lse_gen)].

    Args:
        logits_unl: (N, K) logits of unlabelled real data; logits_gen: (M, K) of generated data.
        alpha: real target α ∈ (0, 1]; α = 1 gives the reference's unsupervised loss.
    """
    _check_alpha(alpha)
    lse_unl = torch.logsumexp(logits_unl, dim=1)
    lse_gen = torch.logsumexp(logits_gen, dim=1)
    return 0.5 * ((F.softplus(lse_unl) - alpha * lse_unl).mean() + F.softplus(lse_gen).mean())
