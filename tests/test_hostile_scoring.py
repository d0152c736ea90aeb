"""Hostile inputs to `score` and `classifier train`: each is refused with one line naming the
problem (and the file), exit status 1, before any scoring pass or training, and nothing the user
had is changed. Features come from an untrained classifier cached per test (no download)."""

from __future__ import annotations

import os
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli_error
from PIL import Image
from test_scoring import cache_random_classifier, mnist_test

import improved_gan.metrics.score  # noqa: F401  (the module, which the package's score() shadows)
from improved_gan.errors import ImprovedGANError
from improved_gan.metrics.classifier import ARCHITECTURE, DatasetClassifier, default_classifier_path
from improved_gan.utils.checkpoint import save_checkpoint

pytestmark = [pytest.mark.hostile, pytest.mark.usefixtures("one_thread")]

Builder = Callable[[Path], tuple[list[str], list[str]]]  # tmp_path -> (argv, message must contain)


@pytest.fixture
def cached_classifier():
    return cache_random_classifier()


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a scoring pass or classifier training starts."""

    def refuse(*args, **kwargs):
        pytest.fail("the work started before the input was refused")

    monkeypatch.setattr(sys.modules["improved_gan.metrics.score"], "extract", refuse)
    monkeypatch.setattr("improved_gan.metrics.classifier.load_idx_dataset", refuse)


def good_images(tmp_path: Path, n: int = 40) -> Path:
    path = tmp_path / "good.npz"
    np.savez(path, images=mnist_test(n).numpy())
    return path


def npy(tmp_path: Path, array: np.ndarray, name: str = "x.npy", **kw) -> Path:
    path = tmp_path / name
    np.save(path, array, **kw)
    return path


def raw(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def stats(tmp_path: Path, name: str = "ref.npz", dim: int = 128, **arrays) -> Path:
    path = tmp_path / name
    base = {"mu": np.zeros(dim), "sigma": np.eye(dim), "n": np.int64(100)}
    base.update(arrays)
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return path


def score_argv(source: Path | str, *extra: str) -> list[str]:
    return ["score", str(source), "--extractor", "mnist", "--quiet", *extra]


def fid_argv(tmp_path: Path, reference: Path | str, *extra: str) -> list[str]:
    return score_argv(good_images(tmp_path), "--metric", "fid", "--reference", str(reference), *extra)


def _no_cuda(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _one_gpu(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


# ---------------------------------------------------------------------------------------------
# 1 and 2: numeric options and devices of `classifier train` and `score`

CLASSIFIER_OPTIONS = {
    "max-train-examples-negative": (
        ["--max-train-examples", "-5"],
        "--max-train-examples must be >= 1, got -5",
    ),
    "max-train-examples-zero": (["--max-train-examples", "0"], "--max-train-examples must be >= 1, got 0"),
    "epochs-zero": (["--epochs", "0"], "--epochs must be >= 1"),
    "epochs-negative": (["--epochs", "-3"], "--epochs must be >= 1"),
    "seed-negative": (["--seed", "-1"], "--seed must be in [0, 4294967295]"),
    "seed-too-large": (["--seed", str(2**40)], "--seed must be in [0, 4294967295]"),
    "threads-zero": (["--threads", "0"], "--threads must be >= 1"),
    "threads-negative": (["--threads", "-2"], "--threads must be >= 1"),
    "device-unknown": (["--device", "tpu9"], "--device tpu9: unknown device"),
    "device-cuda-without-cuda": (
        ["--device", "cuda"],
        "--device cuda: CUDA is not available on this machine; use --device cpu",
    ),
    "device-cuda-index-beyond": (["--device", "cuda:7"], "this machine has 1 CUDA device"),
    "device-unsupported": (["--device", "meta"], "--device meta: unsupported device"),
}


@pytest.mark.parametrize("case", list(CLASSIFIER_OPTIONS), ids=list(CLASSIFIER_OPTIONS))
def test_classifier_train_refuses_bad_options(case, capsys, monkeypatch, tmp_path, no_work):
    extra, expected = CLASSIFIER_OPTIONS[case]
    (_one_gpu if case == "device-cuda-index-beyond" else _no_cuda)(monkeypatch)
    out = tmp_path / "clf.safetensors"
    message = cli_error(capsys, ["classifier", "train", "mnist", "--output", str(out), "--quiet", *extra])
    assert expected in message
    assert not out.exists()


def _output_is_a_folder(tmp_path: Path) -> tuple[list[str], str]:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    return ["--output", str(folder), "--force"], "is a folder"


def _output_under_a_file(tmp_path: Path) -> tuple[list[str], str]:
    (tmp_path / "plain").write_text("mine")
    return ["--output", str(tmp_path / "plain" / "clf.safetensors")], "is a file, not a folder"


def _output_read_only(tmp_path: Path) -> tuple[list[str], str]:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return ["--output", str(folder / "clf.safetensors")], "is not writable"


CLASSIFIER_OUTPUTS = {
    "output-is-a-folder": _output_is_a_folder,
    "output-under-a-file": _output_under_a_file,
    "output-read-only-folder": _output_read_only,
}


@pytest.mark.parametrize("case", list(CLASSIFIER_OUTPUTS), ids=list(CLASSIFIER_OUTPUTS))
def test_classifier_output_is_checked_before_training(case, capsys, tmp_path, no_work):
    if case == "output-read-only-folder" and os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    extra, expected = CLASSIFIER_OUTPUTS[case](tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert expected in cli_error(capsys, ["classifier", "train", "mnist", "--quiet", *extra])
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


SCORE_OPTIONS = {
    "n-zero": (["--n", "0"], "--n must be >= 1, got 0"),
    "n-negative": (["--n", "-3"], "--n must be >= 1, got -3"),
    "batch-size-zero": (["--batch-size", "0"], "--batch-size must be >= 1"),
    "batch-size-negative": (["--batch-size", "-8"], "--batch-size must be >= 1"),
    "splits-zero": (["--splits", "0"], "--splits must be >= 1"),
    "splits-negative": (["--splits", "-1"], "--splits must be >= 1"),
    "splits-more-than-images": (["--splits", "100"], "at least as many samples as splits"),
    "seed-negative": (["--shuffle", "--seed", "-1"], "--seed must be in [0, 4294967295]"),
    "seed-too-large": (["--shuffle", "--seed", str(2**32)], "--seed must be in [0, 4294967295]"),
    "kid-subsets-zero": (["--kid-subsets", "0"], "--kid-subsets must be >= 1"),
    "kid-subset-size-one": (["--kid-subset-size", "1"], "--kid-subset-size must be >= 2"),
    "kid-subset-size-beyond-images": (
        ["--metric", "kid", "--reference", "mnist-test", "--kid-subset-size", "1000"],
        "KID subset size 1000 exceeds",
    ),
    "threads-zero": (["--threads", "0"], "--threads must be >= 1"),
    "device-unknown": (["--device", "gpu"], "--device gpu: unknown device"),
    "device-cuda-without-cuda": (
        ["--device", "cuda"],
        "--device cuda: CUDA is not available on this machine; use --device cpu",
    ),
    "device-cuda-index-beyond": (["--device", "cuda:3"], "this machine has 1 CUDA device"),
    "device-unsupported": (["--device", "meta"], "--device meta: unsupported device"),
}


@pytest.mark.parametrize("case", list(SCORE_OPTIONS), ids=list(SCORE_OPTIONS))
def test_score_refuses_bad_options(case, capsys, monkeypatch, tmp_path, cached_classifier, no_work):
    extra, expected = SCORE_OPTIONS[case]
    (_one_gpu if case == "device-cuda-index-beyond" else _no_cuda)(monkeypatch)
    assert expected in cli_error(capsys, score_argv(good_images(tmp_path), *extra))


# ---------------------------------------------------------------------------------------------
# 3: what is scored


def _png_folder(tmp_path: Path, extra: dict[str, bytes]) -> Path:
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((28, 28), 40 * i, np.uint8)).save(folder / f"{i}.png")
    for name, data in extra.items():
        (folder / name).write_bytes(data)
    return folder


def _truncated_png(tmp_path: Path) -> bytes:
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (28, 28), np.uint8)).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").unlink()
    return data[: len(data) // 2]


def _bomb_png(side: int = 9000) -> bytes:
    """A valid PNG header declaring side × side pixels (81 Mpx by default) with almost no data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )


def _zip_without_arrays(tmp_path: Path) -> Path:
    path = tmp_path / "notes.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "no arrays here")
    return path


def _structured(tmp_path: Path) -> Path:
    return npy(tmp_path, np.zeros((4, 28, 28), dtype=[("a", "u1"), ("b", "f4")]))


INPUTS: dict[str, Callable[[Path], tuple[Path, str]]] = {
    "npy-object-dtype": lambda t: (
        npy(t, np.array([{"a": 1}, None], dtype=object), allow_pickle=True),
        "not a readable .npy file",
    ),
    "npy-random-bytes": lambda t: (raw(t, "x.npy", os.urandom(300)), "not a readable .npy file"),
    "npy-empty-file": lambda t: (raw(t, "x.npy", b""), "not a readable .npy file"),
    "npy-truncated": lambda t: (
        raw(t, "x.npy", npy(t, np.zeros((50, 28, 28), np.uint8), "full.npy").read_bytes()[:500]),
        "not a readable .npy file",
    ),
    "npz-random-bytes": lambda t: (raw(t, "x.npz", os.urandom(300)), "not a readable .npz file"),
    "npz-truncated-zip": lambda t: (
        raw(t, "x.npz", good_images(t).read_bytes()[:-40]),
        "not a readable .npz file",
    ),
    "npz-zip-without-arrays": lambda t: (_zip_without_arrays(t), "not an array of images"),
    "npz-object-images": lambda t: (
        _savez(t, images=np.array([None, 1], dtype=object)),
        "not a readable .npz file",
    ),
    "npz-unnamed-arrays": lambda t: (_savez(t, a=np.zeros(3), b=np.zeros(3)), "none named 'images'"),
    "npy-float-nan": lambda t: (npy(t, _with(np.zeros((8, 28, 28), np.float32), np.nan)), "NaN or infinite"),
    "npy-float-inf": lambda t: (npy(t, _with(np.zeros((8, 28, 28)), np.inf)), "NaN or infinite"),
    "npy-float-out-of-range": lambda t: (npy(t, np.full((8, 28, 28), 7.5)), "outside [0, 1]"),
    "npy-integer-out-of-range": lambda t: (npy(t, np.full((8, 28, 28), 300, np.int16)), "[0, 255]"),
    "npy-negative-integers": lambda t: (npy(t, np.full((8, 28, 28), -1, np.int8)), "[0, 255]"),
    "npy-complex-dtype": lambda t: (npy(t, np.zeros((8, 28, 28), np.complex64)), "dtype complex64"),
    "npy-bool-dtype": lambda t: (npy(t, np.zeros((8, 28, 28), bool)), "dtype bool"),
    "npy-string-dtype": lambda t: (npy(t, np.full((8, 28, 28), "a")), "dtype <U1"),
    "npy-structured-dtype": lambda t: (_structured(t), "are not supported"),
    "npy-datetime-dtype": lambda t: (npy(t, np.zeros((8, 28), "datetime64[s]")), "are not supported"),
    "npy-scalar": lambda t: (npy(t, np.float32(0.5)), "is not images"),
    "npy-one-dimensional": lambda t: (npy(t, np.zeros(784, np.uint8)), "is not images"),
    "npy-flat-not-square": lambda t: (npy(t, np.zeros((8, 10), np.uint8)), "not square"),
    "npy-two-channels": lambda t: (npy(t, np.zeros((8, 2, 28, 28), np.uint8)), "cannot read images of shape"),
    "npy-five-dimensional": lambda t: (npy(t, np.zeros((2, 2, 1, 28, 28), np.uint8)), "cannot read images"),
    "npy-no-images": lambda t: (npy(t, np.zeros((0, 28, 28), np.uint8)), "holds no images"),
    "npy-empty-images": lambda t: (npy(t, np.zeros((5, 0, 0), np.uint8)), "are empty"),
    "npy-wrong-image-size": lambda t: (
        npy(t, np.zeros((8, 32, 32), np.uint8)),
        "takes 28×28 images, got 32×32",
    ),
    "npz-statistics-as-input": lambda t: (stats(t), "holds feature statistics"),
    "folder-non-image-png": lambda t: (_png_folder(t, {"fake.png": b"this is not a png"}), "fake.png"),
    "folder-random-bytes-jpg": lambda t: (_png_folder(t, {"noise.jpg": os.urandom(500)}), "noise.jpg"),
    "folder-png-bomb": lambda t: (_png_folder(t, {"bomb.png": _bomb_png()}), "bomb.png: refused"),
    "folder-empty": lambda t: (_mkdir(t / "empty"), "holds no images"),
    "folder-only-text": lambda t: (_mkdir(t / "texts", {"a.txt": b"x"}), "holds no images"),
    "folder-mixed-sizes": lambda t: (_mixed_sizes(t), "different sizes"),
    "single-png-file": lambda t: (_png_folder(t, {}) / "0.png", "cannot score"),
    "text-file": lambda t: (raw(t, "notes.txt", b"hello"), "cannot score"),
    "missing-path": lambda t: (t / "nowhere.npz", "does not exist"),
}


def _savez(tmp_path: Path, **arrays) -> Path:
    np.savez(tmp_path / "x.npz", **arrays)
    return tmp_path / "x.npz"


def _with(array: np.ndarray, value: float) -> np.ndarray:
    array.flat[len(array.flat) // 2] = value
    return array


def _mkdir(path: Path, files: dict[str, bytes] | None = None) -> Path:
    path.mkdir()
    for name, data in (files or {}).items():
        (path / name).write_bytes(data)
    return path


def _mixed_sizes(tmp_path: Path) -> Path:
    folder = _png_folder(tmp_path, {})
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(folder / "big.png")
    return folder


@pytest.mark.parametrize("case", list(INPUTS), ids=list(INPUTS))
def test_score_refuses_bad_inputs_naming_them(case, capsys, tmp_path, cached_classifier, no_work):
    path, expected = INPUTS[case](tmp_path)
    before = path.read_bytes() if path.is_file() else None
    message = cli_error(capsys, score_argv(path, "--splits", "2"))
    assert expected in message and path.name in message
    if before is not None:
        assert path.read_bytes() == before


def test_a_truncated_image_is_named(capsys, tmp_path, cached_classifier):
    folder = _png_folder(tmp_path, {"cut.png": _truncated_png(tmp_path)})
    assert "cut.png" in cli_error(capsys, score_argv(folder, "--splits", "2"))


# ---------------------------------------------------------------------------------------------
# 4: references and --save-reference

REFERENCES: dict[str, Callable[[Path], tuple[Path, str]]] = {
    "reference-random-bytes-npz": lambda t: (raw(t, "ref.npz", os.urandom(400)), "not a readable .npz file"),
    "reference-random-bytes-npy": lambda t: (raw(t, "ref.npy", os.urandom(400)), "not a readable .npy file"),
    "reference-truncated-statistics": lambda t: (
        raw(t, "cut.npz", stats(t).read_bytes()[:300]),
        "not a readable .npz file",
    ),
    "reference-shapes-disagree": lambda t: (
        stats(t, mu=np.zeros(3), sigma=np.eye(4)),
        "do not match",
    ),
    "reference-mu-two-dimensional": lambda t: (
        stats(t, mu=np.zeros((2, 2)), sigma=np.eye(2)),
        "do not match",
    ),
    "reference-mu-nan": lambda t: (stats(t, mu=_with(np.zeros(128), np.nan)), "'mu' contains NaN"),
    "reference-sigma-inf": lambda t: (stats(t, sigma=_with(np.eye(128), np.inf)), "'sigma' contains NaN"),
    "reference-sigma-asymmetric": lambda t: (
        stats(t, sigma=np.triu(np.ones((128, 128)))),
        "not a covariance",
    ),
    "reference-negative-variance": lambda t: (stats(t, sigma=-np.eye(128)), "not a covariance"),
    "reference-mu-strings": lambda t: (stats(t, mu=np.array(["a"] * 128)), "must hold real numbers"),
    "reference-wrong-feature-size": lambda t: (stats(t, dim=64), "statistics of 64 features"),
    "reference-other-extractor": lambda t: (
        stats(t, extractor=np.str_("inception")),
        "holds inception features",
    ),
    "reference-extractor-not-a-name": lambda t: (
        stats(t, extractor=np.arange(3)),
        "'extractor' must be one name",
    ),
    "reference-n-negative": lambda t: (stats(t, n=np.int64(-4)), "'n' must be one integer >= 2"),
    "reference-n-float": lambda t: (stats(t, n=np.float64(3.5)), "'n' must be one integer >= 2"),
    "reference-empty-folder": lambda t: (_mkdir(t / "empty"), "holds no images"),
    "reference-one-image": lambda t: (
        npy(t, np.zeros((1, 28, 28), np.uint8), "one.npy"),
        "at least 2 images",
    ),
    "reference-wrong-image-size": lambda t: (
        npy(t, np.zeros((9, 14, 14), np.uint8), "small.npy"),
        "takes 28×28",
    ),
    "reference-missing": lambda t: (t / "gone.npz", "does not exist"),
}


@pytest.mark.parametrize("case", list(REFERENCES), ids=list(REFERENCES))
def test_garbage_references_are_refused_before_scoring(case, capsys, tmp_path, cached_classifier, no_work):
    path, expected = REFERENCES[case](tmp_path)
    before = path.read_bytes() if path.is_file() else None
    message = cli_error(capsys, fid_argv(tmp_path, path))
    assert expected in message and path.name in message
    if before is not None:
        assert path.read_bytes() == before


KID_REFERENCES = {
    "kid-features-wrong-shape": lambda t: (
        stats(t, features=np.zeros((50, 7), np.float32)),
        "'features' must have shape",
    ),
    "kid-features-nan": lambda t: (
        stats(t, features=_with(np.zeros((50, 128)), np.nan)),
        "'features' contains NaN",
    ),
    "kid-no-features": lambda t: (stats(t), "has no 'features' array"),
}


@pytest.mark.parametrize("case", list(KID_REFERENCES), ids=list(KID_REFERENCES))
def test_kid_references_are_checked(case, capsys, tmp_path, cached_classifier, no_work):
    path, expected = KID_REFERENCES[case](tmp_path)
    argv = score_argv(
        good_images(tmp_path), "--metric", "kid", "--reference", str(path), "--kid-subset-size", "10"
    )
    assert expected in cli_error(capsys, argv)


def _save_into_folder(t: Path) -> tuple[Path, str]:
    return _mkdir(t / "outdir", {"keep.txt": b"mine"}), "is a folder"


def _save_under_file(t: Path) -> tuple[Path, str]:
    return raw(t, "plain", b"mine") / "stats.npz", "is a file, not a folder"


def _save_over_images(t: Path) -> tuple[Path, str]:
    return good_images(t, 20), "holds no statistics; it is kept"


def _save_over_garbage(t: Path) -> tuple[Path, str]:
    return raw(t, "old.npz", b"precious bytes"), "holds no statistics; it is kept"


def _save_read_only(t: Path) -> tuple[Path, str]:
    folder = _mkdir(t / "ro")
    folder.chmod(0o555)
    return folder / "stats.npz", "is not writable"


SAVE_TARGETS = {
    "save-reference-is-a-folder": _save_into_folder,
    "save-reference-under-a-file": _save_under_file,
    "save-reference-wrong-suffix": lambda t: (t / "stats.txt", "must end in .npz"),
    "save-reference-over-the-images": _save_over_images,
    "save-reference-over-another-file": _save_over_garbage,
    "save-reference-read-only-folder": _save_read_only,
}


@pytest.mark.parametrize("case", list(SAVE_TARGETS), ids=list(SAVE_TARGETS))
def test_save_reference_is_checked_before_scoring(case, capsys, tmp_path, cached_classifier, no_work):
    if case == "save-reference-read-only-folder" and os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    target, expected = SAVE_TARGETS[case](tmp_path)
    source = good_images(tmp_path, 30) if case != "save-reference-over-the-images" else target
    snapshot = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    message = cli_error(capsys, score_argv(source, "--splits", "2", "--save-reference", str(target)))
    assert expected in message
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == snapshot


def test_save_reference_over_the_reference_is_refused(capsys, tmp_path, cached_classifier, no_work):
    reference = stats(tmp_path)
    before = reference.read_bytes()
    argv = fid_argv(tmp_path, reference, "--save-reference", str(reference))
    assert "is also the reference" in cli_error(capsys, argv)
    assert reference.read_bytes() == before


def test_a_failed_save_leaves_the_old_statistics(tmp_path, monkeypatch, cached_classifier):
    from improved_gan.metrics.fid import save_statistics

    target = stats(tmp_path, "old.npz")
    before = target.read_bytes()

    def disk_full(file, **arrays):
        file.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(ImprovedGANError, match="No space left on device"):
        save_statistics(target, np.zeros(128), np.eye(128), 5)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["old.npz"]  # no temporary left


# ---------------------------------------------------------------------------------------------
# 5: non-finite features or probabilities never become a number


def _cache_classifier_with(change: Callable[[DatasetClassifier], None], **meta) -> None:
    model = DatasetClassifier().eval()
    with torch.no_grad():
        change(model)
    info = {
        "dataset": "mnist",
        "architecture": ARCHITECTURE,
        "test_accuracy": "0.1",
        "epochs": "0",
        "seed": "0",
    }
    info.update(meta)
    save_checkpoint(default_classifier_path("mnist"), model.state_dict(), info)


CLASSIFIERS = {
    "classifier-nan-weights": (
        lambda m: m.hidden.weight.fill_(float("nan")),
        {},
        "NaN or infinite values",
    ),
    "classifier-negative-variance": (lambda m: m.bn1.running_var.fill_(-1.0), {}, "variances"),
    "classifier-overflowing-weights": (
        lambda m: m.out.weight.fill_(3e38),
        {},
        "gave NaN or infinite outputs",
    ),
    "classifier-accuracy-not-a-number": (
        lambda m: None,
        {"test_accuracy": "high"},
        "'test_accuracy' is missing",
    ),
    "classifier-accuracy-out-of-range": (lambda m: None, {"test_accuracy": "7"}, "not an accuracy in [0, 1]"),
    "classifier-seed-missing": (lambda m: None, {"seed": "x"}, "'seed' is missing or not a number"),
}


@pytest.mark.parametrize("case", list(CLASSIFIERS), ids=list(CLASSIFIERS))
def test_broken_classifiers_are_refused(case, capsys, tmp_path):
    change, meta, expected = CLASSIFIERS[case]
    if case == "classifier-overflowing-weights":
        _cache_classifier_with(lambda m: (change(m), m.hidden.bias.fill_(1.0)), **meta)
    else:
        _cache_classifier_with(change, **meta)
    message = cli_error(capsys, score_argv(good_images(tmp_path), "--splits", "2"))
    assert expected in message and "classifier train mnist --force" in message


@pytest.mark.parametrize("case", ["classifier-wrong-tensors", "classifier-random-bytes"])
def test_foreign_classifier_files_are_refused(case, capsys, tmp_path):
    path = default_classifier_path("mnist")
    if case == "classifier-wrong-tensors":
        meta = {
            "dataset": "mnist",
            "architecture": ARCHITECTURE,
            "test_accuracy": "0.5",
            "epochs": "1",
            "seed": "0",
        }
        save_checkpoint(path, {"hidden.weight": torch.zeros(3, 3)}, meta)
        expected = "not a classifier of this version"
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(500))
        expected = "unreadable"
    assert expected in cli_error(capsys, score_argv(good_images(tmp_path), "--splits", "2"))


def _nan_logits():
    from improved_gan.metrics.inception_score import inception_score

    inception_score(torch.full((20, 10), float("nan")), splits=2)


def _no_classes():
    from improved_gan.metrics.inception_score import inception_score

    inception_score(torch.zeros(20, 0), splits=2)


def _zero_probabilities():
    from improved_gan.metrics.inception_score import inception_score

    inception_score(torch.zeros(20, 10), splits=2, kind="probs")


def _nan_features_fid():
    from improved_gan.metrics.fid import fid_from_features

    fid_from_features(_with(np.random.rand(20, 4), np.nan), np.random.rand(20, 4))


def _nan_statistics_fid():
    from improved_gan.metrics.fid import frechet_distance

    frechet_distance(np.zeros(4), np.eye(4), np.full(4, np.inf), np.eye(4))


def _nan_features_kid():
    from improved_gan.metrics.kid import kernel_inception_distance

    kernel_inception_distance(_with(np.random.rand(20, 4), np.nan), np.random.rand(20, 4), 2, 10)


def _nan_image_tensor():
    from improved_gan.metrics import score

    score(_with(np.zeros((20, 28, 28), np.float32), np.nan), ["is"], "mnist", splits=2, progress=False)


NON_FINITE = {
    "is-nan-logits": (_nan_logits, "NaN or infinite"),
    "is-no-classes": (_no_classes, "at least 2 classes"),
    "is-all-zero-probabilities": (_zero_probabilities, "positive sum"),
    "fid-nan-features": (_nan_features_fid, "NaN or infinite"),
    "fid-inf-statistics": (_nan_statistics_fid, "NaN or infinite"),
    "kid-nan-features": (_nan_features_kid, "NaN or infinite"),
    "score-nan-images": (_nan_image_tensor, "tensor (20, 28, 28): images contain NaN"),
}


@pytest.mark.parametrize("case", list(NON_FINITE), ids=list(NON_FINITE))
def test_non_finite_values_never_become_a_score(case, cached_classifier):
    call, expected = NON_FINITE[case]
    with pytest.raises(ImprovedGANError) as info:
        call()
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_a_clean_run_still_scores_and_saves(capsys, tmp_path, cached_classifier):
    """The checks refuse only what is wrong: a good input scores, and re-saving statistics over
    earlier statistics is allowed."""
    from improved_gan.cli import main

    target = stats(tmp_path, "saved.npz")
    assert (
        main(score_argv(good_images(tmp_path), "--splits", "2", "--save-reference", str(target), "--json"))
        == 0
    )
    assert int(np.load(target)["n"]) == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "good.npz", "saved.npz"]


INCEPTION_WEIGHTS = {
    "inception-weights-folder": ("folder", "is a folder"),
    "inception-weights-random-bytes": ("bytes", "is not the expected"),
    "inception-weights-env-random-bytes": ("env", "delete it and download"),
}


@pytest.mark.parametrize("case", list(INCEPTION_WEIGHTS), ids=list(INCEPTION_WEIGHTS))
def test_garbage_inception_weights_are_refused_without_downloading(
    case, capsys, tmp_path, monkeypatch, no_work
):
    kind, expected = INCEPTION_WEIGHTS[case]
    monkeypatch.setattr(
        "improved_gan.metrics.inception.download_verified", lambda *a, **k: pytest.fail("download")
    )
    weights = _mkdir(tmp_path / "w") if kind == "folder" else raw(tmp_path, "w.pth", os.urandom(1000))
    extra = ["--inception-weights", str(weights)] if kind != "env" else []
    if kind == "env":
        monkeypatch.setenv("IMPROVED_GAN_INCEPTION_WEIGHTS", str(weights))
    images = npy(tmp_path, np.zeros((4, 3, 8, 8), np.uint8))
    argv = ["score", str(images), "--extractor", "inception", "--splits", "2", "--quiet", *extra]
    assert expected in cli_error(capsys, argv)
