"""Scores on several processes (``torchrun``): sampling and feature extraction sharded, the
statistics computed from the gathered logits and features, so the Inception Score / dataset score
and FID are those of one process on the same samples.

The samples are cut into the extractor's batches as one process cuts them; each process extracts
a contiguous range of those batches (:func:`shard_range`) and all processes gather the (N, K)
logits and (N, D) features in sample order (:func:`gather_rows`: a few MB for 50,000 samples).
The Inception Score accumulator and the FID statistics are then fed in the same batches as
:func:`improved_gan.metrics.score.score` feeds them, so the numbers are the single-process ones,
bit for bit where the extractor is deterministic. Every process returns the same result.
Under torchrun, :func:`~improved_gan.metrics.score.score` (and ``improved-gan score``) takes
this path by itself (:func:`sharded_pass`).
"""

from __future__ import annotations

import numpy as np
import torch

from improved_gan.metrics.extractors import Extractor
from improved_gan.metrics.fid import FeatureStatistics, frechet_distance
from improved_gan.metrics.inception_score import InceptionScoreAccumulator
from improved_gan.metrics.inputs import ImageSource
from improved_gan.training.distributed import (
    DistContext,
    context_from_env,
    gather_rows,
    shard_range,
    unsynced,
)


def _as_batches(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W) or (N, C, H, W) -> (N, C, H, W) tensor."""
    x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    return x[:, None] if x.dim() == 3 else x


def sharded_features(
    images: np.ndarray | torch.Tensor,
    extractor: Extractor,
    ctx: DistContext | None = None,
    batch_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, D), logits (N, K)) of all N uint8 images, in order, on every process.

    The images are cut into batches of ``batch_size`` as one process cuts them, and each process
    extracts a contiguous range of those batches, so every batch, and hence every output, is the
    one a single process computes."""
    ctx = ctx or context_from_env()
    x = _as_batches(images)
    batch_size = batch_size or extractor.default_batch_size
    starts = list(range(0, len(x), batch_size))
    lo, hi = shard_range(len(starts), ctx)
    features, logits = [], []
    for start in starts[lo:hi]:
        f, lg = extractor(x[start : start + batch_size])
        features.append(f)
        logits.append(lg)
    if not features:  # more processes than batches: an empty range of the right width
        f, lg = extractor(x[:1])
        features, logits = [f[:0]], [lg[:0]]
    return gather_rows(torch.cat(features), ctx), gather_rows(torch.cat(logits), ctx)


def scores_from_outputs(
    features: torch.Tensor,
    logits: torch.Tensor,
    splits: int = 10,
    batch_size: int = 1000,
    reference: dict | None = None,
) -> dict[str, float]:
    """``{"is_mean", "is_std"[, "fid"]}`` from gathered outputs, fed in batches of ``batch_size``
    as the single-process :func:`~improved_gan.metrics.score.score` feeds them."""
    acc = InceptionScoreAccumulator(len(logits), splits)
    stats = FeatureStatistics()
    for i in range(0, len(logits), batch_size):
        acc.update(logits[i : i + batch_size])
        stats.update(features[i : i + batch_size])
    mean, std = acc.compute()
    out = {"is_mean": mean, "is_std": std}
    if reference is not None:
        out["fid"] = frechet_distance(stats.mean(), stats.cov(), reference["mu"], reference["sigma"])
    return out


def sharded_score(
    images: np.ndarray | torch.Tensor,
    extractor: Extractor,
    splits: int = 10,
    reference: dict | None = None,
    ctx: DistContext | None = None,
    batch_size: int | None = None,
) -> dict[str, float]:
    """The Inception Score (and FID against ``reference`` statistics ``{"mu", "sigma"}``) of
    uint8 ``images``, each process extracting its share; equal to the single-process score."""
    batch_size = batch_size or extractor.default_batch_size
    features, logits = sharded_features(images, extractor, ctx, batch_size)
    return scores_from_outputs(features, logits, splits, batch_size, reference)


def sharded_pass(
    source: ImageSource,
    extractor: Extractor,
    batch_size: int,
    is_acc: InceptionScoreAccumulator | None,
    stats: FeatureStatistics | None,
    keep_features: bool,
    ctx: DistContext,
) -> np.ndarray | None:
    """:func:`improved_gan.metrics.score.score`'s pass over ``source`` with each process
    extracting a contiguous range of its batches; the gathered outputs feed ``is_acc`` and
    ``stats`` batch by batch, as one process feeds them. Every process reads every batch (reading
    and sampling are cheap next to the extractor) so that batch k is the same everywhere."""
    n_batches = -(-source.count // batch_size)
    lo, hi = shard_range(n_batches, ctx) if n_batches >= ctx.world_size else (0, n_batches)
    features, logits = [], []
    for k, images in enumerate(source.batches(batch_size)):
        if lo <= k < hi:
            f, lg = extractor(images)
            features.append(f)
            logits.append(lg)
    all_features, all_logits = torch.cat(features), torch.cat(logits)
    if n_batches >= ctx.world_size:
        all_features, all_logits = gather_rows(all_features, ctx), gather_rows(all_logits, ctx)
    for i in range(0, len(all_logits), batch_size):
        if is_acc is not None:
            is_acc.update(all_logits[i : i + batch_size])
        if stats is not None:
            stats.update(all_features[i : i + batch_size])
    return all_features.numpy() if keep_features else None


@torch.no_grad()
def sharded_generator_samples(
    G: torch.nn.Module,
    n: int,
    seed: int = 0,
    batch_size: int = 100,
    value_range: tuple[float, float] = (0.0, 1.0),
    ctx: DistContext | None = None,
) -> np.ndarray:
    """This process's part of :func:`~improved_gan.metrics.training_hook.sample_generator`'s ``n``
    samples: the same seeded noise batches, each process generating a contiguous range of them
    (so batch-norm statistics are those of the same batches). uint8 (n_r, 28, 28)."""
    from improved_gan.metrics.training_hook import sample_generator

    ctx = ctx or context_from_env()
    lo, hi = shard_range(len(range(0, n, batch_size)), ctx)
    with unsynced(G):  # the copy sample_generator makes normalises with its own batches
        return sample_generator(G, n, seed, batch_size, value_range, batches=range(lo, hi))


def sharded_generator_scores(
    G: torch.nn.Module,
    dataset: str,
    n: int = 10000,
    seed: int = 0,
    data_dir: str | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> dict[str, float]:
    """:func:`~improved_gan.metrics.training_hook.generator_scores` with sampling and feature
    extraction of samples and reference images shared among the processes: the same numbers."""
    import warnings

    from improved_gan.metrics.classifier import ClassifierNotFoundError
    from improved_gan.metrics.extractors import load_extractor
    from improved_gan.metrics.training_hook import _warned

    ctx = context_from_env()
    try:
        extractor = load_extractor(dataset)
    except ClassifierNotFoundError as exc:
        if dataset not in _warned and ctx.is_main:
            _warned.add(dataset)
            warnings.warn(f"score_every is set but {exc}; skipping the dataset score", stacklevel=2)
        return {}
    from improved_gan.data import load_idx_dataset

    test_images, _ = load_idx_dataset(dataset, "test", data_dir)
    ref_features, _ = sharded_features(test_images[:n], extractor, ctx)
    ref = FeatureStatistics()
    for i in range(0, len(ref_features), extractor.default_batch_size):
        ref.update(ref_features[i : i + extractor.default_batch_size])
    local = sharded_generator_samples(G, n, seed, value_range=value_range, ctx=ctx)
    samples = gather_rows(torch.from_numpy(local), ctx)  # uint8, 784 bytes a sample
    features, logits = sharded_features(samples, extractor, ctx)
    out = scores_from_outputs(
        features, logits, 10, extractor.default_batch_size, {"mu": ref.mean(), "sigma": ref.cov()}
    )
    return {"dataset_score": out["is_mean"], "dataset_score_std": out["is_std"], "dataset_fid": out["fid"]}
