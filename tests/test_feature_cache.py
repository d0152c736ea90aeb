"""The disk cache of reference features: hit on the second call, keyed on every pixel and the
weights, corrupt files recomputed, --no-cache writes nothing; and the score CLI's labels."""

import json
import os

import numpy as np
import pytest
import torch
from test_scoring import cache_random_classifier

from improved_gan.cli import main
from improved_gan.metrics.extractors import Extractor
from improved_gan.metrics.feature_cache import cache_dir, cache_key, load_features
from improved_gan.metrics.inputs import open_source
from improved_gan.metrics.score import score

pytestmark = pytest.mark.usefixtures("one_thread")


class CountingFeatures(torch.nn.Module):
    """A linear 16-d feature map of 28×28 grey images that counts the images it sees."""

    feature_dim = 16

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(784, 16, generator=torch.Generator().manual_seed(seed)))
        self.seen = 0

    def forward(self, x):
        self.seen += len(x)
        f = x.flatten(1).float() / 255 @ self.w
        return f, f[:, :10]


def counting_extractor(seed: int = 0) -> Extractor:
    return Extractor("toy", CountingFeatures(seed), "toy linear", 1, (28, 28), 50)


def images(n: int, seed: int) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, (n, 28, 28)).astype(np.uint8)


def fid_kid(ext: Extractor, reference, **kw) -> dict:
    return score(
        images(120, 1), ["fid", "kid"], ext, reference=reference, kid_subsets=2, kid_subset_size=50, **kw
    )


def test_second_score_loads_the_reference_features_from_the_cache(tmp_path):
    np.save(tmp_path / "ref.npy", images(150, 2))
    ext = counting_extractor()
    first = fid_kid(ext, str(tmp_path / "ref.npy"), progress=False)
    assert ext.module.seen == 120 + 150 and first["reference_cache"] == "saved"
    second = fid_kid(ext, str(tmp_path / "ref.npy"), progress=False)
    assert ext.module.seen == 2 * 120 + 150 and second["reference_cache"] == "loaded"  # only the input
    assert second["reference_cache_path"] == first["reference_cache_path"]
    for key in ("frechet_inception_distance", "kernel_inception_distance_mean", "reference_n"):
        assert second[key] == first[key]  # bit for bit
    assert first["features"] == "toy features, 16-d"


def test_one_changed_pixel_or_other_weights_change_the_key():
    a = images(30, 3)
    b = a.copy()
    b[17, 5, 9] ^= 1
    ext = counting_extractor()
    key = cache_key(ext, open_source(a), "auto")
    assert key == cache_key(ext, open_source(a.copy()), "auto")
    assert key != cache_key(ext, open_source(b), "auto")
    assert key != cache_key(counting_extractor(seed=1), open_source(a), "auto")
    assert key != cache_key(ext, open_source(a), "0,1")


def test_a_truncated_cache_file_is_ignored_with_a_warning_and_rewritten(tmp_path):
    np.save(tmp_path / "ref.npy", images(150, 2))
    ext = counting_extractor()
    first = fid_kid(ext, str(tmp_path / "ref.npy"), progress=False)
    path = first["reference_cache_path"]
    with open(path, "r+b") as f:
        f.truncate(100)
    with pytest.warns(UserWarning, match="ignoring it"):
        again = fid_kid(ext, str(tmp_path / "ref.npy"), progress=False)
    assert ext.module.seen == 2 * (120 + 150) and again["reference_cache"] == "saved"
    assert again["frechet_inception_distance"] == first["frechet_inception_distance"]
    key = path.rsplit("/", 1)[1].removesuffix(".safetensors")
    assert load_features(cache_dir() / f"{key}.safetensors", key, 150, 16) is not None


def test_a_cache_file_of_other_features_is_not_trusted(tmp_path):
    np.save(tmp_path / "ref.npy", images(150, 2))
    np.save(tmp_path / "other.npy", images(150, 4))
    ext = counting_extractor()
    first = fid_kid(ext, str(tmp_path / "ref.npy"), progress=False)
    other = fid_kid(ext, str(tmp_path / "other.npy"), progress=False)
    os.replace(other["reference_cache_path"], first["reference_cache_path"])  # right name, wrong key
    with pytest.warns(UserWarning, match="does not match"):
        again = fid_kid(ext, str(tmp_path / "ref.npy"), progress=False)
    assert again["frechet_inception_distance"] == first["frechet_inception_distance"]


def test_no_cache_never_writes(tmp_path, capsys):
    np.save(tmp_path / "ref.npy", images(150, 2))
    out = fid_kid(counting_extractor(), str(tmp_path / "ref.npy"), progress=False, cache=False)
    assert "reference_cache" not in out and not cache_dir().exists()
    cache_random_classifier()
    np.save(tmp_path / "x.npy", images(60, 5))
    argv = ["score", str(tmp_path / "x.npy"), "--metric", "fid", "--reference", str(tmp_path / "ref.npy")]
    assert main([*argv, "--no-cache", "--quiet"]) == 0
    assert not cache_dir().exists()
    assert main([*argv, "--quiet"]) == 0
    assert "reference features saved to" in capsys.readouterr().out and any(cache_dir().iterdir())


def test_score_cli_labels_features_dimension_and_kid_scale(tmp_path, capsys):
    """28×28 grey files go to the MNIST classifier under auto, with one line saying so; FID and KID
    name their features and size; --json uses torch-fidelity's names."""
    cache_random_classifier()
    np.save(tmp_path / "x.npy", images(60, 5))
    np.save(tmp_path / "ref.npy", images(60, 6))
    argv = ["score", str(tmp_path / "x.npy"), "--metric", "is", "fid", "kid"]
    argv += [
        "--reference",
        str(tmp_path / "ref.npy"),
        "--kid-subsets",
        "2",
        "--kid-subset-size",
        "30",
        "--quiet",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert (
        "extractor: mnist classifier (inputs are 28×28 grey; --extractor inception to override)"
        in captured.err
    )
    assert "FID (mnist classifier features, 128-d) vs" in captured.out
    kid = next(line for line in captured.out.splitlines() if line.startswith("KID"))
    assert (
        kid.startswith("KID (mnist classifier features, 128-d) vs")
        and "unscaled MMD²" in kid
        and "×10³" in kid
    )
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    keys = ("inception_score_mean", "inception_score_std", "frechet_inception_distance")
    assert all(k in out for k in (*keys, "kernel_inception_distance_mean", "kernel_inception_distance_std"))
    assert out["features"] == "mnist classifier features, 128-d" and out["n"] == 60
    assert "is_mean" not in out and "fid" not in out


def test_auto_on_grey_28px_without_a_classifier_names_the_command_and_its_time(tmp_path, capsys):
    from conftest import cli_error

    np.save(tmp_path / "x.npy", images(20, 5))
    message = cli_error(capsys, ["score", str(tmp_path / "x.npy"), "--quiet", "--no-train-classifier"])
    assert "`improved-gan classifier train mnist` (about 4.5 min on 2 CPU cores)" in message
    assert message.endswith("or pass --extractor inception")


def test_auto_on_grey_28px_trains_the_missing_classifier_first_and_says_so(tmp_path, capsys, monkeypatch):
    import improved_gan.metrics.classifier as classifier_module
    from improved_gan.cli import main

    trained = []
    real_train = classifier_module.train_classifier

    def small_train(dataset, output, device, progress):  # the real trainer, on a few hundred images
        trained.append((dataset, output))
        return real_train(
            dataset, epochs=1, output=output, device=device, progress=progress, max_train_examples=300
        )

    monkeypatch.setattr(classifier_module, "train_classifier", small_train)
    np.save(tmp_path / "x.npy", images(20, 5))
    assert main(["score", str(tmp_path / "x.npy"), "--quiet"]) == 0
    err = capsys.readouterr().err
    path = classifier_module.default_classifier_path("mnist")
    assert trained == [("mnist", path)] and path.is_file()
    assert f"no mnist classifier yet; training it once (about 4.5 min on 2 CPU cores) into {path}" in err
    assert main(["score", str(tmp_path / "x.npy"), "--quiet"]) == 0  # found now: not trained again
    assert len(trained) == 1 and "training it once" not in capsys.readouterr().err
