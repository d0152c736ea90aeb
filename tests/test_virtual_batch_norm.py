import pytest
import torch
from torch import nn

from improved_gan.errors import ImprovedGANError
from improved_gan.models import ConvGenerator, MnistGenerator
from improved_gan.techniques import (
    ReferenceBatch,
    VirtualBatchNorm1d,
    VirtualBatchNorm2d,
    forward_with_reference,
)
from improved_gan.techniques.virtual_batch_norm import reference_rows


def _union_norm(ref, x, gamma, beta, dims, eps=1e-5):
    """Independent computation: batch-normalise x with the statistics of ref ∪ {x}."""
    union = torch.cat([ref, x.unsqueeze(0)])
    var, mean = torch.var_mean(union, dim=dims, correction=0, keepdim=True)
    shape = (1, -1) + (1,) * (x.dim() - 1)
    return (((x.unsqueeze(0) - mean) / torch.sqrt(var + eps)) * gamma.view(shape) + beta.view(shape))[0]


@pytest.mark.parametrize("maps", [False, True])
def test_vbn_normalises_each_example_with_reference_plus_itself(maps):
    torch.manual_seed(0)
    layer = (VirtualBatchNorm2d(3) if maps else VirtualBatchNorm1d(3)).double()
    with torch.no_grad():
        layer.bias.normal_()
    shape = (3, 4, 4) if maps else (3,)
    ref = torch.randn(8, *shape, dtype=torch.float64) * 2 + 1
    live = torch.randn(5, *shape, dtype=torch.float64) * 3 - 1
    dims = (0, 2, 3) if maps else (0,)
    out = forward_with_reference(layer, ref, live)
    for i in range(5):
        torch.testing.assert_close(out[i], _union_norm(ref, live[i], layer.weight, layer.bias, dims))
    # the reference rows are normalised with their own statistics only
    with reference_rows(layer, 8):
        ref_out = layer(torch.cat([ref, live]))[:8]
    var, mean = torch.var_mean(ref, dim=dims, correction=0, keepdim=True)
    shape1 = (1, -1) + (1,) * (ref.dim() - 2)
    expected = (ref - mean) / torch.sqrt(var + 1e-5) * layer.weight.view(shape1) + layer.bias.view(shape1)
    torch.testing.assert_close(ref_out, expected)


@pytest.mark.parametrize("maps", [False, True])
def test_vbn_output_independent_of_other_examples(maps):
    torch.manual_seed(1)
    if maps:
        net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), VirtualBatchNorm2d(4), nn.ReLU())
        shape = (2, 5, 5)
    else:
        net = nn.Sequential(nn.Linear(6, 4), VirtualBatchNorm1d(4), nn.ReLU())
        shape = (6,)
    ref, live = torch.randn(10, *shape), torch.randn(7, *shape)
    out = forward_with_reference(net, ref, live)
    other = live.clone()
    other[1:] = torch.randn(6, *shape) * 5
    torch.testing.assert_close(forward_with_reference(net, ref, other)[0], out[0])
    torch.testing.assert_close(forward_with_reference(net, ref, live[:1])[0], out[0])
    # ...but it does depend on the reference batch
    assert not torch.allclose(forward_with_reference(net, ref * 2, live)[0], out[0])


def test_vbn_gradients_flow_through_the_reference_statistics():
    torch.manual_seed(2)
    layer = VirtualBatchNorm1d(3).double()
    ref = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    live = torch.randn(4, 3, dtype=torch.float64)
    forward_with_reference(layer, ref, live).square().sum().backward()
    ref2 = ref.detach().clone().requires_grad_(True)
    expected = torch.stack([_union_norm(ref2, x, layer.weight, layer.bias, (0,)) for x in live])
    expected.square().sum().backward()
    assert ref.grad.abs().sum() > 0
    torch.testing.assert_close(ref.grad, ref2.grad)


def test_reference_batch_wrapper_keeps_its_inputs_in_the_state_dict_and_errors_are_clear():
    net = nn.Sequential(nn.Linear(4, 3), VirtualBatchNorm1d(3))
    wrapped = ReferenceBatch(net, torch.randn(5, 4))
    assert "reference" in wrapped.state_dict()
    assert wrapped(torch.randn(2, 4)).shape == (2, 3)
    with pytest.raises(ImprovedGANError, match="needs a reference batch"):
        net(torch.randn(2, 4))
    with pytest.raises(ImprovedGANError, match="without VirtualBatchNorm"):
        ReferenceBatch(nn.Linear(2, 2), torch.randn(3, 2))
    with pytest.raises(ImprovedGANError, match="got input of shape"):
        forward_with_reference(VirtualBatchNorm2d(3), torch.randn(2, 3), torch.randn(2, 3))


def _mlp_g(norm):
    return MnistGenerator(noise_dim=8, hidden=16, out_features=20, norm=norm, reference_size=12)


def _conv_g(norm):
    return ConvGenerator(
        noise_dim=8, widths=(8, 6, 4), out_channels=1, image_size=28, norm=norm, reference_size=12
    )


@pytest.mark.parametrize("make", [_mlp_g, _conv_g])
def test_vbn_generator_sample_does_not_depend_on_its_batch_but_bn_generator_does(make):
    torch.manual_seed(3)
    for norm in ("vbn", "bn"):
        G = make(norm)
        z = G.sample_noise(6)
        a = G(z)[0]
        b = G(torch.cat([z[:1], G.sample_noise(9)]))[0]
        if norm == "vbn":
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
            assert "reference_noise" in G.state_dict()
        else:
            assert not torch.allclose(a, b, rtol=1e-5, atol=1e-6)
