"""Metrics of the paper (§4) and beside it: the Inception Score exactly as the reference code
computes it, FID and KID from the same features, and dataset classifiers for the "MNIST score".

Pure functions of features (``inception_score``, ``frechet_distance``,
``kernel_inception_distance``) are separate from feature extraction (``inception``,
``classifier``, ``extractors``) and input handling (``inputs``); :func:`score` ties them together.
"""

from improved_gan.metrics.classifier import ClassifierNotFoundError, load_classifier, train_classifier
from improved_gan.metrics.fid import FeatureStatistics, fid_from_features, frechet_distance
from improved_gan.metrics.inception import InceptionV3, load_inception, resize_bilinear_tf1
from improved_gan.metrics.inception_score import InceptionScoreAccumulator, inception_score
from improved_gan.metrics.inputs import open_source, to_uint8_nchw
from improved_gan.metrics.kid import kernel_inception_distance
from improved_gan.metrics.score import score, score_generator_samples

__all__ = [
    "ClassifierNotFoundError",
    "FeatureStatistics",
    "InceptionScoreAccumulator",
    "InceptionV3",
    "fid_from_features",
    "frechet_distance",
    "inception_score",
    "kernel_inception_distance",
    "load_classifier",
    "load_inception",
    "open_source",
    "resize_bilinear_tf1",
    "score",
    "score_generator_samples",
    "to_uint8_nchw",
    "train_classifier",
]
