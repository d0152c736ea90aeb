"""One pass over the inputs, every requested metric from the same features.

:func:`score` streams uint8 batches through one extractor and collects what the requested
metrics need (:mod:`~improved_gan.metrics.registry`): the Inception Score accumulator (logits),
the FID statistics (features) and, only for KID, a float32 feature buffer. Memory is independent
of the number of samples for IS and FID.

Under torchrun the same pass is sharded: each process extracts a contiguous range of the
batches, every process gathers the outputs in order and feeds them in the same batches as one
process does, so the numbers are the single-process ones, bit for bit where the extractor is
deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from improved_gan.errors import ImprovedGANError
from improved_gan.metrics.checks import check_int, check_output_file, check_seed
from improved_gan.metrics.extractors import Extractor, load_extractor
from improved_gan.metrics.feature_cache import cached_features
from improved_gan.metrics.fid import FeatureStatistics, check_statistics, save_statistics
from improved_gan.metrics.files import npz_names, read_npz
from improved_gan.metrics.inception_score import InceptionScoreAccumulator
from improved_gan.metrics.inputs import VALUE_RANGES, ImageSource, open_source
from improved_gan.metrics.registry import MetricOptions, PassOutputs, get_metrics
from improved_gan.utils.distributed import context_from_env, gather_rows, shard_range
from improved_gan.utils.images import ValueRange


def _run(
    extractor: Extractor, images: torch.Tensor, source: ImageSource, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The extractor's (features, logits) of batch ``k``, refusing images it cannot take and
    outputs that are not finite (broken weights), with the source named."""
    try:
        features, logits = extractor(images)
    except ImprovedGANError as exc:
        raise ImprovedGANError(f"{source.description}: {exc}") from None
    if not (torch.isfinite(features).all() and torch.isfinite(logits).all()):
        raise ImprovedGANError(
            f"the {extractor.name} extractor gave NaN or infinite outputs on batch {k} of "
            f"{source.description}; its weights are broken: {extractor.repair_hint()}"
        )
    return features, logits


def check_fits(source: ImageSource, extractor: Extractor) -> None:
    """Refuse, before any pass, images of a size the extractor does not take."""
    if source.image_shape is None or extractor.input_size is None:
        return
    _, h, w = source.image_shape
    if (h, w) != tuple(extractor.input_size):
        eh, ew = extractor.input_size
        raise ImprovedGANError(
            f"{source.description}: the {extractor.name} classifier takes {eh}×{ew} images, got {h}×{w}"
        )


def extract(
    source: ImageSource, extractor: Extractor, batch_size: int, outputs: PassOutputs, progress: bool
) -> PassOutputs:
    """Run ``extractor`` over ``source`` in batches of ``batch_size`` and feed ``outputs`` (the
    accumulators that are not None, and ``outputs.features`` with ``keep_features``)."""
    ctx = context_from_env()
    sharded = ctx.enabled and dist.is_available() and dist.is_initialized()
    n_batches = -(-source.count // batch_size)
    lo, hi = shard_range(n_batches, ctx) if sharded and n_batches >= ctx.world_size else (0, n_batches)
    kept: list[torch.Tensor] = []
    local: list[tuple[torch.Tensor, torch.Tensor]] = []

    def feed(features: torch.Tensor, logits: torch.Tensor) -> None:
        for i in range(0, len(logits), batch_size):
            if outputs.logits is not None:
                outputs.logits.update(logits[i : i + batch_size])
            if outputs.statistics is not None:
                outputs.statistics.update(features[i : i + batch_size])
        if outputs.keep_features:
            kept.append(features)

    bar = tqdm(
        total=source.count,
        desc=f"scoring {source.description}",
        unit="img",
        disable=not progress,
        leave=False,
    )
    for k, images in enumerate(source.batches(batch_size)):  # every process reads every batch
        if lo <= k < hi:
            features, logits = _run(extractor, images, source, k)
            if sharded:
                local.append((features, logits))
            else:
                feed(features, logits)
        bar.update(len(images))
    bar.close()
    if sharded:
        features, logits = (torch.cat(t) for t in zip(*local))
        if n_batches >= ctx.world_size:
            features, logits = gather_rows(features, ctx), gather_rows(logits, ctx)
        feed(features, logits)
    if outputs.keep_features:
        outputs.features = torch.cat(kept).numpy()
    return outputs


def _checked_statistics(stats: dict, origin: str, extractor: Extractor, need_features: bool) -> dict:
    stats = check_statistics(stats, origin, extractor.feature_dim)
    if "extractor" in stats and str(stats["extractor"]) != extractor.name:
        raise ImprovedGANError(
            f"{origin} holds {stats['extractor']} features, but the extractor is {extractor.name}"
        )
    if need_features and "features" not in stats:
        raise ImprovedGANError(
            f"{origin} has no 'features' array, which KID needs; save it with --metric kid"
        )
    return stats


def open_reference(
    reference,
    extractor: Extractor,
    need_features: bool,
    n: int | None = None,
    value_range: ValueRange = "auto",
) -> dict | ImageSource:
    """A reference, checked before any pass: statistics (a dict or an ``.npz`` written by
    :func:`score` with ``save_reference``, or pytorch-fid's) as a checked dict; any input
    :func:`open_source` accepts as an :class:`ImageSource` that fits the extractor."""
    if isinstance(reference, dict):  # statistics computed earlier
        return _checked_statistics(reference, "the reference statistics", extractor, need_features)
    path = Path(reference) if isinstance(reference, (str, Path)) else None
    if path is not None and path.suffix.lower() == ".npz" and path.is_file():
        names = npz_names(path)
        if "mu" in names and "sigma" in names:
            return _checked_statistics(read_npz(path), str(path), extractor, need_features)
    source = open_source(reference, n=n, value_range=value_range)
    check_fits(source, extractor)
    return source


def _source_statistics(
    source: ImageSource, extractor: Extractor, need_features: bool, batch_size: int, progress: bool
) -> dict:
    outputs = PassOutputs(statistics=FeatureStatistics(), keep_features=need_features)
    extract(source, extractor, batch_size, outputs, progress)
    out = {
        "mu": outputs.statistics.mean(),
        "sigma": outputs.statistics.cov(),
        "n": np.int64(outputs.statistics.n),
    }
    if outputs.features is not None:
        out["features"] = outputs.features
    return out


def _statistics_of(features: np.ndarray, batch_size: int, need_features: bool) -> dict:
    """The statistics of (N, D) features, accumulated in the batches a pass feeds them in (so equal,
    bit for bit, to the pass's own)."""
    stats = FeatureStatistics()
    for i in range(0, len(features), batch_size):
        stats.update(torch.from_numpy(features[i : i + batch_size]))
    out = {"mu": stats.mean(), "sigma": stats.cov(), "n": np.int64(stats.n)}
    if need_features:
        out["features"] = features
    return out


def _all_agree(hit: bool) -> bool:
    """Under torchrun, True only when every process found the cache (they then all skip the pass)."""
    ctx = context_from_env()
    if not (ctx.enabled and dist.is_available() and dist.is_initialized()):
        return hit
    return bool(gather_rows(torch.tensor([[int(hit)]]), ctx).min())


def _cached_statistics(
    source: ImageSource,
    extractor: Extractor,
    need_features: bool,
    batch_size: int,
    progress: bool,
    value_range: ValueRange,
) -> tuple[dict, str, Path]:
    """:func:`_source_statistics` through the disk cache of reference features
    (:mod:`~improved_gan.metrics.feature_cache`): (statistics, cache status, cache file)."""

    def compute() -> np.ndarray:
        outputs = PassOutputs(keep_features=True)
        return extract(source, extractor, batch_size, outputs, progress).features

    write = context_from_env().is_main
    features, status, path = cached_features(source, extractor, value_range, compute, _all_agree, write)
    return _statistics_of(features, batch_size, need_features), status, path


def reference_statistics(
    reference,
    extractor: Extractor,
    need_features: bool,
    n: int | None = None,
    batch_size: int | None = None,
    value_range: ValueRange = "auto",
    progress: bool = True,
    cache: bool = True,
) -> dict:
    """``{"mu", "sigma", "n", ["features"]}`` of a reference (see :func:`open_reference`); the
    features of a split, folder, file or array come from the disk cache when ``cache``."""
    opened = open_reference(reference, extractor, need_features, n, value_range)
    if isinstance(opened, dict):
        return opened
    batch_size = check_int(batch_size, "batch_size", 1, 100) or extractor.default_batch_size
    if cache and not isinstance(reference, ImageSource):
        return _cached_statistics(opened, extractor, need_features, batch_size, progress, value_range)[0]
    return _source_statistics(opened, extractor, need_features, batch_size, progress)


def _check_options(n, batch_size, splits, seed, kid_subsets, kid_subset_size, value_range) -> None:
    check_int(n, "n", 1, 50000)
    check_int(batch_size, "batch_size", 1, 100)
    check_int(splits, "splits", 1, 10)
    check_seed(seed)
    check_int(kid_subsets, "kid_subsets", 1, 100)
    check_int(kid_subset_size, "kid_subset_size", 2, 1000)
    if value_range not in VALUE_RANGES:
        raise ImprovedGANError(f"value_range must be one of {', '.join(VALUE_RANGES)}, got {value_range!r}")


def check_save_target(path: str | Path, reference=None) -> Path:
    """Where ``save_reference`` will write, checked before any pass: a writable ``.npz`` path
    that is not the reference being read and, if it exists, holds statistics (a file of
    anything else, such as images, is never replaced)."""
    path = check_output_file(path, "statistics file", ".npz")
    if isinstance(reference, (str, Path)) and Path(reference).exists() and path.exists():
        if Path(reference).resolve() == path.resolve():
            raise ImprovedGANError(f"statistics file {path} is also the reference; saving would replace it")
    if path.exists():
        try:
            names = npz_names(path)
        except ImprovedGANError:
            names = []
        if not ("mu" in names and "sigma" in names):
            raise ImprovedGANError(
                f"statistics file {path} exists and holds no statistics; it is kept: delete it or choose another path"
            )
    return path


def _check_covariance_sizes(*sources) -> None:
    """Feature statistics (FID, saved references) need a covariance: at least 2 images each."""
    for source in sources:
        if isinstance(source, ImageSource) and source.count < 2:
            raise ImprovedGANError(
                f"{source.description}: feature statistics need at least 2 images, got {source.count}"
            )


def _check_kid_sizes(subset_size: int, count: int, reference) -> None:
    ref_count = reference.count if isinstance(reference, ImageSource) else len(reference["features"])
    if subset_size > min(count, ref_count):
        raise ImprovedGANError(
            f"KID subset size {subset_size} exceeds the number of samples ({count} and {ref_count}); "
            f"pass --kid-subset-size {max(2, min(count, ref_count))} or fewer, or give more samples"
        )


def _feature_dim(outputs: PassOutputs, reference: dict | None, extractor: Extractor) -> int | None:
    """D of the features the pass saw (the extractor's declared size when it kept none)."""
    if outputs.statistics is not None and outputs.statistics.n:
        return len(outputs.statistics.mean())
    if outputs.features is not None:
        return outputs.features.shape[1]
    if reference is not None and "mu" in reference:
        return len(reference["mu"])
    return extractor.feature_dim


def score(
    source,
    metrics: Sequence[str] = ("is",),
    extractor: str | Extractor = "inception",
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
    cache: bool = True,
) -> dict:
    """Score ``source`` (tensor or array, image folder, .npz/.npy, dataset split name, or an
    :class:`ImageSource` such as a run's samples from :func:`improved_gan.training.run_source`).

    Returns a flat dict with torch-fidelity's metric names: ``n``, ``extractor``, ``features``
    (``"<features>, <D>-d"``); with ``"is"``: ``inception_score_mean``, ``inception_score_std``,
    ``is_profile``; with ``"fid"``/``"kid"`` (which need ``reference``):
    ``frechet_inception_distance``, ``kernel_inception_distance_mean``/``_std`` (unscaled MMD²),
    ``reference_n`` and, for a reference read from a split, folder, file or array,
    ``reference_cache`` (``loaded``/``saved``/``extracted``) and ``reference_cache_path``: its
    features are cached on disk unless ``cache=False``. ``save_reference`` writes the source's
    statistics (and features when KID is asked) to an ``.npz`` usable later as ``reference``.
    """
    chosen = get_metrics(metrics)
    _check_options(n, batch_size, splits, seed, kid_subsets, kid_subset_size, value_range)
    compares = any(m.compares for m in chosen)
    if compares and reference is None:
        raise ImprovedGANError(
            "FID and KID compare with a reference: pass --reference (e.g. mnist-test or stats.npz)"
        )
    needs = set().union(*(m.needs for m in chosen))
    save_path = check_save_target(save_reference, reference) if save_reference is not None else None
    src = open_source(source, n=n, value_range=value_range)
    ext = (
        extractor
        if isinstance(extractor, Extractor)
        else load_extractor(extractor, device, inception_weights)
    )
    check_fits(src, ext)
    batch_size = batch_size or ext.default_batch_size
    need_features = any("features" in m.needs for m in chosen if m.compares)
    ref = open_reference(reference, ext, need_features, None, value_range) if compares else None
    if "statistics" in needs or save_path is not None:
        _check_covariance_sizes(src, ref)
    if need_features:
        _check_kid_sizes(kid_subset_size, src.count, ref)
    outputs = PassOutputs(
        logits=InceptionScoreAccumulator(src.count, splits, shuffle, seed) if "logits" in needs else None,
        statistics=FeatureStatistics() if "statistics" in needs or save_path is not None else None,
        keep_features="features" in needs,
    )
    extract(src, ext, batch_size, outputs, progress)
    options = MetricOptions(splits, shuffle, seed, kid_subsets, kid_subset_size, ext.description)
    result: dict = {"n": src.count, "extractor": ext.description}
    if isinstance(ref, ImageSource) and cache and not isinstance(reference, ImageSource):
        ref, status, path = _cached_statistics(ref, ext, need_features, batch_size, progress, value_range)
        result.update(reference_cache=status, reference_cache_path=str(path))
    elif isinstance(ref, ImageSource):
        ref = _source_statistics(ref, ext, need_features, batch_size, progress)
    result["features"] = ext.features_spec(_feature_dim(outputs, ref, ext))
    if ref is not None:
        result["reference_n"] = int(ref["n"]) if "n" in ref else None
    for metric in chosen:
        result.update(metric.compute(outputs, ref, options))
    if save_path is not None:
        extra = {"extractor": np.str_(ext.name)}
        if outputs.features is not None:
            extra["features"] = outputs.features.astype(np.float32)
        stats = outputs.statistics
        save_statistics(save_path, stats.mean(), stats.cov(), stats.n, **extra)
        result["saved_reference"] = str(save_reference)
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
    result = {"dataset_score": out["inception_score_mean"], "dataset_score_std": out["inception_score_std"]}
    if "frechet_inception_distance" in out:
        result["dataset_fid"] = out["frechet_inception_distance"]
    return result
