"""Feature extractors by name: ``inception`` (the reference Inception-v3: pool3 features and
unbiased logits) and ``mnist`` / ``fashion-mnist`` (the cached dataset classifiers: 128
penultimate features and 10 logits). Each is called on uint8 (B, C, H, W) batches and returns
``(features (B, D), logits (B, K))``; :func:`adapt_channels` fits the images to it."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

from improved_gan.data import CLASSIFIER_DATASETS
from improved_gan.errors import ImprovedGANError
from improved_gan.metrics.classifier import fused_for_inference, load_classifier
from improved_gan.metrics.inception import load_inception
from improved_gan.utils.devices import resolve_device

EXTRACTORS = ("inception", *CLASSIFIER_DATASETS)


@dataclass
class Extractor:
    """A loaded extractor and what to print next to its numbers."""

    name: str
    module: nn.Module
    description: str
    input_channels: int
    input_size: tuple[int, int] | None
    default_batch_size: int

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    @property
    def feature_dim(self) -> int | None:
        """The size of the features, when the module declares it (both built-in ones do)."""
        return getattr(self.module, "feature_dim", None)

    @property
    def features_label(self) -> str:
        """What FID/KID are computed on, in words: ``Inception pool3``, ``mnist classifier features``."""
        if self.name == "inception":
            return "Inception pool3"
        if self.name in CLASSIFIER_DATASETS:
            return f"{self.name} classifier features"
        return f"{self.name} features"

    def features_spec(self, dim: int | None = None) -> str:
        """``"<features_label>, <D>-d"`` (``D`` from ``dim`` or the module's ``feature_dim``)."""
        dim = dim if dim is not None else self.feature_dim
        return self.features_label if dim is None else f"{self.features_label}, {dim}-d"

    def repair_hint(self) -> str:
        """How to get working weights back, for errors that blame the extractor."""
        if self.name in CLASSIFIER_DATASETS:
            return f"retrain it with `improved-gan classifier train {self.name} --force`"
        return "check its weights (--inception-weights)"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, logits = self.module(adapt_channels(images, self).to(self.device))
        return features.float().cpu(), logits.float().cpu()


_warned_grey = False


def adapt_channels(images: torch.Tensor, extractor: Extractor) -> torch.Tensor:
    """Fit uint8 (B, C, H, W) images to the extractor: grey -> RGB for Inception (with a warning:
    the reference network was trained on colour photographs); RGB with equal channels -> grey for
    the classifiers; anything else that does not fit is an error."""
    global _warned_grey
    c = images.shape[1]
    if extractor.input_channels == 3 and c == 1:
        if not _warned_grey:
            warnings.warn(
                "grey images are replicated to RGB for Inception-v3; for MNIST-like data the "
                "dataset classifier (--extractor mnist) is the meaningful score",
                stacklevel=3,
            )
            _warned_grey = True
        images = images.expand(-1, 3, -1, -1)
    elif extractor.input_channels == 1 and c == 3:
        if not (torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 0], images[:, 2])):
            raise ImprovedGANError(f"the {extractor.name} classifier takes grey images; these are in colour")
        images = images[:, :1]
    if extractor.input_size is not None and tuple(images.shape[2:]) != extractor.input_size:
        h, w = extractor.input_size
        raise ImprovedGANError(
            f"the {extractor.name} classifier takes {h}×{w} images, got {images.shape[2]}×{images.shape[3]}"
        )
    return images


def load_extractor(
    name: str, device: str | torch.device = "cpu", inception_weights: str | None = None, download: bool = True
) -> Extractor:
    """The named extractor, ready to use; raises a clear error when its weights are missing."""
    if name not in EXTRACTORS:
        raise ImprovedGANError(f"unknown extractor {name!r}; choose one of {', '.join(EXTRACTORS)}")
    device = resolve_device(device)
    if name == "inception":
        model = load_inception(inception_weights, download=download, device=device)
        return Extractor(
            name,
            model,
            "Inception-v3 2015-12-05 (pool3 2048, logits without fc bias; TF-1 bilinear resize to 299)",
            3,
            None,
            50,
        )
    if name in CLASSIFIER_DATASETS:
        model, info = load_classifier(name, device=device)
        return Extractor(name, fused_for_inference(model), info.describe(), 1, (28, 28), 1000)
    raise ImprovedGANError(f"unknown extractor {name!r}; choose one of {', '.join(EXTRACTORS)}")
