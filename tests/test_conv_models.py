import pytest
import torch
import torch.nn.functional as F

from improved_gan.errors import ImprovedGANError
from improved_gan.models import (
    ConvDiscriminator,
    ConvGenerator,
    WeightNormConv2d,
    WeightNormConvTranspose2d,
    data_dependent_init,
)
from improved_gan.techniques import MinibatchDiscrimination


def test_weight_norm_conv_matches_explicit_formula_per_output_filter():
    layer = WeightNormConv2d(3, 4, 3, stride=2, padding=1, train_scale=True)
    with torch.no_grad():
        layer.scale.copy_(torch.tensor([0.5, 1.0, 2.0, 3.0]))
        layer.bias.normal_()
    v = layer.weight_v.detach()
    w = (
        layer.scale.detach().view(-1, 1, 1, 1)
        * v
        / torch.sqrt(1e-6 + v.square().sum((1, 2, 3), keepdim=True))
    )
    x = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(layer(x), F.conv2d(x, w, layer.bias.detach(), stride=2, padding=1))


def test_weight_norm_deconv_normalises_per_output_channel():
    layer = WeightNormConvTranspose2d(4, 2, 5, stride=2, padding=2, output_padding=1)
    v = layer.weight_v.detach()  # (in, out, k, k)
    w = v / torch.sqrt(1e-6 + v.square().sum((0, 2, 3), keepdim=True))
    x = torch.randn(3, 4, 4, 4)
    expected = F.conv_transpose2d(x, w, stride=2, padding=2, output_padding=1)
    torch.testing.assert_close(layer(x), expected)
    assert layer(x).shape == (3, 2, 8, 8)


def test_conv_data_dependent_init_gives_the_init_scale_per_channel():
    torch.manual_seed(0)
    layer = WeightNormConv2d(2, 5, 3, padding=1, init_scale=0.1)
    x = torch.randn(16, 2, 6, 6) * 3 + 1
    with torch.no_grad(), data_dependent_init(layer):
        layer(x)
    y = layer(x).detach()
    torch.testing.assert_close(y.mean((0, 2, 3)), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std((0, 2, 3), correction=0), torch.full((5,), 0.1), atol=1e-5, rtol=0)
    assert "scale" in dict(layer.named_buffers())  # hidden scales stay frozen


def test_mnist_conv_discriminator_and_generator_shapes():
    torch.manual_seed(0)
    mb = MinibatchDiscrimination(8, num_kernels=5, kernel_dim=3)
    D = ConvDiscriminator(
        1, 28, (4, 8), 10, first_padding=3, input_noise=0.2, input_dropout=0.0, minibatch=mb
    )
    logits, features = D(torch.rand(6, 784), return_features=True)
    assert logits.shape == (6, 10) and features.shape == (6, 8)
    assert D.output.weight_v.shape == (10, 8 + 5)
    trainable_scales = [n for n, _ in D.named_parameters() if n.endswith("scale")]
    assert trainable_scales == ["minibatch.log_scale", "output.scale"]
    for size in (28, 32):
        G = ConvGenerator(noise_dim=10, widths=(8, 4, 4), out_channels=1, image_size=size)
        x = G(G.sample_noise(5))
        assert x.shape == (5, 1, size, size) and x.abs().max() < 1
    with pytest.raises(ImprovedGANError, match="expects"):
        D(torch.rand(2, 1, 32, 32))
    with pytest.raises(ImprovedGANError, match="28×28 or 32×32"):
        ConvGenerator(image_size=64)
