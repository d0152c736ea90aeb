import pytest
import torch

from improved_gan.errors import ImprovedGANError
from improved_gan.models import MnistDiscriminator
from improved_gan.techniques import FeatureExtractor


def test_feature_extractor_returns_the_named_layers_output_and_the_model_output():
    torch.manual_seed(0)
    D = MnistDiscriminator(hidden=(20, 10)).eval()
    x = torch.rand(4, 784)
    extractor = FeatureExtractor(D, "hidden.1")
    logits, f = extractor(x)
    torch.testing.assert_close(logits, D(x))
    torch.testing.assert_close(torch.relu(f), D.features(x))  # D.features = ReLU(hidden.1(·))
    torch.testing.assert_close(extractor.features(x), f)


def test_feature_extractor_stops_the_forward_pass_at_the_layer():
    D = MnistDiscriminator(hidden=(20, 10))
    calls = []
    D.output.register_forward_hook(lambda *args: calls.append(1))
    FeatureExtractor(D, "hidden.0").features(torch.rand(3, 784))
    assert calls == []  # the output layer never ran
    assert not D.hidden[0]._forward_hooks  # the temporary hook is removed
    D(torch.rand(3, 784))
    assert calls == [1]


def test_unknown_layer_lists_the_layers():
    with pytest.raises(ImprovedGANError, match="no layer 'hidden.9'.*hidden.0"):
        FeatureExtractor(MnistDiscriminator(hidden=(20, 10)), "hidden.9")
