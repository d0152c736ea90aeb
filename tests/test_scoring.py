"""Dataset classifiers and the `score` API and CLI, on the shipped MNIST with untrained classifiers."""

import json

import numpy as np
import pytest
import torch

from improved_gan.cli import main
from improved_gan.errors import ImprovedGANError
from improved_gan.metrics.classifier import (
    ARCHITECTURE,
    ClassifierNotFoundError,
    DatasetClassifier,
    classifier_outputs,
    default_classifier_path,
    fused_for_inference,
    load_classifier,
    train_classifier,
)
from improved_gan.metrics.extractors import Extractor
from improved_gan.metrics.fid import fid_from_features
from improved_gan.metrics.inception_score import inception_score
from improved_gan.metrics.kid import kernel_inception_distance
from improved_gan.metrics.score import score, score_generator_samples
from improved_gan.utils.checkpoint import save_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def cache_random_classifier(dataset: str = "mnist", seed: int = 0) -> DatasetClassifier:
    """An untrained classifier in the (per-test) cache: enough to test the plumbing."""
    torch.manual_seed(seed)
    model = DatasetClassifier().eval()
    meta = {
        "dataset": dataset,
        "architecture": ARCHITECTURE,
        "test_accuracy": "0.1",
        "epochs": "0",
        "seed": "0",
    }
    save_checkpoint(default_classifier_path(dataset), model.state_dict(), meta)
    return model


def mnist_test(n: int) -> torch.Tensor:
    from improved_gan.data import load_idx_dataset

    return torch.from_numpy(load_idx_dataset("mnist", "test")[0][:n])


def test_training_a_classifier_caches_it_and_it_learns():
    info = train_classifier("mnist", epochs=1, max_train_examples=1024, max_test_examples=500, progress=False)
    assert info.path == default_classifier_path("mnist") and info.path.is_file()
    assert info.test_accuracy > 0.3  # 8 steps on 1,024 images: well above chance (0.1)
    model, loaded = load_classifier("mnist")
    assert loaded.sha256 == info.sha256 and loaded.test_accuracy == pytest.approx(
        info.test_accuracy, abs=1e-6
    )
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    features, logits = classifier_outputs(model, mnist_test(10))
    assert features.shape == (10, 128) and logits.shape == (10, 10) and (features >= 0).all()


def test_inference_copy_gives_the_classifier_outputs():
    model = cache_random_classifier()
    with torch.no_grad():
        model.bn1.running_mean.uniform_(-1, 1)  # non-trivial statistics to fold
        model.bn2.running_var.uniform_(0.5, 2)
    images = mnist_test(64)
    expected = classifier_outputs(model, images)
    got = classifier_outputs(fused_for_inference(model), images)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert model.bn1.running_var.shape == (32,)  # the original is untouched


def test_missing_or_foreign_classifier_is_a_clear_error(tmp_path):
    with pytest.raises(ClassifierNotFoundError, match="improved-gan classifier train fashion-mnist"):
        load_classifier("fashion-mnist")
    save_checkpoint(
        default_classifier_path("mnist"), {"w": torch.zeros(1)}, {"dataset": "mnist", "architecture": "old"}
    )
    with pytest.raises(ImprovedGANError, match="--force"):
        load_classifier("mnist")
    with pytest.raises(ImprovedGANError, match="choose one of"):
        load_classifier("cifar10")


def test_score_equals_the_pure_functions_on_the_same_features():
    model = cache_random_classifier()
    images = mnist_test(300)
    features, logits = classifier_outputs(model, images)
    reference = mnist_test(600)[300:]
    ref_features, _ = classifier_outputs(model, reference)
    result = score(
        images,
        ["is", "fid", "kid"],
        "mnist",
        reference=reference,
        batch_size=64,
        kid_subsets=5,
        kid_subset_size=100,
        progress=False,
    )
    assert result["n"] == 300 and result["reference_n"] == 300
    # the extractor runs a BN-folded copy of the classifier: equal up to float32 rounding
    np.testing.assert_allclose(
        (result["inception_score_mean"], result["inception_score_std"]), inception_score(logits), rtol=1e-5
    )
    assert result["frechet_inception_distance"] == pytest.approx(
        fid_from_features(features, ref_features), rel=1e-4
    )
    assert "10 splits, contiguous" in result["is_profile"] and "ddof=0" in result["is_profile"]
    assert result["kernel_inception_distance_mean"] == pytest.approx(
        kernel_inception_distance(features.numpy(), ref_features.numpy(), subsets=5, subset_size=100)[0],
        rel=1e-4,
    )
    # float input in [-1, 1] scores as its uint8 rounding
    as_float = images.float() / 127.5 - 1
    assert score(as_float, ["is"], "mnist", progress=False)["inception_score_mean"] == pytest.approx(
        result["inception_score_mean"]
    )


def test_saved_reference_statistics_give_the_same_fid(tmp_path):
    cache_random_classifier()
    a, b = mnist_test(200), mnist_test(400)[200:]
    direct = score(a, ["fid", "kid"], "mnist", reference=b, kid_subsets=2, kid_subset_size=50, progress=False)
    saved = score(b, ["is"], "mnist", save_reference=tmp_path / "ref.npz", progress=False)
    assert saved["saved_reference"] == str(tmp_path / "ref.npz")
    # statistics saved without KID have no features
    with pytest.raises(ImprovedGANError, match="features"):
        score(a, ["kid"], "mnist", reference=tmp_path / "ref.npz", progress=False)
    score(
        b,
        ["kid"],
        "mnist",
        reference=b,
        save_reference=tmp_path / "ref.npz",
        kid_subsets=1,
        kid_subset_size=50,
        progress=False,
    )
    again = score(
        a,
        ["fid", "kid"],
        "mnist",
        reference=tmp_path / "ref.npz",
        kid_subsets=2,
        kid_subset_size=50,
        progress=False,
    )
    assert again["frechet_inception_distance"] == pytest.approx(
        direct["frechet_inception_distance"], rel=1e-9
    )
    assert again["kernel_inception_distance_mean"] == pytest.approx(
        direct["kernel_inception_distance_mean"], rel=1e-9
    )
    with pytest.raises(ImprovedGANError, match="--reference"):
        score(a, ["fid"], "mnist", progress=False)


def test_inception_extractor_path_with_random_weights(tmp_path):
    from improved_gan.metrics.inception import InceptionV3

    torch.manual_seed(0)
    net = InceptionV3(resize_to=75)
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    extractor = Extractor("inception", net, "random Inception", 3, None, 8)
    colours = torch.randint(0, 256, (24, 3, 1, 1), generator=torch.Generator().manual_seed(0))
    images = colours.expand(-1, -1, 32, 32).to(torch.uint8).contiguous()
    result = score(images, ["is"], extractor, splits=2, save_reference=tmp_path / "s.npz", progress=False)
    with torch.no_grad():
        features, logits = net(images)
    np.testing.assert_allclose(
        (result["inception_score_mean"], result["inception_score_std"]),
        inception_score(logits, splits=2),
        rtol=1e-5,
    )
    saved = np.load(tmp_path / "s.npz")
    assert saved["mu"].shape == (2048,) and str(saved["extractor"]) == "inception"
    np.testing.assert_allclose(saved["mu"], features.double().mean(0).numpy(), rtol=1e-4, atol=1e-7)
    import improved_gan.metrics.extractors as ex

    ex._warned_grey = False
    with pytest.warns(UserWarning, match="replicated to RGB"):
        score(images[:4, :1], ["is"], extractor, splits=2, progress=False)


def test_classifier_refuses_colour_and_wrong_sizes():
    cache_random_classifier()
    with pytest.raises(ImprovedGANError, match="grey"):
        score(torch.randint(0, 256, (10, 3, 28, 28), dtype=torch.uint8), ["is"], "mnist", progress=False)
    with pytest.raises(ImprovedGANError, match="28×28"):
        score(torch.randint(0, 256, (10, 1, 32, 32), dtype=torch.uint8), ["is"], "mnist", progress=False)


def test_score_cli_json_and_text(capsys, tmp_path):
    cache_random_classifier()
    np.savez(tmp_path / "x.npz", images=mnist_test(50).numpy())
    assert (
        main(["score", str(tmp_path / "x.npz"), "--extractor", "mnist", "--splits", "5", "--json", "--quiet"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 50 and out["inception_score_mean"] >= 1.0 and "mnist classifier" in out["extractor"]
    assert (
        main(
            [
                "score",
                "mnist-test",
                "--n",
                "100",
                "--metric",
                "is",
                "fid",
                "--reference",
                str(tmp_path / "x.npz"),
                "--quiet",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "mnist score" in text and "FID (mnist classifier features, 128-d) vs" in text
    assert main(["score", str(tmp_path / "missing"), "--quiet"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_score_generator_samples_returns_the_dataset_score():
    model = cache_random_classifier()
    images = mnist_test(100).numpy()
    out = score_generator_samples(images, "mnist")
    _, logits = classifier_outputs(model, torch.from_numpy(images))
    assert out["dataset_score"] == pytest.approx(inception_score(logits)[0], rel=1e-5)
    assert "dataset_fid" not in out


def test_classifier_train_cli_refuses_to_overwrite(capsys):
    cache_random_classifier()
    assert main(["classifier", "train", "mnist", "--epochs", "1", "--quiet"]) == 1
    assert "--force" in capsys.readouterr().err
