"""What the trainer calls every ``score_every`` epochs: the dataset score and FID of generator
samples, measured with the cached dataset classifier. The FID reference is the first
``n`` images of the test split (as many as there are samples, at most 10,000: FID is biased by the
sample size, so both sides use the same).

Without a cached classifier it warns once and returns nothing, so training never fails for it.
Sampling uses a copy of G and its own seeded noise: the training run's state and random stream
are untouched (a run with scoring on trains exactly as one with it off).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch

from improved_gan.metrics.classifier import ClassifierNotFoundError

_warned: set[str] = set()
_reference_cache: dict[tuple[str, str, str | None, int], dict] = {}


@torch.no_grad()
def sample_generator(
    G: torch.nn.Module,
    n: int,
    seed: int = 0,
    batch_size: int = 100,
    value_range: tuple[float, float] = (0.0, 1.0),
    batches: range | None = None,
) -> np.ndarray:
    """``n`` samples of ``G`` as uint8 (N, 28, 28), from a copy of G in training mode (batch
    statistics, as the reference samples), in batches of ``batch_size`` with seeded noise;
    ``value_range`` is G's output range ((0, 1) sigmoid, (-1, 1) tanh). ``batches``: generate
    only these batch indices (every batch's noise is still drawn, so each keeps its noise), as a
    process does under torchrun; default all."""
    from improved_gan.training.images import to_uint8_images

    G = copy.deepcopy(G).train()
    device = next(G.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    starts = range(0, n, batch_size)
    keep = range(len(starts)) if batches is None else batches
    chunks = [np.zeros((0, 28, 28), dtype=np.uint8)]
    for k, start in enumerate(starts):
        z = G.sample_noise(batch_size, generator=rng)
        if k in keep:
            chunks.append(to_uint8_images(G(z.to(device)), value_range=value_range)[: n - start])
    return np.concatenate(chunks)


def generator_scores(
    G: torch.nn.Module,
    dataset: str,
    n: int = 10000,
    seed: int = 0,
    data_dir: str | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> dict[str, float]:
    """``{"dataset_score", "dataset_score_std", "dataset_fid"}`` of ``n`` samples of ``G``, or ``{}``
    (with a one-time warning) when no classifier for ``dataset`` is cached."""
    from improved_gan.metrics.extractors import load_extractor
    from improved_gan.metrics.score import reference_statistics, score_generator_samples

    try:
        extractor = load_extractor(dataset)
    except ClassifierNotFoundError as exc:
        if dataset not in _warned:
            _warned.add(dataset)
            warnings.warn(f"score_every is set but {exc}; skipping the dataset score", stacklevel=2)
        return {}
    key = (dataset, extractor.description, data_dir, n)
    if key not in _reference_cache:
        from improved_gan.data import load_idx_dataset

        test_images, _ = load_idx_dataset(dataset, "test", data_dir)
        _reference_cache[key] = reference_statistics(test_images[:n], extractor, False, progress=False)
    images = sample_generator(G, n, seed, value_range=value_range)
    return score_generator_samples(images, extractor, reference=_reference_cache[key])
