"""A user's own images (``--data folder:DIR`` / ``npz:FILE``): classes from folder names, the
held-out split, conversion to the model's input, unlabelled images, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from improved_gan.data.catalog import load_images
from improved_gan.data.own_data import (
    array_to_input,
    held_out_split,
    own_data_classes,
    read_data_folder,
    read_data_npz,
    read_own_data,
)
from improved_gan.data.ssl_batches import balanced_labelled_subset
from improved_gan.errors import ImprovedGANError

NAMES = ["cat", "dog", "emu"]


def _digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = load_images("mnist", "test")
    return images[:n, 0], labels[:n]


def make_folder(root, per_class: int = 10, test: bool = False, unlabelled: int = 0, size=(28, 28)):
    """train/<cat,dog,emu>/ from MNIST digits 0, 1, 2 (as PNG, JPEG and BMP, resized to ``size``)."""
    images, labels = _digits(2000)
    for k, name in enumerate(NAMES):
        picks = np.flatnonzero(labels == k)
        for split, chosen in [("train", picks[:per_class]), ("test", picks[per_class : per_class + 3])]:
            if split == "test" and not test:
                continue
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for j, i in enumerate(chosen):
                img = Image.fromarray(images[i]).resize(size)
                img.save(root / split / name / f"{i}.{['png', 'jpg', 'bmp'][j % 3]}")
    if unlabelled:
        (root / "unlabelled").mkdir()
        for i in range(unlabelled):
            Image.fromarray(images[1000 + i]).convert("RGB").save(root / "unlabelled" / f"u{i}.png")
    return root


def test_folder_gives_classes_converted_images_and_a_held_out_split(tmp_path) -> None:
    root = make_folder(tmp_path / "data", per_class=10, unlabelled=7, size=(40, 40))
    data = read_data_folder(root, (1, 28, 28))
    assert data.classes == NAMES and own_data_classes(f"folder:{root}") == NAMES
    assert data.held_out and data.x_test.shape == (3, 1, 28, 28) and sorted(data.y_test) == [0, 1, 2]
    assert data.x_train.shape == (27 + 7, 1, 28, 28) and data.x_train.dtype == np.uint8
    assert (data.y_train == -1).sum() == 7 and np.bincount(data.y_train[data.y_train >= 0]).tolist() == [
        9,
        9,
        9,
    ]
    colour = read_own_data(f"folder:{root}", (3, 32, 32))
    assert colour.x_train.shape == (34, 3, 32, 32)
    # grey digits stay grey in RGB: the three channels are equal
    assert np.array_equal(colour.x_train[:, 0], colour.x_train[:, 2])


def test_folder_with_test_split_uses_it_and_the_same_images_as_read_directly(tmp_path) -> None:
    root = make_folder(tmp_path / "data", per_class=5, test=True)
    data = read_data_folder(root, (1, 28, 28))
    assert not data.held_out and len(data.x_test) == 9 and len(data.x_train) == 15
    png = sorted((root / "train" / "cat").glob("*.png"))[0]
    i = list(sorted((root / "train" / "cat").iterdir())).index(png)
    assert np.array_equal(data.x_train[i, 0], np.asarray(Image.open(png)))


def test_held_out_split_is_fixed_and_takes_a_tenth_of_each_class() -> None:
    labels = np.repeat([0, 1, 2], [50, 20, 2])
    mask = held_out_split(labels)
    assert np.array_equal(mask, held_out_split(labels))
    assert [int(mask[labels == k].sum()) for k in range(3)] == [5, 2, 1]
    unl = np.concatenate([labels, [-1, -1]])
    assert not held_out_split(unl)[-2:].any()


def test_unlabelled_images_never_enter_the_labelled_subset() -> None:
    labels = np.array([-1] * 50 + [0] * 5 + [1] * 5)
    chosen = balanced_labelled_subset(labels, 3, seed_data=1)
    assert len(chosen) == 6 and (labels[chosen] >= 0).all()


def test_npz_with_unlabelled_and_class_names(tmp_path) -> None:
    images, labels = _digits(60)
    y = labels.copy() % 3
    y[:20] = -1
    path = tmp_path / "d.npz"
    np.savez(path, x=images, y=y, classes=np.array(NAMES))
    data = read_data_npz(path, (1, 28, 28))
    assert data.classes == NAMES and data.held_out and (data.y_train == -1).sum() == 20
    assert len(data.x_train) + len(data.x_test) == 60
    assert np.array_equal(array_to_input(images[0], (1, 28, 28)), images[0][None])
    assert array_to_input(np.zeros((3, 10, 12), np.uint8), (1, 28, 28)).shape == (1, 28, 28)


def test_an_undecodable_file_is_skipped_with_a_warning(tmp_path, capsys) -> None:
    root = make_folder(tmp_path / "data", per_class=4)
    (root / "train" / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    data = read_data_folder(root, (1, 28, 28))
    assert len(data.skipped) == 1 and "broken.png" in data.skipped[0]
    assert "skipped 1 file" in capsys.readouterr().err and len(data.x_train) + len(data.x_test) == 12


@pytest.mark.hostile
@pytest.mark.parametrize(
    "case",
    [
        "no-folder",
        "no-train",
        "one-class",
        "empty-class",
        "unknown-test-class",
        "bad-spec",
        "npz-no-y",
        "npz-torn",
    ],
)
def test_bad_data_is_refused_in_one_line(case, tmp_path) -> None:
    root = tmp_path / "data"
    if case not in ("no-folder", "bad-spec"):
        make_folder(root, per_class=3, test=case == "unknown-test-class")
    if case == "no-train":
        (root / "train").rename(root / "training")
    if case == "one-class":
        for name in NAMES[1:]:
            for f in (root / "train" / name).iterdir():
                f.unlink()
            (root / "train" / name).rmdir()
    if case == "empty-class":
        for f in (root / "train" / "dog").iterdir():
            f.write_bytes(b"junk")
    if case == "unknown-test-class":
        (root / "test" / "yak").mkdir()
    npz = f"npz:{tmp_path / 'd.npz'}"
    spec = {"bad-spec": f"dir:{root}", "npz-no-y": npz, "npz-torn": npz}.get(case, f"folder:{root}")
    if case == "npz-no-y":
        np.savez(tmp_path / "d.npz", x=np.zeros((4, 28, 28), np.uint8))
    if case == "npz-torn":  # a zip cut short: zipfile's BadZipFile, not an OSError
        np.savez(tmp_path / "d.npz", x=np.zeros((4, 28, 28), np.uint8), y=np.zeros(4, np.int64))
        (tmp_path / "d.npz").write_bytes((tmp_path / "d.npz").read_bytes()[:-30])
    expected = {
        "no-folder": "no such folder",
        "no-train": "no train/ folder",
        "one-class": "at least 2",
        "empty-class": "'dog' has no readable image",
        "unknown-test-class": "['yak']",
        "bad-spec": "expected folder:DIR or npz:FILE",
        "npz-no-y": "no array 'y'",
        "npz-torn": "not a readable .npz",
    }[case]
    with pytest.raises(ImprovedGANError, match=expected.replace("[", r"\[").replace("]", r"\]")) as info:
        read_own_data(spec, (1, 28, 28))
    assert "\n" not in str(info.value)


WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def test_train_and_predict_end_to_end_on_a_folder_of_mnist_pngs(tmp_path, capsys, one_thread) -> None:
    """`train --data folder:DIR` then `predict`: classes from the folder names, saved in the run;
    the predictions beat chance by far on held-out digits."""
    import csv
    import json

    import yaml

    from improved_gan.cli import main

    train_images, train_labels = load_images("mnist", "train")
    test_images, test_labels = (a[:100] for a in load_images("mnist", "test"))
    root = tmp_path / "digits"
    for split, images, labels, n in [
        ("train", train_images, train_labels, 40),
        ("test", test_images, test_labels, 4),
    ]:
        for k, word in enumerate(WORDS):
            (root / split / word).mkdir(parents=True)
            for i in np.flatnonzero(labels == k)[:n]:
                Image.fromarray(images[i, 0]).save(root / split / word / f"{i}.png")
    (root / "unlabelled").mkdir()
    for i in range(5000, 5400):
        Image.fromarray(train_images[i, 0]).save(root / "unlabelled" / f"{i}.png")
    run = tmp_path / "run"
    argv = ["train", "mnist-fm", "--data", f"folder:{root}", "--labels", "50", "--epochs", "5", "--quiet"]
    argv += [
        "--run-dir",
        str(run),
        "--set",
        "init_examples=100",
        "--set",
        "batch_size=50",
        "--set",
        "tensorboard=false",
    ]
    assert main(argv) == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["dataset"] == "folder" and config["num_classes"] == 10
    assert config["data_conversion"].startswith("grey (L)")
    assert json.loads((run / "classes.json").read_text()) == sorted(WORDS)
    out = tmp_path / "preds.csv"
    assert main(["predict", str(run), str(root / "test"), "--out", str(out), "--quiet"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(list((root / "test").rglob("*.png"))) >= 30
    right = sum(Path(r["path"]).parent.name == r["label"] for r in rows)
    assert right >= len(rows) / 2, f"{right} of {len(rows)} right (chance: a tenth)"
