import numpy as np
import pytest
import torch

from improved_gan.errors import ImprovedGANError
from improved_gan.losses import generator_minimax_loss, semi_supervised_losses
from improved_gan.techniques import feature_matching_loss


def _direct_losses(l_lab, y, l_unl, l_gen):
    """Independent float64 numpy computation with D = Z/(Z+1), Z = Σ exp l_k."""
    l_lab, l_unl, l_gen = (np.asarray(a, dtype=np.float64) for a in (l_lab, l_unl, l_gen))
    p = np.exp(l_lab) / np.exp(l_lab).sum(1, keepdims=True)
    supervised = -np.mean(np.log(p[np.arange(len(y)), y]))
    z_unl, z_gen = np.exp(l_unl).sum(1), np.exp(l_gen).sum(1)
    d_unl, d_gen = z_unl / (z_unl + 1), z_gen / (z_gen + 1)
    unsupervised = 0.5 * (-np.mean(np.log(d_unl)) - np.mean(np.log(1 - d_gen)))
    return supervised, unsupervised


def test_semi_supervised_losses_match_direct_computation():
    g = torch.Generator().manual_seed(0)
    l_lab, l_unl, l_gen = (torch.randn(n, 10, generator=g, dtype=torch.float64) * 3 for n in (8, 9, 7))
    y = torch.randint(0, 10, (8,), generator=g)
    sup, unsup = semi_supervised_losses(l_lab, y, l_unl, l_gen)
    ref_sup, ref_unsup = _direct_losses(l_lab, y.numpy(), l_unl, l_gen)
    assert sup.item() == pytest.approx(ref_sup, rel=1e-12)
    assert unsup.item() == pytest.approx(ref_unsup, rel=1e-12)


def test_unsupervised_loss_is_finite_for_extreme_logits():
    big = torch.full((4, 10), 200.0)
    small = torch.full((4, 10), -200.0)
    _, unsup = semi_supervised_losses(big, torch.zeros(4, dtype=torch.long), big, small)
    assert torch.isfinite(unsup)
    assert unsup.item() == pytest.approx(0.0, abs=1e-6)  # D(real)≈1, D(fake)≈0: perfect D
    _, worst = semi_supervised_losses(big, torch.zeros(4, dtype=torch.long), small, big)
    assert torch.isfinite(worst) and worst.item() > 100


def test_unsupervised_loss_gradient_matches_float64_finite_difference():
    l_unl = torch.randn(5, 10, dtype=torch.float64, requires_grad=True)
    l_gen = torch.randn(5, 10, dtype=torch.float64)
    y = torch.zeros(5, dtype=torch.long)
    assert torch.autograd.gradcheck(
        lambda u: semi_supervised_losses(l_unl.detach(), y, u, l_gen)[1], (l_unl,)
    )


def test_generator_minimax_loss_is_mean_log_one_minus_d():
    logits = torch.randn(6, 10, dtype=torch.float64)
    z = logits.exp().sum(1)
    expected = torch.log(1 - z / (z + 1)).mean()
    assert generator_minimax_loss(logits).item() == pytest.approx(expected.item(), rel=1e-12)


def test_feature_matching_is_squared_difference_of_batch_means():
    real, fake = torch.randn(10, 6, dtype=torch.float64), torch.randn(7, 6, dtype=torch.float64)
    expected_l2 = sum((real[:, u].mean() - fake[:, u].mean()) ** 2 for u in range(6)) / 6
    expected_l1 = sum(abs(real[:, u].mean() - fake[:, u].mean()) for u in range(6)) / 6
    assert feature_matching_loss(real, fake).item() == pytest.approx(expected_l2.item(), rel=1e-12)
    assert feature_matching_loss(real, fake, "l1").item() == pytest.approx(expected_l1.item(), rel=1e-12)


def test_feature_matching_is_zero_for_equal_means_and_flattens_maps():
    x = torch.randn(4, 3, 2, 2)
    assert feature_matching_loss(x, x.flip(0)).item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ImprovedGANError, match="one shape"):
        feature_matching_loss(torch.randn(4, 3), torch.randn(4, 5))
    with pytest.raises(ImprovedGANError, match="unknown feature-matching norm"):
        feature_matching_loss(x, x, "l3")
