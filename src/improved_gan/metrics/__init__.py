"""Metrics of the paper (§4) and beside it: the Inception Score exactly as the reference code
computes it, FID and KID from the same features, and dataset classifiers for the "MNIST score".

Pure functions of features (``inception_score``, ``frechet_distance``,
``kernel_inception_distance``) are separate from feature extraction (``inception``,
``classifier``, ``extractors``) and input handling (``inputs``); :func:`score` ties them
together through the metric registry (``registry``). Metrics take images, arrays and generator
modules; turning a run directory into samples is :mod:`improved_gan.training`'s job.
"""

from improved_gan.metrics.classifier import ClassifierNotFoundError, load_classifier, train_classifier
from improved_gan.metrics.dataset_score import generator_scores
from improved_gan.metrics.fid import FeatureStatistics, fid_from_features, frechet_distance
from improved_gan.metrics.inception import InceptionV3, load_inception, resize_bilinear_tf1
from improved_gan.metrics.inception_score import InceptionScoreAccumulator, inception_score
from improved_gan.metrics.inputs import ImageSource, array_source, open_source
from improved_gan.metrics.kid import kernel_inception_distance
from improved_gan.metrics.registry import register_metric
from improved_gan.metrics.sampling import sample_generator
from improved_gan.metrics.score import score, score_generator_samples
from improved_gan.utils.images import to_uint8_nchw

__all__ = [
    "ClassifierNotFoundError",
    "FeatureStatistics",
    "ImageSource",
    "InceptionScoreAccumulator",
    "InceptionV3",
    "array_source",
    "fid_from_features",
    "frechet_distance",
    "generator_scores",
    "inception_score",
    "kernel_inception_distance",
    "load_classifier",
    "load_inception",
    "open_source",
    "register_metric",
    "resize_bilinear_tf1",
    "sample_generator",
    "score",
    "score_generator_samples",
    "to_uint8_nchw",
    "train_classifier",
]
