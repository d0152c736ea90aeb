"""The package's single owners: the dataset registry, the resume rule by groups, the metric
registry, the generators' noise base and the one sampler."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from improved_gan.data import CLASSIFIER_DATASETS, DATASETS, dataset_info, to_float
from improved_gan.errors import ImprovedGANError
from improved_gan.metrics import register_metric, sample_generator, score
from improved_gan.metrics.extractors import Extractor
from improved_gan.models import ConvDiscriminator, ConvGenerator, ImagenetGenerator, MnistGenerator
from improved_gan.training.config import MODEL_DATASETS, ConvConfig, TrainConfig
from improved_gan.training.optim import ReferenceAdam


def test_model_datasets_follow_from_the_dataset_shapes():
    assert MODEL_DATASETS == {
        "mnist-mlp": ("mnist", "fashion-mnist", "synthetic", "folder", "npz"),
        "conv28": ("mnist", "fashion-mnist", "synthetic", "folder", "npz"),
        "conv32": ("cifar10", "svhn", "synthetic", "folder", "npz"),
        "imagenet128": ("imagefolder", "synthetic", "folder", "npz"),
    }
    assert CLASSIFIER_DATASETS == ("mnist", "fashion-mnist")
    assert TrainConfig(dataset="svhn", model="conv32").classes == DATASETS["svhn"].classes == 10
    with pytest.raises(ImprovedGANError, match="unknown dataset 'cifar100'"):
        dataset_info("cifar100")


def test_scaling_to_minus_one_one_uses_each_datasets_divisor():
    x = np.array([[0, 255]], np.uint8)
    np.testing.assert_allclose(to_float(x, "cifar10", (-1.0, 1.0)), [[-127.5 / 128, 127.5 / 128]])
    np.testing.assert_allclose(to_float(x, "svhn", (-1.0, 1.0)), [[-1.0, 1.0]])
    np.testing.assert_allclose(to_float(x, "mnist", (0.0, 1.0)), [[0.0, 1.0]])


def test_conv_config_defaults_are_the_discriminators():
    defaults = inspect.signature(ConvDiscriminator).parameters
    for key in ("input_noise", "input_dropout", "dropout", "lrelu_slope"):
        assert getattr(ConvConfig(), key) == defaults[key].default, key
    assert ConvConfig().d_widths == defaults["widths"].default


def test_runtime_groups_hold_exactly_the_settings_a_resume_may_change():
    free = set(TrainConfig.runtime_fields())
    assert {"epochs", "device", "threads", "data_dir", "amp", "compile", "tensorboard", "score_every"} <= free
    assert not free & {"lr", "seed", "labels", "batch_size", "techniques", "ema", "model", "dataset"}


def test_reference_adam_without_a_learning_rate_refuses_to_step():
    p = torch.nn.Parameter(torch.ones(3))
    opt = ReferenceAdam([p], lr=None)
    p.grad = torch.ones(3)
    with pytest.raises(RuntimeError, match="learning rate"):
        opt.step()
    opt.param_groups[0]["lr"] = 0.1
    opt.step()
    assert torch.all(p < 1)


@pytest.mark.parametrize(
    ("make", "low"),
    [
        (lambda: MnistGenerator(norm="vbn", reference_size=8), 0.0),
        (lambda: ImagenetGenerator(16, (8,) * 6, (2,) * 6, 4), -1.0),
    ],
)
def test_generators_share_the_noise_base(make, low):
    torch.manual_seed(0)
    G = make()
    z = G.sample_noise(500, generator=torch.Generator().manual_seed(1))
    assert z.shape == (500, G.noise_dim) and float(z.min()) >= low and float(z.max()) < 1
    assert float(z.min()) < low + 0.01  # the whole range is used
    assert G.reference_noise.shape[1] == G.noise_dim  # VBN's fixed reference batch of noise
    with pytest.raises(ImprovedGANError, match="unknown generator norm"):
        MnistGenerator(norm="layer") if isinstance(G, MnistGenerator) else ImagenetGenerator(
            16, (8,) * 6, (2,) * 6, 4, "layer"
        )


def test_one_example_of_vbn_does_not_depend_on_the_rest_of_its_batch():
    torch.manual_seed(0)
    G = ConvGenerator(widths=(8, 4, 4), norm="vbn", reference_size=6).train()
    z = G.sample_noise(5)
    with torch.no_grad():
        torch.testing.assert_close(G(z)[:1], G(z[:1]), rtol=1e-4, atol=1e-5)


def test_sample_generator_keeps_colour_and_an_empty_share():
    torch.manual_seed(0)
    G = ConvGenerator(widths=(8, 4, 4))
    full = sample_generator(G, 7, seed=2, batch_size=4, value_range=(-1.0, 1.0))
    assert full.shape == (7, 32, 32, 3) and full.dtype == np.uint8
    share = sample_generator(G, 7, seed=2, batch_size=4, value_range=(-1.0, 1.0), batches=range(1, 2))
    np.testing.assert_array_equal(share, full[4:])  # batch 1 keeps its own noise
    assert sample_generator(G, 7, seed=2, batch_size=4, batches=range(0)).shape == (0, 32, 32, 3)


def test_a_registered_metric_is_computed_in_the_same_pass():
    @register_metric("mean_logit", needs=("logits",))
    def mean_logit(outputs, reference, options):
        return {"splits_seen": options.splits, "n_logits": outputs.logits.seen}

    class Linear(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(784, 10, generator=torch.Generator().manual_seed(0)))

        def forward(self, x):
            f = x.flatten(1).float() / 255
            return f, f @ self.w

    extractor = Extractor("toy", Linear(), "toy", 1, (28, 28), 8)
    images = np.random.RandomState(0).randint(0, 256, (20, 28, 28)).astype(np.uint8)
    out = score(images, ["is", "mean_logit"], extractor, splits=5, progress=False)
    assert out["splits_seen"] == 5 and out["n_logits"] == 20 and out["inception_score_mean"] >= 1
    with pytest.raises(ImprovedGANError, match="unknown metric"):
        score(images, ["nope"], extractor, progress=False)
