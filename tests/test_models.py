import torch

from improved_gan.models import (
    GaussianNoise,
    MnistDiscriminator,
    MnistGenerator,
    ShiftOnlyBatchNorm,
    WeightNormDense,
    data_dependent_init,
)


def test_mnist_discriminator_shapes_and_parameter_count():
    D = MnistDiscriminator()
    logits, features = D(torch.rand(5, 1, 28, 28), return_features=True)
    assert logits.shape == (5, 10) and features.shape == (5, 250)
    sizes = [784, 1000, 500, 250, 250, 250, 10]
    # trainable: V and b for every layer, plus the output layer's scale (hidden scales frozen)
    expected = sum(a * b + b for a, b in zip(sizes, sizes[1:])) + 10
    assert sum(p.numel() for p in D.parameters()) == expected
    frozen = [n for n, _ in D.named_buffers() if n.endswith("scale")]
    assert len(frozen) == 5 and "output.scale" in dict(D.named_parameters())


def test_features_method_equals_forward_features_under_same_noise():
    D = MnistDiscriminator()
    x = torch.rand(4, 784)
    torch.manual_seed(3)
    _, f1 = D(x, return_features=True)
    torch.manual_seed(3)
    f2 = D.features(x)
    assert torch.equal(f1, f2)


def test_discriminator_is_deterministic_in_eval_and_noisy_in_train():
    D = MnistDiscriminator()
    x = torch.rand(3, 784)
    D.eval()
    assert torch.equal(D(x), D(x))
    D.train()
    assert not torch.equal(D(x), D(x))


def test_generator_outputs_probabilities_from_uniform_noise():
    G = MnistGenerator()
    z = G.sample_noise(100, generator=torch.Generator().manual_seed(0))
    assert z.min() >= 0 and z.max() <= 1 and z.shape == (100, 100)
    x = G(z)
    assert x.shape == (100, 784) and x.min() > 0 and x.max() < 1
    assert len(list(G.parameters())) == 2 + 2 + 3  # two dense W, two BN shifts, V/scale/bias out


def test_data_dependent_init_gives_unit_variance_preactivations_on_the_init_batch():
    D = MnistDiscriminator()
    x = torch.rand(500, 784)
    D.train()
    torch.manual_seed(11)
    with torch.no_grad(), data_dependent_init(D):
        D(x)
    pre = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: pre.append(o))
        for m in D.modules()
        if isinstance(m, WeightNormDense)
    ]
    torch.manual_seed(11)  # the same noise as during the init pass
    with torch.no_grad():
        D(x)
    for h in hooks:
        h.remove()
    assert len(pre) == 6
    for out in pre:
        torch.testing.assert_close(out.mean(0), torch.zeros(out.shape[1]), atol=2e-5, rtol=0)
        torch.testing.assert_close(out.std(0, correction=0), torch.ones(out.shape[1]), atol=2e-4, rtol=0)


def test_weight_norm_output_is_invariant_to_scaling_v():
    layer = WeightNormDense(6, 4)
    x = torch.randn(3, 6)
    y = layer(x)
    with torch.no_grad():
        layer.weight_v.mul_(7.5)
    torch.testing.assert_close(layer(x), y)


def test_weight_norm_matches_explicit_formula():
    layer = WeightNormDense(5, 3, train_scale=True, eps=1e-6)
    with torch.no_grad():
        layer.scale.copy_(torch.tensor([0.5, 2.0, 3.0]))
        layer.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    x = torch.randn(4, 5, dtype=torch.float32)
    v = layer.weight_v.detach()
    w = layer.scale.detach()[:, None] * v / torch.sqrt(1e-6 + (v**2).sum(1, keepdim=True))
    torch.testing.assert_close(layer(x), x @ w.T + layer.bias.detach())


def test_shift_only_batch_norm_uses_batch_statistics_in_eval_too():
    bn = ShiftOnlyBatchNorm(3)
    x = torch.randn(50, 3) * 4 + 2
    bn.eval()
    y = bn(x)
    torch.testing.assert_close(y.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(0, correction=0), torch.ones(3), atol=1e-4, rtol=0)
    maps = torch.randn(8, 3, 4, 4)
    ym = bn(maps)
    torch.testing.assert_close(ym.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    assert [n for n, _ in bn.named_parameters()] == ["bias"]


def test_gaussian_noise_has_the_requested_std_and_is_off_in_eval():
    noise = GaussianNoise(0.5)
    x = torch.zeros(200_000)
    assert abs(noise(x).std().item() - 0.5) < 0.01
    noise.eval()
    assert torch.equal(noise(x), x)
