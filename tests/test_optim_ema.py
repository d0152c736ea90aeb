import numpy as np
import pytest
import torch
from torch import nn

from improved_gan.training.ema import ParameterEMA
from improved_gan.training.optim import ReferenceAdam


def test_reference_adam_matches_numpy_with_eps_inside_the_square_root():
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(4, 3))
    grads = [rng.normal(size=(4, 3)) * 1e-3 for _ in range(5)]
    lr, b1, b2, eps = 0.01, 0.5, 0.999, 1e-8
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / np.sqrt(v / (1 - b2**t) + eps)
    param = nn.Parameter(torch.tensor(p0))
    opt = ReferenceAdam([param], lr=lr, betas=(b1, b2), eps=eps)
    for g in grads:
        param.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(param.detach().numpy(), p, rtol=1e-10, atol=1e-12)


def test_reference_adam_differs_from_torch_adam_when_gradients_are_tiny():
    """ε inside the root matters when v̂ ≈ ε: torch.optim.Adam takes a much larger step."""
    a, b = (
        nn.Parameter(torch.zeros(1, dtype=torch.float64)),
        nn.Parameter(torch.zeros(1, dtype=torch.float64)),
    )
    for p in (a, b):
        p.grad = torch.full((1,), 1e-5, dtype=torch.float64)
    ReferenceAdam([a], lr=1.0).step()
    torch.optim.Adam([b], lr=1.0, betas=(0.5, 0.999), eps=1e-8).step()
    assert abs(a.item()) < 0.2 * abs(b.item())


def test_ema_zero_init_without_correction_is_the_reference_average():
    layer = nn.Linear(2, 1, bias=False)
    ema = ParameterEMA(layer, decay=0.9, bias_correction=False)
    history = []
    for k in range(4):
        with torch.no_grad():
            layer.weight.fill_(float(k + 1))
        history.append(float(k + 1))
        ema.update()
    expected = sum(0.1 * 0.9 ** (3 - i) * w for i, w in enumerate(history))
    assert ema.averaged()[0][0, 0].item() == pytest.approx(expected)


def test_ema_bias_correction_gives_a_weighted_mean_and_swaps_back():
    layer = nn.Linear(2, 1, bias=False)
    ema = ParameterEMA(layer, decay=0.9, bias_correction=True)
    with torch.no_grad():
        layer.weight.fill_(3.0)
    for _ in range(5):
        ema.update()
    assert ema.averaged()[0][0, 0].item() == pytest.approx(3.0)  # constant history -> itself
    with torch.no_grad():
        layer.weight.fill_(-1.0)
    with ema.swapped_in() as m:
        assert m.weight[0, 0].item() == pytest.approx(3.0)
    assert layer.weight[0, 0].item() == -1.0
    state = ema.state_dict()
    other = ParameterEMA(layer, decay=0.9)
    other.load_state_dict(state)
    assert other.num_updates == 5 and torch.equal(other.shadow[0], ema.shadow[0])
