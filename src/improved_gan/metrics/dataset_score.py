"""What the trainer calls every ``score_every`` epochs: the dataset score and FID of generator
samples, measured with the cached dataset classifier. The FID reference is the first
``n`` images of the test split (as many as there are samples, at most 10,000: FID is biased by the
sample size, so both sides use the same).

Without a cached classifier it warns once and returns nothing, so training never fails for it.
Sampling uses a copy of G and its own seeded noise: the training run's state and random stream
are untouched (a run with scoring on trains exactly as one with it off). Under torchrun each
process generates a contiguous range of the sample batches, and the scoring pass is sharded
(:func:`improved_gan.metrics.score.extract`): the numbers are those of one process.
"""

from __future__ import annotations

import warnings

import torch

from improved_gan.data import load_idx_dataset
from improved_gan.metrics.classifier import ClassifierNotFoundError
from improved_gan.metrics.extractors import load_extractor
from improved_gan.metrics.sampling import sample_generator
from improved_gan.metrics.score import reference_statistics, score_generator_samples
from improved_gan.models.sync_batch_norm import unsynced
from improved_gan.utils.distributed import context_from_env, gather_rows, shard_range

_warned: set[str] = set()
_reference_cache: dict[tuple[str, str, str | None, int], dict] = {}


def generator_scores(
    G: torch.nn.Module,
    dataset: str,
    n: int = 10000,
    seed: int = 0,
    data_dir: str | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    batch_size: int = 100,
) -> dict[str, float]:
    """``{"dataset_score", "dataset_score_std", "dataset_fid"}`` of ``n`` samples of ``G``, or ``{}``
    (with a one-time warning) when no classifier for ``dataset`` is cached."""
    ctx = context_from_env()
    try:
        extractor = load_extractor(dataset)
    except ClassifierNotFoundError as exc:
        if dataset not in _warned and ctx.is_main:
            _warned.add(dataset)
            warnings.warn(f"score_every is set but {exc}; skipping the dataset score", stacklevel=2)
        return {}
    key = (dataset, extractor.description, data_dir, n)
    if key not in _reference_cache:
        test_images, _ = load_idx_dataset(dataset, "test", data_dir)
        _reference_cache[key] = reference_statistics(test_images[:n], extractor, False, progress=False)
    if ctx.enabled:  # each process generates its range of the batches; all gather them
        lo, hi = shard_range(len(range(0, n, batch_size)), ctx)
        with unsynced(G):  # the copy sample_generator makes normalises with its own batches
            local = sample_generator(G, n, seed, batch_size, value_range, batches=range(lo, hi))
        images = gather_rows(torch.from_numpy(local), ctx).numpy()
    else:
        images = sample_generator(G, n, seed, batch_size, value_range)
    return score_generator_samples(images, extractor, reference=_reference_cache[key])
