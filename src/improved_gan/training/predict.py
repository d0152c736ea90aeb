"""Classify new images with a trained run: the K-class classifier inside the semi-supervised
discriminator (paper §5: D's K real-class logits; the "generated" logit is fixed at 0 and plays
no part in the class decision), with the test-time weights (the EMA of D where the run kept one,
as openai/improved-gan ``mnist_svhn_cifar10/train_cifar_feature_matching.py`` tests).

``load_classifier(run_dir)`` gives an eval-mode module; ``predict_files`` reads image files,
converts them to the model's input exactly as the run's training images were converted, and
returns each file's class name and probability (``improved-gan predict``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from improved_gan.data.catalog import dataset_info, to_float
from improved_gan.data.own_data import image_to_input
from improved_gan.errors import ImprovedGANError
from improved_gan.training.build import data_range, predict_logits, test_batch_size
from improved_gan.training.run_dir import CLASSES, RunDir
from improved_gan.training.saved_run import load_run_models
from improved_gan.utils.images import IMAGE_SUFFIXES


class Classifier(nn.Module):
    """A run's discriminator as a K-class classifier: uint8 images in, class probabilities out.

    ``forward`` takes uint8 (N, C, H, W) images of the model's ``image_shape`` (use
    :func:`image_to_input` for other images) and returns softmax probabilities over the K real
    classes, (N, K). ``classes[k]`` names class k."""

    def __init__(
        self,
        D: nn.Module,
        classes: Sequence[str],
        dataset: str,
        image_shape: tuple[int, int, int],
        value_range: tuple[float, float],
        batch_size: int,
    ) -> None:
        super().__init__()
        self.D = D
        self.classes = list(classes)
        self.dataset = dataset
        self.image_shape = image_shape
        self.value_range = value_range
        self.batch_size = batch_size

    @torch.no_grad()
    def forward(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        images = np.asarray(images.cpu() if isinstance(images, torch.Tensor) else images)
        if images.dtype != np.uint8 or tuple(images.shape[1:]) != self.image_shape:
            raise ImprovedGANError(
                f"the classifier takes uint8 images of shape (N, {', '.join(map(str, self.image_shape))}), "
                f"got {images.dtype} {tuple(images.shape)}; convert them with image_to_input"
            )
        x = torch.from_numpy(to_float(images, self.dataset, self.value_range)).flatten(1)
        return predict_logits(self.D, x, self.batch_size).softmax(1)


def run_classes(run: RunDir, dataset: str, k: int) -> list[str]:
    """The run's class names: its ``classes.json`` if it has one (a run on a user's images), else the dataset's names, else
    ``"0"`` … ``"K−1"``."""
    path = run.path / CLASSES
    if path.is_file():
        try:
            names = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ImprovedGANError(f"{path}: not a JSON list of class names ({exc}); restore it") from None
        if not (isinstance(names, list) and len(names) == k and all(isinstance(n, str) for n in names)):
            raise ImprovedGANError(f"{path}: expected a JSON list of {k} class names; restore it")
        return names
    names = dataset_info(dataset).class_names
    return list(names) if names and len(names) == k else [str(i) for i in range(k)]


def load_classifier(run_dir: str | Path, use_ema: bool = True, device: str = "cpu") -> Classifier:
    """The run's classifier in eval mode, on ``device``, with the EMA weights when the run kept
    them (``use_ema=False``: the raw weights). ``.classes`` names the classes."""
    config, D, _, _ = load_run_models(run_dir, use_ema)
    if not config.supervised:
        raise ImprovedGANError(f"{run_dir} is an unsupervised run (labels: 0); its D classifies nothing")
    classes = run_classes(RunDir(run_dir), config.dataset, config.classes)
    model = Classifier(
        D.to(device),
        classes,
        config.dataset,
        config.image_shape,
        data_range(config),
        test_batch_size(D, config),
    )
    return model.eval()


def image_files(paths: Iterable[str | Path]) -> list[Path]:
    """Image files named by ``paths``: files as given, folders searched recursively (PNG, JPEG,
    BMP), in sorted order."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ImprovedGANError(f"{p} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise ImprovedGANError(f"{p} does not exist; pass image files or folders of images")
    if not files:
        raise ImprovedGANError("no images given; pass image files or folders of images")
    return files


@dataclass(frozen=True)
class Prediction:
    path: str
    label: str
    probability: float


def predict_files(
    classifier: Classifier, paths: Iterable[str | Path], batch_size: int = 500, progress: bool = True
) -> list[Prediction]:
    """Each image's most probable class and its probability, reading ``batch_size`` files at a
    time (a progress bar when there are many)."""
    if batch_size < 1:
        raise ImprovedGANError(f"batch size must be at least 1, got {batch_size}")
    files = image_files(paths)
    out: list[Prediction] = []
    with tqdm(total=len(files), unit="img", desc="predict", disable=not progress or len(files) < 2000) as bar:
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            images = np.stack([image_to_input(f, classifier.image_shape) for f in chunk])
            probs = classifier(images)
            best, label = probs.max(1)
            out += [
                Prediction(str(f), classifier.classes[int(k)], float(p))
                for f, k, p in zip(chunk, label, best, strict=True)
            ]
            bar.update(len(chunk))
    return out
