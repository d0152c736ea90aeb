"""The CIFAR-10, SVHN, minibatch-discrimination and ImageNet models as the presets build them:
parameter counts from the reference's layer lists (openai/improved-gan `mnist_svhn_cifar10/train_cifar_*.py`, `train_svhn_*.py`, `imagenet/discriminator.py`), worked out
by hand below, and output shapes."""

import pytest
import torch

from improved_gan.models import CrossBatchNorm, ImagenetDiscriminator, ImagenetGenerator
from improved_gan.training import load_config
from improved_gan.training.build import build_models


def _trainable(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def conv(c_in: int, c_out: int, k: int) -> int:
    """A weight-normalised conv: V (c_out·c_in·k·k) and bias (c_out); its scale is frozen."""
    return c_out * c_in * k * k + c_out


def cifar_style_d(w1: int, w2: int, k: int = 10, mb: tuple[int, int] | None = None) -> int:
    convs = conv(3, w1, 3) + 2 * conv(w1, w1, 3) + conv(w1, w2, 3) + 3 * conv(w2, w2, 3) + 2 * conv(w2, w2, 1)
    features = w2
    minibatch = 0
    if mb is not None:  # θ (A·B·C), log scale (B·C), bias (B)
        b, c = mb
        minibatch = w2 * b * c + b * c + b
        features += b
    output = k * features + k + k  # V, bias, trainable scale
    return convs + minibatch + output


# G: dense 100 → 8192 without bias; shift-only BN biases; deconvs without bias; the last deconv
# weight-normalised with bias and trainable scale.
CIFAR_G = 100 * 8192 + 8192 + 512 * 256 * 25 + 256 + 256 * 128 * 25 + 128 + 128 * 3 * 25 + 3 + 3


@pytest.mark.parametrize(
    "preset, d_params",
    [
        ("cifar10-fm", cifar_style_d(96, 192)),
        ("svhn-fm", cifar_style_d(64, 128)),
        ("cifar10-mbd", cifar_style_d(96, 192, mb=(100, 5))),
        ("svhn-mbd", cifar_style_d(96, 192, mb=(100, 5))),
    ],
)
def test_reference_conv_models_have_the_reference_parameter_counts(preset, d_params):
    torch.manual_seed(0)
    D, G = build_models(load_config(preset))
    assert _trainable(D) == d_params
    assert _trainable(G) == CIFAR_G
    # Every hidden conv's weight-norm scale is frozen (a buffer), as in the reference.
    assert sum(1 for n, _ in D.named_buffers() if n.endswith("scale")) == 9
    logits, features = D(torch.rand(4, 3, 32, 32) * 2 - 1, return_features=True)
    width = load_config(preset).conv.d_widths[1]
    assert logits.shape == (4, 10) and features.shape == (4, width)
    x = G(G.sample_noise(4))
    assert x.shape == (4, 3, 32, 32) and x.abs().max() < 1


def test_cifar_numbers_written_out():
    """The arithmetic above, spelled out once for the CIFAR-10 feature-matching D."""
    assert (
        cifar_style_d(96, 192)
        == (
            (96 * 3 * 9 + 96)
            + 2 * (96 * 96 * 9 + 96)
            + (192 * 96 * 9 + 192)
            + 3 * (192 * 192 * 9 + 192)
            + 2 * (192 * 192 + 192)
            + (10 * 192 + 10 + 10)
        )
        == 1_406_804
    )
    assert CIFAR_G == 4_933_382


def test_table3_vbn_generator_has_the_same_parameters_as_bn():
    D, G = build_models(load_config("table3-all"))
    _, G_bn = build_models(load_config("table3-vbn+bn"))
    assert _trainable(G) == _trainable(G_bn) == CIFAR_G  # shift-only VBN: one β per feature
    assert G.reference_noise.shape == (100, 100)


IMAGENET_G = (
    8192 * 8192
    + 8192  # linear z → 4·4·512, with bias
    + 2 * (512 + 256 + 128 + 64 + 64 + 64)  # six VBN layers, γ and β per channel
    + (512 + 64) * 256 * 25
    + 256  # deconvs with bias; input = previous + noise-map channels
    + (256 + 64) * 128 * 25
    + 128
    + (128 + 32) * 64 * 25
    + 64
    + (64 + 16) * 64 * 25
    + 64
    + (64 + 8) * 64 * 25
    + 64
    + (64 + 8) * 3 * 25
    + 3  # the stride-1 output deconv
)
IMAGENET_D = (
    (3 * 64 * 9 + 64)
    + (64 * 128 * 9 + 128)
    + (128 * 256 * 9 + 256)
    + 2 * (256 * 256 * 9 + 256)
    + (256 * 512 * 9 + 512)
    + (512 * 512 * 9 + 512)
    + 2 * (64 + 128 + 256 + 256 + 256 + 512 + 512)  # cross-batch norms, γ and β
    + (512 * 4 * 4 * 2560 + 2560)
    + 2 * 2560
    + (2560 * 300 * 50 + 300 * 50)  # minibatch features: linear to 300 kernels × 50 dims
    + (2560 + 2 * 300) * 1001
    + 1001  # K + 1 = 1001 logits
)


def test_imagenet_models_have_the_reference_parameter_counts():
    torch.manual_seed(0)
    D, G = build_models(load_config("imagenet128"))
    assert _trainable(G) == IMAGENET_G
    assert _trainable(D) == IMAGENET_D
    assert G.noise_dim == 8192 + 64 * 16 + 64 * 64 + 32 * 256 + 16 * 1024 + 8 * 4096 + 8 * 16384
    assert D.output.out_features == 1001


def test_small_imagenet_models_output_shapes_and_explicit_generated_logit():
    torch.manual_seed(0)
    G = ImagenetGenerator(z_dim=16, widths=(8, 8, 4, 4, 4, 4), noise_channels=(2,) * 6, reference_size=3)
    x = G(G.sample_noise(2))
    assert x.shape == (2, 3, 128, 128) and x.abs().max() < 1
    D = ImagenetDiscriminator(
        num_classes=5, widths=(4, 4, 8, 8, 8, 8, 8), hidden=16, minibatch_kernels=3, minibatch_kernel_dim=2
    )
    batch = torch.cat([torch.rand(3, 3, 128, 128), x.detach()])
    full = D.explicit_logits(batch, num_real=3)
    assert full.shape == (5, 6)
    D.eval()  # no input noise: the same pass twice gives the same numbers
    full = D.explicit_logits(batch, num_real=3)
    rel = D(batch, num_real=3)
    torch.testing.assert_close(rel, full[:, :5] - full[:, 5:])
    # The GAN logit lse(l_1..K) − l_gen is the same from either form.
    torch.testing.assert_close(torch.logsumexp(rel, 1), torch.logsumexp(full[:, :5], 1) - full[:, 5])
    assert D(batch[:3]).shape == (3, 5)  # test batches: real rows only


def test_cross_batch_norm_uses_real_rows_for_the_first_half_of_channels():
    torch.manual_seed(0)
    norm = CrossBatchNorm(4)
    with torch.no_grad():
        norm.weight.fill_(1.0)
    real, fake = torch.randn(5, 4) * 3 + 1, torch.randn(7, 4) - 2
    out = norm(torch.cat([real, fake]), num_real=5)

    def z(x, ref):
        return (x - ref.mean(0)) / torch.sqrt(ref.var(0, correction=0) + 1e-5)

    torch.testing.assert_close(out[:, :2], z(torch.cat([real, fake])[:, :2], real[:, :2]))
    torch.testing.assert_close(out[:, 2:], z(torch.cat([real, fake])[:, 2:], fake[:, 2:]))


@pytest.mark.parametrize(
    "preset, input_dropout, input_noise",
    [("cifar10-fm", 0.2, 0.0), ("svhn-fm", 0.2, 0.0), ("cifar10-mbd", 0.0, 0.2), ("svhn-mbd", 0.0, 0.2)],
)
def test_conv_discriminators_have_the_reference_regularisers_and_geometry(preset, input_dropout, input_noise):
    D, _ = build_models(load_config(preset))
    assert D.input_dropout.p == input_dropout and D.input_noise.sigma == input_noise
    assert [d.p for d in D.dropouts.values()] == [0.5, 0.5] and D.lrelu_slope == 0.2
    strides = [c.stride for c in D.convs]
    paddings = [c.padding for c in D.convs]
    kernels = [c.weight_v.shape[-1] for c in D.convs]
    assert strides == [1, 1, 2, 1, 1, 2, 1, 1, 1]
    assert paddings == [1, 1, 1, 1, 1, 1, 0, 0, 0] and kernels == [3] * 7 + [1, 1]
    shapes = []
    D.convs[6].register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
    D.eval()(torch.zeros(2, 3, 32, 32))
    width = load_config(preset).conv.d_widths[1]
    assert shapes == [(width, 6, 6)]  # the valid 3×3 conv: 8×8 → 6×6, as the reference
    assert isinstance(D.output.scale, torch.nn.Parameter) and D.output.init_scale == 0.1
