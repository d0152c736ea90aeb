"""A user's own images for semi-supervised training (``improved-gan train PRESET --data folder:DIR``
or ``--data npz:FILE``), converted to the preset model's input.

A folder holds ``train/<class>/*`` (PNG, JPEG or BMP, any size or mode), optionally
``unlabelled/*`` and optionally ``test/<class>/*``; the classes are the sorted names of
``train/``'s sub-folders. Without ``test/``, a held-out tenth of each class of ``train/`` (at
least one image, a fixed draw, the same for every seed) is the test set. An ``.npz`` holds ``x``
(uint8 images (N, H, W), (N, H, W, C) or (N, C, H, W)) and ``y`` (int, −1 for unlabelled), and
optionally ``x_test``/``y_test`` and ``classes`` (their names).

Every image is converted as :func:`image_to_input` says (the run records it in config.yaml as
``data_conversion``); the labelled subset is then drawn from the labelled training images as for
the paper's datasets (paper §5, openai/improved-gan ``mnist_svhn_cifar10/train_mnist_feature_matching.py``),
and all training images, the unlabelled ones included, feed the unsupervised loss.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from improved_gan.errors import ImprovedGANError
from improved_gan.utils.images import IMAGE_SUFFIXES, NPZ_READ_ERRORS, open_image

UNLABELLED_DIRS = ("unlabelled", "unlabeled")
HELD_OUT_FRACTION = 0.1
HELD_OUT_SEED = 0


def conversion_note(shape: tuple[int, int, int]) -> str:
    """How :func:`image_to_input` converts images to ``shape`` (recorded in config.yaml)."""
    c, h, w = shape
    return f"{'grey (L)' if c == 1 else 'RGB'}, centre crop to {w}:{h}, bicubic resize to {w}x{h}, uint8"


def _to_shape(img: Image.Image, shape: tuple[int, int, int]) -> np.ndarray:
    channels, height, width = shape
    img = img.convert("L" if channels == 1 else "RGB")
    if img.size != (width, height):
        w, h = img.size
        scale = min(w / width, h / height)
        cw, ch = round(width * scale), round(height * scale)
        left, top = (w - cw) // 2, (h - ch) // 2
        img = img.resize((width, height), Image.Resampling.BICUBIC, box=(left, top, left + cw, top + ch))
    pixels = np.asarray(img, dtype=np.uint8)
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def image_to_input(path: str | Path, shape: tuple[int, int, int]) -> np.ndarray:
    """An image file as a model's uint8 (C, H, W) input: grey ("L") for C = 1, RGB for C = 3;
    centre-cropped to the model's aspect ratio and resized (bicubic) when its size differs."""
    with open_image(path) as img:
        try:
            return _to_shape(img, shape)
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImprovedGANError(
                f"{path}: the image cannot be decoded ({exc}); remove it or re-save it"
            ) from None


def array_to_input(image: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """One uint8 image array, (H, W), (H, W, C) or (C, H, W) with C in 1, 3, 4, as (C, H, W) of ``shape``."""
    if image.ndim == 3 and image.shape[0] in (1, 3, 4) and image.shape[-1] not in (1, 3, 4):
        image = image.transpose(1, 2, 0)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if tuple(image.shape) == shape[1:] and shape[0] == 1:
        return image[None]
    return _to_shape(Image.fromarray(image), shape)


@dataclass
class OwnData:
    """Converted images: training (labels −1 for unlabelled), test, the class names, and what
    the loader had to decide (held-out test split, skipped files)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    held_out: bool
    skipped: list[str]

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return (self.x_train, self.y_train) if name == "train" else (self.x_test, self.y_test)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _read(
    paths: list[Path], shape: tuple[int, int, int], skipped: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Decoded images and a mask of the files that decoded (the others are noted in ``skipped``)."""
    out, ok = [], []
    for p in paths:
        try:
            out.append(image_to_input(p, shape))
            ok.append(True)
        except ImprovedGANError as exc:
            skipped.append(str(exc))
            ok.append(False)
    images = np.stack(out) if out else np.zeros((0, *shape), np.uint8)
    return images, np.asarray(ok, dtype=bool)


def folder_classes(root: str | Path) -> list[str]:
    """The class names of a data folder: the sorted sub-folders of ``train/``."""
    train = Path(root) / "train"
    if not Path(root).is_dir():
        raise ImprovedGANError(
            f"--data folder:{root}: no such folder; pass a folder holding train/<class>/ images"
        )
    if not train.is_dir():
        raise ImprovedGANError(f"{root} has no train/ folder; put the images in {train}/<class name>/")
    classes = sorted(p.name for p in train.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise ImprovedGANError(
            f"{train} has {len(classes)} class folder(s); make one sub-folder per class (at least 2)"
        )
    return classes


def _labelled(root: Path, split: str, classes: list[str], shape, skipped) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for k, name in enumerate(classes):
        folder = root / split / name
        if not folder.is_dir():
            continue
        images, _ = _read(_images_in(folder), shape, skipped)
        xs.append(images)
        ys.append(np.full(len(images), k, np.int64))
    if not xs:
        return np.zeros((0, *shape), np.uint8), np.zeros(0, np.int64)
    return np.concatenate(xs), np.concatenate(ys)


def held_out_split(labels: np.ndarray) -> np.ndarray:
    """A boolean mask of the held-out test images: a tenth of each class (at least one, never
    all), drawn with a fixed seed so every run on the same folder tests on the same images."""
    rng = np.random.RandomState(HELD_OUT_SEED)
    test = np.zeros(len(labels), dtype=bool)
    for k in np.unique(labels[labels >= 0]):
        idx = np.flatnonzero(labels == k)
        n = min(len(idx) - 1, max(1, round(HELD_OUT_FRACTION * len(idx))))
        test[rng.permutation(idx)[:n]] = True
    return test


def read_data_folder(root: str | Path, shape: tuple[int, int, int]) -> OwnData:
    """Every image of a data folder, converted to ``shape`` (undecodable files are skipped and
    listed in ``skipped``; a warning says how many)."""
    root = Path(root)
    classes = folder_classes(root)
    skipped: list[str] = []
    x_lab, y_lab = _labelled(root, "train", classes, shape, skipped)
    for k, name in enumerate(classes):
        if not (y_lab == k).any():
            raise ImprovedGANError(
                f"class {name!r} has no readable image in {root / 'train' / name}; add images"
            )
    test_dir = root / "test"
    held_out = not test_dir.is_dir()
    if held_out:
        test = held_out_split(y_lab)
        x_test, y_test, x_lab, y_lab = x_lab[test], y_lab[test], x_lab[~test], y_lab[~test]
    else:
        unknown = sorted(p.name for p in test_dir.iterdir() if p.is_dir() and p.name not in classes)
        if unknown:
            raise ImprovedGANError(
                f"{test_dir} has class folders {unknown} that train/ lacks; use the same class names"
            )
        x_test, y_test = _labelled(root, "test", classes, shape, skipped)
        if not len(x_test):
            raise ImprovedGANError(
                f"{test_dir} holds no readable images; add test/<class>/ images or remove it"
            )
    x_unl = np.zeros((0, *shape), np.uint8)
    for name in UNLABELLED_DIRS:
        if (root / name).is_dir():
            x_unl, _ = _read(_images_in(root / name), shape, skipped)
            break
    if skipped:
        print(
            f"warning: skipped {len(skipped)} file(s) that do not decode as images (first: {skipped[0]})",
            file=sys.stderr,
        )
    return OwnData(
        np.concatenate([x_lab, x_unl]),
        np.concatenate([y_lab, np.full(len(x_unl), -1, np.int64)]),
        x_test,
        y_test,
        classes,
        held_out,
        skipped,
    )


def read_data_npz(path: str | Path, shape: tuple[int, int, int]) -> OwnData:
    """The arrays of an ``.npz`` data file, converted to ``shape``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise ImprovedGANError(f"--data npz:{path}: no such file") from None
    except NPZ_READ_ERRORS as exc:
        raise ImprovedGANError(
            f"{path}: not a readable .npz ({exc}); save it with np.savez(path, x=..., y=...)"
        ) from None
    for key in ("x", "y"):
        if key not in arrays:
            raise ImprovedGANError(
                f"{path} has no array {key!r}; save it with np.savez(path, x=images, y=labels)"
            )

    def images(key: str) -> np.ndarray:
        x = arrays[key]
        if x.dtype != np.uint8 or x.ndim not in (3, 4):
            raise ImprovedGANError(
                f"{path}: {key!r} must be uint8 images (N, H, W[, C]), got {x.dtype} {x.shape}"
            )
        return (
            np.stack([array_to_input(img, shape) for img in x]) if len(x) else np.zeros((0, *shape), np.uint8)
        )

    def labels(key: str, n: int, unlabelled_ok: bool) -> np.ndarray:
        y = arrays[key]
        if not np.issubdtype(y.dtype, np.integer) or y.shape != (n,):
            raise ImprovedGANError(f"{path}: {key!r} must be {n} integer labels, got {y.dtype} {y.shape}")
        if y.size and (y.min() < (-1 if unlabelled_ok else 0)):
            raise ImprovedGANError(
                f"{path}: {key!r} has label {y.min()}; use 0..K-1 (and -1 for unlabelled in y)"
            )
        return y.astype(np.int64)

    x = images("x")
    y = labels("y", len(x), unlabelled_ok=True)
    k = int(y.max()) + 1 if (y >= 0).any() else 0
    if "classes" in arrays:
        classes = [str(c) for c in arrays["classes"]]
        if len(classes) < k:
            raise ImprovedGANError(f"{path}: {len(classes)} class names but labels up to {k - 1}")
    else:
        classes = [str(i) for i in range(k)]
    if len(classes) < 2:
        raise ImprovedGANError(f"{path}: labels of {len(classes)} class(es); at least 2 classes are needed")
    held_out = "x_test" not in arrays
    if held_out:
        test = held_out_split(y)
        x_test, y_test, x, y = x[test], y[test], x[~test], y[~test]
    else:
        x_test = images("x_test")
        y_test = labels("y_test", len(x_test), unlabelled_ok=False) if "y_test" in arrays else None
        if y_test is None:
            raise ImprovedGANError(f"{path} has x_test but no y_test; add its labels")
        if y_test.size and y_test.max() >= len(classes):
            raise ImprovedGANError(
                f"{path}: y_test has label {y_test.max()}, beyond the {len(classes)} classes"
            )
    return OwnData(x, y, x_test, y_test, classes, held_out, [])


def parse_data_spec(spec: str) -> tuple[str, Path]:
    """``"folder:DIR"`` or ``"npz:FILE"`` -> (kind, path)."""
    kind, sep, path = spec.partition(":")
    if not sep or kind not in ("folder", "npz") or not path:
        raise ImprovedGANError(f"--data {spec!r}: expected folder:DIR or npz:FILE")
    return kind, Path(path).expanduser()


def read_own_data(spec: str, shape: tuple[int, int, int]) -> OwnData:
    """The data a ``--data`` spec names, converted to ``shape``."""
    kind, path = parse_data_spec(spec)
    return read_data_folder(path, shape) if kind == "folder" else read_data_npz(path, shape)


def own_data_classes(spec: str) -> list[str]:
    """The class names of a ``--data`` spec, without decoding any image of a folder."""
    kind, path = parse_data_spec(spec)
    if kind == "folder":
        return folder_classes(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "classes" in data.files:
                return [str(c) for c in data["classes"]]
            y = data["y"] if "y" in data.files else np.zeros(0, np.int64)
    except NPZ_READ_ERRORS as exc:
        raise ImprovedGANError(f"--data npz:{path}: not a readable .npz ({exc})") from None
    return [str(i) for i in range(int(y.max()) + 1 if y.size else 0)]


@functools.lru_cache(maxsize=1)
def _cached(kind: str, path: str, shape: tuple[int, int, int]) -> OwnData:
    data = read_own_data(f"{kind}:{path}", shape)
    if data.held_out:
        print(
            f"note: {path} has no test set; testing on a fixed held-out tenth of each class "
            f"({len(data.x_test)} images, not used for training)",
            file=sys.stderr,
        )
    return data


def load_own_split(
    kind: str, path: str | Path | None, split: str, shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """One split of a user's data as the dataset catalog loads it: uint8 (N, C, H, W) and int64
    labels (−1: unlabelled, train only). The data is read once per process and shape."""
    if path is None:
        raise ImprovedGANError(f"dataset {kind} needs its path: pass --data {kind}:PATH")
    return _cached(kind, str(Path(path).expanduser().resolve()), tuple(shape)).split(split)
