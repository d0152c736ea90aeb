"""One pass over the inputs, every requested metric from the same features.

:func:`score` streams uint8 batches through one extractor and feeds the Inception Score
accumulator (logits), the FID statistics (features) and, only for KID, a float32 feature buffer.
Memory is independent of the number of samples for IS and FID.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from improved_gan.errors import ImprovedGANError
from improved_gan.metrics.extractors import Extractor, load_extractor
from improved_gan.metrics.fid import FeatureStatistics, frechet_distance, load_statistics, save_statistics
from improved_gan.metrics.inception_score import InceptionScoreAccumulator
from improved_gan.metrics.inputs import ImageSource, ValueRange, open_source
from improved_gan.metrics.kid import kernel_inception_distance

METRICS = ("is", "fid", "kid")


def is_profile(extractor: Extractor, splits: int, shuffle: bool, seed: int | None) -> str:
    """One line saying how the Inception Score was computed, to print next to the number."""
    order = f"shuffled (RandomState({seed}))" if shuffle else "contiguous (reference)"
    return f"{extractor.description}; {splits} splits, {order}; population std (ddof=0); float64 log-softmax"


def _pass(
    source: ImageSource,
    extractor: Extractor,
    batch_size: int,
    is_acc: InceptionScoreAccumulator | None,
    stats: FeatureStatistics | None,
    keep_features: bool,
    progress: bool,
) -> np.ndarray | None:
    from improved_gan.training.distributed import context_from_env

    ctx = context_from_env()
    if ctx.enabled and torch.distributed.is_initialized():  # under torchrun: shard the extractor
        from improved_gan.metrics.distributed import sharded_pass

        return sharded_pass(source, extractor, batch_size, is_acc, stats, keep_features, ctx)
    kept: list[torch.Tensor] = []
    bar = tqdm(
        total=source.count,
        desc=f"scoring {source.description}",
        unit="img",
        disable=not progress,
        leave=False,
    )
    for images in source.batches(batch_size):
        features, logits = extractor(images)
        if is_acc is not None:
            is_acc.update(logits)
        if stats is not None:
            stats.update(features)
        if keep_features:
            kept.append(features)
        bar.update(len(images))
    bar.close()
    return torch.cat(kept).numpy() if keep_features else None


def reference_statistics(
    reference,
    extractor: Extractor,
    need_features: bool,
    n: int | None = None,
    batch_size: int | None = None,
    value_range: ValueRange = "auto",
    progress: bool = True,
) -> dict:
    """``{"mu", "sigma", "n", ["features"]}`` of a reference: such a dict, an ``.npz`` of
    statistics written by :func:`score` (``save_reference``) or any input :func:`open_source`
    accepts."""
    if isinstance(reference, dict):  # statistics computed earlier
        return reference
    path = Path(reference) if isinstance(reference, (str, Path)) else None
    if path is not None and path.suffix == ".npz" and path.is_file():
        with np.load(path, allow_pickle=False) as data:
            is_stats = "mu" in data.files and "sigma" in data.files
        if is_stats:
            stats = load_statistics(path)
            if "extractor" in stats and str(stats["extractor"]) != extractor.name:
                raise ImprovedGANError(
                    f"{path} holds {stats['extractor']} features, but the extractor is {extractor.name}"
                )
            if need_features and "features" not in stats:
                raise ImprovedGANError(
                    f"{path} has no 'features' array, which KID needs; save it with --metric kid"
                )
            return stats
    source = open_source(reference, n=n, value_range=value_range)
    acc = FeatureStatistics()
    features = _pass(
        source, extractor, batch_size or extractor.default_batch_size, None, acc, need_features, progress
    )
    out = {"mu": acc.mean(), "sigma": acc.cov(), "n": np.int64(acc.n)}
    if features is not None:
        out["features"] = features
    return out


def score(
    source,
    metrics: Sequence[str] = ("is",),
    extractor: str | Extractor = "mnist",
    reference=None,
    n: int | None = None,
    batch_size: int | None = None,
    splits: int = 10,
    shuffle: bool = False,
    seed: int | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    value_range: ValueRange = "auto",
    device: str = "cpu",
    inception_weights: str | None = None,
    save_reference: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Score ``source`` (tensor, run directory, image folder, .npz/.npy, dataset split name).

    Returns a flat dict: ``n``, ``extractor``; with ``"is"``: ``is_mean``, ``is_std``,
    ``is_profile``; with ``"fid"``/``"kid"`` (which need ``reference``): ``fid``, ``kid_mean``,
    ``kid_std``, ``reference_n``. ``save_reference`` writes the source's statistics (and features
    when KID is asked) to an ``.npz`` usable later as ``reference``.
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ImprovedGANError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
    if ("fid" in metrics or "kid" in metrics) and reference is None:
        raise ImprovedGANError(
            "FID and KID compare with a reference: pass --reference (e.g. mnist-test or stats.npz)"
        )
    src = open_source(source, n=n, value_range=value_range)
    ext = (
        extractor
        if isinstance(extractor, Extractor)
        else load_extractor(extractor, device, inception_weights)
    )
    batch_size = batch_size or ext.default_batch_size
    is_acc = InceptionScoreAccumulator(src.count, splits, shuffle, seed) if "is" in metrics else None
    want_stats = "fid" in metrics or save_reference is not None
    stats = FeatureStatistics() if want_stats else None
    features = _pass(src, ext, batch_size, is_acc, stats, "kid" in metrics, progress)
    result: dict = {"n": src.count, "extractor": ext.description}
    if is_acc is not None:
        mean, std = is_acc.compute()
        result.update(is_mean=mean, is_std=std, is_profile=is_profile(ext, splits, shuffle, seed))
    if save_reference is not None:
        extra = {"extractor": np.str_(ext.name)}
        if features is not None:
            extra["features"] = features.astype(np.float32)
        save_statistics(save_reference, stats.mean(), stats.cov(), stats.n, **extra)
        result["saved_reference"] = str(save_reference)
    if reference is not None and ("fid" in metrics or "kid" in metrics):
        ref = reference_statistics(reference, ext, "kid" in metrics, None, batch_size, value_range, progress)
        result["reference_n"] = int(ref["n"]) if "n" in ref else None
        if "fid" in metrics:
            result["fid"] = frechet_distance(stats.mean(), stats.cov(), ref["mu"], ref["sigma"])
        if "kid" in metrics:
            result["kid_mean"], result["kid_std"] = kernel_inception_distance(
                features, ref["features"], subsets=kid_subsets, subset_size=kid_subset_size
            )
    return result


def score_generator_samples(
    images_uint8, extractor: str | Extractor = "mnist", splits: int = 10, reference=None
) -> dict[str, float]:
    """The dataset score (IS with the dataset classifier) of generator samples, uint8 (N, 28, 28),
    and, when ``reference`` is given (e.g. ``"mnist-test"`` or a stats .npz), their FID:
    ``{"dataset_score", "dataset_score_std"[, "dataset_fid"]}``. Raises
    :class:`~improved_gan.metrics.classifier.ClassifierNotFoundError` without a cached classifier."""
    metrics = ("is", "fid") if reference is not None else ("is",)
    out = score(images_uint8, metrics, extractor, reference=reference, splits=splits, progress=False)
    result = {"dataset_score": out["is_mean"], "dataset_score_std": out["is_std"]}
    if "fid" in out:
        result["dataset_fid"] = out["fid"]
    return result
