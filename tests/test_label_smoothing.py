import pytest
import torch

from improved_gan.errors import ImprovedGANError
from improved_gan.losses import semi_supervised_losses
from improved_gan.techniques import (
    binary_generator_loss,
    one_sided_binary_loss,
    one_sided_unsupervised_loss,
)

# A toy discrete problem on 5 points; batches of 10 hold each point 10·p times, so batch means
# are exact expectations.
P_DATA = torch.tensor([4, 3, 1, 1, 1], dtype=torch.float64) / 10
P_MODEL = torch.tensor([1, 1, 2, 3, 3], dtype=torch.float64) / 10
REAL = torch.repeat_interleave(torch.arange(5), (P_DATA * 10).round().long())
FAKE = torch.repeat_interleave(torch.arange(5), (P_MODEL * 10).round().long())


def _minimise(loss_fn, shape):
    logits = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([logits], lr=1, max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure():
        opt.zero_grad()
        loss = loss_fn(logits)
        loss.backward()
        return loss

    opt.step(closure)
    return logits.detach()


@pytest.mark.parametrize("alpha", [0.9, 0.75])
def test_one_sided_smoothing_optimal_binary_discriminator(alpha):
    logits = _minimise(lambda d: one_sided_binary_loss(d[REAL], d[FAKE], alpha), (5,))
    expected = alpha * P_DATA / (P_DATA + P_MODEL)
    torch.testing.assert_close(torch.sigmoid(logits), expected, atol=1e-6, rtol=0)


def test_one_sided_smoothing_optimal_k_plus_one_discriminator():
    alpha = 0.9
    logits = _minimise(lambda d: one_sided_unsupervised_loss(d[REAL], d[FAKE], alpha), (5, 3))
    z = logits.exp().sum(1)
    torch.testing.assert_close(z / (z + 1), alpha * P_DATA / (P_DATA + P_MODEL), atol=1e-6, rtol=0)


def test_alpha_one_is_the_unsmoothed_loss_and_smoothing_goes_through_the_semi_supervised_losses():
    g = torch.Generator().manual_seed(0)
    l_unl, l_gen = torch.randn(6, 10, generator=g), torch.randn(5, 10, generator=g)
    l_lab, y = torch.randn(4, 10, generator=g), torch.tensor([0, 1, 2, 3])
    _, plain = semi_supervised_losses(l_lab, y, l_unl, l_gen)
    torch.testing.assert_close(one_sided_unsupervised_loss(l_unl, l_gen, 1.0), plain)
    _, smoothed = semi_supervised_losses(l_lab, y, l_unl, l_gen, real_target=0.9)
    torch.testing.assert_close(smoothed, one_sided_unsupervised_loss(l_unl, l_gen, 0.9))
    # the real term is −α log D − (1 − α) log(1 − D), D = Z/(Z+1)
    d = l_unl.exp().sum(1) / (l_unl.exp().sum(1) + 1)
    real_term = (-0.9 * d.log() - 0.1 * (1 - d).log()).mean()
    fake_term = (-(1 - l_gen.exp().sum(1) / (l_gen.exp().sum(1) + 1)).log()).mean()
    torch.testing.assert_close(smoothed, 0.5 * (real_term + fake_term), rtol=1e-5, atol=1e-6)


def test_generator_target_and_bad_alpha():
    logits = torch.randn(8)
    d = torch.sigmoid(logits)
    torch.testing.assert_close(binary_generator_loss(logits), -d.log().mean())
    t = 0.375  # α/2 for the ImageNet code's α = 0.75
    torch.testing.assert_close(
        binary_generator_loss(logits, t), -(t * d.log() + (1 - t) * (1 - d).log()).mean()
    )
    with pytest.raises(ImprovedGANError, match=r"\(0, 1\]"):
        one_sided_binary_loss(logits, logits, 1.5)
    with pytest.raises(ImprovedGANError, match=r"\(0, 1\]"):
        one_sided_unsupervised_loss(logits[:, None], logits[:, None], 0.0)
