"""The metrics :func:`improved_gan.metrics.score` knows, by name (as stylegan2-ada's
``metric_main``): each is registered with what it needs from the one pass over the images
(logits, running feature statistics, or every feature) and whether it compares with a
reference, and turns those into its numbers with the pure functions of its own module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from improved_gan.errors import ImprovedGANError
from improved_gan.metrics.fid import FeatureStatistics, frechet_distance
from improved_gan.metrics.inception_score import InceptionScoreAccumulator
from improved_gan.metrics.kid import kernel_inception_distance

NEEDS = ("logits", "statistics", "features")


@dataclass
class PassOutputs:
    """What one pass over a source collects (each only when a metric needs it): the Inception
    Score accumulator, the running feature statistics, and with ``keep_features`` every feature
    (``features``, set by the pass)."""

    logits: InceptionScoreAccumulator | None = None
    statistics: FeatureStatistics | None = None
    keep_features: bool = False
    features: np.ndarray | None = None


@dataclass
class MetricOptions:
    """The settings metrics read: the Inception Score's splits and shuffle, KID's subsets, and a
    line describing the extractor."""

    splits: int = 10
    shuffle: bool = False
    seed: int | None = None
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    extractor_description: str = ""


@dataclass(frozen=True)
class Metric:
    name: str
    needs: frozenset[str]
    compares: bool  # needs the reference's statistics ({"mu", "sigma"[, "features"]})
    compute: Callable[[PassOutputs, dict | None, MetricOptions], dict] = field(compare=False)


_METRICS: dict[str, Metric] = {}


def register_metric(name: str, needs: tuple[str, ...], compares: bool = False):
    """Decorator: register ``compute(outputs, reference, options) -> dict`` as metric ``name``."""
    assert set(needs) <= set(NEEDS), needs

    def decorate(compute: Callable[[PassOutputs, dict | None, MetricOptions], dict]):
        _METRICS[name] = Metric(name, frozenset(needs), compares, compute)
        return compute

    return decorate


def metric_names() -> tuple[str, ...]:
    return tuple(_METRICS)


def get_metrics(names) -> list[Metric]:
    unknown = [m for m in names if m not in _METRICS]
    if unknown or not names:
        raise ImprovedGANError(f"unknown metric(s) {unknown}; choose from {', '.join(_METRICS)}")
    return [_METRICS[m] for m in names]


def is_profile(options: MetricOptions) -> str:
    """One line saying how the Inception Score was computed, to print next to the number."""
    order = f"shuffled (RandomState({options.seed}))" if options.shuffle else "contiguous (reference)"
    return (
        f"{options.extractor_description}; {options.splits} splits, {order}; population std (ddof=0); "
        "float64 log-softmax"
    )


@register_metric("is", needs=("logits",))
def _inception_score(outputs: PassOutputs, reference: dict | None, options: MetricOptions) -> dict:
    mean, std = outputs.logits.compute()
    return {"inception_score_mean": mean, "inception_score_std": std, "is_profile": is_profile(options)}


@register_metric("fid", needs=("statistics",), compares=True)
def _fid(outputs: PassOutputs, reference: dict | None, options: MetricOptions) -> dict:
    stats = outputs.statistics
    distance = frechet_distance(stats.mean(), stats.cov(), reference["mu"], reference["sigma"])
    return {"frechet_inception_distance": distance}


@register_metric("kid", needs=("features",), compares=True)
def _kid(outputs: PassOutputs, reference: dict | None, options: MetricOptions) -> dict:
    mean, std = kernel_inception_distance(
        outputs.features,
        reference["features"],
        subsets=options.kid_subsets,
        subset_size=options.kid_subset_size,
    )
    return {"kernel_inception_distance_mean": mean, "kernel_inception_distance_std": std}
