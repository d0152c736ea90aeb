import pytest
import torch

from improved_gan.errors import ImprovedGANError
from improved_gan.techniques import HistoricalAveraging


def test_running_mean_is_the_arithmetic_mean_of_the_history():
    torch.manual_seed(0)
    w, b = torch.randn(3, 4, requires_grad=True), torch.randn(4, requires_grad=True)
    ha = HistoricalAveraging([w, b], weight=0.5)
    history_w, history_b = [], []
    for _ in range(37):
        with torch.no_grad():
            w.add_(torch.randn_like(w))
            b.mul_(1.1).add_(0.3)
        ha.update()
        history_w.append(w.detach().double().clone())
        history_b.append(b.detach().double().clone())
    torch.testing.assert_close(ha.means[0], torch.stack(history_w).mean(0), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ha.means[1], torch.stack(history_b).mean(0), rtol=1e-12, atol=1e-12)
    assert ha.count == 37


def test_penalty_is_weighted_squared_distance_zero_at_the_mean_with_the_right_gradient():
    module = torch.nn.Linear(5, 2)
    ha = HistoricalAveraging(module, weight=0.3)
    assert ha.penalty().item() == 0.0  # no history yet
    ha.update()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    ha.update()  # history: θ0 and θ0 + 1, mean θ0 + 0.5
    n = sum(p.numel() for p in module.parameters())
    penalty = ha.penalty()
    assert penalty.item() == pytest.approx(0.3 * n * 0.25, rel=1e-6)
    penalty.backward()
    for p in module.parameters():  # ∂/∂θ λ‖θ − θ̄‖² = 2λ(θ − θ̄) = 0.3
        torch.testing.assert_close(p.grad, torch.full_like(p, 0.3))
    with torch.no_grad():
        for p, m in zip(module.parameters(), ha.means):
            p.copy_(m)
    assert ha.penalty().item() == 0.0


def test_state_dict_round_trip_and_bad_input():
    p = torch.randn(4, requires_grad=True)
    ha = HistoricalAveraging([p], 1.0)
    ha.update()
    with torch.no_grad():
        p.add_(2.0)
    ha.update()
    other = HistoricalAveraging([p], 1.0)
    other.load_state_dict(ha.state_dict())
    assert other.count == 2 and torch.equal(other.means[0], ha.means[0])
    assert other.penalty().item() == pytest.approx(ha.penalty().item())
    with pytest.raises(ImprovedGANError, match="≥ 0"):
        HistoricalAveraging([p], -1.0)
    with pytest.raises(ImprovedGANError, match="at least one parameter"):
        HistoricalAveraging([], 1.0)


def _bilinear_game(weight: float, steps: int = 800, lr: float = 0.1) -> float:
    """Simultaneous gradient play on min_x max_y x·y from (1, 1); returns the final distance to
    the equilibrium (0, 0)."""
    x, y = torch.ones(1, requires_grad=True), torch.ones(1, requires_grad=True)
    ha_x, ha_y = HistoricalAveraging([x], weight), HistoricalAveraging([y], weight)
    ha_x.update()
    ha_y.update()
    for _ in range(steps):
        (gx,) = torch.autograd.grad(x * y.detach() + ha_x.penalty(), x)
        (gy,) = torch.autograd.grad(-x.detach() * y + ha_y.penalty(), y)
        with torch.no_grad():
            x.sub_(lr * gx)
            y.sub_(lr * gy)
        ha_x.update()
        ha_y.update()
    return float(torch.cat([x, y]).detach().norm())


def test_historical_averaging_finds_the_equilibrium_where_gradient_play_spirals_out():
    # Paper §3.3: historical averaging finds equilibria of games where gradient descent fails.
    assert _bilinear_game(0.0) > 50.0
    assert _bilinear_game(0.1) < 0.02
