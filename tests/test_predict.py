"""``improved-gan predict`` and ``load_classifier``: class names and probabilities of image files
from a trained run, checked against D's logits computed the way the trainer computes them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli_error, tiny_config
from PIL import Image

from improved_gan.cli import main
from improved_gan.data.catalog import load_images, to_float
from improved_gan.data.own_data import image_to_input
from improved_gan.training import TrainConfig, load_classifier, predict_files, train
from improved_gan.training.build import predict_logits
from improved_gan.training.predict import image_files
from improved_gan.training.saved_run import load_run_models


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("predict")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(TrainConfig(**tiny_config(tmp, max_train_examples=600)), progress=False)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """40 MNIST test digits as PNGs in class folders, and the same images as arrays."""
    folder = tmp_path_factory.mktemp("digits")
    images, labels = load_images("mnist", "test")
    images, labels = images[:40], labels[:40]
    for i, (img, y) in enumerate(zip(images, labels, strict=True)):
        (folder / str(y)).mkdir(exist_ok=True)
        Image.fromarray(img[0]).save(folder / str(y) / f"{i:03d}.png")
    return folder, images, labels


def test_predictions_are_ds_classes_with_the_ema_weights(run_dir, digits) -> None:
    folder, images, _ = digits
    classifier = load_classifier(run_dir)
    assert classifier.classes == list("0123456789") and not classifier.training
    predictions = predict_files(classifier, [folder], batch_size=7, progress=False)
    files = image_files([folder])
    assert [p.path for p in predictions] == [str(f) for f in files] and len(files) == 40
    # independent path: the trainer's scaling of MNIST and D's logits, EMA weights swapped in
    _, D, _, _ = load_run_models(run_dir, use_ema=True)
    order = [int(Path(p.path).stem) for p in predictions]
    x = torch.from_numpy(to_float(images[order], "mnist", (0.0, 1.0))).flatten(1)
    probs = predict_logits(D, x).softmax(1)
    assert [p.label for p in predictions] == [str(int(k)) for k in probs.argmax(1)]
    np.testing.assert_allclose([p.probability for p in predictions], probs.max(1).values.numpy(), rtol=1e-5)


def test_raw_weights_differ_from_the_ema_weights(run_dir, digits) -> None:
    _, images, _ = digits
    ema, raw = load_classifier(run_dir), load_classifier(run_dir, use_ema=False)
    assert not torch.allclose(ema(images), raw(images))
    np.testing.assert_allclose(ema(images).sum(1).numpy(), 1.0, rtol=1e-5)


def test_images_are_converted_to_the_models_input(tmp_path, digits) -> None:
    _, images, _ = digits
    digit = images[0, 0]
    Image.fromarray(digit).save(tmp_path / "same.png")
    assert np.array_equal(image_to_input(tmp_path / "same.png", (1, 28, 28)), digit[None])
    wide = np.zeros((28, 40), np.uint8)  # the digit in the middle of a wider image: centre crop
    wide[:, 6:34] = digit
    Image.fromarray(wide).save(tmp_path / "wide.png")
    assert np.array_equal(image_to_input(tmp_path / "wide.png", (1, 28, 28)), digit[None])
    big = Image.fromarray(np.repeat(np.repeat(digit, 2, 0), 2, 1)).convert("RGB")  # 56×56 colour
    big.save(tmp_path / "big.png")
    small = image_to_input(tmp_path / "big.png", (1, 28, 28)).astype(float)
    assert small.shape == (1, 28, 28) and np.abs(small - digit).mean() < 8
    assert image_to_input(tmp_path / "same.png", (3, 32, 32)).shape == (3, 32, 32)


def test_cli_writes_the_csv_and_json_lines(run_dir, digits, tmp_path, capsys) -> None:
    folder, _, _ = digits
    out = tmp_path / "preds.csv"
    assert main(["predict", str(run_dir), str(folder), "--out", str(out), "--quiet"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 40 and list(rows[0]) == ["path", "label", "probability"]
    assert all(r["label"] in list("0123456789") and 0.1 <= float(r["probability"]) <= 1 for r in rows)
    assert main(["predict", str(run_dir), str(folder / "7"), "--json", "--quiet"]) == 0
    lines = [json.loads(s) for s in capsys.readouterr().out.splitlines()]
    assert {r["path"] for r in lines} == {str(p) for p in sorted((folder / "7").glob("*.png"))}
    by_path = {r["path"]: r for r in rows}
    assert all(by_path[r["path"]]["label"] == r["label"] for r in lines)


@pytest.mark.hostile
@pytest.mark.parametrize("case", ["missing-path", "empty-folder", "not-an-image", "no-run", "out-is-dir"])
def test_bad_inputs_are_refused_in_one_line(case, run_dir, tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.png").write_bytes(b"not a png")
    argv = {
        "missing-path": ["predict", str(run_dir), str(tmp_path / "nope.png")],
        "empty-folder": ["predict", str(run_dir), str(tmp_path / "empty")],
        "not-an-image": ["predict", str(run_dir), str(tmp_path / "junk.png")],
        "no-run": ["predict", str(tmp_path / "empty"), str(tmp_path / "junk.png")],
        "out-is-dir": ["predict", str(run_dir), str(tmp_path / "junk.png"), "--out", str(tmp_path / "empty")],
    }[case]
    message = cli_error(capsys, argv)
    expected = {
        "missing-path": "does not exist",
        "empty-folder": "holds no images",
        "not-an-image": "not a readable image",
        "no-run": "not a run directory",
        "out-is-dir": "--out",
    }[case]
    assert expected in message
