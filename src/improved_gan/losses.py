"""The semi-supervised GAN losses of paper §5 with the "generated" logit fixed at 0.

D outputs K logits l_1..l_K. With a (K+1)-th logit fixed at 0, D(x) = Z(x)/(Z(x)+1) where
Z = Σ_k exp l_k. Writing lse = logsumexp(l) (openai/improved-gan `mnist_svhn_cifar10/train_*.py`):

* −log D(x)     = −lse + softplus(lse)
* −log(1 − D(x)) = softplus(lse)

so L_unsupervised = ½·[−E_data log D(x) − E_G log(1 − D(G(z)))] is computed from ``lse``
alone, without ever forming D, and stays finite for any logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from improved_gan.techniques.label_smoothing import one_sided_unsupervised_loss


def unsupervised_loss(
    logits_unl: torch.Tensor, logits_gen: torch.Tensor, real_target: float = 1.0
) -> torch.Tensor:
    """L_unsupervised = ½·[−E_data log D(x) − E_G log(1 − D(G(z)))] from K logits per example;
    with ``real_target`` α < 1 the one-sided label-smoothed form (paper §3.4), see
    :func:`improved_gan.techniques.label_smoothing.one_sided_unsupervised_loss`. With K = 1
    (an unsupervised run) D(x) = σ(l(x)) and this is the ordinary GAN loss, halved."""
    if real_target != 1.0:
        return one_sided_unsupervised_loss(logits_unl, logits_gen, real_target)
    lse_unl = torch.logsumexp(logits_unl, dim=1)
    lse_gen = torch.logsumexp(logits_gen, dim=1)
    return 0.5 * (-lse_unl.mean() + F.softplus(lse_unl).mean() + F.softplus(lse_gen).mean())


def semi_supervised_losses(
    logits_lab: torch.Tensor,
    labels: torch.Tensor,
    logits_unl: torch.Tensor,
    logits_gen: torch.Tensor,
    real_target: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_supervised, L_unsupervised) for K-logit discriminator outputs.

    Args:
        logits_lab: (B_lab, K) logits of labelled real data; labels: (B_lab,) int64 in [0, K).
        logits_unl: (B_unl, K) logits of unlabelled real data.
        logits_gen: (B_gen, K) logits of generated data.
        real_target: D's target for real data, α < 1 for one-sided label smoothing (1 = off).

    Returns:
        L_supervised = mean cross-entropy over the K real classes; L_unsupervised =
        −½·mean lse(unl) + ½·mean softplus(lse(unl)) + ½·mean softplus(lse(gen)).
    """
    supervised = F.cross_entropy(logits_lab, labels)
    return supervised, unsupervised_loss(logits_unl, logits_gen, real_target)


def generator_minimax_loss(logits_gen: torch.Tensor) -> torch.Tensor:
    """The saturating minimax generator loss of the minibatch-discrimination scripts:
    E log(1 − D(G(z))) = −mean softplus(lse(G(z))) (openai/improved-gan `mnist_svhn_cifar10/train_cifar_minibatch_discrimination.py`, `train_svhn_minibatch_discrimination.py`)."""
    return -F.softplus(torch.logsumexp(logits_gen, dim=1)).mean()


def generator_non_saturating_loss(logits_gen: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss −E log D(G(z)) = mean(softplus(lse) − lse) (paper §2's
    heuristic alternative to the minimax loss; not used by the reference scripts)."""
    lse = torch.logsumexp(logits_gen, dim=1)
    return (F.softplus(lse) - lse).mean()
