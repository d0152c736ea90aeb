import math

import pytest
import torch

from improved_gan.errors import ImprovedGANError
from improved_gan.models import data_dependent_init
from improved_gan.techniques import (
    JointMinibatchDiscrimination,
    MinibatchDiscrimination,
    has_cross_example_layers,
    pairwise_l1,
)


def _layer(a=4, b=3, c=2, seed=0):
    torch.manual_seed(seed)
    layer = MinibatchDiscrimination(a, num_kernels=b, kernel_dim=c).double()
    with torch.no_grad():
        layer.log_scale.normal_(0.0, 0.3)
        layer.bias.normal_()
    return layer


def _double_loop(layer, f):
    """o[i, b] = Σ_{j≠i} exp(−Σ_c |M[i,b,c] − M[j,b,c]|) + bias[b] with plain Python loops."""
    theta, ls, bias = layer.theta.detach(), layer.log_scale.detach(), layer.bias.detach()
    n, a = f.shape
    _, b_, c_ = theta.shape
    t = torch.zeros_like(theta)
    for b in range(b_):
        for c in range(c_):
            norm = math.sqrt(sum(theta[k, b, c].item() ** 2 for k in range(a)))
            for k in range(a):
                t[k, b, c] = theta[k, b, c] * math.exp(ls[b, c].item()) / norm
    m = [
        [[sum(f[i, k].item() * t[k, b, c].item() for k in range(a)) for c in range(c_)] for b in range(b_)]
        for i in range(n)
    ]
    o = torch.zeros(n, b_, dtype=torch.float64)
    for i in range(n):
        for b in range(b_):
            total = 0.0
            for j in range(n):
                if j != i:
                    total += math.exp(-sum(abs(m[i][b][c] - m[j][b][c]) for c in range(c_)))
            o[i, b] = total + bias[b].item()
    return torch.cat([f, o], dim=1)


def test_minibatch_features_equal_a_direct_double_loop():
    layer = _layer()
    f = torch.randn(5, 4, dtype=torch.float64)
    torch.testing.assert_close(layer(f), _double_loop(layer, f), rtol=1e-10, atol=1e-12)


def test_minibatch_features_change_when_another_example_changes():
    layer = _layer()
    f = torch.randn(6, 4, dtype=torch.float64)
    out = layer(f)
    g = f.clone()
    g[3] += 0.5
    changed = layer(g)
    assert not torch.allclose(out[0, 4:], changed[0, 4:])  # row 0's minibatch features moved
    torch.testing.assert_close(out[0, :4], changed[0, :4])  # its own features did not
    # the self pair is excluded: a lone duplicate pair gives exactly exp(0) = 1 from the other
    dup = torch.stack([f[0], f[0]])
    o = layer(dup)[:, 4:] - layer.bias.detach()
    torch.testing.assert_close(o, torch.ones(2, 3, dtype=torch.float64))


def test_pairwise_l1_matches_broadcast_and_its_gradient():
    m = torch.randn(7, 3, 4, dtype=torch.float64, requires_grad=True)
    naive = (m.unsqueeze(1) - m.unsqueeze(0)).abs().sum(-1)
    torch.testing.assert_close(pairwise_l1(m), naive)
    assert torch.autograd.gradcheck(pairwise_l1, (m,))


def test_pairwise_l1_saves_only_its_input_not_an_n2bc_tensor():
    m = torch.randn(20, 6, 5, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        pairwise_l1(m)
    assert saved == [m.numel()]


def test_data_dependent_init_sets_nearest_neighbour_distance_two_and_zero_mean_output():
    torch.manual_seed(1)
    layer = MinibatchDiscrimination(8, num_kernels=4, kernel_dim=3)
    x = torch.randn(50, 2, 2, 2)  # conv maps are flattened
    with torch.no_grad(), data_dependent_init(layer):
        init_out = layer(x)
    with torch.no_grad():
        out = layer(x)
        m = torch.einsum("na,abc->nbc", x.flatten(1), layer.kernel_tensor())
        d = pairwise_l1(m) + 1e9 * torch.eye(50).unsqueeze(-1)
    torch.testing.assert_close(d.min(dim=1).values.mean(0), torch.full((4,), 2.0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[:, 8:].mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(init_out, out, rtol=1e-5, atol=1e-5)
    assert out.shape == (50, 12) and layer.out_features == 12


def test_minibatch_layer_rejects_bad_input_with_one_line_errors():
    layer = MinibatchDiscrimination(4, 3, 2)
    with pytest.raises(ImprovedGANError, match="expects 4 features"):
        layer(torch.randn(5, 3))
    with pytest.raises(ImprovedGANError, match="at least 2"):
        layer(torch.randn(1, 4))
    assert has_cross_example_layers(torch.nn.Sequential(torch.nn.Linear(4, 4), layer))
    assert not has_cross_example_layers(torch.nn.Linear(4, 4))


def test_joint_variant_matches_a_double_loop_with_the_reference_normaliser():
    torch.manual_seed(2)
    layer = JointMinibatchDiscrimination(3, num_kernels=2, kernel_dim=4).double()
    x = torch.randn(6, 3, dtype=torch.float64)  # 3 real rows, then 3 fake rows
    out = layer(x, num_real=3)
    m = layer.linear(x).detach().view(6, 2, 4)
    per_half = 3 * 6 - 3  # off-diagonal entries in one half of the 6×6 mask
    for i in range(6):
        for b in range(2):
            c = [math.exp(-(m[i, b] - m[j, b]).abs().sum().item()) if j != i else 0.0 for j in range(6)]
            assert out[i, 3 + b].item() == pytest.approx(sum(c[:3]) / per_half, rel=1e-12)
            assert out[i, 5 + b].item() == pytest.approx(sum(c[3:]) / per_half, rel=1e-12)
    assert out.shape == (6, 3 + 2 * 2)
    with pytest.raises(ImprovedGANError, match="needs real"):
        layer(x, num_real=0)
    all_real = layer(x, num_real=6)  # test-time batches: real rows only, fake features 0
    assert (all_real[:, 5:] == 0).all()
    assert all_real[0, 3].item() == pytest.approx(
        sum(math.exp(-(m[0, 0] - m[j, 0]).abs().sum().item()) for j in range(1, 6)) / (6 * 6 - 6), rel=1e-12
    )
